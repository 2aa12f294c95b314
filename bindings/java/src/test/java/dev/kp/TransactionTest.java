package dev.kp;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.apache.kafka.clients.admin.TransactionState;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.Producer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.ProducerFencedException;
import org.apache.kafka.common.serialization.StringSerializer;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

@Tag("txn")
@Timeout(value = 90, unit = TimeUnit.SECONDS)
class TransactionTest {

    private static Producer<String, String> txnProducer(String txnId) {
        Map<String, Object> c = Cluster.producerConfig();
        c.put("transactional.id", txnId);
        return new KpProducer<>(c, new StringSerializer(), new StringSerializer());
    }

    private static List<String> committedValues(String topic) {
        List<String> out = new ArrayList<>();
        for (ConsumerRecord<byte[], byte[]> r : Cluster.readAll(topic, true)) {
            out.add(new String(r.value(), StandardCharsets.UTF_8));
        }
        return out;
    }

    @Test
    void committedRecordsAreVisibleAndAbortedOnesAreNot() throws Exception {
        String topic = Cluster.topic("txn", 2);
        AtomicInteger callbacks = new AtomicInteger();
        try (Producer<String, String> p = txnProducer(Cluster.unique("txn-commit-abort"))) {
            p.initTransactions();
            p.beginTransaction();
            for (int i = 0; i < 10; i++) {
                p.send(new ProducerRecord<>(topic, "k" + i, "committed-" + i), (md, e) -> callbacks.incrementAndGet());
            }
            p.commitTransaction();
            assertEquals(10, callbacks.get(), "commit returns after every record's callback");

            p.beginTransaction();
            for (int i = 0; i < 10; i++) {
                p.send(new ProducerRecord<>(topic, "k" + i, "aborted-" + i), (md, e) -> callbacks.incrementAndGet());
            }
            p.flush();
            p.abortTransaction();

            p.beginTransaction();
            p.send(new ProducerRecord<>(topic, "k", "last"));
            p.commitTransaction();
        }
        assertEquals(20, callbacks.get());
        List<String> seen = committedValues(topic);
        seen.sort(null);
        List<String> want = new ArrayList<>();
        for (int i = 0; i < 10; i++) {
            want.add("committed-" + i);
        }
        want.add("last");
        want.sort(null);
        assertEquals(want, seen, "read_committed sees the committed records only");
        // the aborted ones are in the log, hidden by the abort marker
        long all = Cluster.readAll(topic, false).stream()
                .filter(r -> new String(r.value(), StandardCharsets.UTF_8).startsWith("aborted-")).count();
        assertEquals(10, all);
    }

    @Test
    void sendOffsetsToTransactionMovesTheGroupsOffsetsOnCommitOnly() throws Exception {
        String in = Cluster.topic("txn-in", 1);
        String out = Cluster.topic("txn-out", 1);
        String group = Cluster.unique("txn-group");
        TopicPartition inTp = new TopicPartition(in, 0);
        try (Producer<String, String> seed = new KpProducer<>(Cluster.producerConfig(), new StringSerializer(),
                new StringSerializer())) {
            for (int i = 0; i < 20; i++) {
                seed.send(new ProducerRecord<>(in, "k" + i, "in-" + i));
            }
        }
        String txnId = Cluster.unique("txn-offsets");
        try (KafkaConsumer<byte[], byte[]> consumer = Cluster.consumer(true, group);
                Producer<String, String> p = txnProducer(txnId)) {
            consumer.subscribe(List.of(in));
            List<ConsumerRecord<byte[], byte[]>> got = new ArrayList<>();
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(45);
            while (got.size() < 20 && System.nanoTime() < deadline) {
                ConsumerRecords<byte[], byte[]> rs = consumer.poll(Duration.ofMillis(200));
                rs.forEach(got::add);
            }
            assertEquals(20, got.size());
            p.initTransactions();

            // commit: the group's offset moves to the one given
            p.beginTransaction();
            for (ConsumerRecord<byte[], byte[]> r : got.subList(0, 10)) {
                p.send(new ProducerRecord<>(out, "x", "out-" + new String(r.value(), StandardCharsets.UTF_8)));
            }
            p.sendOffsetsToTransaction(Map.of(inTp, new OffsetAndMetadata(10)), consumer.groupMetadata());
            p.commitTransaction();
            awaitState(txnId, TransactionState.COMPLETE_COMMIT);
            assertEquals(10L, committedOffset(group, inTp));

            // abort: it does not move
            p.beginTransaction();
            p.send(new ProducerRecord<>(out, "x", "aborted"));
            p.sendOffsetsToTransaction(Map.of(inTp, new OffsetAndMetadata(15)), consumer.groupMetadata());
            p.abortTransaction();
            awaitState(txnId, TransactionState.COMPLETE_ABORT);
            assertEquals(10L, committedOffset(group, inTp));

            p.beginTransaction();
            for (ConsumerRecord<byte[], byte[]> r : got.subList(10, 20)) {
                p.send(new ProducerRecord<>(out, "x", "out-" + new String(r.value(), StandardCharsets.UTF_8)));
            }
            p.sendOffsetsToTransaction(Map.of(inTp, new OffsetAndMetadata(20)), consumer.groupMetadata());
            p.commitTransaction();
            awaitState(txnId, TransactionState.COMPLETE_COMMIT);
            assertEquals(20L, committedOffset(group, inTp));
        }
        assertEquals(20, committedValues(out).size());
    }

    /** Waits until the coordinator has written the transaction's markers (offsets are applied then). */
    private static void awaitState(String txnId, TransactionState want) throws Exception {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
        TransactionState state;
        do {
            state = Cluster.admin().describeTransactions(List.of(txnId)).description(txnId).get(30, TimeUnit.SECONDS)
                    .state();
            if (state == want) {
                return;
            }
            Thread.onSpinWait();
        } while (System.nanoTime() < deadline);
        assertEquals(want, state, "transaction " + txnId);
    }

    private static Long committedOffset(String group, TopicPartition tp) throws Exception {
        Map<TopicPartition, OffsetAndMetadata> m = Cluster.admin().listConsumerGroupOffsets(group)
                .partitionsToOffsetAndMetadata().get(30, TimeUnit.SECONDS);
        OffsetAndMetadata o = m.get(tp);
        return o == null ? null : o.offset();
    }

    @Test
    void aNewerProducerWithTheSameTransactionalIdFencesTheOlder() throws Exception {
        String topic = Cluster.topic("txn-fence", 1);
        String id = Cluster.unique("txn-fence");
        Producer<String, String> old = txnProducer(id);
        try {
            old.initTransactions();
            old.beginTransaction();
            old.send(new ProducerRecord<>(topic, "k", "old-1")).get(30, TimeUnit.SECONDS);
            try (Producer<String, String> newer = txnProducer(id)) {
                newer.initTransactions(); // fences `old` and aborts its open transaction
                newer.beginTransaction();
                newer.send(new ProducerRecord<>(topic, "k", "new-1"));
                newer.commitTransaction();
            }
            // the old producer learns it was fenced: its send fails, then commit
            ExecutionException ee = assertThrows(ExecutionException.class,
                    () -> old.send(new ProducerRecord<>(topic, "k", "old-2")).get(30, TimeUnit.SECONDS));
            assertInstanceOf(ProducerFencedException.class, ee.getCause());
            assertThrows(ProducerFencedException.class, old::commitTransaction);
        } finally {
            old.close(Duration.ofSeconds(10));
        }
        assertEquals(List.of("new-1"), committedValues(topic));
    }
}
