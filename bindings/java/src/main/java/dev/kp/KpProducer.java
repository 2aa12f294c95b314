package dev.kp;

import java.lang.ref.Cleaner;
import java.lang.ref.Reference;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.ToIntFunction;
import org.apache.kafka.clients.consumer.ConsumerGroupMetadata;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.Callback;
import org.apache.kafka.clients.producer.Producer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerInterceptor;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.KafkaException;
import org.apache.kafka.common.Metric;
import org.apache.kafka.common.MetricName;
import org.apache.kafka.common.Node;
import org.apache.kafka.common.PartitionInfo;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.Uuid;
import org.apache.kafka.common.config.ConfigException;
import org.apache.kafka.common.errors.ApiException;
import org.apache.kafka.common.errors.InterruptException;
import org.apache.kafka.common.errors.ProducerFencedException;
import org.apache.kafka.common.errors.SerializationException;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.header.Headers;
import org.apache.kafka.common.header.internals.RecordHeaders;
import org.apache.kafka.common.metrics.KafkaMetric;
import org.apache.kafka.common.record.RecordBatch;
import org.apache.kafka.common.serialization.Serializer;
import org.apache.kafka.common.utils.Utils;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A {@link Producer} backed by libkp, for code written against Kafka's
 * {@code KafkaProducer}: only the constructor changes.
 *
 * <p>Configuration: the producer properties are handed to kp, which knows the Java
 * producer's names ({@code bootstrap.servers}, {@code acks}, {@code linger.ms},
 * {@code batch.size}, {@code compression.type}, {@code transactional.id}, ...).
 * {@code key.serializer}, {@code value.serializer} and {@code interceptor.classes}
 * are used here; other Java producer settings kp has no use for are logged and
 * ignored; {@code partitioner.class} is refused (kp places keyed records exactly
 * like the Java producer's default partitioner: murmur2).
 *
 * <p>Threads: {@code send} may be called from any thread. Callbacks, interceptors'
 * {@code onAcknowledgement} and future completion run on one thread per producer,
 * {@code kp-producer-io-<client.id>}, as the Java producer runs them on its I/O
 * thread: keep them short. That thread drains kp's delivery reports in batches
 * (delivery.report.mode=poll, kp_poll_reports); kp never calls into the JVM from a
 * thread of its own.
 */
public class KpProducer<K, V> implements Producer<K, V> {
    private static final Logger log = LoggerFactory.getLogger(KpProducer.class);
    private static final Cleaner CLEANER = Cleaner.create();
    private static final AtomicInteger CLIENT_SEQ = new AtomicInteger(1);
    private static final int BATCH = 512;
    private static final int IDLE_POLL_MS = 10;

    /** Settings used by this class, never handed to kp. */
    private static final Set<String> BINDING_KEYS = Set.of(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG,
            ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, ProducerConfig.INTERCEPTOR_CLASSES_CONFIG,
            "delivery.report.mode");

    private final String clientId;
    private final long handle;
    /** The C queue kp's log lines wait in until the I/O thread logs them (0: none). */
    private final long logq;
    private final boolean transactional;
    private final int maxBlockMs;
    private final long deliveryTimeoutMs;
    private final Serializer<K> keySerializer;
    private final Serializer<V> valueSerializer;
    private final List<ProducerInterceptor<K, V>> interceptors;
    private final Map<String, byte[]> topicBytes = new ConcurrentHashMap<>();
    private final Inflight<RecordFuture> inflight = new Inflight<>();
    /** The last topic sent and its NUL-terminated UTF-8 bytes (immutable, shared by the sending threads). */
    private TopicBytes lastTopic = new TopicBytes("", new byte[1]);
    private final Io io;
    private final Cleaner.Cleanable cleanable;
    private volatile boolean closed;

    public KpProducer(Properties properties) {
        this(propsToMap(properties), null, null);
    }

    public KpProducer(Properties properties, Serializer<K> keySerializer, Serializer<V> valueSerializer) {
        this(propsToMap(properties), keySerializer, valueSerializer);
    }

    public KpProducer(Map<String, Object> configs) {
        this(configs, null, null);
    }

    public KpProducer(Map<String, Object> configs, Serializer<K> keySerializer, Serializer<V> valueSerializer) {
        Map<String, Object> cfg = new HashMap<>(configs);
        Object cid = cfg.get(ProducerConfig.CLIENT_ID_CONFIG);
        this.clientId = cid == null || cid.toString().isEmpty() ? "producer-" + CLIENT_SEQ.getAndIncrement()
                : cid.toString();
        cfg.put(ProducerConfig.CLIENT_ID_CONFIG, clientId);
        Object txnId = cfg.get(ProducerConfig.TRANSACTIONAL_ID_CONFIG);
        this.transactional = txnId != null && !txnId.toString().isEmpty();
        Object mb = cfg.get(ProducerConfig.MAX_BLOCK_MS_CONFIG);
        this.maxBlockMs = mb == null ? 60_000 : (int) Math.min(Integer.MAX_VALUE, Long.parseLong(mb.toString().trim()));
        Object dt = cfg.get(ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG);
        this.deliveryTimeoutMs = dt == null ? 120_000 : Long.parseLong(dt.toString().trim());
        if (cfg.get(ProducerConfig.PARTITIONER_CLASS_CONFIG) != null) {
            throw new ConfigException(ProducerConfig.PARTITIONER_CLASS_CONFIG + " is not supported by KpProducer "
                    + "(kp places keyed records like the Java producer's default partitioner)");
        }
        this.keySerializer = keySerializer != null ? keySerializer : newSerializer(cfg, true);
        this.valueSerializer = valueSerializer != null ? valueSerializer : newSerializer(cfg, false);
        this.interceptors = newInterceptors(cfg);

        long kpCfg = Native.configNew();
        long lq = Native.logQueueNew(kpCfg);
        long h = 0;
        try {
            for (Map.Entry<String, Object> e : cfg.entrySet()) {
                if (e.getValue() != null && !BINDING_KEYS.contains(e.getKey())) {
                    set(kpCfg, e.getKey(), valueString(e.getValue()));
                }
            }
            set(kpCfg, "delivery.report.mode", "poll");
            h = Native.producerNew(kpCfg);
            if (h == 0) {
                throw new KafkaException("Failed to construct kafka producer: " + Native.lastError());
            }
        } finally {
            if (h == 0) {
                Native.configDestroy(kpCfg);
                Native.logQueueFree(lq);
            }
        }
        this.handle = h;
        this.logq = lq;
        // Frees the native producer once this object is unreachable; close() only
        // closes it, so a send racing with close() never sees a freed handle.
        this.cleanable = CLEANER.register(this, new Destroyer(h, lq));
        this.io = new Io();
        io.start();
    }

    // ---- configuration --------------------------------------------------

    private static Map<String, Object> propsToMap(Properties p) {
        Map<String, Object> m = new HashMap<>();
        for (String name : p.stringPropertyNames()) {
            m.put(name, p.getProperty(name));
        }
        for (Map.Entry<Object, Object> e : p.entrySet()) {
            m.putIfAbsent(String.valueOf(e.getKey()), e.getValue());
        }
        return m;
    }

    private static String valueString(Object v) {
        if (v instanceof Class) {
            return ((Class<?>) v).getName();
        }
        if (v instanceof List) {
            List<String> parts = new ArrayList<>();
            for (Object o : (List<?>) v) {
                parts.add(valueString(o));
            }
            return String.join(",", parts);
        }
        return v.toString();
    }

    private static void set(long kpCfg, String name, String value) {
        int r = Native.configSet(kpCfg, name, value);
        if (r == Native.CONFIG_INVALID) {
            // Java spells enum values in upper case too (PLAINTEXT, SCRAM-SHA-512, ...)
            String lower = value.toLowerCase(Locale.ROOT);
            if (!lower.equals(value) && Native.configSet(kpCfg, name, lower) == Native.KP_OK) {
                return;
            }
            throw new ConfigException(name, value, Native.lastError());
        }
        if (r == Native.CONFIG_UNKNOWN) {
            if (ProducerConfig.configNames().contains(name)) {
                log.debug("kp: producer setting {} has no effect in KpProducer", name);
            } else {
                log.warn("The configuration '{}' was supplied but isn't a known config.", name);
            }
        }
    }

    @SuppressWarnings("unchecked")
    private static <T> Serializer<T> newSerializer(Map<String, Object> cfg, boolean isKey) {
        String key = isKey ? ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG : ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG;
        Object v = cfg.get(key);
        if (v == null) {
            throw new ConfigException("Missing required configuration \"" + key + "\" which has no default value.");
        }
        Serializer<T> s = v instanceof Serializer ? (Serializer<T>) v : newInstance(v, Serializer.class);
        s.configure(cfg, isKey);
        return s;
    }

    @SuppressWarnings("unchecked")
    private static <T> T newInstance(Object classOrName, Class<?> base) {
        try {
            Class<?> c = classOrName instanceof Class ? (Class<?>) classOrName
                    : Class.forName(classOrName.toString().trim(), true, Utils.getContextOrKafkaClassLoader());
            return (T) Utils.newInstance(c, base);
        } catch (ClassNotFoundException e) {
            throw new ConfigException("Class " + classOrName + " cannot be found", e);
        }
    }

    @SuppressWarnings("unchecked")
    private List<ProducerInterceptor<K, V>> newInterceptors(Map<String, Object> cfg) {
        Object v = cfg.get(ProducerConfig.INTERCEPTOR_CLASSES_CONFIG);
        List<ProducerInterceptor<K, V>> out = new ArrayList<>();
        if (v == null) {
            return out;
        }
        List<?> names = v instanceof List ? (List<?>) v : List.of(v.toString().split(","));
        for (Object n : names) {
            if (n instanceof String && ((String) n).trim().isEmpty()) {
                continue;
            }
            ProducerInterceptor<K, V> i = newInstance(n, ProducerInterceptor.class);
            i.configure(cfg);
            out.add(i);
        }
        return out;
    }

    // ---- sending --------------------------------------------------------

    /**
     * Runs a record's report: interceptors' onAcknowledgement, then its callback,
     * then completes its future (on the I/O thread, in kp's order).
     */
    private void finish(RecordFuture rf, TopicPartition tp, int error, long offset, long timestamp) {
        Callback callback = rf.callback;
        Exception ex = null;
        RecordMetadata md = null;
        if (error != 0) {
            ex = tp.partition() < 0 && error == KpErrors.UNKNOWN_TOPIC_OR_PARTITION
                    // the Java producer's words for a topic that never showed up in metadata
                    ? new org.apache.kafka.common.errors.TimeoutException("Topic " + rf.topic
                            + " not present in metadata after " + deliveryTimeoutMs + " ms.")
                    : reportException(error);
            md = new RecordMetadata(tp, -1, -1, RecordBatch.NO_TIMESTAMP, -1, -1);
        } else if (callback != null || !interceptors.isEmpty()) {
            // only when someone looks at it: get() builds its own
            md = RecordFuture.metadata(tp, offset, timestamp, rf.keySize, rf.valueSize);
        }
        if (!interceptors.isEmpty()) {
            acknowledge(md, ex, (Headers) rf.headers());
        }
        if (callback != null) {
            try {
                callback.onCompletion(md, ex);
            } catch (Throwable t) {
                log.error("Error executing user-provided callback on message for topic-partition '{}'", tp, t);
            }
        }
        rf.complete(tp.partition(), offset, timestamp, ex);
    }

    private RuntimeException reportException(int error) {
        if (error == KpErrors.FATAL) {
            int code = Native.fatalError(handle);
            if (code != Native.KP_OK && code != KpErrors.FATAL) {
                return KpErrors.of(code, Native.lastError(), transactional);
            }
        }
        if (error == KpErrors.CLOSED) {
            return new KafkaException("Producer is closed forcefully.");
        }
        return KpErrors.of(error, null, transactional);
    }

    private void acknowledge(RecordMetadata md, Exception ex, Headers headers) {
        for (int n = 0; n < interceptors.size(); n++) {
            ProducerInterceptor<K, V> i = interceptors.get(n);
            try {
                i.onAcknowledgement(md, ex, headers);
            } catch (Throwable t) {
                log.warn("Error executing interceptor onAcknowledgement callback", t);
            }
        }
    }

    @Override
    public Future<RecordMetadata> send(ProducerRecord<K, V> record) {
        return send(record, null);
    }

    @Override
    public Future<RecordMetadata> send(ProducerRecord<K, V> record, Callback callback) {
        ProducerRecord<K, V> r = record;
        for (int n = 0; n < interceptors.size(); n++) {
            ProducerInterceptor<K, V> i = interceptors.get(n);
            try {
                r = i.onSend(r);
            } catch (Throwable t) {
                log.warn("Error executing interceptor onSend callback", t);
            }
        }
        try {
            return doSend(r, callback);
        } finally {
            Reference.reachabilityFence(this);
        }
    }

    private Future<RecordMetadata> doSend(ProducerRecord<K, V> record, Callback callback) {
        try {
            if (closed) {
                throw new IllegalStateException("Cannot perform operation after producer has been closed");
            }
            String topic = record.topic();
            Headers headers = record.headers();
            byte[] key;
            try {
                key = keySerializer.serialize(topic, headers, record.key());
            } catch (ClassCastException cce) {
                throw new SerializationException("Can't convert key of class " + record.key().getClass().getName()
                        + " to class " + keySerializer.getClass().getName()
                        + " specified in key.serializer", cce);
            }
            byte[] value;
            try {
                value = valueSerializer.serialize(topic, headers, record.value());
            } catch (ClassCastException cce) {
                throw new SerializationException("Can't convert value of class "
                        + record.value().getClass().getName() + " to class "
                        + valueSerializer.getClass().getName() + " specified in value.serializer", cce);
            }
            if (headers instanceof RecordHeaders) {
                ((RecordHeaders) headers).setReadOnly();
            }
            Integer partition = record.partition();
            // the headers are kept for the interceptors' onAcknowledgement only
            RecordFuture rf = new RecordFuture(callback, topic, interceptors.isEmpty() ? null : headers,
                    key == null ? -1 : key.length, value == null ? -1 : value.length);
            long id = inflight.add(rf);
            Long ts = record.timestamp();
            byte[] topicC = topicCString(topic);
            int part = partition == null ? -1 : partition;
            long stamp = ts == null ? 0L : ts;
            byte[][] hdrs = headerArray(headers);
            int rc = hdrs == null && SendBuffer.fits(topicC, key, value)
                    ? SendBuffer.send(handle, topicC, part, key, value, stamp, id)
                    : Native.send(handle, topicC, part, key, value, stamp, hdrs, id);
            if (rc == Native.KP_OK) {
                return rf;
            }
            inflight.remove(id);
            throw sendException(rc, Native.lastError());
        } catch (ApiException e) {
            // As the Java producer: API errors go to the callback and the future.
            RecordMetadata md = failedMetadata(record);
            acknowledge(md, e, record.headers());
            if (callback != null) {
                try {
                    callback.onCompletion(md, e);
                } catch (Throwable t) {
                    log.error("Error executing user-provided callback", t);
                }
            }
            CompletableFuture<RecordMetadata> failed = new CompletableFuture<>();
            failed.completeExceptionally(e);
            return failed;
        } catch (RuntimeException e) {
            acknowledge(failedMetadata(record), e, record.headers());
            throw e;
        }
    }

    private static RecordMetadata failedMetadata(ProducerRecord<?, ?> record) {
        Integer p = record.partition();
        TopicPartition tp = new TopicPartition(record.topic(), p == null ? RecordMetadata.UNKNOWN_PARTITION : p);
        return new RecordMetadata(tp, -1, -1, RecordBatch.NO_TIMESTAMP, -1, -1);
    }

    private RuntimeException sendException(int rc, String msg) {
        switch (rc) {
            case KpErrors.CLOSED:
                return new IllegalStateException("Cannot perform operation after producer has been closed");
            case KpErrors.UNKNOWN_PARTITION:
                return new KafkaException(msg);
            case KpErrors.FATAL:
                return reportException(rc);
            default:
                return KpErrors.of(rc, msg, transactional);
        }
    }

    private static final class TopicBytes {
        final String topic;
        final byte[] bytes;

        TopicBytes(String topic, byte[] bytes) {
            this.topic = topic;
            this.bytes = bytes;
        }
    }

    /** The topic's NUL-terminated UTF-8 bytes: the last topic's without a map lookup. */
    private byte[] topicCString(String topic) {
        TopicBytes last = lastTopic;
        if (last.topic == topic || last.topic.equals(topic)) {
            return last.bytes;
        }
        byte[] b = topicBytes.computeIfAbsent(topic, KpProducer::nulTerminated);
        lastTopic = new TopicBytes(topic, b);
        return b;
    }

    private static byte[] nulTerminated(String topic) {
        byte[] b = topic.getBytes(StandardCharsets.UTF_8);
        byte[] out = new byte[b.length + 1];
        System.arraycopy(b, 0, out, 0, b.length);
        return out;
    }

    private static byte[][] headerArray(Headers headers) {
        Header[] hs = headers.toArray();
        if (hs.length == 0) {
            return null;
        }
        byte[][] out = new byte[hs.length * 2][];
        for (int i = 0; i < hs.length; i++) {
            out[2 * i] = hs[i].key().getBytes(StandardCharsets.UTF_8);
            out[2 * i + 1] = hs[i].value();
        }
        return out;
    }

    // ---- the I/O thread -------------------------------------------------

    /**
     * Drains delivery reports and runs the calls that serve reports on their
     * calling thread in kp's poll mode (flush, close, commit, abort), so every
     * callback runs here, in the order kp reports.
     */
    private final class Io extends Thread implements ReportSink {
        private final ConcurrentLinkedQueue<Task> tasks = new ConcurrentLinkedQueue<>();
        final AtomicInteger flushers = new AtomicInteger();
        private volatile int closeTimeoutMs = -1;

        Io() {
            super("kp-producer-io-" + clientId);
            setDaemon(true);
        }

        /** TopicPartition objects handed out with RecordMetadata, reused (this thread only). */
        private final Map<String, TopicPartition[]> partitions = new HashMap<>();

        private String cachedTopic;
        private TopicPartition[] cachedPartitions;

        private TopicPartition topicPartition(String topic, int partition) {
            if (partition < 0 || partition >= 1 << 16) {
                return new TopicPartition(topic, partition);
            }
            TopicPartition[] tps = topic == cachedTopic ? cachedPartitions : partitions.get(topic);
            if (tps == null || tps.length <= partition) {
                TopicPartition[] grown = new TopicPartition[Math.max(partition + 1, tps == null ? 8 : 2 * tps.length)];
                if (tps != null) {
                    System.arraycopy(tps, 0, grown, 0, tps.length);
                }
                partitions.put(topic, grown);
                tps = grown;
            }
            cachedTopic = topic;
            cachedPartitions = tps;
            TopicPartition tp = tps[partition];
            if (tp == null) {
                tp = tps[partition] = new TopicPartition(topic, partition);
            }
            return tp;
        }

        @Override
        public void onReport(long ctx, int partition, long offset, long timestamp, int error) {
            report(inflight.remove(ctx), partition, offset, timestamp, error);
        }

        /** Completes {@code rf} (taken from the in-flight table; null when it was not there). */
        private void report(RecordFuture rf, int partition, long offset, long timestamp, int error) {
            if (rf != null) {
                finish(rf, topicPartition(rf.topic, partition), error, offset, timestamp);
            }
        }

        @Override
        public void run() {
            long[] buf = new long[4 * BATCH];
            while (true) {
                Task t;
                while ((t = tasks.poll()) != null) {
                    t.run();
                }
                int closeMs = closeTimeoutMs;
                if (closeMs >= 0) {
                    Native.close(handle, closeMs, this);
                    drain(buf, 0);
                    // close reported every accepted record; nothing is left
                    for (Task rest; (rest = tasks.poll()) != null; ) {
                        rest.run();
                    }
                    emitLogs();
                    return;
                }
                if (flushers.get() > 0) {
                    Native.flush(handle, IDLE_POLL_MS, this);
                } else {
                    drain(buf, IDLE_POLL_MS);
                }
                emitLogs();
            }
        }

        /**
         * Hands the lines kp logged during this thread's last kp calls to SLF4J,
         * logger {@code kp.<facility>} (broker, protocol, metadata, producer,
         * txn, security): syslog 0-3 error, 4 warn, 5-6 info, 7 debug.
         */
        private void emitLogs() {
            if (logq == 0) {
                return;
            }
            String[] lines = Native.logTake(logq);
            if (lines == null) {
                return;
            }
            for (int i = 0; i + 2 < lines.length; i += 3) {
                Logger lg = LoggerFactory.getLogger("kp." + lines[i + 1]);
                String fmt = "[Producer clientId={}] {}";
                try {
                    switch (lines[i].charAt(0)) {
                        case '0', '1', '2', '3' -> lg.error(fmt, clientId, lines[i + 2]);
                        case '4' -> lg.warn(fmt, clientId, lines[i + 2]);
                        case '5', '6' -> lg.info(fmt, clientId, lines[i + 2]);
                        default -> lg.debug(fmt, clientId, lines[i + 2]);
                    }
                } catch (RuntimeException e) {
                    // a failing logger must not stop the I/O thread
                }
            }
        }

        private final Object[] taken = new Object[BATCH];

        private void drain(long[] buf, int timeoutMs) {
            int n;
            do {
                n = Native.pollReports(handle, buf, BATCH, timeoutMs);
                inflight.removeAll(buf, n, 4, taken);
                for (int i = 0; i < n; i++) {
                    RecordFuture rf = (RecordFuture) taken[i];
                    taken[i] = null;
                    long packed = buf[4 * i + 3];
                    report(rf, (int) (packed >> 32), buf[4 * i + 1], buf[4 * i + 2], (int) packed);
                }
                timeoutMs = 0;
            } while (n == BATCH);
        }

        /** Runs {@code call} on this thread and waits for its outcome. */
        Outcome call(ToIntFunction<ReportSink> call) {
            if (Thread.currentThread() == this) {
                throw new KafkaException("this call is not permitted inside a producer callback: "
                        + "it would wait for the thread running the callback");
            }
            Task t = new Task(call);
            synchronized (KpProducer.this) {
                if (closed) {
                    throw new IllegalStateException("Cannot perform operation after producer has been closed");
                }
                tasks.add(t);
            }
            return t.await();
        }
    }

    /** A kp error code with the message and flags the JNI glue kept on the thread that got it. */
    private static final class Outcome {
        final int rc;
        final String message;
        final int flags;

        Outcome(int rc) {
            this.rc = rc;
            this.message = rc == Native.KP_OK ? "" : Native.lastError();
            this.flags = rc == Native.KP_OK ? 0 : Native.lastErrorFlags();
        }
    }

    private final class Task extends CompletableFuture<Outcome> {
        private final ToIntFunction<ReportSink> call;

        Task(ToIntFunction<ReportSink> call) {
            this.call = call;
        }

        void run() {
            try {
                complete(new Outcome(call.applyAsInt(io)));
            } catch (Throwable t) {
                completeExceptionally(t);
            }
        }

        Outcome await() {
            boolean interrupted = false;
            try {
                while (true) {
                    try {
                        return get();
                    } catch (InterruptedException e) {
                        interrupted = true;
                    } catch (ExecutionException e) {
                        throw new KafkaException(e.getCause());
                    }
                }
            } finally {
                if (interrupted) {
                    Thread.currentThread().interrupt();
                }
            }
        }
    }

    // ---- flush, close ---------------------------------------------------

    /**
     * Sends every buffered record now and blocks until each record sent before
     * this call has completed (callback run, future done), as the Java producer.
     */
    @Override
    public void flush() {
        if (Thread.currentThread() == io) {
            throw new KafkaException("KafkaProducer.flush() invocation inside a callback is not permitted "
                    + "because it may lead to deadlock.");
        }
        List<RecordFuture> waitFor = inflight.snapshot();
        if (waitFor.isEmpty()) {
            return;
        }
        io.flushers.incrementAndGet();
        try {
            for (RecordFuture rf : waitFor) {
                try {
                    rf.await(); // errors went to the record's callback and future
                } catch (InterruptedException e) {
                    throw new InterruptException(e);
                }
            }
        } finally {
            io.flushers.decrementAndGet();
        }
    }

    @Override
    public void close() {
        close(Duration.ofMillis(Long.MAX_VALUE));
    }

    /**
     * Closes the producer: sends what is buffered and waits up to {@code timeout}
     * for every record's report; records still unreported then fail with "Producer
     * is closed forcefully.". Every accepted record gets exactly one callback.
     * Called from a callback, it does not wait (timeout 0), as the Java producer.
     */
    @Override
    public void close(Duration timeout) {
        long ms = Math.max(0, Math.min(Integer.MAX_VALUE, timeout.toMillis()));
        boolean fromCallback = Thread.currentThread() == io;
        synchronized (this) {
            if (!closed) {
                closed = true;
                io.closeTimeoutMs = fromCallback ? 0 : (int) ms;
            }
        }
        if (fromCallback) {
            log.warn("Overriding close timeout {} ms to 0 ms in order to prevent useless blocking due to "
                    + "self-join. This means you have incorrectly invoked close with a non-zero timeout "
                    + "from the producer call-back.", ms);
            return;
        }
        try {
            io.join();
        } catch (InterruptedException e) {
            throw new InterruptException(e);
        }
        for (ProducerInterceptor<K, V> i : interceptors) {
            Utils.closeQuietly(i, "producer interceptor");
        }
        Utils.closeQuietly(keySerializer, "producer keySerializer");
        Utils.closeQuietly(valueSerializer, "producer valueSerializer");
    }

    private static final class Destroyer implements Runnable {
        private final long handle;
        private final long logq;

        Destroyer(long handle, long logq) {
            this.handle = handle;
            this.logq = logq;
        }

        @Override
        public void run() {
            Native.producerDestroy(handle);
            Native.logQueueFree(logq);
        }
    }

    // ---- metadata -------------------------------------------------------

    /**
     * The topic's partitions with their leaders (waiting up to max.block.ms for
     * metadata). kp keeps only leaders: replicas and in-sync replicas are empty
     * arrays, and a leader's {@link Node} carries its id without host and port.
     */
    @Override
    public List<PartitionInfo> partitionsFor(String topic) {
        try {
            int[] leaders = Native.partitionsFor(handle, topic, maxBlockMs);
            if (leaders == null) {
                throw KpErrors.of(Native.lastErrorCode(), Native.lastError(), transactional);
            }
            List<PartitionInfo> out = new ArrayList<>(leaders.length);
            Node[] none = new Node[0];
            for (int i = 0; i < leaders.length; i++) {
                Node leader = leaders[i] < 0 ? null : new Node(leaders[i], "", -1);
                out.add(new PartitionInfo(topic, i, leader, none, none));
            }
            return out;
        } finally {
            Reference.reachabilityFence(this);
        }
    }

    // ---- metrics --------------------------------------------------------

    /** kp_metrics_t field order (kp.h). */
    private static final String[] KP_COUNTERS = {"records-delivered", "records-failed", "records-outstanding",
        "buffer-bytes-used", "buffer-bytes-limit", "produce-requests", "batches-sent", "batch-retries",
        "batch-bytes", "batch-bytes-uncompressed", "request-latency-us-sum", "request-latency-count",
        "request-latency-us-max", "throttled-responses", "throttle-time-ms-sum", "throttle-time-ms-max",
        "connections-opened", "connections-closed"};

    private final class KpMetric implements Metric {
        private final MetricName name;
        private final java.util.function.ToDoubleFunction<long[]> value;

        KpMetric(MetricName name, java.util.function.ToDoubleFunction<long[]> value) {
            this.name = name;
            this.value = value;
        }

        @Override
        public MetricName metricName() {
            return name;
        }

        @Override
        public Object metricValue() {
            long[] m = Native.metrics(handle);
            Reference.reachabilityFence(KpProducer.this);
            return m == null ? Double.NaN : value.applyAsDouble(m);
        }
    }

    private static int idx(String counter) {
        for (int i = 0; i < KP_COUNTERS.length; i++) {
            if (KP_COUNTERS[i].equals(counter)) {
                return i;
            }
        }
        throw new IllegalArgumentException(counter);
    }

    private static double ratio(long num, long den) {
        return den == 0 ? Double.NaN : (double) num / den;
    }

    /**
     * The Java producer's metrics (group "producer-metrics", tag client-id) for
     * which kp keeps the figure, plus kp's raw counters (group "kp-producer-metrics").
     */
    @Override
    public Map<MetricName, ? extends Metric> metrics() {
        Map<String, String> tags = Map.of("client-id", clientId);
        Map<MetricName, Metric> out = new LinkedHashMap<>();
        String g = "producer-metrics";
        int delivered = idx("records-delivered");
        int failed = idx("records-failed");
        int batches = idx("batches-sent");
        int bytes = idx("batch-bytes");
        int raw = idx("batch-bytes-uncompressed");
        int latSum = idx("request-latency-us-sum");
        int latCount = idx("request-latency-count");
        int latMax = idx("request-latency-us-max");
        int thrSum = idx("throttle-time-ms-sum");
        int thrMax = idx("throttle-time-ms-max");
        int used = idx("buffer-bytes-used");
        int limit = idx("buffer-bytes-limit");
        int opened = idx("connections-opened");
        int closedConns = idx("connections-closed");
        Object[][] java = {
            {"record-send-total", "The total number of records sent.", (java.util.function.ToDoubleFunction<long[]>) m -> m[delivered]},
            {"record-error-total", "The total number of record sends that resulted in errors.",
                (java.util.function.ToDoubleFunction<long[]>) m -> m[failed]},
            {"batch-size-avg", "The average number of bytes sent per partition per-request.",
                (java.util.function.ToDoubleFunction<long[]>) m -> ratio(m[bytes], m[batches])},
            {"compression-rate-avg", "The average compression rate of record batches.",
                (java.util.function.ToDoubleFunction<long[]>) m -> ratio(m[bytes], m[raw])},
            {"request-latency-avg", "The average request latency in ms",
                (java.util.function.ToDoubleFunction<long[]>) m -> ratio(m[latSum], m[latCount]) / 1000.0},
            {"request-latency-max", "The maximum request latency in ms",
                (java.util.function.ToDoubleFunction<long[]>) m -> m[latMax] / 1000.0},
            {"produce-throttle-time-avg", "The average time in ms a request was throttled by a broker",
                (java.util.function.ToDoubleFunction<long[]>) m -> ratio(m[thrSum], m[latCount])},
            {"produce-throttle-time-max", "The maximum time in ms a request was throttled by a broker",
                (java.util.function.ToDoubleFunction<long[]>) m -> m[thrMax]},
            {"buffer-total-bytes", "The maximum amount of buffer memory the client can use (whether or not it is currently used).",
                (java.util.function.ToDoubleFunction<long[]>) m -> m[limit]},
            {"buffer-available-bytes", "The total amount of buffer memory that is not being used (either unallocated or in the free list).",
                (java.util.function.ToDoubleFunction<long[]>) m -> m[limit] - m[used]},
            {"connection-creation-total", "The total number of new connections established",
                (java.util.function.ToDoubleFunction<long[]>) m -> m[opened]},
            {"connection-close-total", "The total number of connections closed",
                (java.util.function.ToDoubleFunction<long[]>) m -> m[closedConns]},
        };
        for (Object[] d : java) {
            @SuppressWarnings("unchecked")
            java.util.function.ToDoubleFunction<long[]> f = (java.util.function.ToDoubleFunction<long[]>) d[2];
            MetricName n = new MetricName((String) d[0], g, (String) d[1], tags);
            out.put(n, new KpMetric(n, f));
        }
        for (int i = 0; i < KP_COUNTERS.length; i++) {
            int k = i;
            MetricName n = new MetricName(KP_COUNTERS[i], "kp-producer-metrics", "kp_metrics_t." + KP_COUNTERS[i], tags);
            out.put(n, new KpMetric(n, m -> k < m.length ? m[k] : Double.NaN));
        }
        return Collections.unmodifiableMap(out);
    }

    /** No client telemetry (KIP-714) in kp: nothing to subscribe to, as with enable.metrics.push=false. */
    @Override
    public void registerMetricForSubscription(KafkaMetric metric) {
        log.debug("kp: no client telemetry; {} not registered", metric.metricName());
    }

    @Override
    public void unregisterMetricFromSubscription(KafkaMetric metric) {
        log.debug("kp: no client telemetry; {} not unregistered", metric.metricName());
    }

    @Override
    public Uuid clientInstanceId(Duration timeout) {
        throw new IllegalStateException("Telemetry is not enabled. Set config `enable.metrics.push` to `true`.");
    }

    // ---- transactions ---------------------------------------------------

    private void throwTxn(int rc) {
        throwTxn(new Outcome(rc));
    }

    private void throwTxn(Outcome o) {
        if (o.rc == Native.KP_OK) {
            return;
        }
        String msg = o.message;
        int flags = o.flags;
        RuntimeException e = o.rc == KpErrors.FATAL ? reportException(o.rc) : KpErrors.of(o.rc, msg, transactional);
        if (e instanceof ProducerFencedException || e instanceof ApiException
                || e instanceof IllegalStateException || (flags & Native.FLAG_ABORTABLE) == 0) {
            throw e;
        }
        throw new KafkaException("The transaction must be aborted: " + msg, e);
    }

    private void requireTransactional() {
        if (!transactional) {
            throw new IllegalStateException("Transactional method invoked on a non-transactional producer.");
        }
    }

    @Override
    public void initTransactions() {
        requireTransactional();
        try {
            throwTxn(Native.initTransactions(handle, maxBlockMs));
        } finally {
            Reference.reachabilityFence(this);
        }
    }

    @Override
    public void beginTransaction() throws ProducerFencedException {
        requireTransactional();
        try {
            throwTxn(Native.beginTransaction(handle));
        } finally {
            Reference.reachabilityFence(this);
        }
    }

    /**
     * Adds the consumer's offsets to the transaction. kp sends them with the group
     * id; the generation and member id of {@code groupMetadata} are not checked
     * by the coordinator (as with the pre-KIP-447 form).
     */
    @Override
    public void sendOffsetsToTransaction(Map<TopicPartition, OffsetAndMetadata> offsets,
            ConsumerGroupMetadata groupMetadata) throws ProducerFencedException {
        requireTransactional();
        if (groupMetadata == null) {
            throw new IllegalArgumentException("Consumer group metadata could not be null");
        }
        int n = offsets.size();
        String[] topics = new String[n];
        int[] partitions = new int[n];
        long[] offs = new long[n];
        int i = 0;
        for (Map.Entry<TopicPartition, OffsetAndMetadata> e : offsets.entrySet()) {
            topics[i] = e.getKey().topic();
            partitions[i] = e.getKey().partition();
            offs[i] = e.getValue().offset();
            i++;
        }
        try {
            throwTxn(Native.sendOffsetsToTransaction(handle, topics, partitions, offs, groupMetadata.groupId(),
                    maxBlockMs));
        } finally {
            Reference.reachabilityFence(this);
        }
    }

    @Override
    public void commitTransaction() throws ProducerFencedException {
        requireTransactional();
        throwTxn(io.call(sink -> Native.commitTransaction(handle, maxBlockMs, sink)));
    }

    @Override
    public void abortTransaction() throws ProducerFencedException {
        requireTransactional();
        throwTxn(io.call(sink -> Native.abortTransaction(handle, maxBlockMs, sink)));
    }
}
