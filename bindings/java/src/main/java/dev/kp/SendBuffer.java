package dev.kp;

import java.nio.ByteBuffer;

/**
 * A sending thread's native buffer: {@code send} writes a record's topic, key and
 * value into it and hands kp the buffer's address and the lengths, so the JNI
 * call takes only primitives (no per-array JNI calls to read the record's arrays).
 * Records with headers, or too large for the buffer, take {@link Native#send}.
 * One per thread, shared by that thread's producers: a record is in it only
 * during its send call (kp copies it before kp_send returns). 16 KiB: allocateDirect
 * zeroes (touches) the whole buffer, so each sending thread holds that much resident;
 * for larger records the per-array JNI calls cost little next to copying them.
 */
final class SendBuffer {
    static final int SIZE = 1 << 14;
    private static final ThreadLocal<SendBuffer> MINE = ThreadLocal.withInitial(SendBuffer::new);

    private final ByteBuffer buf = ByteBuffer.allocateDirect(SIZE);
    private final long address = Native.bufferAddress(buf);

    private SendBuffer() {}

    /** Whether topic (NUL-terminated), key and value fit the buffer together. */
    static boolean fits(byte[] topic, byte[] key, byte[] value) {
        long n = (long) topic.length + (key == null ? 0 : key.length) + (value == null ? 0 : value.length);
        return n <= SIZE;
    }

    /** kp_send of the record (see {@link Native#sendBuffered}); the caller checked {@link #fits}. */
    static int send(long handle, byte[] topic, int partition, byte[] key, byte[] value, long timestamp, long ctx) {
        SendBuffer sb = MINE.get();
        ByteBuffer b = sb.buf;
        int at = topic.length;
        b.put(0, topic, 0, at);
        if (key != null) {
            b.put(at, key, 0, key.length);
            at += key.length;
        }
        if (value != null) {
            b.put(at, value, 0, value.length);
        }
        return Native.sendBuffered(handle, sb.address, topic.length, partition, key == null ? -1 : key.length,
                value == null ? -1 : value.length, timestamp, ctx);
    }
}
