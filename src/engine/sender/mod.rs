//! The sender task: each pass drains ready batches into one multi-partition
//! produce request per broker (`drain`), then sends each request on its own
//! task, which seals the batches, queues the request on the broker's
//! connection and handles the response: success, retry or a failure report
//! (`produce`). Up to max.in.flight requests per broker are outstanding.

mod drain;
mod produce;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::accumulator::{sequences_between, Batch, PartitionQueue, SEQUENCE_SPACE};
use super::conn::Broker;
use super::idempotence::{self, PidPhase};
use super::{Inner, ProducerId};

use drain::Drain;

/// A batch on its way to the broker, with its partition.
struct InFlight {
    pq: Arc<PartitionQueue>,
    batch: Batch,
}

/// What the producer id allows the sender this pass.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Gate {
    /// Nothing is sent (no producer id yet, a bump pending, or fatal).
    Closed,
    /// No idempotence: batches go without sequence numbers.
    Plain,
    /// Batches get sequence numbers under this producer id.
    Sequenced(ProducerId),
}

pub(crate) async fn sender_loop(inner: Arc<Inner>) {
    let linger = Duration::from_millis(inner.cfg.linger_ms);
    // The partitions with something open, ready or in flight.
    let mut active: Vec<Arc<PartitionQueue>> = Vec::new();
    let mut idle_until = Instant::now();
    // Where in `active` the next pass starts.
    let mut start = 0;
    loop {
        let stopped = inner.lifecycle.stopped();
        if inner.lifecycle.is_shut_down() {
            return;
        }
        let now = Instant::now();
        if now < idle_until && every_broker_busy(&inner) && !inner.lifecycle.wants_flush() {
            // No request could go now: passing over thousands of partitions
            // to find that out would only burn CPU. A response wakes the
            // sender; expiry checks still run every IDLE_PASS_GAP.
            tokio::select! {
                _ = inner.sender_wake.notified() => {}
                _ = tokio::time::sleep_until(idle_until.into()) => {}
                _ = stopped => return,
            }
            continue;
        }
        idle_until = now + IDLE_PASS_GAP;
        let opened = inner.core.schedule.begin_pass(now, linger);
        inner.core.take_activated(&mut active);
        let parts = std::mem::take(&mut active);
        let mut drain = Drain::new(&inner, now, gate(&inner));
        let n = parts.len();
        // When requests filled up, the next pass starts at the first
        // partition that did not fit (as Java's drain index); otherwise where
        // this one started. Every partition gets its turn at the head of the
        // requests, also when thousands of them are ready at once.
        let mut first_left_out = None;
        let mut first_kept = None;
        for i in 0..n {
            let pq = &parts[(start + i) % n];
            let had_room = !drain.out_of_room;
            let keep = drain.partition(pq);
            if had_room && drain.out_of_room {
                first_left_out = Some(active.len());
            }
            if keep {
                first_kept.get_or_insert(active.len());
                active.push(pq.clone());
            }
        }
        start = first_left_out.or(first_kept).unwrap_or(0);
        drain.take_held();
        if drain.need_metadata {
            inner.request_metadata();
        }
        if let Some(t) = &inner.txn {
            if t.has_partitions_to_add() {
                tokio::spawn(t.clone().add_pending_partitions(inner.clone()));
            }
        }
        let sent_any = !drain.requests.is_empty();
        let more_ready = drain.more_ready;
        let next_wake = drain.next_wake;
        for (_, r) in drain.requests {
            r.broker.in_flight.fetch_add(1, Ordering::AcqRel);
            // Sequence numbers were assigned in this order: the requests
            // must reach the broker in it too (see Broker::produce_turn).
            let ticket = r.broker.take_produce_ticket();
            tokio::spawn(produce::send_produce(inner.clone(), r.broker, r.batches, ticket));
        }
        if sent_any && more_ready {
            tokio::task::yield_now().await;
            continue;
        }
        let next_wake = inner.core.schedule.plan(next_wake, now, opened, linger);
        tokio::select! {
            _ = inner.sender_wake.notified() => {}
            _ = tokio::time::sleep_until(next_wake.into()) => {}
            _ = stopped => return,
        }
    }
}

/// Idempotence: nothing is sent without a producer id; a wanted epoch bump
/// waits until nothing is in flight (and starts InitProducerId then).
fn gate(inner: &Arc<Inner>) -> Gate {
    if inner.is_fatal.load(Ordering::Acquire) {
        return Gate::Closed;
    }
    if !inner.cfg.idempotence {
        return Gate::Plain;
    }
    let mut ph = inner.pid.lock();
    match *ph {
        PidPhase::Ready(pid) => Gate::Sequenced(pid),
        // A transactional producer gets its id from kp_init_transactions.
        PidPhase::Missing if inner.txn.is_some() => Gate::Closed,
        PidPhase::Missing => {
            *ph = PidPhase::Requesting;
            tokio::spawn(idempotence::init_producer_id(inner.clone(), None));
            Gate::Closed
        }
        PidPhase::BumpWanted(pid) => {
            if total_in_flight(inner) == 0 {
                *ph = PidPhase::Requesting;
                tokio::spawn(idempotence::init_producer_id(inner.clone(), Some(pid)));
            }
            Gate::Closed
        }
        PidPhase::Requesting => Gate::Closed,
    }
}

/// Longest gap between two full passes while every broker is busy.
const IDLE_PASS_GAP: Duration = Duration::from_millis(100);

/// Whether every known broker has max.in.flight requests outstanding.
fn every_broker_busy(inner: &Inner) -> bool {
    let brokers = inner.brokers.read();
    !brokers.is_empty()
        && brokers.values().all(|b| b.in_flight.load(Ordering::Acquire) >= inner.cfg.max_in_flight)
}

fn total_in_flight(inner: &Inner) -> usize {
    inner.all_brokers().iter().map(|b| b.in_flight.load(Ordering::Acquire)).sum()
}

/// The message of a batch that gave up because delivery.timeout.ms ran out
/// after `attempts` tries (the last failure's code and message kept).
fn expired_error(
    last: &crate::error::Error,
    timeout: Duration,
    attempts: u32,
) -> crate::error::Error {
    crate::error::Error::new(
        last.code,
        format!(
            "{} (delivery.timeout.ms of {} ms expired after {attempts} attempt(s))",
            last.message,
            timeout.as_millis(),
        ),
    )
}

fn next_sequence(seq: i32, count: usize) -> i32 {
    ((seq as i64 + count as i64) % SEQUENCE_SPACE) as i32
}

/// Whether a batch starting at `seq` comes after the next sequence the
/// broker expects (`acked_next`) and before the next one to assign: then an
/// earlier batch is still unacknowledged and an OUT_OF_ORDER_SEQUENCE_NUMBER
/// only says it has to wait for it.
fn waits_for_earlier(seq: i32, acked_next: i32, next_seq: i32) -> bool {
    let ahead = sequences_between(acked_next, seq);
    let outstanding = sequences_between(acked_next, next_seq);
    ahead > 0 && ahead < outstanding
}

/// A request being assembled for one broker.
struct RequestDraft {
    broker: Arc<Broker>,
    batches: Vec<InFlight>,
    /// Estimated request size so far.
    bytes: usize,
}

#[cfg(test)]
mod bump_tests;
#[cfg(test)]
mod leader_tests;
#[cfg(test)]
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
