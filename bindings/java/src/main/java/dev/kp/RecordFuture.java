package dev.kp;

import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import org.apache.kafka.clients.producer.Callback;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.TopicPartition;

/**
 * One accepted record until its report: the {@link Future} {@code send} returns,
 * and the entry {@link Inflight} keeps for it (one object per record).
 *
 * <p>It keeps the report's plain fields, not a {@link RecordMetadata}: {@link #get}
 * builds one when asked, as the Java producer's {@code FutureRecordMetadata} does,
 * so a record whose future nobody reads costs no metadata object. Waiting is on the
 * object's monitor; the completing thread takes it only when a waiter announced
 * itself (the {@link #WAITING} bit), so completing costs one atomic exchange.
 */
final class RecordFuture implements Future<RecordMetadata> {
    private static final int WAITING = 1;
    private static final int DONE = 2;
    private static final VarHandle STATE;

    static {
        try {
            STATE = MethodHandles.lookup().findVarHandle(RecordFuture.class, "state", int.class);
        } catch (ReflectiveOperationException e) {
            throw new ExceptionInInitializerError(e);
        }
    }

    final Callback callback;
    final String topic;
    final int keySize;
    final int valueSize;
    /** Before completion: the record's headers when interceptors need them (else null); after: the error or null. */
    private Object extra;
    private int partition;
    private long offset;
    private long timestamp;
    @SuppressWarnings("unused") // through STATE
    private volatile int state;

    RecordFuture(Callback callback, String topic, Object headers, int keySize, int valueSize) {
        this.callback = callback;
        this.topic = topic;
        this.extra = headers;
        this.keySize = keySize;
        this.valueSize = valueSize;
    }

    /** The headers given to the constructor; valid until {@link #complete}. */
    Object headers() {
        return extra;
    }

    /**
     * Records the outcome and wakes the waiters: on success {@code error} is null;
     * on failure offset and timestamp are ignored.
     */
    void complete(int partition, long offset, long timestamp, Exception error) {
        this.partition = partition;
        this.offset = offset;
        this.timestamp = timestamp;
        this.extra = error;
        if (((int) STATE.getAndSet(this, DONE) & WAITING) != 0) {
            synchronized (this) {
                notifyAll();
            }
        }
    }

    /** The metadata of a record that was written, as the callback and get() see it. */
    static RecordMetadata metadata(TopicPartition tp, long offset, long timestamp, int keySize, int valueSize) {
        return new RecordMetadata(tp, offset, 0, timestamp, keySize, valueSize);
    }

    /** Waits up to {@code nanos} (forever when negative); true once done. */
    private boolean await(long nanos) throws InterruptedException {
        if (state == DONE) {
            return true;
        }
        long deadline = nanos < 0 ? 0 : System.nanoTime() + nanos;
        synchronized (this) {
            while (true) {
                int s = state;
                if (s == DONE) {
                    return true;
                }
                if (s == WAITING || STATE.compareAndSet(this, 0, WAITING)) {
                    break;
                }
            }
            while (state != DONE) {
                if (nanos < 0) {
                    wait();
                } else {
                    long left = deadline - System.nanoTime();
                    if (left <= 0) {
                        return false;
                    }
                    TimeUnit.NANOSECONDS.timedWait(this, left);
                }
            }
            return true;
        }
    }

    /** Waits until done (for flush); errors are the callback's and the future's business. */
    void await() throws InterruptedException {
        await(-1);
    }

    private RecordMetadata outcome() throws ExecutionException {
        Object e = extra;
        if (e != null) {
            throw new ExecutionException((Exception) e);
        }
        return metadata(new TopicPartition(topic, partition), offset, timestamp, keySize, valueSize);
    }

    @Override
    public RecordMetadata get() throws InterruptedException, ExecutionException {
        await(-1);
        return outcome();
    }

    @Override
    public RecordMetadata get(long timeout, TimeUnit unit)
            throws InterruptedException, ExecutionException, TimeoutException {
        long ms = unit.toMillis(timeout);
        if (!await(Math.max(0, unit.toNanos(timeout)))) {
            throw new TimeoutException("Timeout after waiting for " + ms + " ms.");
        }
        return outcome();
    }

    @Override
    public boolean isDone() {
        return state == DONE;
    }

    /** As the Java producer's future: a sent record cannot be cancelled. */
    @Override
    public boolean cancel(boolean mayInterruptIfRunning) {
        return false;
    }

    @Override
    public boolean isCancelled() {
        return false;
    }
}
