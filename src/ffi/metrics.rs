//! `kp_metrics_t`: the producer's counters, read without locks into a
//! struct_size-versioned caller struct.

use std::mem::{offset_of, size_of};

use super::boundary::{guard, handle, struct_size, write_prefix};
use super::errors::{kp_err_t, KP_ERR_INVALID_ARG, KP_OK};
use super::producer::{kp_producer_t, usable};
use crate::engine::metrics::Metrics;
use crate::engine::Producer;

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

/// Bytes of kp_metrics_t filled for a caller's struct_size: whole fields
/// only, never past struct_size; None when not even the first field fits.
fn metrics_fill_len(struct_size: usize) -> Option<usize> {
    const FIRST: usize = offset_of!(kp_metrics_t, records_delivered);
    const FIELD: usize = size_of::<u64>();
    if struct_size < FIRST + FIELD {
        return None;
    }
    Some(FIRST + (struct_size.min(size_of::<kp_metrics_t>()) - FIRST) / FIELD * FIELD)
}

// Every field after struct_size is a u64 (metrics_fill_len relies on it).
const _: () = assert!(
    (size_of::<kp_metrics_t>() - offset_of!(kp_metrics_t, records_delivered)).is_multiple_of(8)
);

fn metrics_of(p: &Producer) -> kp_metrics_t {
    let m = p.metrics();
    let get = Metrics::get;
    let (delivered, failed) = p.records_reported();
    kp_metrics_t {
        struct_size: size_of::<kp_metrics_t>(),
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
///
/// # Safety
/// `p` is NULL or a producer not yet destroyed; `out` is NULL or points to
/// at least `out->struct_size` writable bytes starting with that size_t.
#[no_mangle]
pub unsafe extern "C" fn kp_producer_metrics(
    p: *const kp_producer_t,
    out: *mut kp_metrics_t,
) -> kp_err_t {
    guard(|| {
        let p = match usable(handle!(p)) {
            Ok(p) => p,
            Err(e) => return e.code,
        };
        if out.is_null() {
            return KP_ERR_INVALID_ARG;
        }
        // Only struct_size is known to be there: no reference to the whole
        // struct, which may be an older, shorter one.
        let Some(len) = metrics_fill_len(struct_size!(out)) else {
            return KP_ERR_INVALID_ARG;
        };
        let mut m = metrics_of(&p.producer);
        m.struct_size = len;
        write_prefix!(out, &m, len);
        KP_OK
    })
}
