/*
 * rdkafka-perf.c - the same benchmark (flags, output) as kp-perf, over
 * librdkafka (2.12.x, built from the rdkafka-sys crate by perf/setup.sh).
 *
 * Settings are mapped to librdkafka's names; so that it runs the same
 * configuration as the other clients, it gets by default:
 * partitioner=murmur2_random (the Java client's key placement),
 * max.in.flight=5, queue.buffering.max.kbytes=32768 (buffer.memory 32 MiB)
 * and a message-count limit high enough that only the byte limit binds.
 * --producer-property overrides any of them. Delivery reports are served by
 * a dedicated thread calling rd_kafka_poll() (like kp's callback thread);
 * rd_kafka_producev() blocks (RD_KAFKA_MSG_F_BLOCK) when the queue is full.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "perf_common.h"
#include "rdkafka.h"

typedef struct {
    rd_kafka_t *rk;
    rd_kafka_topic_t *rkt;
    _Atomic int stop;
    pthread_t poller;
} rdk_client_t;

static void dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque) {
    (void)rk;
    (void)opaque;
    perf_delivered((uint64_t)(uintptr_t)m->_private, m->err, m->err ? rd_kafka_err2str(m->err) : NULL);
}

static void *poller_main(void *arg) {
    rdk_client_t *c = arg;
    while (!atomic_load(&c->stop))
        rd_kafka_poll(c->rk, 100);
    return NULL;
}

static int set(rd_kafka_conf_t *conf, const char *k, const char *v, char *err, size_t errlen) {
    if (rd_kafka_conf_set(conf, k, v, err, errlen) != RD_KAFKA_CONF_OK) {
        size_t n = strlen(err);
        snprintf(err + n, errlen - n, " (setting %s=%s)", k, v);
        return -1;
    }
    return 0;
}

static void *rdk_create(const perf_opts_t *o, char *err, size_t errlen) {
    char num[32];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (set(conf, "bootstrap.servers", o->bootstrap, err, errlen) ||
        set(conf, "partitioner", "murmur2_random", err, errlen) ||
        set(conf, "max.in.flight", "5", err, errlen) ||
        set(conf, "queue.buffering.max.kbytes", "32768", err, errlen) ||
        set(conf, "queue.buffering.max.messages", "10000000", err, errlen))
        goto fail;
    if (o->acks && set(conf, "acks", o->acks, err, errlen))
        goto fail;
    if (o->linger_ms >= 0) {
        snprintf(num, sizeof num, "%d", o->linger_ms);
        if (set(conf, "linger.ms", num, err, errlen))
            goto fail;
    }
    if (o->batch_size > 0) {
        snprintf(num, sizeof num, "%d", o->batch_size);
        if (set(conf, "batch.size", num, err, errlen))
            goto fail;
    }
    if (o->compression && set(conf, "compression.codec", o->compression, err, errlen))
        goto fail;
    if (o->idempotence >= 0 && set(conf, "enable.idempotence", o->idempotence ? "true" : "false", err, errlen))
        goto fail;
    if (o->transactional_id && set(conf, "transactional.id", o->transactional_id, err, errlen))
        goto fail;
    for (int i = 0; i < o->nprops; i++)
        if (set(conf, o->prop_key[i], o->prop_val[i], err, errlen))
            goto fail;
    rd_kafka_conf_set_dr_msg_cb(conf, dr_cb);
    rdk_client_t *c = calloc(1, sizeof *c);
    c->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, errlen);
    if (!c->rk) {
        free(c);
        goto fail;
    }
    c->rkt = rd_kafka_topic_new(c->rk, o->topic, NULL);
    pthread_create(&c->poller, NULL, poller_main, c);
    return c;
fail:
    rd_kafka_conf_destroy(conf);
    return NULL;
}

static int rdk_send(void *cv, const void *key, size_t klen, const void *val, size_t vlen, uint64_t stamp,
                    char *err, size_t errlen) {
    rdk_client_t *c = cv;
    rd_kafka_resp_err_t e =
        rd_kafka_producev(c->rk, RD_KAFKA_V_RKT(c->rkt), RD_KAFKA_V_KEY(key, klen),
                          RD_KAFKA_V_VALUE((void *)val, vlen),
                          RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY | RD_KAFKA_MSG_F_BLOCK),
                          RD_KAFKA_V_OPAQUE((void *)(uintptr_t)stamp), RD_KAFKA_V_END);
    if (e) {
        snprintf(err, errlen, "%s", rd_kafka_err2str(e));
        return -1;
    }
    return 0;
}

static int rdk_flush(void *cv, int timeout_ms, char *err, size_t errlen) {
    rdk_client_t *c = cv;
    rd_kafka_resp_err_t e = rd_kafka_flush(c->rk, timeout_ms);
    if (e) {
        snprintf(err, errlen, "%s (%d outstanding)", rd_kafka_err2str(e), rd_kafka_outq_len(c->rk));
        return -1;
    }
    return 0;
}

static int txn_result(rd_kafka_error_t *e, char *err, size_t errlen) {
    if (!e)
        return 0;
    snprintf(err, errlen, "%s", rd_kafka_error_string(e));
    rd_kafka_error_destroy(e);
    return -1;
}

static int rdk_txn_init(void *cv, char *err, size_t errlen) {
    return txn_result(rd_kafka_init_transactions(((rdk_client_t *)cv)->rk, 30000), err, errlen);
}
static int rdk_txn_begin(void *cv, char *err, size_t errlen) {
    return txn_result(rd_kafka_begin_transaction(((rdk_client_t *)cv)->rk), err, errlen);
}
static int rdk_txn_commit(void *cv, char *err, size_t errlen) {
    return txn_result(rd_kafka_commit_transaction(((rdk_client_t *)cv)->rk, 60000), err, errlen);
}

static void rdk_destroy(void *cv) {
    rdk_client_t *c = cv;
    rd_kafka_flush(c->rk, 30000);
    atomic_store(&c->stop, 1);
    pthread_join(c->poller, NULL);
    rd_kafka_topic_destroy(c->rkt);
    rd_kafka_destroy(c->rk);
    free(c);
}

static const char *rdk_ver(void) {
    static char buf[64];
    snprintf(buf, sizeof buf, "librdkafka %s", rd_kafka_version_str());
    return buf;
}

int main(int argc, char **argv) {
    static const perf_backend_t b = {
        .name = "librdkafka",
        .create = rdk_create,
        .send = rdk_send,
        .flush = rdk_flush,
        .txn_init = rdk_txn_init,
        .txn_begin = rdk_txn_begin,
        .txn_commit = rdk_txn_commit,
        .destroy = rdk_destroy,
        .version = rdk_ver,
    };
    return perf_main(argc, argv, &b);
}
