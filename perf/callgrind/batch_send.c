/* Instructions per record of kp_send vs kp_send_batch (BENCHMARKS.md):
 *   cc -O2 -Iinclude perf/callgrind/batch_send.c -Ltarget/release -lkp -o bsend
 *   valgrind --tool=callgrind --toggle-collect=kp_send --toggle-collect=kp_send_batch ./bsend single|batch [bootstrap]
 * Without a bootstrap the broker is unreachable and every record waits for
 * its topic's metadata (parked); with one (e.g. perf/kafka-sink) a first
 * record is delivered before the measured sends, so they go into batches. */
#include "kp.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#define N 20000
static void cb(const kp_report_t *r, void *c) { (void)r; (void)c; }
int main(int argc, char **argv) {
    int batch = argc > 1 && strcmp(argv[1], "batch") == 0;
    char err[256];
    kp_config_t *cfg = kp_config_new();
    const char *bootstrap = argc > 2 ? argv[2] : "127.0.0.1:1";
    kp_config_set(cfg, "bootstrap.servers", bootstrap, err, sizeof err);
    kp_config_set(cfg, "buffer.memory", "536870912", err, sizeof err);
    kp_producer_t *p = kp_producer_new(cfg, err, sizeof err);
    static kp_record_t recs[N];
    static void *ctxs[N];
    static kp_err_t res[N];
    kp_header_t h = { "h", 1, "v", 1 };
    if (argc > 2) {
        kp_record_t first = KP_RECORD_INIT;
        first.topic = "t"; first.partition = 0; first.value = "warm-up"; first.value_len = 7;
        if (kp_send(p, &first, cb, NULL) != KP_OK || kp_flush(p, 30000) != KP_OK) {
            fprintf(stderr, "the first record was not delivered\n");
            return 1;
        }
    }
    for (int i = 0; i < N; i++) {
        kp_record_t r = KP_RECORD_INIT;
        r.topic = "t"; r.partition = 0; r.value = "0123456789012345678901234567890123456789"; r.value_len = 40;
        r.headers = &h; r.header_count = 1;
        recs[i] = r; ctxs[i] = (void *)(size_t)i;
    }
    if (batch) {
        for (int i = 0; i < N; i += 100) kp_send_batch(p, &recs[i], 100, cb, &ctxs[i], &res[i]);
    } else {
        for (int i = 0; i < N; i++) kp_send(p, &recs[i], cb, ctxs[i]);
    }
    printf("%zu outstanding\n", kp_producer_outstanding(p));
    kp_producer_destroy(p);
    return 0;
}
