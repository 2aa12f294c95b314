package dev.kp;

import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.UUID;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;

/** The real cluster of the test run (KP_BOOTSTRAP) and Kafka's own Java clients to check kp with. */
final class Cluster {
    static final String BOOTSTRAP = bootstrap();
    private static final String RUN = UUID.randomUUID().toString().substring(0, 8);
    private static Admin admin;

    private Cluster() {}

    private static String bootstrap() {
        String b = System.getenv("KP_BOOTSTRAP");
        if (b == null || b.isEmpty()) {
            throw new IllegalStateException("KP_BOOTSTRAP is not set: run the tests through run-tests.sh "
                    + "against a cluster started by testbed/kafka.sh");
        }
        return b;
    }

    static synchronized Admin admin() {
        if (admin == null) {
            Properties p = new Properties();
            p.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, BOOTSTRAP);
            admin = Admin.create(p);
        }
        return admin;
    }

    /** A new topic, unique to this run. */
    static String topic(String name, int partitions) throws Exception {
        String t = "java-" + name + "-" + RUN;
        short rf = (short) Math.min(3, admin().describeCluster().nodes().get(30, TimeUnit.SECONDS).size());
        admin().createTopics(List.of(new NewTopic(t, partitions, rf))).all().get(30, TimeUnit.SECONDS);
        return t;
    }

    static String unique(String name) {
        return name + "-" + RUN;
    }

    static Map<String, Object> producerConfig() {
        Map<String, Object> m = new HashMap<>();
        m.put("bootstrap.servers", BOOTSTRAP);
        return m;
    }

    static KafkaConsumer<byte[], byte[]> consumer(boolean readCommitted, String group) {
        Properties p = new Properties();
        p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, BOOTSTRAP);
        p.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        p.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, readCommitted ? "read_committed" : "read_uncommitted");
        if (group != null) {
            p.put(ConsumerConfig.GROUP_ID_CONFIG, group);
        }
        return new KafkaConsumer<>(p, new ByteArrayDeserializer(), new ByteArrayDeserializer());
    }

    /** Every record of the topic's partitions up to their end offsets, read by Kafka's Java consumer. */
    static List<ConsumerRecord<byte[], byte[]>> readAll(String topic, boolean readCommitted) {
        try (KafkaConsumer<byte[], byte[]> c = consumer(readCommitted, null)) {
            List<TopicPartition> tps = new ArrayList<>();
            c.partitionsFor(topic, Duration.ofSeconds(30)).forEach(pi -> tps.add(new TopicPartition(topic, pi.partition())));
            c.assign(tps);
            c.seekToBeginning(tps);
            Map<TopicPartition, Long> end = c.endOffsets(tps, Duration.ofSeconds(30));
            List<ConsumerRecord<byte[], byte[]>> out = new ArrayList<>();
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
            while (!caughtUp(c, end)) {
                assertTrue(System.nanoTime() < deadline, "the consumer did not reach the end offsets " + end);
                c.poll(Duration.ofMillis(200)).forEach(out::add);
            }
            return out;
        }
    }

    private static boolean caughtUp(KafkaConsumer<byte[], byte[]> c, Map<TopicPartition, Long> end) {
        for (Map.Entry<TopicPartition, Long> e : end.entrySet()) {
            if (c.position(e.getKey()) < e.getValue()) {
                return false;
            }
        }
        return true;
    }
}
