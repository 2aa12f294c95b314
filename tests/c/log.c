/* kp never prints: with or without a log callback, through connection
 * failures, a real cluster's traffic and internal panics (forced with the
 * test hook KP_TEST_FORCE_PANIC), nothing reaches stdout or stderr; with a
 * callback the panic arrives as a KP_LOG_CRIT line and the call returns
 * KP_ERR_INTERNAL.
 *
 * usage: log <bootstrap> <topic> quiet|panic-flush|panic-io|panic-silent
 * On success it prints nothing (tests/c/run.sh checks that stdout and
 * stderr stay empty); on failure it says why on stderr and exits 1. */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kp.h"

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static char crit[1024];
static int lines;
static int delivered;

static void on_log(int32_t level, const char *facility, const char *message, void *ctx) {
    (void)facility;
    (void)ctx;
    pthread_mutex_lock(&lock);
    lines++;
    if (level == KP_LOG_CRIT && !crit[0])
        snprintf(crit, sizeof crit, "%s", message);
    pthread_mutex_unlock(&lock);
}

static void on_delivery(const kp_report_t *r, void *ctx) {
    (void)ctx;
    if (kp_report_error(r) == KP_OK) {
        pthread_mutex_lock(&lock);
        delivered++;
        pthread_mutex_unlock(&lock);
    }
}

static int fail(const char *what) {
    fprintf(stderr, "FAILED: %s\n", what);
    return 1;
}

static void sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Waits up to 10 s for a KP_LOG_CRIT line containing `needle`. */
static int saw_crit(const char *needle) {
    for (int i = 0; i < 500; i++) {
        pthread_mutex_lock(&lock);
        int found = crit[0] && strstr(crit, needle) != NULL;
        pthread_mutex_unlock(&lock);
        if (found)
            return 1;
        sleep_ms(20);
    }
    return 0;
}

static kp_producer_t *producer(const char *bootstrap, int with_log, const char *debug) {
    char err[512];
    kp_config_t *cfg = kp_config_new();
    if (kp_config_set(cfg, "bootstrap.servers", bootstrap, err, sizeof err) != KP_CONFIG_OK ||
        kp_config_set(cfg, "linger.ms", "1", err, sizeof err) != KP_CONFIG_OK ||
        kp_config_set(cfg, "debug", debug, err, sizeof err) != KP_CONFIG_OK) {
        fprintf(stderr, "config: %s\n", err);
        exit(1);
    }
    if (with_log && kp_config_set_log_callback(cfg, on_log, NULL) != KP_OK)
        exit(fail("kp_config_set_log_callback"));
    kp_producer_t *p = kp_producer_new(cfg, err, sizeof err);
    if (!p) {
        fprintf(stderr, "kp_producer_new: %s\n", err);
        exit(1);
    }
    return p;
}

static int send_some(kp_producer_t *p, const char *topic, int n) {
    for (int i = 0; i < n; i++) {
        kp_record_t rec = KP_RECORD_INIT;
        char v[32];
        int len = snprintf(v, sizeof v, "log-test-%d", i);
        rec.topic = topic;
        rec.value = v;
        rec.value_len = (size_t)len;
        if (kp_send(p, &rec, on_delivery, NULL) != KP_OK)
            return fail("kp_send");
    }
    return 0;
}

int main(int argc, char **argv) {
    if (argc != 4)
        return fail("usage: log <bootstrap> <topic> quiet|panic-flush|panic-io|panic-silent");
    const char *bootstrap = argv[1], *topic = argv[2], *mode = argv[3];

    if (strcmp(mode, "quiet") == 0) {
        /* No callback, every debug context on: an unreachable broker (its
         * connection fails every backoff) and a real cluster's traffic. */
        kp_producer_t *down = producer("127.0.0.1:1", 0, "all");
        kp_producer_t *p = producer(bootstrap, 0, "all");
        if (send_some(p, topic, 100) || send_some(down, topic, 3))
            return 1;
        if (kp_flush(p, 30000) != KP_OK)
            return fail("kp_flush");
        sleep_ms(500);
        kp_producer_close(p, 10000);
        kp_producer_destroy(p);
        kp_producer_destroy(down);
        return delivered == 100 ? 0 : fail("not all 100 records delivered");
    }
    if (strcmp(mode, "panic-flush") == 0 || strcmp(mode, "panic-silent") == 0) {
        int with_log = strcmp(mode, "panic-flush") == 0;
        setenv("KP_TEST_FORCE_PANIC", "flush", 1);
        kp_producer_t *p = producer(bootstrap, with_log, "");
        if (send_some(p, topic, 10))
            return 1;
        if (kp_flush(p, 10000) != KP_ERR_INTERNAL)
            return fail("kp_flush should fail with KP_ERR_INTERNAL (forced panic)");
        if (with_log && !saw_crit("kp panicked at src/ffi/producer.rs"))
            return fail("no KP_LOG_CRIT line naming the panic");
        if (with_log && !strstr(crit, "forced by KP_TEST_FORCE_PANIC=flush"))
            return fail(crit);
        /* The producer still delivers (close waits without kp_flush). */
        kp_producer_close(p, 30000);
        kp_producer_destroy(p);
        return delivered == 10 ? 0 : fail("the 10 records were not delivered after the panic");
    }
    if (strcmp(mode, "panic-io") == 0) {
        setenv("KP_TEST_FORCE_PANIC", "io", 1);
        kp_producer_t *p = producer(bootstrap, 1, "");
        if (!saw_crit("forced by KP_TEST_FORCE_PANIC=io"))
            return fail("no KP_LOG_CRIT line for the I/O thread's panic");
        if (send_some(p, topic, 10))
            return 1;
        if (kp_flush(p, 30000) != KP_OK)
            return fail("kp_flush after the I/O thread's panic");
        kp_producer_close(p, 10000);
        kp_producer_destroy(p);
        return delivered == 10 ? 0 : fail("the 10 records were not delivered after the panic");
    }
    return fail("unknown mode");
}
