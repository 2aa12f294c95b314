//! Record accumulator: bounded memory, topics, per-partition queues of
//! batches. Each partition has its own lock; no lock is shared by all
//! partitions on the send path.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU32, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use parking_lot::{Condvar, Mutex, RwLock};

use crate::error::{self, Error};
use crate::protocol::record_batch::{BatchBuilder, ProducerStamp, RecordHeader, RecordLayout};

use super::report::{Outcome, Persistence, RecordMeta, ReportQueue, Token, TopicName};

/// buffer.memory accounting; `reserve` blocks up to max.block.ms.
pub struct MemoryPool {
    used: AtomicUsize,
    limit: usize,
    waiters: AtomicUsize,
    lock: Mutex<()>,
    cv: Condvar,
}

impl MemoryPool {
    pub fn new(limit: usize) -> MemoryPool {
        MemoryPool {
            used: AtomicUsize::new(0),
            limit,
            waiters: AtomicUsize::new(0),
            lock: Mutex::new(()),
            cv: Condvar::new(),
        }
    }

    pub fn used(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    fn try_reserve(&self, n: usize) -> bool {
        let mut cur = self.used.load(Ordering::Relaxed);
        loop {
            if cur + n > self.limit {
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

/// What batches need to report and release when they end.
pub struct Core {
    pub reports: ReportQueue,
    pub memory: MemoryPool,
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
    pub reserved: usize,
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
        Batch {
            core,
            topic,
            partition,
            builder: Some(BatchBuilder::with_capacity(capacity)),
            sealed: None,
            records: Vec::new(),
            created: Instant::now(),
            attempts: 0,
            retry_at: None,
            reserved: 0,
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
    /// Sticky partitioning: bytes appended since the topic stuck to this
    /// partition (counted under this lock, not on a shared counter).
    pub sticky_bytes: usize,
}

impl PartitionState {
    /// Puts a batch back for a retry, keeping sequence order.
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
    pub leader: AtomicI32,
    pub state: Mutex<PartitionState>,
}

impl PartitionQueue {
    pub fn new(topic: Arc<TopicName>, partition: i32, leader: i32) -> Arc<PartitionQueue> {
        Arc::new(PartitionQueue {
            topic,
            partition,
            leader: AtomicI32::new(leader),
            state: Mutex::new(PartitionState {
                open: None,
                ready: VecDeque::new(),
                in_flight: 0,
                next_seq: 0,
                acked_next: 0,
                sticky_bytes: 0,
            }),
        })
    }
}

impl PartitionQueue {
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
}

pub fn append(
    core: &Arc<Core>,
    pq: &PartitionQueue,
    batch_size: usize,
    rec: &AppendRecord<'_>,
    token: Token,
) -> AppendResult {
    let mut st = pq.state.lock();
    let appended = match st.open.as_mut() {
        Some(b) => b
            .builder
            .as_mut()
            .expect("open batch has a builder")
            .try_append(batch_size, rec.timestamp, rec.key, rec.value, rec.headers, rec.layout)
            .is_some(),
        None => false,
    };
    let new_batch = !appended;
    if new_batch {
        if let Some(mut full) = st.open.take() {
            full.full = true;
            st.ready.push_back(full);
        }
        let cap = batch_size.max(rec.reserved + 64).min(batch_size.max(rec.reserved) + 128);
        let mut b = Batch::new(core.clone(), pq.topic.clone(), pq.partition, cap);
        // Room for the records a full batch of this size would hold, so the
        // list does not regrow record by record.
        b.records.reserve((batch_size / rec.reserved.max(1)).clamp(1, 4096));
        b.builder.as_mut().expect("builder").append_with_layout(
            rec.timestamp,
            rec.key,
            rec.value,
            rec.headers,
            rec.layout,
        );
        st.open = Some(b);
    }
    let b = st.open.as_mut().expect("open batch");
    b.records.push(RecordMeta { token, timestamp: rec.timestamp });
    b.reserved += rec.reserved;
    let batch_full = b.builder.as_ref().expect("builder").size_in_bytes() >= batch_size;
    if batch_full {
        let mut full = st.open.take().expect("open");
        full.full = true;
        st.ready.push_back(full);
    }
    let mut sticky_used_up = false;
    if rec.sticky {
        st.sticky_bytes += rec.reserved;
        if st.sticky_bytes >= batch_size {
            st.sticky_bytes = 0;
            sticky_used_up = true;
        }
    }
    AppendResult { new_batch, batch_full, sticky_used_up }
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

pub struct TopicMeta {
    pub partitions: Vec<Arc<PartitionQueue>>,
    pub known: bool,
    pub last_error: Option<Error>,
}

pub struct TopicHandle {
    pub name: Arc<TopicName>,
    pub meta: RwLock<TopicMeta>,
    pub pending: Mutex<Vec<PendingRecord>>,
    pub sticky: AtomicI32,
    pub round_robin: AtomicU32,
    pub metadata_requested: Instant,
}

impl TopicHandle {
    pub fn new(name: &str) -> Arc<TopicHandle> {
        Arc::new(TopicHandle {
            name: TopicName::new(name),
            meta: RwLock::new(TopicMeta { partitions: Vec::new(), known: false, last_error: None }),
            pending: Mutex::new(Vec::new()),
            sticky: AtomicI32::new(-1),
            round_robin: AtomicU32::new(0),
            metadata_requested: Instant::now(),
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
}

#[cfg(test)]
mod sequence_tests {
    use super::*;

    fn core() -> Arc<Core> {
        Arc::new(Core { reports: ReportQueue::new(false), memory: MemoryPool::new(1 << 20) })
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
}
