/* A producer used in a child process after fork(): every call fails at
 * once with KP_ERR_FORKED (the message names the creating process), no
 * record is accepted, nothing is printed, kp_producer_destroy returns at
 * once; the parent's producer keeps working.
 *   fork BOOTSTRAP TOPIC    (exit status 0 when every check passed)
 * Prints "parent: N delivered, M failed" for the runner to check. */
#include "kp.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static atomic_int delivered, failed;

static void on_report(const kp_report_t *r, void *ctx) {
    (void)ctx;
    if (kp_report_error(r) == KP_OK) {
        atomic_fetch_add(&delivered, 1);
    } else {
        atomic_fetch_add(&failed, 1);
    }
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int send_n(kp_producer_t *p, const char *topic, int n) {
    for (int i = 0; i < n; i++) {
        char value[32];
        kp_record_t rec = KP_RECORD_INIT;
        int len = snprintf(value, sizeof value, "value-%d", i);
        rec.topic = topic;
        rec.value = value;
        rec.value_len = (size_t)len;
        if (kp_send(p, &rec, on_report, NULL) != KP_OK) {
            return -1;
        }
    }
    return 0;
}

/* Runs in the child; its own diagnostics go to `out`, while its stdout and
 * stderr point at a file that must stay empty. */
static int child_checks(kp_producer_t *p, const char *topic, int out) {
    int bad = 0;
    char err[256] = "";
    char parent[32];
    kp_record_t rec = KP_RECORD_INIT;
    kp_err_t result = KP_OK;
    kp_report_info_t infos[4] = {KP_REPORT_INFO_INIT};
    kp_metrics_t metrics = KP_METRICS_INIT;
    kp_topic_info_t *info = NULL;
    kp_error_t *e;
    double t0 = now();
    /* Copies of the parent's counters: no report may arrive in the child. */
    int delivered0 = atomic_load(&delivered), failed0 = atomic_load(&failed);
#define EXPECT(cond)                                                     \
    do {                                                                 \
        if (!(cond)) {                                                   \
            dprintf(out, "child: line %d: %s failed\n", __LINE__, #cond); \
            bad++;                                                       \
        }                                                                \
    } while (0)

    snprintf(parent, sizeof parent, "process %ld;", (long)getppid());
    rec.topic = topic;
    rec.value = "x";
    rec.value_len = 1;
    EXPECT(kp_send(p, &rec, on_report, NULL) == KP_ERR_FORKED);
    EXPECT(kp_send_with_errstr(p, &rec, on_report, NULL, err, sizeof err) == KP_ERR_FORKED);
    EXPECT(strstr(err, parent) != NULL && strstr(err, "after fork()") != NULL);
    EXPECT(kp_send_sync(p, &rec, 5000, NULL, NULL, err, sizeof err) == KP_ERR_FORKED);
    EXPECT(kp_send_batch(p, &rec, 1, on_report, NULL, &result) == 0 && result == KP_ERR_FORKED);
    EXPECT(kp_flush(p, 5000) == KP_ERR_FORKED);
    EXPECT(kp_poll(p, 5000) == KP_ERR_FORKED);
    EXPECT(kp_poll_reports(p, infos, 4, 5000) == KP_ERR_FORKED);
    EXPECT(kp_poll_fd(p) == -1);
    EXPECT(kp_producer_metrics(p, &metrics) == KP_ERR_FORKED);
    EXPECT(kp_producer_outstanding(p) == 0);
    EXPECT(kp_producer_fatal_error(p, err, sizeof err) == KP_ERR_FORKED);
    EXPECT(kp_partitions_for(p, topic, 5000, &info, err, sizeof err) == KP_ERR_FORKED && info == NULL);
    EXPECT(kp_purge(p, KP_PURGE_QUEUED) == KP_ERR_FORKED);
    e = kp_init_transactions(p, 5000);
    EXPECT(e != NULL && kp_error_code(e) == KP_ERR_FORKED && kp_error_is_fatal(e));
    EXPECT(kp_error_class(e) == KP_ERROR_CLASS_FATAL);
    kp_error_destroy(e);
    EXPECT(kp_producer_close(p, 5000) == KP_ERR_FORKED);
    kp_producer_destroy(p);
    EXPECT(now() - t0 < 1.0);
    EXPECT(atomic_load(&delivered) == delivered0 && atomic_load(&failed) == failed0);
    return bad;
#undef EXPECT
}

int main(int argc, char **argv) {
    char err[512];
    char quiet[] = "/tmp/kp-fork-child-XXXXXX";
    kp_config_t *cfg;
    kp_producer_t *p;
    int out, fd, status = 0;
    pid_t child;
    struct stat st;
    double deadline;

    if (argc != 3) {
        fprintf(stderr, "usage: %s BOOTSTRAP TOPIC\n", argv[0]);
        return 2;
    }
    cfg = kp_config_new();
    if (kp_config_set(cfg, "bootstrap.servers", argv[1], err, sizeof err) != KP_CONFIG_OK ||
        kp_config_set(cfg, "linger.ms", "5", err, sizeof err) != KP_CONFIG_OK) {
        fprintf(stderr, "config: %s\n", err);
        return 1;
    }
    p = kp_producer_new(cfg, err, sizeof err);
    if (p == NULL) {
        fprintf(stderr, "kp_producer_new: %s\n", err);
        return 1;
    }
    /* The parent's producer is busy (threads, connections, reports) when
     * the process forks. */
    if (send_n(p, argv[2], 100) != 0 || kp_flush(p, 30000) != KP_OK) {
        fprintf(stderr, "parent: first 100 records not delivered\n");
        return 1;
    }
    if (send_n(p, argv[2], 100) != 0) {
        return 1;
    }
    fd = mkstemp(quiet);
    if (fd < 0) {
        perror("mkstemp");
        return 1;
    }
    fflush(stdout);
    fflush(stderr);
    out = dup(2);
    child = fork();
    if (child == 0) {
        dup2(fd, 1);
        dup2(fd, 2);
        _exit(child_checks(p, argv[2], out) == 0 ? 0 : 1);
    }
    close(out);
    deadline = now() + 10.0;
    for (;;) {
        pid_t w = waitpid(child, &status, WNOHANG);
        if (w == child) {
            break;
        }
        if (now() > deadline) {
            fprintf(stderr, "child hung: killed\n");
            kill(child, SIGKILL);
            waitpid(child, &status, 0);
            return 1;
        }
        usleep(10000);
    }
    if (fstat(fd, &st) != 0 || st.st_size != 0) {
        fprintf(stderr, "the child printed %ld bytes (see %s)\n", (long)st.st_size, quiet);
        return 1;
    }
    close(fd);
    unlink(quiet);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "child checks failed (status %d)\n", status);
        return 1;
    }
    /* The parent goes on: 100 more records, all 300 delivered. */
    if (send_n(p, argv[2], 100) != 0 || kp_flush(p, 30000) != KP_OK) {
        fprintf(stderr, "parent: records after the fork not delivered\n");
        return 1;
    }
    if (kp_producer_close(p, 30000) != KP_OK) {
        return 1;
    }
    kp_producer_destroy(p);
    printf("parent: %d delivered, %d failed\n", atomic_load(&delivered), atomic_load(&failed));
    return atomic_load(&delivered) == 300 && atomic_load(&failed) == 0 ? 0 : 1;
}
