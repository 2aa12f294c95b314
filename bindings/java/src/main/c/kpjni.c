/*
 * kpjni.c - the JNI glue between dev.kp.Native and libkp's C ABI (kp.h).
 *
 * Thin by design: every function converts Java arguments, calls one kp_*
 * function and converts the result back. Handles are passed to Java as
 * jlong. Errors that need a message leave it in a thread-local buffer that
 * Native.lastError() reads on the same thread.
 *
 * Threads: kp never calls into the JVM from its own threads. The producer
 * runs with delivery.report.mode=poll, so delivery reports only come out of
 *   - kp_poll_reports() (batched, plain data: no call into Java), and
 *   - kp_flush() / kp_producer_close() / kp_commit_transaction() /
 *     kp_abort_transaction(), which serve waiting reports on the thread that
 *     calls them through report_cb() below. The Java side calls those only
 *     from its own I/O thread (a JVM thread inside a JNI call), and the JNI
 *     function sets tl_env/tl_sink for the duration of the call, so
 *     report_cb() calls sink.onReport() on that same thread.
 * kp's log lines come out of the same calls (and kp_producer_destroy). log_cb()
 * makes no JNI call at all: it copies each line into a per-producer queue,
 * which the I/O thread empties with Native.logTake() after each of those
 * calls and hands to SLF4J there.
 */
#include <jni.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kp.h"

#define ERRSTR_SIZE 512
#define STACK_COPY 4096

static __thread char tl_err[ERRSTR_SIZE];
static __thread int32_t tl_code;
static __thread int32_t tl_flags; /* bit 0 fatal, bit 1 txn requires abort, bit 2 retriable */
static __thread JNIEnv *tl_env;
static __thread jobject tl_sink;

static jmethodID on_report; /* void onReport(long ctx, int partition, long offset, long ts, int err) */

static void set_err(int32_t code, const char *msg) {
    tl_code = code;
    tl_flags = 0;
    if (msg == NULL || msg[0] == '\0') msg = kp_err_str(code);
    snprintf(tl_err, sizeof tl_err, "%s", msg ? msg : "");
}

/* Takes over a kp_error_t (NULL = success): records code, message, flags. */
static jint take_error(kp_error_t *e) {
    if (e == NULL) {
        tl_code = KP_OK;
        tl_flags = 0;
        tl_err[0] = '\0';
        return KP_OK;
    }
    set_err(kp_error_code(e), kp_error_message(e));
    tl_flags = (kp_error_is_fatal(e) ? 1 : 0) | (kp_error_txn_requires_abort(e) ? 2 : 0) |
               (kp_error_is_retriable(e) ? 4 : 0);
    kp_error_destroy(e);
    return tl_code;
}

static void report_cb(const kp_report_t *r, void *ctx) {
    JNIEnv *env = tl_env;
    if (env == NULL || tl_sink == NULL) return; /* unreachable: see the comment at the top */
    (*env)->CallVoidMethod(env, tl_sink, on_report, (jlong)(intptr_t)ctx, (jint)kp_report_partition(r),
                           (jlong)kp_report_offset(r), (jlong)kp_report_timestamp(r), (jint)kp_report_error(r));
    /* onReport catches every Throwable itself; clear anything left so the
     * next JNI call is legal. */
    if ((*env)->ExceptionCheck(env)) (*env)->ExceptionClear(env);
}

JNIEXPORT jint JNICALL JNI_OnLoad(JavaVM *vm, void *reserved) {
    (void)reserved;
    JNIEnv *env;
    if ((*vm)->GetEnv(vm, (void **)&env, JNI_VERSION_1_8) != JNI_OK) return JNI_ERR;
    jclass sink = (*env)->FindClass(env, "dev/kp/ReportSink");
    if (sink == NULL) return JNI_ERR;
    on_report = (*env)->GetMethodID(env, sink, "onReport", "(JIJJI)V");
    if (on_report == NULL) return JNI_ERR;
    return JNI_VERSION_1_8;
}

#define P(h) ((kp_producer_t *)(intptr_t)(h))

/* ---- config ---------------------------------------------------------- */

JNIEXPORT jlong JNICALL Java_dev_kp_Native_configNew(JNIEnv *env, jclass c) {
    (void)env, (void)c;
    return (jlong)(intptr_t)kp_config_new();
}

JNIEXPORT void JNICALL Java_dev_kp_Native_configDestroy(JNIEnv *env, jclass c, jlong cfg) {
    (void)env, (void)c;
    kp_config_destroy((kp_config_t *)(intptr_t)cfg);
}

/* Returns KP_CONFIG_OK, KP_CONFIG_INVALID or KP_CONFIG_UNKNOWN (message in lastError). */
JNIEXPORT jint JNICALL Java_dev_kp_Native_configSet(JNIEnv *env, jclass c, jlong cfg, jstring name,
                                                    jstring value) {
    (void)c;
    const char *n = (*env)->GetStringUTFChars(env, name, NULL);
    const char *v = (*env)->GetStringUTFChars(env, value, NULL);
    if (n == NULL || v == NULL) {
        if (n) (*env)->ReleaseStringUTFChars(env, name, n);
        if (v) (*env)->ReleaseStringUTFChars(env, value, v);
        return KP_CONFIG_INVALID; /* OutOfMemoryError pending */
    }
    tl_err[0] = '\0';
    kp_config_result_t r = kp_config_set((kp_config_t *)(intptr_t)cfg, n, v, tl_err, sizeof tl_err);
    (*env)->ReleaseStringUTFChars(env, name, n);
    (*env)->ReleaseStringUTFChars(env, value, v);
    return r;
}

/* ---- producer -------------------------------------------------------- */

/* Takes the config on success; returns 0 (message in lastError) on failure. */
JNIEXPORT jlong JNICALL Java_dev_kp_Native_producerNew(JNIEnv *env, jclass c, jlong cfg) {
    (void)env, (void)c;
    tl_err[0] = '\0';
    kp_producer_t *p = kp_producer_new((kp_config_t *)(intptr_t)cfg, tl_err, sizeof tl_err);
    return (jlong)(intptr_t)p;
}

JNIEXPORT void JNICALL Java_dev_kp_Native_producerDestroy(JNIEnv *env, jclass c, jlong p) {
    (void)env, (void)c;
    kp_producer_destroy(P(p));
}

JNIEXPORT jlong JNICALL Java_dev_kp_Native_outstanding(JNIEnv *env, jclass c, jlong p) {
    (void)env, (void)c;
    return (jlong)kp_producer_outstanding(P(p));
}

JNIEXPORT jint JNICALL Java_dev_kp_Native_purge(JNIEnv *env, jclass c, jlong p, jint flags) {
    (void)env, (void)c;
    return kp_purge(P(p), flags);
}

/* Returns the fatal error's code (KP_OK when healthy), message in lastError. */
JNIEXPORT jint JNICALL Java_dev_kp_Native_fatalError(JNIEnv *env, jclass c, jlong p) {
    (void)env, (void)c;
    tl_err[0] = '\0';
    tl_code = kp_producer_fatal_error(P(p), tl_err, sizeof tl_err);
    return tl_code;
}

/* Calls that may serve delivery reports on this thread: flush, close,
 * commit, abort. `sink` receives them through report_cb. */
#define WITH_SINK(env, sink, expr)                                                                 \
    do {                                                                                           \
        tl_env = (env);                                                                            \
        tl_sink = (sink);                                                                          \
        expr;                                                                                      \
        tl_env = NULL;                                                                             \
        tl_sink = NULL;                                                                            \
    } while (0)

JNIEXPORT jint JNICALL Java_dev_kp_Native_flush(JNIEnv *env, jclass c, jlong p, jint timeout_ms,
                                                jobject sink) {
    (void)c;
    kp_err_t r;
    WITH_SINK(env, sink, r = kp_flush(P(p), timeout_ms));
    return r;
}

JNIEXPORT jint JNICALL Java_dev_kp_Native_close(JNIEnv *env, jclass c, jlong p, jint timeout_ms,
                                                jobject sink) {
    (void)c;
    kp_err_t r;
    WITH_SINK(env, sink, r = kp_producer_close(P(p), timeout_ms));
    return r;
}

/* ---- log lines ------------------------------------------------------- */

#define LOG_MAX 10000 /* lines kept between two logTake() calls; more are counted */

typedef struct {
    int32_t level;
    char *facility, *message; /* malloc'ed copies */
} log_line;

typedef struct {
    pthread_mutex_t mu; /* the I/O thread logs; the Cleaner's destroy may too */
    log_line *items;
    size_t len, cap;
    uint64_t dropped;
} log_queue;

/* kp_log_fn_t: runs inside kp_poll_reports/kp_flush/close/destroy on the
 * thread calling them; copies the line (valid during the call only). */
static void log_cb(int32_t level, const char *facility, const char *message, void *ctx) {
    log_queue *q = ctx;
    pthread_mutex_lock(&q->mu);
    if (q->len == q->cap) {
        size_t cap = q->cap ? 2 * q->cap : 16;
        log_line *grown = q->len < LOG_MAX ? realloc(q->items, cap * sizeof *grown) : NULL;
        if (grown == NULL) {
            q->dropped++;
            pthread_mutex_unlock(&q->mu);
            return;
        }
        q->items = grown;
        q->cap = cap;
    }
    log_line *l = &q->items[q->len];
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

/* A queue registered as cfg's log callback; 0 without memory. Free it with
 * logQueueFree() after producerDestroy() (or when producerNew failed). */
JNIEXPORT jlong JNICALL Java_dev_kp_Native_logQueueNew(JNIEnv *env, jclass c, jlong cfg) {
    (void)env, (void)c;
    log_queue *q = calloc(1, sizeof *q);
    if (q == NULL) return 0;
    pthread_mutex_init(&q->mu, NULL);
    if (kp_config_set_log_callback((kp_config_t *)(intptr_t)cfg, log_cb, q) != KP_OK) {
        pthread_mutex_destroy(&q->mu);
        free(q);
        return 0;
    }
    return (jlong)(intptr_t)q;
}

static void free_lines(log_line *items, size_t n) {
    for (size_t i = 0; i < n; i++) {
        free(items[i].facility);
        free(items[i].message);
    }
    free(items);
}

JNIEXPORT void JNICALL Java_dev_kp_Native_logQueueFree(JNIEnv *env, jclass c, jlong h) {
    (void)env, (void)c;
    log_queue *q = (log_queue *)(intptr_t)h;
    if (q == NULL) return;
    free_lines(q->items, q->len);
    pthread_mutex_destroy(&q->mu);
    free(q);
}

/*
 * Takes the lines logged since the last call: null when there are none, else
 * 3 strings a line (level "0".."7", facility, message), in kp's order, then,
 * when lines were dropped (past LOG_MAX or without memory), one WARNING line
 * saying how many.
 */
JNIEXPORT jobjectArray JNICALL Java_dev_kp_Native_logTake(JNIEnv *env, jclass c, jlong h) {
    (void)c;
    log_queue *q = (log_queue *)(intptr_t)h;
    if (q == NULL) return NULL;
    pthread_mutex_lock(&q->mu);
    log_line *items = q->items;
    size_t n = q->len;
    uint64_t dropped = q->dropped;
    q->items = NULL;
    q->len = q->cap = 0;
    q->dropped = 0;
    pthread_mutex_unlock(&q->mu);
    if (n == 0 && dropped == 0) {
        free(items);
        return NULL;
    }
    size_t lines = n + (dropped ? 1 : 0);
    jclass string = (*env)->FindClass(env, "java/lang/String");
    jobjectArray out = string ? (*env)->NewObjectArray(env, (jsize)(3 * lines), string, NULL) : NULL;
    for (size_t i = 0; out != NULL && i < lines; i++) {
        char level[2] = {(char)('0' + (i < n ? items[i].level & 7 : KP_LOG_WARNING)), '\0'};
        char note[96];
        if (i == n) snprintf(note, sizeof note, "kp-java: %llu log lines dropped (more than %d between two drains, or no memory)",
                             (unsigned long long)dropped, LOG_MAX);
        const char *parts[3] = {level, i < n ? items[i].facility : "producer", i < n ? items[i].message : note};
        for (int k = 0; k < 3; k++) {
            jstring js = (*env)->NewStringUTF(env, parts[k]);
            if (js == NULL) { /* OutOfMemoryError pending */
                out = NULL;
                break;
            }
            (*env)->SetObjectArrayElement(env, out, (jsize)(3 * i + (size_t)k), js);
            (*env)->DeleteLocalRef(env, js);
        }
    }
    free_lines(items, n);
    return out;
}

/* ---- sending --------------------------------------------------------- */

/* Copies a byte[] region into `stack` when it fits, else into malloc'd
 * memory (*heap, freed by the caller). Returns NULL for a null array. */
static const void *bytes_of(JNIEnv *env, jbyteArray a, jsize len, char *stack, size_t stack_size,
                            void **heap) {
    static const char empty[1];
    if (a == NULL) return NULL;
    if (len == 0) return empty; /* an empty array is not a null one */
    void *dst = stack;
    if ((size_t)len > stack_size) {
        dst = malloc((size_t)len);
        if (dst == NULL) return NULL;
        *heap = dst;
    }
    (*env)->GetByteArrayRegion(env, a, 0, len, (jbyte *)dst);
    return dst;
}

/* kp_send of `rec` with its report going to report_cb; a refusal's code and
 * message are kept for lastError (this thread's). */
static jint send_record(jlong p, const kp_record_t *rec, jlong ctx) {
    tl_err[0] = '\0';
    jint rc = kp_send_with_errstr(P(p), rec, report_cb, (void *)(intptr_t)ctx, tl_err, sizeof tl_err);
    if (rc != KP_OK) tl_code = rc;
    return rc;
}

/*
 * send(p, topic (NUL-terminated UTF-8), partition, key, value, timestamp,
 *      headers (alternating name, value byte[]; null when none), ctx)
 * Returns KP_OK or the kp_err_t refusing the record (message in lastError).
 */
JNIEXPORT jint JNICALL Java_dev_kp_Native_send(JNIEnv *env, jclass c, jlong p, jbyteArray topic,
                                               jint partition, jbyteArray key, jbyteArray value,
                                               jlong timestamp, jobjectArray headers, jlong ctx) {
    (void)c;
    char topic_buf[256], key_buf[512], value_buf[STACK_COPY];
    void *topic_heap = NULL, *key_heap = NULL, *value_heap = NULL;
    kp_header_t hdr_stack[8];
    kp_header_t *hdrs = NULL;
    void **hdr_heap = NULL;
    size_t nh = 0;
    jint rc = KP_ERR_INTERNAL;

    jsize tlen = (*env)->GetArrayLength(env, topic);
    kp_record_t rec = KP_RECORD_INIT;
    rec.topic = bytes_of(env, topic, tlen, topic_buf, sizeof topic_buf, &topic_heap);
    rec.partition = partition;
    if (key != NULL) {
        rec.key_len = (size_t)(*env)->GetArrayLength(env, key);
        rec.key = bytes_of(env, key, (jsize)rec.key_len, key_buf, sizeof key_buf, &key_heap);
    }
    if (value != NULL) {
        rec.value_len = (size_t)(*env)->GetArrayLength(env, value);
        rec.value = bytes_of(env, value, (jsize)rec.value_len, value_buf, sizeof value_buf, &value_heap);
    }
    rec.timestamp_ms = timestamp;
    if (headers != NULL) {
        nh = (size_t)(*env)->GetArrayLength(env, headers) / 2;
        hdrs = nh <= 8 ? hdr_stack : calloc(nh, sizeof *hdrs);
        hdr_heap = calloc(nh * 2 + 1, sizeof *hdr_heap);
        if (hdrs == NULL || hdr_heap == NULL) {
            set_err(KP_ERR_INTERNAL, "out of memory copying the headers");
            goto out;
        }
        memset(hdrs, 0, nh * sizeof *hdrs); /* a null value stays NULL */
        for (size_t i = 0; i < nh; i++) {
            jbyteArray k = (*env)->GetObjectArrayElement(env, headers, (jsize)(2 * i));
            jbyteArray v = (*env)->GetObjectArrayElement(env, headers, (jsize)(2 * i + 1));
            jsize kl = (*env)->GetArrayLength(env, k);
            hdrs[i].key = bytes_of(env, k, kl, NULL, 0, &hdr_heap[2 * i]);
            hdrs[i].key_len = (size_t)kl;
            if (v != NULL) {
                jsize vl = (*env)->GetArrayLength(env, v);
                hdrs[i].value = bytes_of(env, v, vl, NULL, 0, &hdr_heap[2 * i + 1]);
                hdrs[i].value_len = (size_t)vl;
            }
            (*env)->DeleteLocalRef(env, k);
            if (v != NULL) (*env)->DeleteLocalRef(env, v);
        }
        rec.headers = hdrs;
        rec.header_count = nh;
    }
    if ((tlen > 0 && rec.topic == NULL) || (key != NULL && rec.key == NULL) ||
        (value != NULL && rec.value == NULL)) {
        set_err(KP_ERR_INTERNAL, "out of memory copying the record");
        goto out;
    }
    rc = send_record(p, &rec, ctx);
out:
    free(topic_heap);
    free(key_heap);
    free(value_heap);
    if (hdr_heap != NULL)
        for (size_t i = 0; i < 2 * nh; i++) free(hdr_heap[i]);
    free(hdr_heap);
    if (hdrs != hdr_stack) free(hdrs);
    return rc;
}

JNIEXPORT jlong JNICALL Java_dev_kp_Native_bufferAddress(JNIEnv *env, jclass c, jobject direct) {
    (void)c;
    return (jlong)(intptr_t)(*env)->GetDirectBufferAddress(env, direct);
}

/*
 * sendBuffered(p, addr, topic_len, partition, key_len, value_len, timestamp, ctx):
 * the record laid out at addr by dev.kp.SendBuffer - topic (NUL-terminated,
 * topic_len bytes with the NUL), key, value; a length of -1 is a null key or
 * value. Only primitives cross: no JNI call per array. Returns as send().
 */
JNIEXPORT jint JNICALL Java_dev_kp_Native_sendBuffered(JNIEnv *env, jclass c, jlong p, jlong addr,
                                                       jint topic_len, jint partition, jint key_len,
                                                       jint value_len, jlong timestamp, jlong ctx) {
    (void)env, (void)c;
    const char *b = (const char *)(intptr_t)addr;
    kp_record_t rec = KP_RECORD_INIT;
    rec.topic = b;
    b += topic_len;
    rec.partition = partition;
    if (key_len >= 0) {
        rec.key = b;
        rec.key_len = (size_t)key_len;
        b += key_len;
    }
    if (value_len >= 0) {
        rec.value = b;
        rec.value_len = (size_t)value_len;
    }
    rec.timestamp_ms = timestamp;
    return send_record(p, &rec, ctx);
}

/*
 * Drains up to `max` delivery reports into `out`, 4 longs each:
 * ctx, offset, timestamp, (partition << 32) | (error & 0xffffffff).
 * Returns how many (0 on timeout) or a negative kp_err_t.
 */
JNIEXPORT jint JNICALL Java_dev_kp_Native_pollReports(JNIEnv *env, jclass c, jlong p, jlongArray out,
                                                      jint max, jint timeout_ms) {
    (void)c;
    enum { CHUNK = 512 };
    kp_report_info_t infos[CHUNK];
    if (max > CHUNK) max = CHUNK;
    infos[0] = (kp_report_info_t)KP_REPORT_INFO_INIT;
    int n = kp_poll_reports(P(p), infos, (size_t)max, timeout_ms);
    if (n <= 0) return n;
    jlong packed[4 * CHUNK];
    for (int i = 0; i < n; i++) {
        packed[4 * i] = (jlong)(intptr_t)infos[i].ctx;
        packed[4 * i + 1] = infos[i].offset;
        packed[4 * i + 2] = infos[i].timestamp;
        packed[4 * i + 3] = ((jlong)infos[i].partition << 32) | (jlong)(uint32_t)infos[i].error;
    }
    (*env)->SetLongArrayRegion(env, out, 0, 4 * n, packed);
    return n;
}

/* ---- errors ---------------------------------------------------------- */

JNIEXPORT jstring JNICALL Java_dev_kp_Native_lastError(JNIEnv *env, jclass c) {
    (void)c;
    return (*env)->NewStringUTF(env, tl_err);
}

JNIEXPORT jint JNICALL Java_dev_kp_Native_lastErrorFlags(JNIEnv *env, jclass c) {
    (void)env, (void)c;
    return tl_flags;
}

JNIEXPORT jint JNICALL Java_dev_kp_Native_lastErrorCode(JNIEnv *env, jclass c) {
    (void)env, (void)c;
    return tl_code;
}

JNIEXPORT jstring JNICALL Java_dev_kp_Native_errName(JNIEnv *env, jclass c, jint code) {
    (void)c;
    return (*env)->NewStringUTF(env, kp_err_name(code));
}

JNIEXPORT jstring JNICALL Java_dev_kp_Native_errStr(JNIEnv *env, jclass c, jint code) {
    (void)c;
    return (*env)->NewStringUTF(env, kp_err_str(code));
}

/* ---- metadata, metrics ----------------------------------------------- */

/* Leaders of the topic's partitions (index = partition), or null on error. */
JNIEXPORT jintArray JNICALL Java_dev_kp_Native_partitionsFor(JNIEnv *env, jclass c, jlong p,
                                                             jstring topic, jint timeout_ms) {
    (void)c;
    const char *t = (*env)->GetStringUTFChars(env, topic, NULL);
    if (t == NULL) return NULL;
    kp_topic_info_t *info = NULL;
    tl_err[0] = '\0';
    kp_err_t r = kp_partitions_for(P(p), t, timeout_ms, &info, tl_err, sizeof tl_err);
    (*env)->ReleaseStringUTFChars(env, topic, t);
    if (r != KP_OK) {
        tl_code = r;
        return NULL;
    }
    int32_t n = kp_topic_info_partition_count(info);
    jintArray out = (*env)->NewIntArray(env, n);
    if (out != NULL) {
        for (int32_t i = 0; i < n; i++) {
            jint leader = kp_topic_info_leader(info, i);
            (*env)->SetIntArrayRegion(env, out, i, 1, &leader);
        }
    }
    kp_topic_info_destroy(info);
    return out;
}

/* The kp_metrics_t counters in declaration order, or null on error. */
JNIEXPORT jlongArray JNICALL Java_dev_kp_Native_metrics(JNIEnv *env, jclass c, jlong p) {
    (void)c;
    kp_metrics_t m = KP_METRICS_INIT;
    if (kp_producer_metrics(P(p), &m) != KP_OK) return NULL;
    size_t n = (m.struct_size - sizeof(size_t)) / sizeof(uint64_t);
    jlongArray out = (*env)->NewLongArray(env, (jsize)n);
    if (out != NULL)
        (*env)->SetLongArrayRegion(env, out, 0, (jsize)n, (const jlong *)((const char *)&m + sizeof(size_t)));
    return out;
}

/* ---- transactions ---------------------------------------------------- */
/* Each returns KP_OK or the error code; message and flags in lastError*. */

JNIEXPORT jint JNICALL Java_dev_kp_Native_initTransactions(JNIEnv *env, jclass c, jlong p, jint timeout_ms) {
    (void)env, (void)c;
    return take_error(kp_init_transactions(P(p), timeout_ms));
}

JNIEXPORT jint JNICALL Java_dev_kp_Native_beginTransaction(JNIEnv *env, jclass c, jlong p) {
    (void)env, (void)c;
    return take_error(kp_begin_transaction(P(p)));
}

JNIEXPORT jint JNICALL Java_dev_kp_Native_commitTransaction(JNIEnv *env, jclass c, jlong p, jint timeout_ms,
                                                            jobject sink) {
    (void)c;
    kp_error_t *e;
    WITH_SINK(env, sink, e = kp_commit_transaction(P(p), timeout_ms));
    return take_error(e);
}

JNIEXPORT jint JNICALL Java_dev_kp_Native_abortTransaction(JNIEnv *env, jclass c, jlong p, jint timeout_ms,
                                                           jobject sink) {
    (void)c;
    kp_error_t *e;
    WITH_SINK(env, sink, e = kp_abort_transaction(P(p), timeout_ms));
    return take_error(e);
}

JNIEXPORT jint JNICALL Java_dev_kp_Native_sendOffsetsToTransaction(JNIEnv *env, jclass c, jlong p,
                                                                   jobjectArray topics, jintArray partitions,
                                                                   jlongArray offsets, jstring group,
                                                                   jint timeout_ms) {
    (void)c;
    kp_offsets_t *o = kp_offsets_new();
    jsize n = (*env)->GetArrayLength(env, topics);
    jint rc = KP_OK;
    for (jsize i = 0; i < n && rc == KP_OK; i++) {
        jstring ts = (*env)->GetObjectArrayElement(env, topics, i);
        const char *t = (*env)->GetStringUTFChars(env, ts, NULL);
        jint part;
        jlong off;
        (*env)->GetIntArrayRegion(env, partitions, i, 1, &part);
        (*env)->GetLongArrayRegion(env, offsets, i, 1, &off);
        if (t == NULL) {
            rc = KP_ERR_INTERNAL;
        } else {
            rc = kp_offsets_add(o, t, part, off);
            (*env)->ReleaseStringUTFChars(env, ts, t);
        }
        (*env)->DeleteLocalRef(env, ts);
    }
    if (rc != KP_OK) {
        kp_offsets_destroy(o);
        set_err(rc, NULL);
        return rc;
    }
    const char *g = (*env)->GetStringUTFChars(env, group, NULL);
    if (g == NULL) {
        kp_offsets_destroy(o);
        set_err(KP_ERR_INTERNAL, NULL);
        return KP_ERR_INTERNAL;
    }
    rc = take_error(kp_send_offsets_to_transaction(P(p), o, g, timeout_ms));
    (*env)->ReleaseStringUTFChars(env, group, g);
    kp_offsets_destroy(o);
    return rc;
}
