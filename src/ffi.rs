//! The C ABI. Every function is NULL-safe and runs inside a panic boundary:
//! a panic inside kp becomes KP_ERR_INTERNAL (or NULL), never an abort of the
//! host process.
#![allow(non_camel_case_types)]
#![allow(clippy::missing_safety_doc)]

use std::ffi::{c_char, c_int, c_void, CStr};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr;
use std::sync::Arc;
use std::time::Duration;

use crate::config::{ConfigMap, ProducerConfig, SetError};
use crate::engine::{Dispatch, Producer, Record, ReportView, SyncSlot, Token};
use crate::error::{self, Error};
use crate::protocol::record_batch::RecordHeader;

/// Error code: 0 is success, Kafka protocol error numbers for broker errors,
/// -100 and below for errors kp detects itself. See kp_err_name()/kp_err_str().
pub type kp_err_t = i32;

pub const KP_OK: kp_err_t = 0;
/// A required pointer was NULL, or a value was out of range.
pub const KP_ERR_INVALID_ARG: kp_err_t = -100;
/// buffer.memory is full (immediately with max.block.ms=0, else after max.block.ms).
pub const KP_ERR_QUEUE_FULL: kp_err_t = -101;
/// The record is larger than max.request.size (or buffer.memory).
pub const KP_ERR_RECORD_TOO_LARGE: kp_err_t = -102;
/// The topic name is not a legal Kafka topic name.
pub const KP_ERR_INVALID_TOPIC: kp_err_t = -103;
/// The explicit partition does not exist.
pub const KP_ERR_UNKNOWN_PARTITION: kp_err_t = -104;
/// A timeout expired (delivery.timeout.ms, or the call's own timeout).
pub const KP_ERR_TIMED_OUT: kp_err_t = -105;
/// A broker connection failed or was lost.
pub const KP_ERR_TRANSPORT: kp_err_t = -106;
/// No broker could be reached.
pub const KP_ERR_ALL_BROKERS_DOWN: kp_err_t = -107;
/// The record was purged before it was sent.
pub const KP_ERR_PURGED_QUEUED: kp_err_t = -108;
/// The record was purged while in flight.
pub const KP_ERR_PURGED_IN_FLIGHT: kp_err_t = -109;
/// The producer is closed or closing.
pub const KP_ERR_CLOSED: kp_err_t = -110;
/// The producer is in a fatal state.
pub const KP_ERR_FATAL: kp_err_t = -111;
/// The call is not valid in the producer's current state.
pub const KP_ERR_STATE: kp_err_t = -112;
/// An internal error (a bug in kp; a panic was caught).
pub const KP_ERR_INTERNAL: kp_err_t = -113;
/// The broker (or this build) lacks a needed feature.
pub const KP_ERR_UNSUPPORTED_FEATURE: kp_err_t = -114;
/// The broker's response could not be decoded.
pub const KP_ERR_BAD_RESPONSE: kp_err_t = -115;
/// The custom partitioner returned an invalid partition.
pub const KP_ERR_PARTITIONER_FAILED: kp_err_t = -116;
/// Broker error: record too large for the broker (Kafka code 10).
pub const KP_ERR_MESSAGE_TOO_LARGE: kp_err_t = 10;
/// Broker error: fewer in-sync replicas than min.insync.replicas (Kafka code 19).
pub const KP_ERR_NOT_ENOUGH_REPLICAS: kp_err_t = 19;
/// Broker error: unknown topic or partition (Kafka code 3).
pub const KP_ERR_UNKNOWN_TOPIC_OR_PARTITION: kp_err_t = 3;

/// Result of kp_config_set().
pub type kp_config_result_t = i32;
/// The property was set.
pub const KP_CONFIG_OK: kp_config_result_t = 0;
/// The property is known but the value is invalid (errstr says why).
pub const KP_CONFIG_INVALID: kp_config_result_t = -1;
/// No property of that name exists (errstr names it).
pub const KP_CONFIG_UNKNOWN: kp_config_result_t = -2;

/// Let the partitioner choose the partition.
pub const KP_PARTITION_ANY: i32 = -1;

/// Whether a record may be in the log (see kp_report_persistence()).
pub type kp_persistence_t = i32;
/// The record is certainly not in the log.
pub const KP_NOT_PERSISTED: kp_persistence_t = 0;
/// The record may or may not be in the log (sent, but no answer).
pub const KP_POSSIBLY_PERSISTED: kp_persistence_t = 1;
/// The broker acknowledged the record (per the acks setting).
pub const KP_PERSISTED: kp_persistence_t = 2;

/// Configuration object (opaque). Created by kp_config_new(), freed by
/// kp_config_destroy() or consumed by a successful kp_producer_new().
/// Not thread-safe: do not use one config from two threads at once.
pub struct kp_config_t {
    map: ConfigMap,
    interceptors: Option<Interceptors>,
    partitioner: Option<(
        unsafe extern "C" fn(*const c_char, *const c_void, usize, i32, *mut c_void) -> i32,
        usize,
    )>,
}

/// Producer handle (opaque). All functions taking it are thread-safe, except
/// kp_producer_destroy(), after which the handle must not be used.
pub struct kp_producer_t {
    producer: Producer,
    on_send: Option<Interceptors>,
}

/// A delivery report (opaque). Valid only during the callback that receives
/// it; read it with the kp_report_*() accessors.
pub struct kp_report_t {
    _private: [u8; 0],
}

/// A rich error (opaque) from the transactional calls: code, message and
/// class. NULL means success. Free it with kp_error_destroy().
pub struct kp_error_t {
    code: kp_err_t,
    message: std::ffi::CString,
    retriable: bool,
    fatal: bool,
    requires_abort: bool,
}

/// A list of (topic, partition, offset) for kp_send_offsets_to_transaction()
/// (opaque). Offsets are the next offset to consume (last processed + 1).
pub struct kp_offsets_t {
    entries: Vec<(String, i32, i64)>,
}

/// Partition information of one topic (opaque), from kp_partitions_for().
pub struct kp_topic_info_t {
    partitions: Vec<(i32, i32)>,
}

/// One record header. `key` is `key_len` bytes (need not be NUL-terminated);
/// `value` NULL means a null header value.
#[repr(C)]
pub struct kp_header_t {
    pub key: *const c_char,
    pub key_len: usize,
    pub value: *const c_void,
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
    pub key_len: usize,
    /// Value bytes; NULL means a null value (a tombstone).
    pub value: *const c_void,
    pub value_len: usize,
    /// Array of `header_count` headers (NULL when header_count is 0).
    pub headers: *const kp_header_t,
    pub header_count: usize,
    /// CreateTime in milliseconds since the epoch; 0 means now.
    pub timestamp_ms: i64,
    /// Optional: hand ownership of `value` to kp. When set and kp_send()
    /// succeeds, kp calls value_free(value, value_free_opaque) exactly once,
    /// when it no longer needs the buffer (today: before kp_send returns,
    /// since records are copied into the batch). When kp_send fails the
    /// caller still owns the buffer.
    pub value_free: Option<unsafe extern "C" fn(value: *mut c_void, opaque: *mut c_void)>,
    pub value_free_opaque: *mut c_void,
}

/// Producer metrics, filled by kp_producer_metrics(). Counters are totals
/// since kp_producer_new() unless a field says "now". Declare it with
/// KP_METRICS_INIT (or set `struct_size = sizeof(kp_metrics_t)`). Later
/// versions only append fields, and every field after `struct_size` is a
/// uint64_t, so a program built with an older header gets the prefix it
/// knows. Derived values: average batch size = batch_bytes / batches_sent;
/// compression ratio = batch_bytes / batch_bytes_uncompressed; average
/// request latency = request_latency_us_sum / request_latency_count.
#[repr(C)]
pub struct kp_metrics_t {
    /// In: sizeof(kp_metrics_t) as the caller compiled it. Out: the number
    /// of bytes kp filled (less when the library is older than the header).
    pub struct_size: usize,
    /// Records reported as delivered (acknowledged as `acks` asks; with
    /// acks=0, written to the socket).
    pub records_delivered: u64,
    /// Records reported with an error (purged, timed out, closed included).
    pub records_failed: u64,
    /// Now: records accepted by kp_send() and not yet reported.
    pub records_outstanding: u64,
    /// Now: bytes of buffer.memory in use (held records and their bookkeeping).
    pub buffer_bytes_used: u64,
    /// The buffer.memory limit in bytes.
    pub buffer_bytes_limit: u64,
    /// Produce requests sent to brokers (resends included).
    pub produce_requests: u64,
    /// Record batches sent, each counted once, at its first send.
    pub batches_sent: u64,
    /// Times a batch was queued for another attempt after a retriable error.
    pub batch_retries: u64,
    /// Bytes of the sent batches as on the wire: compressed, record batch
    /// header included, each batch counted once.
    pub batch_bytes: u64,
    /// Bytes of the same batches before compression.
    pub batch_bytes_uncompressed: u64,
    /// Sum of produce request latencies in microseconds, from handing the
    /// request to the connection to its response (acks 1 and all).
    pub request_latency_us_sum: u64,
    /// Number of latencies in that sum (produce responses received).
    pub request_latency_count: u64,
    /// Largest produce request latency in microseconds.
    pub request_latency_us_max: u64,
    /// Produce responses in which the broker throttled the client for a
    /// quota (throttle_time_ms > 0); kp then sends no new request to that
    /// broker until the time has passed.
    pub throttled_responses: u64,
    /// Sum of throttle_time_ms over produce responses (milliseconds).
    pub throttle_time_ms_sum: u64,
    /// Largest throttle_time_ms in one produce response (milliseconds).
    pub throttle_time_ms_max: u64,
    /// Broker connections established (TCP connect and ApiVersions done).
    pub connections_opened: u64,
    /// Broker connections that ended while in use: closed by the broker or
    /// the network, or dropped by kp after a request timeout or kp_purge().
    pub connections_closed: u64,
}

/// Delivery callback: exactly one call per accepted record, on kp's delivery
/// thread (delivery.report.mode=thread) or inside kp_poll()/kp_flush()/
/// kp_producer_close() (delivery.report.mode=poll); never on the network
/// thread. `ctx` is the pointer given to kp_send().
pub type kp_delivery_cb_t =
    Option<unsafe extern "C" fn(report: *const kp_report_t, ctx: *mut c_void)>;

/// Interceptor called in kp_send() before the record is accepted (read-only).
pub type kp_on_send_fn_t =
    Option<unsafe extern "C" fn(record: *const kp_record_t, ctx: *mut c_void)>;
/// Interceptor called once per report, before the record's own callback.
pub type kp_on_ack_fn_t =
    Option<unsafe extern "C" fn(report: *const kp_report_t, ctx: *mut c_void)>;
/// Custom partitioner: return a partition in [0, partition_count). `key` is
/// NULL for a null key. Called on the thread calling kp_send().
pub type kp_partitioner_fn_t = Option<
    unsafe extern "C" fn(
        topic: *const c_char,
        key: *const c_void,
        key_len: usize,
        partition_count: i32,
        ctx: *mut c_void,
    ) -> i32,
>;

#[derive(Clone, Copy)]
struct Interceptors {
    on_send: kp_on_send_fn_t,
    on_ack: kp_on_ack_fn_t,
    ctx: usize,
}

/// Oldest kp_record_t layout we accept (everything up to timestamp_ms).
const RECORD_MIN_SIZE: usize = std::mem::offset_of!(kp_record_t, value_free);

fn write_errstr(dst: *mut c_char, size: usize, msg: &str) {
    if dst.is_null() || size == 0 {
        return;
    }
    let bytes = msg.as_bytes();
    let n = bytes.len().min(size - 1);
    // SAFETY: the caller promised `size` writable bytes at `dst`.
    unsafe {
        ptr::copy_nonoverlapping(bytes.as_ptr(), dst as *mut u8, n);
        *dst.add(n) = 0;
    }
}

fn guard<T>(on_panic: T, f: impl FnOnce() -> T) -> T {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or(on_panic)
}

unsafe fn cstr<'a>(p: *const c_char) -> Option<&'a str> {
    if p.is_null() {
        None
    } else {
        CStr::from_ptr(p).to_str().ok()
    }
}

unsafe fn bytes<'a>(p: *const c_void, len: usize) -> Option<&'a [u8]> {
    if p.is_null() {
        None
    } else if len == 0 {
        Some(&[])
    } else {
        Some(std::slice::from_raw_parts(p as *const u8, len))
    }
}

// ---------------------------------------------------------------- config

/// Creates an empty configuration (all defaults). Free it with
/// kp_config_destroy() unless kp_producer_new() consumed it.
#[no_mangle]
pub extern "C" fn kp_config_new() -> *mut kp_config_t {
    guard(ptr::null_mut(), || {
        Box::into_raw(Box::new(kp_config_t {
            map: ConfigMap::default(),
            interceptors: None,
            partitioner: None,
        }))
    })
}

/// Copies a configuration. Returns NULL when `cfg` is NULL.
#[no_mangle]
pub unsafe extern "C" fn kp_config_dup(cfg: *const kp_config_t) -> *mut kp_config_t {
    guard(ptr::null_mut(), || match cfg.as_ref() {
        None => ptr::null_mut(),
        Some(c) => Box::into_raw(Box::new(kp_config_t {
            map: c.map.clone(),
            interceptors: c.interceptors,
            partitioner: c.partitioner,
        })),
    })
}

/// Frees a configuration. NULL is a no-op.
#[no_mangle]
pub unsafe extern "C" fn kp_config_destroy(cfg: *mut kp_config_t) {
    guard((), || {
        if !cfg.is_null() {
            drop(Box::from_raw(cfg));
        }
    })
}

/// Sets one property by name (Java producer names; librdkafka aliases where
/// they mean the same). Returns KP_CONFIG_OK, KP_CONFIG_INVALID or
/// KP_CONFIG_UNKNOWN; on failure a message naming the property is written
/// to `errstr` (up to `errstr_size` bytes incl. NUL; may be NULL).
#[no_mangle]
pub unsafe extern "C" fn kp_config_set(
    cfg: *mut kp_config_t,
    name: *const c_char,
    value: *const c_char,
    errstr: *mut c_char,
    errstr_size: usize,
) -> kp_config_result_t {
    guard(KP_CONFIG_INVALID, || {
        let Some(cfg) = cfg.as_mut() else {
            write_errstr(errstr, errstr_size, "cfg is NULL");
            return KP_CONFIG_INVALID;
        };
        let (Some(n), Some(v)) = (cstr(name), cstr(value)) else {
            write_errstr(errstr, errstr_size, "name and value must be non-NULL UTF-8 strings");
            return KP_CONFIG_INVALID;
        };
        match cfg.map.set(n, v) {
            Ok(()) => KP_CONFIG_OK,
            Err(SetError::Unknown(m)) => {
                write_errstr(errstr, errstr_size, &m);
                KP_CONFIG_UNKNOWN
            }
            Err(SetError::Invalid(m)) => {
                write_errstr(errstr, errstr_size, &m);
                KP_CONFIG_INVALID
            }
        }
    })
}

/// Reads a property's current value (or default) into `dest`. `*dest_size`
/// is the buffer size on input and the needed size (incl. NUL) on output;
/// pass dest=NULL to ask for the size. Returns KP_OK, KP_ERR_INVALID_ARG
/// (NULL arguments, unknown name, or buffer too small: then *dest_size says
/// how much is needed).
#[no_mangle]
pub unsafe extern "C" fn kp_config_get(
    cfg: *const kp_config_t,
    name: *const c_char,
    dest: *mut c_char,
    dest_size: *mut usize,
) -> kp_err_t {
    guard(KP_ERR_INTERNAL, || {
        let (Some(cfg), Some(n), Some(size)) = (cfg.as_ref(), cstr(name), dest_size.as_mut())
        else {
            return KP_ERR_INVALID_ARG;
        };
        let Some(v) = cfg.map.get(n) else { return KP_ERR_INVALID_ARG };
        let need = v.len() + 1;
        let have = *size;
        *size = need;
        if dest.is_null() {
            return KP_OK;
        }
        if have < need {
            return KP_ERR_INVALID_ARG;
        }
        write_errstr(dest, have, &v);
        KP_OK
    })
}

/// Registers interceptors: `on_send` runs inside kp_send() before the record
/// is accepted; `on_ack` runs once per delivery report (on the thread that
/// runs delivery callbacks) before the record's own callback. Either may be
/// NULL. `ctx` is passed to both and must outlive the producer.
#[no_mangle]
pub unsafe extern "C" fn kp_config_set_interceptors(
    cfg: *mut kp_config_t,
    on_send: kp_on_send_fn_t,
    on_ack: kp_on_ack_fn_t,
    ctx: *mut c_void,
) -> kp_err_t {
    guard(KP_ERR_INTERNAL, || {
        let Some(cfg) = cfg.as_mut() else { return KP_ERR_INVALID_ARG };
        cfg.interceptors = if on_send.is_none() && on_ack.is_none() {
            None
        } else {
            Some(Interceptors { on_send, on_ack, ctx: ctx as usize })
        };
        KP_OK
    })
}

/// Registers a custom partitioner used for records sent with
/// KP_PARTITION_ANY (NULL restores the configured built-in one). `ctx` must
/// outlive the producer. The function must be thread-safe when several
/// threads call kp_send().
#[no_mangle]
pub unsafe extern "C" fn kp_config_set_partitioner(
    cfg: *mut kp_config_t,
    partitioner: kp_partitioner_fn_t,
    ctx: *mut c_void,
) -> kp_err_t {
    guard(KP_ERR_INTERNAL, || {
        let Some(cfg) = cfg.as_mut() else { return KP_ERR_INVALID_ARG };
        cfg.partitioner = partitioner.map(|f| (f, ctx as usize));
        KP_OK
    })
}

// ---------------------------------------------------------------- producer

fn make_dispatch(icpt: Option<Interceptors>) -> Arc<Dispatch> {
    Arc::new(move |view: &ReportView<'_>, token: &Token| {
        let rp = view as *const ReportView<'_> as *const kp_report_t;
        if let Some(i) = icpt {
            if let Some(on_ack) = i.on_ack {
                // SAFETY: user-supplied function pointer, called as documented.
                unsafe { on_ack(rp, i.ctx as *mut c_void) };
            }
        }
        if let Token::Callback { cb, ctx } = token {
            // SAFETY: `cb` was a non-NULL kp_delivery_cb_t stored by kp_send.
            let f: unsafe extern "C" fn(*const kp_report_t, *mut c_void) =
                unsafe { std::mem::transmute(*cb) };
            unsafe { f(rp, *ctx as *mut c_void) };
        }
    })
}

/// Creates a producer. On success the producer takes ownership of `cfg`
/// (do not destroy it); on failure (NULL return) the caller still owns
/// `cfg` and `errstr` says why (e.g. a missing bootstrap.servers or
/// conflicting settings). Connecting to brokers happens in the background:
/// unreachable brokers show up as delivery errors, not here.
#[no_mangle]
pub unsafe extern "C" fn kp_producer_new(
    cfg: *mut kp_config_t,
    errstr: *mut c_char,
    errstr_size: usize,
) -> *mut kp_producer_t {
    guard(ptr::null_mut(), || {
        let Some(c) = cfg.as_ref() else {
            write_errstr(errstr, errstr_size, "cfg is NULL");
            return ptr::null_mut();
        };
        let pcfg = match ProducerConfig::from_map(&c.map) {
            Ok(p) => p,
            Err(m) => {
                write_errstr(errstr, errstr_size, &m);
                return ptr::null_mut();
            }
        };
        let part_fn = c.partitioner.map(|(f, ctx)| {
            let pf: Arc<crate::engine::PartitionerFn> =
                Arc::new(move |topic: &str, key: Option<&[u8]>, n: i32| {
                    let t = std::ffi::CString::new(topic).unwrap_or_default();
                    let (kp, kl) = match key {
                        Some(k) => (k.as_ptr() as *const c_void, k.len()),
                        None => (ptr::null(), 0),
                    };
                    // SAFETY: user-supplied partitioner, called as documented.
                    unsafe { f(t.as_ptr(), kp, kl, n, ctx as *mut c_void) }
                });
            pf
        });
        match Producer::new(pcfg, make_dispatch(c.interceptors), part_fn) {
            Ok(p) => {
                let icpt = c.interceptors;
                drop(Box::from_raw(cfg));
                Box::into_raw(Box::new(kp_producer_t { producer: p, on_send: icpt }))
            }
            Err(e) => {
                write_errstr(errstr, errstr_size, &e.to_string());
                ptr::null_mut()
            }
        }
    })
}

unsafe fn send_inner(
    p: *mut kp_producer_t,
    rec: *const kp_record_t,
    token: Token,
) -> Result<(), Error> {
    let p = p.as_ref().ok_or_else(|| Error::new(error::INVALID_ARG, "producer is NULL"))?;
    let r = rec.as_ref().ok_or_else(|| Error::new(error::INVALID_ARG, "record is NULL"))?;
    if r.struct_size < RECORD_MIN_SIZE {
        return Err(Error::new(
            error::INVALID_ARG,
            "record.struct_size is not set; initialise records with KP_RECORD_INIT",
        ));
    }
    let topic = if r.topic.is_null() {
        return Err(Error::new(error::INVALID_TOPIC, "record.topic is NULL"));
    } else {
        // Kafka topic names are ASCII: an ASCII check (cheaper than full
        // UTF-8 validation) is enough; anything else is rejected here.
        let t = CStr::from_ptr(r.topic).to_bytes();
        if !t.is_ascii() {
            return Err(Error::new(
                error::INVALID_TOPIC,
                "record.topic contains non-ASCII bytes; Kafka topic names are ASCII",
            ));
        }
        // SAFETY: ASCII is valid UTF-8.
        std::str::from_utf8_unchecked(t)
    };
    if r.header_count > 0 && r.headers.is_null() {
        return Err(Error::new(error::INVALID_ARG, "record.headers is NULL but header_count > 0"));
    }
    if r.header_count == 0 {
        return send_with_headers(p, rec, r, topic, &[], token);
    }
    let hdrs: &[kp_header_t] = std::slice::from_raw_parts(r.headers, r.header_count);
    let header = |h: &kp_header_t| RecordHeader {
        key: bytes(h.key as *const c_void, h.key_len).unwrap_or(&[]),
        value: bytes(h.value, h.value_len),
    };
    if hdrs.len() <= 8 {
        let mut stack = [RecordHeader { key: &[], value: None }; 8];
        for (slot, h) in stack.iter_mut().zip(hdrs) {
            *slot = header(h);
        }
        send_with_headers(p, rec, r, topic, &stack[..hdrs.len()], token)
    } else {
        let heap: Vec<RecordHeader<'_>> = hdrs.iter().map(header).collect();
        send_with_headers(p, rec, r, topic, &heap, token)
    }
}

#[inline(always)]
unsafe fn send_with_headers(
    p: &kp_producer_t,
    rec: *const kp_record_t,
    r: &kp_record_t,
    topic: &str,
    headers: &[RecordHeader<'_>],
    token: Token,
) -> Result<(), Error> {
    let has_free = r.struct_size >= std::mem::size_of::<kp_record_t>() && r.value_free.is_some();
    if let Some(i) = p.on_send {
        if let Some(f) = i.on_send {
            f(rec, i.ctx as *mut c_void);
        }
    }
    let record = Record {
        topic,
        partition: r.partition,
        key: bytes(r.key, r.key_len),
        value: bytes(r.value, r.value_len),
        headers,
        timestamp_ms: r.timestamp_ms,
    };
    p.producer.send(&record, token)?;
    if has_free {
        if let Some(f) = r.value_free {
            f(r.value as *mut c_void, r.value_free_opaque);
        }
    }
    Ok(())
}

/// Sends a record asynchronously. Returns KP_OK when the record was accepted:
/// then `cb` (if not NULL) is called exactly once with its delivery report and
/// `ctx`. On any other return the record was not accepted and no report will
/// come: KP_ERR_INVALID_ARG, KP_ERR_INVALID_TOPIC, KP_ERR_RECORD_TOO_LARGE,
/// KP_ERR_UNKNOWN_PARTITION, KP_ERR_QUEUE_FULL (buffer full past
/// max.block.ms), KP_ERR_CLOSED. May block up to max.block.ms when the
/// buffer is full. Thread-safe. The record's buffers are copied before return.
#[no_mangle]
pub unsafe extern "C" fn kp_send(
    p: *mut kp_producer_t,
    record: *const kp_record_t,
    cb: kp_delivery_cb_t,
    ctx: *mut c_void,
) -> kp_err_t {
    kp_send_with_errstr(p, record, cb, ctx, ptr::null_mut(), 0)
}

/// kp_send() that also writes a message saying why a record was not
/// accepted into `errstr` (may be NULL).
#[no_mangle]
pub unsafe extern "C" fn kp_send_with_errstr(
    p: *mut kp_producer_t,
    record: *const kp_record_t,
    cb: kp_delivery_cb_t,
    ctx: *mut c_void,
    errstr: *mut c_char,
    errstr_size: usize,
) -> kp_err_t {
    guard(KP_ERR_INTERNAL, || {
        let token = match cb {
            Some(f) => Token::Callback { cb: f as usize, ctx: ctx as usize },
            None => Token::None,
        };
        match send_inner(p, record, token) {
            Ok(()) => KP_OK,
            Err(e) => {
                write_errstr(errstr, errstr_size, &e.message);
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
    guard(KP_ERR_INTERNAL, || {
        let slot = Arc::new(SyncSlot::default());
        if let Err(e) = send_inner(p, record, Token::Sync(slot.clone())) {
            write_errstr(errstr, errstr_size, &e.message);
            return e.code;
        }
        let timeout = Duration::from_millis(timeout_ms.max(0) as u64);
        match slot.wait(timeout) {
            None => {
                write_errstr(
                    errstr,
                    errstr_size,
                    &format!("no delivery report within {timeout_ms} ms"),
                );
                KP_ERR_TIMED_OUT
            }
            Some(r) => {
                if let Some(o) = partition_out.as_mut() {
                    *o = r.partition;
                }
                if let Some(o) = offset_out.as_mut() {
                    *o = r.offset;
                }
                match r.error {
                    None => KP_OK,
                    Some(e) => {
                        write_errstr(errstr, errstr_size, &e.message);
                        e.code
                    }
                }
            }
        }
    })
}

/// Serves waiting delivery reports on the calling thread (mode "poll"),
/// waiting up to `timeout_ms` for the first. Returns the number of reports
/// served (callbacks run), or a negative error. In mode "thread" it serves
/// nothing and returns 0. Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn kp_poll(p: *mut kp_producer_t, timeout_ms: i32) -> c_int {
    guard(KP_ERR_INTERNAL, || match p.as_ref() {
        None => KP_ERR_INVALID_ARG,
        Some(p) => p
            .producer
            .poll(Duration::from_millis(timeout_ms.max(0) as u64))
            .min(c_int::MAX as usize) as c_int,
    })
}

/// A file descriptor that becomes readable when delivery reports are
/// waiting (mode "poll"), for event loops; call kp_poll(p, 0) when it is.
/// Owned by the producer: do not close it. Returns -1 when unavailable.
#[no_mangle]
pub unsafe extern "C" fn kp_poll_fd(p: *const kp_producer_t) -> c_int {
    guard(-1, || p.as_ref().map(|p| p.producer.poll_fd()).unwrap_or(-1))
}

/// Sends everything queued at once (ignoring linger.ms) and waits up to
/// `timeout_ms` until every accepted record has had its report (in mode
/// "poll" the reports are served on this thread meanwhile). Returns KP_OK
/// or KP_ERR_TIMED_OUT. Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn kp_flush(p: *mut kp_producer_t, timeout_ms: i32) -> kp_err_t {
    guard(KP_ERR_INTERNAL, || match p.as_ref() {
        None => KP_ERR_INVALID_ARG,
        Some(p) => match p.producer.flush(Duration::from_millis(timeout_ms.max(0) as u64)) {
            Ok(()) => KP_OK,
            Err(e) => e.code,
        },
    })
}

/// The error that put the producer in its fatal state (e.g. fenced, or
/// not authorized to be idempotent): returns its code and writes its message
/// to `errstr`, or returns KP_OK when the producer is healthy. Once fatal,
/// every queued record has been reported with that error and kp_send()
/// fails fast with KP_ERR_FATAL; destroy the producer and create a new one.
#[no_mangle]
pub unsafe extern "C" fn kp_producer_fatal_error(
    p: *const kp_producer_t,
    errstr: *mut c_char,
    errstr_size: usize,
) -> kp_err_t {
    guard(KP_ERR_INTERNAL, || match p.as_ref() {
        None => KP_ERR_INVALID_ARG,
        Some(p) => match p.producer.fatal_error() {
            None => KP_OK,
            Some(e) => {
                write_errstr(errstr, errstr_size, &e.message);
                e.code
            }
        },
    })
}

/// kp_purge() flag: drop records not yet sent.
pub const KP_PURGE_QUEUED: i32 = 1;
/// kp_purge() flag: give up on records whose request is in flight (they may
/// still land in the log: their report says KP_POSSIBLY_PERSISTED).
pub const KP_PURGE_IN_FLIGHT: i32 = 2;

/// Purges records (`flags`: KP_PURGE_QUEUED and/or KP_PURGE_IN_FLIGHT).
/// Each purged record gets exactly one report, with KP_ERR_PURGED_QUEUED or
/// KP_ERR_PURGED_IN_FLIGHT; serve them with kp_poll() in poll mode. With
/// idempotence the producer bumps its epoch afterwards; inside a transaction
/// the transaction must then be aborted. Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn kp_purge(p: *mut kp_producer_t, flags: i32) -> kp_err_t {
    guard(KP_ERR_INTERNAL, || match p.as_ref() {
        None => KP_ERR_INVALID_ARG,
        Some(_) if flags & !(KP_PURGE_QUEUED | KP_PURGE_IN_FLIGHT) != 0 => KP_ERR_INVALID_ARG,
        Some(p) => {
            p.producer.purge(flags & KP_PURGE_QUEUED != 0, flags & KP_PURGE_IN_FLIGHT != 0);
            KP_OK
        }
    })
}

/// Number of records accepted but not yet reported. Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn kp_producer_outstanding(p: *const kp_producer_t) -> usize {
    guard(0, || p.as_ref().map(|p| p.producer.outstanding()).unwrap_or(0))
}

/// Bytes of kp_metrics_t filled for a caller's struct_size: whole fields
/// only, never past struct_size; None when not even the first field fits.
fn metrics_fill_len(struct_size: usize) -> Option<usize> {
    const FIRST: usize = std::mem::offset_of!(kp_metrics_t, records_delivered);
    const FIELD: usize = std::mem::size_of::<u64>();
    if struct_size < FIRST + FIELD {
        return None;
    }
    Some(FIRST + (struct_size.min(std::mem::size_of::<kp_metrics_t>()) - FIRST) / FIELD * FIELD)
}

// Every field after struct_size is a u64 (metrics_fill_len relies on it).
const _: () = assert!((std::mem::size_of::<kp_metrics_t>()
    - std::mem::offset_of!(kp_metrics_t, records_delivered))
.is_multiple_of(8));

fn metrics_of(p: &Producer) -> kp_metrics_t {
    use crate::engine::metrics::Metrics;
    let m = p.metrics();
    let get = Metrics::get;
    let (delivered, failed) = p.records_reported();
    kp_metrics_t {
        struct_size: std::mem::size_of::<kp_metrics_t>(),
        records_delivered: delivered,
        records_failed: failed,
        records_outstanding: p.outstanding() as u64,
        buffer_bytes_used: p.buffered_bytes() as u64,
        buffer_bytes_limit: p.config().buffer_memory as u64,
        produce_requests: get(&m.produce_requests),
        batches_sent: get(&m.batches_sent),
        batch_retries: get(&m.batch_retries),
        batch_bytes: get(&m.batch_bytes),
        batch_bytes_uncompressed: get(&m.batch_bytes_uncompressed),
        request_latency_us_sum: get(&m.request_latency_us_sum),
        request_latency_count: get(&m.request_latency_count),
        request_latency_us_max: get(&m.request_latency_us_max),
        throttled_responses: get(&m.throttled_responses),
        throttle_time_ms_sum: get(&m.throttle_time_ms_sum),
        throttle_time_ms_max: get(&m.throttle_time_ms_max),
        connections_opened: get(&m.connections_opened),
        connections_closed: get(&m.connections_closed),
    }
}

/// Fills `*out` with the producer's metrics (see kp_metrics_t). Set
/// `out->struct_size` first (KP_METRICS_INIT does): kp writes only the
/// fields that lie within it, then sets it to the number of bytes written.
/// Returns KP_OK, or KP_ERR_INVALID_ARG when `p` or `out` is NULL or
/// struct_size does not cover the first counter. Thread-safe and cheap: it
/// reads atomic counters (no lock, no I/O), each on its own, so counters
/// updated meanwhile may be one request or batch apart. May be called from
/// a delivery callback and after kp_producer_close(), until
/// kp_producer_destroy(). The caller owns `*out`.
#[no_mangle]
pub unsafe extern "C" fn kp_producer_metrics(
    p: *const kp_producer_t,
    out: *mut kp_metrics_t,
) -> kp_err_t {
    guard(KP_ERR_INTERNAL, || {
        let Some(p) = p.as_ref() else { return KP_ERR_INVALID_ARG };
        if out.is_null() {
            return KP_ERR_INVALID_ARG;
        }
        // Only struct_size is known to be there: no reference to the whole
        // struct, which may be an older, shorter one.
        let Some(len) = metrics_fill_len(ptr::addr_of!((*out).struct_size).read()) else {
            return KP_ERR_INVALID_ARG;
        };
        let mut m = metrics_of(&p.producer);
        m.struct_size = len;
        ptr::copy_nonoverlapping(&m as *const kp_metrics_t as *const u8, out as *mut u8, len);
        KP_OK
    })
}

/// Closes the producer: no new records are accepted; queued records are sent
/// and the call waits up to `timeout_ms` for their reports. Records still
/// unreported at the timeout get a KP_ERR_CLOSED report. When it returns,
/// every accepted record has had exactly one report. Returns KP_OK, or
/// KP_ERR_TIMED_OUT when it had to fail records. Idempotent. Must not be
/// called from a delivery callback (KP_ERR_STATE). The handle stays valid
/// until kp_producer_destroy().
#[no_mangle]
pub unsafe extern "C" fn kp_producer_close(p: *mut kp_producer_t, timeout_ms: i32) -> kp_err_t {
    guard(KP_ERR_INTERNAL, || match p.as_ref() {
        None => KP_ERR_INVALID_ARG,
        Some(p) => match p.producer.close(Duration::from_millis(timeout_ms.max(0) as u64)) {
            Ok(()) => KP_OK,
            Err(e) => e.code,
        },
    })
}

/// Frees the producer. If it was not closed, it is closed with a zero
/// timeout first: queued records get a KP_ERR_CLOSED report (call
/// kp_producer_close() with a timeout first to deliver them). NULL is a
/// no-op. No other call may use the handle concurrently or afterwards.
#[no_mangle]
pub unsafe extern "C" fn kp_producer_destroy(p: *mut kp_producer_t) {
    guard((), || {
        if !p.is_null() {
            let b = Box::from_raw(p);
            let _ = b.producer.close(Duration::ZERO);
            drop(b);
        }
    })
}

/// Looks up a topic's partitions and their leaders, waiting up to
/// `timeout_ms` for metadata. On KP_OK `*out` receives a topic info to free
/// with kp_topic_info_destroy(); on error `errstr` says why.
#[no_mangle]
pub unsafe extern "C" fn kp_partitions_for(
    p: *mut kp_producer_t,
    topic: *const c_char,
    timeout_ms: i32,
    out: *mut *mut kp_topic_info_t,
    errstr: *mut c_char,
    errstr_size: usize,
) -> kp_err_t {
    guard(KP_ERR_INTERNAL, || {
        let (Some(p), Some(out)) = (p.as_ref(), out.as_mut()) else { return KP_ERR_INVALID_ARG };
        *out = ptr::null_mut();
        let Some(t) = cstr(topic) else {
            write_errstr(errstr, errstr_size, "topic is NULL or not UTF-8");
            return KP_ERR_INVALID_TOPIC;
        };
        match p.producer.partitions_for(t, Duration::from_millis(timeout_ms.max(0) as u64)) {
            Ok(v) => {
                *out = Box::into_raw(Box::new(kp_topic_info_t { partitions: v }));
                KP_OK
            }
            Err(e) => {
                write_errstr(errstr, errstr_size, &e.message);
                e.code
            }
        }
    })
}

/// Number of partitions (0 for NULL).
#[no_mangle]
pub unsafe extern "C" fn kp_topic_info_partition_count(info: *const kp_topic_info_t) -> i32 {
    guard(0, || info.as_ref().map(|i| i.partitions.len() as i32).unwrap_or(0))
}

/// Leader broker id of a partition; -1 when unknown, out of range or NULL.
#[no_mangle]
pub unsafe extern "C" fn kp_topic_info_leader(info: *const kp_topic_info_t, partition: i32) -> i32 {
    guard(-1, || {
        info.as_ref()
            .and_then(|i| i.partitions.iter().find(|p| p.0 == partition))
            .map(|p| p.1)
            .unwrap_or(-1)
    })
}

/// Frees a topic info. NULL is a no-op.
#[no_mangle]
pub unsafe extern "C" fn kp_topic_info_destroy(info: *mut kp_topic_info_t) {
    guard((), || {
        if !info.is_null() {
            drop(Box::from_raw(info));
        }
    })
}

// ---------------------------------------------------------------- transactions

fn txn_result(r: Result<(), crate::engine::txn::TxnError>) -> *mut kp_error_t {
    match r {
        Ok(()) => ptr::null_mut(),
        Err(e) => Box::into_raw(Box::new(kp_error_t {
            code: e.error.code,
            message: std::ffi::CString::new(e.error.message.replace('\0', " ")).unwrap_or_default(),
            retriable: e.retriable,
            fatal: e.fatal,
            requires_abort: e.requires_abort,
        })),
    }
}

fn error_obj(code: kp_err_t, msg: &str) -> *mut kp_error_t {
    Box::into_raw(Box::new(kp_error_t {
        code,
        message: std::ffi::CString::new(msg).unwrap_or_default(),
        retriable: false,
        fatal: false,
        requires_abort: false,
    }))
}

fn with_producer(
    p: *mut kp_producer_t,
    f: impl FnOnce(&Producer) -> *mut kp_error_t,
) -> *mut kp_error_t {
    catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: the caller passes a producer from kp_producer_new or NULL.
        match unsafe { p.as_ref() } {
            None => error_obj(KP_ERR_INVALID_ARG, "producer is NULL"),
            Some(p) => f(&p.producer),
        }
    }))
    .unwrap_or_else(|_| error_obj(KP_ERR_INTERNAL, "internal error (panic caught)"))
}

fn ms(timeout_ms: i32) -> Duration {
    Duration::from_millis(timeout_ms.max(0) as u64)
}

/// Initialises transactions (needs `transactional.id`): finds the
/// transaction coordinator, gets the producer id and epoch, fences older
/// producers with the same transactional.id and aborts their open
/// transaction. Call once, before the first kp_begin_transaction(). Returns
/// NULL on success or an error (retriable ones, e.g. a timeout, may be
/// retried by calling again). Blocks up to `timeout_ms`.
#[no_mangle]
pub unsafe extern "C" fn kp_init_transactions(
    p: *mut kp_producer_t,
    timeout_ms: i32,
) -> *mut kp_error_t {
    with_producer(p, |p| txn_result(p.init_transactions(ms(timeout_ms))))
}

/// Starts a transaction (local; no network). Records sent until the commit or
/// abort belong to it.
#[no_mangle]
pub unsafe extern "C" fn kp_begin_transaction(p: *mut kp_producer_t) -> *mut kp_error_t {
    with_producer(p, |p| txn_result(p.begin_transaction()))
}

/// Flushes the transaction's records and commits it, waiting up to
/// `timeout_ms`. On error: kp_error_txn_requires_abort() → call
/// kp_abort_transaction(); kp_error_is_retriable() → call commit again;
/// kp_error_is_fatal() → destroy the producer.
#[no_mangle]
pub unsafe extern "C" fn kp_commit_transaction(
    p: *mut kp_producer_t,
    timeout_ms: i32,
) -> *mut kp_error_t {
    with_producer(p, |p| txn_result(p.commit_transaction(ms(timeout_ms))))
}

/// Aborts the transaction: unsent records are reported with
/// KP_ERR_PURGED_QUEUED, in-flight ones are waited for (up to `timeout_ms`),
/// then the coordinator aborts it (read_committed consumers never see it).
#[no_mangle]
pub unsafe extern "C" fn kp_abort_transaction(
    p: *mut kp_producer_t,
    timeout_ms: i32,
) -> *mut kp_error_t {
    with_producer(p, |p| txn_result(p.abort_transaction(ms(timeout_ms))))
}

/// Adds consumer offsets to the transaction (consume-transform-produce): the
/// group's committed offsets change only if the transaction commits.
#[no_mangle]
pub unsafe extern "C" fn kp_send_offsets_to_transaction(
    p: *mut kp_producer_t,
    offsets: *const kp_offsets_t,
    group_id: *const c_char,
    timeout_ms: i32,
) -> *mut kp_error_t {
    with_producer(p, |p| {
        // SAFETY: NULL-checked below; valid objects from kp_offsets_new.
        let (Some(o), Some(g)) = (unsafe { offsets.as_ref() }, unsafe { cstr(group_id) }) else {
            return error_obj(KP_ERR_INVALID_ARG, "offsets and group_id must be non-NULL");
        };
        txn_result(p.send_offsets_to_transaction(&o.entries, g, ms(timeout_ms)))
    })
}

/// The transaction protocol kp_init_transactions() negotiated: 2 for
/// Kafka 4's transactions v2 (KIP-890), 1 for the classic protocol, 0 when
/// transactions are not initialised (or p is NULL).
#[no_mangle]
pub unsafe extern "C" fn kp_transaction_protocol_version(p: *const kp_producer_t) -> i32 {
    guard(0, || p.as_ref().map(|p| p.producer.transaction_protocol_version()).unwrap_or(0))
}

/// Creates an empty offsets list. Free with kp_offsets_destroy().
#[no_mangle]
pub extern "C" fn kp_offsets_new() -> *mut kp_offsets_t {
    guard(ptr::null_mut(), || Box::into_raw(Box::new(kp_offsets_t { entries: Vec::new() })))
}

/// Adds (topic, partition, offset); `topic` is copied.
#[no_mangle]
pub unsafe extern "C" fn kp_offsets_add(
    o: *mut kp_offsets_t,
    topic: *const c_char,
    partition: i32,
    offset: i64,
) -> kp_err_t {
    guard(KP_ERR_INTERNAL, || {
        let (Some(o), Some(t)) = (o.as_mut(), cstr(topic)) else { return KP_ERR_INVALID_ARG };
        if partition < 0 || offset < 0 {
            return KP_ERR_INVALID_ARG;
        }
        o.entries.push((t.to_string(), partition, offset));
        KP_OK
    })
}

/// Frees an offsets list. NULL is a no-op.
#[no_mangle]
pub unsafe extern "C" fn kp_offsets_destroy(o: *mut kp_offsets_t) {
    guard((), || {
        if !o.is_null() {
            drop(Box::from_raw(o));
        }
    })
}

/// The error's code (KP_ERR_INVALID_ARG for NULL).
#[no_mangle]
pub unsafe extern "C" fn kp_error_code(e: *const kp_error_t) -> kp_err_t {
    guard(KP_ERR_INTERNAL, || e.as_ref().map(|e| e.code).unwrap_or(KP_ERR_INVALID_ARG))
}

/// The error's message (valid until kp_error_destroy(); "" for NULL).
#[no_mangle]
pub unsafe extern "C" fn kp_error_message(e: *const kp_error_t) -> *const c_char {
    guard(ptr::null(), || e.as_ref().map(|e| e.message.as_ptr()).unwrap_or(c"".as_ptr()))
}

/// Whether calling the same function again may succeed.
#[no_mangle]
pub unsafe extern "C" fn kp_error_is_retriable(e: *const kp_error_t) -> bool {
    guard(false, || e.as_ref().is_some_and(|e| e.retriable))
}

/// Whether the producer can no longer be used (e.g. fenced).
#[no_mangle]
pub unsafe extern "C" fn kp_error_is_fatal(e: *const kp_error_t) -> bool {
    guard(false, || e.as_ref().is_some_and(|e| e.fatal))
}

/// Whether the transaction must be aborted (kp_abort_transaction) before
/// the producer can go on.
#[no_mangle]
pub unsafe extern "C" fn kp_error_txn_requires_abort(e: *const kp_error_t) -> bool {
    guard(false, || e.as_ref().is_some_and(|e| e.requires_abort))
}

/// Frees an error. NULL is a no-op.
#[no_mangle]
pub unsafe extern "C" fn kp_error_destroy(e: *mut kp_error_t) {
    guard((), || {
        if !e.is_null() {
            drop(Box::from_raw(e));
        }
    })
}

// ---------------------------------------------------------------- reports

unsafe fn view<'a>(r: *const kp_report_t) -> Option<&'a ReportView<'a>> {
    (r as *const ReportView<'a>).as_ref()
}

/// Topic of the record (NUL-terminated; valid during the callback).
#[no_mangle]
pub unsafe extern "C" fn kp_report_topic(r: *const kp_report_t) -> *const c_char {
    guard(ptr::null(), || view(r).map(|v| v.topic.cname.as_ptr()).unwrap_or(ptr::null()))
}

/// Partition the record went to (-1 if it never got one).
#[no_mangle]
pub unsafe extern "C" fn kp_report_partition(r: *const kp_report_t) -> i32 {
    guard(-1, || view(r).map(|v| v.partition).unwrap_or(-1))
}

/// Offset of the record in its partition (-1 when unknown: errors, acks=0).
#[no_mangle]
pub unsafe extern "C" fn kp_report_offset(r: *const kp_report_t) -> i64 {
    guard(-1, || view(r).map(|v| v.offset).unwrap_or(-1))
}

/// Timestamp of the record: its CreateTime, or the broker's LogAppendTime
/// when the topic uses it.
#[no_mangle]
pub unsafe extern "C" fn kp_report_timestamp(r: *const kp_report_t) -> i64 {
    guard(-1, || view(r).map(|v| v.timestamp).unwrap_or(-1))
}

/// KP_OK when the record was delivered, else the error code.
#[no_mangle]
pub unsafe extern "C" fn kp_report_error(r: *const kp_report_t) -> kp_err_t {
    guard(KP_ERR_INTERNAL, || view(r).map(|v| v.error).unwrap_or(KP_ERR_INVALID_ARG))
}

/// A message saying what happened (NULL on success; valid during the callback).
#[no_mangle]
pub unsafe extern "C" fn kp_report_error_message(r: *const kp_report_t) -> *const c_char {
    guard(ptr::null(), || {
        view(r).and_then(|v| v.message).map(|m| m.as_ptr()).unwrap_or(ptr::null())
    })
}

/// Whether sending the same record again may succeed.
#[no_mangle]
pub unsafe extern "C" fn kp_report_is_retriable(r: *const kp_report_t) -> bool {
    guard(false, || view(r).map(|v| v.retriable).unwrap_or(false))
}

/// KP_PERSISTED, KP_POSSIBLY_PERSISTED or KP_NOT_PERSISTED.
#[no_mangle]
pub unsafe extern "C" fn kp_report_persistence(r: *const kp_report_t) -> kp_persistence_t {
    guard(KP_NOT_PERSISTED, || view(r).map(|v| v.persistence as i32).unwrap_or(KP_NOT_PERSISTED))
}

// ---------------------------------------------------------------- errors, version

/// Symbolic name of an error code, e.g. "NOT_ENOUGH_REPLICAS". Static string.
#[no_mangle]
pub extern "C" fn kp_err_name(err: kp_err_t) -> *const c_char {
    guard(ptr::null(), || static_cstr(error::name(err)))
}

/// Human description of an error code. Static string.
#[no_mangle]
pub extern "C" fn kp_err_str(err: kp_err_t) -> *const c_char {
    guard(ptr::null(), || static_cstr(error::description(err)))
}

/// Whether an operation that failed with this code may succeed if retried.
#[no_mangle]
pub extern "C" fn kp_err_is_retriable(err: kp_err_t) -> bool {
    guard(false, || error::is_retriable(err))
}

fn static_cstr(s: &'static str) -> *const c_char {
    use once_cell::sync::Lazy;
    use std::collections::HashMap;
    static CACHE: Lazy<parking_lot::Mutex<HashMap<&'static str, &'static CStr>>> =
        Lazy::new(Default::default);
    let mut c = CACHE.lock();
    c.entry(s)
        .or_insert_with(|| {
            Box::leak(std::ffi::CString::new(s).unwrap_or_default().into_boxed_c_str())
        })
        .as_ptr()
}

/// The library's version as (major << 16) | (minor << 8) | patch; compare
/// with KP_VERSION from the header to detect a mismatch.
#[no_mangle]
pub extern "C" fn kp_version() -> u32 {
    crate::VERSION_NUMBER
}

/// The library's version as a string, e.g. "0.1.0". Static string.
#[no_mangle]
pub extern "C" fn kp_version_str() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr() as *const c_char
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{Persistence, PARTITION_ANY};

    #[test]
    fn abi_constants_match_the_engine() {
        let pairs = [
            (KP_OK, error::OK),
            (KP_ERR_INVALID_ARG, error::INVALID_ARG),
            (KP_ERR_QUEUE_FULL, error::QUEUE_FULL),
            (KP_ERR_RECORD_TOO_LARGE, error::RECORD_TOO_LARGE),
            (KP_ERR_INVALID_TOPIC, error::INVALID_TOPIC),
            (KP_ERR_UNKNOWN_PARTITION, error::UNKNOWN_PARTITION),
            (KP_ERR_TIMED_OUT, error::TIMED_OUT),
            (KP_ERR_TRANSPORT, error::TRANSPORT),
            (KP_ERR_ALL_BROKERS_DOWN, error::ALL_BROKERS_DOWN),
            (KP_ERR_PURGED_QUEUED, error::PURGED_QUEUED),
            (KP_ERR_PURGED_IN_FLIGHT, error::PURGED_IN_FLIGHT),
            (KP_ERR_CLOSED, error::CLOSED),
            (KP_ERR_FATAL, error::FATAL),
            (KP_ERR_STATE, error::STATE),
            (KP_ERR_INTERNAL, error::INTERNAL),
            (KP_ERR_UNSUPPORTED_FEATURE, error::UNSUPPORTED_FEATURE),
            (KP_ERR_BAD_RESPONSE, error::BAD_RESPONSE),
            (KP_ERR_PARTITIONER_FAILED, error::PARTITIONER_FAILED),
            (KP_ERR_MESSAGE_TOO_LARGE, error::MESSAGE_TOO_LARGE),
            (KP_ERR_NOT_ENOUGH_REPLICAS, error::NOT_ENOUGH_REPLICAS),
            (KP_ERR_UNKNOWN_TOPIC_OR_PARTITION, error::UNKNOWN_TOPIC_OR_PARTITION),
        ];
        for (abi, engine) in pairs {
            assert_eq!(abi, engine);
        }
        assert_eq!(KP_PARTITION_ANY, PARTITION_ANY);
        assert_eq!(KP_NOT_PERSISTED, Persistence::NotPersisted as i32);
        assert_eq!(KP_POSSIBLY_PERSISTED, Persistence::PossiblyPersisted as i32);
        assert_eq!(KP_PERSISTED, Persistence::Persisted as i32);
        assert_eq!(kp_version(), crate::VERSION_NUMBER);
        assert_eq!(crate::VERSION_NUMBER, 0x000100);
    }

    #[test]
    fn null_arguments_are_errors_not_crashes() {
        unsafe {
            assert_eq!(
                kp_config_set(ptr::null_mut(), ptr::null(), ptr::null(), ptr::null_mut(), 0),
                KP_CONFIG_INVALID
            );
            assert!(kp_producer_new(ptr::null_mut(), ptr::null_mut(), 0).is_null());
            assert_eq!(
                kp_send(ptr::null_mut(), ptr::null(), None, ptr::null_mut()),
                KP_ERR_INVALID_ARG
            );
            assert_eq!(kp_flush(ptr::null_mut(), 0), KP_ERR_INVALID_ARG);
            assert_eq!(kp_poll(ptr::null_mut(), 0), KP_ERR_INVALID_ARG);
            assert_eq!(kp_producer_close(ptr::null_mut(), 0), KP_ERR_INVALID_ARG);
            kp_producer_destroy(ptr::null_mut());
            kp_config_destroy(ptr::null_mut());
            kp_topic_info_destroy(ptr::null_mut());
            assert_eq!(kp_report_error(ptr::null()), KP_ERR_INVALID_ARG);
            assert!(kp_report_topic(ptr::null()).is_null());
            assert_eq!(kp_topic_info_partition_count(ptr::null()), 0);
            let mut size = 0usize;
            assert_eq!(
                kp_config_get(ptr::null(), ptr::null(), ptr::null_mut(), &mut size),
                KP_ERR_INVALID_ARG
            );
            let cfg = kp_config_new();
            let mut err = [0 as c_char; 128];
            assert_eq!(
                kp_config_set(cfg, ptr::null(), ptr::null(), err.as_mut_ptr(), err.len()),
                KP_CONFIG_INVALID
            );
            // errstr of size 1 gets just the terminator; size 0 / NULL is fine.
            let n = c"nope";
            let v = c"1";
            assert_eq!(
                kp_config_set(cfg, n.as_ptr(), v.as_ptr(), err.as_mut_ptr(), 1),
                KP_CONFIG_UNKNOWN
            );
            assert_eq!(err[0], 0);
            assert_eq!(
                kp_config_set(cfg, n.as_ptr(), v.as_ptr(), ptr::null_mut(), 0),
                KP_CONFIG_UNKNOWN
            );
            // A config without bootstrap.servers is refused and stays owned by the caller.
            assert!(kp_producer_new(cfg, err.as_mut_ptr(), err.len()).is_null());
            assert!(CStr::from_ptr(err.as_ptr()).to_str().unwrap().contains("bootstrap.servers"));
            kp_config_destroy(cfg);
        }
    }

    #[test]
    fn config_get_reports_defaults_and_sizes() {
        unsafe {
            let cfg = kp_config_new();
            let name = c"linger.ms";
            let mut size = 0usize;
            assert_eq!(kp_config_get(cfg, name.as_ptr(), ptr::null_mut(), &mut size), KP_OK);
            assert_eq!(size, 2);
            let mut buf = [0 as c_char; 1];
            let mut small = buf.len();
            assert_eq!(
                kp_config_get(cfg, name.as_ptr(), buf.as_mut_ptr(), &mut small),
                KP_ERR_INVALID_ARG
            );
            let mut buf = [0 as c_char; 8];
            let mut size = buf.len();
            assert_eq!(kp_config_get(cfg, name.as_ptr(), buf.as_mut_ptr(), &mut size), KP_OK);
            assert_eq!(CStr::from_ptr(buf.as_ptr()).to_str().unwrap(), "5");
            kp_config_destroy(cfg);
        }
    }

    #[test]
    fn metrics_fill_only_whole_fields_within_struct_size() {
        use std::mem::{offset_of, size_of};
        let word = |field: usize| field / 8;
        unsafe {
            let mut m: kp_metrics_t = std::mem::zeroed();
            m.struct_size = size_of::<kp_metrics_t>();
            assert_eq!(kp_producer_metrics(ptr::null(), &mut m), KP_ERR_INVALID_ARG);
            let cfg = kp_config_new();
            for (k, v) in [(c"bootstrap.servers", c"127.0.0.1:1"), (c"buffer.memory", c"1048576")] {
                assert_eq!(
                    kp_config_set(cfg, k.as_ptr(), v.as_ptr(), ptr::null_mut(), 0),
                    KP_CONFIG_OK
                );
            }
            let p = kp_producer_new(cfg, ptr::null_mut(), 0);
            assert!(!p.is_null());
            assert_eq!(kp_producer_metrics(p, ptr::null_mut()), KP_ERR_INVALID_ARG);
            // struct_size not set, or too small for the first counter.
            for size in [0, 1, offset_of!(kp_metrics_t, records_delivered) + 7] {
                m.struct_size = size;
                assert_eq!(
                    kp_producer_metrics(p, &mut m),
                    KP_ERR_INVALID_ARG,
                    "struct_size {size}"
                );
            }
            m.struct_size = size_of::<kp_metrics_t>();
            assert_eq!(kp_producer_metrics(p, &mut m), KP_OK);
            assert_eq!(m.struct_size, size_of::<kp_metrics_t>());
            assert_eq!(m.buffer_bytes_limit, 1 << 20);
            assert_eq!(
                (m.records_outstanding, m.buffer_bytes_used, m.produce_requests, m.records_failed),
                (0, 0, 0, 0)
            );

            // A record waiting for metadata (no broker) is outstanding and holds buffer.
            let mut rec: kp_record_t = std::mem::zeroed();
            rec.struct_size = size_of::<kp_record_t>();
            rec.topic = c"t".as_ptr();
            rec.partition = KP_PARTITION_ANY;
            assert_eq!(kp_send(p, &rec, None, ptr::null_mut()), KP_OK);

            // An older, shorter struct (3 counters and 3 stray bytes): only
            // whole fields inside it are written.
            let mut buf = [u64::MAX; 64];
            let short = offset_of!(kp_metrics_t, records_outstanding) + 8;
            buf[0] = (short + 3) as u64;
            assert_eq!(kp_producer_metrics(p, buf.as_mut_ptr() as *mut kp_metrics_t), KP_OK);
            assert_eq!(buf[0], short as u64, "struct_size says how much was filled");
            assert_eq!(buf[word(offset_of!(kp_metrics_t, records_delivered))], 0);
            assert_eq!(buf[word(offset_of!(kp_metrics_t, records_outstanding))], 1);
            assert!(buf[word(short)..].iter().all(|w| *w == u64::MAX), "wrote past struct_size");

            // A newer, longer struct: kp fills what it knows, leaves the rest.
            let mut buf = [u64::MAX; 64];
            buf[0] = (64 * 8) as u64;
            assert_eq!(kp_producer_metrics(p, buf.as_mut_ptr() as *mut kp_metrics_t), KP_OK);
            assert_eq!(buf[0], size_of::<kp_metrics_t>() as u64);
            assert!(buf[word(offset_of!(kp_metrics_t, buffer_bytes_used))] > 0);
            assert!(buf[word(size_of::<kp_metrics_t>())..].iter().all(|w| *w == u64::MAX));

            // Closing reports the record as failed; the handle still answers.
            kp_producer_close(p, 0);
            assert_eq!(kp_producer_metrics(p, &mut m), KP_OK);
            assert_eq!(
                (m.records_delivered, m.records_failed, m.records_outstanding, m.buffer_bytes_used),
                (0, 1, 0, 0)
            );
            kp_producer_destroy(p);
        }
    }

    #[test]
    fn metrics_init_in_the_header_lists_every_field() {
        let h =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/include/kp.h")).unwrap();
        let init =
            h.lines().find(|l| l.starts_with("#define KP_METRICS_INIT")).expect("KP_METRICS_INIT");
        let counters = (std::mem::size_of::<kp_metrics_t>()
            - std::mem::offset_of!(kp_metrics_t, records_delivered))
            / 8;
        assert_eq!(init.matches(',').count(), counters, "{init}");
    }

    #[test]
    fn error_names() {
        unsafe {
            assert_eq!(
                CStr::from_ptr(kp_err_name(KP_ERR_QUEUE_FULL)).to_str().unwrap(),
                "QUEUE_FULL"
            );
            assert_eq!(CStr::from_ptr(kp_err_name(19)).to_str().unwrap(), "NOT_ENOUGH_REPLICAS");
            assert!(kp_err_is_retriable(19));
            assert!(!kp_err_is_retriable(KP_ERR_RECORD_TOO_LARGE));
            assert_eq!(
                CStr::from_ptr(kp_version_str()).to_str().unwrap(),
                env!("CARGO_PKG_VERSION")
            );
        }
    }
}
