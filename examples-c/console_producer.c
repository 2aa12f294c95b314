/*
 * console_producer.c - reads lines from stdin and produces them, like
 * kafka-console-producer.
 *
 *   console_producer --bootstrap-server HOST:PORT --topic T
 *       [--property parse.key=true] [--property key.separator=:]
 *       [--property parse.headers=true] [--property headers.delimiter=\t]
 *       [--producer-property k=v]... [--compression-codec gzip|snappy|lz4|zstd]
 *       [--partition N] [--sync]
 *
 * Exits 1 with a message if any record failed, 2 on bad usage.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdatomic.h>

#include "kp.h"

static atomic_long failed;
static atomic_long succeeded;

static void on_delivery(const kp_report_t *r, void *ctx) {
    (void)ctx;
    if (kp_report_error(r) == KP_OK) {
        atomic_fetch_add(&succeeded, 1);
    } else {
        atomic_fetch_add(&failed, 1);
        fprintf(stderr, "console_producer: delivery to %s failed: %s: %s\n", kp_report_topic(r),
                kp_err_name(kp_report_error(r)), kp_report_error_message(r));
    }
}

static void usage(const char *argv0) {
    fprintf(stderr,
            "usage: %s --bootstrap-server HOST:PORT --topic TOPIC [--property parse.key=true]\n"
            "          [--property key.separator=SEP] [--producer-property K=V]...\n"
            "          [--compression-codec CODEC] [--partition N] [--sync]\n",
            argv0);
}

static int set(kp_config_t *cfg, const char *k, const char *v) {
    char errstr[512];
    if (kp_config_set(cfg, k, v, errstr, sizeof errstr) != KP_CONFIG_OK) {
        fprintf(stderr, "console_producer: %s\n", errstr);
        return -1;
    }
    return 0;
}

int main(int argc, char **argv) {
    const char *bootstrap = NULL, *topic = NULL;
    static char key_sep[64] = "\t";
    int parse_key = 0, sync_mode = 0;
    int32_t partition = KP_PARTITION_ANY;
    kp_config_t *cfg = kp_config_new();

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--sync")) {
            sync_mode = 1;
            continue;
        }
        if (!v) {
            usage(argv[0]);
            kp_config_destroy(cfg);
            return 2;
        }
        i++;
        if (!strcmp(a, "--bootstrap-server")) {
            bootstrap = v;
        } else if (!strcmp(a, "--topic")) {
            topic = v;
        } else if (!strcmp(a, "--partition")) {
            partition = atoi(v);
        } else if (!strcmp(a, "--compression-codec")) {
            if (set(cfg, "compression.type", v)) {
                kp_config_destroy(cfg);
                return 2;
            }
        } else if (!strcmp(a, "--property") || !strcmp(a, "--producer-property")) {
            char buf[1024];
            snprintf(buf, sizeof buf, "%s", v);
            char *eq = strchr(buf, '=');
            if (!eq) {
                fprintf(stderr, "console_producer: %s expects key=value, got \"%s\"\n", a, v);
                kp_config_destroy(cfg);
                return 2;
            }
            *eq = '\0';
            const char *k = buf, *val = eq + 1;
            if (!strcmp(a, "--producer-property")) {
                if (set(cfg, k, val)) {
                    kp_config_destroy(cfg);
                    return 2;
                }
            } else if (!strcmp(k, "parse.key")) {
                parse_key = !strcmp(val, "true");
            } else if (!strcmp(k, "key.separator")) {
                snprintf(key_sep, sizeof key_sep, "%s", val);
            } else {
                fprintf(stderr, "console_producer: unsupported --property %s\n", k);
                kp_config_destroy(cfg);
                return 2;
            }
        } else {
            usage(argv[0]);
            kp_config_destroy(cfg);
            return 2;
        }
    }
    if (!bootstrap || !topic) {
        usage(argv[0]);
        kp_config_destroy(cfg);
        return 2;
    }
    if (set(cfg, "bootstrap.servers", bootstrap)) {
        kp_config_destroy(cfg);
        return 2;
    }
    char errstr[512];
    kp_producer_t *p = kp_producer_new(cfg, errstr, sizeof errstr);
    if (!p) {
        fprintf(stderr, "console_producer: %s\n", errstr);
        kp_config_destroy(cfg);
        return 1;
    }

    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    long lines = 0;
    size_t sep_len = strlen(key_sep);
    while ((len = getline(&line, &cap, stdin)) >= 0) {
        if (len > 0 && line[len - 1] == '\n')
            line[--len] = '\0';
        if (len > 0 && line[len - 1] == '\r')
            line[--len] = '\0';
        kp_record_t rec = KP_RECORD_INIT;
        rec.topic = topic;
        rec.partition = partition;
        rec.value = line;
        rec.value_len = (size_t)len;
        if (parse_key) {
            char *sep = strstr(line, key_sep);
            if (!sep) {
                fprintf(stderr, "console_producer: no key separator in line %ld\n", lines + 1);
                atomic_fetch_add(&failed, 1);
                continue;
            }
            rec.key = line;
            rec.key_len = (size_t)(sep - line);
            rec.value = sep + sep_len;
            rec.value_len = (size_t)len - rec.key_len - sep_len;
        }
        lines++;
        kp_err_t err;
        if (sync_mode) {
            err = kp_send_sync(p, &rec, 60000, NULL, NULL, errstr, sizeof errstr);
            if (err == KP_OK)
                atomic_fetch_add(&succeeded, 1);
        } else {
            err = kp_send_with_errstr(p, &rec, on_delivery, NULL, errstr, sizeof errstr);
        }
        if (err != KP_OK) {
            atomic_fetch_add(&failed, 1);
            fprintf(stderr, "console_producer: line %ld: %s: %s\n", lines, kp_err_name(err), errstr);
        }
    }
    free(line);
    kp_err_t err = kp_producer_close(p, 120000);
    kp_producer_destroy(p);
    if (err != KP_OK)
        fprintf(stderr, "console_producer: close: %s\n", kp_err_name(err));
    if (atomic_load(&failed) > 0) {
        fprintf(stderr, "console_producer: %ld of %ld record(s) failed\n", atomic_load(&failed), lines);
        return 1;
    }
    return err == KP_OK ? 0 : 1;
}
