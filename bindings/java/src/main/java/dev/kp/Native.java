package dev.kp;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;

/**
 * The JNI functions of libkpjni.so (src/main/c/kpjni.c), one per kp.h call.
 *
 * <p>Loading: {@code System.loadLibrary("kpjni")} through
 * {@code java.library.path} first (libkpjni.so finds libkp.so.0.1 beside itself
 * through its $ORIGIN run path, or through LD_LIBRARY_PATH); when that fails,
 * both libraries are copied out of the jar ({@code dev/kp/native/linux-x86_64/})
 * into a temporary directory, deleted when the JVM exits, and loaded from there.
 */
final class Native {
    static final int KP_OK = 0;
    static final int CONFIG_INVALID = -1;
    static final int CONFIG_UNKNOWN = -2;
    static final int PURGE_QUEUED = 1;
    static final int PURGE_IN_FLIGHT = 2;
    static final int FLAG_FATAL = 1;
    static final int FLAG_ABORTABLE = 2;
    static final int FLAG_RETRIABLE = 4;

    private static final String RESOURCE_DIR = "/dev/kp/native/linux-x86_64/";
    private static final String KP_SONAME = "libkp.so.0.1";

    static {
        load();
    }

    private Native() {}

    private static void load() {
        try {
            System.loadLibrary("kpjni");
            return;
        } catch (UnsatisfiedLinkError notOnPath) {
            // fall through to the copy inside the jar
        }
        try {
            Path dir = Files.createTempDirectory("kp-jni");
            dir.toFile().deleteOnExit();
            Path kp = extract(dir, KP_SONAME);
            Path jni = extract(dir, "libkpjni.so");
            // libkpjni.so needs libkp.so.0.1: load it first so the dynamic
            // linker finds it by its soname.
            System.load(kp.toString());
            System.load(jni.toString());
        } catch (IOException e) {
            throw new UnsatisfiedLinkError("kp: cannot extract the native libraries: " + e);
        }
    }

    private static Path extract(Path dir, String name) throws IOException {
        try (InputStream in = Native.class.getResourceAsStream(RESOURCE_DIR + name)) {
            if (in == null) {
                throw new UnsatisfiedLinkError("kp: " + name + " is neither on java.library.path ("
                        + System.getProperty("java.library.path") + ") nor in the jar");
            }
            Path out = dir.resolve(name);
            Files.copy(in, out, StandardCopyOption.REPLACE_EXISTING);
            out.toFile().deleteOnExit();
            return out;
        }
    }

    static native long configNew();

    static native void configDestroy(long cfg);

    static native int configSet(long cfg, String name, String value);

    static native long producerNew(long cfg);

    /** A queue for kp's log lines, registered on cfg (0 without memory); freed by logQueueFree. */
    static native long logQueueNew(long cfg);

    static native void logQueueFree(long q);

    /** The lines logged since the last call, 3 strings each (level "0".."7", facility, message); null if none. */
    static native String[] logTake(long q);

    static native void producerDestroy(long p);

    static native long outstanding(long p);

    static native int purge(long p, int flags);

    static native int fatalError(long p);

    static native int flush(long p, int timeoutMs, ReportSink sink);

    static native int close(long p, int timeoutMs, ReportSink sink);

    static native int send(long p, byte[] topic, int partition, byte[] key, byte[] value, long timestamp,
            byte[][] headers, long ctx);

    /** The address of a direct buffer. */
    static native long bufferAddress(java.nio.ByteBuffer direct);

    /**
     * kp_send of the record laid out at {@code addr}: the topic's NUL-terminated
     * UTF-8 ({@code topicLen} bytes, NUL included), then the key, then the value
     * (a length of -1: null); no headers.
     */
    static native int sendBuffered(long p, long addr, int topicLen, int partition, int keyLen, int valueLen,
            long timestamp, long ctx);

    static native int pollReports(long p, long[] out, int max, int timeoutMs);

    static native String lastError();

    static native int lastErrorFlags();

    static native int lastErrorCode();

    static native String errName(int code);

    static native String errStr(int code);

    static native int[] partitionsFor(long p, String topic, int timeoutMs);

    static native long[] metrics(long p);

    static native int initTransactions(long p, int timeoutMs);

    static native int beginTransaction(long p);

    static native int commitTransaction(long p, int timeoutMs, ReportSink sink);

    static native int abortTransaction(long p, int timeoutMs, ReportSink sink);

    static native int sendOffsetsToTransaction(long p, String[] topics, int[] partitions, long[] offsets,
            String groupId, int timeoutMs);
}
