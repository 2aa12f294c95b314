//! Delivery reports: the `kp_report_t` a delivery callback receives, its
//! accessors, and serving reports in poll mode (kp_poll, kp_poll_fd).

use std::ffi::{c_char, c_int, c_void};
use std::sync::Arc;

use super::boundary::{guard, guard_or, handle, timeout, Borrowed, Handle};
use super::errors::{kp_err_t, KP_ERR_INVALID_ARG};
use super::interceptors::Interceptors;
use super::producer::kp_producer_t;
pub use crate::engine::report::kp_report_t;
use crate::engine::{Dispatch, ReportView, Token};

impl Handle for kp_report_t {
    type Ownership = Borrowed;
}

/// Whether a record may be in the log (see kp_report_persistence()).
pub type kp_persistence_t = i32;
/// The record is certainly not in the log.
pub const KP_NOT_PERSISTED: kp_persistence_t = 0;
/// The record may or may not be in the log (sent, but no answer).
pub const KP_POSSIBLY_PERSISTED: kp_persistence_t = 1;
/// The broker acknowledged the record (per the acks setting).
pub const KP_PERSISTED: kp_persistence_t = 2;

/// Lends a report view to C for one callback.
fn as_handle(view: &ReportView<'_>) -> *const kp_report_t {
    (view as *const ReportView<'_>).cast()
}

/// The view behind a report handle (None for NULL).
macro_rules! view {
    ($r:expr) => {
        // A kp_report_t pointer is always a ReportView lent by as_handle().
        handle!($r.cast::<ReportView<'_>>())
    };
}

/// The engine's dispatch function for a producer: interceptor first, then
/// the record's own callback, both with the same borrowed report.
pub(crate) fn dispatch(interceptors: Option<Interceptors>) -> Arc<Dispatch> {
    Arc::new(move |view: &ReportView<'_>, token: &Token| {
        let report = as_handle(view);
        if let Some(i) = interceptors {
            i.on_ack(report);
        }
        if let Token::Callback { cb, ctx } = token {
            // SAFETY: `cb` is the non-NULL delivery callback the caller gave
            // kp_send(), called once, as kp.h documents, with its own ctx.
            unsafe { cb(report, *ctx as *mut c_void) }
        }
    })
}

/// Topic of the record (NUL-terminated; valid during the callback).
///
/// # Safety
/// `r` is NULL or the report passed to the running callback.
#[no_mangle]
pub unsafe extern "C" fn kp_report_topic(r: *const kp_report_t) -> *const c_char {
    guard(|| view!(r).map(|v| v.topic.cname.as_ptr()).unwrap_or(std::ptr::null()))
}

/// Partition the record went to (-1 if it never got one).
///
/// # Safety
/// `r` is NULL or the report passed to the running callback.
#[no_mangle]
pub unsafe extern "C" fn kp_report_partition(r: *const kp_report_t) -> i32 {
    guard_or(-1, || view!(r).map(|v| v.partition).unwrap_or(-1))
}

/// Offset of the record in its partition (-1 when unknown: errors, acks=0).
///
/// # Safety
/// `r` is NULL or the report passed to the running callback.
#[no_mangle]
pub unsafe extern "C" fn kp_report_offset(r: *const kp_report_t) -> i64 {
    guard_or(-1, || view!(r).map(|v| v.offset).unwrap_or(-1))
}

/// Timestamp of the record: its CreateTime, or the broker's LogAppendTime
/// when the topic uses it.
///
/// # Safety
/// `r` is NULL or the report passed to the running callback.
#[no_mangle]
pub unsafe extern "C" fn kp_report_timestamp(r: *const kp_report_t) -> i64 {
    guard_or(-1, || view!(r).map(|v| v.timestamp).unwrap_or(-1))
}

/// KP_OK when the record was delivered, else the error code.
///
/// # Safety
/// `r` is NULL or the report passed to the running callback.
#[no_mangle]
pub unsafe extern "C" fn kp_report_error(r: *const kp_report_t) -> kp_err_t {
    guard(|| view!(r).map(|v| v.error).unwrap_or(KP_ERR_INVALID_ARG))
}

/// A message saying what happened (NULL on success; valid during the callback).
///
/// # Safety
/// `r` is NULL or the report passed to the running callback.
#[no_mangle]
pub unsafe extern "C" fn kp_report_error_message(r: *const kp_report_t) -> *const c_char {
    guard(|| view!(r).and_then(|v| v.message).map(|m| m.as_ptr()).unwrap_or(std::ptr::null()))
}

/// Whether sending the same record again may succeed.
///
/// # Safety
/// `r` is NULL or the report passed to the running callback.
#[no_mangle]
pub unsafe extern "C" fn kp_report_is_retriable(r: *const kp_report_t) -> bool {
    guard(|| view!(r).is_some_and(|v| v.retriable))
}

/// KP_PERSISTED, KP_POSSIBLY_PERSISTED or KP_NOT_PERSISTED.
///
/// # Safety
/// `r` is NULL or the report passed to the running callback.
#[no_mangle]
pub unsafe extern "C" fn kp_report_persistence(r: *const kp_report_t) -> kp_persistence_t {
    guard_or(KP_NOT_PERSISTED, || {
        view!(r).map(|v| v.persistence as i32).unwrap_or(KP_NOT_PERSISTED)
    })
}

/// Serves waiting delivery reports on the calling thread (mode "poll"),
/// waiting up to `timeout_ms` for the first. Returns the number of reports
/// served (callbacks run), or a negative error. In mode "thread" it serves
/// nothing and returns 0. Thread-safe.
///
/// # Safety
/// `p` is NULL or a producer not yet destroyed.
#[no_mangle]
pub unsafe extern "C" fn kp_poll(p: *mut kp_producer_t, timeout_ms: i32) -> c_int {
    guard(|| match handle!(p) {
        None => KP_ERR_INVALID_ARG,
        Some(p) => p.producer.poll(timeout(timeout_ms)).min(c_int::MAX as usize) as c_int,
    })
}

/// A file descriptor that becomes readable when delivery reports are
/// waiting (mode "poll"), for event loops; call kp_poll(p, 0) when it is.
/// Owned by the producer: do not close it. Returns -1 when unavailable.
///
/// # Safety
/// `p` is NULL or a producer not yet destroyed.
#[no_mangle]
pub unsafe extern "C" fn kp_poll_fd(p: *const kp_producer_t) -> c_int {
    guard_or(-1, || handle!(p).map(|p| p.producer.poll_fd()).unwrap_or(-1))
}
