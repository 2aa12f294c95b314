package dev.kp;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * The records handed to kp and not yet reported, by the {@code ctx} kp gives back
 * with each report. Cheaper per record than a ConcurrentHashMap: each sending
 * thread gets one of {@link #SHARDS} shards (its own lock, shared only with the
 * I/O thread), and a record's slot is its sequence number modulo the shard's
 * ring size, so no key is boxed and nothing is hashed. When a record's slot is
 * still taken (an older record still unreported a whole ring ago) the ring
 * doubles, up to {@link #MAX_RING}; past that the record goes to the shard's
 * overflow map, so a stuck record cannot make the ring grow without bound.
 */
final class Inflight<P> {
    private static final int SHARDS = 16;
    private static final int SHARD_SHIFT = 48;
    private static final long SEQ_MASK = (1L << SHARD_SHIFT) - 1;
    private static final int MIN_RING = 1 << 12;
    private static final int MAX_RING = 1 << 18;

    private static final class Shard {
        final long id;
        Object[] ring = new Object[0];
        long[] seqs = new long[0];
        final Map<Long, Object> overflow = new HashMap<>();
        long nextSeq;

        Shard(long id) {
            this.id = id;
        }
    }

    private final Shard[] shards = new Shard[SHARDS];
    private final AtomicInteger nextShard = new AtomicInteger();
    private final ThreadLocal<Shard> mine = ThreadLocal.withInitial(
            () -> shards[Math.floorMod(nextShard.getAndIncrement(), SHARDS)]);

    Inflight() {
        for (int i = 0; i < SHARDS; i++) {
            shards[i] = new Shard(i);
        }
    }

    /** Stores {@code p}; returns its ctx for kp. */
    long add(P p) {
        Shard s = mine.get();
        synchronized (s) {
            long seq = s.nextSeq++ & SEQ_MASK;
            while (true) {
                int i = (int) (seq & (s.ring.length - 1));
                if (s.ring.length > 0 && s.ring[i] == null) {
                    s.ring[i] = p;
                    s.seqs[i] = seq;
                    break;
                }
                if (s.ring.length >= MAX_RING) {
                    s.overflow.put(seq, p);
                    break;
                }
                grow(s);
            }
            return (s.id << SHARD_SHIFT) | seq;
        }
    }

    private static void grow(Shard s) {
        Object[] old = s.ring;
        long[] oldSeqs = s.seqs;
        s.ring = new Object[Math.max(MIN_RING, 2 * old.length)];
        s.seqs = new long[s.ring.length];
        int mask = s.ring.length - 1;
        for (int j = 0; j < old.length; j++) {
            if (old[j] != null) {
                int i = (int) (oldSeqs[j] & mask);
                if (s.ring[i] == null) {
                    s.ring[i] = old[j];
                    s.seqs[i] = oldSeqs[j];
                } else {
                    s.overflow.put(oldSeqs[j], old[j]);
                }
            }
        }
    }

    /** Takes the record stored under {@code ctx}, or null when there is none. */
    @SuppressWarnings("unchecked")
    P remove(long ctx) {
        Shard s = shards[(int) (ctx >>> SHARD_SHIFT)];
        synchronized (s) {
            return (P) takeLocked(s, ctx & SEQ_MASK);
        }
    }

    /**
     * {@link #remove} for {@code n} ctxs at once, {@code ctxs[i * stride]}, into
     * {@code out[i]}: a shard is locked once for each run of its records (a
     * batch of reports is mostly one sending thread's), not once per record,
     * so the sending thread meets its shard's lock taken far less often.
     */
    void removeAll(long[] ctxs, int n, int stride, Object[] out) {
        int i = 0;
        while (i < n) {
            long shard = ctxs[i * stride] >>> SHARD_SHIFT;
            Shard s = shards[(int) shard];
            synchronized (s) {
                do {
                    out[i] = takeLocked(s, ctxs[i * stride] & SEQ_MASK);
                    i++;
                } while (i < n && ctxs[i * stride] >>> SHARD_SHIFT == shard);
            }
        }
    }

    private static Object takeLocked(Shard s, long seq) {
        int i = (int) (seq & (s.ring.length - 1));
        Object p = s.ring.length == 0 ? null : s.ring[i];
        if (p != null && s.seqs[i] == seq) {
            s.ring[i] = null;
            return p;
        }
        return s.overflow.isEmpty() ? null : s.overflow.remove(seq);
    }

    /** Every record stored now (for flush). */
    @SuppressWarnings("unchecked")
    List<P> snapshot() {
        List<P> out = new ArrayList<>();
        for (Shard s : shards) {
            synchronized (s) {
                for (Object p : s.ring) {
                    if (p != null) {
                        out.add((P) p);
                    }
                }
                s.overflow.values().forEach(p -> out.add((P) p));
            }
        }
        return out;
    }
}
