/*
 * transactional.c - atomic writes to two topics with kp's transactions:
 * one transaction committed, one aborted, one whose queued records are
 * purged before it is aborted; every error handled by its class
 * (retriable: call again; requires abort: abort; fatal: start over).
 *
 *   transactional <bootstrap-servers> <topic-a> <topic-b> <transactional-id> [count]
 *
 * Prints a summary; exits non-zero on any unexpected outcome.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdatomic.h>

#include "kp.h"

static atomic_int reports_ok, reports_purged, reports_other;

static void on_delivery(const kp_report_t *r, void *ctx) {
    (void)ctx;
    kp_err_t err = kp_report_error(r);
    if (err == KP_OK)
        atomic_fetch_add(&reports_ok, 1);
    else if (err == KP_ERR_PURGED_QUEUED || err == KP_ERR_PURGED_IN_FLIGHT)
        atomic_fetch_add(&reports_purged, 1);
    else {
        atomic_fetch_add(&reports_other, 1);
        fprintf(stderr, "delivery failed: %s: %s\n", kp_err_name(err), kp_report_error_message(r));
    }
}

/* Returns 0 on success; on error prints it, aborts the transaction when the
 * error says so, and returns -1 (fatal errors: -2). */
static int check(kp_producer_t *p, const char *what, kp_error_t *e) {
    if (!e)
        return 0;
    fprintf(stderr, "%s: %s: %s (retriable=%d fatal=%d requires_abort=%d)\n", what,
            kp_err_name(kp_error_code(e)), kp_error_message(e), kp_error_is_retriable(e),
            kp_error_is_fatal(e), kp_error_txn_requires_abort(e));
    int rc = kp_error_is_fatal(e) ? -2 : -1;
    if (kp_error_txn_requires_abort(e)) {
        kp_error_t *a = kp_abort_transaction(p, 30000);
        if (a) {
            fprintf(stderr, "abort: %s\n", kp_error_message(a));
            kp_error_destroy(a);
        }
    }
    kp_error_destroy(e);
    return rc;
}

/* Retries a transactional call while its error is retriable. */
#define RETRYING(call, out)                                                          \
    do {                                                                              \
        for (int attempt_ = 0; attempt_ < 5; attempt_++) {                            \
            (out) = (call);                                                           \
            if (!(out) || !kp_error_is_retriable(out))                                \
                break;                                                                \
            fprintf(stderr, "retrying %s: %s\n", #call, kp_error_message(out));      \
            kp_error_destroy(out);                                                    \
        }                                                                             \
    } while (0)

static int send_to(kp_producer_t *p, const char *topic, const char *prefix, int i) {
    char value[64];
    int n = snprintf(value, sizeof value, "%s-%d", prefix, i);
    kp_record_t rec = KP_RECORD_INIT;
    rec.topic = topic;
    rec.value = value;
    rec.value_len = (size_t)n;
    char errstr[256];
    kp_err_t err = kp_send_with_errstr(p, &rec, on_delivery, NULL, errstr, sizeof errstr);
    if (err != KP_OK)
        fprintf(stderr, "kp_send: %s: %s\n", kp_err_name(err), errstr);
    return err == KP_OK ? 0 : -1;
}

int main(int argc, char **argv) {
    if (argc < 5) {
        fprintf(stderr, "usage: %s <bootstrap-servers> <topic-a> <topic-b> <transactional-id> [count]\n", argv[0]);
        return 2;
    }
    const char *a = argv[2], *b = argv[3];
    int count = argc > 5 ? atoi(argv[5]) : 10;
    char errstr[512];
    kp_config_t *cfg = kp_config_new();
    if (kp_config_set(cfg, "bootstrap.servers", argv[1], errstr, sizeof errstr) != KP_CONFIG_OK ||
        kp_config_set(cfg, "transactional.id", argv[4], errstr, sizeof errstr) != KP_CONFIG_OK ||
        kp_config_set(cfg, "linger.ms", "10000", errstr, sizeof errstr) != KP_CONFIG_OK) {
        fprintf(stderr, "config: %s\n", errstr);
        kp_config_destroy(cfg);
        return 1;
    }
    kp_producer_t *p = kp_producer_new(cfg, errstr, sizeof errstr);
    if (!p) {
        fprintf(stderr, "kp_producer_new: %s\n", errstr);
        kp_config_destroy(cfg);
        return 1;
    }
    int failures = 0;
    kp_error_t *e;

    RETRYING(kp_init_transactions(p, 60000), e);
    if (check(p, "init_transactions", e)) {
        kp_producer_destroy(p);
        return 1;
    }
    printf("transaction protocol v%d\n", kp_transaction_protocol_version(p));

    /* 1. committed: records to both topics become visible together. */
    if (check(p, "begin", kp_begin_transaction(p)) == 0) {
        for (int i = 0; i < count; i++)
            failures += send_to(p, a, "committed", i) + send_to(p, b, "committed", i);
        RETRYING(kp_commit_transaction(p, 60000), e);
        if (check(p, "commit", e))
            failures++;
        else
            printf("committed %d records to %s and %s\n", 2 * count, a, b);
    }

    /* 2. aborted: sent (flushed) then aborted; read_committed never sees it. */
    if (check(p, "begin", kp_begin_transaction(p)) == 0) {
        for (int i = 0; i < count; i++)
            failures += send_to(p, a, "aborted", i);
        kp_flush(p, 30000);
        RETRYING(kp_abort_transaction(p, 60000), e);
        if (check(p, "abort", e))
            failures++;
        else
            printf("aborted %d records\n", count);
    }

    /* 3. purged: queued records (linger 10 s) dropped, then the abort. */
    if (check(p, "begin", kp_begin_transaction(p)) == 0) {
        for (int i = 0; i < count; i++)
            failures += send_to(p, b, "purged", i);
        kp_purge(p, KP_PURGE_QUEUED);
        RETRYING(kp_abort_transaction(p, 60000), e);
        if (check(p, "abort after purge", e))
            failures++;
    }

    kp_err_t cerr = kp_producer_close(p, 30000);
    kp_producer_destroy(p);
    int ok = atomic_load(&reports_ok), purged = atomic_load(&reports_purged), other = atomic_load(&reports_other);
    printf("reports: %d ok, %d purged, %d other\n", ok, purged, other);
    if (ok != 3 * count || purged != count || other != 0 || failures || cerr != KP_OK) {
        fprintf(stderr, "unexpected outcome (want %d ok, %d purged)\n", 3 * count, count);
        return 1;
    }
    return 0;
}
