/*
 * kp-perf.c - producer benchmark for kp, flag- and output-compatible with
 * Kafka's ProducerPerformance (see perf_common.h; `kp-perf --help`).
 *
 * Delivery reports arrive on kp's callback thread (delivery.report.mode=
 * thread, the default); with --producer-property delivery.report.mode=poll
 * a helper thread calls kp_poll() instead.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kp.h"
#include "perf_common.h"

typedef struct {
    kp_producer_t *p;
    const char *topic;
    int poll_mode;
    _Atomic int stop;
    pthread_t poller;
} kp_client_t;

static void on_delivery(const kp_report_t *r, void *ctx) {
    kp_err_t err = kp_report_error(r);
    perf_delivered((uint64_t)(uintptr_t)ctx, err, err ? kp_report_error_message(r) : NULL);
}

static void *poller_main(void *arg) {
    kp_client_t *c = arg;
    while (!atomic_load(&c->stop))
        kp_poll(c->p, 100);
    return NULL;
}

static int set(kp_config_t *cfg, const char *k, const char *v, char *err, size_t errlen) {
    if (kp_config_set(cfg, k, v, err, errlen) != KP_CONFIG_OK) {
        size_t n = strlen(err);
        snprintf(err + n, errlen - n, " (setting %s=%s)", k, v);
        return -1;
    }
    return 0;
}

static void *kp_create(const perf_opts_t *o, char *err, size_t errlen) {
    char num[32];
    kp_config_t *cfg = kp_config_new();
    if (set(cfg, "bootstrap.servers", o->bootstrap, err, errlen) ||
        set(cfg, "delivery.report.mode", "thread", err, errlen))
        goto fail;
    if (o->acks && set(cfg, "acks", o->acks, err, errlen))
        goto fail;
    if (o->linger_ms >= 0) {
        snprintf(num, sizeof num, "%d", o->linger_ms);
        if (set(cfg, "linger.ms", num, err, errlen))
            goto fail;
    }
    if (o->batch_size > 0) {
        snprintf(num, sizeof num, "%d", o->batch_size);
        if (set(cfg, "batch.size", num, err, errlen))
            goto fail;
    }
    if (o->compression && set(cfg, "compression.type", o->compression, err, errlen))
        goto fail;
    if (o->idempotence >= 0 && set(cfg, "enable.idempotence", o->idempotence ? "true" : "false", err, errlen))
        goto fail;
    if (o->transactional_id && set(cfg, "transactional.id", o->transactional_id, err, errlen))
        goto fail;
    for (int i = 0; i < o->nprops; i++)
        if (set(cfg, o->prop_key[i], o->prop_val[i], err, errlen))
            goto fail;
    kp_client_t *c = calloc(1, sizeof *c);
    const char *mode = perf_prop(o, "delivery.report.mode");
    c->poll_mode = mode && !strcmp(mode, "poll");
    c->topic = o->topic;
    c->p = kp_producer_new(cfg, err, errlen);
    if (!c->p) {
        free(c);
        goto fail;
    }
    if (c->poll_mode)
        pthread_create(&c->poller, NULL, poller_main, c);
    return c;
fail:
    kp_config_destroy(cfg);
    return NULL;
}

static int kp_send_one(void *cv, const void *key, size_t klen, const void *val, size_t vlen, uint64_t stamp,
                       char *err, size_t errlen) {
    kp_client_t *c = cv;
    kp_record_t rec = KP_RECORD_INIT;
    rec.topic = c->topic;
    rec.key = key;
    rec.key_len = klen;
    rec.value = val;
    rec.value_len = vlen;
    kp_err_t e = kp_send_with_errstr(c->p, &rec, on_delivery, (void *)(uintptr_t)stamp, err, errlen);
    return e == KP_OK ? 0 : -1;
}

static int kp_flush_all(void *cv, int timeout_ms, char *err, size_t errlen) {
    kp_client_t *c = cv;
    kp_err_t e = kp_flush(c->p, timeout_ms);
    if (e != KP_OK) {
        snprintf(err, errlen, "%s (%zu outstanding)", kp_err_name(e), kp_producer_outstanding(c->p));
        return -1;
    }
    return 0;
}

static void kp_destroy_client(void *cv) {
    kp_client_t *c = cv;
    kp_producer_close(c->p, 30000);
    if (c->poll_mode) {
        atomic_store(&c->stop, 1);
        pthread_join(c->poller, NULL);
    }
    kp_producer_destroy(c->p);
    free(c);
}

static int txn_result(kp_error_t *e, char *err, size_t errlen) {
    if (!e)
        return 0;
    snprintf(err, errlen, "%s: %s", kp_err_name(kp_error_code(e)), kp_error_message(e));
    kp_error_destroy(e);
    return -1;
}
static int kp_txn_init(void *cv, char *err, size_t errlen) {
    return txn_result(kp_init_transactions(((kp_client_t *)cv)->p, 30000), err, errlen);
}
static int kp_txn_begin(void *cv, char *err, size_t errlen) {
    return txn_result(kp_begin_transaction(((kp_client_t *)cv)->p), err, errlen);
}
static int kp_txn_commit(void *cv, char *err, size_t errlen) {
    return txn_result(kp_commit_transaction(((kp_client_t *)cv)->p, 60000), err, errlen);
}

static const char *kp_ver(void) {
    static char buf[64];
    snprintf(buf, sizeof buf, "kp %s", kp_version_str());
    return buf;
}

int main(int argc, char **argv) {
    static const perf_backend_t b = {
        .name = "kp",
        .create = kp_create,
        .send = kp_send_one,
        .flush = kp_flush_all,
        .destroy = kp_destroy_client,
        .txn_init = kp_txn_init,
        .txn_begin = kp_txn_begin,
        .txn_commit = kp_txn_commit,
        .version = kp_ver,
    };
    return perf_main(argc, argv, &b);
}
