package dev.kp;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNull;

import org.junit.jupiter.api.Test;

/** The in-flight table on its own (no cluster): what the report thread takes back. */
class InflightTest {
    /**
     * A batch of reports mixing two sending threads' records (two shards), in
     * any order, with a ctx that was never handed out and one already taken:
     * each comes back once, the others as null.
     */
    @Test
    void removeAllTakesEachRecordOnceAcrossShards() throws Exception {
        Inflight<String> inflight = new Inflight<>();
        long[] mine = {inflight.add("a1"), inflight.add("a2"), inflight.add("a3")};
        long[] theirs = new long[2];
        Thread other = new Thread(() -> {
            theirs[0] = inflight.add("b1");
            theirs[1] = inflight.add("b2");
        });
        other.start();
        other.join();
        assertNotEquals(mine[0] >>> 48, theirs[0] >>> 48, "two threads, two shards");
        assertNotEquals(null, inflight.remove(mine[2]));

        // ctx i sits at i * 4, as in a batch of kp reports
        long[] ctxs = {mine[0], theirs[0], theirs[1], mine[1], mine[2], theirs[0] + 7};
        long[] batch = new long[4 * ctxs.length];
        for (int i = 0; i < ctxs.length; i++) {
            batch[4 * i] = ctxs[i];
            batch[4 * i + 1] = -1;
        }
        Object[] out = new Object[ctxs.length];
        inflight.removeAll(batch, ctxs.length, 4, out);
        assertArrayEquals(new Object[] {"a1", "b1", "b2", "a2", null, null}, out);
        for (long ctx : ctxs) {
            assertNull(inflight.remove(ctx), "taken once");
        }
    }
}
