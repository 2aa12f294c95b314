/*
 * mock-sink.c - a fast Kafka sink for measuring clients rather than brokers:
 * librdkafka's built-in mock cluster (rd_kafka_mock_cluster_new), listening
 * on 127.0.0.1 (random ports). It keeps only a bounded log per partition
 * (5 MB / 100k messages), so it runs indefinitely.
 *
 *   mock-sink [--brokers N] [--topic NAME[:PARTITIONS[:RF]]]... [--bootstrap-file F]
 *
 * Prints the bootstrap address on stdout (one line) and to --bootstrap-file,
 * then runs until SIGTERM or SIGINT; on exit prints its own CPU use to stderr.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "rdkafka.h"
#include "rdkafka_mock.h"

int main(int argc, char **argv) {
    int brokers = 1;
    const char *bootstrap_file = NULL;
    const char *topics[64];
    int ntopics = 0;
    char errstr[512];

    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--brokers") && i + 1 < argc)
            brokers = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--topic") && i + 1 < argc && ntopics < 64)
            topics[ntopics++] = argv[++i];
        else if (!strcmp(argv[i], "--bootstrap-file") && i + 1 < argc)
            bootstrap_file = argv[++i];
        else {
            fprintf(stderr, "usage: %s [--brokers N] [--topic NAME[:PARTITIONS[:RF]]]... [--bootstrap-file F]\n",
                    argv[0]);
            return 2;
        }
    }
    if (brokers < 1)
        brokers = 1;

    /* Block the signals before librdkafka starts threads so only sigwait sees them. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL);

    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "log_level", "3", errstr, sizeof errstr);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
    if (!rk) {
        fprintf(stderr, "rd_kafka_new: %s\n", errstr);
        return 1;
    }
    rd_kafka_mock_cluster_t *mc = rd_kafka_mock_cluster_new(rk, brokers);
    if (!mc) {
        fprintf(stderr, "rd_kafka_mock_cluster_new failed\n");
        return 1;
    }
    for (int i = 0; i < ntopics; i++) {
        char name[256];
        int parts = 1, rf = 1;
        snprintf(name, sizeof name, "%s", topics[i]);
        char *c = strchr(name, ':');
        if (c) {
            *c++ = 0;
            parts = atoi(c);
            char *c2 = strchr(c, ':');
            if (c2)
                rf = atoi(c2 + 1);
        }
        if (rf > brokers)
            rf = brokers;
        rd_kafka_resp_err_t e = rd_kafka_mock_topic_create(mc, name, parts, rf);
        if (e) {
            fprintf(stderr, "create topic %s: %s\n", name, rd_kafka_err2str(e));
            return 1;
        }
    }
    const char *bs = rd_kafka_mock_cluster_bootstraps(mc);
    printf("%s\n", bs);
    fflush(stdout);
    if (bootstrap_file) {
        char tmp[1024];
        snprintf(tmp, sizeof tmp, "%s.tmp", bootstrap_file);
        FILE *f = fopen(tmp, "w");
        if (!f || fprintf(f, "%s\n", bs) < 0 || fclose(f) || rename(tmp, bootstrap_file)) {
            perror(bootstrap_file);
            return 1;
        }
    }
    fprintf(stderr, "mock-sink (librdkafka %s): %d broker(s) at %s\n", rd_kafka_version_str(), brokers, bs);

    int sig = 0;
    sigwait(&set, &sig);

    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    fprintf(stderr, "mock-sink: signal %d, cpu %.2f s user + %.2f s sys\n", sig,
            (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6,
            (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6);
    rd_kafka_mock_cluster_destroy(mc);
    rd_kafka_destroy(rk);
    return 0;
}
