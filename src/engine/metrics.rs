//! Producer metrics: cumulative counters, updated per produce request, per
//! batch and per connection by the I/O side, never per record on the send
//! path (kp_send adds no atomic operation for them). Records delivered and
//! failed are counted per outcome by the report queue (the one place every
//! outcome passes); buffer use comes from the memory pool. kp_producer_metrics()
//! reads them all.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Counters since the producer was created. Each is read and written on its
/// own (Relaxed): a reader sees every counter at some recent value, not all
/// of them at one instant.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Produce requests handed to a broker connection (acks=0 included).
    pub produce_requests: AtomicU64,
    /// Record batches sent, each counted once, when it is sealed for its
    /// first send (resends count in `batch_retries`).
    pub batches_sent: AtomicU64,
    /// Batches queued again for another attempt after a retriable error.
    pub batch_retries: AtomicU64,
    /// Bytes of those batches as sent (compressed, v2 header included).
    pub batch_bytes: AtomicU64,
    /// Bytes of the same batches before compression.
    pub batch_bytes_uncompressed: AtomicU64,
    /// Produce requests answered (acks 1/all): latency sum, count and max.
    pub request_latency_us_sum: AtomicU64,
    pub request_latency_count: AtomicU64,
    pub request_latency_us_max: AtomicU64,
    /// Produce responses with throttle_time_ms > 0, their sum and maximum.
    pub throttled_responses: AtomicU64,
    pub throttle_time_ms_sum: AtomicU64,
    pub throttle_time_ms_max: AtomicU64,
    /// Broker connections established (TCP + ApiVersions) and ended while
    /// the producer was running.
    pub connections_opened: AtomicU64,
    pub connections_closed: AtomicU64,
}

fn add(c: &AtomicU64, n: u64) {
    c.fetch_add(n, Ordering::Relaxed);
}

impl Metrics {
    pub fn get(c: &AtomicU64) -> u64 {
        c.load(Ordering::Relaxed)
    }

    pub fn request_sent(&self) {
        add(&self.produce_requests, 1);
    }

    /// A batch was sealed (compressed) for its first send.
    pub fn batch_sealed(&self, bytes: usize, uncompressed: usize) {
        add(&self.batches_sent, 1);
        add(&self.batch_bytes, bytes as u64);
        add(&self.batch_bytes_uncompressed, uncompressed as u64);
    }

    pub fn batch_retried(&self) {
        add(&self.batch_retries, 1);
    }

    /// A produce request got its response after `latency`.
    pub fn response(&self, latency: Duration, throttle_time_ms: i32) {
        let us = latency.as_micros().min(u64::MAX as u128) as u64;
        add(&self.request_latency_us_sum, us);
        add(&self.request_latency_count, 1);
        self.request_latency_us_max.fetch_max(us, Ordering::Relaxed);
        if throttle_time_ms > 0 {
            let ms = throttle_time_ms as u64;
            add(&self.throttled_responses, 1);
            add(&self.throttle_time_ms_sum, ms);
            self.throttle_time_ms_max.fetch_max(ms, Ordering::Relaxed);
        }
    }

    pub fn connection_opened(&self) {
        add(&self.connections_opened, 1);
    }

    pub fn connection_closed(&self) {
        add(&self.connections_closed, 1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn responses_sum_count_and_keep_the_maximum() {
        let m = Metrics::default();
        m.response(Duration::from_micros(300), 0);
        m.response(Duration::from_micros(100), 250);
        m.response(Duration::from_micros(200), 40);
        assert_eq!(Metrics::get(&m.request_latency_us_sum), 600);
        assert_eq!(Metrics::get(&m.request_latency_count), 3);
        assert_eq!(Metrics::get(&m.request_latency_us_max), 300);
        assert_eq!(Metrics::get(&m.throttled_responses), 2);
        assert_eq!(Metrics::get(&m.throttle_time_ms_sum), 290);
        assert_eq!(Metrics::get(&m.throttle_time_ms_max), 250);
        m.batch_sealed(40, 100);
        m.batch_sealed(60, 100);
        assert_eq!(
            (
                Metrics::get(&m.batches_sent),
                Metrics::get(&m.batch_bytes),
                Metrics::get(&m.batch_bytes_uncompressed)
            ),
            (2, 100, 200)
        );
    }
}
