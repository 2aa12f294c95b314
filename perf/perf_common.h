/*
 * perf_common.h - the client-independent half of perf/kp-perf.c and
 * perf/rdkafka-perf.c: flags, pacing, sender threads, the latency
 * histogram, progress lines and the summary (Kafka ProducerPerformance's
 * format). A client plugs in through perf_backend_t.
 *
 * Latency of a record = its send call -> its delivery callback. The send
 * time (ns since start) travels as the callback's opaque pointer, so there
 * is no per-record allocation and no per-record array; latencies go into a
 * fixed log-linear histogram (128 sub-buckets per power of two, <0.8% error).
 */
#ifndef KP_BENCH_PERF_COMMON_H
#define KP_BENCH_PERF_COMMON_H

#include <stddef.h>
#include <stdint.h>

#define PERF_MAX_PROPS 64

typedef struct perf_opts {
    const char *bootstrap;
    const char *topic;
    long long num_records;
    int record_size;
    double throughput;          /* records/s for the whole process; <= 0 = unlimited */
    const char *acks;           /* NULL = client default */
    int linger_ms;              /* -1 = client default */
    int batch_size;             /* -1 = client default */
    const char *compression;    /* NULL = client default */
    long keys;                  /* 0 = null keys, else keys drawn from this many */
    int threads;
    int idempotence;            /* -1 = not given, 0/1 */
    const char *transactional_id;
    int transaction_duration_ms;
    int report_interval_ms;
    int nprops;
    const char *prop_key[PERF_MAX_PROPS];
    const char *prop_val[PERF_MAX_PROPS];
} perf_opts_t;

typedef struct perf_backend {
    const char *name;
    /* Create the client. Return NULL and fill err on failure. */
    void *(*create)(const perf_opts_t *o, char *err, size_t errlen);
    /* Send one record; on success the client must later call
     * perf_delivered(stamp, err, msg) exactly once. Return 0 if accepted,
     * else non-zero (the record counts as failed, msg in err). */
    int (*send)(void *c, const void *key, size_t klen, const void *val, size_t vlen,
                uint64_t stamp, char *err, size_t errlen);
    /* Wait until every accepted record has been reported. 0 = ok. */
    int (*flush)(void *c, int timeout_ms, char *err, size_t errlen);
    /* Transactions (optional: NULL = unsupported). */
    int (*txn_init)(void *c, char *err, size_t errlen);
    int (*txn_begin)(void *c, char *err, size_t errlen);
    int (*txn_commit)(void *c, char *err, size_t errlen);
    /* Close and free the client. */
    void (*destroy)(void *c);
    /* Version string for the banner. */
    const char *(*version)(void);
} perf_backend_t;

/* Called by the client's delivery callback (any thread). err 0 = success. */
void perf_delivered(uint64_t stamp, int err, const char *msg);

/* Look up a --producer-property value given on the command line (or NULL). */
const char *perf_prop(const perf_opts_t *o, const char *key);

/* Parse flags, run, print the summary; returns the process exit code. */
int perf_main(int argc, char **argv, const perf_backend_t *b);

#endif
