//! Record accumulator: bounded memory, topics, per-partition queues of
//! batches. Each partition has its own lock; no lock is shared by all
//! partitions on the send path.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use parking_lot::{Condvar, Mutex, RwLock};

use crate::error::{self, Error};
use crate::protocol::record_batch::{
    BatchBuilder, ProducerStamp, RecordHeader, RecordLayout, BATCH_HEADER_LEN,
};

use super::report::{Outcome, Persistence, RecordMeta, ReportQueue, Token, TopicName};
use super::ProducerId;

/// Kafka sequences wrap from i32::MAX to 0: they count modulo this.
pub const SEQUENCE_SPACE: i64 = i32::MAX as i64 + 1;

/// How many sequence numbers lie from `from` up to `to` (modulo the
/// sequence space: `to` is taken to come at or after `from`).
pub fn sequences_between(from: i32, to: i32) -> i64 {
    (to as i64 - from as i64).rem_euclid(SEQUENCE_SPACE)
}

/// Per-record delivery bookkeeping counted against buffer.memory.
pub const RECORD_META_BYTES: usize = std::mem::size_of::<RecordMeta>();

/// What a batch costs beyond its records and spare capacity, counted against
/// buffer.memory too: the `Batch` itself (inline in its partition's queue,
/// then in a request), the allocator's chunk headers of its buffer and record
/// list, and the shared handle of its sealed bytes. With thousands of
/// partitions a batch holds about 1 KB of records, so leaving this out let
/// tens of thousands of batches add several MB beyond the bound.
pub const BATCH_FIXED_BYTES: usize = std::mem::size_of::<Batch>() + 64;

/// Spare-capacity reservations filled by records go back to the pool in
/// steps of at least this many bytes (and in full when the batch closes).
const SETTLE_STEP: usize = 4096;

/// buffer.memory accounting; `reserve` blocks up to max.block.ms.
///
/// Everything kp allocates for a held record counts: its encoded bytes and
/// delivery bookkeeping (reserved by kp_send), and the spare capacity of the
/// batch it sits in (reserved by the batch as it grows, see
/// [`Batch::make_room`]). Records may fill the pool up to `record_limit`;
/// the rest is headroom for batch growth, so a full pool never forces a
/// batch to grow record by record.
pub struct MemoryPool {
    used: AtomicUsize,
    limit: usize,
    record_limit: usize,
    waiters: AtomicUsize,
    lock: Mutex<()>,
    cv: Condvar,
}

impl MemoryPool {
    pub fn new(limit: usize) -> MemoryPool {
        MemoryPool {
            used: AtomicUsize::new(0),
            limit,
            record_limit: limit - limit / 8,
            waiters: AtomicUsize::new(0),
            lock: Mutex::new(()),
            cv: Condvar::new(),
        }
    }

    pub fn used(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    pub fn limit(&self) -> usize {
        self.limit
    }

    /// A record's bytes: up to `record_limit` (a record larger than that
    /// may use the whole pool).
    fn try_reserve(&self, n: usize) -> bool {
        let limit = if n > self.record_limit { self.limit } else { self.record_limit };
        self.try_reserve_within(n, limit)
    }

    /// Spare capacity for a growing batch: never blocks, may use the whole
    /// pool.
    pub fn try_reserve_spare(&self, n: usize) -> bool {
        self.try_reserve_within(n, self.limit)
    }

    fn try_reserve_within(&self, n: usize, limit: usize) -> bool {
        let mut cur = self.used.load(Ordering::Relaxed);
        loop {
            if cur + n > limit {
                return false;
            }
            match self.used.compare_exchange_weak(cur, cur + n, Ordering::AcqRel, Ordering::Relaxed)
            {
                Ok(_) => return true,
                Err(c) => cur = c,
            }
        }
    }

    pub fn reserve(
        &self,
        n: usize,
        max_block: Duration,
        closing: &AtomicBool,
    ) -> Result<(), Error> {
        if self.try_reserve(n) {
            return Ok(());
        }
        if max_block.is_zero() {
            return Err(Error::new(
                error::QUEUE_FULL,
                format!("buffer.memory ({} bytes) is full and max.block.ms is 0", self.limit),
            ));
        }
        let deadline = Instant::now() + max_block;
        let mut g = self.lock.lock();
        self.waiters.fetch_add(1, Ordering::AcqRel);
        let res = loop {
            if self.try_reserve(n) {
                break Ok(());
            }
            if closing.load(Ordering::Acquire) {
                break Err(Error::new(error::CLOSED, "the producer is closing"));
            }
            if Instant::now() >= deadline {
                break Err(Error::new(
                    error::QUEUE_FULL,
                    format!(
                        "buffer.memory ({} bytes) stayed full for max.block.ms ({} ms)",
                        self.limit,
                        max_block.as_millis()
                    ),
                ));
            }
            let _ = self.cv.wait_until(&mut g, deadline);
        };
        self.waiters.fetch_sub(1, Ordering::AcqRel);
        res
    }

    pub fn release(&self, n: usize) {
        if n == 0 {
            return;
        }
        self.used.fetch_sub(n, Ordering::AcqRel);
        if self.waiters.load(Ordering::Acquire) > 0 {
            let _g = self.lock.lock();
            self.cv.notify_all();
        }
    }

    pub fn wake_all(&self) {
        let _g = self.lock.lock();
        self.cv.notify_all();
    }
}

/// The most finished batches' buffers [`SpareBuffers`] keeps.
const SPARE_BUFFERS_MAX: usize = 64;

/// Buffers of finished batches, kept for the next batches that open at
/// batch.size (under steady load every batch does). Reusing them spares the
/// allocator handing the memory back to the system and the page faults of
/// writing into it again: on W1-sink those faults were 9-16 k per 5 M
/// records and about a tenth of kp-perf's CPU. Only buffers of exactly
/// batch.size bytes are kept, at most `max` of them (1/32 of buffer.memory,
/// outside it, as the allocator's own free memory would be, and no more
/// than SPARE_BUFFERS_MAX); a batch opening while another thread holds the
/// list allocates as before.
pub struct SpareBuffers {
    size: usize,
    max: usize,
    kept: Mutex<Vec<BytesMut>>,
}

impl SpareBuffers {
    pub fn new(batch_size: usize, buffer_memory: usize) -> SpareBuffers {
        let max = (buffer_memory / 32).checked_div(batch_size).unwrap_or(0).min(SPARE_BUFFERS_MAX);
        SpareBuffers { size: batch_size, max, kept: Mutex::new(Vec::new()) }
    }

    /// A kept buffer for a batch of `capacity` bytes, if there is one.
    fn take(&self, capacity: usize) -> Option<BytesMut> {
        if capacity != self.size || self.max == 0 {
            return None;
        }
        self.kept.try_lock()?.pop()
    }

    /// Keeps `buf` if it is a batch.size buffer and there is room.
    pub fn give(&self, buf: BytesMut) {
        if buf.capacity() != self.size || self.max == 0 {
            return;
        }
        if let Some(mut kept) = self.kept.try_lock() {
            if kept.len() < self.max {
                kept.push(buf);
            }
        }
    }

    /// [`give`](Self::give) for a batch's sealed bytes, when nothing else
    /// (a request still being written) refers to them.
    pub fn give_shared(&self, bytes: Bytes) {
        if bytes.len() <= self.size {
            if let Ok(buf) = bytes.try_into_mut() {
                self.give(buf);
            }
        }
    }
}

/// What batches need to report and release when they end.
pub struct Core {
    pub reports: ReportQueue,
    pub memory: MemoryPool,
    pub spare_buffers: SpareBuffers,
    pub schedule: DrainSchedule,
    /// Partitions that got a batch since the sender last looked (see
    /// `PartitionState::queued`): the sender visits only partitions with
    /// something to do, not every partition of every topic.
    activated: Mutex<Vec<Arc<PartitionQueue>>>,
}

impl Core {
    pub fn new(reports: ReportQueue, memory: MemoryPool, spare_buffers: SpareBuffers) -> Core {
        Core {
            reports,
            memory,
            spare_buffers,
            schedule: DrainSchedule::new(),
            activated: Mutex::new(Vec::new()),
        }
    }

    /// Moves the partitions activated since the last call into `into`.
    pub fn take_activated(&self, into: &mut Vec<Arc<PartitionQueue>>) {
        into.append(&mut self.activated.lock());
    }
}

/// When the sender next passes over the partitions on its own, so that a
/// send that opens a batch wakes it only when that batch is due earlier
/// (with thousands of partitions nearly every send opens one; waking the
/// sender for each made it rescan them all, over and over).
pub struct DrainSchedule {
    epoch: Instant,
    /// Nanoseconds after `epoch`.
    next_pass: AtomicU64,
    /// Batches opened so far.
    opened: AtomicU64,
}

impl DrainSchedule {
    fn new() -> DrainSchedule {
        DrainSchedule {
            epoch: Instant::now(),
            next_pass: AtomicU64::new(0),
            opened: AtomicU64::new(0),
        }
    }

    fn nanos(&self, t: Instant) -> u64 {
        t.saturating_duration_since(self.epoch).as_nanos().min(u64::MAX as u128) as u64
    }

    /// A send opened a batch due at `due`: whether the sender must be woken.
    pub fn batch_opened(&self, due: Instant) -> bool {
        self.opened.fetch_add(1, Ordering::SeqCst);
        self.nanos(due) < self.next_pass.load(Ordering::SeqCst)
    }

    /// The sender starts a pass at `now`; a batch opened from here on is
    /// due at `now + linger` at the earliest. Returns the count for
    /// [`plan`](Self::plan).
    pub fn begin_pass(&self, now: Instant, linger: Duration) -> u64 {
        self.next_pass.store(self.nanos(now + linger), Ordering::SeqCst);
        self.opened.load(Ordering::SeqCst)
    }

    /// After a pass that began at `start`: the sender means to sleep until
    /// `wake`. Publishes that time, then, if a batch was opened meanwhile
    /// (the pass may have missed it), wakes no later than it is due.
    pub fn plan(&self, wake: Instant, start: Instant, opened: u64, linger: Duration) -> Instant {
        self.next_pass.store(self.nanos(wake), Ordering::SeqCst);
        if self.opened.load(Ordering::SeqCst) == opened {
            return wake;
        }
        let wake = wake.min(start + linger);
        self.next_pass.store(self.nanos(wake), Ordering::SeqCst);
        wake
    }
}

/// One batch of records for one partition.
pub struct Batch {
    core: Arc<Core>,
    pub topic: Arc<TopicName>,
    pub partition: i32,
    pub builder: Option<BatchBuilder>,
    pub sealed: Option<Bytes>,
    pub records: Vec<RecordMeta>,
    pub created: Instant,
    pub attempts: u32,
    pub retry_at: Option<Instant>,
    /// buffer.memory bytes this batch holds: its records' reservations plus
    /// `spare_reserved`; released when the batch ends.
    pub reserved: usize,
    /// Part of `reserved` covering spare capacity (buffer and record list
    /// allocated beyond their contents).
    spare_reserved: usize,
    /// A request carrying this batch is awaiting its response.
    pub in_request: bool,
    /// An earlier attempt ended without a clear answer (timeout, lost
    /// connection): the batch may be in the log.
    pub ambiguous: bool,
    pub full: bool,
    /// Why the last attempt failed (for the report if time runs out).
    pub last_error: Option<Error>,
    /// Idempotence: the batch's base sequence once assigned (at drain).
    pub base_seq: Option<i32>,
    /// Producer id/epoch/sequence the batch must carry on its next send.
    pub stamp: ProducerStamp,
    /// What the sealed bytes currently carry.
    pub sealed_stamp: ProducerStamp,
    /// The purge generation when the batch was last sent (see kp_purge).
    pub sent_generation: u64,
}

impl Batch {
    pub fn new(core: Arc<Core>, topic: Arc<TopicName>, partition: i32, capacity: usize) -> Batch {
        let builder = match core.spare_buffers.take(capacity) {
            Some(buf) => BatchBuilder::in_buffer(buf),
            None => BatchBuilder::with_capacity(capacity),
        };
        Batch {
            core,
            topic,
            partition,
            builder: Some(builder),
            sealed: None,
            records: Vec::new(),
            created: Instant::now(),
            attempts: 0,
            retry_at: None,
            reserved: 0,
            spare_reserved: 0,
            in_request: false,
            ambiguous: false,
            full: false,
            last_error: None,
            base_seq: None,
            stamp: ProducerStamp::NONE,
            sealed_stamp: ProducerStamp::NONE,
            sent_generation: 0,
        }
    }

    pub fn size(&self) -> usize {
        match (&self.sealed, &self.builder) {
            (Some(b), _) => b.len(),
            (None, Some(b)) => b.size_in_bytes(),
            _ => 0,
        }
    }

    pub fn record_count(&self) -> usize {
        self.records.len()
    }

    /// Bytes allocated beyond what the batch's records use: the builder's
    /// spare capacity and the record list's.
    fn spare(&self) -> usize {
        let buf = self.builder.as_ref().map_or(0, |b| b.capacity() - b.size_in_bytes());
        buf + (self.records.capacity() - self.records.len()) * RECORD_META_BYTES
    }

    /// A new open batch with room for a first record of at most `max_len`
    /// encoded bytes (and, pool permitting, as much again). After a batch of
    /// the partition filled up (with `last_full_records` records), it opens
    /// at batch.size with room for as many records instead: under steady
    /// load the next one fills too, and growing it there step by step would
    /// copy every byte about once more.
    fn open(
        core: &Arc<Core>,
        pq: &PartitionQueue,
        max_len: usize,
        batch_size: usize,
        last_full_records: Option<usize>,
    ) -> Batch {
        let need = BATCH_HEADER_LEN + max_len;
        let limit = batch_size.max(need);
        let small = ((2 * need).min(limit), 4);
        let hinted = last_full_records.map(|n| (limit, n.max(small.1)));
        let spare_of =
            |(cap, records): (usize, usize)| cap - need + (records - 1) * RECORD_META_BYTES;
        let (cap, records, spare) = hinted
            .into_iter()
            .chain([small])
            .find_map(|c| {
                let spare = spare_of(c);
                core.memory.try_reserve_spare(spare).then_some((c.0, c.1, spare))
            })
            .unwrap_or((need, 1, 0));
        // Never blocks (the partition is locked): at the hard limit the batch
        // goes uncharged, and the records' own reservations still bound it.
        let fixed =
            if core.memory.try_reserve_spare(BATCH_FIXED_BYTES) { BATCH_FIXED_BYTES } else { 0 };
        let mut b = Batch::new(core.clone(), pq.topic.clone(), pq.partition, cap);
        b.records.reserve_exact(records);
        b.spare_reserved = spare;
        b.reserved = spare + fixed;
        b
    }

    /// Makes room for one more record of at most `max_len` encoded bytes:
    /// the buffer and the record list grow geometrically (up to
    /// `batch_size`), and the capacity added beyond the record itself is
    /// reserved in buffer.memory first; without room there, they grow by
    /// exactly what the record needs (the record's own bytes were reserved
    /// by kp_send).
    fn make_room(&mut self, pool: &MemoryPool, max_len: usize, batch_size: usize) {
        let b = self.builder.as_mut().expect("open batch has a builder");
        let need = b.size_in_bytes() + max_len;
        if need > b.capacity() {
            let mut target = need.max(b.capacity() * 2).min(batch_size.max(need));
            let extra = target - need;
            if extra > 0 {
                if pool.try_reserve_spare(extra) {
                    self.spare_reserved += extra;
                    self.reserved += extra;
                } else {
                    target = need;
                }
            }
            b.grow_to(target);
        }
        let (len, cap) = (self.records.len(), self.records.capacity());
        if len == cap {
            let extra = cap.clamp(4, 1024);
            let bytes = (extra - 1) * RECORD_META_BYTES;
            if pool.try_reserve_spare(bytes) {
                self.spare_reserved += bytes;
                self.reserved += bytes;
                self.records.reserve_exact(extra);
            } else {
                self.records.reserve_exact(1);
            }
        }
    }

    /// Returns spare-capacity reservations that records have filled since
    /// (their own reservations cover them now), in steps of at least `min`
    /// bytes so the shared pool is not touched per record.
    pub fn settle(&mut self, min: usize) {
        let over = self.spare_reserved.saturating_sub(self.spare());
        if over > 0 && over >= min {
            self.spare_reserved -= over;
            self.reserved -= over;
            self.core.memory.release(over);
        }
    }

    /// Success: one report per record with its offset.
    pub fn succeed(mut self, base_offset: i64, log_append_time: i64, persistence: Persistence) {
        let records = std::mem::take(&mut self.records);
        self.core.memory.release(std::mem::take(&mut self.reserved));
        self.core.reports.complete(Outcome {
            topic: self.topic.clone(),
            partition: self.partition,
            base_offset,
            log_append_time,
            error: None,
            error_cmsg: None,
            persistence,
            records,
        });
    }

    /// Failure: one report per record with the error.
    pub fn fail(mut self, err: Arc<Error>, persistence: Persistence) {
        let records = std::mem::take(&mut self.records);
        self.core.memory.release(std::mem::take(&mut self.reserved));
        self.core.reports.fail(self.topic.clone(), self.partition, err, persistence, records);
    }

    /// The producer id/epoch the batch was last stamped with.
    pub fn sent_under(&self) -> ProducerId {
        ProducerId { id: self.stamp.producer_id, epoch: self.stamp.producer_epoch }
    }

    pub fn persistence_on_failure(&self) -> Persistence {
        if self.in_request || self.ambiguous {
            Persistence::PossiblyPersisted
        } else {
            Persistence::NotPersisted
        }
    }
}

impl Drop for Batch {
    /// A batch dropped with records still unreported (runtime shut down with
    /// the request in flight, or a bug) still reports each record once.
    fn drop(&mut self) {
        if let Some(bytes) = self.sealed.take() {
            self.core.spare_buffers.give_shared(bytes);
        }
        if self.records.is_empty() && self.reserved == 0 {
            return;
        }
        let records = std::mem::take(&mut self.records);
        self.core.memory.release(std::mem::take(&mut self.reserved));
        let p = self.persistence_on_failure();
        self.core.reports.fail(
            self.topic.clone(),
            self.partition,
            Arc::new(Error::new(
                error::CLOSED,
                "the producer was closed before the record's delivery was confirmed",
            )),
            p,
            records,
        );
    }
}

pub struct PartitionState {
    pub open: Option<Batch>,
    /// Closed batches in send order; with idempotence, batches waiting for a
    /// retry (sequence assigned) stay in sequence order at the front.
    pub ready: VecDeque<Batch>,
    pub in_flight: u32,
    /// Idempotence: the next sequence to assign.
    pub next_seq: i32,
    /// Idempotence: the sequence the broker expects next (end of the last
    /// acknowledged batch).
    pub acked_next: i32,
    /// Idempotence: the producer id/epoch under which the broker acknowledged
    /// a batch of this partition (NONE: none yet). Until then the broker has
    /// no sequence state for it and accepts any first sequence, so only one
    /// batch may be in flight: a later one must not be written first when
    /// an earlier one comes back unwritten (e.g. NOT_LEADER_OR_FOLLOWER).
    pub acked_by: ProducerId,
    /// Idempotence: the producer id/epoch this partition's sequences still
    /// belong to after an epoch bump, because some batch was unresolved then
    /// (see [`PartitionState::has_unresolved`]). Its sequenced batches go on
    /// under it until none is unresolved and none is in flight; then the
    /// partition restarts at sequence 0 under the current id
    /// ([`PartitionState::restart_sequences`]). None: the current id.
    pub stale_pid: Option<ProducerId>,
    /// Sticky partitioning: bytes appended since the topic stuck to this
    /// partition (counted under this lock, not on a shared counter).
    pub sticky_bytes: usize,
    /// On the sender's list of partitions to visit: from its first batch
    /// until nothing is open, ready or in flight (the sender clears it).
    pub queued: bool,
    /// Records in the last batch when it closed full (it did not have room
    /// for one more); None once a batch closed before it filled (linger,
    /// flush): load went down.
    pub last_full_records: Option<usize>,
}

impl PartitionState {
    /// Whether the sender has nothing to do here until a new batch comes.
    pub fn idle(&self) -> bool {
        self.open.is_none() && self.ready.is_empty() && self.in_flight == 0
    }

    /// Queues a closed batch for the sender. An empty queue gets room for
    /// one batch, not the four a first `push_back` allocates: with thousands
    /// of partitions most queues hold at most one batch at a time, and each
    /// slot is a whole `Batch` (see [`PartitionState::release_ready`]).
    pub fn push_ready(&mut self, b: Batch) {
        if self.ready.capacity() == 0 {
            self.ready.reserve_exact(1);
        }
        self.ready.push_back(b);
    }

    /// Frees the ready queue's storage once it is empty again and grew past
    /// one slot (a burst): held per partition, it would otherwise stay
    /// allocated for the producer's lifetime, outside buffer.memory (5.4 MB
    /// at 5,000 partitions).
    pub fn release_ready(&mut self) {
        if self.ready.is_empty() && self.ready.capacity() > 1 {
            self.ready = VecDeque::new();
        }
    }

    /// Idempotence: a ready batch went out under its sequence without a
    /// clear answer (it may be in the log). It has to be resolved under the
    /// producer id/epoch it went with before the partition's sequences
    /// restart: sent again under a new epoch, the broker could not tell it
    /// is a duplicate.
    pub fn has_unresolved(&self) -> bool {
        self.ready.iter().any(|b| b.ambiguous && b.base_seq.is_some())
    }

    /// Idempotence: the broker answered OUT_OF_ORDER_SEQUENCE_NUMBER to the
    /// batch at `seq`, sent while nothing else of the partition could have
    /// been written after it unseen (so a written copy would have been
    /// answered as a duplicate): it does not hold that batch, nor, since it
    /// appends in sequence order, any later one. Ready batches from `seq` up
    /// to the next sequence to assign are known not to be in the log.
    pub fn mark_unwritten_from(&mut self, seq: i32) {
        let end = sequences_between(seq, self.next_seq);
        for b in self.ready.iter_mut() {
            if b.base_seq.is_some_and(|s| sequences_between(seq, s) < end) {
                b.ambiguous = false;
            }
        }
    }

    /// Sequences restart at 0 (a new producer id/epoch): ready batches get
    /// new ones when next sent.
    pub fn restart_sequences(&mut self) {
        self.next_seq = 0;
        self.acked_next = 0;
        self.stale_pid = None;
        for b in self.ready.iter_mut() {
            b.base_seq = None;
        }
    }

    /// Puts a batch back for a retry, keeping sequence order (the partition
    /// stays queued while a batch is in flight).
    pub fn requeue(&mut self, b: Batch) {
        let pos = match b.base_seq {
            None => 0,
            Some(seq) => {
                self.ready.iter().take_while(|o| o.base_seq.is_some_and(|s| s < seq)).count()
            }
        };
        self.ready.insert(pos, b);
    }
}

/// One topic-partition's queue of batches.
pub struct PartitionQueue {
    pub topic: Arc<TopicName>,
    pub partition: i32,
    /// The leader's node id (high half) and its leader epoch (low half):
    /// one word, so a reader never pairs a leader with another's epoch.
    leadership: AtomicU64,
    pub state: Mutex<PartitionState>,
}

/// A partition's leader and the epoch it leads in (-1: unknown).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Leadership {
    pub leader: i32,
    pub epoch: i32,
}

impl Leadership {
    fn pack(self) -> u64 {
        ((self.leader as u32 as u64) << 32) | self.epoch as u32 as u64
    }

    fn unpack(v: u64) -> Leadership {
        Leadership { leader: (v >> 32) as u32 as i32, epoch: v as u32 as i32 }
    }
}

/// Where news of a partition's leader comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LeaderNews {
    /// A metadata answer: taken unless its epoch is older than the known one.
    Metadata,
    /// A produce answer's CurrentLeader (KIP-951): taken only when its epoch
    /// is newer than the known one.
    ProduceAnswer,
}

impl PartitionQueue {
    pub fn new(topic: Arc<TopicName>, partition: i32, leader: i32) -> Arc<PartitionQueue> {
        Self::with_epoch(topic, partition, Leadership { leader, epoch: -1 })
    }

    pub fn with_epoch(
        topic: Arc<TopicName>,
        partition: i32,
        leadership: Leadership,
    ) -> Arc<PartitionQueue> {
        Arc::new(PartitionQueue {
            topic,
            partition,
            leadership: AtomicU64::new(leadership.pack()),
            state: Mutex::new(PartitionState {
                open: None,
                ready: VecDeque::new(),
                in_flight: 0,
                next_seq: 0,
                acked_next: 0,
                acked_by: ProducerId::NONE,
                stale_pid: None,
                sticky_bytes: 0,
                queued: false,
                last_full_records: None,
            }),
        })
    }
}

impl PartitionQueue {
    /// The leader's node id (-1: none known).
    pub fn leader(&self) -> i32 {
        self.leadership().leader
    }

    pub fn leadership(&self) -> Leadership {
        Leadership::unpack(self.leadership.load(Ordering::Acquire))
    }

    /// Takes news of the partition's leader unless it is older than what is
    /// known (see [`LeaderNews`]); an unknown epoch (-1) on either side never
    /// blocks metadata. Returns the leadership it replaced, if it did.
    pub fn update_leader(&self, new: Leadership, news: LeaderNews) -> Option<Leadership> {
        let mut cur = self.leadership.load(Ordering::Acquire);
        loop {
            let old = Leadership::unpack(cur);
            let take = match news {
                LeaderNews::Metadata => new.epoch < 0 || old.epoch < 0 || new.epoch >= old.epoch,
                LeaderNews::ProduceAnswer => {
                    new.leader >= 0 && new.epoch >= 0 && new.epoch > old.epoch
                }
            };
            if !take {
                return None;
            }
            if old == new {
                return Some(old);
            }
            match self.leadership.compare_exchange(
                cur,
                new.pack(),
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return Some(old),
                Err(now) => cur = now,
            }
        }
    }

    /// Forgets the leader epoch (e.g. when the brokers are replaced
    /// behind the bootstrap addresses, or the topic was re-created).
    pub fn forget_epoch(&self) {
        let _ = self.leadership.fetch_or(u32::MAX as u64, Ordering::AcqRel);
    }

    /// Takes every batch not in flight (ready and open), in send order.
    pub fn take_queued(&self) -> Vec<Batch> {
        let mut st = self.state.lock();
        let mut v: Vec<Batch> = st.ready.drain(..).collect();
        v.extend(st.open.take());
        v
    }
}

/// What an append did, so the caller knows whether to wake the sender.
pub struct AppendResult {
    pub new_batch: bool,
    /// A batch of the partition filled up (the one the record went to, or
    /// the one it did not fit in).
    pub batch_full: bool,
    /// Sticky partitioning: about batch.size bytes went to this partition
    /// since the topic stuck to it; time to move on.
    pub sticky_used_up: bool,
}

/// One record on its way into a partition's open batch.
pub struct AppendRecord<'a> {
    pub timestamp: i64,
    pub key: Option<&'a [u8]>,
    pub value: Option<&'a [u8]>,
    pub headers: &'a [RecordHeader<'a>],
    pub layout: &'a RecordLayout,
    /// buffer.memory bytes reserved for the record (released with its batch).
    pub reserved: usize,
    /// Count the record towards the partition's sticky budget.
    pub sticky: bool,
    /// When a record that waited for its topic's metadata was sent: its
    /// batch counts as opened then (for linger.ms, delivery.timeout.ms and
    /// `Producer::send_queued`), since the record has waited that long.
    pub parked_since: Option<Instant>,
}

pub fn append(
    core: &Arc<Core>,
    pq: &Arc<PartitionQueue>,
    batch_size: usize,
    rec: &AppendRecord<'_>,
    token: Token,
) -> AppendResult {
    let max_len = rec.layout.max_encoded_len();
    let mut st = pq.state.lock();
    let appended = match st.open.as_mut() {
        // A batch grows only for a record it will take.
        Some(b) if b.size() + max_len <= batch_size => {
            b.make_room(&core.memory, max_len, batch_size);
            b.builder
                .as_mut()
                .expect("open batch has a builder")
                .try_append(batch_size, rec.timestamp, rec.key, rec.value, rec.headers, rec.layout)
                .is_some()
        }
        _ => false,
    };
    let new_batch = !appended;
    let mut closed_full = false;
    if new_batch {
        if let Some(mut full) = st.open.take() {
            closed_full = true;
            full.full = true;
            full.settle(0);
            st.last_full_records = Some(full.records.len() + 1);
            st.push_ready(full);
        }
        let mut b = Batch::open(core, pq, max_len, batch_size, st.last_full_records);
        b.builder.as_mut().expect("builder").append_with_layout(
            rec.timestamp,
            rec.key,
            rec.value,
            rec.headers,
            rec.layout,
        );
        st.open = Some(b);
        if !st.queued {
            st.queued = true;
            core.activated.lock().push(pq.clone());
        }
    }
    let b = st.open.as_mut().expect("open batch");
    if let Some(since) = rec.parked_since {
        b.created = b.created.min(since);
    }
    b.records.push(RecordMeta { token, timestamp: rec.timestamp });
    b.reserved += rec.reserved;
    b.settle(SETTLE_STEP);
    let batch_full = b.size() + max_len > batch_size;
    if batch_full {
        let mut full = st.open.take().expect("open");
        full.full = true;
        full.settle(0);
        st.last_full_records = Some(full.records.len() + 1);
        st.push_ready(full);
    }
    let mut sticky_used_up = false;
    if rec.sticky {
        st.sticky_bytes += rec.reserved;
        if st.sticky_bytes >= batch_size {
            st.sticky_bytes = 0;
            sticky_used_up = true;
        }
    }
    AppendResult { new_batch, batch_full: batch_full || closed_full, sticky_used_up }
}

/// A header as copied from the caller: name and optional value.
pub type OwnedHeader = (Box<[u8]>, Option<Box<[u8]>>);

/// A record waiting for its topic's metadata (copied, since the caller's
/// buffers are only borrowed during kp_send).
pub struct PendingRecord {
    pub partition: i32,
    pub key: Option<Box<[u8]>>,
    pub value: Option<Box<[u8]>>,
    pub headers: Vec<OwnedHeader>,
    pub timestamp: i64,
    pub token: Token,
    pub reserved: usize,
    pub enqueued: Instant,
}

/// Records parked until their topic's metadata is known, in send order.
///
/// Kept in chunks of at most [`PENDING_CHUNK`] records so that no single
/// allocation grows with the backlog: a start-up burst parks tens of
/// thousands of records, and one contiguous block of several MB, once freed,
/// raises glibc's mmap and trim thresholds for the whole arena, which then
/// keeps that much freed memory resident for the rest of the process.
#[derive(Default)]
pub struct PendingRecords {
    /// Never holds an empty chunk.
    chunks: VecDeque<Vec<PendingRecord>>,
    /// buffer.memory bytes the parked records hold.
    bytes: usize,
}

/// Records per chunk of [`PendingRecords`]: a chunk stays far below glibc's
/// default mmap threshold (128 KiB).
pub const PENDING_CHUNK: usize = 256;
const _: () = assert!(PENDING_CHUNK.is_power_of_two());

impl PendingRecords {
    pub fn push(&mut self, r: PendingRecord) {
        self.bytes += r.reserved;
        match self.chunks.back_mut() {
            Some(c) if c.len() < PENDING_CHUNK => c.push(r),
            // Grown by doubling, so a topic parking a record or two does not
            // hold a whole chunk; PENDING_CHUNK is a power of two, so no
            // chunk's capacity passes it.
            _ => self.chunks.push_back(vec![r]),
        }
    }

    /// buffer.memory bytes the parked records hold.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    pub fn len(&self) -> usize {
        self.chunks.iter().map(Vec::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.chunks.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &PendingRecord> {
        self.chunks.iter().flatten()
    }

    /// Takes every record, in send order.
    pub fn take_all(&mut self) -> impl Iterator<Item = PendingRecord> + use<> {
        self.bytes = 0;
        std::mem::take(&mut self.chunks).into_iter().flatten()
    }

    /// Takes the records `pred` selects, in send order; the others stay,
    /// in their order.
    pub fn take_where(&mut self, mut pred: impl FnMut(&PendingRecord) -> bool) -> PendingRecords {
        let mut taken = PendingRecords::default();
        for r in self.take_all() {
            if pred(&r) {
                taken.push(r);
            } else {
                self.push(r);
            }
        }
        taken
    }
}

pub struct TopicMeta {
    pub partitions: Vec<Arc<PartitionQueue>>,
    pub known: bool,
    pub last_error: Option<Error>,
    /// The topic id the last metadata answer gave (zeros: none yet).
    pub topic_id: [u8; 16],
}

pub struct TopicHandle {
    pub name: Arc<TopicName>,
    pub meta: RwLock<TopicMeta>,
    pub pending: Mutex<PendingRecords>,
    /// Notified (with `pending` held) when the topic becomes known.
    pub became_known: Condvar,
    pub sticky: AtomicI32,
    pub round_robin: AtomicU32,
}

impl TopicHandle {
    pub fn new(name: &str) -> Arc<TopicHandle> {
        Arc::new(TopicHandle {
            name: TopicName::new(name),
            meta: RwLock::new(TopicMeta {
                partitions: Vec::new(),
                known: false,
                last_error: None,
                topic_id: [0; 16],
            }),
            pending: Mutex::new(PendingRecords::default()),
            became_known: Condvar::new(),
            sticky: AtomicI32::new(-1),
            round_robin: AtomicU32::new(0),
        })
    }
}

/// Kafka's topic name rules: 1..=249 chars of [a-zA-Z0-9._-], not "." or "..".
pub fn validate_topic_name(name: &str) -> Result<(), Error> {
    if name.is_empty() {
        return Err(Error::new(error::INVALID_TOPIC, "topic name is empty"));
    }
    if name == "." || name == ".." {
        return Err(Error::new(
            error::INVALID_TOPIC,
            format!("topic name \"{name}\" is not allowed"),
        ));
    }
    if name.len() > 249 {
        return Err(Error::new(
            error::INVALID_TOPIC,
            format!("topic name is {} characters long; the limit is 249", name.len()),
        ));
    }
    if let Some(c) =
        name.chars().find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Err(Error::new(
            error::INVALID_TOPIC,
            format!("topic name \"{}\" contains '{}'; only ASCII letters, digits, '.', '_' and '-' are allowed", name.escape_default(), c.escape_default()),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leader_news_older_than_the_known_epoch_is_ignored() {
        let l = |leader, epoch| Leadership { leader, epoch };
        let pq = PartitionQueue::with_epoch(TopicName::new("t"), 0, l(1, 5));
        // A produce answer moves the partition only with a newer epoch.
        assert_eq!(pq.update_leader(l(2, 5), LeaderNews::ProduceAnswer), None);
        assert_eq!(pq.update_leader(l(2, 4), LeaderNews::ProduceAnswer), None);
        assert_eq!(pq.update_leader(l(-1, 9), LeaderNews::ProduceAnswer), None);
        assert_eq!(pq.update_leader(l(2, 6), LeaderNews::ProduceAnswer), Some(l(1, 5)));
        assert_eq!(pq.leadership(), l(2, 6));
        // Metadata: older epochs are stale, equal or newer ones are taken.
        assert_eq!(pq.update_leader(l(1, 5), LeaderNews::Metadata), None);
        assert_eq!(pq.leader(), 2);
        assert_eq!(pq.update_leader(l(3, 6), LeaderNews::Metadata), Some(l(2, 6)));
        assert_eq!(pq.update_leader(l(-1, 7), LeaderNews::Metadata), Some(l(3, 6)));
        assert_eq!(pq.leadership(), l(-1, 7));
        // Without an epoch (Metadata before v7, or forgotten) anything goes.
        pq.forget_epoch();
        assert_eq!(pq.leadership(), l(-1, -1));
        assert_eq!(pq.update_leader(l(4, 2), LeaderNews::Metadata), Some(l(-1, -1)));
        assert_eq!(pq.update_leader(l(5, -1), LeaderNews::Metadata), Some(l(4, 2)));
        assert_eq!(pq.leadership(), l(5, -1));
        assert_eq!(pq.update_leader(l(6, 0), LeaderNews::ProduceAnswer), Some(l(5, -1)));
    }

    #[test]
    fn topic_names() {
        assert!(validate_topic_name("orders.v1_x-y").is_ok());
        assert!(validate_topic_name("").is_err());
        assert!(validate_topic_name("..").is_err());
        assert!(validate_topic_name("has space").unwrap_err().message.contains("' '"));
        assert!(validate_topic_name(&"a".repeat(250)).is_err());
        assert!(validate_topic_name(&"a".repeat(249)).is_ok());
    }

    #[test]
    fn memory_pool_blocks_then_fails() {
        let pool = MemoryPool::new(100);
        let closing = AtomicBool::new(false);
        pool.reserve(80, Duration::ZERO, &closing).unwrap();
        assert_eq!(pool.reserve(30, Duration::ZERO, &closing).unwrap_err().code, error::QUEUE_FULL);
        let t = Instant::now();
        assert_eq!(
            pool.reserve(30, Duration::from_millis(50), &closing).unwrap_err().code,
            error::QUEUE_FULL
        );
        assert!(t.elapsed() >= Duration::from_millis(50));
        pool.release(80);
        pool.reserve(30, Duration::ZERO, &closing).unwrap();
    }

    fn pending(n: i32) -> PendingRecord {
        PendingRecord {
            partition: n,
            key: None,
            value: None,
            headers: Vec::new(),
            timestamp: 0,
            token: Token::None,
            reserved: 10,
            enqueued: Instant::now(),
        }
    }

    #[test]
    fn parked_records_are_chunked_and_keep_their_order() {
        let mut p = PendingRecords::default();
        for n in 0..1000 {
            p.push(pending(n));
        }
        assert_eq!((p.len(), p.bytes()), (1000, 1000 * 10));
        assert!(
            p.chunks.iter().all(|c| c.capacity() <= PENDING_CHUNK),
            "no block grows with the backlog"
        );
        assert!(PENDING_CHUNK * std::mem::size_of::<PendingRecord>() < 128 * 1024);
        let odd = p.take_where(|r| r.partition % 2 == 1);
        assert_eq!((odd.len(), odd.bytes()), (500, 5000));
        assert_eq!((p.len(), p.bytes()), (500, 5000));
        assert!(odd.iter().map(|r| r.partition).eq((0..1000).filter(|n| n % 2 == 1)));
        assert!(p.iter().map(|r| r.partition).eq((0..1000).filter(|n| n % 2 == 0)));
        assert!(p.take_all().map(|r| r.partition).eq((0..1000).step_by(2)));
        assert!(p.is_empty() && p.bytes() == 0 && p.iter().next().is_none());
    }
}

#[cfg(test)]
mod sequence_tests {
    use super::*;
    use crate::protocol::Compression;

    fn core() -> Arc<Core> {
        core_with(1 << 20, SpareBuffers::new(0, 0))
    }

    fn core_with(buffer_memory: usize, spare_buffers: SpareBuffers) -> Arc<Core> {
        Arc::new(Core::new(ReportQueue::new(false), MemoryPool::new(buffer_memory), spare_buffers))
    }

    #[test]
    fn requeue_keeps_sequence_order_ahead_of_new_batches() {
        let c = core();
        let t = TopicName::new("t");
        let pq = PartitionQueue::new(t.clone(), 0, 1);
        let mut st = pq.state.lock();
        let mk = |seq: Option<i32>| {
            let mut b = Batch::new(c.clone(), t.clone(), 0, 64);
            b.base_seq = seq;
            b
        };
        st.ready.push_back(mk(None));
        st.requeue(mk(Some(20)));
        st.requeue(mk(Some(5)));
        st.requeue(mk(Some(10)));
        let order: Vec<Option<i32>> = st.ready.iter().map(|b| b.base_seq).collect();
        assert_eq!(order, vec![Some(5), Some(10), Some(20), None]);
    }

    /// Appends 100-byte records to `pq` until `batches` batches closed full
    /// and a next one is open.
    fn fill(c: &Arc<Core>, pq: &Arc<PartitionQueue>, batch_size: usize, batches: usize) {
        let value = [7u8; 100];
        let layout = RecordLayout::new(None, Some(&value), &[]);
        let rec = AppendRecord {
            timestamp: 0,
            key: None,
            value: Some(&value),
            headers: &[],
            layout: &layout,
            reserved: 0,
            sticky: false,
            parked_since: None,
        };
        while pq.state.lock().ready.len() < batches || pq.state.lock().open.is_none() {
            append(c, pq, batch_size, &rec, Token::None);
        }
    }

    fn open_capacity(pq: &PartitionQueue) -> (usize, usize) {
        let st = pq.state.lock();
        let b = st.open.as_ref().expect("open batch");
        (b.builder.as_ref().expect("builder").capacity(), b.records.capacity())
    }

    #[test]
    fn after_a_batch_filled_up_the_next_opens_at_its_size() {
        let c = core();
        let pq = PartitionQueue::new(TopicName::new("t"), 0, 1);
        let batch_size = 8192;
        fill(&c, &pq, batch_size, 0);
        let (first_buf, first_list) = open_capacity(&pq);
        assert!(first_buf < 1024, "a first batch opens small ({first_buf} bytes)");
        fill(&c, &pq, batch_size, 1);
        let full_records = pq.state.lock().ready[0].records.len();
        let (buf, list) = open_capacity(&pq);
        assert_eq!(buf, batch_size, "opened at the full batch's size");
        assert!(list >= full_records && first_list < full_records, "{list} vs {full_records}");
        // Once a batch closes before it filled (linger, flush), batches open small again.
        pq.state.lock().last_full_records = None;
        let mut st = pq.state.lock();
        let b = Batch::open(&c, &pq, 120, batch_size, st.last_full_records);
        assert!(b.builder.as_ref().unwrap().capacity() < 1024);
        st.ready.clear();
    }

    #[test]
    fn a_full_size_opening_the_pool_cannot_hold_falls_back_to_a_small_one() {
        let c = core_with(6000, SpareBuffers::new(0, 0));
        let pq = PartitionQueue::new(TopicName::new("t"), 0, 1);
        let hint = Some(80);
        let b = Batch::open(&c, &pq, 120, 8192, hint);
        let cap = b.builder.as_ref().unwrap().capacity();
        assert!(cap < 1024, "opened at {cap} bytes");
        assert!(c.memory.used() <= 6000);
    }

    #[test]
    fn a_batch_charges_its_fixed_overhead_and_returns_it_when_it_ends() {
        let c = core();
        let pq = PartitionQueue::new(TopicName::new("t"), 0, 1);
        let b = Batch::open(&c, &pq, 120, 8192, None);
        let spare = b.spare_reserved;
        assert_eq!(b.reserved, spare + BATCH_FIXED_BYTES);
        assert_eq!(c.memory.used(), spare + BATCH_FIXED_BYTES);
        assert!(BATCH_FIXED_BYTES > std::mem::size_of::<Batch>());
        b.fail(Arc::new(Error::new(crate::error::TIMED_OUT, "t")), Persistence::NotPersisted);
        assert_eq!(c.memory.used(), 0, "everything the batch charged came back");
    }

    #[test]
    fn a_ready_queue_holds_one_slot_and_is_freed_after_a_burst() {
        let c = core();
        let pq = PartitionQueue::new(TopicName::new("t"), 0, 1);
        let mut st = pq.state.lock();
        st.push_ready(Batch::new(c.clone(), pq.topic.clone(), 0, 64));
        assert_eq!(st.ready.capacity(), 1, "one batch, one slot");
        st.release_ready();
        assert_eq!(st.ready.capacity(), 1, "not freed while it holds a batch");
        for _ in 0..3 {
            st.push_ready(Batch::new(c.clone(), pq.topic.clone(), 0, 64));
        }
        st.ready.clear();
        st.release_ready();
        assert_eq!(st.ready.capacity(), 0, "the burst's storage is freed");
    }

    /// A finished batch's buffer goes to the next batch opened at
    /// batch.size, only when nothing else refers to it, and only a
    /// batch.size buffer is kept.
    #[test]
    fn finished_batch_buffers_are_reused_by_new_batches() {
        let c = core_with(1 << 20, SpareBuffers::new(4096, 1 << 20));
        let t = TopicName::new("t");
        let records_at = |b: &Batch| b.builder.as_ref().unwrap().records_bytes().as_ptr();
        let seal = |b: &mut Batch| {
            let builder = b.builder.take().unwrap();
            b.sealed = Some(builder.seal(Compression::None, ProducerStamp::NONE).unwrap().bytes);
        };

        let mut first = Batch::new(c.clone(), t.clone(), 0, 4096);
        let first_records = records_at(&first);
        seal(&mut first);
        drop(first);
        assert_eq!(c.spare_buffers.kept.lock().len(), 1, "the finished batch's buffer is kept");
        let second = Batch::new(c.clone(), t.clone(), 0, 4096);
        assert_eq!(records_at(&second), first_records, "the buffer is reused");
        assert!(c.spare_buffers.kept.lock().is_empty());
        assert_eq!(second.builder.as_ref().unwrap().size_in_bytes(), BATCH_HEADER_LEN);
        let small = Batch::new(c.clone(), t.clone(), 0, 512);
        assert_eq!(small.builder.as_ref().unwrap().capacity(), 512, "other sizes are allocated");

        let mut shared = second;
        let shared_records = records_at(&shared);
        seal(&mut shared);
        let request_copy = shared.sealed.clone();
        drop(shared);
        let third = Batch::new(c.clone(), t.clone(), 0, 4096);
        assert_ne!(records_at(&third), shared_records, "a buffer still referred to is not reused");
        drop(request_copy);

        let mut odd = Batch::new(c.clone(), t.clone(), 0, 512);
        seal(&mut odd);
        drop(odd);
        assert!(c.spare_buffers.kept.lock().is_empty(), "only batch.size buffers are kept");
        assert_eq!(SpareBuffers::new(4096, 32 * 4096 * 3).max, 3, "1/32 of buffer.memory");
        assert_eq!(SpareBuffers::new(1, 1 << 30).max, SPARE_BUFFERS_MAX);
        assert_eq!(SpareBuffers::new(0, 1 << 30).max, 0);
    }
}
