//! Record batch decoding (CRC check, decompression), for the tests and the
//! mock brokers only: the producer never reads batches.

use crate::protocol::record_batch::*;
use crate::protocol::wire::Reader;
use crate::protocol::DecodeError;

use super::decompress::decompress;

/// Default cap on the decompressed size of one batch in [`decode_batches`].
pub const DEFAULT_MAX_UNCOMPRESSED: usize = 64 * 1024 * 1024;

// ---------------------------------------------------------------------------
// decoding

/// A decoded record header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodedHeader {
    pub key: Vec<u8>,
    pub value: Option<Vec<u8>>,
}

/// A decoded record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodedRecord {
    pub attributes: i8,
    pub timestamp_delta: i64,
    /// base timestamp + delta
    pub timestamp: i64,
    pub offset_delta: i32,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub headers: Vec<DecodedHeader>,
}

/// A decoded (CRC-verified, decompressed) v2 batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodedBatch {
    pub base_offset: i64,
    pub batch_length: i32,
    pub partition_leader_epoch: i32,
    pub magic: i8,
    pub crc: u32,
    pub attributes: i16,
    pub last_offset_delta: i32,
    pub base_timestamp: i64,
    pub max_timestamp: i64,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
    pub record_count: i32,
    pub records: Vec<DecodedRecord>,
}

impl DecodedBatch {
    pub fn codec_id(&self) -> u8 {
        (self.attributes & ATTR_CODEC_MASK) as u8
    }
    pub fn is_transactional(&self) -> bool {
        self.attributes & ATTR_TRANSACTIONAL != 0
    }
    pub fn is_control(&self) -> bool {
        self.attributes & ATTR_CONTROL != 0
    }
    /// true = LogAppendTime, false = CreateTime
    pub fn is_log_append_time(&self) -> bool {
        self.attributes & ATTR_TIMESTAMP_TYPE != 0
    }
}

/// Decode one or more concatenated v2 batches, verifying CRCs and
/// decompressing (each batch's records capped at [`DEFAULT_MAX_UNCOMPRESSED`]).
pub fn decode_batches(buf: &[u8]) -> Result<Vec<DecodedBatch>, DecodeError> {
    decode_batches_with_limit(buf, DEFAULT_MAX_UNCOMPRESSED)
}

/// [`decode_batches`] with an explicit per-batch decompressed-size cap.
pub fn decode_batches_with_limit(
    buf: &[u8],
    max_uncompressed: usize,
) -> Result<Vec<DecodedBatch>, DecodeError> {
    let mut r = Reader::new(buf);
    let mut out = Vec::new();
    while !r.is_empty() {
        out.push(decode_one(&mut r, max_uncompressed)?);
    }
    Ok(out)
}

fn decode_one(r: &mut Reader<'_>, max_uncompressed: usize) -> Result<DecodedBatch, DecodeError> {
    let base_offset = r.get_i64()?;
    let batch_length = r.get_i32()?;
    if batch_length < (BATCH_HEADER_LEN - 12) as i32 {
        return Err(DecodeError::Invalid("record batch length too small"));
    }
    let body = r.get_slice(batch_length as usize)?;
    let mut b = Reader::new(body);
    let partition_leader_epoch = b.get_i32()?;
    let magic = b.get_i8()?;
    if magic != 2 {
        return Err(DecodeError::Invalid("unsupported record batch magic"));
    }
    let crc = b.get_u32()?;
    let actual = crc32c::crc32c(b.rest());
    if actual != crc {
        return Err(DecodeError::CrcMismatch { expected: crc, actual });
    }
    let attributes = b.get_i16()?;
    let last_offset_delta = b.get_i32()?;
    let base_timestamp = b.get_i64()?;
    let max_timestamp = b.get_i64()?;
    let producer_id = b.get_i64()?;
    let producer_epoch = b.get_i16()?;
    let base_sequence = b.get_i32()?;
    let record_count = b.get_i32()?;
    if record_count < 0 {
        return Err(DecodeError::Invalid("negative record count"));
    }
    let codec = (attributes & ATTR_CODEC_MASK) as u8;
    let decompressed;
    let payload: &[u8] = if codec == crate::protocol::compression::CODEC_NONE {
        b.rest()
    } else {
        decompressed = decompress(codec, b.rest(), max_uncompressed)?;
        &decompressed
    };
    let mut pr = Reader::new(payload);
    // a record takes at least 7 bytes
    let n = record_count as usize;
    if n > pr.remaining() / 7 {
        return Err(DecodeError::Invalid("record count exceeds batch size"));
    }
    let mut records = Vec::with_capacity(n);
    for _ in 0..n {
        records.push(decode_record(&mut pr, base_timestamp)?);
    }
    if !pr.is_empty() {
        return Err(DecodeError::Invalid("trailing bytes after the last record"));
    }
    Ok(DecodedBatch {
        base_offset,
        batch_length,
        partition_leader_epoch,
        magic,
        crc,
        attributes,
        last_offset_delta,
        base_timestamp,
        max_timestamp,
        producer_id,
        producer_epoch,
        base_sequence,
        record_count,
        records,
    })
}

fn get_varint_bytes(r: &mut Reader<'_>) -> Result<Option<Vec<u8>>, DecodeError> {
    let len = r.get_varint()?;
    match len {
        -1 => Ok(None),
        l if l < 0 => Err(DecodeError::Invalid("negative record field length")),
        l => Ok(Some(r.get_slice(l as usize)?.to_vec())),
    }
}

fn decode_record(r: &mut Reader<'_>, base_timestamp: i64) -> Result<DecodedRecord, DecodeError> {
    let len = r.get_varint()?;
    if len < 0 {
        return Err(DecodeError::Invalid("negative record length"));
    }
    let mut rr = Reader::new(r.get_slice(len as usize)?);
    let attributes = rr.get_i8()?;
    let timestamp_delta = rr.get_varlong()?;
    let offset_delta = rr.get_varint()?;
    let key = get_varint_bytes(&mut rr)?;
    let value = get_varint_bytes(&mut rr)?;
    let nh = rr.get_varint()?;
    if nh < 0 {
        return Err(DecodeError::Invalid("negative header count"));
    }
    // a header takes at least 2 bytes
    if nh as usize > rr.remaining() / 2 {
        return Err(DecodeError::Invalid("header count exceeds record size"));
    }
    let mut headers = Vec::with_capacity(nh as usize);
    for _ in 0..nh {
        let key =
            get_varint_bytes(&mut rr)?.ok_or(DecodeError::Invalid("null record header key"))?;
        let value = get_varint_bytes(&mut rr)?;
        headers.push(DecodedHeader { key, value });
    }
    if !rr.is_empty() {
        return Err(DecodeError::Invalid("record length does not match its fields"));
    }
    Ok(DecodedRecord {
        attributes,
        timestamp_delta,
        timestamp: base_timestamp.wrapping_add(timestamp_delta),
        offset_delta,
        key,
        value,
        headers,
    })
}
