//! Metadata: `kp_topic_info_t`, a topic's partitions and their leaders.

use std::ffi::c_char;

use super::boundary::{
    c_str, free_handle, guard, guard_or, handle, handle_mut, into_handle, set_errstr, timeout,
    Handle, Owned,
};
use super::errors::{kp_err_t, KP_ERR_INVALID_ARG, KP_ERR_INVALID_TOPIC, KP_OK};
use super::producer::{kp_producer_t, usable};

/// Partition information of one topic (opaque), from kp_partitions_for().
pub struct kp_topic_info_t {
    /// (partition, leader broker id)
    partitions: Vec<(i32, i32)>,
}

impl Handle for kp_topic_info_t {
    type Ownership = Owned;
}

/// Looks up a topic's partitions and their leaders, waiting up to
/// `timeout_ms` for metadata. On KP_OK `*out` receives a topic info to free
/// with kp_topic_info_destroy(); on error `errstr` says why.
///
/// # Safety
/// `p` is NULL or a producer not yet destroyed; `topic` is NULL or a
/// NUL-terminated string; `out` is NULL or writable; `errstr` is NULL or
/// has `errstr_size` writable bytes.
#[no_mangle]
pub unsafe extern "C" fn kp_partitions_for(
    p: *mut kp_producer_t,
    topic: *const c_char,
    timeout_ms: i32,
    out: *mut *mut kp_topic_info_t,
    errstr: *mut c_char,
    errstr_size: usize,
) -> kp_err_t {
    guard(|| {
        let Some(out) = handle_mut!(out) else { return KP_ERR_INVALID_ARG };
        let p = match usable(handle!(p)) {
            Ok(p) => p,
            Err(e) => return e.code,
        };
        *out = std::ptr::null_mut();
        let Some(t) = c_str!(topic) else {
            set_errstr!(errstr, errstr_size, "topic is NULL or not UTF-8");
            return KP_ERR_INVALID_TOPIC;
        };
        match p.producer.partitions_for(t, timeout(timeout_ms)) {
            Ok(partitions) => {
                *out = into_handle(kp_topic_info_t { partitions });
                KP_OK
            }
            Err(e) => {
                set_errstr!(errstr, errstr_size, &e.message);
                e.code
            }
        }
    })
}

/// Number of partitions (0 for NULL).
///
/// # Safety
/// `info` is NULL or a topic info not yet destroyed.
#[no_mangle]
pub unsafe extern "C" fn kp_topic_info_partition_count(info: *const kp_topic_info_t) -> i32 {
    guard_or(0, || handle!(info).map(|i| i.partitions.len() as i32).unwrap_or(0))
}

/// Leader broker id of a partition; -1 when unknown, out of range or NULL.
///
/// # Safety
/// `info` is NULL or a topic info not yet destroyed.
#[no_mangle]
pub unsafe extern "C" fn kp_topic_info_leader(info: *const kp_topic_info_t, partition: i32) -> i32 {
    guard_or(-1, || {
        handle!(info)
            .and_then(|i| i.partitions.iter().find(|p| p.0 == partition))
            .map(|p| p.1)
            .unwrap_or(-1)
    })
}

/// Frees a topic info. NULL is a no-op.
///
/// # Safety
/// `info` is NULL or a topic info not yet destroyed; it is not used after.
#[no_mangle]
pub unsafe extern "C" fn kp_topic_info_destroy(info: *mut kp_topic_info_t) {
    // SAFETY: this function's contract.
    guard(|| unsafe { free_handle(info) })
}
