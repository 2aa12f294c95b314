//! The sender task (drains ready batches into multi-partition produce
//! requests, one request at a time per broker up to max.in.flight, handles
//! responses, retries and timeouts) and the metadata task.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::error::{self, Error};
use crate::protocol::messages::{MetadataRequest, MetadataRequestTopic, MetadataResponse};
use crate::protocol::messages::{
    PartitionProduceData, ProduceRequest, ProduceResponse, TopicProduceData,
};
use crate::protocol::record_batch::{restamp_bytes, ProducerStamp};

use super::accumulator::{Batch, PartitionQueue, TopicHandle};
use super::conn::Broker;
use super::idempotence::{self, PidPhase};
use super::report::Persistence;
use super::Inner;

fn backoff(base_ms: u64, max_ms: u64, attempt: u32) -> Duration {
    let exp =
        base_ms.saturating_mul(1u64 << attempt.saturating_sub(1).min(20)).min(max_ms.max(base_ms));
    // ±20% jitter, like the Java client.
    let jitter = exp / 5;
    let v = if jitter > 0 { exp - jitter + fastrand::u64(0..=2 * jitter) } else { exp };
    Duration::from_millis(v)
}

pub(crate) async fn metadata_loop(inner: Arc<Inner>) {
    let max_age = Duration::from_millis(inner.cfg.metadata_max_age_ms);
    // Back-to-back refreshes (e.g. the first send of a new topic right after
    // the startup fetch) must not wait out retry.backoff.ms: only failures
    // back off; otherwise refreshes are merely coalesced.
    let min_gap = Duration::from_millis(5);
    let mut last_attempt: Option<Instant> = None;
    let mut last_success = Instant::now();
    let mut failures: u32 = 0;
    loop {
        if inner.shutdown.load(Ordering::Acquire) {
            return;
        }
        let wanted = inner.metadata_needed.load(Ordering::Acquire);
        let due = last_success.elapsed() >= max_age;
        if !(wanted || due) {
            tokio::select! {
                _ = inner.metadata_wake.notified() => {}
                _ = tokio::time::sleep(max_age.saturating_sub(last_success.elapsed())) => {}
                _ = inner.shutdown_notify.notified() => return,
            }
            continue;
        }
        if let Some(t) = last_attempt {
            let gap = if failures > 0 {
                backoff(
                    inner.cfg.retry_backoff_ms.max(50),
                    inner.cfg.retry_backoff_max_ms.max(1000),
                    failures,
                )
            } else {
                min_gap
            };
            let since = t.elapsed();
            if since < gap {
                tokio::select! {
                    _ = tokio::time::sleep(gap - since) => {}
                    _ = inner.shutdown_notify.notified() => return,
                }
            }
        }
        inner.metadata_needed.store(false, Ordering::Release);
        last_attempt = Some(Instant::now());
        let topics: Vec<Arc<str>> = inner.topics.read().keys().cloned().collect();
        match fetch_metadata(&inner, &topics).await {
            Ok(resp) => {
                failures = 0;
                last_success = Instant::now();
                *inner.last_cluster_error.lock() = None;
                if apply_metadata(&inner, resp) {
                    inner.metadata_needed.store(true, Ordering::Release);
                }
            }
            Err(e) => {
                failures += 1;
                *inner.last_cluster_error.lock() = Some(e);
                inner.metadata_needed.store(true, Ordering::Release);
            }
        }
        expire_pending(&inner);
        {
            let mut g = inner.metadata_lock.lock();
            *g += 1;
            inner.metadata_cv.notify_all();
        }
        inner.sender_wake.notify_one();
    }
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
        let err = match (why, inner.last_cluster_error.lock().clone()) {
            (_, Some(c)) => Error::new(
                if c.code == error::ALL_BROKERS_DOWN {
                    error::ALL_BROKERS_DOWN
                } else {
                    error::TIMED_OUT
                },
                format!(
                    "no metadata for topic \"{}\" within delivery.timeout.ms ({} ms): {}",
                    t.name.name,
                    timeout.as_millis(),
                    c.message
                ),
            ),
            (Some(e), None) => Error::new(
                e.code,
                format!(
                    "topic \"{}\" not available within delivery.timeout.ms ({} ms): {}",
                    t.name.name,
                    timeout.as_millis(),
                    e.message
                ),
            ),
            (None, None) => Error::new(
                error::TIMED_OUT,
                format!(
                    "no metadata for topic \"{}\" within delivery.timeout.ms ({} ms)",
                    t.name.name,
                    timeout.as_millis()
                ),
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
    let mut errors = Vec::new();
    for b in inner.any_brokers() {
        match b.request(&req).await {
            Ok(r) => return Ok(r),
            Err(e) => errors.push(format!("{}: {}", b.addr(), e.message)),
        }
        if inner.shutdown.load(Ordering::Acquire) {
            break;
        }
    }
    errors.dedup();
    Err(Error::new(
        error::ALL_BROKERS_DOWN,
        format!("no broker answered a metadata request ({})", errors.join("; ")),
    ))
}

/// Applies a metadata response. Returns true when another refresh is needed soon.
fn apply_metadata(inner: &Inner, resp: MetadataResponse) -> bool {
    let mut again = false;
    {
        let mut brokers = inner.brokers.write();
        for b in &resp.brokers {
            let port = b.port as u16;
            let replace = match brokers.get(&b.node_id) {
                Some(old) => old.host != b.host || old.port != port,
                None => true,
            };
            if replace {
                brokers.insert(
                    b.node_id,
                    Broker::new(b.node_id, b.host.clone(), port, inner.conn_settings.clone()),
                );
            }
        }
    }
    let topics: HashMap<Arc<str>, Arc<TopicHandle>, super::FnvBuild> = inner.topics.read().clone();
    for t in &resp.topics {
        let Some(name) = t.name.as_deref() else { continue };
        let Some(handle) = topics.get(name) else { continue };
        if t.error_code != 0 {
            let code = t.error_code as i32;
            let err = Error::new(
                code,
                format!("metadata for topic \"{name}\": {}", error::description(code)),
            );
            handle.meta.write().last_error = Some(err.clone());
            if error::is_retriable(code) {
                again = true;
            } else {
                inner.fail_pending(handle, &err, None);
            }
            continue;
        }
        let mut parts: Vec<(i32, i32)> = t
            .partitions
            .iter()
            .map(|p| {
                (
                    p.partition_index,
                    if p.error_code == 0 || p.leader_id >= 0 { p.leader_id } else { -1 },
                )
            })
            .collect();
        parts.sort();
        let mut newly_known = false;
        {
            let mut meta = handle.meta.write();
            meta.last_error = None;
            let have = meta.partitions.len();
            let mut added = Vec::new();
            for &(idx, leader) in &parts {
                if leader < 0 {
                    again = true;
                }
                let idx = idx as usize;
                if idx < have {
                    meta.partitions[idx].leader.store(leader, Ordering::Release);
                } else if idx == meta.partitions.len() {
                    let pq = PartitionQueue::new(handle.name.clone(), idx as i32, leader);
                    meta.partitions.push(pq.clone());
                    added.push(pq);
                }
            }
            // `known` is set only after the pending records are in their
            // partitions (below), so no newer record can overtake them.
            if !meta.known && !meta.partitions.is_empty() {
                newly_known = true;
            }
            if !added.is_empty() {
                inner.all_partitions.write().extend(added);
            }
        }
        if newly_known || !handle.pending.lock().is_empty() {
            inner.pending_to_partitions_then_mark_known(handle);
        }
    }
    again
}

struct InFlight {
    pq: Arc<PartitionQueue>,
    batch: Batch,
}

pub(crate) async fn sender_loop(inner: Arc<Inner>) {
    let linger = Duration::from_millis(inner.cfg.linger_ms);
    let delivery_timeout = Duration::from_millis(inner.cfg.delivery_timeout_ms);
    let max_in_flight = inner.cfg.max_in_flight;
    let max_request = inner.cfg.max_request_size;
    // The partitions with something open, ready or in flight.
    let mut active: Vec<Arc<PartitionQueue>> = Vec::new();
    loop {
        if inner.shutdown.load(Ordering::Acquire) {
            return;
        }
        let now = Instant::now();
        let opened = inner.core.schedule.begin_pass(now, linger);
        let mut next_wake = now + Duration::from_millis(500);
        let flushing = inner.flushing.load(Ordering::Acquire) > 0;
        let mut need_metadata = false;
        // Idempotence: nothing is sent without a producer id; a wanted epoch
        // bump waits until nothing is in flight.
        let mut idem: Option<(i64, i16)> = None;
        let mut idem_blocked = inner.is_fatal.load(Ordering::Acquire);
        if inner.cfg.idempotence && !idem_blocked {
            let mut ph = inner.pid.lock();
            match *ph {
                PidPhase::Ready { pid, epoch } => idem = Some((pid, epoch)),
                // A transactional producer gets its id from kp_init_transactions.
                PidPhase::Missing if inner.txn.is_some() => idem_blocked = true,
                PidPhase::Missing => {
                    *ph = PidPhase::Requesting;
                    tokio::spawn(idempotence::init_producer_id(inner.clone(), None));
                    idem_blocked = true;
                }
                PidPhase::BumpWanted { pid, epoch } => {
                    if total_in_flight(&inner) == 0 {
                        *ph = PidPhase::Requesting;
                        tokio::spawn(idempotence::init_producer_id(
                            inner.clone(),
                            Some((pid, epoch)),
                        ));
                    }
                    idem_blocked = true;
                }
                PidPhase::Requesting => idem_blocked = true,
            }
        }
        inner.core.take_activated(&mut active);
        let parts = std::mem::take(&mut active);
        let mut requests: HashMap<i32, (Arc<Broker>, Vec<InFlight>, usize)> = HashMap::new();
        let mut more_ready = false;
        let n = parts.len();
        for i in 0..n {
            // The list comes back rotated by one each pass: every
            // partition gets its turn at the head of the requests.
            let pq = &parts[(i + 1) % n];
            let mut expired = Vec::new();
            let mut st = pq.state.lock();
            // Expire what waited too long (never what is in flight).
            while let Some(front) = st.ready.front() {
                if now.duration_since(front.created) >= delivery_timeout {
                    expired.push(st.ready.pop_front().expect("front"));
                } else {
                    break;
                }
            }
            if let Some(open) = &st.open {
                if now.duration_since(open.created) >= delivery_timeout {
                    expired.extend(st.open.take());
                }
            }
            let leader = pq.leader.load(Ordering::Acquire);
            let broker = if leader >= 0 { inner.broker(leader) } else { None };
            if let Some(open) = &st.open {
                let due = open.created + linger;
                if open.full || flushing || now >= due {
                    // A due batch stays open, and keeps growing, until this
                    // pass can really send it: closing it early would leave
                    // a queue of tiny batches behind a busy broker.
                    let can_send_now = st.ready.is_empty()
                        && !idem_blocked
                        && broker.as_ref().is_some_and(|b| {
                            b.in_flight.load(Ordering::Acquire) < max_in_flight
                                && b.throttle_remaining().is_none()
                        });
                    if can_send_now {
                        let mut b = st.open.take().expect("open");
                        b.settle(0);
                        st.ready.push_back(b);
                    } else if let Some(rem) = broker.as_ref().and_then(|b| b.throttle_remaining()) {
                        next_wake = next_wake.min(now + rem);
                    } else if broker.is_none() {
                        need_metadata = true;
                    }
                } else {
                    next_wake = next_wake.min(due);
                }
            }
            if !st.ready.is_empty() {
                match broker {
                    None => need_metadata = true,
                    Some(broker) => {
                        let front = st.ready.front().expect("nonempty");
                        if let Some(t) = front.retry_at.filter(|t| *t > now) {
                            next_wake = next_wake.min(t);
                        } else if let Some(rem) = broker.throttle_remaining() {
                            next_wake = next_wake.min(now + rem);
                        } else if !idem_blocked
                            && broker.in_flight.load(Ordering::Acquire) < max_in_flight
                            // A retry with its sequence goes alone, after
                            // every earlier request of the partition is back.
                            && (front.base_seq.is_none() || st.in_flight == 0)
                            && inner.txn.as_ref().is_none_or(|t| t.partition_ready(&pq.topic.name, pq.partition))
                        {
                            let entry = requests
                                .entry(leader)
                                .or_insert_with(|| (broker.clone(), Vec::new(), 0));
                            let size = front.size();
                            if entry.2 == 0 || entry.2 + size <= max_request {
                                let mut batch = st.ready.pop_front().expect("front");
                                batch.sent_generation =
                                    inner.purge_generation.load(Ordering::Acquire);
                                if let Some((pid, epoch)) = idem {
                                    let seq = match batch.base_seq {
                                        Some(s) => s,
                                        None => {
                                            let s = st.next_seq;
                                            st.next_seq = next_sequence(s, batch.record_count());
                                            batch.base_seq = Some(s);
                                            s
                                        }
                                    };
                                    batch.stamp = ProducerStamp {
                                        producer_id: pid,
                                        producer_epoch: epoch,
                                        base_sequence: seq,
                                        transactional: inner.txn.is_some(),
                                    };
                                }
                                entry.2 += size + 32;
                                entry.1.push(InFlight { pq: pq.clone(), batch });
                                st.in_flight += 1;
                                if !st.ready.is_empty() {
                                    more_ready = true;
                                }
                            } else {
                                more_ready = true;
                            }
                        }
                    }
                }
            }
            if st.idle() {
                st.queued = false;
            } else {
                active.push(pq.clone());
            }
            drop(st);
            if expired.iter().any(|b| b.base_seq.is_some()) {
                // A sequenced batch gives up: later sequences cannot line up.
                idempotence::request_bump(&inner);
            }
            for b in expired {
                let p = b.persistence_on_failure();
                let err = match &b.last_error {
                    Some(last) => Error::new(
                        last.code,
                        format!(
                            "{} (delivery.timeout.ms of {} ms expired after {} attempt(s))",
                            last.message,
                            delivery_timeout.as_millis(),
                            b.attempts
                        ),
                    ),
                    None => Error::new(
                        error::TIMED_OUT,
                        format!(
                            "delivery.timeout.ms ({} ms) expired before the batch for {}-{} could be sent",
                            delivery_timeout.as_millis(),
                            pq.topic.name,
                            pq.partition
                        ),
                    ),
                };
                b.fail(Arc::new(err), p);
            }
        }
        if need_metadata {
            inner.request_metadata();
        }
        if let Some(t) = &inner.txn {
            if !t.to_add.lock().is_empty() {
                tokio::spawn(t.clone().add_pending_partitions(inner.clone()));
            }
        }
        let sent_any = !requests.is_empty();
        for (_, (broker, batches, _)) in requests {
            broker.in_flight.fetch_add(1, Ordering::AcqRel);
            // Sequence numbers were assigned in this order: the requests
            // must reach the broker in it too (see Broker::produce_turn).
            let ticket = broker.take_produce_ticket();
            tokio::spawn(send_produce(inner.clone(), broker, batches, ticket));
        }
        if sent_any && more_ready {
            tokio::task::yield_now().await;
            continue;
        }
        let next_wake = inner.core.schedule.plan(next_wake, now, opened, linger);
        tokio::select! {
            _ = inner.sender_wake.notified() => {}
            _ = tokio::time::sleep_until(next_wake.into()) => {}
            _ = inner.shutdown_notify.notified() => return,
        }
    }
}

async fn send_produce(
    inner: Arc<Inner>,
    broker: Arc<Broker>,
    mut batches: Vec<InFlight>,
    ticket: u64,
) {
    let acks = inner.cfg.acks;
    // Until the request is queued on the connection (or given up), later
    // requests to this broker wait.
    let turn = broker.produce_turn(ticket).await;
    // Seal (compress + header + CRC) once; retries reuse the sealed bytes.
    let mut sealed_ok = Vec::with_capacity(batches.len());
    for mut f in batches.drain(..) {
        if f.batch.sealed.is_some() && f.batch.sealed_stamp != f.batch.stamp {
            let b = f.batch.sealed.take().expect("sealed");
            f.batch.sealed = Some(restamp_bytes(b, f.batch.stamp));
            f.batch.sealed_stamp = f.batch.stamp;
        }
        if f.batch.sealed.is_none() {
            let builder = f.batch.builder.take().expect("unsealed batch has a builder");
            match builder.seal(inner.cfg.compression, f.batch.stamp) {
                Ok(s) => {
                    inner.metrics.batch_sealed(s.bytes.len(), s.uncompressed_size);
                    f.batch.sealed = Some(s.bytes);
                    f.batch.sealed_stamp = f.batch.stamp;
                }
                Err(e) => {
                    f.pq.state.lock().in_flight -= 1;
                    f.batch.fail(
                        Arc::new(Error::new(error::INTERNAL, format!("compression failed: {e}"))),
                        Persistence::NotPersisted,
                    );
                    continue;
                }
            }
        }
        sealed_ok.push(f);
    }
    let batches = sealed_ok;
    if batches.is_empty() {
        broker.in_flight.fetch_sub(1, Ordering::AcqRel);
        inner.sender_wake.notify_one();
        return;
    }
    let mut topic_data: Vec<TopicProduceData> = Vec::new();
    for f in &batches {
        let name = &*f.pq.topic.name;
        let pd = PartitionProduceData {
            index: f.pq.partition,
            records: f.batch.sealed.clone().expect("sealed"),
        };
        match topic_data.iter_mut().find(|t| t.name == name) {
            Some(t) => t.partition_data.push(pd),
            None => topic_data
                .push(TopicProduceData { name: name.to_string(), partition_data: vec![pd] }),
        }
    }
    let req = ProduceRequest {
        transactional_id: inner.txn.as_ref().map(|t| t.id.clone()),
        acks,
        timeout_ms: inner.cfg.request_timeout_ms.min(i32::MAX as u64) as i32,
        topic_data,
    };
    let mut batches = batches;
    for f in batches.iter_mut() {
        f.batch.in_request = true;
    }
    // acks=0: the broker sends no response (Ok(None) once written).
    let queued =
        broker.queue(&req, inner.txn.as_ref().map(|t| t.produce_version_cap()), acks != 0).await;
    drop(turn);
    // KIP-219: from Produce v6 on the broker answers at once and the client
    // holds back while throttled (before, the broker delayed the answer).
    let mut client_throttles = false;
    let result: Result<Option<ProduceResponse>, Error> = match queued {
        Ok(q) => {
            client_throttles = q.version() >= 6;
            inner.metrics.request_sent();
            let sent_at = Instant::now();
            let r = broker.finish::<ProduceRequest>(q).await;
            if let Ok(Some(resp)) = &r {
                inner.metrics.response(sent_at.elapsed(), resp.throttle_time_ms);
            }
            r
        }
        Err(e) => Err(e),
    };
    broker.in_flight.fetch_sub(1, Ordering::AcqRel);
    let now = Instant::now();
    for f in batches.iter_mut() {
        f.batch.in_request = false;
    }
    // Purged while in flight (kp_purge): report that, whatever the answer.
    let generation = inner.purge_generation.load(Ordering::Acquire);
    let (purged, batches): (Vec<InFlight>, Vec<InFlight>) =
        batches.into_iter().partition(|f| f.batch.sent_generation < generation);
    for f in purged {
        f.pq.state.lock().in_flight -= 1;
        let err = Arc::new(Error::new(
            error::PURGED_IN_FLIGHT,
            "purged by kp_purge while its request was in flight; it may or may not be in the log",
        ));
        match &inner.txn {
            Some(t) => t.batch_failed(&err),
            None if f.batch.base_seq.is_some() => idempotence::request_bump(&inner),
            None => {}
        }
        f.batch.fail(err, Persistence::PossiblyPersisted);
    }
    match result {
        Ok(None) => {
            for f in batches {
                f.pq.state.lock().in_flight -= 1;
                f.batch.succeed(-1, -1, Persistence::PossiblyPersisted);
            }
        }
        Ok(Some(resp)) => {
            if resp.throttle_time_ms > 0 && client_throttles {
                // Responses to pipelined requests may carry shorter times:
                // keep the latest end.
                let until = now + Duration::from_millis(resp.throttle_time_ms as u64);
                let mut t = broker.throttled_until.lock();
                *t = Some(t.map_or(until, |old| old.max(until)));
            }
            // Brokers answer in request order: look at the next expected
            // position first, so a request of n partitions costs O(n), not
            // O(n^2).
            let mut at = (0usize, 0usize);
            for f in batches {
                let pr = response_for(&resp, &mut at, &f.pq.topic.name, f.pq.partition);
                match pr {
                    None => retry_or_fail(
                        &inner,
                        f,
                        Error::new(
                            error::BAD_RESPONSE,
                            "the produce response did not mention the partition",
                        ),
                        now,
                    ),
                    // DUPLICATE_SEQUENCE_NUMBER: the broker already has it.
                    Some(p)
                        if p.error_code == 0
                            || (p.error_code as i32 == error::DUPLICATE_SEQUENCE_NUMBER
                                && f.batch.base_seq.is_some()) =>
                    {
                        {
                            let mut st = f.pq.state.lock();
                            st.in_flight -= 1;
                            if let Some(seq) = f.batch.base_seq {
                                st.acked_next = next_sequence(seq, f.batch.record_count());
                            }
                        }
                        f.batch.succeed(
                            p.base_offset,
                            p.log_append_time_ms,
                            Persistence::Persisted,
                        );
                    }
                    Some(p) => {
                        let code = p.error_code as i32;
                        let mut msg = format!(
                            "broker {} rejected the batch for {}-{}: {}",
                            broker.node_id,
                            f.pq.topic.name,
                            f.pq.partition,
                            error::description(code)
                        );
                        if let Some(m) = p.error_message.as_deref().filter(|m| !m.is_empty()) {
                            msg.push_str(&format!(" ({m})"));
                        }
                        if let Some(r) = p.record_errors.first() {
                            if let Some(m) = r.batch_index_error_message.as_deref() {
                                msg.push_str(&format!(" [record {}: {m}]", r.batch_index));
                            }
                        }
                        let mut f = f;
                        // The broker answered. Only these two codes leave the
                        // batch possibly written (timed out waiting for
                        // replication, or written to the leader only).
                        if code == error::REQUEST_TIMED_OUT
                            || code == error::NOT_ENOUGH_REPLICAS_AFTER_APPEND
                        {
                            f.batch.ambiguous = true;
                        }
                        retry_or_fail(&inner, f, Error::new(code, msg), now);
                    }
                }
            }
        }
        Err(e) => {
            if matches!(e.code, error::REQUEST_TIMED_OUT | error::TRANSPORT | error::BAD_RESPONSE) {
                inner.request_metadata();
            }
            for mut f in batches {
                f.batch.ambiguous = true;
                retry_or_fail(&inner, f, e.clone(), now);
            }
        }
    }
    inner.sender_wake.notify_one();
}

/// The partition's entry in a produce response; `at` (topic, partition
/// positions) is where the previous lookup matched and is advanced.
fn response_for<'a>(
    resp: &'a ProduceResponse,
    at: &mut (usize, usize),
    topic: &str,
    partition: i32,
) -> Option<&'a crate::protocol::messages::PartitionProduceResponse> {
    let hit = |ti: usize, pi: usize| {
        resp.responses.get(ti).filter(|t| t.name == topic).and_then(|t| {
            t.partition_responses.get(pi).filter(|p| p.index == partition).map(|p| (ti, pi, p))
        })
    };
    let found = hit(at.0, at.1).or_else(|| hit(at.0 + 1, 0)).or_else(|| {
        resp.responses.iter().enumerate().filter(|(_, t)| t.name == topic).find_map(|(ti, t)| {
            t.partition_responses.iter().position(|p| p.index == partition).map(|pi| {
                let p = &t.partition_responses[pi];
                (ti, pi, p)
            })
        })
    });
    found.map(|(ti, pi, p)| {
        *at = (ti, pi + 1);
        p
    })
}

fn retry_or_fail(inner: &Inner, f: InFlight, err: Error, now: Instant) {
    let InFlight { pq, mut batch } = f;
    let delivery_timeout = Duration::from_millis(inner.cfg.delivery_timeout_ms);
    if error::needs_metadata_refresh(err.code) {
        inner.request_metadata();
    }
    let mut st = pq.state.lock();
    st.in_flight -= 1;
    let sequenced = batch.base_seq.is_some();
    // Idempotence errors that an epoch bump (KIP-360) or an in-order retry
    // resolves, for a non-transactional producer.
    let mut retriable = err.retriable();
    if inner.txn.is_some() {
        // Transactional: epoch and sequence problems (and PRODUCER_FENCED,
        // which may be a transaction timeout) make the transaction abortable;
        // the abort's epoch bump then tells a real fence (fatal) apart.
        match err.code {
            error::PRODUCER_FENCED
            | error::INVALID_PRODUCER_EPOCH
            | error::OUT_OF_ORDER_SEQUENCE_NUMBER
            | error::UNKNOWN_PRODUCER_ID
            | error::TRANSACTION_ABORTABLE => {
                retriable = false;
            }
            _ => {}
        }
    } else if sequenced {
        match err.code {
            error::OUT_OF_ORDER_SEQUENCE_NUMBER | error::UNKNOWN_PRODUCER_ID => {
                // If an earlier batch is still unacknowledged, this one only
                // has to wait for it. If it is the next the broker should
                // expect, the broker lost or disagrees with our state; if a
                // later sequence was acknowledged already (it overtook this
                // one, e.g. on a new connection after the old one was
                // closed), this one can never line up. Both need a bump.
                if !batch.base_seq.is_some_and(|s| waits_for_earlier(s, st.acked_next, st.next_seq))
                {
                    idempotence::request_bump(inner);
                }
                retriable = true;
            }
            error::INVALID_PRODUCER_EPOCH | error::PRODUCER_FENCED => {
                idempotence::request_bump(inner);
                retriable = true;
            }
            _ => {}
        }
    }
    let expired = now.duration_since(batch.created) >= delivery_timeout;
    if retriable
        && batch.attempts < inner.cfg.retries
        && !expired
        && !inner.shutdown.load(Ordering::Acquire)
    {
        batch.attempts += 1;
        inner.metrics.batch_retried();
        batch.last_error = Some(err);
        batch.retry_at = Some(
            now + backoff(
                inner.cfg.retry_backoff_ms,
                inner.cfg.retry_backoff_max_ms,
                batch.attempts,
            ),
        );
        st.requeue(batch);
        return;
    }
    drop(st);
    match &inner.txn {
        Some(t) => t.batch_failed(&err),
        None if sequenced => {
            // This sequence will never be acknowledged: later ones cannot line up.
            idempotence::request_bump(inner);
        }
        None => {}
    }
    let p = batch.persistence_on_failure();
    let err = if expired && retriable {
        // Keep the broker's code: it says what went wrong; the message says
        // that the time ran out.
        Error::new(
            err.code,
            format!(
                "{} (delivery.timeout.ms of {} ms expired after {} attempt(s))",
                err.message,
                delivery_timeout.as_millis(),
                batch.attempts + 1
            ),
        )
    } else if retriable {
        Error::new(
            err.code,
            format!(
                "{} (gave up after {} attempt(s); retries={})",
                err.message,
                batch.attempts + 1,
                inner.cfg.retries
            ),
        )
    } else {
        err
    };
    batch.fail(Arc::new(err), p);
}

/// Kafka sequences wrap from i32::MAX to 0: they count modulo this.
const SEQUENCE_SPACE: i64 = i32::MAX as i64 + 1;

fn next_sequence(seq: i32, count: usize) -> i32 {
    ((seq as i64 + count as i64) % SEQUENCE_SPACE) as i32
}

/// Whether a batch starting at `seq` comes after the next sequence the
/// broker expects (`acked_next`) and before the next one to assign: then an
/// earlier batch is still unacknowledged and an OUT_OF_ORDER_SEQUENCE_NUMBER
/// only says it has to wait for it.
fn waits_for_earlier(seq: i32, acked_next: i32, next_seq: i32) -> bool {
    let ahead = (seq as i64 - acked_next as i64).rem_euclid(SEQUENCE_SPACE);
    let outstanding = (next_seq as i64 - acked_next as i64).rem_euclid(SEQUENCE_SPACE);
    ahead > 0 && ahead < outstanding
}

fn total_in_flight(inner: &Inner) -> usize {
    inner.brokers.read().values().map(|b| b.in_flight.load(Ordering::Acquire)).sum::<usize>()
        + inner.bootstrap.iter().map(|b| b.in_flight.load(Ordering::Acquire)).sum::<usize>()
}

#[cfg(test)]
#[path = "ordering_tests.rs"]
mod ordering_tests;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn out_of_order_waits_only_behind_an_unacknowledged_batch() {
        // Broker expects 100; 100..300 assigned.
        assert!(!waits_for_earlier(100, 100, 300), "the next expected batch: a real gap");
        assert!(waits_for_earlier(150, 100, 300), "100..150 still unacknowledged");
        assert!(!waits_for_earlier(0, 100, 300), "overtaken: 100 acknowledged past it");
        assert!(!waits_for_earlier(40, 100, 100), "nothing outstanding");
        // Across the wrap from i32::MAX to 0.
        assert!(waits_for_earlier(5, i32::MAX - 10, 50));
        assert!(!waits_for_earlier(i32::MAX - 20, i32::MAX - 10, 50));
        assert_eq!(next_sequence(i32::MAX, 1), 0);
    }
}
