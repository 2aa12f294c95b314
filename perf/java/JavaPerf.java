// JavaPerf: the perf/kp-perf.c benchmark (same flags, same output) over the
// Kafka Java client, for what ProducerPerformance cannot do: keyed records
// (--keys N) and several application threads sharing one producer
// (--threads N). perf/java-perf.sh runs ProducerPerformance otherwise.
// Latency = send() call -> callback, in a log-linear histogram (as kp-perf).
import java.util.ArrayList;
import java.util.List;
import java.util.Properties;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicLongArray;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.Producer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.apache.kafka.common.serialization.Serializer;

public final class JavaPerf {
    static final int SUB_BITS = 7, SUB_COUNT = 1 << SUB_BITS, NBUCKETS = (64 - SUB_BITS + 1) * SUB_COUNT;
    static final AtomicLongArray hist = new AtomicLongArray(NBUCKETS);
    static final AtomicLong ok = new AtomicLong(), failed = new AtomicLong(), latSum = new AtomicLong(),
            latMax = new AtomicLong(), errorsPrinted = new AtomicLong();
    static final long T0 = System.nanoTime();

    static int bucketOf(long v) {
        if (v < SUB_COUNT) return (int) v;
        int msb = 63 - Long.numberOfLeadingZeros(v);
        int shift = msb - SUB_BITS;
        return ((shift + 1) << SUB_BITS) + (int) ((v >>> shift) - SUB_COUNT);
    }

    static double bucketMid(int idx) {
        if (idx < SUB_COUNT) return idx;
        int shift = (idx >> SUB_BITS) - 1;
        long low = (long) (SUB_COUNT + (idx & (SUB_COUNT - 1))) << shift;
        return low + (double) (1L << shift) / 2 - 0.5;
    }

    static double percentileMs(long total, double p) {
        if (total == 0) return 0;
        long rank = Math.max(1, (long) (p * total + 0.999999));
        long cum = 0;
        for (int i = 0; i < NBUCKETS; i++) {
            cum += hist.get(i);
            if (cum >= rank) return bucketMid(i) / 1e6;
        }
        return latMax.get() / 1e6;
    }

    static void usage(String msg) {
        System.err.println("JavaPerf: " + msg);
        System.exit(2);
    }

    public static void main(String[] args) throws Exception {
        String bootstrap = null, topic = null;
        long numRecords = -1, keys = 0;
        int recordSize = -1, threads = 1;
        double throughput = -1;
        Properties props = new Properties();
        for (int i = 0; i < args.length; i++) {
            String a = args[i], v = null;
            int eq = a.indexOf('=');
            if (a.startsWith("--") && eq > 0) { v = a.substring(eq + 1); a = a.substring(0, eq); }
            if (a.equals("--idempotence")) {
                if (v == null && i + 1 < args.length && (args[i + 1].equals("true") || args[i + 1].equals("false"))) v = args[++i];
                props.put("enable.idempotence", v == null ? "true" : v);
                continue;
            }
            if (v == null) {
                if (i + 1 >= args.length) usage(a + " needs a value");
                v = args[++i];
            }
            switch (a) {
                case "--bootstrap": case "--bootstrap-server": bootstrap = v; break;
                case "--topic": topic = v; break;
                case "--num-records": numRecords = Long.parseLong(v); break;
                case "--record-size": recordSize = Integer.parseInt(v); break;
                case "--throughput": throughput = Double.parseDouble(v); break;
                case "--acks": props.put("acks", v); break;
                case "--linger-ms": props.put("linger.ms", v); break;
                case "--batch-size": props.put("batch.size", v); break;
                case "--compression": props.put("compression.type", v); break;
                case "--keys": keys = Long.parseLong(v); break;
                case "--threads": threads = Integer.parseInt(v); break;
                case "--report-interval-ms": break;
                case "--producer-property": {
                    int e = v.indexOf('=');
                    if (e <= 0) usage("bad property " + v);
                    props.put(v.substring(0, e), v.substring(e + 1));
                    break;
                }
                default: usage("unknown flag " + a);
            }
        }
        if (bootstrap == null || topic == null || numRecords < 0 || recordSize < 0 || threads < 1)
            usage("--bootstrap, --topic, --num-records and --record-size are required");
        props.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        props.putIfAbsent(ProducerConfig.CLIENT_ID_CONFIG, "java-perf");

        // Payload like ProducerPerformance's: random A-Z, the same for every record.
        byte[] payload = new byte[recordSize];
        long r = 0x2545F4914F6CDD1DL;
        for (int i = 0; i < recordSize; i++) {
            r ^= r << 13; r ^= r >>> 7; r ^= r << 17;
            payload[i] = (byte) ('A' + Long.remainderUnsigned(r, 26));
        }
        byte[][] keyTab = new byte[(int) keys][];
        for (int k = 0; k < keys; k++) keyTab[k] = ("key-" + k).getBytes();

        // -Dperf.producer.class=dev.kp.KpProducer runs the same loop over kp's Java binding
        // (bindings/java/perf.sh); any Producer with a (Properties, Serializer, Serializer) constructor
        @SuppressWarnings("unchecked")
        Producer<byte[], byte[]> producer = (Producer<byte[], byte[]>) Class
                .forName(System.getProperty("perf.producer.class", KafkaProducer.class.getName()))
                .getConstructor(Properties.class, Serializer.class, Serializer.class)
                .newInstance(props, new ByteArraySerializer(), new ByteArraySerializer());
        final String t = topic;
        final long fkeys = keys;
        final double interval = throughput > 0 ? 1e9 * threads / throughput : 0;
        List<Thread> senders = new ArrayList<>();
        long start = System.nanoTime();
        for (int ti = 0; ti < threads; ti++) {
            final long count = numRecords / threads + (ti < numRecords % threads ? 1 : 0);
            final int idx = ti;
            Thread th = new Thread(() -> {
                long rng = 0x9E3779B97F4A7C15L * (idx + 1);
                long tstart = System.nanoTime();
                for (long i = 0; i < count; i++) {
                    if (interval > 0) {
                        long due = tstart + (long) (interval * i);
                        long wait = due - System.nanoTime();
                        if (wait > 0) java.util.concurrent.locks.LockSupport.parkNanos(wait);
                    }
                    byte[] key = null;
                    if (fkeys > 0) {
                        rng ^= rng << 13; rng ^= rng >>> 7; rng ^= rng << 17;
                        key = keyTab[(int) Long.remainderUnsigned(rng, fkeys)];
                    }
                    final long stamp = System.nanoTime();
                    producer.send(new ProducerRecord<>(t, key, payload), (md, ex) -> {
                        if (ex != null) {
                            failed.incrementAndGet();
                            if (errorsPrinted.incrementAndGet() <= 5) System.err.println("delivery failed: " + ex);
                            return;
                        }
                        long lat = System.nanoTime() - stamp;
                        hist.incrementAndGet(bucketOf(Math.max(0, lat)));
                        latSum.addAndGet(lat);
                        latMax.accumulateAndGet(lat, Math::max);
                        ok.incrementAndGet();
                    });
                }
            }, "sender-" + ti);
            senders.add(th);
            th.start();
        }
        for (Thread th : senders) th.join();
        producer.flush();
        double secs = (System.nanoTime() - start) / 1e9;
        producer.close();
        long n = ok.get();
        double rps = n / secs;
        System.out.printf("%d records sent, %.1f records/sec (%.2f MB/sec), %.2f ms avg latency, %.2f ms max latency, "
                        + "%.2f ms 50th, %.2f ms 95th, %.2f ms 99th, %.2f ms 99.9th.%n",
                n, rps, rps * recordSize / (1024.0 * 1024.0), n > 0 ? latSum.get() / (double) n / 1e6 : 0.0,
                latMax.get() / 1e6, percentileMs(n, 0.50), percentileMs(n, 0.95), percentileMs(n, 0.99),
                percentileMs(n, 0.999));
        if (failed.get() > 0) {
            System.out.printf("%d records failed.%n", failed.get());
            System.exit(1);
        }
        System.exit(n == numRecords ? 0 : 1);
    }
}
