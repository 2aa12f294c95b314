package dev.kp;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.OutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.function.Predicate;
import org.apache.kafka.clients.producer.Producer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * kp's log lines reach SLF4J (loggers kp.&lt;facility&gt;) on the producer's I/O
 * thread, against the real cluster. The tests run with slf4j-simple, which
 * writes to System.err as it is at each line: they read it there.
 */
@Tag("quick")
@Timeout(value = 90, unit = TimeUnit.SECONDS)
class LogTest {
    private PrintStream savedErr;
    private Capture capture;

    /** Keeps what is written (and still passes it on), and lets a test wait for a line. */
    private static final class Capture extends OutputStream {
        private final ByteArrayOutputStream buf = new ByteArrayOutputStream();
        private final PrintStream through;

        Capture(PrintStream through) {
            this.through = through;
        }

        @Override
        public synchronized void write(int b) {
            buf.write(b);
            through.write(b);
            notifyAll();
        }

        @Override
        public synchronized void write(byte[] b, int off, int len) {
            buf.write(b, off, len);
            through.write(b, off, len);
            notifyAll();
        }

        synchronized List<String> lines() {
            return List.of(buf.toString(StandardCharsets.UTF_8).split("\n"));
        }

        synchronized boolean waitFor(Predicate<String> match, long ms) throws InterruptedException {
            long deadline = System.nanoTime() + ms * 1_000_000L;
            while (lines().stream().noneMatch(match)) {
                long left = (deadline - System.nanoTime()) / 1_000_000L;
                if (left <= 0) {
                    return false;
                }
                wait(left);
            }
            return true;
        }
    }

    @BeforeEach
    void captureStderr() {
        savedErr = System.err;
        capture = new Capture(savedErr);
        System.setErr(new PrintStream(capture, true, StandardCharsets.UTF_8));
    }

    @AfterEach
    void restoreStderr() {
        System.setErr(savedErr);
    }

    private static Producer<byte[], byte[]> kp(Map<String, Object> config) {
        return new KpProducer<>(config, new ByteArraySerializer(), new ByteArraySerializer());
    }

    /** The lines of client `id` at `level` from logger kp.broker (slf4j-simple's format). */
    private static Predicate<String> line(String id, String level, String text) {
        return l -> l.contains(" " + level + " kp.broker - [Producer clientId=" + id + "] " + text);
    }

    private List<String> produceAndClose(String id, String logLevel) throws Exception {
        String topic = Cluster.topic("log-" + logLevel, 1);
        Map<String, Object> c = Cluster.producerConfig();
        c.put("client.id", id);
        c.put("log_level", logLevel);
        try (Producer<byte[], byte[]> p = kp(c)) {
            p.send(new ProducerRecord<>(topic, "v".getBytes(StandardCharsets.UTF_8))).get(30, TimeUnit.SECONDS);
        }
        return capture.lines();
    }

    /** A real connection logs "connected to broker" at INFO, logger kp.broker, on the I/O thread. */
    @Test
    void connectLogsInfoBrokerLineOnTheIoThread() throws Exception {
        String id = Cluster.unique("log-connect");
        List<String> lines = produceAndClose(id, "6");
        List<String> connected = new ArrayList<>();
        lines.stream().filter(line(id, "INFO", "connected to broker ")).forEach(connected::add);
        assertFalse(connected.isEmpty(), "no INFO kp.broker 'connected to broker' line for " + id + " in " + lines);
        for (String l : connected) {
            assertTrue(l.startsWith("[kp-producer-io-" + id + "] "), "logged on another thread: " + l);
        }
    }

    @Test
    void logLevel4SuppressesTheInfoLine() throws Exception {
        String id = Cluster.unique("log-level4");
        List<String> lines = produceAndClose(id, "4");
        assertTrue(lines.stream().noneMatch(line(id, "INFO", "connected to broker ")),
                "log_level=4 still logged the INFO connect line: " + lines);
    }

    /** An unreachable bootstrap broker logs a WARN line, logger kp.broker. */
    @Test
    void unreachableBootstrapLogsWarningBrokerLine() throws Exception {
        String id = Cluster.unique("log-unreachable");
        Map<String, Object> c = Map.of("bootstrap.servers", "127.0.0.1:1", "client.id", id,
                "delivery.timeout.ms", "60000");
        Future<RecordMetadata> f;
        try (Producer<byte[], byte[]> p = kp(c)) {
            f = p.send(new ProducerRecord<>(Cluster.unique("log-nowhere"), "x".getBytes(StandardCharsets.UTF_8)));
            assertTrue(capture.waitFor(line(id, "WARN", ""), 30_000),
                    "no WARN kp.broker line for " + id + " in 30 s: " + capture.lines());
            p.close(Duration.ZERO);
        }
        ExecutionException e = null;
        try {
            f.get(5, TimeUnit.SECONDS);
        } catch (ExecutionException ex) {
            e = ex;
        }
        assertTrue(e != null, "the record to an unreachable broker did not fail");
    }
}
