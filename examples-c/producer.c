/*
 * producer.c - kp's three ways to send: fire-and-forget, synchronous and
 * asynchronous with delivery reports.
 *
 *   producer <bootstrap-servers> <topic> [count]
 *
 * Exits non-zero if any record failed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdatomic.h>

#include "kp.h"

static atomic_int delivered_ok;
static atomic_int delivered_failed;

static void on_delivery(const kp_report_t *report, void *ctx) {
    const char *label = (const char *)ctx;
    kp_err_t err = kp_report_error(report);
    if (err == KP_OK) {
        atomic_fetch_add(&delivered_ok, 1);
        printf("delivered %s to %s [%d] at offset %lld\n", label, kp_report_topic(report),
               (int)kp_report_partition(report), (long long)kp_report_offset(report));
    } else {
        atomic_fetch_add(&delivered_failed, 1);
        fprintf(stderr, "FAILED %s: %s: %s (retriable: %s)\n", label, kp_err_name(err),
                kp_report_error_message(report), kp_report_is_retriable(report) ? "yes" : "no");
    }
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s <bootstrap-servers> <topic> [count]\n", argv[0]);
        return 2;
    }
    const char *topic = argv[2];
    int count = argc > 3 ? atoi(argv[3]) : 10;
    char errstr[512];

    if (kp_version() != KP_VERSION)
        fprintf(stderr, "warning: header %s, library %s\n", KP_VERSION_STR, kp_version_str());

    kp_config_t *cfg = kp_config_new();
    if (kp_config_set(cfg, "bootstrap.servers", argv[1], errstr, sizeof errstr) != KP_CONFIG_OK ||
        kp_config_set(cfg, "linger.ms", "5", errstr, sizeof errstr) != KP_CONFIG_OK ||
        kp_config_set(cfg, "acks", "all", errstr, sizeof errstr) != KP_CONFIG_OK) {
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

    /* 1. fire-and-forget: no callback; errors only show in kp_flush's count. */
    for (int i = 0; i < count; i++) {
        char value[64];
        int n = snprintf(value, sizeof value, "fire-and-forget %d", i);
        kp_record_t rec = KP_RECORD_INIT;
        rec.topic = topic;
        rec.value = value;
        rec.value_len = (size_t)n;
        kp_err_t err = kp_send(p, &rec, NULL, NULL);
        if (err != KP_OK) {
            fprintf(stderr, "kp_send: %s\n", kp_err_name(err));
            atomic_fetch_add(&delivered_failed, 1);
        }
    }

    /* 2. synchronous: wait for each report. */
    for (int i = 0; i < count; i++) {
        char key[32], value[64];
        int kn = snprintf(key, sizeof key, "key-%d", i);
        int vn = snprintf(value, sizeof value, "synchronous %d", i);
        kp_header_t hdr = {"origin", 6, "producer.c", 10};
        kp_record_t rec = KP_RECORD_INIT;
        rec.topic = topic;
        rec.key = key;
        rec.key_len = (size_t)kn;
        rec.value = value;
        rec.value_len = (size_t)vn;
        rec.headers = &hdr;
        rec.header_count = 1;
        int32_t partition = -1;
        int64_t offset = -1;
        kp_err_t err = kp_send_sync(p, &rec, 30000, &partition, &offset, errstr, sizeof errstr);
        if (err == KP_OK) {
            atomic_fetch_add(&delivered_ok, 1);
            printf("sync %s -> partition %d offset %lld\n", key, (int)partition, (long long)offset);
        } else {
            atomic_fetch_add(&delivered_failed, 1);
            fprintf(stderr, "sync send failed: %s: %s\n", kp_err_name(err), errstr);
        }
    }

    /* 3. asynchronous with a delivery report per record. */
    static const char *labels[] = {"async-a", "async-b", "async-c"};
    for (int i = 0; i < count; i++) {
        char value[64];
        int n = snprintf(value, sizeof value, "asynchronous %d", i);
        kp_record_t rec = KP_RECORD_INIT;
        rec.topic = topic;
        rec.value = value;
        rec.value_len = (size_t)n;
        kp_err_t err = kp_send_with_errstr(p, &rec, on_delivery, (void *)labels[i % 3], errstr, sizeof errstr);
        if (err != KP_OK) {
            fprintf(stderr, "kp_send: %s: %s\n", kp_err_name(err), errstr);
            atomic_fetch_add(&delivered_failed, 1);
        }
    }

    kp_err_t err = kp_flush(p, 30000);
    if (err != KP_OK)
        fprintf(stderr, "flush: %s (%zu outstanding)\n", kp_err_name(err), kp_producer_outstanding(p));

    /* Counters since kp_producer_new (see kp_metrics_t for all of them). */
    kp_metrics_t m = KP_METRICS_INIT;
    if (kp_producer_metrics(p, &m) == KP_OK)
        printf("metrics: %llu delivered, %llu failed, %llu produce requests, %llu batches of %llu bytes in total\n",
               (unsigned long long)m.records_delivered, (unsigned long long)m.records_failed,
               (unsigned long long)m.produce_requests, (unsigned long long)m.batches_sent,
               (unsigned long long)m.batch_bytes);
    kp_producer_close(p, 10000);
    kp_producer_destroy(p);

    printf("async reports: %d ok, %d failed\n", atomic_load(&delivered_ok), atomic_load(&delivered_failed));
    return (atomic_load(&delivered_failed) == 0 && err == KP_OK) ? 0 : 1;
}
