//! The public producer API: `Producer` (send, flush, poll, purge, close,
//! metadata lookups, metrics and the transactional calls). Everything here
//! runs on the caller's thread; the engine's tasks run on the I/O runtime.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::{Mutex, RwLock};
use tokio::sync::Notify;

use crate::config::{DeliveryMode, ProducerConfig};
use crate::error::{self, Error};
use crate::log::kp_log;
use crate::protocol::record_batch::{RecordHeader, RecordLayout};

use super::accumulator::{Core, MemoryPool, SpareBuffers, RECORD_META_BYTES};
use super::conn::ConnSettings;
use super::partitioner::{PartitionerFn, Placement};
use super::report::{self, Dispatch, ReportView, Token};
use super::{bootstrap_brokers, idempotence, metadata, metrics, sender, txn, Inner, Lifecycle};

/// Partition value meaning "let the partitioner choose".
pub const PARTITION_ANY: i32 = -1;

/// A record as the caller hands it to `send` (borrowed for the call).
pub struct Record<'a> {
    pub topic: &'a str,
    pub partition: i32,
    pub key: Option<&'a [u8]>,
    pub value: Option<&'a [u8]>,
    pub headers: &'a [RecordHeader<'a>],
    /// Milliseconds since the epoch; 0 means now.
    pub timestamp_ms: i64,
}

/// The producer. All methods are thread-safe.
pub struct Producer {
    pub(super) inner: Arc<Inner>,
    runtime: Mutex<Option<tokio::runtime::Runtime>>,
    handle: tokio::runtime::Handle,
    delivery_thread: Mutex<Option<JoinHandle<()>>>,
    delivery_thread_id: Mutex<Option<std::thread::ThreadId>>,
    dispatch: Arc<Dispatch>,
}

/// Wall clock in milliseconds since the epoch (a record's default timestamp).
fn now_ms() -> i64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes into the local timespec it is given.
    unsafe { libc::clock_gettime(libc::CLOCK_REALTIME, &mut ts) };
    ts.tv_sec * 1000 + ts.tv_nsec / 1_000_000
}

/// Gives every producer engine an id that is never reused (see the topic
/// cache in `topics`).
static NEXT_PRODUCER_UID: AtomicU64 = AtomicU64::new(1);

impl Inner {
    fn new(cfg: ProducerConfig, partitioner_fn: Option<Arc<PartitionerFn>>) -> Inner {
        let metrics = Arc::new(metrics::Metrics::default());
        let conn_settings = ConnSettings {
            client_id: cfg.client_id.clone(),
            request_timeout: Duration::from_millis(cfg.request_timeout_ms),
            setup_timeout: Duration::from_millis(cfg.connection_setup_timeout_ms),
            reconnect_backoff: Duration::from_millis(cfg.reconnect_backoff_ms),
            reconnect_backoff_max: Duration::from_millis(cfg.reconnect_backoff_max_ms),
            send_buffer_bytes: cfg.send_buffer_bytes,
            receive_buffer_bytes: cfg.receive_buffer_bytes,
            metrics: metrics.clone(),
            security: cfg.security.for_producer(),
            log: cfg.log.clone(),
        };
        let bootstrap = RwLock::new(bootstrap_brokers(&cfg, &conn_settings));
        let txn = cfg
            .transactional_id
            .clone()
            .map(|id| Arc::new(txn::TxnManager::new(id, cfg.transaction_timeout_ms)));
        let core = Arc::new(Core::new(
            report::ReportQueue::new(cfg.delivery_mode == DeliveryMode::Poll)
                .with_log(cfg.log.clone()),
            MemoryPool::new(cfg.buffer_memory),
            SpareBuffers::new(cfg.batch_size, cfg.buffer_memory),
        ));
        let weak = Arc::downgrade(&core);
        cfg.log.set_waker(move || weak.upgrade().map_or((), |c| c.reports.wake()));
        Inner {
            core,
            placement: Placement {
                strategy: cfg.partitioner,
                ignore_keys: cfg.partitioner_ignore_keys,
                custom: partitioner_fn,
            },
            cfg,
            topics: RwLock::new(HashMap::default()),
            all_partitions: RwLock::new(Vec::new()),
            brokers: RwLock::new(HashMap::new()),
            bootstrap,
            conn_settings,
            lifecycle: Lifecycle::new(),
            sender_wake: Notify::new(),
            metadata: metadata::MetadataState::new(),
            pid: Mutex::new(idempotence::PidPhase::Missing),
            fatal: Mutex::new(None),
            is_fatal: AtomicBool::new(false),
            txn,
            purge_generation: AtomicU64::new(0),
            uid: NEXT_PRODUCER_UID.fetch_add(1, Ordering::Relaxed),
            metrics,
        }
    }

    /// Whether a record may be accepted now (open, not fatal, inside a
    /// transaction when transactional).
    fn check_accepting(&self) -> Result<(), Error> {
        if !self.lifecycle.is_open() {
            return Err(Error::new(error::CLOSED, "the producer is closed or closing"));
        }
        if self.is_fatal.load(Ordering::Acquire) {
            return Err(self.fatal_error_for_send());
        }
        if let Some(t) = &self.txn {
            t.in_transaction()?;
        }
        Ok(())
    }

    /// Validates a record and returns what it costs while kp holds it: its
    /// bytes in the batch plus its delivery bookkeeping (buffer.memory
    /// bounds both).
    fn record_footprint(&self, rec: &Record<'_>, layout: &RecordLayout) -> Result<usize, Error> {
        if rec.partition < PARTITION_ANY {
            return Err(Error::new(
                error::INVALID_ARG,
                format!("partition {} is invalid", rec.partition),
            ));
        }
        if rec.timestamp_ms < 0 {
            return Err(Error::new(
                error::INVALID_ARG,
                format!("timestamp {} is negative", rec.timestamp_ms),
            ));
        }
        let size = layout.max_encoded_len();
        let footprint = size + RECORD_META_BYTES;
        // Batch header (61) plus produce request overhead for one partition.
        let request_size = size + 61 + 64 + rec.topic.len();
        if request_size > self.cfg.max_request_size {
            return Err(Error::new(
                error::RECORD_TOO_LARGE,
                format!(
                    "the record is {request_size} bytes when serialized, larger than max.request.size ({})",
                    self.cfg.max_request_size
                ),
            ));
        }
        if footprint > self.cfg.buffer_memory {
            return Err(Error::new(
                error::RECORD_TOO_LARGE,
                format!(
                    "the record is {size} bytes, larger than buffer.memory ({})",
                    self.cfg.buffer_memory
                ),
            ));
        }
        Ok(footprint)
    }
}

impl Producer {
    pub fn new(
        cfg: ProducerConfig,
        dispatch: Arc<Dispatch>,
        partitioner_fn: Option<Arc<PartitionerFn>>,
    ) -> Result<Producer, Error> {
        let log = cfg.log.clone();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("kp-io")
            .on_thread_start(move || log.enter_kp_thread())
            .enable_all()
            .build()
            .map_err(|e| {
                Error::new(error::INTERNAL, format!("cannot start the I/O runtime: {e}"))
            })?;
        let inner = Arc::new(Inner::new(cfg, partitioner_fn));
        // A TLS or SASL failure cannot heal by retrying with the same settings:
        // fail everything at once with the cause (not at delivery.timeout.ms).
        let weak = Arc::downgrade(&inner);
        inner.conn_settings.security.on_auth_failure(move |e| {
            if let Some(inner) = weak.upgrade() {
                kp_log!(inner.cfg.log, ERR, SECURITY, "authentication failed: {}", e.message);
                inner.enter_fatal(e);
            }
        });
        runtime.spawn(metadata::metadata_loop(inner.clone()));
        runtime.spawn(sender::sender_loop(inner.clone()));
        let p = Producer {
            inner,
            handle: runtime.handle().clone(),
            runtime: Mutex::new(Some(runtime)),
            delivery_thread: Mutex::new(None),
            delivery_thread_id: Mutex::new(None),
            dispatch,
        };
        if p.inner.cfg.delivery_mode == DeliveryMode::Thread {
            let inner = p.inner.clone();
            let d = p.dispatch.clone();
            let h = std::thread::Builder::new()
                .name("kp-delivery".into())
                .spawn(move || {
                    inner.cfg.log.enter_kp_thread();
                    inner.core.reports.run_delivery_thread(&*d)
                })
                .map_err(|e| {
                    Error::new(error::INTERNAL, format!("cannot start the delivery thread: {e}"))
                })?;
            *p.delivery_thread_id.lock() = Some(h.thread().id());
            *p.delivery_thread.lock() = Some(h);
        }
        Ok(p)
    }

    pub fn config(&self) -> &ProducerConfig {
        &self.inner.cfg
    }

    /// Runs a task on the producer's I/O runtime.
    pub fn spawn(&self, task: impl std::future::Future<Output = ()> + Send + 'static) {
        self.handle.spawn(task);
    }

    /// Accepts a record. On Ok the record will get exactly one report.
    pub fn send(&self, rec: &Record<'_>, token: Token) -> Result<(), Error> {
        let inner = &*self.inner;
        inner.check_accepting()?;
        let layout = RecordLayout::new(rec.key, rec.value, rec.headers);
        let footprint = inner.record_footprint(rec, &layout)?;
        let topic = self.topic_handle(rec.topic)?;
        inner.core.memory.reserve(
            footprint,
            Duration::from_millis(inner.cfg.max_block_ms),
            inner.lifecycle.closing_flag(),
        )?;
        let timestamp = if rec.timestamp_ms == 0 { now_ms() } else { rec.timestamp_ms };
        inner.append_or_park(topic, rec, &layout, timestamp, token, footprint)
    }

    /// Waits up to `timeout` until every accepted record has been reported.
    pub fn flush(&self, timeout: Duration) -> Result<(), Error> {
        let inner = &self.inner;
        inner.lifecycle.flush_started();
        inner.sender_wake.notify_one();
        let done = inner.core.reports.wait_all_done(timeout, self.serve_here());
        inner.lifecycle.flush_ended();
        if done {
            Ok(())
        } else {
            Err(Error::new(
                error::TIMED_OUT,
                format!(
                    "flush timed out with {} record(s) not yet reported",
                    inner.core.reports.outstanding()
                ),
            ))
        }
    }

    /// Sends the records queued so far without waiting for linger.ms, and
    /// returns at once (their reports come as usual). Records sent after it
    /// linger as before.
    pub fn send_queued(&self) {
        self.inner.lifecycle.send_queued_now();
        self.inner.sender_wake.notify_one();
    }

    /// Whether the calling thread must dispatch reports itself while waiting.
    fn serve_here(&self) -> Option<&Dispatch> {
        if self.inner.cfg.delivery_mode == DeliveryMode::Poll || self.on_delivery_thread() {
            Some(&*self.dispatch)
        } else {
            None
        }
    }

    fn on_delivery_thread(&self) -> bool {
        *self.delivery_thread_id.lock() == Some(std::thread::current().id())
    }

    /// Serves waiting reports on this thread (poll mode). Returns how many.
    pub fn poll(&self, timeout: Duration) -> usize {
        if self.inner.cfg.delivery_mode != DeliveryMode::Poll {
            std::thread::sleep(timeout.min(Duration::from_millis(10)));
            return 0;
        }
        self.inner.core.reports.serve(&*self.dispatch, timeout)
    }

    /// Hands up to `max` waiting reports to `f` instead of the dispatch
    /// function (poll mode's batched drain). Returns how many; 0 in thread mode.
    pub fn drain_reports(
        &self,
        max: usize,
        timeout: Duration,
        f: &mut dyn FnMut(&ReportView<'_>, &Token),
    ) -> usize {
        if self.inner.cfg.delivery_mode != DeliveryMode::Poll {
            std::thread::sleep(timeout.min(Duration::from_millis(10)));
            return 0;
        }
        self.inner.core.reports.drain(max, timeout, f)
    }

    fn txn(&self) -> Result<&Arc<txn::TxnManager>, txn::TxnError> {
        self.inner.txn.as_ref().ok_or_else(|| {
            txn::TxnError::state("transactions need \"transactional.id\" in the configuration")
        })
    }

    fn block_on<T>(&self, f: impl std::future::Future<Output = T>) -> T {
        self.handle.block_on(f)
    }

    /// Finds the transaction coordinator and gets the producer id/epoch
    /// (fencing older producers with the same transactional.id).
    pub fn init_transactions(&self, timeout: Duration) -> Result<(), txn::TxnError> {
        let t = self.txn()?.clone();
        let r = self.block_on(t.init(&self.inner, timeout));
        self.log_txn_call("init_transactions", &t, &r);
        r
    }

    /// Logs (debug, txn) a transactional call's outcome and the state after it.
    fn log_txn_call(&self, call: &str, t: &txn::TxnManager, r: &Result<(), txn::TxnError>) {
        let outcome = r.as_ref().err().map(|e| format!(" after an error: {}", e.error));
        let (s, o) = (t.state(), outcome.unwrap_or_default());
        kp_log!(self.inner.cfg.log, DEBUG, TXN, "{call}: state {s:?}{o}");
    }

    /// 2 (KIP-890), 1 (classic) or 0 (not initialised / not transactional).
    pub fn transaction_protocol_version(&self) -> i32 {
        self.inner.txn.as_ref().map_or(0, |t| t.protocol_version())
    }

    pub fn begin_transaction(&self) -> Result<(), txn::TxnError> {
        let t = self.txn()?;
        let r = t.begin();
        self.log_txn_call("begin_transaction", t, &r);
        r
    }

    /// Flushes the transaction's records, then commits it.
    pub fn commit_transaction(&self, timeout: Duration) -> Result<(), txn::TxnError> {
        let t = self.txn()?.clone();
        let r = self.commit(&t, timeout);
        self.log_txn_call("commit_transaction", &t, &r);
        r
    }

    fn commit(&self, t: &Arc<txn::TxnManager>, timeout: Duration) -> Result<(), txn::TxnError> {
        let deadline = Instant::now() + timeout;
        t.start_commit()?;
        self.flush(deadline.saturating_duration_since(Instant::now()))
            .map_err(txn::TxnError::retriable)?;
        t.check_still_committable()?;
        self.block_on(t.end(&self.inner, true, deadline))
    }

    /// Drops the transaction's unsent records (each reported with
    /// PURGED_QUEUED), waits for those in flight, then aborts it.
    pub fn abort_transaction(&self, timeout: Duration) -> Result<(), txn::TxnError> {
        let t = self.txn()?.clone();
        let r = self.abort(&t, timeout);
        self.log_txn_call("abort_transaction", &t, &r);
        r
    }

    fn abort(&self, t: &Arc<txn::TxnManager>, timeout: Duration) -> Result<(), txn::TxnError> {
        let deadline = Instant::now() + timeout;
        t.start_abort()?;
        self.inner.purge_queued(
            error::PURGED_QUEUED,
            "the transaction was aborted before the record was sent",
        );
        self.flush(deadline.saturating_duration_since(Instant::now()))
            .map_err(txn::TxnError::retriable)?;
        self.block_on(t.finish_abort(&self.inner, deadline))
    }

    pub fn send_offsets_to_transaction(
        &self,
        offsets: &[(String, i32, i64)],
        group: &str,
        timeout: Duration,
    ) -> Result<(), txn::TxnError> {
        let t = self.txn()?.clone();
        let deadline = Instant::now() + timeout;
        self.block_on(t.send_offsets(&self.inner, offsets, group, deadline))
    }

    /// The error that put the producer in its fatal state, if any.
    pub fn fatal_error(&self) -> Option<Error> {
        self.inner.fatal.lock().clone()
    }

    pub fn poll_fd(&self) -> i32 {
        self.inner.core.reports.fd()
    }

    pub fn outstanding(&self) -> usize {
        self.inner.core.reports.outstanding()
    }

    pub fn buffered_bytes(&self) -> usize {
        self.inner.core.memory.used()
    }

    /// The I/O side's counters (see kp_producer_metrics).
    pub fn metrics(&self) -> &metrics::Metrics {
        &self.inner.metrics
    }

    /// Records reported so far: (delivered, failed).
    pub fn records_reported(&self) -> (u64, u64) {
        self.inner.core.reports.reported()
    }

    /// Partitions of a topic and their leaders (like Java's partitionsFor).
    pub fn partitions_for(&self, topic: &str, timeout: Duration) -> Result<Vec<(i32, i32)>, Error> {
        let t = self.topic_handle(topic)?;
        let deadline = Instant::now() + timeout;
        loop {
            {
                let m = t.meta.read();
                if m.known {
                    return Ok(m.partitions.iter().map(|p| (p.partition, p.leader())).collect());
                }
            }
            if Instant::now() >= deadline {
                let m = t.meta.read();
                let why = m
                    .last_error
                    .clone()
                    .or_else(|| self.inner.metadata.last_cluster_error())
                    .map(|e| format!(": {e}"))
                    .unwrap_or_default();
                return Err(Error::new(
                    error::TIMED_OUT,
                    format!(
                        "metadata for topic \"{topic}\" not available within {} ms{why}",
                        timeout.as_millis()
                    ),
                ));
            }
            self.inner.request_metadata();
            self.inner
                .metadata
                .wait_for_refresh(deadline.min(Instant::now() + Duration::from_millis(100)));
        }
    }

    /// Purges records: `queued` drops every record not yet sent (each gets a
    /// PURGED_QUEUED report); `in_flight` also gives up on records whose
    /// request is on the wire (PURGED_IN_FLIGHT, possibly persisted) by
    /// closing the broker connections. Returns how many queued records went.
    pub fn purge(&self, queued: bool, in_flight: bool) -> usize {
        let mut n = 0;
        if queued {
            n = self
                .inner
                .purge_queued(error::PURGED_QUEUED, "purged by kp_purge before it was sent");
        }
        if in_flight {
            self.inner.purge_generation.fetch_add(1, Ordering::AcqRel);
            for b in self.inner.all_brokers() {
                self.handle.spawn(async move { b.reset().await });
            }
        }
        n
    }

    /// Closes the producer: stops accepting records, sends what is queued and
    /// waits up to `timeout` for it; what is still unreported then fails with
    /// CLOSED (with a zero timeout, what is queued fails at once). Every
    /// accepted record has had its report when this returns (in thread mode
    /// the delivery thread has run them; in poll mode they ran on this
    /// thread).
    pub fn close(&self, timeout: Duration) -> Result<(), Error> {
        if self.on_delivery_thread() {
            return Err(Error::new(
                error::STATE,
                "kp_producer_close must not be called from a delivery callback",
            ));
        }
        let inner = &self.inner;
        // With no time to send in, queued records fail with CLOSED at once
        // (as in Java's close(Duration.ZERO)) instead of racing this call
        // onto the wire; records already in flight may still be delivered.
        let send_queued = !timeout.is_zero();
        if !inner.lifecycle.begin_close(send_queued) {
            return Ok(());
        }
        let failed_at_once = !send_queued
            && inner.purge_queued(
                error::CLOSED,
                "the producer was closed (zero timeout) before the record was sent",
            ) > 0;
        inner.core.memory.wake_all();
        inner.sender_wake.notify_one();
        let complete =
            inner.core.reports.wait_all_done(timeout, self.serve_here()) && !failed_at_once;
        if !complete {
            inner.purge_queued(
                error::CLOSED,
                "the producer was closed (close timeout) before the record was sent",
            );
        }
        inner.lifecycle.shut_down();
        inner.sender_wake.notify_one();
        if let Some(rt) = self.runtime.lock().take() {
            // In-flight requests are abandoned: their batches report CLOSED
            // (possibly persisted) from their drop guards.
            rt.shutdown_timeout(Duration::from_millis(if complete { 1000 } else { 100 }));
        }
        // Records that were never appended anywhere (cannot happen after the
        // purge, but make sure) and outcomes from the drop guards.
        inner.purge_queued(error::CLOSED, "the producer was closed before the record was sent");
        self.deliver_remaining_reports();
        if complete {
            Ok(())
        } else {
            Err(Error::new(
                error::TIMED_OUT,
                "close timed out; unsent records were reported as CLOSED",
            ))
        }
    }

    /// After shutdown: every queued report runs (here in poll mode, on the
    /// delivery thread, which then ends, in thread mode).
    fn deliver_remaining_reports(&self) {
        let reports = &self.inner.core.reports;
        match self.inner.cfg.delivery_mode {
            DeliveryMode::Poll => while reports.serve(&*self.dispatch, Duration::ZERO) > 0 {},
            DeliveryMode::Thread => {
                reports.stop_delivery_thread();
                if let Some(h) = self.delivery_thread.lock().take() {
                    let _ = h.join();
                }
            }
        }
    }
}

impl Drop for Producer {
    fn drop(&mut self) {
        let _ = self.close(Duration::ZERO);
    }
}
