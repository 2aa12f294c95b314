//! One produce request: seal its batches, build the request, queue it on the
//! broker's connection in sequence order, and handle the response (success,
//! retry with backoff, or a failure report).

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::error::{self, Error};
use crate::log::kp_log;
use crate::protocol::messages::{
    NodeEndpoint, PartitionProduceData, PartitionProduceResponse, ProduceRequest, ProduceResponse,
    TopicProduceData,
};
use crate::protocol::record_batch::restamp_bytes;

use super::super::accumulator::Batch;
use super::super::backoff::Backoff;
use super::super::conn::{Broker, Turn};
use super::super::idempotence;
use super::super::metadata::follow_current_leader;
use super::super::report::Persistence;
use super::super::{group_by_topic, Inner};
use super::{expired_error, next_sequence, waits_for_earlier, InFlight};

/// When an answer (or its failure) came back, and the one jitter draw that
/// the retries of its batches share: batches that fail together retry
/// together, in one request, not each at its own random moment (after a new
/// topic's NOT_LEADER_OR_FOLLOWER answers that was one request per batch).
#[derive(Clone, Copy)]
struct Answered {
    now: Instant,
    jitter: f64,
}

pub(super) async fn send_produce(
    inner: Arc<Inner>,
    broker: Arc<Broker>,
    batches: Vec<InFlight>,
    ticket: u64,
) {
    // Until the request is queued on the connection (or given up), later
    // requests to this broker wait.
    let turn = broker.produce_turn(ticket).await;
    let mut batches = seal_all(&inner, batches);
    if batches.is_empty() {
        drop(turn);
        // Every ticket takes its report turn too.
        drop(broker.report_turn(ticket).await);
        broker.in_flight.fetch_sub(1, Ordering::AcqRel);
        inner.sender_wake.notify_one();
        return;
    }
    let req = build_request(&inner, &batches);
    for f in batches.iter_mut() {
        f.batch.in_request = true;
    }
    let (result, client_throttles) = exchange(&inner, &broker, &req, turn).await;
    // The request's references to the sealed batches go now, so that a
    // batch that ends below holds the only one and its buffer can be reused.
    drop(req);
    // Answers are handled (and reported) in request order; nothing below
    // awaits, so a turn ends soon after it comes.
    let _reporting = broker.report_turn(ticket).await;
    broker.in_flight.fetch_sub(1, Ordering::AcqRel);
    let now = Instant::now();
    let answered = Answered { now, jitter: fastrand::f64() };
    for f in batches.iter_mut() {
        f.batch.in_request = false;
    }
    let batches = report_purged(&inner, batches);
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
                handle_partition_response(&inner, &broker, f, pr, &resp.node_endpoints, answered);
            }
        }
        Err(e) => {
            if matches!(e.code, error::REQUEST_TIMED_OUT | error::TRANSPORT | error::BAD_RESPONSE) {
                inner.request_metadata();
            }
            for mut f in batches {
                f.batch.ambiguous = true;
                retry_or_fail(&inner, f, e.clone(), answered, false);
            }
        }
    }
    inner.sender_wake.notify_one();
}

/// Queues the request in its turn and waits for the answer (None for
/// acks=0). Also says whether the client must hold back when the answer
/// asks for throttling (KIP-219: from Produce v6 on the broker answers at
/// once and the client waits; before, the broker delayed the answer).
async fn exchange(
    inner: &Inner,
    broker: &Broker,
    req: &ProduceRequest,
    turn: Turn<'_>,
) -> (Result<Option<ProduceResponse>, Error>, bool) {
    let cap = inner.txn.as_ref().map(|t| t.produce_version_cap());
    // acks=0: the broker sends no response (Ok(None) once written).
    let queued = broker.queue(req, cap, req.acks != 0).await;
    drop(turn);
    let q = match queued {
        Ok(q) => q,
        Err(e) => return (Err(e), false),
    };
    let client_throttles = q.version() >= 6;
    inner.metrics.request_sent();
    let sent_at = Instant::now();
    let r = broker.finish::<ProduceRequest>(q).await;
    if let Ok(Some(resp)) = &r {
        inner.metrics.response(sent_at.elapsed(), resp.throttle_time_ms);
    }
    (r, client_throttles)
}

/// Seals (compress + header + CRC) each batch once; retries reuse the
/// sealed bytes, restamped when the producer id/epoch/sequence changed. A
/// batch that cannot be sealed is reported and left out.
fn seal_all(inner: &Inner, batches: Vec<InFlight>) -> Vec<InFlight> {
    // filter_map + collect on a Vec's own iterator reuses its allocation: no
    // second request-sized block per request.
    batches
        .into_iter()
        .filter_map(|mut f| {
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
                        if let Some(buf) = s.spent {
                            inner.core.spare_buffers.give(buf);
                        }
                        f.batch.sealed = Some(s.bytes);
                        f.batch.sealed_stamp = f.batch.stamp;
                    }
                    Err(e) => {
                        f.pq.state.lock().in_flight -= 1;
                        f.batch.fail(
                            Arc::new(Error::new(
                                error::INTERNAL,
                                format!("compression failed: {e}"),
                            )),
                            Persistence::NotPersisted,
                        );
                        return None;
                    }
                }
            }
            Some(f)
        })
        .collect()
}

fn build_request(inner: &Inner, batches: &[InFlight]) -> ProduceRequest {
    let partitions = batches.iter().map(|f| {
        let pd = PartitionProduceData {
            index: f.pq.partition,
            records: f.batch.sealed.clone().expect("sealed"),
        };
        (&*f.pq.topic.name, pd)
    });
    ProduceRequest {
        transactional_id: inner.txn.as_ref().map(|t| t.id.clone()),
        acks: inner.cfg.acks,
        timeout_ms: inner.cfg.request_timeout_ms.min(i32::MAX as u64) as i32,
        topic_data: group_by_topic(partitions)
            .into_iter()
            .map(|(name, partition_data)| TopicProduceData { name, partition_data })
            .collect(),
    }
}

/// Purged while in flight (kp_purge): reports that, whatever the answer.
/// Returns the other batches.
fn report_purged(inner: &Inner, batches: Vec<InFlight>) -> Vec<InFlight> {
    let generation = inner.purge_generation.load(Ordering::Acquire);
    if batches.iter().all(|f| f.batch.sent_generation >= generation) {
        return batches; // nothing purged: keep the request's own vector
    }
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
            None if f.batch.base_seq.is_some() => {
                idempotence::sequence_broken(inner, f.batch.sent_under())
            }
            None => {}
        }
        f.batch.fail(err, Persistence::PossiblyPersisted);
    }
    batches
}

/// The partition's entry in a produce response; `at` (topic, partition
/// positions) is just past where the previous lookup matched.
fn response_for<'a>(
    resp: &'a ProduceResponse,
    at: &mut (usize, usize),
    topic: &str,
    partition: i32,
) -> Option<&'a PartitionProduceResponse> {
    let hit = |ti: usize, pi: usize| {
        let t = resp.responses.get(ti).filter(|t| t.name == topic)?;
        t.partition_responses.get(pi).filter(|p| p.index == partition).map(|_| (ti, pi))
    };
    let found = hit(at.0, at.1).or_else(|| hit(at.0 + 1, 0)).or_else(|| {
        resp.responses.iter().enumerate().filter(|(_, t)| t.name == topic).find_map(|(ti, t)| {
            t.partition_responses.iter().position(|p| p.index == partition).map(|pi| (ti, pi))
        })
    });
    found.map(|(ti, pi)| {
        *at = (ti, pi + 1);
        &resp.responses[ti].partition_responses[pi]
    })
}

fn handle_partition_response(
    inner: &Inner,
    broker: &Broker,
    mut f: InFlight,
    pr: Option<&PartitionProduceResponse>,
    endpoints: &[NodeEndpoint],
    at: Answered,
) {
    let Some(p) = pr else {
        let e =
            Error::new(error::BAD_RESPONSE, "the produce response did not mention the partition");
        return retry_or_fail(inner, f, e, at, false);
    };
    let code = p.error_code as i32;
    // DUPLICATE_SEQUENCE_NUMBER: the broker already has it.
    if code == 0 || (code == error::DUPLICATE_SEQUENCE_NUMBER && f.batch.base_seq.is_some()) {
        {
            let mut st = f.pq.state.lock();
            st.in_flight -= 1;
            if let Some(seq) = f.batch.base_seq {
                st.acked_next = next_sequence(seq, f.batch.record_count());
                st.acked_by = f.batch.sent_under();
            }
        }
        f.batch.succeed(p.base_offset, p.log_append_time_ms, Persistence::Persisted);
        return;
    }
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
    // The broker answered. Only these two codes leave the batch possibly
    // written (timed out waiting for replication, or written to the leader
    // only).
    if code == error::REQUEST_TIMED_OUT || code == error::NOT_ENOUGH_REPLICAS_AFTER_APPEND {
        f.batch.ambiguous = true;
    }
    // KIP-951: the answer names the partition's new leader. Moving there now
    // saves the metadata round trip (still asked for, in the background).
    // A batch refused by a broker that no longer leads its partition (moved
    // by this answer, or by an earlier one or metadata while it was in
    // flight) retries at once: its new leader has not refused it.
    let moved = matches!(code, error::NOT_LEADER_OR_FOLLOWER | error::FENCED_LEADER_EPOCH) && {
        if let Some(l) = p.current_leader {
            follow_current_leader(inner, &f.pq, l, endpoints);
        }
        let now = f.pq.leader();
        now >= 0 && now != broker.node_id
    };
    retry_or_fail(inner, f, Error::new(code, msg), at, moved);
}

/// Whether a failed batch may be retried. Transactional: epoch and sequence
/// problems (and PRODUCER_FENCED, which may be a transaction timeout) make
/// the transaction abortable; the abort's epoch bump then tells a real
/// fence (fatal) apart. Idempotent: those an epoch bump (KIP-360) or an
/// in-order retry resolves are retried (asking for the bump when needed).
fn retriable_for_producer(
    inner: &Inner,
    err: &Error,
    batch: &Batch,
    acked_next: i32,
    next_seq: i32,
) -> bool {
    let (seq, sent_under) = (batch.base_seq, batch.sent_under());
    let retriable = err.retriable();
    if inner.txn.is_some() {
        return match err.code {
            error::PRODUCER_FENCED
            | error::INVALID_PRODUCER_EPOCH
            | error::OUT_OF_ORDER_SEQUENCE_NUMBER
            | error::UNKNOWN_PRODUCER_ID
            | error::TRANSACTION_ABORTABLE => false,
            _ => retriable,
        };
    }
    let Some(seq) = seq else { return retriable };
    match err.code {
        error::OUT_OF_ORDER_SEQUENCE_NUMBER | error::UNKNOWN_PRODUCER_ID => {
            // If an earlier batch is still unacknowledged, this one only has
            // to wait for it. If it is the next the broker should expect,
            // the broker lost or disagrees with our state; if a later
            // sequence was acknowledged already (it overtook this one, e.g.
            // on a new connection after the old one was closed), this one
            // can never line up. Both need a bump.
            if !waits_for_earlier(seq, acked_next, next_seq) {
                idempotence::sequence_broken(inner, sent_under);
            }
            true
        }
        error::INVALID_PRODUCER_EPOCH | error::PRODUCER_FENCED => {
            idempotence::sequence_broken(inner, sent_under);
            true
        }
        _ => retriable,
    }
}

/// `leader_moved`: the partition has a new leader since the batch was sent,
/// so the retry goes without backoff (as Java's producer does).
fn retry_or_fail(inner: &Inner, f: InFlight, err: Error, at: Answered, leader_moved: bool) {
    let now = at.now;
    let InFlight { pq, mut batch } = f;
    let delivery_timeout = Duration::from_millis(inner.cfg.delivery_timeout_ms);
    if error::needs_metadata_refresh(err.code) {
        inner.request_metadata();
    }
    let mut st = pq.state.lock();
    st.in_flight -= 1;
    let sequenced = batch.base_seq.is_some();
    if let Some(seq) = batch.base_seq.filter(|_| err.code == error::OUT_OF_ORDER_SEQUENCE_NUMBER) {
        // Not in the log, nor anything after it: no longer ambiguous.
        batch.ambiguous = false;
        st.mark_unwritten_from(seq);
    }
    let mut retriable = retriable_for_producer(inner, &err, &batch, st.acked_next, st.next_seq);
    let unresolvable = sequenced
        && batch.ambiguous
        && matches!(
            err.code,
            error::UNKNOWN_PRODUCER_ID | error::INVALID_PRODUCER_EPOCH | error::PRODUCER_FENCED
        );
    let err = if unresolvable && retriable {
        // An earlier attempt may be in the log, and the broker no longer
        // checks this producer id/epoch: a retry under a bumped epoch could
        // write it twice. Reported as possibly persisted instead.
        retriable = false;
        Error::new(
            err.code,
            format!(
                "{} (an earlier attempt may have been written and the broker can no longer \
                 tell; not retried under a new epoch, so it is not written twice)",
                err.message
            ),
        )
    } else {
        err
    };
    let expired = now.duration_since(batch.created) >= delivery_timeout;
    if retriable
        && batch.attempts < inner.cfg.retries
        && !expired
        && !inner.lifecycle.is_shut_down()
    {
        batch.attempts += 1;
        kp_log!(inner.cfg.log, INFO, PRODUCER, "retrying produce requests after {err}");
        inner.metrics.batch_retried();
        batch.last_error = Some(err);
        let backoff =
            Backoff::from_millis(inner.cfg.retry_backoff_ms, inner.cfg.retry_backoff_max_ms);
        batch.retry_at =
            (!leader_moved).then(|| now + backoff.delay_with(batch.attempts, at.jitter));
        st.requeue(batch);
        return;
    }
    drop(st);
    match &inner.txn {
        Some(t) => t.batch_failed(&err),
        None if sequenced => {
            // This sequence will never be acknowledged: later ones cannot line up.
            idempotence::sequence_broken(inner, batch.sent_under());
        }
        None => {}
    }
    let p = batch.persistence_on_failure();
    let err = if expired && retriable {
        // Keep the broker's code: it says what went wrong; the message says
        // that the time ran out.
        expired_error(&err, delivery_timeout, batch.attempts + 1)
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
