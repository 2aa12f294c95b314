/* C side of the Go binding: flat, pointer-free descriptions of records that
 * Go can pass to C under the cgo pointer rules (offsets into one byte blob
 * instead of pointers), and the collection of delivery reports served inside
 * kp_flush()/kp_producer_close() without calling back into Go. */
#ifndef KPGO_SHIM_H
#define KPGO_SHIM_H

#include <stddef.h>
#include <stdint.h>

#include <kp.h>

/* One record: byte ranges of `blob` (offsets, not pointers). */
typedef struct kpgo_rec {
    uint64_t topic_off; /* NUL-terminated topic name in the blob */
    uint64_t key_off;
    uint64_t key_len;
    uint64_t value_off;
    uint64_t value_len;
    uint64_t hdr_first; /* index of the first header in the header array */
    uint64_t hdr_count;
    int64_t timestamp_ms; /* 0: now */
    int32_t partition;    /* KP_PARTITION_ANY: the partitioner decides */
    int32_t flags;        /* KPGO_KEY | KPGO_VALUE: which of key/value is non-null */
} kpgo_rec;

/* One header: byte ranges of `blob`. */
typedef struct kpgo_hdr {
    uint64_t key_off;
    uint64_t key_len;
    uint64_t value_off;
    uint64_t value_len;
    int64_t has_value; /* 0: null value */
} kpgo_hdr;

#define KPGO_KEY 1
#define KPGO_VALUE 2

/* Sends n records in one call (kp_send_batch, in chunks on the C stack).
 * ctxs[i] is record i's report context, results[i] receives its kp_send
 * result. Returns how many were accepted. */
size_t kpgo_send(kp_producer_t *p, const uint8_t *blob, const kpgo_rec *recs, size_t n,
                 const kpgo_hdr *hdrs, const uintptr_t *ctxs, int32_t *results);

/* kp_flush()/kp_producer_close() in poll mode serve reports on the calling
 * thread through the records' callback: these wrappers collect them into a
 * malloc'ed array handed to the caller (*out, *n; free it with free()). */
kp_err_t kpgo_flush(kp_producer_t *p, int32_t timeout_ms, kp_report_info_t **out, size_t *n);
kp_err_t kpgo_close(kp_producer_t *p, int32_t timeout_ms, kp_report_info_t **out, size_t *n);

/* kp's log lines, collected in C: the callback runs inside
 * kp_poll_reports()/kp_flush()/kp_producer_close() on the calling thread
 * and only copies the line into the queue; Go takes the lines after the
 * call. Nothing calls into Go. */
typedef struct kpgo_log {
    int32_t level;
    char *facility; /* malloc'ed copies, freed by kpgo_logs_free() */
    char *message;
} kpgo_log;

typedef struct kpgo_logq kpgo_logq;

/* A queue (NULL without memory), registered on cfg as its log callback's
 * ctx; free it with kpgo_logq_free() after kp_producer_destroy(). */
kpgo_logq *kpgo_logq_new(kp_config_t *cfg);
void kpgo_logq_free(kpgo_logq *q);

/* Moves the queued lines out (*n of them; NULL when none): free them with
 * kpgo_logs_free(). Lines dropped for want of memory or past the queue's
 * bound are counted in *dropped. */
kpgo_log *kpgo_logq_take(kpgo_logq *q, size_t *n, uint64_t *dropped);
void kpgo_logs_free(kpgo_log *l, size_t n);

/* A close-on-exec duplicate of fd (-1 on failure), for Go's netpoller to
 * wait on kp_poll_fd() without owning it. */
int kpgo_dup_fd(int fd);

#endif
