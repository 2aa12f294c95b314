//! Error codes (`kp_err_t`, the KP_ERR_* constants, kp_err_name/str) and the
//! rich error object `kp_error_t` of the transactional calls.
//!
//! The KP_ERR_* lines of kp.h are generated from `crate::error::TABLE` (the
//! one error table) by build.rs; the constants below are the same codes for
//! Rust callers, and build.rs checks that both name the same set.

use std::ffi::{c_char, CStr, CString};

use super::boundary::{free_handle, guard, handle, into_handle, Handle, Owned};
use crate::error::{self, ErrorClass};

/// Error code: 0 is success, Kafka protocol error numbers for broker errors,
/// -100 and below for errors kp detects itself. See kp_err_name()/kp_err_str().
pub type kp_err_t = i32;

/// Success.
pub const KP_OK: kp_err_t = 0;
pub const KP_ERR_INVALID_ARG: kp_err_t = error::INVALID_ARG;
pub const KP_ERR_QUEUE_FULL: kp_err_t = error::QUEUE_FULL;
pub const KP_ERR_RECORD_TOO_LARGE: kp_err_t = error::RECORD_TOO_LARGE;
pub const KP_ERR_INVALID_TOPIC: kp_err_t = error::INVALID_TOPIC;
pub const KP_ERR_UNKNOWN_PARTITION: kp_err_t = error::UNKNOWN_PARTITION;
pub const KP_ERR_TIMED_OUT: kp_err_t = error::TIMED_OUT;
pub const KP_ERR_TRANSPORT: kp_err_t = error::TRANSPORT;
pub const KP_ERR_ALL_BROKERS_DOWN: kp_err_t = error::ALL_BROKERS_DOWN;
pub const KP_ERR_PURGED_QUEUED: kp_err_t = error::PURGED_QUEUED;
pub const KP_ERR_PURGED_IN_FLIGHT: kp_err_t = error::PURGED_IN_FLIGHT;
pub const KP_ERR_CLOSED: kp_err_t = error::CLOSED;
pub const KP_ERR_FATAL: kp_err_t = error::FATAL;
pub const KP_ERR_STATE: kp_err_t = error::STATE;
pub const KP_ERR_INTERNAL: kp_err_t = error::INTERNAL;
pub const KP_ERR_UNSUPPORTED_FEATURE: kp_err_t = error::UNSUPPORTED_FEATURE;
pub const KP_ERR_BAD_RESPONSE: kp_err_t = error::BAD_RESPONSE;
pub const KP_ERR_PARTITIONER_FAILED: kp_err_t = error::PARTITIONER_FAILED;
pub const KP_ERR_FORKED: kp_err_t = error::FORKED;
pub const KP_ERR_AUTHENTICATION: kp_err_t = error::AUTHENTICATION;
pub const KP_ERR_MESSAGE_TOO_LARGE: kp_err_t = error::MESSAGE_TOO_LARGE;
pub const KP_ERR_NOT_ENOUGH_REPLICAS: kp_err_t = error::NOT_ENOUGH_REPLICAS;
pub const KP_ERR_UNKNOWN_TOPIC_OR_PARTITION: kp_err_t = error::UNKNOWN_TOPIC_OR_PARTITION;

/// What the caller can do about an error (after KIP-1050, the Java
/// client's classes since Kafka 4.1): one of the KP_ERROR_CLASS_* values
/// (the discriminants of `crate::error::ErrorClass`; a unit test ties them).
pub type kp_error_class_t = i32;
/// No error (KP_OK).
pub const KP_ERROR_CLASS_NONE: kp_error_class_t = 0;
/// Transient: retrying the same call or record may succeed.
pub const KP_ERROR_CLASS_RETRIABLE: kp_error_class_t = 1;
/// Transient once metadata is refreshed (kp does that itself): retry.
pub const KP_ERROR_CLASS_REFRESH_RETRIABLE: kp_error_class_t = 2;
/// Inside a transaction: abort it (kp_abort_transaction), then go on.
pub const KP_ERROR_CLASS_ABORTABLE: kp_error_class_t = 3;
/// The application decides: fix or drop the record, or recreate the producer.
pub const KP_ERROR_CLASS_APPLICATION_RECOVERABLE: kp_error_class_t = 4;
/// A setting, permission or broker feature is wrong or missing.
pub const KP_ERROR_CLASS_INVALID_CONFIGURATION: kp_error_class_t = 5;
/// The producer cannot be used any more: destroy it and create a new one.
pub const KP_ERROR_CLASS_FATAL: kp_error_class_t = 6;

/// The class of an error code (KP_ERROR_CLASS_NONE for KP_OK,
/// KP_ERROR_CLASS_APPLICATION_RECOVERABLE for an unknown code). A report's
/// own class (kp_report_error_class) can differ: inside a transaction a
/// retriable error that ran out of retries is abortable.
#[no_mangle]
pub extern "C" fn kp_err_class(err: kp_err_t) -> kp_error_class_t {
    guard(|| error::class(err) as kp_error_class_t)
}

/// Symbolic name of an error code, e.g. "NOT_ENOUGH_REPLICAS" (without the
/// KP_ERR_ prefix). Static string.
#[no_mangle]
pub extern "C" fn kp_err_name(err: kp_err_t) -> *const c_char {
    guard(|| static_cstr(error::name(err)))
}

/// Human description of an error code. Static string.
#[no_mangle]
pub extern "C" fn kp_err_str(err: kp_err_t) -> *const c_char {
    guard(|| static_cstr(error::description(err)))
}

/// Whether an operation that failed with this code may succeed if retried.
#[no_mangle]
pub extern "C" fn kp_err_is_retriable(err: kp_err_t) -> bool {
    guard(|| error::is_retriable(err))
}

/// A NUL-terminated copy of a static table string, made once and kept.
fn static_cstr(s: &'static str) -> *const c_char {
    use once_cell::sync::Lazy;
    use std::collections::HashMap;
    static CACHE: Lazy<parking_lot::Mutex<HashMap<&'static str, &'static CStr>>> =
        Lazy::new(Default::default);
    let mut c = CACHE.lock();
    c.entry(s)
        .or_insert_with(|| Box::leak(CString::new(s).unwrap_or_default().into_boxed_c_str()))
        .as_ptr()
}

/// A rich error (opaque) from the transactional calls: code, message and
/// class. NULL means success. Free it with kp_error_destroy().
pub struct kp_error_t {
    code: kp_err_t,
    message: CString,
    retriable: bool,
    fatal: bool,
    requires_abort: bool,
    class: ErrorClass,
}

impl Handle for kp_error_t {
    type Ownership = Owned;
}

impl kp_error_t {
    /// A new error handle for C (a NUL inside `message` becomes a space).
    pub(crate) fn new_handle(
        code: kp_err_t,
        message: &str,
        retriable: bool,
        fatal: bool,
        requires_abort: bool,
    ) -> *mut kp_error_t {
        let message = CString::new(message.replace('\0', " ")).unwrap_or_default();
        let class = match error::class(code) {
            _ if fatal => ErrorClass::Fatal,
            _ if requires_abort => ErrorClass::Abortable,
            c if retriable && c.is_retriable() => c,
            _ if retriable => ErrorClass::Retriable,
            c if c.is_retriable() => ErrorClass::ApplicationRecoverable,
            c => c,
        };
        into_handle(kp_error_t { code, message, retriable, fatal, requires_abort, class })
    }

    /// A plain error (not retriable, not fatal, no abort needed).
    pub(crate) fn simple(code: kp_err_t, message: &str) -> *mut kp_error_t {
        Self::new_handle(code, message, false, false, false)
    }
}

/// The error's code (KP_ERR_INVALID_ARG for NULL).
///
/// # Safety
/// `e` is NULL or an error from kp not yet destroyed.
#[no_mangle]
pub unsafe extern "C" fn kp_error_code(e: *const kp_error_t) -> kp_err_t {
    guard(|| handle!(e).map(|e| e.code).unwrap_or(KP_ERR_INVALID_ARG))
}

/// The error's message (valid until kp_error_destroy(); "" for NULL).
///
/// # Safety
/// `e` is NULL or an error from kp not yet destroyed.
#[no_mangle]
pub unsafe extern "C" fn kp_error_message(e: *const kp_error_t) -> *const c_char {
    guard(|| handle!(e).map(|e| e.message.as_ptr()).unwrap_or(c"".as_ptr()))
}

/// Whether calling the same function again may succeed.
///
/// # Safety
/// `e` is NULL or an error from kp not yet destroyed.
#[no_mangle]
pub unsafe extern "C" fn kp_error_is_retriable(e: *const kp_error_t) -> bool {
    guard(|| handle!(e).is_some_and(|e| e.retriable))
}

/// Whether the producer can no longer be used (e.g. fenced).
///
/// # Safety
/// `e` is NULL or an error from kp not yet destroyed.
#[no_mangle]
pub unsafe extern "C" fn kp_error_is_fatal(e: *const kp_error_t) -> bool {
    guard(|| handle!(e).is_some_and(|e| e.fatal))
}

/// Whether the transaction must be aborted (kp_abort_transaction) before
/// the producer can go on.
///
/// # Safety
/// `e` is NULL or an error from kp not yet destroyed.
#[no_mangle]
pub unsafe extern "C" fn kp_error_txn_requires_abort(e: *const kp_error_t) -> bool {
    guard(|| handle!(e).is_some_and(|e| e.requires_abort))
}

/// The error's class (KP_ERROR_CLASS_*), consistent with the three
/// predicates above: fatal → FATAL, requires abort → ABORTABLE, retriable →
/// RETRIABLE (or REFRESH_RETRIABLE). KP_ERROR_CLASS_NONE for NULL.
///
/// # Safety
/// `e` is NULL or an error from kp not yet destroyed.
#[no_mangle]
pub unsafe extern "C" fn kp_error_class(e: *const kp_error_t) -> kp_error_class_t {
    guard(|| handle!(e).map(|e| e.class as kp_error_class_t).unwrap_or(KP_ERROR_CLASS_NONE))
}

/// Frees an error. NULL is a no-op.
///
/// # Safety
/// `e` is NULL or an error from kp not yet destroyed; it is not used after.
#[no_mangle]
pub unsafe extern "C" fn kp_error_destroy(e: *mut kp_error_t) {
    // SAFETY: this function's contract.
    guard(|| unsafe { free_handle(e) })
}
