/* C side of the Go binding (see shim.h). Nothing here calls into Go. */
#include "shim.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* Reports served by kp_flush()/kp_producer_close() on this thread, collected
 * by kpgo_collect() while a kpgo_flush()/kpgo_close() call runs. */
static __thread kp_report_info_t *tl_reports;
static __thread size_t tl_len, tl_cap;

/* The delivery callback of every record the binding sends. In poll mode kp
 * calls it only inside kp_flush()/kp_producer_close()/kp_poll() on the
 * calling thread (the binding's poller drains with kp_poll_reports(), which
 * calls no callback), so it only ever runs inside kpgo_flush/kpgo_close. */
static void kpgo_collect(const kp_report_t *r, void *ctx) {
    if (tl_len == tl_cap) {
        size_t cap = tl_cap ? tl_cap * 2 : 256;
        kp_report_info_t *grown = realloc(tl_reports, cap * sizeof *grown);
        if (grown == NULL) {
            /* A report must never be lost; without memory there is no way on. */
            abort();
        }
        tl_reports = grown;
        tl_cap = cap;
    }
    kp_report_info_t *i = &tl_reports[tl_len++];
    memset(i, 0, sizeof *i);
    i->struct_size = sizeof *i;
    i->topic = NULL; /* valid only during the callback; Go keeps the record's */
    i->partition = kp_report_partition(r);
    i->offset = kp_report_offset(r);
    i->timestamp = kp_report_timestamp(r);
    i->error = kp_report_error(r);
    i->error_class = kp_report_error_class(r);
    i->persistence = kp_report_persistence(r);
    i->ctx = ctx;
}

#define CHUNK 64
#define CHUNK_HDRS 256

size_t kpgo_send(kp_producer_t *p, const uint8_t *blob, const kpgo_rec *recs, size_t n,
                 const kpgo_hdr *hdrs, const uintptr_t *ctxs, int32_t *results) {
    kp_record_t c[CHUNK];
    void *cctx[CHUNK];
    kp_header_t ch[CHUNK_HDRS];
    size_t accepted = 0;
    size_t i = 0;
    while (i < n) {
        size_t k = 0, h = 0;
        kp_header_t *big = NULL; /* headers of a record with more than CHUNK_HDRS */
        while (i + k < n && k < CHUNK) {
            const kpgo_rec *g = &recs[i + k];
            kp_header_t *dst;
            if (g->hdr_count > CHUNK_HDRS) {
                if (k > 0) {
                    break; /* send what is gathered, then this record alone */
                }
                big = malloc(g->hdr_count * sizeof *big);
                if (big == NULL) {
                    results[i] = KP_ERR_INTERNAL;
                    i++;
                    continue;
                }
                dst = big;
            } else if (h + g->hdr_count > CHUNK_HDRS) {
                break;
            } else {
                dst = &ch[h];
            }
            for (uint64_t j = 0; j < g->hdr_count; j++) {
                const kpgo_hdr *s = &hdrs[g->hdr_first + j];
                dst[j].key = (const char *)blob + s->key_off;
                dst[j].key_len = s->key_len;
                dst[j].value = s->has_value ? blob + s->value_off : NULL;
                dst[j].value_len = s->value_len;
            }
            kp_record_t r = KP_RECORD_INIT;
            r.topic = (const char *)blob + g->topic_off;
            r.partition = g->partition;
            if (g->flags & KPGO_KEY) {
                r.key = blob + g->key_off;
                r.key_len = g->key_len;
            }
            if (g->flags & KPGO_VALUE) {
                r.value = blob + g->value_off;
                r.value_len = g->value_len;
            }
            r.headers = g->hdr_count ? dst : NULL;
            r.header_count = g->hdr_count;
            r.timestamp_ms = g->timestamp_ms;
            c[k] = r;
            cctx[k] = (void *)ctxs[i + k];
            k++;
            if (big != NULL) {
                break;
            }
            h += g->hdr_count;
        }
        if (k > 0) {
            accepted += kp_send_batch(p, c, k, kpgo_collect, cctx, results + i);
        }
        free(big);
        i += k;
    }
    return accepted;
}

static void take_collected(kp_report_info_t **out, size_t *n) {
    *out = tl_reports;
    *n = tl_len;
    tl_reports = NULL;
    tl_len = tl_cap = 0;
}

kp_err_t kpgo_flush(kp_producer_t *p, int32_t timeout_ms, kp_report_info_t **out, size_t *n) {
    kp_err_t e = kp_flush(p, timeout_ms);
    take_collected(out, n);
    return e;
}

kp_err_t kpgo_close(kp_producer_t *p, int32_t timeout_ms, kp_report_info_t **out, size_t *n) {
    kp_err_t e = kp_producer_close(p, timeout_ms);
    take_collected(out, n);
    return e;
}

#define LOG_MAX 10000 /* lines kept between two takes */

struct kpgo_logq {
    pthread_mutex_t mu;
    kpgo_log *items;
    size_t len, cap;
    uint64_t dropped;
};

static void kpgo_log_collect(int32_t level, const char *facility, const char *message, void *ctx) {
    kpgo_logq *q = ctx;
    pthread_mutex_lock(&q->mu);
    if (q->len == q->cap) {
        size_t cap = q->cap ? q->cap * 2 : 64;
        kpgo_log *grown = q->len < LOG_MAX ? realloc(q->items, cap * sizeof *grown) : NULL;
        if (grown == NULL) {
            q->dropped++;
            pthread_mutex_unlock(&q->mu);
            return;
        }
        q->items = grown;
        q->cap = cap;
    }
    kpgo_log *l = &q->items[q->len];
    l->level = level;
    l->facility = strdup(facility ? facility : "");
    l->message = strdup(message ? message : "");
    if (l->facility == NULL || l->message == NULL) {
        free(l->facility);
        free(l->message);
        q->dropped++;
    } else {
        q->len++;
    }
    pthread_mutex_unlock(&q->mu);
}

kpgo_logq *kpgo_logq_new(kp_config_t *cfg) {
    kpgo_logq *q = calloc(1, sizeof *q);
    if (q == NULL) {
        return NULL;
    }
    pthread_mutex_init(&q->mu, NULL);
    if (kp_config_set_log_callback(cfg, kpgo_log_collect, q) != KP_OK) {
        kpgo_logq_free(q);
        return NULL;
    }
    return q;
}

kpgo_log *kpgo_logq_take(kpgo_logq *q, size_t *n, uint64_t *dropped) {
    pthread_mutex_lock(&q->mu);
    kpgo_log *items = q->items;
    *n = q->len;
    *dropped = q->dropped;
    q->items = NULL;
    q->len = q->cap = 0;
    q->dropped = 0;
    pthread_mutex_unlock(&q->mu);
    return items;
}

void kpgo_logs_free(kpgo_log *l, size_t n) {
    for (size_t i = 0; i < n; i++) {
        free(l[i].facility);
        free(l[i].message);
    }
    free(l);
}

void kpgo_logq_free(kpgo_logq *q) {
    if (q == NULL) {
        return;
    }
    size_t n;
    uint64_t dropped;
    kpgo_log *rest = kpgo_logq_take(q, &n, &dropped);
    kpgo_logs_free(rest, n);
    pthread_mutex_destroy(&q->mu);
    free(q);
}

int kpgo_dup_fd(int fd) { return fd < 0 ? -1 : fcntl(fd, F_DUPFD_CLOEXEC, 0); }
