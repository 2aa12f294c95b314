/*
 * app.c - a program built OUT OF TREE against an installed kp (pkg-config,
 * static link, CMake): sends `count` records "<label>-<i>" with a header
 * and waits for their reports.
 *
 *   app <bootstrap-servers> <topic> <count> <label>
 *
 * Prints "<label>: N delivered, M failed" and exits non-zero unless all
 * were delivered.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <kp.h>

static atomic_int ok_count;
static atomic_int failed_count;

static void on_delivery(const kp_report_t *report, void *ctx) {
    (void)ctx;
    if (kp_report_error(report) == KP_OK)
        atomic_fetch_add(&ok_count, 1);
    else
        atomic_fetch_add(&failed_count, 1);
}

int main(int argc, char **argv) {
    if (argc < 5) {
        fprintf(stderr, "usage: %s <bootstrap-servers> <topic> <count> <label>\n", argv[0]);
        return 2;
    }
    const int count = atoi(argv[3]);
    const char *label = argv[4];
    char errstr[512];
    if (kp_version() != KP_VERSION) {
        fprintf(stderr, "header %s but library %s\n", KP_VERSION_STR, kp_version_str());
        return 1;
    }
    kp_config_t *cfg = kp_config_new();
    if (kp_config_set(cfg, "bootstrap.servers", argv[1], errstr, sizeof errstr) != KP_CONFIG_OK) {
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
    for (int i = 0; i < count; i++) {
        char value[128];
        int n = snprintf(value, sizeof value, "%s-%d", label, i);
        kp_header_t hdr = {"built-by", 8, label, strlen(label)};
        kp_record_t rec = KP_RECORD_INIT;
        rec.topic = argv[2];
        rec.value = value;
        rec.value_len = (size_t)n;
        rec.headers = &hdr;
        rec.header_count = 1;
        kp_err_t err = kp_send_with_errstr(p, &rec, on_delivery, NULL, errstr, sizeof errstr);
        if (err != KP_OK) {
            fprintf(stderr, "kp_send: %s: %s\n", kp_err_name(err), errstr);
            atomic_fetch_add(&failed_count, 1);
        }
    }
    kp_err_t err = kp_producer_close(p, 30000);
    kp_producer_destroy(p);
    printf("%s: %d delivered, %d failed\n", label, atomic_load(&ok_count), atomic_load(&failed_count));
    return err == KP_OK && atomic_load(&ok_count) == count && atomic_load(&failed_count) == 0 ? 0 : 1;
}
