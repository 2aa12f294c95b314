"""Loads libkp through cffi (ABI mode) and declares the part of kp.h the binding uses.

The declarations below are copied from include/kp.h by hand (cffi's parser does not
take preprocessor lines); structs that kp versions by `struct_size` are declared
exactly as in the header, so kp sees the size this binding was written against.

The library is looked up, in order: the path in the KP_LIBRARY environment
variable, the libkp.so bundled in this package at install time, and the
repository's target/release (for running from a source checkout).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any, Tuple

from cffi import FFI  # type: ignore[import-untyped]

CDEF = """
typedef struct kp_config_t kp_config_t;
typedef struct kp_error_t kp_error_t;
typedef struct kp_offsets_t kp_offsets_t;
typedef struct kp_producer_t kp_producer_t;
typedef struct kp_report_t kp_report_t;
typedef struct kp_topic_info_t kp_topic_info_t;
typedef int32_t kp_config_result_t;
typedef int32_t kp_err_t;
typedef int32_t kp_persistence_t;

typedef struct kp_header_t {
  const char *key;
  size_t key_len;
  const void *value;
  size_t value_len;
} kp_header_t;

typedef struct kp_record_t {
  size_t struct_size;
  const char *topic;
  int32_t partition;
  const void *key;
  size_t key_len;
  const void *value;
  size_t value_len;
  const struct kp_header_t *headers;
  size_t header_count;
  int64_t timestamp_ms;
  void (*value_free)(void *value, void *opaque);
  void *value_free_opaque;
} kp_record_t;

typedef void (*kp_delivery_cb_t)(const struct kp_report_t *report, void *ctx);

kp_config_t *kp_config_new(void);
void kp_config_destroy(kp_config_t *cfg);
kp_config_result_t kp_config_set(kp_config_t *cfg, const char *name, const char *value,
                                 char *errstr, size_t errstr_size);
typedef void (*kp_log_fn_t)(int32_t level, const char *facility, const char *message, void *ctx);
kp_err_t kp_config_set_log_callback(kp_config_t *cfg, kp_log_fn_t cb, void *ctx);
kp_err_t kp_config_get(const kp_config_t *cfg, const char *name, char *dest, size_t *dest_size);

kp_producer_t *kp_producer_new(kp_config_t *cfg, char *errstr, size_t errstr_size);
kp_err_t kp_send(kp_producer_t *p, const kp_record_t *record, kp_delivery_cb_t cb, void *ctx);
kp_err_t kp_send_with_errstr(kp_producer_t *p, const kp_record_t *record, kp_delivery_cb_t cb,
                             void *ctx, char *errstr, size_t errstr_size);
int kp_poll(kp_producer_t *p, int32_t timeout_ms);
int kp_poll_fd(const kp_producer_t *p);
kp_err_t kp_flush(kp_producer_t *p, int32_t timeout_ms);
kp_err_t kp_producer_fatal_error(const kp_producer_t *p, char *errstr, size_t errstr_size);
kp_err_t kp_purge(kp_producer_t *p, int32_t flags);
size_t kp_producer_outstanding(const kp_producer_t *p);
kp_err_t kp_producer_close(kp_producer_t *p, int32_t timeout_ms);
void kp_producer_destroy(kp_producer_t *p);

kp_err_t kp_partitions_for(kp_producer_t *p, const char *topic, int32_t timeout_ms,
                           kp_topic_info_t **out, char *errstr, size_t errstr_size);
int32_t kp_topic_info_partition_count(const kp_topic_info_t *info);
int32_t kp_topic_info_leader(const kp_topic_info_t *info, int32_t partition);
void kp_topic_info_destroy(kp_topic_info_t *info);

kp_error_t *kp_init_transactions(kp_producer_t *p, int32_t timeout_ms);
kp_error_t *kp_begin_transaction(kp_producer_t *p);
kp_error_t *kp_commit_transaction(kp_producer_t *p, int32_t timeout_ms);
kp_error_t *kp_abort_transaction(kp_producer_t *p, int32_t timeout_ms);
kp_error_t *kp_send_offsets_to_transaction(kp_producer_t *p, const kp_offsets_t *offsets,
                                           const char *group_id, int32_t timeout_ms);
kp_offsets_t *kp_offsets_new(void);
kp_err_t kp_offsets_add(kp_offsets_t *o, const char *topic, int32_t partition, int64_t offset);
void kp_offsets_destroy(kp_offsets_t *o);

kp_err_t kp_error_code(const kp_error_t *e);
const char *kp_error_message(const kp_error_t *e);
bool kp_error_is_retriable(const kp_error_t *e);
bool kp_error_is_fatal(const kp_error_t *e);
bool kp_error_txn_requires_abort(const kp_error_t *e);
void kp_error_destroy(kp_error_t *e);

const char *kp_report_topic(const kp_report_t *r);
int32_t kp_report_partition(const kp_report_t *r);
int64_t kp_report_offset(const kp_report_t *r);
int64_t kp_report_timestamp(const kp_report_t *r);
kp_err_t kp_report_error(const kp_report_t *r);
const char *kp_report_error_message(const kp_report_t *r);
bool kp_report_is_retriable(const kp_report_t *r);

const char *kp_err_name(kp_err_t err);
const char *kp_err_str(kp_err_t err);
bool kp_err_is_retriable(kp_err_t err);
uint32_t kp_version(void);
const char *kp_version_str(void);
"""

# The header version this binding was written against (KP_VERSION_MAJOR/MINOR).
HEADER_MAJOR = 0
HEADER_MINOR = 1

ffi = FFI()
ffi.cdef(CDEF)


def _candidates() -> list[Path]:
    env = os.environ.get("KP_LIBRARY")
    if env:
        return [Path(env)]
    here = Path(__file__).resolve().parent
    name = "libkp.dylib" if sys.platform == "darwin" else "libkp.so"
    return [here / name, here.parents[2] / "target" / "release" / name]


def _load() -> Tuple[Any, str]:
    tried = []
    for path in _candidates():
        if path.is_file():
            lib = ffi.dlopen(str(path))
            version = int(lib.kp_version())
            if (version >> 16, (version >> 8) & 0xFF) != (HEADER_MAJOR, HEADER_MINOR):
                raise ImportError(
                    f"{path} is kp {ffi.string(lib.kp_version_str()).decode()}, "
                    f"this binding needs {HEADER_MAJOR}.{HEADER_MINOR}.x"
                )
            return lib, str(path)
        tried.append(str(path))
    raise ImportError(
        "libkp not found (tried " + ", ".join(tried) + "); set KP_LIBRARY to the path of "
        "libkp.so, or reinstall the package so that it bundles one"
    )


# path_loaded: the file lib came from (kp._native looks its functions up in it).
lib, path_loaded = _load()
