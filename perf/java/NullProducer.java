// NullProducer: a Producer that sends nothing, for measuring what JavaPerf and the
// JVM cost without any Kafka client (the floor under every Java producer's figures):
//
//   BENCH_JAVA_PRODUCER=NullProducer perf/java-perf.sh --bootstrap X --topic T ... (same flags as the others)
//
// It connects nowhere. send() serializes key and value with the given serializers,
// runs the callback at once on the calling thread with one shared RecordMetadata and
// returns one shared completed future, so it allocates nothing per record itself.
// Its constructor logs one line through SLF4J, as every producer does at start-up,
// so the logging framework is initialized as in the other runs.
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.Future;
import org.apache.kafka.clients.consumer.ConsumerGroupMetadata;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.Callback;
import org.apache.kafka.clients.producer.Producer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.Metric;
import org.apache.kafka.common.MetricName;
import org.apache.kafka.common.PartitionInfo;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.Uuid;
import org.apache.kafka.common.metrics.KafkaMetric;
import org.apache.kafka.common.serialization.Serializer;
import org.slf4j.LoggerFactory;

public final class NullProducer<K, V> implements Producer<K, V> {
    private static final RecordMetadata SENT = new RecordMetadata(new TopicPartition("null", 0), 0, 0, 0, -1, -1);
    private static final CompletableFuture<RecordMetadata> DONE = CompletableFuture.completedFuture(SENT);
    private final Serializer<K> keySerializer;
    private final Serializer<V> valueSerializer;
    /** Bytes serialized, so the JIT keeps the serializer calls. */
    private long bytes;

    public NullProducer(Properties props, Serializer<K> keySerializer, Serializer<V> valueSerializer) {
        this.keySerializer = keySerializer;
        this.valueSerializer = valueSerializer;
        LoggerFactory.getLogger(NullProducer.class).info("NullProducer: records are dropped");
    }

    @Override
    public Future<RecordMetadata> send(ProducerRecord<K, V> record) {
        return send(record, null);
    }

    @Override
    public Future<RecordMetadata> send(ProducerRecord<K, V> record, Callback callback) {
        byte[] k = keySerializer.serialize(record.topic(), record.headers(), record.key());
        byte[] v = valueSerializer.serialize(record.topic(), record.headers(), record.value());
        bytes += (k == null ? 0 : k.length) + (v == null ? 0 : v.length);
        if (callback != null) {
            callback.onCompletion(SENT, null);
        }
        return DONE;
    }

    @Override
    public void flush() {}

    @Override
    public List<PartitionInfo> partitionsFor(String topic) {
        return List.of();
    }

    @Override
    public Map<MetricName, ? extends Metric> metrics() {
        return Map.of();
    }

    @Override
    public void close() {
        close(Duration.ZERO);
    }

    @Override
    public void close(Duration timeout) {
        if (bytes < 0) {
            throw new IllegalStateException();
        }
    }

    @Override
    public void initTransactions() {}

    @Override
    public void beginTransaction() {}

    @Override
    public void sendOffsetsToTransaction(Map<TopicPartition, OffsetAndMetadata> offsets, ConsumerGroupMetadata group) {}

    @Override
    public void commitTransaction() {}

    @Override
    public void abortTransaction() {}

    @Override
    public void registerMetricForSubscription(KafkaMetric metric) {}

    @Override
    public void unregisterMetricFromSubscription(KafkaMetric metric) {}

    @Override
    public Uuid clientInstanceId(Duration timeout) {
        throw new IllegalStateException("NullProducer has no client instance id");
    }
}
