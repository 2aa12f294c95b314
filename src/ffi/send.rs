//! Sending: `kp_record_t` with its `kp_header_t`s, the delivery callback
//! type, and kp_send / kp_send_with_errstr / kp_send_sync.

use std::ffi::{c_char, c_void};
use std::mem::{offset_of, size_of};
use std::sync::Arc;

use super::boundary::{
    ascii_str, c_slice, c_slice_mut, c_str_bytes, guard, handle, handle_mut, set_errstr,
    struct_size, timeout,
};
use super::errors::{kp_err_t, KP_ERR_TIMED_OUT, KP_OK};
use super::producer::{kp_producer_t, usable};
use super::report::kp_report_t;
use crate::engine::{Record, SyncSlot, Token};
use crate::error::{self, Error};
use crate::protocol::record_batch::RecordHeader;

/// Let the partitioner choose the partition.
pub const KP_PARTITION_ANY: i32 = -1;

/// One record header. `key` is `key_len` bytes (need not be NUL-terminated);
/// `value` NULL means a null header value.
#[repr(C)]
pub struct kp_header_t {
    /// Header name bytes (`key_len` of them; NULL only when key_len is 0).
    pub key: *const c_char,
    /// Length of `key` in bytes.
    pub key_len: usize,
    /// Header value bytes; NULL means a null value (value_len ignored).
    pub value: *const c_void,
    /// Length of `value` in bytes.
    pub value_len: usize,
}

/// A record to send. Fill it with KP_RECORD_INIT (or zero it and set
/// `struct_size = sizeof(kp_record_t)`), then set the fields you need. The
/// struct may grow in later versions; `struct_size` tells kp which fields
/// the caller knows. kp only reads it during kp_send(): the caller keeps
/// ownership of every buffer, except `value` when `value_free` is set.
#[repr(C)]
pub struct kp_record_t {
    /// sizeof(kp_record_t) as the caller compiled it.
    pub struct_size: usize,
    /// NUL-terminated topic name (required).
    pub topic: *const c_char,
    /// Partition number, or KP_PARTITION_ANY (-1) to use the partitioner.
    pub partition: i32,
    /// Key bytes; NULL means a null key (key_len ignored).
    pub key: *const c_void,
    /// Length of `key` in bytes.
    pub key_len: usize,
    /// Value bytes; NULL means a null value (a tombstone).
    pub value: *const c_void,
    /// Length of `value` in bytes.
    pub value_len: usize,
    /// Array of `header_count` headers (NULL when header_count is 0).
    pub headers: *const kp_header_t,
    /// Number of entries in `headers`.
    pub header_count: usize,
    /// CreateTime in milliseconds since the epoch; 0 means now.
    pub timestamp_ms: i64,
    /// Optional: hand ownership of `value` to kp. When set and kp_send()
    /// succeeds, kp calls value_free(value, value_free_opaque) exactly once,
    /// when it no longer needs the buffer (today: before kp_send returns,
    /// since records are copied into the batch). When kp_send fails the
    /// caller still owns the buffer.
    pub value_free: Option<unsafe extern "C" fn(value: *mut c_void, opaque: *mut c_void)>,
    /// Passed to value_free as its second argument.
    pub value_free_opaque: *mut c_void,
}

/// Delivery callback: exactly one call per accepted record, on kp's delivery
/// thread (delivery.report.mode=thread) or inside kp_poll()/kp_flush()/
/// kp_producer_close() (delivery.report.mode=poll); never on the network
/// thread. `ctx` is the pointer given to kp_send().
pub type kp_delivery_cb_t =
    Option<unsafe extern "C" fn(report: *const kp_report_t, ctx: *mut c_void)>;

/// Oldest kp_record_t layout we accept (everything up to timestamp_ms).
const RECORD_MIN_SIZE: usize = offset_of!(kp_record_t, value_free);

/// Headers up to this count are converted on the stack (no allocation).
const STACK_HEADERS: usize = 8;

fn invalid(code: error::Code, msg: &'static str) -> Error {
    Error::new(code, msg)
}

/// Validates `rec` and hands it to the engine with `token`.
///
/// # Safety
/// As kp_send(): `p` and `rec` are NULL or valid, and so are the record's
/// pointers.
unsafe fn send_inner(
    p: *mut kp_producer_t,
    rec: *const kp_record_t,
    token: Token,
) -> Result<(), Error> {
    let p = usable(handle!(p))?;
    let r = handle!(rec).ok_or_else(|| invalid(error::INVALID_ARG, "record is NULL"))?;
    if r.struct_size < RECORD_MIN_SIZE {
        return Err(invalid(
            error::INVALID_ARG,
            "record.struct_size is not set; initialise records with KP_RECORD_INIT",
        ));
    }
    let Some(topic) = c_str_bytes!(r.topic) else {
        return Err(invalid(error::INVALID_TOPIC, "record.topic is NULL"));
    };
    // Kafka topic names are ASCII: anything else is rejected here.
    let Some(topic) = ascii_str(topic) else {
        return Err(invalid(
            error::INVALID_TOPIC,
            "record.topic contains non-ASCII bytes; Kafka topic names are ASCII",
        ));
    };
    if r.header_count == 0 {
        // SAFETY: forwarded from this function's contract.
        return unsafe { send_with_headers(p, rec, r, topic, &[], token) };
    }
    let Some(hdrs) = c_slice!(r.headers, r.header_count) else {
        return Err(invalid(error::INVALID_ARG, "record.headers is NULL but header_count > 0"));
    };
    let header = |h: &kp_header_t| RecordHeader {
        key: c_slice!(h.key.cast::<u8>(), h.key_len).unwrap_or(&[]),
        value: c_slice!(h.value.cast::<u8>(), h.value_len),
    };
    if hdrs.len() <= STACK_HEADERS {
        let mut stack = [RecordHeader { key: &[], value: None }; STACK_HEADERS];
        for (slot, h) in stack.iter_mut().zip(hdrs) {
            *slot = header(h);
        }
        // SAFETY: forwarded from this function's contract.
        unsafe { send_with_headers(p, rec, r, topic, &stack[..hdrs.len()], token) }
    } else {
        let heap: Vec<RecordHeader<'_>> = hdrs.iter().map(header).collect();
        // SAFETY: forwarded from this function's contract.
        unsafe { send_with_headers(p, rec, r, topic, &heap, token) }
    }
}

/// # Safety
/// `rec` is the record `r` refers to, valid as kp_send() requires.
#[inline(always)]
unsafe fn send_with_headers(
    p: &kp_producer_t,
    rec: *const kp_record_t,
    r: &kp_record_t,
    topic: &str,
    headers: &[RecordHeader<'_>],
    token: Token,
) -> Result<(), Error> {
    let value_free = if r.struct_size >= size_of::<kp_record_t>() { r.value_free } else { None };
    if let Some(i) = p.on_send {
        i.on_send(rec);
    }
    let record = Record {
        topic,
        partition: r.partition,
        key: c_slice!(r.key.cast::<u8>(), r.key_len),
        value: c_slice!(r.value.cast::<u8>(), r.value_len),
        headers,
        timestamp_ms: r.timestamp_ms,
    };
    p.producer.send(&record, token)?;
    if let Some(f) = value_free {
        // SAFETY: the caller's value_free for its own buffer, called exactly
        // once after the record was accepted, as kp_record_t documents.
        unsafe { f(r.value.cast_mut(), r.value_free_opaque) };
    }
    Ok(())
}

/// How a record's report reaches the caller: through `cb`, or, without
/// one, with `ctx` in kp_poll_reports()'s kp_report_info_t.
fn token_for(cb: kp_delivery_cb_t, ctx: *mut c_void) -> Token {
    match cb {
        Some(cb) => Token::Callback { cb, ctx: ctx as usize },
        None if !ctx.is_null() => Token::Ctx(ctx as usize),
        None => Token::None,
    }
}

/// Sends a record asynchronously. Returns KP_OK when the record was accepted:
/// then `cb` (if not NULL) is called exactly once with its delivery report and
/// `ctx`; with `cb` NULL, kp_poll_reports() still returns `ctx` with the
/// report. On any other return the record was not accepted and no report will
/// come: KP_ERR_INVALID_ARG, KP_ERR_INVALID_TOPIC, KP_ERR_RECORD_TOO_LARGE,
/// KP_ERR_UNKNOWN_PARTITION, KP_ERR_QUEUE_FULL (buffer full past
/// max.block.ms), KP_ERR_CLOSED. May block up to max.block.ms when the
/// buffer is full, or on a topic's first use while its metadata is being
/// fetched once 1 MiB of records already waits for it (then the record is
/// accepted and waits too). Thread-safe. The record's buffers are copied before return.
///
/// # Safety
/// `p` is NULL or a producer not yet destroyed; `record` is NULL or a
/// kp_record_t whose pointers are valid as its fields document.
#[no_mangle]
pub unsafe extern "C" fn kp_send(
    p: *mut kp_producer_t,
    record: *const kp_record_t,
    cb: kp_delivery_cb_t,
    ctx: *mut c_void,
) -> kp_err_t {
    // SAFETY: this function's contract, with no error buffer.
    unsafe { kp_send_with_errstr(p, record, cb, ctx, std::ptr::null_mut(), 0) }
}

/// kp_send() that also writes a message saying why a record was not
/// accepted into `errstr` (may be NULL).
///
/// # Safety
/// As kp_send(); `errstr` is NULL or has `errstr_size` writable bytes.
#[no_mangle]
pub unsafe extern "C" fn kp_send_with_errstr(
    p: *mut kp_producer_t,
    record: *const kp_record_t,
    cb: kp_delivery_cb_t,
    ctx: *mut c_void,
    errstr: *mut c_char,
    errstr_size: usize,
) -> kp_err_t {
    guard(|| {
        let token = token_for(cb, ctx);
        // SAFETY: this function's contract.
        match unsafe { send_inner(p, record, token) } {
            Ok(()) => KP_OK,
            Err(e) => {
                set_errstr!(errstr, errstr_size, &e.message);
                e.code
            }
        }
    })
}

/// Sends a record and waits up to `timeout_ms` for its delivery report.
/// Returns KP_OK with `*partition_out`/`*offset_out` set (each may be NULL),
/// or the error (immediate or from the report) with a message in `errstr`.
/// KP_ERR_TIMED_OUT here means the wait ended; the record was accepted and
/// may still be delivered (its report then goes only to interceptors).
/// Works in both delivery.report.mode settings. Thread-safe.
///
/// # Safety
/// As kp_send(); `partition_out` and `offset_out` are NULL or writable;
/// `errstr` is NULL or has `errstr_size` writable bytes.
#[no_mangle]
pub unsafe extern "C" fn kp_send_sync(
    p: *mut kp_producer_t,
    record: *const kp_record_t,
    timeout_ms: i32,
    partition_out: *mut i32,
    offset_out: *mut i64,
    errstr: *mut c_char,
    errstr_size: usize,
) -> kp_err_t {
    guard(|| {
        let slot = Arc::new(SyncSlot::default());
        // SAFETY: this function's contract.
        if let Err(e) = unsafe { send_inner(p, record, Token::Sync(slot.clone())) } {
            set_errstr!(errstr, errstr_size, &e.message);
            return e.code;
        }
        let Some(r) = slot.wait(timeout(timeout_ms)) else {
            set_errstr!(errstr, errstr_size, &format!("no delivery report within {timeout_ms} ms"));
            return KP_ERR_TIMED_OUT;
        };
        if let Some(o) = handle_mut!(partition_out) {
            *o = r.partition;
        }
        if let Some(o) = handle_mut!(offset_out) {
            *o = r.offset;
        }
        match r.error {
            None => KP_OK,
            Some(e) => {
                set_errstr!(errstr, errstr_size, &e.message);
                e.code
            }
        }
    })
}

/// Sends `count` records in one call (the batched form of kp_send() for
/// bindings, where each call across the FFI costs). `records` is an array of
/// kp_record_t whose first element's struct_size (KP_RECORD_INIT sets it)
/// is the array's stride. Each record is accepted or refused on its own,
/// exactly as kp_send() would: `results[i]` (if `results` is not NULL)
/// receives KP_OK or why record i was not accepted (e.g.
/// KP_ERR_RECORD_TOO_LARGE, KP_ERR_INVALID_TOPIC). Every accepted record
/// gets exactly one report through `cb` with `ctxs[i]` (`ctxs` may be NULL:
/// then every ctx is NULL). Returns the number of records accepted. When
/// `p` is NULL or unusable, or the first struct_size is wrong, no record is
/// accepted and every result says why. Thread-safe.
///
/// # Safety
/// `p` is NULL or a producer not yet destroyed; `records` is NULL or points
/// to `count` records of `records[0].struct_size` bytes, each valid as for
/// kp_send(); `ctxs` is NULL or has `count` entries; `results` is NULL or
/// has `count` writable entries.
#[no_mangle]
pub unsafe extern "C" fn kp_send_batch(
    p: *mut kp_producer_t,
    records: *const kp_record_t,
    count: usize,
    cb: kp_delivery_cb_t,
    ctxs: *const *mut c_void,
    results: *mut kp_err_t,
) -> usize {
    guard(|| {
        let results: &mut [kp_err_t] = c_slice_mut!(results, count).unwrap_or_default();
        let ctxs = c_slice!(ctxs, count);
        let stride = if records.is_null() || count == 0 { 0 } else { struct_size!(records) };
        let refused = match usable(handle!(p)) {
            Err(e) => Some(e.code),
            Ok(_) if records.is_null() => Some(error::INVALID_ARG),
            Ok(_) if stride < RECORD_MIN_SIZE || stride % 8 != 0 => Some(error::INVALID_ARG),
            Ok(_) => None,
        };
        if let Some(code) = refused {
            results.iter_mut().for_each(|r| *r = code);
            return 0;
        }
        let mut accepted = 0;
        for i in 0..count {
            let ctx = ctxs.map_or(std::ptr::null_mut(), |c| c[i]);
            let token = token_for(cb, ctx);
            let rec = records.wrapping_byte_add(i * stride);
            // SAFETY: record i lies within the caller's array (this
            // function's contract), valid as kp_send() requires.
            let code = match unsafe { send_inner(p, rec, token) } {
                Ok(()) => {
                    accepted += 1;
                    KP_OK
                }
                Err(e) => e.code,
            };
            if let Some(r) = results.get_mut(i) {
                *r = code;
            }
        }
        accepted
    })
}
