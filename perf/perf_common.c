/*
 * perf_common.c - see perf_common.h.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "perf_common.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

/* ------------------------------------------------------------------ time */

static struct timespec t0;

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)(ts.tv_sec - t0.tv_sec) * 1000000000ull + (uint64_t)ts.tv_nsec - (uint64_t)t0.tv_nsec;
}

static void sleep_until_ns(uint64_t deadline) {
    struct timespec ts;
    uint64_t abs_ns = (uint64_t)t0.tv_sec * 1000000000ull + (uint64_t)t0.tv_nsec + deadline;
    ts.tv_sec = (time_t)(abs_ns / 1000000000ull);
    ts.tv_nsec = (long)(abs_ns % 1000000000ull);
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR) {
    }
}

/* ------------------------------------------------------------- histogram */

#define SUB_BITS 7
#define SUB_COUNT (1u << SUB_BITS)
#define NBUCKETS ((64 - SUB_BITS + 1) * SUB_COUNT)

static _Atomic uint64_t hist[NBUCKETS];
static _Atomic uint64_t ok_count, failed_count, lat_sum_ns, lat_max_ns;
static _Atomic uint64_t win_max_ns;
static _Atomic int errors_printed;

static inline unsigned bucket_of(uint64_t v) {
    if (v < SUB_COUNT)
        return (unsigned)v;
    unsigned msb = 63u - (unsigned)__builtin_clzll(v);
    unsigned shift = msb - SUB_BITS;
    return ((shift + 1) << SUB_BITS) + (unsigned)((v >> shift) - SUB_COUNT);
}

/* Midpoint of a bucket's value range. */
static double bucket_mid(unsigned idx) {
    if (idx < SUB_COUNT)
        return (double)idx;
    unsigned shift = (idx >> SUB_BITS) - 1;
    uint64_t low = (uint64_t)(SUB_COUNT + (idx & (SUB_COUNT - 1))) << shift;
    return (double)low + (double)((uint64_t)1 << shift) / 2.0 - 0.5;
}

static void atomic_max(_Atomic uint64_t *m, uint64_t v) {
    uint64_t cur = atomic_load_explicit(m, memory_order_relaxed);
    while (v > cur && !atomic_compare_exchange_weak_explicit(m, &cur, v, memory_order_relaxed,
                                                             memory_order_relaxed)) {
    }
}

void perf_delivered(uint64_t stamp, int err, const char *msg) {
    if (err != 0) {
        atomic_fetch_add_explicit(&failed_count, 1, memory_order_relaxed);
        if (atomic_fetch_add(&errors_printed, 1) < 5)
            fprintf(stderr, "delivery failed: %s (code %d)\n", msg ? msg : "?", err);
        return;
    }
    uint64_t now = now_ns();
    uint64_t lat = now > stamp ? now - stamp : 0;
    atomic_fetch_add_explicit(&hist[bucket_of(lat)], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&lat_sum_ns, lat, memory_order_relaxed);
    atomic_max(&lat_max_ns, lat);
    atomic_max(&win_max_ns, lat);
    atomic_fetch_add_explicit(&ok_count, 1, memory_order_relaxed);
}

static double percentile_ms(uint64_t total, double p) {
    if (total == 0)
        return 0.0;
    uint64_t rank = (uint64_t)(p * (double)total + 0.999999);
    if (rank < 1)
        rank = 1;
    uint64_t cum = 0;
    for (unsigned i = 0; i < NBUCKETS; i++) {
        cum += atomic_load_explicit(&hist[i], memory_order_relaxed);
        if (cum >= rank)
            return bucket_mid(i) / 1e6;
    }
    return (double)atomic_load(&lat_max_ns) / 1e6;
}

/* ----------------------------------------------------------------- flags */

static void usage(const char *prog, const char *client) {
    fprintf(stderr,
            "usage: %s --bootstrap HOST:PORT --topic T --num-records N --record-size B [options]\n"
            "  client: %s\n"
            "  --throughput R          records/s for the whole process, -1 = unlimited (default -1)\n"
            "  --acks 0|1|all          (default: client default)\n"
            "  --linger-ms MS          --batch-size BYTES   --compression none|gzip|snappy|lz4|zstd\n"
            "  --keys N                0 = null keys (default), else keys drawn uniformly from N distinct\n"
            "  --threads N             application threads sending at once (default 1)\n"
            "  --idempotence [true|false]\n"
            "  --transactional-id ID   [--transaction-duration-ms MS (default 3000)]\n"
            "  --producer-property k=v (repeatable; also --producer-props k=v k=v ...)\n"
            "  --report-interval-ms MS progress line period (default 5000)\n",
            prog, client);
}

static int parse_long(const char *s, long long *out) {
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end)
        return -1;
    *out = v;
    return 0;
}

static int add_prop(perf_opts_t *o, const char *kv) {
    const char *eq = strchr(kv, '=');
    if (!eq || eq == kv || o->nprops >= PERF_MAX_PROPS)
        return -1;
    o->prop_key[o->nprops] = strndup(kv, (size_t)(eq - kv));
    o->prop_val[o->nprops] = eq + 1;
    o->nprops++;
    return 0;
}

const char *perf_prop(const perf_opts_t *o, const char *key) {
    const char *v = NULL;
    for (int i = 0; i < o->nprops; i++)
        if (!strcmp(o->prop_key[i], key))
            v = o->prop_val[i];
    return v;
}

static int parse_args(int argc, char **argv, perf_opts_t *o, const char *client) {
    memset(o, 0, sizeof *o);
    o->num_records = -1;
    o->record_size = -1;
    o->throughput = -1;
    o->linger_ms = -1;
    o->batch_size = -1;
    o->threads = 1;
    o->idempotence = -1;
    o->transaction_duration_ms = 3000;
    o->report_interval_ms = 5000;
    for (int i = 1; i < argc; i++) {
        char *a = argv[i];
        const char *val = NULL;
        char name[64];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(argv[0], client);
            exit(0);
        }
        if (strncmp(a, "--", 2) != 0) {
            fprintf(stderr, "unexpected argument: %s\n", a);
            return -1;
        }
        char *eq = strchr(a, '=');
        if (eq && (size_t)(eq - a) < sizeof name) {
            memcpy(name, a, (size_t)(eq - a));
            name[eq - a] = 0;
            val = eq + 1;
        } else {
            snprintf(name, sizeof name, "%s", a);
        }
        if (!strcmp(name, "--idempotence")) {
            if (!val && i + 1 < argc && (!strcmp(argv[i + 1], "true") || !strcmp(argv[i + 1], "false")))
                val = argv[++i];
            o->idempotence = !val || !strcmp(val, "true") || !strcmp(val, "1");
            continue;
        }
        if (!strcmp(name, "--producer-props")) {
            if (val && add_prop(o, val))
                goto bad_prop;
            while (i + 1 < argc && strncmp(argv[i + 1], "--", 2) != 0) {
                val = argv[++i];
                if (add_prop(o, val))
                    goto bad_prop;
            }
            continue;
        }
        if (!val) {
            if (i + 1 >= argc) {
                fprintf(stderr, "%s needs a value\n", name);
                return -1;
            }
            val = argv[++i];
        }
        long long n = 0;
        int num_ok = parse_long(val, &n) == 0;
        if (!strcmp(name, "--bootstrap") || !strcmp(name, "--bootstrap-server"))
            o->bootstrap = val;
        else if (!strcmp(name, "--topic"))
            o->topic = val;
        else if (!strcmp(name, "--num-records") && num_ok && n >= 0)
            o->num_records = n;
        else if (!strcmp(name, "--record-size") && num_ok && n >= 0)
            o->record_size = (int)n;
        else if (!strcmp(name, "--throughput"))
            o->throughput = atof(val);
        else if (!strcmp(name, "--acks"))
            o->acks = val;
        else if (!strcmp(name, "--linger-ms") && num_ok && n >= 0)
            o->linger_ms = (int)n;
        else if (!strcmp(name, "--batch-size") && num_ok && n > 0)
            o->batch_size = (int)n;
        else if (!strcmp(name, "--compression"))
            o->compression = val;
        else if (!strcmp(name, "--keys") && num_ok && n >= 0)
            o->keys = (long)n;
        else if (!strcmp(name, "--threads") && num_ok && n >= 1 && n <= 256)
            o->threads = (int)n;
        else if (!strcmp(name, "--transactional-id"))
            o->transactional_id = val;
        else if (!strcmp(name, "--transaction-duration-ms") && num_ok && n > 0)
            o->transaction_duration_ms = (int)n;
        else if (!strcmp(name, "--report-interval-ms") && num_ok && n > 0)
            o->report_interval_ms = (int)n;
        else if (!strcmp(name, "--producer-property")) {
            if (add_prop(o, val))
                goto bad_prop;
        } else {
            fprintf(stderr, "unknown flag or bad value: %s %s\n", name, val);
            return -1;
        }
        continue;
    bad_prop:
        fprintf(stderr, "bad property (want k=v): %s\n", val);
        return -1;
    }
    if (!o->bootstrap || !o->topic || o->num_records < 0 || o->record_size < 0) {
        fprintf(stderr, "--bootstrap, --topic, --num-records and --record-size are required\n");
        return -1;
    }
    if (o->transactional_id && o->threads != 1) {
        fprintf(stderr, "--transactional-id needs --threads 1\n");
        return -1;
    }
    return 0;
}

/* --------------------------------------------------------------- senders */

typedef struct {
    const perf_backend_t *b;
    void *client;
    const perf_opts_t *o;
    int idx;
    long long count;
    const char *payload;
    const char *keybuf;  /* keys * KEY_WIDTH bytes, NUL-padded */
    int rc;
    _Atomic long long *send_failed;
} sender_t;

#define KEY_WIDTH 24

static void *sender_main(void *arg) {
    sender_t *s = arg;
    const perf_opts_t *o = s->o;
    char err[512];
    uint64_t rng = 0x9E3779B97F4A7C15ull * (uint64_t)(s->idx + 1);
    double interval_ns = o->throughput > 0 ? 1e9 * o->threads / o->throughput : 0;
    uint64_t start = now_ns();
    uint64_t txn_start = start;
    for (long long i = 0; i < s->count; i++) {
        if (interval_ns > 0) {
            uint64_t due = start + (uint64_t)(interval_ns * (double)i);
            if (now_ns() < due)
                sleep_until_ns(due);
        }
        const void *key = NULL;
        size_t klen = 0;
        if (o->keys > 0) {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            const char *k = s->keybuf + (size_t)(rng % (uint64_t)o->keys) * KEY_WIDTH;
            key = k;
            klen = strlen(k);
        }
        uint64_t stamp = now_ns();
        if (s->b->send(s->client, key, klen, s->payload, (size_t)o->record_size, stamp, err, sizeof err)) {
            if (atomic_fetch_add(s->send_failed, 1) < 5)
                fprintf(stderr, "send failed: %s\n", err);
            atomic_fetch_add(&failed_count, 1);
            continue;
        }
        if (o->transactional_id && now_ns() - txn_start >= (uint64_t)o->transaction_duration_ms * 1000000ull) {
            if (s->b->txn_commit(s->client, err, sizeof err) || s->b->txn_begin(s->client, err, sizeof err)) {
                fprintf(stderr, "transaction: %s\n", err);
                s->rc = 1;
                return NULL;
            }
            txn_start = now_ns();
        }
    }
    return NULL;
}

/* -------------------------------------------------------------- reporter */

static _Atomic int reporter_stop;
static pthread_mutex_t rep_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t rep_cv = PTHREAD_COND_INITIALIZER;

static void *reporter_main(void *arg) {
    const perf_opts_t *o = arg;
    uint64_t last_t = now_ns(), last_ok = 0, last_sum = 0;
    pthread_mutex_lock(&rep_mu);
    while (!atomic_load(&reporter_stop)) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += o->report_interval_ms / 1000;
        ts.tv_nsec += (long)(o->report_interval_ms % 1000) * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&rep_cv, &rep_mu, &ts);
        if (atomic_load(&reporter_stop))
            break;
        uint64_t t = now_ns(), ok = atomic_load(&ok_count), sum = atomic_load(&lat_sum_ns);
        uint64_t wmax = atomic_exchange(&win_max_ns, 0);
        double secs = (double)(t - last_t) / 1e9;
        uint64_t n = ok - last_ok;
        double rps = secs > 0 ? (double)n / secs : 0;
        printf("%" PRIu64 " records sent, %.1f records/sec (%.2f MB/sec), %.2f ms avg latency, %.2f ms max latency.\n",
               n, rps, rps * o->record_size / (1024.0 * 1024.0), n ? (double)(sum - last_sum) / (double)n / 1e6 : 0.0,
               (double)wmax / 1e6);
        fflush(stdout);
        last_t = t;
        last_ok = ok;
        last_sum = sum;
    }
    pthread_mutex_unlock(&rep_mu);
    return NULL;
}

/* Peak RSS of this process image in KiB: VmHWM from /proc/self/status.
 * (ru_maxrss is not used: Linux carries the pre-exec RSS of the forking
 * parent into it, so a small client started by a large harness would
 * report the harness's size.) Falls back to ru_maxrss. */
static long peak_rss_kib(const struct rusage *ru) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kib = -1;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "VmHWM: %ld kB", &kib) == 1)
            break;
    if (f)
        fclose(f);
    return kib > 0 ? kib : ru->ru_maxrss;
}

/* ------------------------------------------------------------------ main */

int perf_main(int argc, char **argv, const perf_backend_t *b) {
    perf_opts_t o;
    char err[512] = "";
    clock_gettime(CLOCK_MONOTONIC, &t0);
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (parse_args(argc, argv, &o, b->name)) {
        usage(argv[0], b->name);
        return 2;
    }

    /* Payload like ProducerPerformance's: random A-Z, the same for every record. */
    char *payload = malloc((size_t)o.record_size + 1);
    uint64_t r = 0x2545F4914F6CDD1Dull;
    for (int i = 0; i < o.record_size; i++) {
        r ^= r << 13;
        r ^= r >> 7;
        r ^= r << 17;
        payload[i] = (char)('A' + (int)(r % 26));
    }
    char *keybuf = NULL;
    if (o.keys > 0) {
        keybuf = calloc((size_t)o.keys, KEY_WIDTH);
        for (long k = 0; k < o.keys; k++)
            snprintf(keybuf + (size_t)k * KEY_WIDTH, KEY_WIDTH, "key-%ld", k);
    }

    fprintf(stderr, "%s (%s): %lld records of %d bytes to %s on %s, threads %d, throughput %s\n", b->name,
            b->version(), o.num_records, o.record_size, o.topic, o.bootstrap, o.threads,
            o.throughput > 0 ? "limited" : "unlimited");

    void *client = b->create(&o, err, sizeof err);
    if (!client) {
        fprintf(stderr, "%s: cannot create producer: %s\n", b->name, err);
        return 2;
    }
    if (o.transactional_id) {
        if (!b->txn_init) {
            fprintf(stderr, "%s: transactions are not supported\n", b->name);
            b->destroy(client);
            return 2;
        }
        if (b->txn_init(client, err, sizeof err) || b->txn_begin(client, err, sizeof err)) {
            fprintf(stderr, "%s: transaction init: %s\n", b->name, err);
            b->destroy(client);
            return 1;
        }
    }

    pthread_t rep;
    pthread_create(&rep, NULL, reporter_main, &o);

    _Atomic long long send_failed = 0;
    sender_t *s = calloc((size_t)o.threads, sizeof *s);
    pthread_t *tids = calloc((size_t)o.threads, sizeof *tids);
    uint64_t start = now_ns();
    for (int t = 0; t < o.threads; t++) {
        s[t] = (sender_t){b, client, &o, t, o.num_records / o.threads + (t < o.num_records % o.threads),
                          payload, keybuf, 0, &send_failed};
        if (o.threads == 1)
            sender_main(&s[t]);
        else
            pthread_create(&tids[t], NULL, sender_main, &s[t]);
    }
    int rc = 0;
    for (int t = 0; t < o.threads; t++) {
        if (o.threads > 1)
            pthread_join(tids[t], NULL);
        rc |= s[t].rc;
    }
    if (o.transactional_id && !rc && b->txn_commit(client, err, sizeof err)) {
        fprintf(stderr, "%s: commit: %s\n", b->name, err);
        rc = 1;
    }
    if (b->flush(client, 600000, err, sizeof err)) {
        fprintf(stderr, "%s: flush: %s\n", b->name, err);
        rc = 1;
    }
    uint64_t end = now_ns();

    atomic_store(&reporter_stop, 1);
    pthread_mutex_lock(&rep_mu);
    pthread_cond_signal(&rep_cv);
    pthread_mutex_unlock(&rep_mu);
    pthread_join(rep, NULL);

    b->destroy(client);

    uint64_t ok = atomic_load(&ok_count), failed = atomic_load(&failed_count);
    double secs = (double)(end - start) / 1e9;
    double rps = secs > 0 ? (double)ok / secs : 0;
    printf("%" PRIu64 " records sent, %.1f records/sec (%.2f MB/sec), %.2f ms avg latency, %.2f ms max latency, "
           "%.2f ms 50th, %.2f ms 95th, %.2f ms 99th, %.2f ms 99.9th.\n",
           ok, rps, rps * o.record_size / (1024.0 * 1024.0), ok ? (double)atomic_load(&lat_sum_ns) / (double)ok / 1e6 : 0.0,
           (double)atomic_load(&lat_max_ns) / 1e6, percentile_ms(ok, 0.50), percentile_ms(ok, 0.95),
           percentile_ms(ok, 0.99), percentile_ms(ok, 0.999));
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double user = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6;
    double sys = (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
    printf("client cpu %.2f s (user %.2f s, sys %.2f s), %.2f cpu-s per million records, peak rss %.1f MiB.\n",
           user + sys, user, sys, ok ? (user + sys) * 1e6 / (double)ok : 0.0, (double)peak_rss_kib(&ru) / 1024.0);
    if (failed) {
        printf("%" PRIu64 " records failed.\n", failed);
        rc = 1;
    }
    if (ok + failed != (uint64_t)o.num_records) {
        fprintf(stderr, "%s: %" PRIu64 " of %lld records were never reported\n", b->name,
                (uint64_t)o.num_records - ok - failed, o.num_records);
        rc = 1;
    }
    free(payload);
    free(keybuf);
    free(s);
    free(tids);
    return rc;
}
