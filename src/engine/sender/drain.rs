//! One pass of the sender over the partitions: expire batches that waited
//! past delivery.timeout.ms, close open batches that are due (linger.ms,
//! full, flush), and take each partition's next ready batch into the
//! request for its leader.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::error::{self, Error};
use crate::protocol::record_batch::ProducerStamp;

use super::super::accumulator::{Batch, PartitionQueue, PartitionState};
use super::super::conn::Broker;
use super::super::idempotence;
use super::super::{Inner, ProducerId};
use super::{expired_error, next_sequence, Gate, InFlight, RequestDraft};

pub(super) struct Drain<'a> {
    inner: &'a Inner,
    now: Instant,
    gate: Gate,
    /// Send open batches now (a flush or close is waiting).
    flushing: bool,
    /// Open batches opened at or before this are due (`send_queued`).
    send_queued_before: Option<Instant>,
    linger: Duration,
    delivery_timeout: Duration,
    max_in_flight: usize,
    max_request: usize,
    /// One request per leader.
    pub requests: HashMap<i32, RequestDraft>,
    /// Some partition has more ready batches than this pass took.
    pub more_ready: bool,
    /// A ready batch stayed behind because its request was full (the next
    /// pass should start at that partition, so the tail is not starved).
    pub out_of_room: bool,
    /// Some partition has no (known) leader.
    pub need_metadata: bool,
    /// Partitions whose due batch waits for its broker (see `holds`).
    held: Vec<(i32, Arc<PartitionQueue>)>,
    /// When the next pass is due at the latest.
    pub next_wake: Instant,
}

impl<'a> Drain<'a> {
    pub fn new(inner: &'a Inner, now: Instant, gate: Gate) -> Drain<'a> {
        Drain {
            inner,
            now,
            gate,
            flushing: inner.lifecycle.wants_flush(),
            send_queued_before: inner.lifecycle.send_queued_before(),
            linger: Duration::from_millis(inner.cfg.linger_ms),
            delivery_timeout: Duration::from_millis(inner.cfg.delivery_timeout_ms),
            max_in_flight: inner.cfg.max_in_flight,
            max_request: inner.cfg.max_request_size,
            requests: HashMap::new(),
            more_ready: false,
            out_of_room: false,
            need_metadata: false,
            held: Vec::new(),
            next_wake: now + Duration::from_millis(500),
        }
    }

    /// Drains one partition. Returns whether the sender must visit it
    /// again (something open, ready or in flight); if not, it leaves the
    /// sender's list until its next batch.
    pub fn partition(&mut self, pq: &Arc<PartitionQueue>) -> bool {
        let mut st = pq.state.lock();
        let expired = self.take_expired(&mut st);
        let leader = pq.leader();
        let broker = if leader >= 0 { self.inner.broker(leader) } else { None };
        self.close_due_batch(pq, &mut st, leader, broker.as_ref());
        if !st.ready.is_empty() {
            match broker {
                None => self.need_metadata = true,
                Some(broker) => self.take_ready(pq, &mut st, leader, broker),
            }
            st.release_ready();
        }
        let again = !st.idle();
        st.queued = again;
        drop(st);
        self.fail_expired(pq, expired);
        again
    }

    /// Whether a request to `broker` can go now (as far as the broker and
    /// the producer id are concerned).
    fn can_send_to(&self, broker: &Broker) -> bool {
        self.gate != Gate::Closed
            && broker.in_flight.load(Ordering::Acquire) < self.max_in_flight
            && broker.throttle_remaining().is_none()
    }

    /// Whether the broker checks this partition's batches against our
    /// sequence state: it acknowledged one under the current producer id.
    /// Before that it takes any sequence as the first, so a batch must not
    /// be sent while an earlier one might still come back unwritten.
    fn broker_has_sequences(&self, st: &PartitionState, owner: Option<ProducerId>) -> bool {
        owner.is_none_or(|pid| st.acked_by == pid)
    }

    /// The producer id/epoch the partition's next batch goes under (None:
    /// no idempotence). After an epoch bump a partition that had unresolved
    /// batches stays on the old one (`stale_pid`) until they are resolved and
    /// nothing of it is in flight; then its sequences restart under the
    /// current one.
    fn sequence_owner(&self, st: &mut PartitionState) -> Option<ProducerId> {
        let Gate::Sequenced(current) = self.gate else { return None };
        match st.stale_pid {
            Some(old) if st.has_unresolved() || st.in_flight > 0 => Some(old),
            Some(_) => {
                st.restart_sequences();
                Some(current)
            }
            None => Some(current),
        }
    }

    /// Takes what waited too long (never what is in flight).
    fn take_expired(&self, st: &mut PartitionState) -> Vec<Batch> {
        let mut expired = Vec::new();
        while let Some(front) = st.ready.front() {
            if self.now.duration_since(front.created) >= self.delivery_timeout {
                expired.push(st.ready.pop_front().expect("front"));
            } else {
                break;
            }
        }
        if let Some(open) = &st.open {
            if self.now.duration_since(open.created) >= self.delivery_timeout {
                expired.extend(st.open.take());
            }
        }
        expired
    }

    /// Moves the open batch to the ready queue when it is due and can be
    /// sent in this pass; otherwise notes when to look again.
    fn close_due_batch(
        &mut self,
        pq: &Arc<PartitionQueue>,
        st: &mut PartitionState,
        leader: i32,
        broker: Option<&Arc<Broker>>,
    ) {
        let Some(open) = &st.open else { return };
        let due = open.created + self.linger;
        if !(open.full || self.hurried(open) || self.now >= due) {
            self.next_wake = self.next_wake.min(due);
            return;
        }
        // A due batch stays open, and keeps growing, until this pass can
        // really send it: closing it early would leave a queue of tiny
        // batches behind a busy broker.
        if st.ready.is_empty() && broker.is_some_and(|b| self.can_send_to(b)) {
            if broker.is_some_and(|b| self.holds(open, b)) {
                self.held.push((leader, pq.clone()));
                return;
            }
            let mut b = st.open.take().expect("open");
            b.settle(0);
            st.last_full_records = None;
            st.push_ready(b);
        } else if let Some(rem) = broker.and_then(|b| b.throttle_remaining()) {
            self.next_wake = self.next_wake.min(self.now + rem);
        } else if broker.is_none() {
            self.need_metadata = true;
        }
    }

    /// Whether a due batch waits for its broker's requests in flight to come
    /// back (a response wakes the sender), growing meanwhile, unless a
    /// request to that broker goes in this pass anyway (`take_held`). With
    /// many partitions, sending every due batch at once fills requests with
    /// hundreds of tiny batches, and a broker's work is per batch as much as
    /// per byte. Not with linger.ms=0 (latency first), nor for full batches
    /// or a flush.
    fn holds(&self, open: &Batch, broker: &Broker) -> bool {
        !open.full
            && !self.hurried(open)
            && !self.linger.is_zero()
            && broker.in_flight.load(Ordering::Acquire) > 0
    }

    /// Whether an open batch goes out without lingering: a flush or close
    /// is waiting, or the caller asked to send what was queued when it was
    /// opened (`Producer::send_queued`).
    fn hurried(&self, open: &Batch) -> bool {
        self.flushing || self.send_queued_before.is_some_and(|t| open.created <= t)
    }

    /// After the pass: held batches whose broker gets a request now ride
    /// along in it.
    pub fn take_held(&mut self) {
        for (leader, pq) in std::mem::take(&mut self.held) {
            let Some(broker) = self.requests.get(&leader).map(|r| r.broker.clone()) else {
                continue;
            };
            let mut st = pq.state.lock();
            if !st.ready.is_empty() || pq.leader() != leader {
                continue;
            }
            let Some(mut b) = st.open.take() else { continue };
            b.settle(0);
            st.push_ready(b);
            self.take_ready(&pq, &mut st, leader, broker);
        }
    }

    /// Takes the partition's first ready batch into the leader's request,
    /// when it may go now and fits.
    fn take_ready(
        &mut self,
        pq: &Arc<PartitionQueue>,
        st: &mut PartitionState,
        leader: i32,
        broker: Arc<Broker>,
    ) {
        let owner = self.sequence_owner(st);
        let front = st.ready.front().expect("nonempty");
        if let Some(t) = front.retry_at.filter(|t| *t > self.now) {
            self.next_wake = self.next_wake.min(t);
            return;
        }
        if let Some(rem) = broker.throttle_remaining() {
            self.next_wake = self.next_wake.min(self.now + rem);
            return;
        }
        // A partition still on an old producer id sends only the batches
        // sequenced under it (the unresolved ones and those ahead of them).
        let stale = st.stale_pid.is_some();
        let may_send = self.gate != Gate::Closed
            && (!stale || front.base_seq.is_some())
            && broker.in_flight.load(Ordering::Acquire) < self.max_in_flight
            // A retry with its sequence goes alone, after every earlier
            // request of the partition is back.
            && (front.base_seq.is_none() || st.in_flight == 0)
            // Until the broker holds our sequence state for the partition,
            // one batch at a time.
            && (st.in_flight == 0 || self.broker_has_sequences(st, owner))
            && self.inner.txn.as_ref().is_none_or(|t| t.partition_ready(&pq.topic.name, pq.partition));
        if !may_send {
            return;
        }
        let size = front.size();
        let draft = self.requests.entry(leader).or_insert_with(|| RequestDraft {
            broker,
            batches: Vec::new(),
            bytes: 0,
        });
        if draft.bytes != 0 && draft.bytes + size > self.max_request {
            self.more_ready = true;
            self.out_of_room = true;
            return;
        }
        let mut batch = st.ready.pop_front().expect("front");
        batch.sent_generation = self.inner.purge_generation.load(Ordering::Acquire);
        if let Some(pid) = owner {
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
                producer_id: pid.id,
                producer_epoch: pid.epoch,
                base_sequence: seq,
                transactional: self.inner.txn.is_some(),
            };
        }
        draft.bytes += size + 32;
        draft.batches.push(InFlight { pq: pq.clone(), batch });
        st.in_flight += 1;
        if !st.ready.is_empty() {
            self.more_ready = true;
        }
    }

    /// Reports batches that expired before they could be sent.
    fn fail_expired(&self, pq: &PartitionQueue, expired: Vec<Batch>) {
        if let Some(b) = expired.iter().find(|b| b.base_seq.is_some()) {
            // A sequenced batch gives up: later sequences cannot line up.
            idempotence::sequence_broken(self.inner, b.sent_under());
        }
        for b in expired {
            let p = b.persistence_on_failure();
            let err = match &b.last_error {
                Some(last) => expired_error(last, self.delivery_timeout, b.attempts),
                None => Error::new(
                    error::TIMED_OUT,
                    format!(
                        "delivery.timeout.ms ({} ms) expired before the batch for {}-{} could be sent",
                        self.delivery_timeout.as_millis(),
                        pq.topic.name,
                        pq.partition
                    ),
                ),
            };
            b.fail(Arc::new(err), p);
        }
    }
}
