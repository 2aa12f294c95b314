//! The producer engine: metadata, partitioner, accumulator, sender. It runs on
//! its own tokio runtime; callers interact through `Producer` from any thread.

pub mod accumulator;
pub mod conn;
pub mod idempotence;
pub mod metrics;
pub mod report;
pub(crate) mod security;
mod sender;
pub mod txn;

use std::cell::Cell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex, RwLock};
use tokio::sync::Notify;

use crate::config::{DeliveryMode, Partitioner, ProducerConfig};
use crate::error::{self, Error};
use crate::partitioner::{crc32_partition, murmur2_partition};
use crate::protocol::record_batch::{RecordHeader, RecordLayout};

use accumulator::{
    append, validate_topic_name, AppendRecord, Core, MemoryPool, PartitionQueue, PendingRecord,
    TopicHandle,
};
use conn::{Broker, ConnSettings};
pub use report::{Dispatch, Persistence, ReportView, SyncResult, SyncSlot, Token, TopicName};

/// FNV-1a: topic names are short and trusted, so the hot-path lookup in
/// kp_send needs no DoS-resistant (and slower) SipHash.
#[derive(Default, Clone, Copy)]
pub struct Fnv(u64);

impl std::hash::Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        let mut h = if self.0 == 0 { 0xcbf2_9ce4_8422_2325 } else { self.0 };
        for &b in bytes {
            h ^= b as u64;
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        self.0 = h;
    }
}

pub type FnvBuild = std::hash::BuildHasherDefault<Fnv>;

/// Per-record delivery bookkeeping counted against buffer.memory.
const RECORD_BOOKKEEPING_BYTES: usize = std::mem::size_of::<report::RecordMeta>();

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

/// A user partitioner: (topic, key, partition count) → partition.
pub type PartitionerFn = dyn Fn(&str, Option<&[u8]>, i32) -> i32 + Send + Sync;

pub(crate) struct Inner {
    pub cfg: ProducerConfig,
    pub core: Arc<Core>,
    pub topics: RwLock<HashMap<Arc<str>, Arc<TopicHandle>, FnvBuild>>,
    pub all_partitions: RwLock<Vec<Arc<PartitionQueue>>>,
    pub brokers: RwLock<HashMap<i32, Arc<Broker>>>,
    pub bootstrap: Vec<Arc<Broker>>,
    pub conn_settings: ConnSettings,
    pub sender_wake: Notify,
    pub metadata_wake: Notify,
    pub metadata_needed: AtomicBool,
    pub metadata_lock: Mutex<u64>,
    pub metadata_cv: Condvar,
    pub last_cluster_error: Mutex<Option<Error>>,
    pub closing: AtomicBool,
    pub shutdown: AtomicBool,
    pub shutdown_notify: Notify,
    pub flushing: AtomicUsize,
    pub partitioner_fn: Option<Arc<PartitionerFn>>,
    pub pid: Mutex<idempotence::PidPhase>,
    pub fatal: Mutex<Option<Error>>,
    pub is_fatal: AtomicBool,
    pub txn: Option<Arc<txn::TxnManager>>,
    /// Bumped by an in-flight purge: batches sent before it are reported
    /// PURGED_IN_FLIGHT whatever their response says.
    pub purge_generation: std::sync::atomic::AtomicU64,
    /// Never reused; keys the per-thread topic cache.
    pub uid: u64,
    /// Counters for kp_producer_metrics (shared with the connections).
    pub metrics: Arc<metrics::Metrics>,
}

/// The producer. All methods are thread-safe.
pub struct Producer {
    inner: Arc<Inner>,
    runtime: Mutex<Option<tokio::runtime::Runtime>>,
    handle: tokio::runtime::Handle,
    delivery_thread: Mutex<Option<JoinHandle<()>>>,
    delivery_thread_id: Mutex<Option<std::thread::ThreadId>>,
    dispatch: Arc<Dispatch>,
    closed: AtomicBool,
}

/// Wall clock in milliseconds since the epoch (a record's default timestamp).
fn now_ms() -> i64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes into the local timespec it is given.
    unsafe { libc::clock_gettime(libc::CLOCK_REALTIME, &mut ts) };
    ts.tv_sec * 1000 + ts.tv_nsec / 1_000_000
}

/// Gives every producer engine an id that is never reused (see LAST_TOPIC).
static NEXT_PRODUCER_UID: AtomicU64 = AtomicU64::new(1);

thread_local! {
    /// The topic this thread sent to last: (producer uid, handle). kp_send
    /// skips the map lookup (lock, hash, reference count) when the topic
    /// repeats. The pointer is only used while the producer with that uid is
    /// alive (the caller holds it), and stays valid that long: a producer
    /// never removes topics from its map, and the map holds each handle in
    /// an Arc (a rehash moves the Arc, not the handle).
    static LAST_TOPIC: Cell<(u64, *const TopicHandle)> = const { Cell::new((0, std::ptr::null())) };
}

impl Producer {
    pub fn new(
        cfg: ProducerConfig,
        dispatch: Arc<Dispatch>,
        partitioner_fn: Option<Arc<PartitionerFn>>,
    ) -> Result<Producer, Error> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("kp-io")
            .enable_all()
            .build()
            .map_err(|e| {
                Error::new(error::INTERNAL, format!("cannot start the I/O runtime: {e}"))
            })?;
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
        };
        let bootstrap = cfg
            .bootstrap
            .iter()
            .enumerate()
            .map(|(i, (h, p))| Broker::new(-1 - i as i32, h.clone(), *p, conn_settings.clone()))
            .collect();
        let txn = cfg
            .transactional_id
            .clone()
            .map(|id| Arc::new(txn::TxnManager::new(id, cfg.transaction_timeout_ms)));
        let inner = Arc::new(Inner {
            core: Arc::new(Core {
                reports: report::ReportQueue::new(cfg.delivery_mode == DeliveryMode::Poll),
                memory: MemoryPool::new(cfg.buffer_memory),
            }),
            cfg,
            topics: RwLock::new(HashMap::default()),
            all_partitions: RwLock::new(Vec::new()),
            brokers: RwLock::new(HashMap::new()),
            bootstrap,
            conn_settings,
            sender_wake: Notify::new(),
            metadata_wake: Notify::new(),
            metadata_needed: AtomicBool::new(true),
            metadata_lock: Mutex::new(0),
            metadata_cv: Condvar::new(),
            last_cluster_error: Mutex::new(None),
            closing: AtomicBool::new(false),
            shutdown: AtomicBool::new(false),
            shutdown_notify: Notify::new(),
            flushing: AtomicUsize::new(0),
            partitioner_fn,
            pid: Mutex::new(idempotence::PidPhase::Missing),
            fatal: Mutex::new(None),
            is_fatal: AtomicBool::new(false),
            txn,
            purge_generation: std::sync::atomic::AtomicU64::new(0),
            uid: NEXT_PRODUCER_UID.fetch_add(1, Ordering::Relaxed),
            metrics,
        });
        // A TLS or SASL failure cannot heal by retrying with the same settings:
        // fail everything at once with the cause (not at delivery.timeout.ms).
        let weak = Arc::downgrade(&inner);
        inner.conn_settings.security.on_auth_failure(move |e| {
            if let Some(inner) = weak.upgrade() {
                inner.enter_fatal(e);
            }
        });
        runtime.spawn(sender::metadata_loop(inner.clone()));
        runtime.spawn(sender::sender_loop(inner.clone()));
        let p = Producer {
            inner,
            handle: runtime.handle().clone(),
            runtime: Mutex::new(Some(runtime)),
            delivery_thread: Mutex::new(None),
            delivery_thread_id: Mutex::new(None),
            dispatch,
            closed: AtomicBool::new(false),
        };
        if p.inner.cfg.delivery_mode == DeliveryMode::Thread {
            let inner = p.inner.clone();
            let d = p.dispatch.clone();
            let h = std::thread::Builder::new()
                .name("kp-delivery".into())
                .spawn(move || inner.core.reports.run_delivery_thread(&*d))
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

    /// Accepts a record. On Ok the record will get exactly one report.
    pub fn send(&self, rec: &Record<'_>, token: Token) -> Result<(), Error> {
        let inner = &*self.inner;
        if inner.closing.load(Ordering::Acquire) {
            return Err(Error::new(error::CLOSED, "the producer is closed or closing"));
        }
        if inner.is_fatal.load(Ordering::Acquire) {
            return Err(inner.fatal_error_for_send());
        }
        if let Some(t) = &inner.txn {
            t.in_transaction()?;
        }
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
        let layout = RecordLayout::new(rec.key, rec.value, rec.headers);
        let size = layout.max_encoded_len();
        // What the record costs while kp holds it: its bytes in the batch
        // plus its delivery bookkeeping (buffer.memory bounds both).
        let footprint = size + RECORD_BOOKKEEPING_BYTES;
        // Batch header (61) plus produce request overhead for one partition.
        let request_size = size + 61 + 64 + rec.topic.len();
        if request_size > inner.cfg.max_request_size {
            return Err(Error::new(
                error::RECORD_TOO_LARGE,
                format!(
                    "the record is {request_size} bytes when serialized, larger than max.request.size ({})",
                    inner.cfg.max_request_size
                ),
            ));
        }
        if footprint > inner.cfg.buffer_memory {
            return Err(Error::new(
                error::RECORD_TOO_LARGE,
                format!(
                    "the record is {size} bytes, larger than buffer.memory ({})",
                    inner.cfg.buffer_memory
                ),
            ));
        }
        let topic = self.topic_handle(rec.topic)?;
        inner.core.memory.reserve(
            footprint,
            Duration::from_millis(inner.cfg.max_block_ms),
            &inner.closing,
        )?;
        let timestamp = if rec.timestamp_ms == 0 { now_ms() } else { rec.timestamp_ms };
        match inner.append_known(topic, rec, &layout, timestamp, token, footprint) {
            Ok(None) => {
                inner.core.reports.accepted();
                Ok(())
            }
            Ok(Some(token)) => {
                // Metadata not known yet: keep a copy until it is.
                let mut pending = topic.pending.lock();
                if topic.meta.read().known {
                    drop(pending);
                    match inner.append_known(topic, rec, &layout, timestamp, token, footprint) {
                        Ok(None) => {
                            inner.core.reports.accepted();
                            return Ok(());
                        }
                        Ok(Some(_)) => unreachable!("known topic"),
                        Err(e) => {
                            inner.core.memory.release(footprint);
                            return Err(e);
                        }
                    }
                }
                pending.push(PendingRecord {
                    partition: rec.partition,
                    key: rec.key.map(Into::into),
                    value: rec.value.map(Into::into),
                    headers: rec
                        .headers
                        .iter()
                        .map(|h| (h.key.into(), h.value.map(Into::into)))
                        .collect(),
                    timestamp,
                    token,
                    reserved: footprint,
                    enqueued: Instant::now(),
                });
                inner.core.reports.accepted();
                drop(pending);
                inner.request_metadata();
                Ok(())
            }
            Err(e) => {
                inner.core.memory.release(footprint);
                Err(e)
            }
        }
    }

    /// The topic's handle, valid while `self` is borrowed.
    #[inline]
    fn topic_handle(&self, name: &str) -> Result<&TopicHandle, Error> {
        let (uid, ptr) = LAST_TOPIC.with(|c| c.get());
        if uid == self.inner.uid {
            // SAFETY: set below for this producer (same uid), which `self`
            // keeps alive; see LAST_TOPIC for why the handle is still there.
            let t = unsafe { &*ptr };
            if *t.name.name == *name {
                return Ok(t);
            }
        }
        let t = self.topic_handle_from_map(name)?;
        LAST_TOPIC.with(|c| c.set((self.inner.uid, t as *const TopicHandle)));
        Ok(t)
    }

    fn topic_handle_from_map(&self, name: &str) -> Result<&TopicHandle, Error> {
        let found = self.inner.topics.read().get(name).map(Arc::as_ptr);
        let ptr = match found {
            Some(p) => p,
            None => {
                validate_topic_name(name)?;
                let mut w = self.inner.topics.write();
                let p =
                    Arc::as_ptr(w.entry(Arc::from(name)).or_insert_with(|| TopicHandle::new(name)));
                drop(w);
                self.inner.request_metadata();
                p
            }
        };
        // SAFETY: the map owns an Arc of this handle and never removes it
        // while the producer (borrowed by `self`) lives.
        Ok(unsafe { &*ptr })
    }

    /// Waits up to `timeout` until every accepted record has been reported.
    pub fn flush(&self, timeout: Duration) -> Result<(), Error> {
        let inner = &self.inner;
        inner.flushing.fetch_add(1, Ordering::AcqRel);
        inner.sender_wake.notify_one();
        let done = inner.core.reports.wait_all_done(timeout, self.serve_here());
        inner.flushing.fetch_sub(1, Ordering::AcqRel);
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

    /// Whether the calling thread must dispatch reports itself while waiting.
    fn serve_here(&self) -> Option<&Dispatch> {
        let on_delivery_thread =
            *self.delivery_thread_id.lock() == Some(std::thread::current().id());
        if self.inner.cfg.delivery_mode == DeliveryMode::Poll || on_delivery_thread {
            Some(&*self.dispatch)
        } else {
            None
        }
    }

    /// Serves waiting reports on this thread (poll mode). Returns how many.
    pub fn poll(&self, timeout: Duration) -> usize {
        if self.inner.cfg.delivery_mode != DeliveryMode::Poll {
            std::thread::sleep(timeout.min(Duration::from_millis(10)));
            return 0;
        }
        self.inner.core.reports.serve(&*self.dispatch, timeout)
    }

    fn txn(&self) -> Result<&Arc<txn::TxnManager>, txn::TxnError> {
        self.inner.txn.as_ref().ok_or_else(|| txn::TxnError {
            error: Error::new(
                error::STATE,
                "transactions need \"transactional.id\" in the configuration",
            ),
            retriable: false,
            fatal: false,
            requires_abort: false,
        })
    }

    fn block_on<T>(&self, f: impl std::future::Future<Output = T>) -> T {
        self.handle.block_on(f)
    }

    /// Finds the transaction coordinator and gets the producer id/epoch
    /// (fencing older producers with the same transactional.id).
    pub fn init_transactions(&self, timeout: Duration) -> Result<(), txn::TxnError> {
        let t = self.txn()?.clone();
        self.block_on(t.init(&self.inner, timeout))
    }

    /// 2 (KIP-890), 1 (classic) or 0 (not initialised / not transactional).
    pub fn transaction_protocol_version(&self) -> i32 {
        match &self.inner.txn {
            Some(t) if !matches!(*t.state.lock(), txn::TxnState::Uninitialized) => {
                if t.tv2.load(Ordering::Acquire) {
                    2
                } else {
                    1
                }
            }
            _ => 0,
        }
    }

    pub fn begin_transaction(&self) -> Result<(), txn::TxnError> {
        self.txn()?.begin()
    }

    /// Flushes the transaction's records, then commits it.
    pub fn commit_transaction(&self, timeout: Duration) -> Result<(), txn::TxnError> {
        let t = self.txn()?.clone();
        let deadline = Instant::now() + timeout;
        {
            let mut st = t.state.lock();
            match &*st {
                txn::TxnState::InTransaction | txn::TxnState::Committing => {
                    *st = txn::TxnState::Committing
                }
                txn::TxnState::Abortable(e) => {
                    return Err(txn::TxnError {
                        error: e.clone(),
                        retriable: false,
                        fatal: false,
                        requires_abort: true,
                    })
                }
                txn::TxnState::Fatal(e) => {
                    return Err(txn::TxnError {
                        error: e.clone(),
                        retriable: false,
                        fatal: true,
                        requires_abort: false,
                    })
                }
                s => {
                    return Err(txn::TxnError {
                        error: Error::new(
                            error::STATE,
                            format!("no transaction to commit (state {s:?})"),
                        ),
                        retriable: false,
                        fatal: false,
                        requires_abort: false,
                    })
                }
            }
        }
        if let Err(e) = self.flush(deadline.saturating_duration_since(Instant::now())) {
            return Err(txn::TxnError {
                error: e,
                retriable: true,
                fatal: false,
                requires_abort: false,
            });
        }
        if let txn::TxnState::Abortable(e) = &*t.state.lock() {
            return Err(txn::TxnError {
                error: e.clone(),
                retriable: false,
                fatal: false,
                requires_abort: true,
            });
        }
        self.block_on(t.end(&self.inner, true, deadline))
    }

    /// Drops the transaction's unsent records (each reported with
    /// PURGED_QUEUED), waits for those in flight, then aborts it.
    pub fn abort_transaction(&self, timeout: Duration) -> Result<(), txn::TxnError> {
        let t = self.txn()?.clone();
        let deadline = Instant::now() + timeout;
        {
            let mut st = t.state.lock();
            match &*st {
                txn::TxnState::InTransaction
                | txn::TxnState::Aborting
                | txn::TxnState::Abortable(_)
                | txn::TxnState::Committing => *st = txn::TxnState::Aborting,
                txn::TxnState::Fatal(e) => {
                    return Err(txn::TxnError {
                        error: e.clone(),
                        retriable: false,
                        fatal: true,
                        requires_abort: false,
                    })
                }
                s => {
                    return Err(txn::TxnError {
                        error: Error::new(
                            error::STATE,
                            format!("no transaction to abort (state {s:?})"),
                        ),
                        retriable: false,
                        fatal: false,
                        requires_abort: false,
                    })
                }
            }
        }
        self.inner.purge_queued(
            error::PURGED_QUEUED,
            "the transaction was aborted before the record was sent",
        );
        if let Err(e) = self.flush(deadline.saturating_duration_since(Instant::now())) {
            return Err(txn::TxnError {
                error: e,
                retriable: true,
                fatal: false,
                requires_abort: false,
            });
        }
        let inner = &self.inner;
        self.block_on(async {
            match t.end(inner, false, deadline).await {
                Ok(()) => {}
                // The coordinator already ended it (e.g. transaction timeout)
                // or our epoch is stale: the bump below recovers.
                Err(e) if e.requires_abort => {}
                Err(e) => return Err(e),
            }
            t.bump_if_needed(inner, deadline).await?;
            *t.state.lock() = txn::TxnState::Ready;
            Ok(())
        })
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
                    return Ok(m
                        .partitions
                        .iter()
                        .map(|p| (p.partition, p.leader.load(Ordering::Acquire)))
                        .collect());
                }
            }
            if Instant::now() >= deadline {
                let m = t.meta.read();
                let why = m
                    .last_error
                    .clone()
                    .or_else(|| self.inner.last_cluster_error.lock().clone())
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
            let mut g = self.inner.metadata_lock.lock();
            let _ = self
                .inner
                .metadata_cv
                .wait_until(&mut g, deadline.min(Instant::now() + Duration::from_millis(100)));
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
            let brokers: Vec<Arc<Broker>> = self
                .inner
                .brokers
                .read()
                .values()
                .cloned()
                .chain(self.inner.bootstrap.iter().cloned())
                .collect();
            for b in brokers {
                self.handle.spawn(async move { b.reset("purge").await });
            }
        }
        n
    }

    /// Closes the producer: stops accepting records, sends what is queued and
    /// waits up to `timeout` for it; what is still unreported then fails with
    /// CLOSED. Every accepted record has had its report when this returns
    /// (in thread mode the delivery thread has run them; in poll mode they ran
    /// on this thread).
    pub fn close(&self, timeout: Duration) -> Result<(), Error> {
        if *self.delivery_thread_id.lock() == Some(std::thread::current().id()) {
            return Err(Error::new(
                error::STATE,
                "kp_producer_close must not be called from a delivery callback",
            ));
        }
        if self.closed.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        let inner = &self.inner;
        inner.closing.store(true, Ordering::Release);
        inner.core.memory.wake_all();
        inner.flushing.fetch_add(1, Ordering::AcqRel);
        inner.sender_wake.notify_one();
        let complete = inner.core.reports.wait_all_done(timeout, self.serve_here());
        if !complete {
            inner.purge_queued(
                error::CLOSED,
                "the producer was closed (close timeout) before the record was sent",
            );
        }
        inner.shutdown.store(true, Ordering::Release);
        inner.shutdown_notify.notify_waiters();
        inner.sender_wake.notify_one();
        if let Some(rt) = self.runtime.lock().take() {
            // In-flight requests are abandoned: their batches report CLOSED
            // (possibly persisted) from their drop guards.
            rt.shutdown_timeout(Duration::from_millis(if complete { 1000 } else { 100 }));
        }
        // Records that were never appended anywhere (cannot happen after the
        // purge, but make sure) and outcomes from the drop guards.
        inner.purge_queued(error::CLOSED, "the producer was closed before the record was sent");
        match self.inner.cfg.delivery_mode {
            DeliveryMode::Poll => {
                while self.inner.core.reports.serve(&*self.dispatch, Duration::ZERO) > 0 {}
            }
            DeliveryMode::Thread => {
                inner.core.reports.stop_delivery_thread();
                if let Some(h) = self.delivery_thread.lock().take() {
                    let _ = h.join();
                }
            }
        }
        if complete {
            Ok(())
        } else {
            Err(Error::new(
                error::TIMED_OUT,
                "close timed out; unsent records were reported as CLOSED",
            ))
        }
    }
}

impl Drop for Producer {
    fn drop(&mut self) {
        let _ = self.close(Duration::ZERO);
    }
}

impl Inner {
    pub fn request_metadata(&self) {
        self.metadata_needed.store(true, Ordering::Release);
        self.metadata_wake.notify_one();
    }

    /// Appends to a known topic. Ok(Some(token)) hands the token back when
    /// the topic's metadata is not known yet.
    fn append_known(
        &self,
        topic: &TopicHandle,
        rec: &Record<'_>,
        layout: &RecordLayout,
        timestamp: i64,
        token: Token,
        size: usize,
    ) -> Result<Option<Token>, Error> {
        self.append_to_topic(topic, rec, layout, timestamp, token, size, false)
    }

    /// `draining`: the caller holds the topic's pending lock and moves
    /// pending records in before the topic is marked known.
    #[allow(clippy::too_many_arguments)]
    fn append_to_topic(
        &self,
        topic: &TopicHandle,
        rec: &Record<'_>,
        layout: &RecordLayout,
        timestamp: i64,
        token: Token,
        size: usize,
        draining: bool,
    ) -> Result<Option<Token>, Error> {
        let meta = topic.meta.read();
        let drainable = draining && !meta.partitions.is_empty();
        if !meta.known && !drainable {
            return Ok(Some(token));
        }
        let (partition, sticky) =
            self.choose_partition(topic, &meta.partitions, rec.partition, rec.key)?;
        let pq = &meta.partitions[partition as usize];
        let batch_size = self.effective_batch_size();
        let r = append(
            &self.core,
            pq,
            batch_size,
            &AppendRecord {
                timestamp,
                key: rec.key,
                value: rec.value,
                headers: rec.headers,
                layout,
                reserved: size,
                sticky,
            },
            token,
        );
        if r.sticky_used_up {
            self.next_sticky_partition(topic, &meta.partitions, partition);
        }
        drop(meta);
        if r.new_batch || r.batch_full {
            self.sender_wake.notify_one();
        }
        Ok(None)
    }

    fn effective_batch_size(&self) -> usize {
        self.cfg.batch_size.min(self.cfg.max_request_size.saturating_sub(256)).max(1)
    }

    /// The partition for a record, and whether it was chosen by sticky
    /// partitioning (then the append counts it towards the sticky budget).
    fn choose_partition(
        &self,
        topic: &TopicHandle,
        parts: &[Arc<PartitionQueue>],
        explicit: i32,
        key: Option<&[u8]>,
    ) -> Result<(i32, bool), Error> {
        let n = parts.len() as i32;
        if n == 0 {
            return Err(Error::new(
                error::UNKNOWN_PARTITION,
                format!("topic \"{}\" has no partitions", topic.name.name),
            ));
        }
        if explicit != PARTITION_ANY {
            if explicit >= n {
                return Err(Error::new(
                    error::UNKNOWN_PARTITION,
                    format!(
                        "partition {explicit} does not exist: topic \"{}\" has {n} partition(s)",
                        topic.name.name
                    ),
                ));
            }
            return Ok((explicit, false));
        }
        if let Some(f) = &self.partitioner_fn {
            let p = f(&topic.name.name, key, n);
            if p < 0 || p >= n {
                return Err(Error::new(
                    error::PARTITIONER_FAILED,
                    format!(
                        "the custom partitioner returned {p} for a topic with {n} partition(s)"
                    ),
                ));
            }
            return Ok((p, false));
        }
        let key = if self.cfg.partitioner_ignore_keys { None } else { key };
        let un = n as u32;
        Ok(match (self.cfg.partitioner, key) {
            (Partitioner::Murmur2Random | Partitioner::Murmur2, Some(k)) => {
                (murmur2_partition(k, un), false)
            }
            (Partitioner::ConsistentRandom | Partitioner::Consistent, Some(k)) => {
                (crc32_partition(k, un), false)
            }
            (Partitioner::Consistent, None) => (crc32_partition(&[], un), false),
            (Partitioner::Random, _) => (fastrand::i32(0..n), false),
            (Partitioner::RoundRobin, _) => {
                ((topic.round_robin.fetch_add(1, Ordering::Relaxed) % un) as i32, false)
            }
            (_, None) => {
                let cur = topic.sticky.load(Ordering::Relaxed);
                let p = if cur >= 0 && cur < n {
                    cur
                } else {
                    self.next_sticky_partition(topic, parts, cur)
                };
                (p, true)
            }
        })
    }

    /// Sticky partitioning for null keys (KIP-480, with KIP-794's byte
    /// budget): the topic stays on one partition until about batch.size
    /// bytes went there (counted by the partition's append), then moves to
    /// another partition that has a leader. Returns the new partition.
    fn next_sticky_partition(
        &self,
        topic: &TopicHandle,
        parts: &[Arc<PartitionQueue>],
        cur: i32,
    ) -> i32 {
        let n = parts.len() as i32;
        let available: Vec<i32> = parts
            .iter()
            .filter(|p| p.leader.load(Ordering::Relaxed) >= 0)
            .map(|p| p.partition)
            .collect();
        let next = if available.len() > 1 {
            loop {
                let c = available[fastrand::usize(0..available.len())];
                if c != cur {
                    break c;
                }
            }
        } else if available.len() == 1 {
            available[0]
        } else {
            fastrand::i32(0..n)
        };
        topic.sticky.store(next, Ordering::Relaxed);
        next
    }

    /// Moves records that waited for metadata into their partitions, in send
    /// order, then marks the topic known — all under the pending lock, so a
    /// concurrent kp_send (which sees the topic unknown, then waits for this
    /// lock) can never place a newer record ahead of them.
    fn pending_to_partitions_then_mark_known(&self, topic: &TopicHandle) {
        let mut guard = topic.pending.lock();
        let pending: Vec<PendingRecord> = std::mem::take(&mut *guard);
        for p in pending {
            let headers: Vec<RecordHeader<'_>> = p
                .headers
                .iter()
                .map(|(k, v)| RecordHeader { key: k, value: v.as_deref() })
                .collect();
            let rec = Record {
                topic: &topic.name.name,
                partition: p.partition,
                key: p.key.as_deref(),
                value: p.value.as_deref(),
                headers: &headers,
                timestamp_ms: p.timestamp,
            };
            let layout = RecordLayout::new(rec.key, rec.value, rec.headers);
            match self.append_to_topic(
                topic,
                &rec,
                &layout,
                p.timestamp,
                p.token.clone(),
                p.reserved,
                true,
            ) {
                Ok(None) => {}
                Ok(Some(_)) => unreachable!("partitions are known"),
                Err(e) => {
                    self.core.memory.release(p.reserved);
                    self.core.reports.fail(
                        topic.name.clone(),
                        p.partition,
                        Arc::new(e),
                        Persistence::NotPersisted,
                        vec![report::RecordMeta { token: p.token, timestamp: p.timestamp }],
                    );
                }
            }
        }
        topic.meta.write().known = true;
        drop(guard);
    }

    fn fail_pending(&self, topic: &TopicHandle, err: &Error, only_older_than: Option<Instant>) {
        let failed: Vec<PendingRecord> = {
            let mut pending = topic.pending.lock();
            match only_older_than {
                None => std::mem::take(&mut *pending),
                Some(limit) => {
                    let (old, keep): (Vec<_>, Vec<_>) =
                        pending.drain(..).partition(|p| p.enqueued <= limit);
                    *pending = keep;
                    old
                }
            }
        };
        if failed.is_empty() {
            return;
        }
        let err = Arc::new(err.clone());
        let mut reserved = 0;
        let metas = failed
            .into_iter()
            .map(|p| {
                reserved += p.reserved;
                report::RecordMeta { token: p.token, timestamp: p.timestamp }
            })
            .collect();
        self.core.memory.release(reserved);
        self.core.reports.fail(
            topic.name.clone(),
            PARTITION_ANY,
            err,
            Persistence::NotPersisted,
            metas,
        );
    }

    pub fn purge_queued(&self, code: i32, message: &str) -> usize {
        let err = Error::new(code, message);
        let topics: Vec<Arc<TopicHandle>> = self.topics.read().values().cloned().collect();
        let mut n = 0;
        for t in &topics {
            n += t.pending.lock().len();
            self.fail_pending(t, &err, None);
        }
        let err = Arc::new(err);
        let mut sequenced = false;
        for pq in self.all_partitions.read().iter() {
            for b in pq.take_queued() {
                n += b.record_count();
                sequenced |= b.base_seq.is_some();
                let p = b.persistence_on_failure();
                b.fail(err.clone(), p);
            }
        }
        if n > 0 {
            match &self.txn {
                // Records of the transaction are gone: it can only abort.
                Some(t) => t.batch_failed(&err),
                // A batch that had its sequence will never be acknowledged.
                None if sequenced => idempotence::request_bump(self),
                None => {}
            }
        }
        self.memory_wake();
        n
    }

    fn memory_wake(&self) {
        self.core.memory.wake_all();
    }

    pub fn broker(&self, id: i32) -> Option<Arc<Broker>> {
        self.brokers.read().get(&id).cloned()
    }

    /// Takes a producer id/epoch: every partition's sequence restarts at 0.
    pub fn set_producer_id(&self, pid: i64, epoch: i16) {
        for pq in self.all_partitions.read().iter() {
            let mut st = pq.state.lock();
            st.next_seq = 0;
            st.acked_next = 0;
            for b in st.ready.iter_mut() {
                b.base_seq = None;
            }
        }
        *self.pid.lock() = idempotence::PidPhase::Ready { pid, epoch };
        self.sender_wake.notify_one();
    }

    /// Fails every queued batch of one partition (e.g. it cannot join the
    /// transaction).
    pub fn fail_partition_queue(&self, topic: &str, partition: i32, err: &Error) {
        let pq = self
            .topics
            .read()
            .get(topic)
            .and_then(|t| t.meta.read().partitions.get(partition as usize).cloned());
        if let Some(pq) = pq {
            let err = Arc::new(err.clone());
            for b in pq.take_queued() {
                let p = b.persistence_on_failure();
                b.fail(err.clone(), p);
            }
        }
    }

    /// Known brokers (those not in reconnect backoff first), then bootstrap.
    pub fn any_brokers(&self) -> Vec<Arc<Broker>> {
        let mut v: Vec<Arc<Broker>> = self.brokers.read().values().cloned().collect();
        fastrand::shuffle(&mut v);
        v.sort_by_key(|b| b.in_backoff());
        v.extend(self.bootstrap.iter().cloned());
        v
    }

    fn fatal_error_for_send(&self) -> Error {
        let e = self.fatal.lock().clone();
        Error::new(
            error::FATAL,
            format!(
                "the producer is in a fatal state: {}",
                e.map(|e| e.to_string()).unwrap_or_default()
            ),
        )
    }

    /// Enters the fatal state: later sends fail fast, and every queued
    /// record is reported with the fatal error.
    pub fn enter_fatal(&self, err: Error) {
        {
            let mut f = self.fatal.lock();
            if f.is_some() {
                return;
            }
            *f = Some(err.clone());
        }
        self.is_fatal.store(true, Ordering::Release);
        self.purge_queued(err.code, &format!("the producer hit a fatal error: {}", err.message));
        self.sender_wake.notify_one();
    }
}
