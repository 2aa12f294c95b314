package dev.kp;

import static dev.kp.ProducerTest.b;
import static dev.kp.ProducerTest.kp;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicReferenceArray;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.producer.Producer;
import org.apache.kafka.clients.producer.ProducerInterceptor;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.header.Headers;
import org.apache.kafka.common.header.internals.RecordHeaders;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * The future send() returns (the binding's own, built lazily from the report),
 * the two ways a record crosses into kp (the thread's native send buffer; the
 * per-array path for headers and large records) and the headers kept for
 * interceptors.
 */
@Tag("quick")
@Timeout(value = 90, unit = TimeUnit.SECONDS)
class FutureTest {

    @Test
    void futureBlocksUntilItsReportThenMatchesTheCallbacksMetadata() throws Exception {
        String topic = Cluster.topic("future", 2);
        int n = 4;
        List<Future<RecordMetadata>> futures = new ArrayList<>();
        AtomicReferenceArray<RecordMetadata> fromCallback = new AtomicReferenceArray<>(n);
        // linger.ms=60000: nothing is sent before flush()
        try (Producer<byte[], byte[]> p = kp(Map.of("linger.ms", 60_000))) {
            for (int i = 0; i < n; i++) {
                int idx = i;
                byte[] key = i == 0 ? null : b("key-" + i);
                futures.add(p.send(new ProducerRecord<>(topic, key, b("value-" + i)),
                        (md, e) -> fromCallback.set(idx, md)));
            }
            Future<RecordMetadata> first = futures.get(0);
            assertFalse(first.isDone());
            assertThrows(TimeoutException.class, () -> first.get(200, TimeUnit.MILLISECONDS));
            assertThrows(TimeoutException.class, () -> first.get(0, TimeUnit.MILLISECONDS));
            assertFalse(first.cancel(true), "a sent record cannot be cancelled");
            assertFalse(first.isCancelled());
            // several threads wait on the same futures while the record is in flight
            List<Thread> waiters = new ArrayList<>();
            AtomicReferenceArray<Object> got = new AtomicReferenceArray<>(2 * n);
            for (int w = 0; w < 2; w++) {
                int base = w * n;
                Thread t = new Thread(() -> {
                    for (int i = 0; i < n; i++) {
                        try {
                            got.set(base + i, futures.get(i).get());
                        } catch (InterruptedException | ExecutionException e) {
                            got.set(base + i, e);
                        }
                    }
                });
                waiters.add(t);
                t.start();
            }
            Thread.sleep(300);
            for (Thread t : waiters) {
                assertTrue(t.isAlive(), "get() returned before the record was sent");
            }
            p.flush();
            for (Thread t : waiters) {
                t.join(30_000);
                assertFalse(t.isAlive(), "get() still waiting after flush()");
            }
            for (int i = 0; i < n; i++) {
                assertTrue(futures.get(i).isDone());
                RecordMetadata cb = fromCallback.get(i);
                assertNotNull(cb, "callback of record " + i);
                for (int w = 0; w < 2; w++) {
                    Object o = got.get(w * n + i);
                    assertTrue(o instanceof RecordMetadata, "waiter " + w + " record " + i + ": " + o);
                    RecordMetadata md = (RecordMetadata) o;
                    assertEquals(cb.topic(), md.topic());
                    assertEquals(cb.partition(), md.partition());
                    assertEquals(cb.offset(), md.offset());
                    assertEquals(cb.timestamp(), md.timestamp());
                    assertEquals(cb.serializedKeySize(), md.serializedKeySize());
                    assertEquals(cb.serializedValueSize(), md.serializedValueSize());
                }
                assertTrue(cb.offset() >= 0);
                assertEquals(i == 0 ? -1 : ("key-" + i).length(), cb.serializedKeySize());
                assertEquals(("value-" + i).length(), cb.serializedValueSize());
                // a done future answers at once, with or without a timeout
                assertEquals(cb.offset(), futures.get(i).get(0, TimeUnit.MILLISECONDS).offset());
            }
        }
    }

    @Test
    void recordsOfEverySizeAroundTheSendBufferAreReadBackIntact() throws Exception {
        String topic = Cluster.topic("sizes", 1);
        int limit = SendBuffer.SIZE - (topic.getBytes(StandardCharsets.UTF_8).length + 1);
        byte[] key = b("k");
        // values that make topic + NUL + key + value fill the buffer exactly, or overflow it by one
        int[] sizes = {0, 1, 100, limit - key.length - 1, limit - key.length, limit - key.length + 1, 200_000};
        List<ProducerRecord<byte[], byte[]>> sent = new ArrayList<>();
        for (int s : sizes) {
            byte[] v = new byte[s];
            for (int i = 0; i < s; i++) {
                v[i] = (byte) (31 * i + s);
            }
            sent.add(new ProducerRecord<>(topic, key, v));
            sent.add(new ProducerRecord<>(topic, null, v));
            sent.add(new ProducerRecord<>(topic, new byte[0], v));
            Headers h = new RecordHeaders();
            h.add("h", b("size-" + s));
            sent.add(new ProducerRecord<>(topic, null, null, key, v, h));
        }
        sent.add(new ProducerRecord<>(topic, key, null));
        sent.add(new ProducerRecord<>(topic, null, null));
        try (Producer<byte[], byte[]> p = kp(Map.of())) {
            List<Future<RecordMetadata>> fs = new ArrayList<>();
            for (ProducerRecord<byte[], byte[]> r : sent) {
                fs.add(p.send(r));
            }
            for (Future<RecordMetadata> f : fs) {
                f.get(30, TimeUnit.SECONDS);
            }
        }
        List<ConsumerRecord<byte[], byte[]>> back = Cluster.readAll(topic, false);
        assertEquals(sent.size(), back.size());
        for (int i = 0; i < sent.size(); i++) {
            ProducerRecord<byte[], byte[]> s = sent.get(i);
            ConsumerRecord<byte[], byte[]> c = back.get(i);
            String what = "record " + i;
            if (s.key() == null) {
                assertNull(c.key(), what);
            } else {
                assertArrayEquals(s.key(), c.key(), what);
            }
            if (s.value() == null) {
                assertNull(c.value(), what);
            } else {
                assertArrayEquals(s.value(), c.value(), what + " (" + s.value().length + " bytes)");
            }
            assertEquals(Arrays.toString(s.headers().toArray()), Arrays.toString(c.headers().toArray()), what);
        }
    }

    /** Keeps the headers each acknowledgement came with. */
    public static final class HeaderInterceptor implements ProducerInterceptor<byte[], byte[]> {
        static final List<String> ACKED = java.util.Collections.synchronizedList(new ArrayList<>());

        @Override
        public ProducerRecord<byte[], byte[]> onSend(ProducerRecord<byte[], byte[]> r) {
            return r;
        }

        @Override
        public void onAcknowledgement(RecordMetadata md, Exception e) {
            throw new AssertionError("the three-argument form is the one called");
        }

        @Override
        public void onAcknowledgement(RecordMetadata md, Exception e, Headers headers) {
            StringBuilder sb = new StringBuilder(e == null ? "ok" : e.getClass().getSimpleName());
            for (Header h : headers) {
                sb.append(' ').append(h.key()).append('=')
                        .append(h.value() == null ? "null" : new String(h.value(), StandardCharsets.UTF_8));
            }
            ACKED.add(sb.toString());
        }

        @Override
        public void close() {}

        @Override
        public void configure(Map<String, ?> configs) {}
    }

    @Test
    void interceptorsGetEachRecordsHeadersWithItsAcknowledgement() throws Exception {
        String topic = Cluster.topic("ack-headers", 1);
        HeaderInterceptor.ACKED.clear();
        try (Producer<byte[], byte[]> p = kp(Map.of("interceptor.classes", HeaderInterceptor.class.getName()))) {
            for (int i = 0; i < 3; i++) {
                Headers h = new RecordHeaders();
                h.add("n", b("" + i));
                if (i == 2) {
                    h.add("empty", null);
                }
                p.send(new ProducerRecord<>(topic, null, null, b("k"), b("v" + i), h));
            }
            p.send(new ProducerRecord<>(topic, b("no headers")));
            p.flush();
        }
        assertEquals(List.of("ok n=0", "ok n=1", "ok n=2 empty=null", "ok"), HeaderInterceptor.ACKED);
    }
}
