//! Transactions: kp_init/begin/commit/abort_transaction, and `kp_offsets_t`
//! for consume-transform-produce (kp_send_offsets_to_transaction). Every
//! transactional call returns NULL on success or a `kp_error_t`.

use std::ffi::c_char;

use super::boundary::{
    c_str, free_handle, guard, guard_or, handle, handle_mut, into_handle, timeout, Handle, Owned,
};
use super::errors::{
    kp_err_t, kp_error_t, KP_ERR_FORKED, KP_ERR_INTERNAL, KP_ERR_INVALID_ARG, KP_OK,
};
use super::producer::{kp_producer_t, not_in_callback, usable};
use crate::engine::txn::TxnError;
use crate::engine::Producer;

/// A list of (topic, partition, offset) for kp_send_offsets_to_transaction()
/// (opaque). Offsets are the next offset to consume (last processed + 1).
pub struct kp_offsets_t {
    entries: Vec<(String, i32, i64)>,
}

impl Handle for kp_offsets_t {
    type Ownership = Owned;
}

fn txn_result(r: Result<(), TxnError>) -> *mut kp_error_t {
    match r {
        Ok(()) => std::ptr::null_mut(),
        Err(e) => kp_error_t::new_handle(
            e.error.code,
            &e.error.message,
            e.retriable,
            e.fatal,
            e.requires_abort,
        ),
    }
}

/// Runs a transactional call on the producer `p`: None (a NULL handle) is
/// an INVALID_ARG error object, a caught panic an INTERNAL one.
fn with_producer(
    p: Option<&kp_producer_t>,
    f: impl FnOnce(&Producer) -> *mut kp_error_t,
) -> *mut kp_error_t {
    guard_or_error(|| match usable(p) {
        Err(e) => kp_error_t::new_handle(e.code, &e.message, false, e.code == KP_ERR_FORKED, false),
        Ok(p) => f(&p.producer),
    })
}

fn guard_or_error(f: impl FnOnce() -> *mut kp_error_t) -> *mut kp_error_t {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(e) => e,
        Err(_) => kp_error_t::simple(KP_ERR_INTERNAL, "internal error (panic caught)"),
    }
}

/// Initialises transactions (needs `transactional.id`): finds the
/// transaction coordinator, gets the producer id and epoch, fences older
/// producers with the same transactional.id and aborts their open
/// transaction. Call once, before the first kp_begin_transaction(). Returns
/// NULL on success or an error (retriable ones, e.g. a timeout, may be
/// retried by calling again). Blocks up to `timeout_ms`.
///
/// # Safety
/// `p` is NULL or a producer not yet destroyed.
#[no_mangle]
pub unsafe extern "C" fn kp_init_transactions(
    p: *mut kp_producer_t,
    timeout_ms: i32,
) -> *mut kp_error_t {
    with_producer(handle!(p), |p| txn_result(p.init_transactions(timeout(timeout_ms))))
}

/// Starts a transaction (local; no network). Records sent until the commit or
/// abort belong to it.
///
/// # Safety
/// `p` is NULL or a producer not yet destroyed.
#[no_mangle]
pub unsafe extern "C" fn kp_begin_transaction(p: *mut kp_producer_t) -> *mut kp_error_t {
    with_producer(handle!(p), |p| txn_result(p.begin_transaction()))
}

/// Flushes the transaction's records and commits it, waiting up to
/// `timeout_ms`. On error: kp_error_txn_requires_abort() → call
/// kp_abort_transaction(); kp_error_is_retriable() → call commit again;
/// kp_error_is_fatal() → destroy the producer. Called from a delivery
/// callback it fails at once with KP_ERR_STATE.
///
/// # Safety
/// `p` is NULL or a producer not yet destroyed.
#[no_mangle]
pub unsafe extern "C" fn kp_commit_transaction(
    p: *mut kp_producer_t,
    timeout_ms: i32,
) -> *mut kp_error_t {
    with_producer(handle!(p), |p| match not_in_callback("kp_commit_transaction") {
        Err(e) => kp_error_t::simple(e.code, &e.message),
        Ok(()) => txn_result(p.commit_transaction(timeout(timeout_ms))),
    })
}

/// Aborts the transaction: unsent records are reported with
/// KP_ERR_PURGED_QUEUED, in-flight ones are waited for (up to `timeout_ms`),
/// then the coordinator aborts it (read_committed consumers never see it).
///
/// # Safety
/// `p` is NULL or a producer not yet destroyed.
#[no_mangle]
pub unsafe extern "C" fn kp_abort_transaction(
    p: *mut kp_producer_t,
    timeout_ms: i32,
) -> *mut kp_error_t {
    with_producer(handle!(p), |p| txn_result(p.abort_transaction(timeout(timeout_ms))))
}

/// Adds consumer offsets to the transaction (consume-transform-produce): the
/// group's committed offsets change only if the transaction commits.
///
/// # Safety
/// `p` is NULL or a producer not yet destroyed; `offsets` is NULL or an
/// offsets list not yet destroyed; `group_id` is NULL or a NUL-terminated
/// string.
#[no_mangle]
pub unsafe extern "C" fn kp_send_offsets_to_transaction(
    p: *mut kp_producer_t,
    offsets: *const kp_offsets_t,
    group_id: *const c_char,
    timeout_ms: i32,
) -> *mut kp_error_t {
    with_producer(handle!(p), |p| {
        let (Some(o), Some(g)) = (handle!(offsets), c_str!(group_id)) else {
            return kp_error_t::simple(KP_ERR_INVALID_ARG, "offsets and group_id must be non-NULL");
        };
        txn_result(p.send_offsets_to_transaction(&o.entries, g, timeout(timeout_ms)))
    })
}

/// The transaction protocol kp_init_transactions() negotiated: 2 for
/// Kafka 4's transactions v2 (KIP-890), 1 for the classic protocol, 0 when
/// transactions are not initialised (or p is NULL).
///
/// # Safety
/// `p` is NULL or a producer not yet destroyed.
#[no_mangle]
pub unsafe extern "C" fn kp_transaction_protocol_version(p: *const kp_producer_t) -> i32 {
    guard_or(0, || {
        usable(handle!(p)).map(|p| p.producer.transaction_protocol_version()).unwrap_or(0)
    })
}

/// Creates an empty offsets list. Free with kp_offsets_destroy().
#[no_mangle]
pub extern "C" fn kp_offsets_new() -> *mut kp_offsets_t {
    guard(|| into_handle(kp_offsets_t { entries: Vec::new() }))
}

/// Adds (topic, partition, offset); `topic` is copied.
///
/// # Safety
/// `o` is NULL or an offsets list not yet destroyed, used by no other
/// thread; `topic` is NULL or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn kp_offsets_add(
    o: *mut kp_offsets_t,
    topic: *const c_char,
    partition: i32,
    offset: i64,
) -> kp_err_t {
    guard(|| {
        let (Some(o), Some(t)) = (handle_mut!(o), c_str!(topic)) else {
            return KP_ERR_INVALID_ARG;
        };
        if partition < 0 || offset < 0 {
            return KP_ERR_INVALID_ARG;
        }
        o.entries.push((t.to_string(), partition, offset));
        KP_OK
    })
}

/// Frees an offsets list. NULL is a no-op.
///
/// # Safety
/// `o` is NULL or an offsets list not yet destroyed; it is not used after.
#[no_mangle]
pub unsafe extern "C" fn kp_offsets_destroy(o: *mut kp_offsets_t) {
    // SAFETY: this function's contract.
    guard(|| unsafe { free_handle(o) })
}
