//! Record batch format v2 (magic 2): the producer's hot path.
//!
//! Layout of the 61-byte batch header (big endian):
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0  | 8 | base offset |
//! | 8  | 4 | batch length (bytes after this field) |
//! | 12 | 4 | partition leader epoch |
//! | 16 | 1 | magic (2) |
//! | 17 | 4 | CRC-32C of bytes 21..end |
//! | 21 | 2 | attributes (codec bits 0-2, timestamp type bit 3, transactional bit 4, control bit 5) |
//! | 23 | 4 | last offset delta |
//! | 27 | 8 | base timestamp |
//! | 35 | 8 | max timestamp |
//! | 43 | 8 | producer id |
//! | 51 | 2 | producer epoch |
//! | 53 | 4 | base sequence |
//! | 57 | 4 | record count |
//!
//! followed by the records (compressed as one block when a codec is set).

use bytes::{BufMut, Bytes, BytesMut};

use super::compression::{self, Compression, CompressionError};
use std::mem::MaybeUninit;

use super::wire::{varint_len, varlong_len, zigzag64};

/// Size of the v2 batch header.
pub const BATCH_HEADER_LEN: usize = 61;
/// Bytes of the header before the CRC-covered region starts (attributes onwards).
pub const CRC_START: usize = 21;

const OFF_BATCH_LEN: usize = 8;
const OFF_LEADER_EPOCH: usize = 12;
const OFF_MAGIC: usize = 16;
const OFF_CRC: usize = 17;
const OFF_ATTRIBUTES: usize = 21;
const OFF_LAST_OFFSET_DELTA: usize = 23;
const OFF_BASE_TS: usize = 27;
const OFF_MAX_TS: usize = 35;
const OFF_PRODUCER_ID: usize = 43;
const OFF_PRODUCER_EPOCH: usize = 51;
const OFF_BASE_SEQUENCE: usize = 53;
const OFF_RECORD_COUNT: usize = 57;

/// Attribute bits.
pub const ATTR_CODEC_MASK: i16 = 0x07;
pub const ATTR_TIMESTAMP_TYPE: i16 = 0x08;
pub const ATTR_TRANSACTIONAL: i16 = 0x10;
pub const ATTR_CONTROL: i16 = 0x20;

/// A record header borrowed from the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordHeader<'a> {
    pub key: &'a [u8],
    pub value: Option<&'a [u8]>,
}

/// Producer identity stamped into a batch header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProducerStamp {
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
    pub transactional: bool,
}

impl ProducerStamp {
    /// No idempotence: -1 / -1 / -1, not transactional.
    pub const NONE: ProducerStamp = ProducerStamp {
        producer_id: -1,
        producer_epoch: -1,
        base_sequence: -1,
        transactional: false,
    };
}

impl Default for ProducerStamp {
    fn default() -> Self {
        ProducerStamp::NONE
    }
}

/// A sealed, ready-to-send batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedBatch {
    /// The complete batch (header + possibly compressed records).
    pub bytes: Bytes,
    pub record_count: i32,
    /// Header + uncompressed records size.
    pub uncompressed_size: usize,
    /// The builder's buffer when compression wrote the batch into a new
    /// one (free to reuse).
    pub spent: Option<BytesMut>,
    pub base_timestamp: i64,
    pub max_timestamp: i64,
}

/// Writes into spare capacity already reserved for the record. Indexing is
/// bounds-checked, so a size mismatch panics instead of writing past the
/// reservation.
struct SliceWriter<'a> {
    buf: &'a mut [MaybeUninit<u8>],
    pos: usize,
}

impl SliceWriter<'_> {
    #[inline(always)]
    fn byte(&mut self, b: u8) {
        self.buf[self.pos] = MaybeUninit::new(b);
        self.pos += 1;
    }

    #[inline(always)]
    fn uvarint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.byte((v as u8) | 0x80);
            v >>= 7;
        }
        self.byte(v as u8);
    }

    #[inline(always)]
    fn bytes(&mut self, b: &[u8]) {
        let dst = &mut self.buf[self.pos..self.pos + b.len()];
        // SAFETY: MaybeUninit<u8> has u8's layout; dst and b have equal
        // lengths (checked by the slice above) and cannot overlap (dst is
        // our own spare capacity).
        unsafe { std::ptr::copy_nonoverlapping(b.as_ptr(), dst.as_mut_ptr() as *mut u8, b.len()) };
        self.pos += b.len();
    }

    #[inline(always)]
    fn opt(&mut self, b: Option<&[u8]>) {
        match b {
            None => self.byte(1), // zigzag(-1)
            Some(b) => {
                self.uvarint(zigzag64(b.len() as i64));
                self.bytes(b);
            }
        }
    }
}

/// The position-independent part of a record's encoding: key, value and
/// headers with their length prefixes. Computed once per record; the exact
/// size in a batch adds the timestamp and offset deltas.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordLayout {
    payload_len: usize,
}

impl RecordLayout {
    #[inline]
    pub fn new(
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[RecordHeader<'_>],
    ) -> RecordLayout {
        let mut n = opt_len(key) + opt_len(value) + varint_len(headers.len() as i32);
        for h in headers {
            n += varint_len(h.key.len() as i32) + h.key.len() + opt_len(h.value);
        }
        RecordLayout { payload_len: n }
    }

    /// Largest encoded size (length prefix included) at any position in any
    /// batch: deltas at their widest.
    #[inline]
    pub fn max_encoded_len(&self) -> usize {
        let body = 1 + 10 + 5 + self.payload_len;
        varint_len(body as i32) + body
    }

    #[inline]
    fn body_len(&self, ts_delta: i64, offset_delta: i32) -> usize {
        1 + varlong_len(ts_delta) + varint_len(offset_delta) + self.payload_len
    }
}

/// Where a record goes in its batch and how big it is there.
#[derive(Debug, Clone, Copy)]
struct RecordSizing {
    ts_delta: i64,
    offset_delta: i32,
    /// Encoded size without the length prefix.
    body: usize,
    /// Encoded size with the length prefix.
    total: usize,
}

/// Builds one v2 record batch. Records are encoded in place, uncompressed,
/// right after a reserved 61-byte header; [`BatchBuilder::seal`] compresses
/// and fills the header.
#[derive(Debug)]
pub struct BatchBuilder {
    buf: BytesMut,
    count: i32,
    base_timestamp: i64,
    max_timestamp: i64,
}

impl Default for BatchBuilder {
    fn default() -> Self {
        Self::with_capacity(0)
    }
}

#[inline]
fn opt_len(b: Option<&[u8]>) -> usize {
    match b {
        None => 1, // varint(-1)
        Some(b) => varint_len(b.len() as i32) + b.len(),
    }
}

impl BatchBuilder {
    /// `cap` is the expected total batch size (header included).
    pub fn with_capacity(cap: usize) -> Self {
        Self::in_buffer(BytesMut::with_capacity(cap.max(BATCH_HEADER_LEN)))
    }

    /// A builder writing into `buf` (emptied first), e.g. the buffer of an
    /// earlier batch: its capacity is kept.
    pub fn in_buffer(mut buf: BytesMut) -> Self {
        buf.clear();
        buf.put_bytes(0, BATCH_HEADER_LEN);
        BatchBuilder { buf, count: 0, base_timestamp: -1, max_timestamp: -1 }
    }

    #[inline]
    fn deltas(&self, timestamp: i64) -> (i64, i32) {
        let ts_delta =
            if self.count == 0 { 0 } else { timestamp.wrapping_sub(self.base_timestamp) };
        (ts_delta, self.count)
    }

    /// Exact encoded size (length varint included) of the record that
    /// [`append`](Self::append) would write now with these arguments.
    pub fn record_size(
        &self,
        timestamp: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[RecordHeader<'_>],
    ) -> usize {
        self.encoded_len(timestamp, &RecordLayout::new(key, value, headers))
    }

    /// Exact encoded size of a record with this layout appended now.
    #[inline]
    pub fn encoded_len(&self, timestamp: i64, layout: &RecordLayout) -> usize {
        self.sizing(timestamp, layout).total
    }

    /// Deltas and sizes of a record with this layout appended now.
    #[inline]
    fn sizing(&self, timestamp: i64, layout: &RecordLayout) -> RecordSizing {
        let (ts_delta, offset_delta) = self.deltas(timestamp);
        let body = layout.body_len(ts_delta, offset_delta);
        RecordSizing { ts_delta, offset_delta, body, total: varint_len(body as i32) + body }
    }

    /// Encode one record in place and return its offset delta. The first
    /// record's timestamp becomes the batch's base timestamp.
    pub fn append(
        &mut self,
        timestamp: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[RecordHeader<'_>],
    ) -> i32 {
        let layout = RecordLayout::new(key, value, headers);
        self.append_with_layout(timestamp, key, value, headers, &layout)
    }

    /// Appends the record only if the batch stays within `limit` bytes
    /// (header included); an empty batch always takes it. Returns the
    /// record's offset delta, or None when it does not fit. `layout` must be
    /// `RecordLayout::new(key, value, headers)`.
    #[inline]
    pub fn try_append(
        &mut self,
        limit: usize,
        timestamp: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[RecordHeader<'_>],
        layout: &RecordLayout,
    ) -> Option<i32> {
        debug_assert_eq!(*layout, RecordLayout::new(key, value, headers));
        let sizing = self.sizing(timestamp, layout);
        if self.count > 0 && self.buf.len() + sizing.total > limit {
            return None;
        }
        Some(self.write_record(timestamp, key, value, headers, sizing))
    }

    /// [`append`](Self::append) with the layout computed by the caller.
    #[inline]
    pub fn append_with_layout(
        &mut self,
        timestamp: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[RecordHeader<'_>],
        layout: &RecordLayout,
    ) -> i32 {
        debug_assert_eq!(*layout, RecordLayout::new(key, value, headers));
        let sizing = self.sizing(timestamp, layout);
        self.write_record(timestamp, key, value, headers, sizing)
    }

    /// Writes a record sized by [`sizing`](Self::sizing) (computed before
    /// this call changes the batch).
    #[inline]
    fn write_record(
        &mut self,
        timestamp: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[RecordHeader<'_>],
        sizing: RecordSizing,
    ) -> i32 {
        let RecordSizing { ts_delta: td, offset_delta: od, body, total } = sizing;
        if self.count == 0 {
            self.base_timestamp = timestamp;
            self.max_timestamp = timestamp;
        } else if timestamp > self.max_timestamp {
            self.max_timestamp = timestamp;
        }
        // Reserve once, then write the record into the spare capacity with
        // a plain cursor: no per-field capacity checks, no zero-filling.
        self.buf.reserve(total);
        let start = self.buf.len();
        let mut w = SliceWriter { buf: &mut self.buf.spare_capacity_mut()[..total], pos: 0 };
        w.uvarint(zigzag64(body as i64));
        w.byte(0); // record attributes (unused)
        w.uvarint(zigzag64(td));
        w.uvarint(zigzag64(od as i64));
        w.opt(key);
        w.opt(value);
        w.uvarint(zigzag64(headers.len() as i64));
        for h in headers {
            w.uvarint(zigzag64(h.key.len() as i64));
            w.bytes(h.key);
            w.opt(h.value);
        }
        // A layout that does not match the record would leave bytes unwritten.
        assert_eq!(w.pos, total, "record size computed and written differ");
        // SAFETY: the `total` bytes after `start` were just initialised (the
        // writer covered exactly `total` bytes, asserted above).
        unsafe { self.buf.set_len(start + total) };
        self.count += 1;
        od
    }

    pub fn record_count(&self) -> i32 {
        self.count
    }

    /// Bytes allocated for the batch (header included).
    pub fn capacity(&self) -> usize {
        self.buf.capacity()
    }

    /// Moves the batch into a buffer of exactly `cap` bytes (at least its
    /// size): the caller decides how far it grows.
    pub fn grow_to(&mut self, cap: usize) {
        let mut buf = BytesMut::with_capacity(cap.max(self.buf.len()));
        buf.extend_from_slice(&self.buf);
        self.buf = buf;
    }

    /// Uncompressed size including the 61-byte header.
    pub fn size_in_bytes(&self) -> usize {
        self.buf.len()
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Timestamp of the first record (-1 when empty).
    pub fn first_timestamp(&self) -> i64 {
        self.base_timestamp
    }

    /// Largest record timestamp (-1 when empty).
    pub fn max_timestamp(&self) -> i64 {
        self.max_timestamp
    }

    /// The encoded, uncompressed records (without header).
    pub fn records_bytes(&self) -> &[u8] {
        &self.buf[BATCH_HEADER_LEN..]
    }

    /// Compress the records (if asked), fill the header and compute the CRC.
    pub fn seal(
        self,
        c: Compression,
        producer: ProducerStamp,
    ) -> Result<SealedBatch, CompressionError> {
        let uncompressed_size = self.buf.len();
        let (mut out, spent) = match c {
            Compression::None => (self.buf, None),
            _ => {
                let records = &self.buf[BATCH_HEADER_LEN..];
                let mut out = BytesMut::with_capacity(BATCH_HEADER_LEN + records.len() / 2 + 64);
                out.put_bytes(0, BATCH_HEADER_LEN);
                compression::compress(c, records, &mut out)?;
                (out, Some(self.buf))
            }
        };
        let h = &mut out[..];
        let mut attributes = c.codec_id() as i16;
        if producer.transactional {
            attributes |= ATTR_TRANSACTIONAL;
        }
        let batch_len = (h.len() - 12) as i32;
        h[0..8].copy_from_slice(&0i64.to_be_bytes());
        h[OFF_BATCH_LEN..OFF_BATCH_LEN + 4].copy_from_slice(&batch_len.to_be_bytes());
        h[OFF_LEADER_EPOCH..OFF_LEADER_EPOCH + 4].copy_from_slice(&(-1i32).to_be_bytes());
        h[OFF_MAGIC] = 2;
        h[OFF_ATTRIBUTES..OFF_ATTRIBUTES + 2].copy_from_slice(&attributes.to_be_bytes());
        h[OFF_LAST_OFFSET_DELTA..OFF_LAST_OFFSET_DELTA + 4]
            .copy_from_slice(&(self.count - 1).to_be_bytes());
        h[OFF_BASE_TS..OFF_BASE_TS + 8].copy_from_slice(&self.base_timestamp.to_be_bytes());
        h[OFF_MAX_TS..OFF_MAX_TS + 8].copy_from_slice(&self.max_timestamp.to_be_bytes());
        h[OFF_RECORD_COUNT..OFF_RECORD_COUNT + 4].copy_from_slice(&self.count.to_be_bytes());
        write_stamp(h, producer);
        Ok(SealedBatch {
            bytes: out.freeze(),
            record_count: self.count,
            uncompressed_size,
            spent,
            base_timestamp: self.base_timestamp,
            max_timestamp: self.max_timestamp,
        })
    }
}

/// Write producer fields + transactional bit and recompute the CRC.
fn write_stamp(h: &mut [u8], s: ProducerStamp) {
    let mut attributes = i16::from_be_bytes([h[OFF_ATTRIBUTES], h[OFF_ATTRIBUTES + 1]]);
    if s.transactional {
        attributes |= ATTR_TRANSACTIONAL;
    } else {
        attributes &= !ATTR_TRANSACTIONAL;
    }
    h[OFF_ATTRIBUTES..OFF_ATTRIBUTES + 2].copy_from_slice(&attributes.to_be_bytes());
    h[OFF_PRODUCER_ID..OFF_PRODUCER_ID + 8].copy_from_slice(&s.producer_id.to_be_bytes());
    h[OFF_PRODUCER_EPOCH..OFF_PRODUCER_EPOCH + 2].copy_from_slice(&s.producer_epoch.to_be_bytes());
    h[OFF_BASE_SEQUENCE..OFF_BASE_SEQUENCE + 4].copy_from_slice(&s.base_sequence.to_be_bytes());
    let crc = crc32c::crc32c(&h[CRC_START..]);
    h[OFF_CRC..OFF_CRC + 4].copy_from_slice(&crc.to_be_bytes());
}

/// Rewrite producer id / epoch / base sequence / transactional bit of one
/// sealed batch in place and recompute its CRC (for retries after an epoch
/// bump or sequence reset). Returns `false` (and leaves `batch` untouched) if
/// `batch` is not a complete v2 batch.
pub fn restamp(batch: &mut [u8], stamp: ProducerStamp) -> bool {
    if batch.len() < BATCH_HEADER_LEN || batch[OFF_MAGIC] != 2 {
        return false;
    }
    let len = i32::from_be_bytes(batch[8..12].try_into().unwrap());
    if len < 0 || len as usize + 12 != batch.len() {
        return false;
    }
    write_stamp(batch, stamp);
    true
}

/// [`restamp`] for a shared `Bytes`: reuses the allocation when `batch` is
/// the only reference, copies otherwise.
pub fn restamp_bytes(batch: Bytes, stamp: ProducerStamp) -> Bytes {
    let mut m = match batch.try_into_mut() {
        Ok(m) => m,
        Err(b) => BytesMut::from(&b[..]),
    };
    restamp(&mut m, stamp);
    m.freeze()
}
