//! The metadata task: refreshes cluster metadata when asked (a new topic, a
//! leader change, an error that needs it) or every metadata.max.age.ms,
//! applies it (brokers, partitions and leaders), moves records that waited
//! for their topic into their partitions, and fails those that waited past
//! delivery.timeout.ms.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};
use tokio::sync::Notify;

use crate::config::MetadataRecovery;
use crate::error::{self, Error};
use crate::log::kp_log;
use crate::protocol::messages::{
    LeaderIdAndEpoch, MetadataRequest, MetadataRequestTopic, MetadataResponse, NodeEndpoint,
};

use super::accumulator::{LeaderNews, Leadership, PartitionQueue, TopicHandle};
use super::backoff::Backoff;
use super::conn::Broker;
use super::{Attempt, FnvBuild, Inner};

/// What the producer's API and the metadata task share.
pub(crate) struct MetadataState {
    wake: Notify,
    /// A refresh is wanted as soon as possible.
    needed: AtomicBool,
    /// Counts refreshes (successful or not); `refreshed` signals each.
    refreshes: Mutex<u64>,
    refreshed: Condvar,
    /// Why the last refresh failed, if it did (or why no producer id).
    last_cluster_error: Mutex<Option<Error>>,
    /// Rebootstraps so far (KIP-899).
    pub rebootstraps: AtomicU64,
}

impl MetadataState {
    pub fn new() -> MetadataState {
        MetadataState {
            wake: Notify::new(),
            needed: AtomicBool::new(true),
            refreshes: Mutex::new(0),
            refreshed: Condvar::new(),
            last_cluster_error: Mutex::new(None),
            rebootstraps: AtomicU64::new(0),
        }
    }

    /// Asks the metadata task for a refresh.
    pub fn request(&self) {
        self.needed.store(true, Ordering::Release);
        self.wake.notify_one();
    }

    pub fn last_cluster_error(&self) -> Option<Error> {
        self.last_cluster_error.lock().clone()
    }

    pub fn set_cluster_error(&self, e: Option<Error>) {
        *self.last_cluster_error.lock() = e;
    }

    /// Blocks the calling (non-I/O) thread until the next refresh ends or
    /// `until`.
    pub fn wait_for_refresh(&self, until: Instant) {
        let mut g = self.refreshes.lock();
        let _ = self.refreshed.wait_until(&mut g, until);
    }

    fn refresh_done(&self) {
        let mut g = self.refreshes.lock();
        *g += 1;
        self.refreshed.notify_all();
    }
}

pub(crate) async fn metadata_loop(inner: Arc<Inner>) {
    let state = &inner.metadata;
    let max_age = Duration::from_millis(inner.cfg.metadata_max_age_ms);
    // Back-to-back refreshes (e.g. the first send of a new topic right after
    // the startup fetch) must not wait out retry.backoff.ms: only failures
    // back off; otherwise refreshes are merely coalesced.
    let min_gap = Duration::from_millis(5);
    let backoff = Backoff::from_millis(
        inner.cfg.retry_backoff_ms.max(50),
        inner.cfg.retry_backoff_max_ms.max(1000),
    );
    let mut failures: u32 = 0;
    // Refreshes in a row whose answer asked for another (a topic not there
    // yet, a partition without a leader): those back off too, or a missing
    // topic would be asked for every few milliseconds until its records
    // time out.
    let mut unsettled: u32 = 0;
    let mut last_attempt: Option<Instant> = None;
    let mut last_success = Instant::now();
    let rebootstrap = inner.cfg.metadata_recovery == MetadataRecovery::Rebootstrap;
    let trigger = Duration::from_millis(inner.cfg.rebootstrap_trigger_ms);
    loop {
        let stopped = inner.lifecycle.stopped();
        if inner.lifecycle.is_shut_down() {
            return;
        }
        let wanted = state.needed.load(Ordering::Acquire);
        if !(wanted || last_success.elapsed() >= max_age) {
            tokio::select! {
                _ = state.wake.notified() => {}
                _ = tokio::time::sleep(max_age.saturating_sub(last_success.elapsed())) => {}
                _ = stopped => return,
            }
            continue;
        }
        if let Some(t) = last_attempt {
            let gap = match failures.max(unsettled) {
                0 => min_gap,
                n => backoff.delay(n),
            };
            let since = t.elapsed();
            if since < gap {
                tokio::select! {
                    _ = tokio::time::sleep(gap - since) => {}
                    _ = stopped => return,
                }
            }
        }
        state.needed.store(false, Ordering::Release);
        last_attempt = Some(Instant::now());
        let topics: Vec<Arc<str>> = inner.topics.read().keys().cloned().collect();
        let answer = fetch_metadata(&inner, &topics).await.and_then(|r| match r.error_code {
            0 => Ok(r),
            code => Err(Error::new(
                code as i32,
                format!("metadata answer: {}", error::description(code as i32)),
            )),
        });
        match answer {
            Ok(resp) => {
                failures = 0;
                last_success = Instant::now();
                state.set_cluster_error(None);
                if apply_metadata(&inner, resp) {
                    unsettled = unsettled.saturating_add(1);
                    state.needed.store(true, Ordering::Release);
                } else {
                    unsettled = 0;
                }
            }
            Err(e) => {
                failures += 1;
                kp_log!(inner.cfg.log, WARNING, METADATA, "metadata refresh failed: {}", e.message);
                if rebootstrap {
                    if let Some(why) =
                        rebootstrap_reason(&inner, &e, last_success.elapsed(), trigger)
                    {
                        inner.rebootstrap(&why).await;
                        // The bootstrap brokers are asked at once.
                        failures = 0;
                    }
                }
                state.set_cluster_error(Some(e));
                state.needed.store(true, Ordering::Release);
            }
        }
        expire_pending(&inner);
        state.refresh_done();
        inner.sender_wake.notify_one();
    }
}

/// Why to rebootstrap after a failed refresh (KIP-899, KIP-1102), if so: a
/// broker asked for it (REBOOTSTRAP_REQUIRED), every known broker is
/// unreachable (in reconnect backoff after failed connections), or no
/// metadata came for metadata.recovery.rebootstrap.trigger.ms.
fn rebootstrap_reason(
    inner: &Inner,
    e: &Error,
    since_success: Duration,
    trigger: Duration,
) -> Option<String> {
    if e.code == error::REBOOTSTRAP_REQUIRED {
        return Some("a broker answered REBOOTSTRAP_REQUIRED".into());
    }
    let brokers = inner.brokers.read();
    if brokers.is_empty() {
        // Only the bootstrap brokers were asked: nothing to start over from.
        return None;
    }
    if brokers.values().all(|b| b.in_backoff()) {
        return Some(format!("none of the {} known broker(s) can be reached", brokers.len()));
    }
    (since_success >= trigger).then(|| {
        format!(
            "no metadata for {} ms (metadata.recovery.rebootstrap.trigger.ms)",
            since_success.as_millis()
        )
    })
}

/// Records waiting for metadata past delivery.timeout.ms fail, saying why.
fn expire_pending(inner: &Inner) {
    let timeout = Duration::from_millis(inner.cfg.delivery_timeout_ms);
    let Some(limit) = Instant::now().checked_sub(timeout) else { return };
    let topics: Vec<Arc<TopicHandle>> = inner.topics.read().values().cloned().collect();
    for t in topics {
        let has_old = t.pending.lock().iter().any(|p| p.enqueued <= limit);
        if !has_old {
            continue;
        }
        let why = t.meta.read().last_error.clone();
        let name = &t.name.name;
        let ms = timeout.as_millis();
        let err = match (why, inner.metadata.last_cluster_error()) {
            (_, Some(c)) => Error::new(
                if c.code == error::ALL_BROKERS_DOWN {
                    error::ALL_BROKERS_DOWN
                } else {
                    error::TIMED_OUT
                },
                format!(
                    "no metadata for topic \"{name}\" within delivery.timeout.ms ({ms} ms): {}",
                    c.message
                ),
            ),
            (Some(e), None) => Error::new(
                e.code,
                format!(
                    "topic \"{name}\" not available within delivery.timeout.ms ({ms} ms): {}",
                    e.message
                ),
            ),
            (None, None) => Error::new(
                error::TIMED_OUT,
                format!("no metadata for topic \"{name}\" within delivery.timeout.ms ({ms} ms)"),
            ),
        };
        inner.fail_pending(&t, &err, Some(limit));
    }
}

async fn fetch_metadata(inner: &Inner, topics: &[Arc<str>]) -> Result<MetadataResponse, Error> {
    let req = MetadataRequest {
        topics: Some(
            topics
                .iter()
                .map(|t| MetadataRequestTopic {
                    topic_id: Default::default(),
                    name: Some(t.to_string()),
                })
                .collect(),
        ),
        allow_auto_topic_creation: inner.cfg.allow_auto_create_topics,
        include_cluster_authorized_operations: false,
        include_topic_authorized_operations: false,
    };
    let req = &req;
    let tried = inner
        .on_any_broker(|b| async move {
            match b.request(req).await {
                Ok(r) => Attempt::Done(r),
                Err(e) => Attempt::Next(Error::new(e.code, format!("{}: {}", b.addr(), e.message))),
            }
        })
        .await;
    tried.map_err(|errs| {
        let mut msgs: Vec<String> = errs.0.into_iter().map(|e| e.message).collect();
        msgs.dedup();
        Error::new(
            error::ALL_BROKERS_DOWN,
            format!("no broker answered a metadata request ({})", msgs.join("; ")),
        )
    })
}

/// Applies a metadata response. Returns true when another refresh is needed soon.
fn apply_metadata(inner: &Inner, resp: MetadataResponse) -> bool {
    update_brokers(inner, &resp);
    let mut again = false;
    let topics: HashMap<Arc<str>, Arc<TopicHandle>, FnvBuild> = inner.topics.read().clone();
    for t in &resp.topics {
        let Some(name) = t.name.as_deref() else { continue };
        let Some(handle) = topics.get(name) else { continue };
        if t.error_code != 0 {
            let code = t.error_code as i32;
            let err = Error::new(
                code,
                format!("metadata for topic \"{name}\": {}", error::description(code)),
            );
            kp_log!(inner.cfg.log, WARNING, METADATA, "{}", err.message);
            handle.meta.write().last_error = Some(err.clone());
            if error::is_retriable(code) {
                again = true;
            } else {
                inner.fail_pending(handle, &err, None);
            }
            continue;
        }
        let mut leaders: Vec<PartitionLeader> = t
            .partitions
            .iter()
            .map(|p| PartitionLeader {
                partition: p.partition_index,
                leader: if p.error_code == 0 || p.leader_id >= 0 { p.leader_id } else { -1 },
                epoch: p.leader_epoch,
            })
            .collect();
        leaders.sort_by_key(|p| (p.partition, p.leader));
        {
            // A new topic id: the topic was deleted and created again, its
            // leader epochs start over.
            let mut meta = handle.meta.write();
            if t.topic_id != [0; 16] && meta.topic_id != t.topic_id {
                if meta.topic_id != [0; 16] {
                    for pq in &meta.partitions {
                        pq.forget_epoch();
                    }
                }
                meta.topic_id = t.topic_id;
            }
        }
        let update = update_partitions(inner, handle, &leaders);
        // No partition usable yet (none listed, or not from 0 on): as good
        // as leaderless.
        again |= update.leaderless || handle.meta.read().partitions.is_empty();
        if update.newly_known || !handle.pending.lock().is_empty() {
            inner.pending_to_partitions_then_mark_known(handle);
        }
    }
    again
}

/// Adds brokers the response names, and replaces those that moved.
fn update_brokers(inner: &Inner, resp: &MetadataResponse) {
    for b in &resp.brokers {
        upsert_broker(inner, b.node_id, &b.host, b.port);
    }
}

/// Adds a broker, or replaces it when it moved; returns it.
pub(crate) fn upsert_broker(inner: &Inner, node_id: i32, host: &str, port: i32) -> Arc<Broker> {
    let port = port as u16;
    let mut brokers = inner.brokers.write();
    match brokers.get(&node_id) {
        Some(old) if old.host == host && old.port == port => old.clone(),
        _ => {
            kp_log!(inner.cfg.log, DEBUG, METADATA, "broker {node_id} at {host}:{port}");
            let b = Broker::new(node_id, host.to_string(), port, inner.conn_settings.clone());
            brokers.insert(node_id, b.clone());
            b
        }
    }
}

/// A produce answer named the partition's current leader (KIP-951,
/// NOT_LEADER_OR_FOLLOWER from Produce v10 on): moves the partition there
/// when that leader epoch is newer than the one known, connecting to the
/// leader's endpoint (from the same answer) when the broker is new. A
/// metadata refresh is asked for either way (by the caller's retry).
pub(crate) fn follow_current_leader(
    inner: &Inner,
    pq: &PartitionQueue,
    current: LeaderIdAndEpoch,
    endpoints: &[NodeEndpoint],
) {
    if current.leader_id < 0 || current.leader_epoch <= pq.leadership().epoch {
        return;
    }
    match endpoints.iter().find(|e| e.node_id == current.leader_id) {
        Some(e) => {
            upsert_broker(inner, e.node_id, &e.host, e.port);
        }
        None if inner.broker(current.leader_id).is_some() => {}
        // A leader we cannot reach without metadata.
        None => return,
    }
    let new = Leadership { leader: current.leader_id, epoch: current.leader_epoch };
    let Some(old) = pq.update_leader(new, LeaderNews::ProduceAnswer) else { return };
    kp_log!(
        inner.cfg.log,
        INFO,
        METADATA,
        "{} [{}]: leader {} -> {} (epoch {} -> {}, from a produce answer)",
        pq.topic.name,
        pq.partition,
        old.leader,
        new.leader,
        old.epoch,
        new.epoch
    );
}

#[derive(Clone, Copy)]
struct PartitionLeader {
    partition: i32,
    /// -1: no leader now.
    leader: i32,
    /// -1: unknown (Metadata before v7).
    epoch: i32,
}

struct PartitionsUpdate {
    /// The topic has partitions now and was not known before.
    newly_known: bool,
    /// Some partition has no leader: refresh again soon.
    leaderless: bool,
}

/// Sets the leaders of a topic's partitions and adds new partitions.
fn update_partitions(
    inner: &Inner,
    handle: &TopicHandle,
    leaders: &[PartitionLeader],
) -> PartitionsUpdate {
    let mut leaderless = false;
    let mut meta = handle.meta.write();
    meta.last_error = None;
    let have = meta.partitions.len();
    let mut added = Vec::new();
    for p in leaders {
        if p.leader < 0 {
            leaderless = true;
        }
        let idx = p.partition as usize;
        let news = Leadership { leader: p.leader, epoch: p.epoch };
        if idx < have {
            match meta.partitions[idx].update_leader(news, LeaderNews::Metadata) {
                Some(old) if old.leader != p.leader => kp_log!(
                    inner.cfg.log,
                    INFO,
                    METADATA,
                    "{} [{}]: leader {} -> {} (epoch {} -> {})",
                    handle.name.name,
                    p.partition,
                    old.leader,
                    p.leader,
                    old.epoch,
                    p.epoch
                ),
                Some(_) => {}
                None => kp_log!(
                    inner.cfg.log,
                    DEBUG,
                    METADATA,
                    "{} [{}]: kept leader {} (epoch {}) over stale metadata (leader {}, epoch {})",
                    handle.name.name,
                    p.partition,
                    meta.partitions[idx].leader(),
                    meta.partitions[idx].leadership().epoch,
                    p.leader,
                    p.epoch
                ),
            }
        } else if idx == meta.partitions.len() {
            let pq = PartitionQueue::with_epoch(handle.name.clone(), p.partition, news);
            meta.partitions.push(pq.clone());
            added.push(pq);
        }
    }
    if !added.is_empty() {
        kp_log!(
            inner.cfg.log,
            DEBUG,
            METADATA,
            "{}: {} partition(s)",
            handle.name.name,
            meta.partitions.len()
        );
        inner.all_partitions.write().extend(added);
    }
    // `known` is set only after the pending records are in their
    // partitions (by the caller), so no newer record can overtake them.
    PartitionsUpdate { newly_known: !meta.known && !meta.partitions.is_empty(), leaderless }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex as StdMutex;

    use super::*;
    use crate::config::{ConfigMap, ProducerConfig};
    use crate::engine::{Dispatch, Producer, Record, ReportView, Token, PARTITION_ANY};
    use crate::protocol::messages::{MetadataBroker, MetadataTopic};
    use crate::protocol::test_support::led_partition;

    fn response(topic: &str, partitions: &[i32]) -> MetadataResponse {
        MetadataResponse {
            throttle_time_ms: 0,
            brokers: vec![MetadataBroker {
                node_id: 1,
                host: "127.0.0.1".into(),
                port: 1,
                rack: None,
            }],
            cluster_id: None,
            controller_id: 1,
            topics: vec![MetadataTopic {
                error_code: 0,
                name: Some(topic.into()),
                topic_id: [0; 16],
                is_internal: false,
                partitions: partitions.iter().map(|&p| led_partition(p, 1)).collect(),
                topic_authorized_operations: i32::MIN,
            }],
            cluster_authorized_operations: i32::MIN,
            error_code: 0,
        }
    }

    /// A record to topic "t", no headers, timestamp now.
    fn record_to_t<'a>(partition: i32, key: Option<&'a [u8]>, value: &'a [u8]) -> Record<'a> {
        Record { topic: "t", partition, key, value: Some(value), headers: &[], timestamp_ms: 0 }
    }

    /// Once PARK_BYTES_BEFORE_WAITING wait for a topic's first metadata
    /// answer, kp_send waits for it instead of parking more: up to
    /// max.block.ms (then it parks anyway), or until the answer comes, which
    /// wakes it and its record goes straight into a batch.
    #[test]
    fn send_waits_for_a_topics_first_metadata_once_a_megabyte_is_parked() {
        use crate::engine::topics::PARK_BYTES_BEFORE_WAITING;
        let mut m = ConfigMap::default();
        m.set("bootstrap.servers", "127.0.0.1:1").unwrap();
        m.set("max.block.ms", "300").unwrap();
        let dispatch: Arc<Dispatch> = Arc::new(|_: &ReportView<'_>, _: &Token| {});
        let p =
            Arc::new(Producer::new(ProducerConfig::from_map(&m).unwrap(), dispatch, None).unwrap());
        // One 1 KB record to topic "t" (unknown: it parks).
        fn send(p: &Producer) {
            p.send(&record_to_t(PARTITION_ANY, None, &[7u8; 1000]), Token::None).unwrap();
        }
        let topic = {
            send(&p);
            p.inner.topics.read().get("t").cloned().unwrap()
        };
        while topic.pending.lock().bytes() < PARK_BYTES_BEFORE_WAITING {
            send(&p);
        }
        let parked = topic.pending.lock().len();
        let t0 = Instant::now();
        send(&p);
        assert!(
            t0.elapsed() >= Duration::from_millis(300),
            "waited max.block.ms: {:?}",
            t0.elapsed()
        );
        assert_eq!(topic.pending.lock().len(), parked + 1, "then parked the record anyway");

        // With a long max.block.ms, the metadata answer ends the wait.
        let mut m = m.clone();
        m.set("max.block.ms", "60000").unwrap();
        let dispatch: Arc<Dispatch> = Arc::new(|_: &ReportView<'_>, _: &Token| {});
        let p =
            Arc::new(Producer::new(ProducerConfig::from_map(&m).unwrap(), dispatch, None).unwrap());
        send(&p);
        let topic = p.inner.topics.read().get("t").cloned().unwrap();
        while topic.pending.lock().bytes() < PARK_BYTES_BEFORE_WAITING {
            send(&p);
        }
        let parked = topic.pending.lock().len();
        let waiting = {
            let p = p.clone();
            std::thread::spawn(move || send(&p))
        };
        std::thread::sleep(Duration::from_millis(200));
        assert!(!waiting.is_finished(), "kp_send waits for the topic's metadata");
        assert_eq!(topic.pending.lock().len(), parked, "and parks nothing meanwhile");
        apply_metadata(&p.inner, response("t", &[0, 1]));
        waiting.join().unwrap();
        assert!(topic.pending.lock().is_empty() && topic.meta.read().known);
        let queued: usize = topic
            .meta
            .read()
            .partitions
            .iter()
            .map(|pq| {
                let st = pq.state.lock();
                st.open.as_ref().map_or(0, |b| b.record_count())
                    + st.ready.iter().map(|b| b.record_count()).sum::<usize>()
            })
            .sum();
        assert_eq!(queued, parked + 1, "every record is in a batch");
        let _ = p.close(Duration::ZERO);
    }

    /// A kp_send waiting for a topic's first metadata when close begins is
    /// refused with CLOSED: parked after close's purges, its record would
    /// never get a report. Every record accepted gets exactly one.
    #[test]
    fn a_send_waiting_for_metadata_when_close_begins_is_refused() {
        use crate::engine::topics::PARK_BYTES_BEFORE_WAITING;
        let mut m = ConfigMap::default();
        m.set("bootstrap.servers", "127.0.0.1:1").unwrap();
        m.set("max.block.ms", "60000").unwrap();
        let reports = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let r = reports.clone();
        let dispatch: Arc<Dispatch> = Arc::new(move |_: &ReportView<'_>, _: &Token| {
            r.fetch_add(1, Ordering::Relaxed);
        });
        let p =
            Arc::new(Producer::new(ProducerConfig::from_map(&m).unwrap(), dispatch, None).unwrap());
        let send =
            |p: &Producer| p.send(&record_to_t(PARTITION_ANY, None, &[7u8; 1000]), Token::None);
        send(&p).unwrap();
        let topic = p.inner.topics.read().get("t").cloned().unwrap();
        let mut accepted = 1;
        while topic.pending.lock().bytes() < PARK_BYTES_BEFORE_WAITING {
            send(&p).unwrap();
            accepted += 1;
        }
        let waiting = {
            let p = p.clone();
            std::thread::spawn(move || send(&p))
        };
        std::thread::sleep(Duration::from_millis(100));
        assert!(!waiting.is_finished(), "kp_send waits for the topic's metadata");
        let _ = p.close(Duration::ZERO);
        let e = waiting.join().unwrap().expect_err("refused once close began");
        assert_eq!(e.code, error::CLOSED, "{}", e.message);
        assert_eq!(reports.load(Ordering::Relaxed), accepted, "one report per accepted record");
        assert_eq!(p.outstanding(), 0);
        assert_eq!(p.inner.core.memory.used(), 0, "the refused record's reservation came back");
    }

    /// A record parked until its topic's metadata is known holds a copy
    /// (a PendingRecord and its key/value allocations) that counts against
    /// buffer.memory, and all of it comes back when the record ends.
    #[test]
    fn a_parked_record_charges_its_copy_to_buffer_memory() {
        let mut m = ConfigMap::default();
        m.set("bootstrap.servers", "127.0.0.1:1").unwrap();
        let dispatch: Arc<Dispatch> = Arc::new(|_: &ReportView<'_>, _: &Token| {});
        let p = Producer::new(ProducerConfig::from_map(&m).unwrap(), dispatch, None).unwrap();
        p.send(&record_to_t(PARTITION_ANY, Some(b"k"), b"v"), Token::None).unwrap();
        let inner = &p.inner;
        let topic = inner.topics.read().get("t").cloned().unwrap();
        assert_eq!(topic.pending.lock().len(), 1);
        let charged = topic.pending.lock().iter().map(|r| r.reserved).sum::<usize>();
        assert_eq!(inner.core.memory.used(), charged);
        assert!(
            charged > std::mem::size_of::<crate::engine::accumulator::PendingRecord>() + 32,
            "the parked copy is charged: {charged} bytes"
        );
        let _ = p.close(Duration::ZERO);
        assert_eq!(inner.core.memory.used(), 0, "everything charged came back");
    }

    /// A topic answered without error but without (usable) partitions —
    /// none, or not starting at 0 — leaves the records that wait for it
    /// waiting. It used to panic the metadata task while it held them
    /// (`unreachable!`): they were dropped unreported (a flush without
    /// timeout never returned) and no metadata was fetched any more.
    #[test]
    fn a_topic_without_partitions_keeps_its_waiting_records() {
        let mut m = ConfigMap::default();
        m.set("bootstrap.servers", "127.0.0.1:1").unwrap();
        let reports: Arc<StdMutex<Vec<(i32, i32)>>> = Arc::default();
        let r = reports.clone();
        let dispatch: Arc<Dispatch> = Arc::new(move |v: &ReportView<'_>, _: &Token| {
            r.lock().unwrap().push((v.partition, v.error));
        });
        let p = Producer::new(ProducerConfig::from_map(&m).unwrap(), dispatch, None).unwrap();
        for partition in [1, PARTITION_ANY] {
            p.send(&record_to_t(partition, None, b"v"), Token::None).unwrap();
        }
        let inner = &p.inner;
        let topic = inner.topics.read().get("t").cloned().unwrap();
        for partitions in [&[][..], &[1][..]] {
            assert!(apply_metadata(inner, response("t", partitions)), "refresh again soon");
            assert_eq!(topic.pending.lock().len(), 2, "answer with partitions {partitions:?}");
            assert!(!topic.meta.read().known);
        }
        apply_metadata(inner, response("t", &[0, 1]));
        assert!(topic.pending.lock().is_empty() && topic.meta.read().known);
        let queued: Vec<usize> = topic
            .meta
            .read()
            .partitions
            .iter()
            .map(|pq| pq.state.lock().open.as_ref().map_or(0, |b| b.record_count()))
            .collect();
        assert_eq!(queued.iter().sum::<usize>(), 2);
        assert!(queued[1] >= 1, "the record for partition 1 is in partition 1");
        assert_eq!(p.outstanding(), 2);
        let _ = p.close(Duration::ZERO);
        let got = reports.lock().unwrap().clone();
        assert_eq!(got.len(), 2, "one report per record: {got:?}");
        assert!(got.iter().all(|&(_, e)| e == error::CLOSED), "{got:?}");
    }
}
