//! The producer engine. It runs on its own tokio runtime (one I/O thread);
//! callers use [`Producer`] from any thread. A record's path (see
//! docs/ARCHITECTURE.md):
//!
//! ```text
//! Producer::send ─► topics (per-thread topic cache, records parked until
//!   │                metadata is known) ─► partitioner (partition choice)
//!   ▼
//! accumulator (per-partition batches, bounded memory)
//!   ▼
//! sender: drain (ready batches, per broker) ─► produce (seal, build the
//!   │     request, handle the response: retry or report)
//!   ▼
//! conn (one I/O task per broker, pipelined requests)
//!   ▼
//! report (queue of outcomes) ─► delivery thread or kp_poll ─► callback
//! ```
//!
//! Beside the path: `metadata` (the metadata task), `idempotence` (producer
//! id, KIP-360 bumps), `txn` (the transaction state machine and its
//! coordinator calls), `backoff` (the one retry policy), `metrics`.

pub mod accumulator;
pub mod backoff;
pub mod conn;
pub mod idempotence;
mod metadata;
pub mod metrics;
pub mod partitioner;
mod producer;
pub mod report;
pub(crate) mod security;
mod sender;
mod topics;
pub mod txn;

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use parking_lot::{Mutex, RwLock};
use tokio::sync::Notify;

use crate::config::{MetadataRecovery, ProducerConfig};
use crate::error::{self, Error};

use accumulator::{Batch, Core, PartitionQueue, TopicHandle};
use conn::{Broker, ConnSettings};
use partitioner::Placement;

pub use partitioner::PartitionerFn;
pub use producer::{Producer, Record, PARTITION_ANY};
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

/// Where the producer is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u8)]
pub enum Phase {
    /// Accepting records.
    Open = 0,
    /// kp_producer_close was called: no new records; what is queued is sent
    /// at once (as in a flush).
    Closing = 1,
    /// kp_producer_close was called with a zero timeout: no new records and
    /// nothing more is sent (queued records fail with CLOSED instead of
    /// racing the close onto the wire).
    ClosingWithoutSending = 2,
    /// The engine's tasks stop; nothing more is sent.
    ShutDown = 3,
}

/// The producer's lifecycle: its [`Phase`] (which only moves forward) and
/// the callers currently in a flush.
pub(crate) struct Lifecycle {
    phase: AtomicU8,
    /// `phase >= Closing`, as the flag that `MemoryPool::reserve` watches
    /// (a caller blocked on buffer.memory gives up when the producer closes).
    closing: AtomicBool,
    stopped: Notify,
    flushers: AtomicUsize,
    /// Batches opened at or before this instant go out without waiting for
    /// linger.ms (`Producer::send_queued`).
    send_queued_before: Mutex<Option<Instant>>,
}

impl Lifecycle {
    fn new() -> Lifecycle {
        Lifecycle {
            phase: AtomicU8::new(Phase::Open as u8),
            closing: AtomicBool::new(false),
            stopped: Notify::new(),
            flushers: AtomicUsize::new(0),
            send_queued_before: Mutex::new(None),
        }
    }

    pub fn phase(&self) -> Phase {
        match self.phase.load(Ordering::Acquire) {
            0 => Phase::Open,
            1 => Phase::Closing,
            2 => Phase::ClosingWithoutSending,
            _ => Phase::ShutDown,
        }
    }

    pub fn is_open(&self) -> bool {
        self.phase() == Phase::Open
    }

    pub fn is_shut_down(&self) -> bool {
        self.phase() == Phase::ShutDown
    }

    /// Open -> Closing (or ClosingWithoutSending when `send_queued` is
    /// false). True for the one caller that made the move.
    fn begin_close(&self, send_queued: bool) -> bool {
        let to = if send_queued { Phase::Closing } else { Phase::ClosingWithoutSending };
        let moved = self
            .phase
            .compare_exchange(Phase::Open as u8, to as u8, Ordering::AcqRel, Ordering::Acquire)
            .is_ok();
        self.closing.store(true, Ordering::Release);
        moved
    }

    /// -> ShutDown: wakes every task waiting in `stopped`.
    fn shut_down(&self) {
        self.closing.store(true, Ordering::Release);
        self.phase.store(Phase::ShutDown as u8, Ordering::Release);
        self.stopped.notify_waiters();
    }

    /// Resolves once the producer shuts down (create it before checking
    /// `is_shut_down` so no wake-up is missed).
    pub fn stopped(&self) -> tokio::sync::futures::Notified<'_> {
        self.stopped.notified()
    }

    /// The flag `MemoryPool::reserve` watches.
    pub(super) fn closing_flag(&self) -> &AtomicBool {
        &self.closing
    }

    fn flush_started(&self) {
        self.flushers.fetch_add(1, Ordering::AcqRel);
    }

    fn flush_ended(&self) {
        self.flushers.fetch_sub(1, Ordering::AcqRel);
    }

    /// From now on, the batches open so far are due (linger.ms no longer
    /// applies to them); later batches linger as usual.
    fn send_queued_now(&self) {
        *self.send_queued_before.lock() = Some(Instant::now());
    }

    /// The instant set by the last `send_queued_now`: batches opened at or
    /// before it are due.
    pub fn send_queued_before(&self) -> Option<Instant> {
        *self.send_queued_before.lock()
    }

    /// Whether batches go out now instead of after linger.ms: a flush is
    /// waiting or the producer is closing (with a timeout to send in).
    pub fn wants_flush(&self) -> bool {
        self.flushers.load(Ordering::Acquire) > 0
            || matches!(self.phase(), Phase::Closing | Phase::ShutDown)
    }
}

/// A producer id and epoch (InitProducerId).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProducerId {
    pub id: i64,
    pub epoch: i16,
}

impl ProducerId {
    /// "None" on the wire.
    pub const NONE: ProducerId = ProducerId { id: -1, epoch: -1 };
}

/// Shared by the producer's API, its tasks and its connections.
pub(crate) struct Inner {
    pub cfg: ProducerConfig,
    pub core: Arc<Core>,
    pub topics: RwLock<HashMap<Arc<str>, Arc<TopicHandle>, FnvBuild>>,
    pub all_partitions: RwLock<Vec<Arc<PartitionQueue>>>,
    pub brokers: RwLock<HashMap<i32, Arc<Broker>>>,
    /// One broker per bootstrap.servers address (node ids -1, -2, ...);
    /// made anew by each rebootstrap.
    pub bootstrap: RwLock<Vec<Arc<Broker>>>,
    pub conn_settings: ConnSettings,
    pub placement: Placement,
    pub lifecycle: Lifecycle,
    pub sender_wake: Notify,
    pub metadata: metadata::MetadataState,
    pub pid: Mutex<idempotence::PidPhase>,
    pub fatal: Mutex<Option<Error>>,
    pub is_fatal: AtomicBool,
    pub txn: Option<Arc<txn::TxnManager>>,
    /// Bumped by an in-flight purge: batches sent before it are reported
    /// PURGED_IN_FLIGHT whatever their response says.
    pub purge_generation: AtomicU64,
    /// Never reused; keys the per-thread topic cache.
    pub uid: u64,
    /// Counters for kp_producer_metrics (shared with the connections).
    pub metrics: Arc<metrics::Metrics>,
}

/// Why a call across the brokers failed: each broker's error, in the order
/// they were tried.
pub(crate) struct BrokerErrors(pub Vec<Error>);

impl BrokerErrors {
    /// The last broker's error (or ALL_BROKERS_DOWN when none was tried).
    pub fn last(mut self) -> Error {
        self.0.pop().unwrap_or_else(|| Error::new(error::ALL_BROKERS_DOWN, "no broker known yet"))
    }
}

/// One broker's answer in [`Inner::on_any_broker`].
pub(crate) enum Attempt<T> {
    Done(T),
    /// Try the next broker.
    Next(Error),
    /// Give up: the error would be the same on every broker.
    Stop(Error),
}

impl Inner {
    /// Known brokers (those not in reconnect backoff first), then bootstrap
    /// (with metadata.recovery.strategy=none, only until brokers are known).
    pub fn any_brokers(&self) -> Vec<Arc<Broker>> {
        let mut v: Vec<Arc<Broker>> = self.brokers.read().values().cloned().collect();
        fastrand::shuffle(&mut v);
        v.sort_by_key(|b| b.in_backoff());
        if v.is_empty() || self.cfg.metadata_recovery == MetadataRecovery::Rebootstrap {
            v.extend(self.bootstrap.read().iter().cloned());
        }
        v
    }

    /// KIP-899: forgets every known broker and starts over from
    /// bootstrap.servers, with new connections (their names resolved again
    /// on connect). Partitions wait for the next metadata for their leaders;
    /// leader epochs are forgotten, as the brokers behind the bootstrap
    /// addresses may be another cluster.
    pub async fn rebootstrap(&self, why: &str) {
        crate::log::kp_log!(
            self.cfg.log,
            WARNING,
            METADATA,
            "rebootstrapping from bootstrap.servers: {why}"
        );
        let old: Vec<Arc<Broker>> = self.brokers.write().drain().map(|(_, b)| b).collect();
        let fresh = bootstrap_brokers(&self.cfg, &self.conn_settings);
        let old_bootstrap = std::mem::replace(&mut *self.bootstrap.write(), fresh);
        for pq in self.all_partitions.read().iter() {
            pq.forget_epoch();
        }
        for b in old.iter().chain(&old_bootstrap) {
            b.reset().await;
        }
        self.metadata.rebootstraps.fetch_add(1, Ordering::Relaxed);
    }

    /// Tries `call` on each broker of `any_brokers` until one answers,
    /// keeping every error (or the last one, see [`BrokerErrors::last`]).
    pub async fn on_any_broker<T, F, Fut>(&self, mut call: F) -> Result<T, BrokerErrors>
    where
        F: FnMut(Arc<Broker>) -> Fut,
        Fut: std::future::Future<Output = Attempt<T>>,
    {
        let mut errors = Vec::new();
        for b in self.any_brokers() {
            match call(b).await {
                Attempt::Done(v) => return Ok(v),
                Attempt::Next(e) => errors.push(e),
                Attempt::Stop(e) => {
                    errors.push(e);
                    break;
                }
            }
            if self.lifecycle.is_shut_down() {
                break;
            }
        }
        Err(BrokerErrors(errors))
    }

    pub fn broker(&self, id: i32) -> Option<Arc<Broker>> {
        self.brokers.read().get(&id).cloned()
    }

    /// Every broker connection there is (known brokers, then bootstrap).
    pub fn all_brokers(&self) -> Vec<Arc<Broker>> {
        let bootstrap = self.bootstrap.read().clone();
        self.brokers.read().values().cloned().chain(bootstrap).collect()
    }

    pub fn request_metadata(&self) {
        self.metadata.request();
    }

    /// Fails every record not yet in a request (parked for metadata or
    /// queued in a partition). Returns how many.
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
        self.core.memory.wake_all();
        n
    }

    /// Takes a producer id/epoch: every partition's sequence restarts at 0,
    /// except where a batch sent under the old one is unresolved (no clear
    /// answer: it may be in the log). Sent again under the new one, the
    /// broker could not recognise it as a duplicate, so such a partition
    /// stays on the old id until it is resolved (`stale_pid`, see the
    /// sender's drain). In a transaction (the abort ends every batch first)
    /// one would be reported possibly persisted instead.
    pub fn set_producer_id(&self, pid: ProducerId) {
        let mut unresolved = Vec::new();
        for pq in self.all_partitions.read().iter() {
            let mut st = pq.state.lock();
            if !st.has_unresolved() {
                st.restart_sequences();
            } else if self.txn.is_some() {
                let ready = std::mem::take(&mut st.ready);
                let (gone, kept): (VecDeque<Batch>, VecDeque<Batch>) =
                    ready.into_iter().partition(|b| b.ambiguous && b.base_seq.is_some());
                st.ready = kept;
                st.restart_sequences();
                unresolved.extend(gone);
            } else if st.stale_pid.is_none() {
                let b = st.ready.iter().find(|b| b.base_seq.is_some()).expect("unresolved");
                st.stale_pid = Some(b.sent_under());
            }
        }
        *self.pid.lock() = idempotence::PidPhase::Ready(pid);
        if !unresolved.is_empty() {
            let err = Arc::new(Error::new(
                error::OUT_OF_ORDER_SEQUENCE_NUMBER,
                "sent without a clear answer before the producer epoch was bumped: it may be in \
                 the log; not sent again under the new epoch",
            ));
            for b in unresolved {
                if let Some(t) = &self.txn {
                    t.batch_failed(&err);
                }
                b.fail(err.clone(), Persistence::PossiblyPersisted);
            }
        }
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
        crate::log::kp_log!(self.cfg.log, ERR, PRODUCER, "fatal error: {err}");
        self.purge_queued(err.code, &format!("the producer hit a fatal error: {}", err.message));
        self.sender_wake.notify_one();
    }
}

/// One broker per bootstrap.servers address, node ids -1, -2, ...
pub(crate) fn bootstrap_brokers(cfg: &ProducerConfig, settings: &ConnSettings) -> Vec<Arc<Broker>> {
    cfg.bootstrap
        .iter()
        .enumerate()
        .map(|(i, (h, p))| Broker::new(-1 - i as i32, h.clone(), *p, settings.clone()))
        .collect()
}

/// Groups `(topic, item)` pairs by topic, topics in order of first
/// appearance and items in their order (the shape of every per-topic array
/// in the protocol).
pub(crate) fn group_by_topic<'a, T>(
    items: impl IntoIterator<Item = (&'a str, T)>,
) -> Vec<(String, Vec<T>)> {
    let mut out: Vec<(String, Vec<T>)> = Vec::new();
    for (topic, item) in items {
        match out.iter_mut().find(|(t, _)| t == topic) {
            Some((_, v)) => v.push(item),
            None => out.push((topic.to_string(), vec![item])),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifecycle_moves_forward_only() {
        let l = Lifecycle::new();
        assert!(l.is_open() && !l.wants_flush());
        l.flush_started();
        assert!(l.wants_flush());
        l.flush_ended();
        assert!(!l.wants_flush());
        assert!(l.begin_close(true), "first close moves");
        assert!(!l.begin_close(false), "second close does not");
        assert_eq!(l.phase(), Phase::Closing);
        assert!(l.wants_flush() && l.closing_flag().load(Ordering::Acquire));
        l.shut_down();
        assert!(l.is_shut_down());
        assert!(!l.begin_close(true));
        assert_eq!(l.phase(), Phase::ShutDown);
        // A close with a zero timeout sends nothing more (a flush still does).
        let l = Lifecycle::new();
        assert!(l.begin_close(false));
        assert_eq!(l.phase(), Phase::ClosingWithoutSending);
        assert!(!l.is_open() && !l.begin_close(true));
        assert!(!l.wants_flush() && l.closing_flag().load(Ordering::Acquire));
        l.flush_started();
        assert!(l.wants_flush());
    }

    #[test]
    fn groups_by_topic_in_first_seen_order() {
        let g = group_by_topic([("b", 1), ("a", 2), ("b", 3), ("c", 4), ("a", 5)]);
        assert_eq!(
            g,
            vec![
                ("b".to_string(), vec![1, 3]),
                ("a".to_string(), vec![2, 5]),
                ("c".into(), vec![4])
            ]
        );
    }
}
