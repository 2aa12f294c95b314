//! Delivery reports: the `kp_report_t` a delivery callback receives, its
//! accessors, and serving reports in poll mode (kp_poll, kp_poll_fd).

use std::cell::Cell;
use std::ffi::{c_char, c_int, c_void};
use std::mem::size_of;
use std::sync::Arc;

use super::boundary::{
    guard, guard_or, handle, struct_size, timeout, write_element, Borrowed, Handle,
};
use super::errors::{kp_err_t, kp_error_class_t, KP_ERR_INVALID_ARG};
use super::interceptors::Interceptors;
use super::producer::{kp_producer_t, usable};
pub use crate::engine::report::kp_report_t;
use crate::engine::{Dispatch, ReportView, Token};
use crate::error;

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

/// What a kp_report_t points at: the engine's view of the report and what
/// the producer adds to it.
pub(crate) struct Report<'a> {
    view: &'a ReportView<'a>,
    transactional: bool,
}

impl Report<'_> {
    fn class(&self) -> error::ErrorClass {
        error::report_class(self.view.error, self.transactional)
    }

    /// Lends the report to C for one call.
    fn as_handle(&self) -> *const kp_report_t {
        (self as *const Report<'_>).cast()
    }
}

/// The report behind a handle (None for NULL).
macro_rules! report {
    ($r:expr) => {
        // A kp_report_t pointer is always a Report lent by as_handle().
        handle!($r.cast::<Report<'_>>())
    };
}

thread_local! {
    /// Whether this thread is inside a delivery callback or interceptor.
    static IN_CALLBACK: Cell<bool> = const { Cell::new(false) };
}

/// Whether the calling thread is running a delivery callback (where
/// waiting for reports would wait for itself).
pub(crate) fn in_delivery_callback() -> bool {
    IN_CALLBACK.try_with(Cell::get).unwrap_or(false)
}

/// Marks the thread as inside a callback until dropped (also on unwind).
pub(crate) struct CallbackScope;

impl CallbackScope {
    pub(crate) fn enter() -> CallbackScope {
        IN_CALLBACK.with(|c| c.set(true));
        CallbackScope
    }
}

impl Drop for CallbackScope {
    fn drop(&mut self) {
        IN_CALLBACK.with(|c| c.set(false));
    }
}

/// The engine's dispatch function for a producer: interceptor first, then
/// the record's own callback, both with the same borrowed report.
pub(crate) fn dispatch(interceptors: Option<Interceptors>, transactional: bool) -> Arc<Dispatch> {
    Arc::new(move |view: &ReportView<'_>, token: &Token| {
        let report = Report { view, transactional };
        let handle = report.as_handle();
        let _scope = CallbackScope::enter();
        if let Some(i) = interceptors {
            i.on_ack(handle);
        }
        if let Token::Callback { cb, ctx } = token {
            // SAFETY: `cb` is the non-NULL delivery callback the caller gave
            // kp_send(), called once, as kp.h documents, with its own ctx.
            unsafe { cb(handle, *ctx as *mut c_void) }
        }
    })
}

/// Topic of the record (NUL-terminated; valid during the callback).
///
/// # Safety
/// `r` is NULL or the report passed to the running callback.
#[no_mangle]
pub unsafe extern "C" fn kp_report_topic(r: *const kp_report_t) -> *const c_char {
    guard(|| report!(r).map(|r| r.view).map(|v| v.topic.cname.as_ptr()).unwrap_or(std::ptr::null()))
}

/// Partition the record went to (-1 if it never got one).
///
/// # Safety
/// `r` is NULL or the report passed to the running callback.
#[no_mangle]
pub unsafe extern "C" fn kp_report_partition(r: *const kp_report_t) -> i32 {
    guard_or(-1, || report!(r).map(|r| r.view).map(|v| v.partition).unwrap_or(-1))
}

/// Offset of the record in its partition (-1 when unknown: errors, acks=0).
///
/// # Safety
/// `r` is NULL or the report passed to the running callback.
#[no_mangle]
pub unsafe extern "C" fn kp_report_offset(r: *const kp_report_t) -> i64 {
    guard_or(-1, || report!(r).map(|r| r.view).map(|v| v.offset).unwrap_or(-1))
}

/// Timestamp of the record: its CreateTime, or the broker's LogAppendTime
/// when the topic uses it.
///
/// # Safety
/// `r` is NULL or the report passed to the running callback.
#[no_mangle]
pub unsafe extern "C" fn kp_report_timestamp(r: *const kp_report_t) -> i64 {
    guard_or(-1, || report!(r).map(|r| r.view).map(|v| v.timestamp).unwrap_or(-1))
}

/// KP_OK when the record was delivered, else the error code.
///
/// # Safety
/// `r` is NULL or the report passed to the running callback.
#[no_mangle]
pub unsafe extern "C" fn kp_report_error(r: *const kp_report_t) -> kp_err_t {
    guard(|| report!(r).map(|r| r.view).map(|v| v.error).unwrap_or(KP_ERR_INVALID_ARG))
}

/// A message saying what happened (NULL on success; valid during the callback).
///
/// # Safety
/// `r` is NULL or the report passed to the running callback.
#[no_mangle]
pub unsafe extern "C" fn kp_report_error_message(r: *const kp_report_t) -> *const c_char {
    guard(|| {
        report!(r)
            .map(|r| r.view)
            .and_then(|v| v.message)
            .map(|m| m.as_ptr())
            .unwrap_or(std::ptr::null())
    })
}

/// Whether sending the same record again may succeed.
///
/// # Safety
/// `r` is NULL or the report passed to the running callback.
#[no_mangle]
pub unsafe extern "C" fn kp_report_is_retriable(r: *const kp_report_t) -> bool {
    guard(|| report!(r).map(|r| r.view).is_some_and(|v| v.retriable))
}

/// KP_PERSISTED, KP_POSSIBLY_PERSISTED or KP_NOT_PERSISTED.
///
/// # Safety
/// `r` is NULL or the report passed to the running callback.
#[no_mangle]
pub unsafe extern "C" fn kp_report_persistence(r: *const kp_report_t) -> kp_persistence_t {
    guard_or(KP_NOT_PERSISTED, || {
        report!(r).map(|r| r.view).map(|v| v.persistence as i32).unwrap_or(KP_NOT_PERSISTED)
    })
}

/// The error class of the report (KP_ERROR_CLASS_*; NONE on success).
/// Inside a transaction a retriable error that ran out of retries is
/// KP_ERROR_CLASS_ABORTABLE: abort the transaction. KP_ERR_INVALID_ARG for
/// NULL.
///
/// # Safety
/// `r` is NULL or the report passed to the running callback.
#[no_mangle]
pub unsafe extern "C" fn kp_report_error_class(r: *const kp_report_t) -> kp_error_class_t {
    guard(|| report!(r).map(|r| r.class() as kp_error_class_t).unwrap_or(KP_ERR_INVALID_ARG))
}

/// One delivery report as plain data, filled by kp_poll_reports(). Declare
/// the array's first element with KP_REPORT_INFO_INIT (or set its
/// `struct_size = sizeof(kp_report_info_t)`): it is the array's stride. Later
/// versions only append fields.
#[repr(C)]
pub struct kp_report_info_t {
    /// In (first element): sizeof(kp_report_info_t) as the caller compiled
    /// it. Out (every filled element): the number of bytes kp filled.
    pub struct_size: usize,
    /// Topic of the record, NUL-terminated; valid until kp_producer_destroy().
    pub topic: *const c_char,
    /// Partition the record went to (-1 if it never got one).
    pub partition: i32,
    /// Offset in the partition (-1 when unknown: errors, acks=0).
    pub offset: i64,
    /// CreateTime, or the broker's LogAppendTime when the topic uses it.
    pub timestamp: i64,
    /// KP_OK when the record was delivered, else the error code.
    pub error: kp_err_t,
    /// KP_ERROR_CLASS_* of the error (as kp_report_error_class()).
    pub error_class: kp_error_class_t,
    /// KP_PERSISTED, KP_POSSIBLY_PERSISTED or KP_NOT_PERSISTED.
    pub persistence: kp_persistence_t,
    /// The `ctx` given with the record to kp_send() / kp_send_batch().
    pub ctx: *mut c_void,
}

/// Takes up to `max` waiting delivery reports (mode "poll") into the array
/// `reports`, in one call, waiting up to `timeout_ms` for the first: the
/// batched form of kp_poll() for bindings. The records' callbacks are not
/// called: each report carries its record's `ctx` instead (interceptors
/// still see every report). Returns how many elements were filled (0 when
/// none came in time, always 0 in mode "thread"), or a negative error:
/// KP_ERR_INVALID_ARG (NULL, max 0, or a first element whose struct_size
/// is too small or not a multiple of 8). Every report is returned exactly
/// once, also to threads calling this concurrently; reports past `max`
/// stay queued in order. Thread-safe.
///
/// # Safety
/// `p` is NULL or a producer not yet destroyed; `reports` is NULL or points
/// to `max` elements of `reports[0].struct_size` bytes each, writable.
#[no_mangle]
pub unsafe extern "C" fn kp_poll_reports(
    p: *mut kp_producer_t,
    reports: *mut kp_report_info_t,
    max: usize,
    timeout_ms: i32,
) -> c_int {
    guard(|| {
        let p = match usable(handle!(p)) {
            Ok(p) => p,
            Err(e) => return e.code,
        };
        if reports.is_null() || max == 0 {
            return KP_ERR_INVALID_ARG;
        }
        let stride = struct_size!(reports);
        if stride < size_of::<kp_report_info_t>() || stride % 8 != 0 {
            return KP_ERR_INVALID_ARG;
        }
        let len = size_of::<kp_report_info_t>();
        let max = max.min(c_int::MAX as usize);
        let mut filled = 0usize;
        let mut topic: Option<(Arc<str>, *const c_char)> = None;
        p.producer.drain_reports(max, timeout(timeout_ms), &mut |view, token| {
            let report = Report { view, transactional: p.transactional };
            if let Some(i) = p.on_send {
                let _scope = CallbackScope::enter();
                i.on_ack(report.as_handle());
            }
            let name = &view.topic.name;
            let cname = match &topic {
                Some((n, c)) if Arc::ptr_eq(n, name) => *c,
                _ => {
                    let c = p.topic_cname(name);
                    topic = Some((name.clone(), c));
                    c
                }
            };
            let info = kp_report_info_t {
                struct_size: len,
                topic: cname,
                partition: view.partition,
                offset: view.offset,
                timestamp: view.timestamp,
                error: view.error,
                error_class: report.class() as kp_error_class_t,
                persistence: view.persistence as kp_persistence_t,
                ctx: match token {
                    Token::Callback { ctx, .. } | Token::Ctx(ctx) => *ctx as *mut c_void,
                    _ => std::ptr::null_mut(),
                },
            };
            write_element!(reports, filled, stride, &info, len);
            filled += 1;
        });
        filled as c_int
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
    guard(|| match usable(handle!(p)) {
        Err(e) => e.code,
        Ok(p) => p.producer.poll(timeout(timeout_ms)).min(c_int::MAX as usize) as c_int,
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
    guard_or(-1, || usable(handle!(p)).map(|p| p.producer.poll_fd()).unwrap_or(-1))
}
