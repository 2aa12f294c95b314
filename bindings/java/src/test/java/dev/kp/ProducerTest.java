package dev.kp;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicIntegerArray;
import java.util.concurrent.atomic.AtomicReference;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.Producer;
import org.apache.kafka.clients.producer.ProducerInterceptor;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.KafkaException;
import org.apache.kafka.common.Metric;
import org.apache.kafka.common.MetricName;
import org.apache.kafka.common.PartitionInfo;
import org.apache.kafka.common.errors.InvalidTopicException;
import org.apache.kafka.common.errors.RecordTooLargeException;
import org.apache.kafka.common.errors.TimeoutException;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.header.Headers;
import org.apache.kafka.common.header.internals.RecordHeaders;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.apache.kafka.common.serialization.StringSerializer;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

@Tag("quick")
@Timeout(value = 90, unit = TimeUnit.SECONDS)
class ProducerTest {

    static Producer<byte[], byte[]> kp(Map<String, Object> extra) {
        Map<String, Object> c = Cluster.producerConfig();
        c.putAll(extra);
        return new KpProducer<>(c, new ByteArraySerializer(), new ByteArraySerializer());
    }

    private static Producer<byte[], byte[]> java(Map<String, Object> extra) {
        Map<String, Object> c = Cluster.producerConfig();
        c.putAll(extra);
        return new KafkaProducer<>(c, new ByteArraySerializer(), new ByteArraySerializer());
    }

    static byte[] b(String s) {
        return s.getBytes(StandardCharsets.UTF_8);
    }

    @Test
    void sendWithCallbackAndFutureIsReadBackByteIdenticalByTheJavaConsumer() throws Exception {
        String topic = Cluster.topic("roundtrip", 3);
        int n = 60;
        long base = System.currentTimeMillis() - 3_600_000L;
        List<ProducerRecord<byte[], byte[]>> sent = new ArrayList<>();
        List<Future<RecordMetadata>> futures = new ArrayList<>();
        Map<Integer, RecordMetadata> fromCallback = new ConcurrentHashMap<>();
        AtomicInteger callbacks = new AtomicInteger();
        try (Producer<byte[], byte[]> p = kp(Map.of())) {
            for (int i = 0; i < n; i++) {
                byte[] key = i % 7 == 0 ? null : b("key-" + (i % 11));
                byte[] value = i % 13 == 5 ? null : (i % 13 == 6 ? new byte[0] : b("value-" + i + "-\u00e9\u4e2d"));
                Headers hs = new RecordHeaders();
                if (i % 3 != 0) {
                    hs.add("trace", b("t-" + i));
                    hs.add("trace", new byte[] {0, (byte) 0xff, 7}); // repeated name, binary value
                    hs.add("n\u00fcll", null);
                    hs.add("empty", new byte[0]);
                }
                Long ts = i % 4 == 0 ? null : base + i;
                Integer partition = i % 10 == 9 ? 2 : null;
                ProducerRecord<byte[], byte[]> r = new ProducerRecord<>(topic, partition, ts, key, value, hs);
                sent.add(r);
                int idx = i;
                if (i % 2 == 0) {
                    futures.add(p.send(r, (md, e) -> {
                        assertNull(e);
                        callbacks.incrementAndGet();
                        fromCallback.put(idx, md);
                    }));
                } else {
                    futures.add(p.send(r));
                }
            }
            for (int i = 0; i < n; i++) {
                RecordMetadata md = futures.get(i).get(30, TimeUnit.SECONDS);
                assertEquals(topic, md.topic());
                assertTrue(md.hasOffset() && md.offset() >= 0, "offset of record " + i);
                if (sent.get(i).partition() != null) {
                    assertEquals(2, md.partition());
                }
                if (sent.get(i).timestamp() != null) {
                    assertEquals(sent.get(i).timestamp().longValue(), md.timestamp());
                }
                byte[] k = sent.get(i).key();
                assertEquals(k == null ? -1 : k.length, md.serializedKeySize());
                if (i % 2 == 0) {
                    RecordMetadata cb = fromCallback.get(i);
                    assertNotNull(cb, "callback of record " + i);
                    assertEquals(md.offset(), cb.offset());
                    assertEquals(md.partition(), cb.partition());
                }
            }
            assertEquals(n / 2, callbacks.get());
        }
        List<ConsumerRecord<byte[], byte[]>> got = Cluster.readAll(topic, false);
        assertEquals(n, got.size());
        Map<String, ConsumerRecord<byte[], byte[]>> byPos = new HashMap<>();
        got.forEach(c -> byPos.put(c.partition() + "/" + c.offset(), c));
        for (int i = 0; i < n; i++) {
            RecordMetadata md = futures.get(i).get();
            ConsumerRecord<byte[], byte[]> c = byPos.get(md.partition() + "/" + md.offset());
            ProducerRecord<byte[], byte[]> s = sent.get(i);
            assertNotNull(c, "record " + i + " at " + md);
            assertArrayEquals(s.key(), c.key(), "key " + i);
            assertArrayEquals(s.value(), c.value(), "value " + i);
            assertEquals(md.timestamp(), c.timestamp(), "timestamp " + i);
            if (s.timestamp() != null) {
                assertEquals(s.timestamp().longValue(), c.timestamp());
            }
            Header[] sh = s.headers().toArray();
            Header[] ch = c.headers().toArray();
            assertEquals(sh.length, ch.length, "header count " + i);
            for (int h = 0; h < sh.length; h++) {
                assertEquals(sh[h].key(), ch[h].key());
                assertArrayEquals(sh[h].value(), ch[h].value(), "header " + sh[h].key() + " of record " + i);
            }
        }
    }

    @Test
    void keysArePlacedOnTheSamePartitionsAsByKafkaProducer() throws Exception {
        String topic = Cluster.topic("placement", 7);
        int n = 300;
        List<Future<RecordMetadata>> viaKp = new ArrayList<>();
        List<Future<RecordMetadata>> viaJava = new ArrayList<>();
        try (Producer<byte[], byte[]> p = kp(Map.of()); Producer<byte[], byte[]> j = java(Map.of())) {
            for (int i = 0; i < n; i++) {
                byte[] key = b("user-" + i * 7919);
                viaKp.add(p.send(new ProducerRecord<>(topic, key, b("kp"))));
                viaJava.add(j.send(new ProducerRecord<>(topic, key, b("java"))));
            }
            java.util.Set<Integer> used = new java.util.HashSet<>();
            for (int i = 0; i < n; i++) {
                int kpPart = viaKp.get(i).get(30, TimeUnit.SECONDS).partition();
                assertEquals(viaJava.get(i).get(30, TimeUnit.SECONDS).partition(), kpPart, "partition of key " + i);
                used.add(kpPart);
            }
            assertEquals(7, used.size(), "300 keys spread over all 7 partitions");
        }
        // and the broker has them where both producers said
        Map<String, Integer> where = new HashMap<>();
        for (ConsumerRecord<byte[], byte[]> c : Cluster.readAll(topic, false)) {
            String k = new String(c.key(), StandardCharsets.UTF_8) + "/" + new String(c.value(), StandardCharsets.UTF_8);
            where.put(k, c.partition());
        }
        for (int i = 0; i < n; i++) {
            String key = "user-" + i * 7919;
            assertEquals(where.get(key + "/java"), where.get(key + "/kp"), key);
        }
    }

    /** The exception class each producer gives for the same record, through the future and the callback. */
    private static Class<?> failureOf(Producer<byte[], byte[]> p, ProducerRecord<byte[], byte[]> r) throws Exception {
        AtomicReference<Exception> viaCallback = new AtomicReference<>();
        CountDownLatchLike done = new CountDownLatchLike();
        Future<RecordMetadata> f = p.send(r, (md, e) -> {
            viaCallback.set(e);
            done.done();
        });
        ExecutionException ee = assertThrows(ExecutionException.class, () -> f.get(30, TimeUnit.SECONDS));
        done.await();
        assertNotNull(viaCallback.get());
        assertEquals(ee.getCause().getClass(), viaCallback.get().getClass());
        return ee.getCause().getClass();
    }

    private static final class CountDownLatchLike {
        private final java.util.concurrent.CountDownLatch latch = new java.util.concurrent.CountDownLatch(1);

        void done() {
            latch.countDown();
        }

        void await() throws InterruptedException {
            assertTrue(latch.await(30, TimeUnit.SECONDS), "callback ran");
        }
    }

    @Test
    void errorsAreTheJavaProducersExceptions() throws Exception {
        String topic = Cluster.topic("errors", 1);
        // kp never blocks send() for metadata: a topic that does not show up fails
        // after delivery.timeout.ms (the Java producer: after max.block.ms)
        Map<String, Object> cfg = Map.of("max.block.ms", 3000, "delivery.timeout.ms", 3000,
                "request.timeout.ms", 2000, "linger.ms", 0);
        try (Producer<byte[], byte[]> p = kp(cfg); Producer<byte[], byte[]> j = java(cfg)) {
            ProducerRecord<byte[], byte[]> tooLarge = new ProducerRecord<>(topic, new byte[2 * 1024 * 1024]);
            assertEquals(RecordTooLargeException.class, failureOf(p, tooLarge));
            assertEquals(RecordTooLargeException.class, failureOf(j, tooLarge), "as KafkaProducer");

            ProducerRecord<byte[], byte[]> badName = new ProducerRecord<>("bad topic name!", b("v"));
            assertEquals(InvalidTopicException.class, failureOf(p, badName));
            assertEquals(InvalidTopicException.class, failureOf(j, badName), "as KafkaProducer");

            // auto.create.topics.enable=false on the test bed: the topic never shows up in metadata
            ProducerRecord<byte[], byte[]> missing = new ProducerRecord<>(Cluster.unique("java-missing"), b("v"));
            assertEquals(TimeoutException.class, failureOf(p, missing));
            assertEquals(TimeoutException.class, failureOf(j, missing), "as KafkaProducer");

            // still usable afterwards
            assertTrue(p.send(new ProducerRecord<>(topic, b("ok"))).get(30, TimeUnit.SECONDS).offset() >= 0);
        }
    }

    @Test
    void flushAndCloseGiveEveryQueuedRecordExactlyOneCallback() throws Exception {
        String topic = Cluster.topic("flush-close", 3);
        int n = 2000;
        Map<String, Object> cfg = Map.of("linger.ms", 60_000, "batch.size", 1_000_000);
        AtomicIntegerArray calls = new AtomicIntegerArray(3 * n);
        AtomicInteger errors = new AtomicInteger();
        // flush: sends at once despite linger.ms=60000 and returns after every callback
        Producer<byte[], byte[]> p = kp(cfg);
        for (int i = 0; i < n; i++) {
            int idx = i;
            p.send(new ProducerRecord<>(topic, b("k" + i), b("flush-" + i)), (md, e) -> {
                calls.incrementAndGet(idx);
                if (e != null) {
                    errors.incrementAndGet();
                }
            });
        }
        long t0 = System.nanoTime();
        p.flush();
        assertTrue(System.nanoTime() - t0 < TimeUnit.SECONDS.toNanos(30), "flush did not wait for linger.ms");
        for (int i = 0; i < n; i++) {
            assertEquals(1, calls.get(i), "callbacks of record " + i + " after flush");
        }
        // close with records queued: they are sent, each gets one callback
        for (int i = n; i < 2 * n; i++) {
            int idx = i;
            p.send(new ProducerRecord<>(topic, b("k" + i), b("close-" + i)), (md, e) -> {
                calls.incrementAndGet(idx);
                if (e != null) {
                    errors.incrementAndGet();
                }
            });
        }
        p.close(Duration.ofSeconds(30));
        for (int i = n; i < 2 * n; i++) {
            assertEquals(1, calls.get(i), "callbacks of record " + i + " after close");
        }
        assertEquals(0, errors.get());
        assertThrows(IllegalStateException.class, () -> p.send(new ProducerRecord<>(topic, b("late"))));
        assertEquals(2 * n, Cluster.readAll(topic, false).size());

        // close(0) with records queued: every record still gets exactly one callback,
        // the unsent ones with the Java producer's "closed forcefully" KafkaException
        Producer<byte[], byte[]> q = kp(cfg);
        AtomicInteger forced = new AtomicInteger();
        AtomicInteger delivered = new AtomicInteger();
        for (int i = 2 * n; i < 3 * n; i++) {
            int idx = i;
            q.send(new ProducerRecord<>(topic, b("k" + i), b("zero-" + i)), (md, e) -> {
                calls.incrementAndGet(idx);
                if (e != null) {
                    assertInstanceOf(KafkaException.class, e);
                    forced.incrementAndGet();
                } else {
                    delivered.incrementAndGet();
                }
            });
        }
        q.close(Duration.ZERO);
        for (int i = 2 * n; i < 3 * n; i++) {
            assertEquals(1, calls.get(i), "callbacks of record " + i + " after close(0)");
        }
        assertEquals(n, forced.get() + delivered.get());
        // a failed record may have been written (possibly persisted); a delivered one was
        assertTrue(Cluster.readAll(topic, false).size() >= 2 * n + delivered.get());
    }

    /** Records every call, as an application's interceptor would. */
    public static final class RecordingInterceptor implements ProducerInterceptor<String, String> {
        static final List<String> EVENTS = java.util.Collections.synchronizedList(new ArrayList<>());
        static final AtomicInteger CLOSED = new AtomicInteger();

        @Override
        public ProducerRecord<String, String> onSend(ProducerRecord<String, String> r) {
            EVENTS.add("send " + r.value());
            return new ProducerRecord<>(r.topic(), r.partition(), r.timestamp(), r.key(), r.value() + "+i", r.headers());
        }

        @Override
        public void onAcknowledgement(RecordMetadata md, Exception e) {
            EVENTS.add("ack " + (e == null ? md.offset() : e.getClass().getSimpleName()));
        }

        @Override
        public void close() {
            CLOSED.incrementAndGet();
        }

        @Override
        public void configure(Map<String, ?> configs) {
            EVENTS.add("configure " + configs.get("client.id"));
        }
    }

    @Test
    void serializerClassNamesAndInterceptorsFromProperties() throws Exception {
        String topic = Cluster.topic("props", 1);
        Properties props = new Properties();
        props.put("bootstrap.servers", Cluster.BOOTSTRAP);
        props.put("key.serializer", StringSerializer.class.getName());
        props.put("value.serializer", "org.apache.kafka.common.serialization.StringSerializer");
        props.put("interceptor.classes", RecordingInterceptor.class.getName());
        props.put("client.id", "props-test");
        props.put("acks", "all");
        props.put("compression.type", "lz4");
        RecordingInterceptor.EVENTS.clear();
        List<String> order = java.util.Collections.synchronizedList(new ArrayList<>());
        try (Producer<String, String> p = new KpProducer<>(props)) {
            for (int i = 0; i < 3; i++) {
                p.send(new ProducerRecord<>(topic, "k" + i, "v" + i), (md, e) -> order.add("ack-before-callback="
                        + RecordingInterceptor.EVENTS.contains("ack " + md.offset())));
            }
            p.flush();
            assertEquals(List.of("ack-before-callback=true", "ack-before-callback=true", "ack-before-callback=true"),
                    order);
        }
        assertEquals(1, RecordingInterceptor.CLOSED.get());
        List<String> ev = RecordingInterceptor.EVENTS;
        assertEquals("configure props-test", ev.get(0));
        assertEquals(List.of("send v0", "send v1", "send v2"), ev.subList(1, 4));
        List<String> values = new ArrayList<>();
        Cluster.readAll(topic, false).forEach(c -> values.add(new String(c.value(), StandardCharsets.UTF_8)));
        assertEquals(List.of("v0+i", "v1+i", "v2+i"), values);
    }

    @Test
    void partitionsForAndMetrics() throws Exception {
        String topic = Cluster.topic("meta", 4);
        try (Producer<byte[], byte[]> p = kp(Map.of("client.id", "metrics-test"))) {
            List<PartitionInfo> parts = p.partitionsFor(topic);
            assertEquals(4, parts.size());
            for (int i = 0; i < 4; i++) {
                assertEquals(i, parts.get(i).partition());
                assertNotNull(parts.get(i).leader());
            }
            for (int i = 0; i < 100; i++) {
                p.send(new ProducerRecord<>(topic, b("k" + i), new byte[100]));
            }
            p.flush();
            Map<String, Object> byName = new HashMap<>();
            for (Map.Entry<MetricName, ? extends Metric> e : p.metrics().entrySet()) {
                if (e.getKey().group().equals("producer-metrics")) {
                    assertEquals("metrics-test", e.getKey().tags().get("client-id"));
                    byName.put(e.getKey().name(), e.getValue().metricValue());
                }
            }
            assertEquals(100.0, byName.get("record-send-total"));
            assertEquals(0.0, byName.get("record-error-total"));
            assertTrue((Double) byName.get("batch-size-avg") > 100.0);
            assertTrue((Double) byName.get("request-latency-avg") > 0.0);
            assertEquals(33554432.0, byName.get("buffer-total-bytes"));
            assertFalse(byName.containsKey("no-such-metric"));
        }
    }

    @Test
    void callbacksRunOnTheProducersOwnThread() throws Exception {
        String topic = Cluster.topic("thread", 1);
        AtomicReference<String> thread = new AtomicReference<>();
        try (Producer<byte[], byte[]> p = kp(Map.of("client.id", "t1"))) {
            p.send(new ProducerRecord<>(topic, b("v")), (md, e) -> thread.set(Thread.currentThread().getName()))
                    .get(30, TimeUnit.SECONDS);
            assertEquals("kp-producer-io-t1", thread.get());
        }
    }

    @Test
    void manyThreadsSendingShareOneProducerAndEveryRecordGetsOneCallback() throws Exception {
        String topic = Cluster.topic("threads", 6);
        int threads = 4;
        int perThread = 20_000;
        AtomicIntegerArray calls = new AtomicIntegerArray(threads * perThread);
        AtomicInteger errors = new AtomicInteger();
        try (Producer<byte[], byte[]> p = kp(Map.of("linger.ms", 20))) {
            List<Thread> senders = new ArrayList<>();
            for (int t = 0; t < threads; t++) {
                int base = t * perThread;
                Thread th = new Thread(() -> {
                    for (int i = base; i < base + perThread; i++) {
                        int idx = i;
                        p.send(new ProducerRecord<>(topic, b("k" + (i % 97)), b("v" + i)), (md, e) -> {
                            calls.incrementAndGet(idx);
                            if (e != null) {
                                errors.incrementAndGet();
                            }
                        });
                    }
                });
                senders.add(th);
                th.start();
            }
            for (Thread th : senders) {
                th.join();
            }
            p.flush();
        }
        for (int i = 0; i < threads * perThread; i++) {
            assertEquals(1, calls.get(i), "callbacks of record " + i);
        }
        assertEquals(0, errors.get());
        assertEquals(threads * perThread, Cluster.readAll(topic, false).size());
    }
}
