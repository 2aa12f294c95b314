/* Instructions per report of the batched drain (kp_poll_reports) vs one
 * callback per record (kp_poll), poll mode (BENCHMARKS.md). The records go
 * to a real broker; the measured calls only serve reports that are already
 * queued (the program waits until kp has them all). The callback reads the
 * fields a kp_report_info_t carries, through the accessors, as a binding
 * would:
 *   cc -O2 -Iinclude perf/callgrind/drain.c -Ltarget/release -lkp -o drain
 *   valgrind --tool=callgrind --toggle-collect=kp_poll --toggle-collect=kp_poll_reports \
 *       ./drain <bootstrap> <topic> callback|drain */
#include "kp.h"
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#define N 20000

static uint64_t sum;

static void cb(const kp_report_t *r, void *ctx) {
    sum += (uint64_t)(size_t)kp_report_topic(r) + (uint64_t)kp_report_partition(r) +
           (uint64_t)kp_report_offset(r) + (uint64_t)kp_report_timestamp(r) +
           (uint64_t)kp_report_error(r) + (uint64_t)kp_report_error_class(r) +
           (uint64_t)kp_report_persistence(r) + (uint64_t)(size_t)ctx;
}

int main(int argc, char **argv) {
    if (argc != 4)
        return 2;
    int drain = strcmp(argv[3], "drain") == 0;
    char err[256];
    kp_config_t *cfg = kp_config_new();
    kp_config_set(cfg, "bootstrap.servers", argv[1], err, sizeof err);
    kp_config_set(cfg, "delivery.report.mode", "poll", err, sizeof err);
    kp_producer_t *p = kp_producer_new(cfg, err, sizeof err);
    if (!p) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    for (int i = 0; i < N; i++) {
        kp_record_t r = KP_RECORD_INIT;
        r.topic = argv[2];
        r.partition = i % 3;
        r.value = "0123456789012345678901234567890123456789";
        r.value_len = 40;
        if (kp_send(p, &r, cb, (void *)(size_t)i) != KP_OK)
            return 1;
    }
    /* Wait until every outcome is known (counted before any is served). */
    for (int t = 0; t < 12000; t++) {
        kp_metrics_t m = KP_METRICS_INIT;
        kp_producer_metrics(p, &m);
        if (m.records_delivered + m.records_failed == N)
            break;
        struct timespec ts = {0, 10000000};
        nanosleep(&ts, NULL);
    }
    size_t served = 0;
    if (drain) {
        static kp_report_info_t buf[256];
        while (served < N) {
            buf[0] = (kp_report_info_t)KP_REPORT_INFO_INIT;
            int n = kp_poll_reports(p, buf, 256, 0);
            if (n <= 0)
                break;
            for (int i = 0; i < n; i++)
                sum += (uint64_t)(size_t)buf[i].topic + (uint64_t)buf[i].partition + (uint64_t)buf[i].offset +
                       (uint64_t)buf[i].timestamp + (uint64_t)buf[i].error + (uint64_t)buf[i].error_class +
                       (uint64_t)buf[i].persistence + (uint64_t)(size_t)buf[i].ctx;
            served += (size_t)n;
        }
    } else {
        while (served < N) {
            int n = kp_poll(p, 0);
            if (n <= 0)
                break;
            served += (size_t)n;
        }
    }
    printf("%zu served (%llu)\n", served, (unsigned long long)sum);
    kp_producer_close(p, 10000);
    kp_producer_destroy(p);
    return served == N ? 0 : 1;
}
