/* The header on its own: compiles as strict C99 (and, through
 * header_test.cpp, as C++11) with every warning an error, may be included
 * twice, and its macros and constants agree with the library. Needs no
 * broker. Exit status 0 on success; each failed check prints its line. */
#ifndef HEADER_TEST_LANG
#define HEADER_TEST_LANG "C"
#endif
#include "kp.h"
#include "kp.h" /* included twice on purpose: the include guard must hold */

#include <stdio.h>
#include <string.h>

static int failures = 0;

#define CHECK(cond)                                                   \
    do {                                                              \
        if (!(cond)) {                                                \
            fprintf(stderr, "%s:%d: failed: %s\n", __FILE__, __LINE__, #cond); \
            failures++;                                               \
        }                                                             \
    } while (0)

int main(void) {
    kp_record_t rec = KP_RECORD_INIT;
    kp_metrics_t metrics = KP_METRICS_INIT;
    kp_header_t hdr = { "k", 1, NULL, 0 };
    char errstr[64];

    /* Versions of the header and the library agree. */
    CHECK(kp_version() == KP_VERSION);
    CHECK(strcmp(kp_version_str(), KP_VERSION_STR) == 0);

    /* The init macros set struct_size, KP_PARTITION_ANY and NULLs. */
    CHECK(rec.struct_size == sizeof(kp_record_t));
    CHECK(rec.partition == KP_PARTITION_ANY);
    CHECK(rec.topic == NULL && rec.value_free == NULL && rec.headers == NULL);
    CHECK(metrics.struct_size == sizeof(kp_metrics_t));
    CHECK(metrics.records_delivered == 0 && metrics.connections_closed == 0);
    rec.headers = &hdr;
    rec.header_count = 1;

    /* NULL handles are errors, not crashes. */
    CHECK(kp_producer_metrics(NULL, &metrics) == KP_ERR_INVALID_ARG);
    CHECK(kp_send(NULL, &rec, NULL, NULL) == KP_ERR_INVALID_ARG);
    CHECK(kp_flush(NULL, 0) == KP_ERR_INVALID_ARG);
    CHECK(kp_config_set(NULL, "linger.ms", "1", errstr, sizeof errstr) == KP_CONFIG_INVALID);
    CHECK(kp_report_error(NULL) == KP_ERR_INVALID_ARG);
    CHECK(kp_error_code(NULL) == KP_ERR_INVALID_ARG);
    kp_producer_destroy(NULL);
    kp_config_destroy(NULL);
    kp_error_destroy(NULL);

    /* Error constants and the library's table agree. */
    CHECK(KP_OK == 0);
    CHECK(strcmp(kp_err_name(KP_ERR_QUEUE_FULL), "QUEUE_FULL") == 0);
    CHECK(strcmp(kp_err_name(KP_ERR_STATE), "STATE") == 0);
    CHECK(strcmp(kp_err_name(KP_ERR_NOT_ENOUGH_REPLICAS), "NOT_ENOUGH_REPLICAS") == 0);
    CHECK(kp_err_is_retriable(KP_ERR_NOT_ENOUGH_REPLICAS));
    CHECK(!kp_err_is_retriable(KP_ERR_RECORD_TOO_LARGE));
    CHECK(kp_err_str(KP_ERR_TIMED_OUT) != NULL);

    /* A config round trip. */
    {
        kp_config_t *cfg = kp_config_new();
        char value[16];
        size_t size = sizeof value;
        CHECK(cfg != NULL);
        CHECK(kp_config_set(cfg, "linger.ms", "7", errstr, sizeof errstr) == KP_CONFIG_OK);
        CHECK(kp_config_set(cfg, "no.such.property", "1", errstr, sizeof errstr) == KP_CONFIG_UNKNOWN);
        CHECK(kp_config_get(cfg, "linger.ms", value, &size) == KP_OK);
        CHECK(strcmp(value, "7") == 0);
        kp_config_destroy(cfg);
    }

    if (failures == 0) {
        printf("header test passed (%s)\n", HEADER_TEST_LANG);
    }
    return failures == 0 ? 0 : 1;
}
