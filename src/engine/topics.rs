//! Topics on the send path: the per-thread topic cache, appending a record
//! to its partition's batch, and the records that wait (copied) until their
//! topic's metadata is known.

use std::cell::Cell;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::MutexGuard;

use crate::error::{self, Error};
use crate::protocol::record_batch::{RecordHeader, RecordLayout};

use super::accumulator::{
    append, validate_topic_name, AppendRecord, OwnedHeader, PendingRecord, PendingRecords,
    TopicHandle,
};
use super::partitioner::next_sticky_partition;
use super::report::{Persistence, RecordMeta, Token};
use super::{Inner, Producer, Record, PARTITION_ANY};

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
    /// The topic's handle, valid while `self` is borrowed.
    #[inline]
    pub(super) fn topic_handle(&self, name: &str) -> Result<&TopicHandle, Error> {
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
}

/// Where `append_to_topic` put a record.
enum Appended {
    InBatch,
    /// The topic's metadata is not known yet: the token comes back.
    NotKnown(Token),
}

/// The record `send` accepts, with what it needs beyond the caller's view.
struct Accepted<'a, 'r> {
    rec: &'a Record<'r>,
    layout: &'a RecordLayout,
    timestamp: i64,
    /// Bytes reserved from buffer.memory for it.
    reserved: usize,
    /// When it was parked to wait for the topic's metadata (None: never).
    parked_since: Option<Instant>,
}

impl Inner {
    /// Appends an accepted record (its memory reserved) to its partition,
    /// or parks a copy until the topic's metadata is known. On Err the
    /// reservation is released and the record gets no report.
    pub(super) fn append_or_park(
        &self,
        topic: &TopicHandle,
        rec: &Record<'_>,
        layout: &RecordLayout,
        timestamp: i64,
        token: Token,
        reserved: usize,
    ) -> Result<(), Error> {
        let a = Accepted { rec, layout, timestamp, reserved, parked_since: None };
        let token = match self.append_to_topic(topic, &a, token, false) {
            Ok(Appended::InBatch) => {
                self.core.reports.accepted();
                return Ok(());
            }
            Ok(Appended::NotKnown(token)) => token,
            Err(e) => {
                self.core.memory.release(reserved);
                return Err(e);
            }
        };
        // Metadata not known yet: keep a copy until it is.
        let mut pending = topic.pending.lock();
        if pending.bytes() >= PARK_BYTES_BEFORE_WAITING {
            self.wait_for_first_metadata(topic, &mut pending);
        }
        if topic.meta.read().known {
            drop(pending);
            return match self.append_to_topic(topic, &a, token, false) {
                Ok(Appended::InBatch) => {
                    self.core.reports.accepted();
                    Ok(())
                }
                Ok(Appended::NotKnown(_)) => unreachable!("known topic"),
                Err(e) => {
                    self.core.memory.release(reserved);
                    Err(e)
                }
            };
        }
        // Close fails parked records under this lock (purge_queued): once it
        // has begun, a record parked now could come after its last purge
        // and never be reported. Refuse it instead, as check_accepting does.
        // (A sender that waited for metadata above may have slept through
        // the start of close.)
        if self.lifecycle.closing_flag().load(Ordering::Acquire) {
            drop(pending);
            self.core.memory.release(reserved);
            return Err(Error::new(error::CLOSED, "the producer is closed or closing"));
        }
        // The parked copy costs more than the record's encoded size: the
        // PendingRecord itself and an allocation per key, value and header
        // part. Charge that too, never blocking (the record is reserved).
        let copy = parked_copy_bytes(rec);
        let reserved =
            if self.core.memory.try_reserve_spare(copy) { reserved + copy } else { reserved };
        pending.push(PendingRecord {
            partition: rec.partition,
            key: rec.key.map(Into::into),
            value: rec.value.map(Into::into),
            headers: rec.headers.iter().map(|h| (h.key.into(), h.value.map(Into::into))).collect(),
            timestamp,
            token,
            reserved,
            enqueued: Instant::now(),
        });
        self.core.reports.accepted();
        drop(pending);
        self.request_metadata();
        Ok(())
    }

    /// Parking is for a topic's first moments. Once
    /// [`PARK_BYTES_BEFORE_WAITING`] wait for its first metadata answer,
    /// kp_send waits for that answer (up to max.block.ms, as the Java
    /// producer's send waits for metadata) instead of parking copies up to
    /// buffer.memory: the I/O thread moves parked records into batches, so a
    /// start-up burst would otherwise be held twice over, once as copies and
    /// once as batches in another thread's allocator arena (measured: +3 to
    /// +6 MiB peak RSS at 5,000 partitions). No wait once the topic's
    /// metadata answered with an error (its records park, and fail at
    /// delivery.timeout.ms if it stays so), with max.block.ms 0, or while
    /// closing.
    fn wait_for_first_metadata(
        &self,
        topic: &TopicHandle,
        pending: &mut MutexGuard<'_, PendingRecords>,
    ) {
        let max_block = Duration::from_millis(self.cfg.max_block_ms);
        let Some(deadline) = Instant::now().checked_add(max_block) else { return };
        loop {
            {
                let meta = topic.meta.read();
                if meta.known || meta.last_error.is_some() {
                    return;
                }
            }
            let now = Instant::now();
            if now >= deadline || self.lifecycle.closing_flag().load(Ordering::Acquire) {
                return;
            }
            // Slices: an error answer or close does not notify.
            topic.became_known.wait_for(pending, (deadline - now).min(Duration::from_millis(20)));
        }
    }

    /// `draining`: the caller holds the topic's pending lock and moves
    /// pending records in before the topic is marked known.
    fn append_to_topic(
        &self,
        topic: &TopicHandle,
        a: &Accepted<'_, '_>,
        token: Token,
        draining: bool,
    ) -> Result<Appended, Error> {
        let meta = topic.meta.read();
        let drainable = draining && !meta.partitions.is_empty();
        if !meta.known && !drainable {
            return Ok(Appended::NotKnown(token));
        }
        let rec = a.rec;
        let choice = self.placement.choose(topic, &meta.partitions, rec.partition, rec.key)?;
        let pq = &meta.partitions[choice.partition as usize];
        let r = append(
            &self.core,
            pq,
            self.effective_batch_size(),
            &AppendRecord {
                timestamp: a.timestamp,
                key: rec.key,
                value: rec.value,
                headers: rec.headers,
                layout: a.layout,
                reserved: a.reserved,
                sticky: choice.sticky,
                parked_since: a.parked_since,
            },
            token,
        );
        if r.sticky_used_up {
            next_sticky_partition(topic, &meta.partitions, choice.partition);
        }
        drop(meta);
        if r.batch_full
            || (r.new_batch
                && self
                    .core
                    .schedule
                    .batch_opened(Instant::now() + Duration::from_millis(self.cfg.linger_ms)))
        {
            self.sender_wake.notify_one();
        }
        Ok(Appended::InBatch)
    }

    fn effective_batch_size(&self) -> usize {
        self.cfg.batch_size.min(self.cfg.max_request_size.saturating_sub(256)).max(1)
    }

    /// Moves records that waited for metadata into their partitions, in send
    /// order, then marks the topic known — all under the pending lock, so a
    /// concurrent kp_send (which sees the topic unknown, then waits for this
    /// lock) can never place a newer record ahead of them. A topic with no
    /// partition yet keeps its records waiting.
    pub(super) fn pending_to_partitions_then_mark_known(&self, topic: &TopicHandle) {
        let mut guard = topic.pending.lock();
        if topic.meta.read().partitions.is_empty() {
            return;
        }
        let any_parked = !guard.is_empty();
        for p in guard.take_all() {
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
            let a = Accepted {
                rec: &rec,
                layout: &layout,
                timestamp: p.timestamp,
                reserved: p.reserved,
                parked_since: Some(p.enqueued),
            };
            // Partitions are never removed: NotKnown cannot happen here, and
            // if it did the record would still get its report.
            let err = match self.append_to_topic(topic, &a, p.token.clone(), true) {
                Ok(Appended::InBatch) => continue,
                Ok(Appended::NotKnown(_)) => {
                    Error::new(error::INTERNAL, "the topic's partitions went missing")
                }
                Err(e) => e,
            };
            self.core.memory.release(p.reserved);
            self.core.reports.fail(
                topic.name.clone(),
                p.partition,
                Arc::new(err),
                Persistence::NotPersisted,
                vec![RecordMeta { token: p.token, timestamp: p.timestamp }],
            );
        }
        topic.meta.write().known = true;
        topic.became_known.notify_all();
        drop(guard);
        if any_parked {
            // Their batches count as opened when the records were parked
            // (`parked_since`): some may be due already.
            self.sender_wake.notify_one();
        }
    }

    /// Fails the records waiting for `topic`'s metadata (those parked at or
    /// before `only_older_than`, or all).
    pub(super) fn fail_pending(
        &self,
        topic: &TopicHandle,
        err: &Error,
        only_older_than: Option<Instant>,
    ) {
        let mut failed = {
            let mut pending = topic.pending.lock();
            match only_older_than {
                None => std::mem::take(&mut *pending),
                Some(limit) => pending.take_where(|p| p.enqueued <= limit),
            }
        };
        if failed.is_empty() {
            return;
        }
        let err = Arc::new(err.clone());
        let mut reserved = 0;
        let metas = failed
            .take_all()
            .map(|p| {
                reserved += p.reserved;
                RecordMeta { token: p.token, timestamp: p.timestamp }
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
}

/// Bytes parked for a topic's first metadata answer beyond which kp_send
/// waits for it (see `Inner::wait_for_first_metadata`).
pub const PARK_BYTES_BEFORE_WAITING: usize = 1 << 20;

/// What parking a copy of `rec` costs beyond its encoded size (allocator
/// headers counted at 16 bytes per allocation).
fn parked_copy_bytes(rec: &Record<'_>) -> usize {
    const ALLOC_HEADER: usize = 16;
    std::mem::size_of::<PendingRecord>()
        + 2 * ALLOC_HEADER
        + rec.headers.len() * (std::mem::size_of::<OwnedHeader>() + 2 * ALLOC_HEADER)
}
