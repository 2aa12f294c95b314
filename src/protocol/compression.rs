//! Record-batch compression codecs, in the exact container formats Apache
//! Kafka's Java code writes and accepts.
//!
//! * gzip: a standard RFC 1952 stream (decoding accepts concatenated members).
//! * snappy: the xerial `SnappyOutputStream` framing used by the Java
//!   producer: 16-byte header (`82 53 4E 41 50 50 59 00`, i32 BE version 1,
//!   i32 BE compatible version 1), then chunks of `[i32 BE length][raw snappy
//!   block]`, each block compressing at most 32 KiB of input. Decoding accepts
//!   that framing (including concatenated streams, whose headers re-appear at
//!   chunk boundaries) and, like xerial's `SnappyInputStream`, falls back to a
//!   single raw snappy block when the magic is absent.
//! * lz4: an LZ4 frame as `Lz4BlockOutputStream` writes it: magic
//!   `04 22 4D 18`, FLG `0x60` (version 1, independent blocks, no block
//!   checksum, no content size, no content checksum), BD `0x40` (64 KiB
//!   blocks), header checksum byte = `(xxh32(FLG,BD) >> 8) & 0xFF` (`0x82`),
//!   blocks `[u32 LE size | 0x8000_0000 if stored raw][data]`, end mark
//!   `00 00 00 00`. Decoding accepts what `Lz4BlockInputStream` accepts:
//!   version 1, reserved bits 0 (so no dictionary id), independent blocks only,
//!   block sizes 64 KiB..4 MiB, optional content size (skipped), optional block
//!   checksums (verified), optional content checksum (verified here; Java reads
//!   it without checking). The header checksum is verified (Java only skips it
//!   for the legacy magic v0 format).
//!   `lz4_flex` implements only the fast LZ4 compressor: levels 1..=17 are
//!   validated like Kafka's `compression.lz4.level` but have no effect.
//! * zstd: a standard zstd frame (decoding accepts concatenated frames).
//!
//! Every decompressor takes an output `limit` and fails with
//! [`CompressionError::TooLarge`] instead of producing more, so a
//! decompression bomb costs at most `limit` bytes of memory.

use std::fmt;
use std::io::{Read, Write};

use bytes::{BufMut, BytesMut};

/// Codec attribute ids (bits 0..2 of the record batch attributes).
pub const CODEC_NONE: u8 = 0;
pub const CODEC_GZIP: u8 = 1;
pub const CODEC_SNAPPY: u8 = 2;
pub const CODEC_LZ4: u8 = 3;
pub const CODEC_ZSTD: u8 = 4;

/// Compression codec plus optional level (`None` = the codec's default).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Compression {
    #[default]
    None,
    /// Levels 1..=9 (default 6, like `java.util.zip.Deflater`'s default).
    Gzip(Option<i32>),
    Snappy,
    /// Levels 1..=17 are accepted but ignored (see module docs).
    Lz4(Option<i32>),
    /// Levels -131072..=22 (default 3).
    Zstd(Option<i32>),
}

impl Compression {
    /// The attribute codec id (0..=4).
    pub fn codec_id(&self) -> u8 {
        match self {
            Compression::None => CODEC_NONE,
            Compression::Gzip(_) => CODEC_GZIP,
            Compression::Snappy => CODEC_SNAPPY,
            Compression::Lz4(_) => CODEC_LZ4,
            Compression::Zstd(_) => CODEC_ZSTD,
        }
    }

    /// The codec for an attribute id, with the default level.
    pub fn from_codec_id(id: u8) -> Option<Compression> {
        Some(match id {
            CODEC_NONE => Compression::None,
            CODEC_GZIP => Compression::Gzip(None),
            CODEC_SNAPPY => Compression::Snappy,
            CODEC_LZ4 => Compression::Lz4(None),
            CODEC_ZSTD => Compression::Zstd(None),
            _ => return None,
        })
    }

    /// Kafka's `compression.type` name.
    pub fn name(&self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip(_) => "gzip",
            Compression::Snappy => "snappy",
            Compression::Lz4(_) => "lz4",
            Compression::Zstd(_) => "zstd",
        }
    }

    /// Check the level against the ranges Kafka accepts.
    pub fn validate(&self) -> Result<(), CompressionError> {
        let (codec, level, lo, hi) = match *self {
            Compression::Gzip(Some(l)) => ("gzip", l, 1, 9),
            Compression::Lz4(Some(l)) => ("lz4", l, 1, 17),
            Compression::Zstd(Some(l)) => ("zstd", l, -131072, 22),
            _ => return Ok(()),
        };
        if level < lo || level > hi {
            return Err(CompressionError::InvalidLevel { codec, level });
        }
        Ok(())
    }
}

/// Compression / decompression failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CompressionError {
    InvalidLevel {
        codec: &'static str,
        level: i32,
    },
    UnknownCodec(u8),
    /// The compressed data is malformed.
    Corrupt(&'static str),
    /// Decompressing would exceed the caller's output limit.
    TooLarge {
        limit: usize,
    },
    /// Error reported by the underlying codec library.
    Codec(String),
}

impl fmt::Display for CompressionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CompressionError::InvalidLevel { codec, level } => {
                write!(f, "invalid {codec} compression level {level}")
            }
            CompressionError::UnknownCodec(id) => write!(f, "unknown compression codec id {id}"),
            CompressionError::Corrupt(what) => write!(f, "corrupt compressed data: {what}"),
            CompressionError::TooLarge { limit } => {
                write!(f, "decompressed data exceeds the limit of {limit} bytes")
            }
            CompressionError::Codec(msg) => write!(f, "codec error: {msg}"),
        }
    }
}

impl std::error::Error for CompressionError {}

fn codec_err(e: impl fmt::Display) -> CompressionError {
    CompressionError::Codec(e.to_string())
}

thread_local! {
    /// One zstd context (and output scratch) per thread, reused across
    /// batches: creating and resetting a context per batch cost more than
    /// the compression itself.
    static ZSTD: std::cell::RefCell<Option<(i32, zstd::bulk::Compressor<'static>, Vec<u8>)>> =
        const { std::cell::RefCell::new(None) };
}

fn zstd_compress(level: i32, input: &[u8], out: &mut BytesMut) -> Result<(), CompressionError> {
    ZSTD.with(|cell| {
        let mut slot = cell.borrow_mut();
        if slot.as_ref().is_none_or(|(l, _, _)| *l != level) {
            let c = zstd::bulk::Compressor::new(level).map_err(codec_err)?;
            *slot = Some((level, c, Vec::new()));
        }
        let (_, ctx, scratch) = slot.as_mut().expect("set above");
        scratch.clear();
        // The Vec is written in its spare capacity: no zero-filling.
        scratch.reserve(zstd::zstd_safe::compress_bound(input.len()));
        ctx.compress_to_buffer(input, scratch).map_err(codec_err)?;
        out.extend_from_slice(scratch);
        if scratch.capacity() > 4 * 1024 * 1024 {
            *scratch = Vec::new();
        }
        Ok(())
    })
}

/// Compress `input` with `c`, appending the compressed container to `out`.
/// `Compression::None` appends `input` unchanged.
pub fn compress(c: Compression, input: &[u8], out: &mut BytesMut) -> Result<(), CompressionError> {
    c.validate()?;
    match c {
        Compression::None => {
            out.extend_from_slice(input);
            Ok(())
        }
        Compression::Gzip(level) => {
            let level = level.map(|l| l as u32).unwrap_or(6);
            let mut enc =
                flate2::write::GzEncoder::new(out.writer(), flate2::Compression::new(level));
            enc.write_all(input).map_err(codec_err)?;
            enc.finish().map_err(codec_err)?;
            Ok(())
        }
        Compression::Snappy => {
            snappy_xerial_compress(input, out);
            Ok(())
        }
        Compression::Lz4(_) => {
            lz4_frame_compress(input, out);
            Ok(())
        }
        Compression::Zstd(level) => zstd_compress(level.unwrap_or(3), input, out),
    }
}

/// Decompress a container produced by codec `codec_id` (0..=4), producing at
/// most `limit` bytes.
pub fn decompress(codec_id: u8, input: &[u8], limit: usize) -> Result<Vec<u8>, CompressionError> {
    match codec_id {
        CODEC_NONE => {
            if input.len() > limit {
                return Err(CompressionError::TooLarge { limit });
            }
            Ok(input.to_vec())
        }
        CODEC_GZIP => read_limited(flate2::read::MultiGzDecoder::new(input), limit),
        CODEC_SNAPPY => snappy_decompress(input, limit),
        CODEC_LZ4 => lz4_frame_decompress(input, limit),
        CODEC_ZSTD => {
            let dec = zstd::stream::read::Decoder::with_buffer(input).map_err(codec_err)?;
            read_limited(dec, limit)
        }
        other => Err(CompressionError::UnknownCodec(other)),
    }
}

fn read_limited<R: Read>(r: R, limit: usize) -> Result<Vec<u8>, CompressionError> {
    let mut out = Vec::new();
    let cap = (limit as u64).saturating_add(1);
    r.take(cap).read_to_end(&mut out).map_err(codec_err)?;
    if out.len() > limit {
        return Err(CompressionError::TooLarge { limit });
    }
    Ok(out)
}

// ---------------------------------------------------------------------------
// snappy (xerial framing)

/// xerial snappy-java stream magic.
pub const SNAPPY_XERIAL_MAGIC: [u8; 8] = [0x82, b'S', b'N', b'A', b'P', b'P', b'Y', 0];
const SNAPPY_XERIAL_HEADER_LEN: usize = 16;
const SNAPPY_BLOCK: usize = 32 * 1024;

fn snappy_xerial_compress(input: &[u8], out: &mut BytesMut) {
    out.put_slice(&SNAPPY_XERIAL_MAGIC);
    out.put_i32(1); // version
    out.put_i32(1); // minimum compatible version
    let mut enc = snap::raw::Encoder::new();
    for chunk in input.chunks(SNAPPY_BLOCK) {
        let len_pos = out.len();
        let max = snap::raw::max_compress_len(chunk.len());
        out.resize(len_pos + 4 + max, 0);
        // cannot fail: the output buffer has max_compress_len bytes and the
        // chunk is far below snappy's 4 GiB input limit
        let n = enc
            .compress(chunk, &mut out[len_pos + 4..])
            .expect("snappy block compression into a max-sized buffer");
        out[len_pos..len_pos + 4].copy_from_slice(&(n as i32).to_be_bytes());
        out.truncate(len_pos + 4 + n);
    }
}

fn snappy_raw_block(block: &[u8], out: &mut Vec<u8>, limit: usize) -> Result<(), CompressionError> {
    let n = snap::raw::decompress_len(block)
        .map_err(|_| CompressionError::Corrupt("bad snappy block length"))?;
    if n > limit - out.len() {
        return Err(CompressionError::TooLarge { limit });
    }
    // A snappy element expands at most ~21x (3-byte copy -> 64 bytes); reject
    // implausible length headers before allocating for them.
    if n > block.len().saturating_mul(32).saturating_add(64) {
        return Err(CompressionError::Corrupt("snappy length header exceeds the maximum ratio"));
    }
    let start = out.len();
    out.resize(start + n, 0);
    match snap::raw::Decoder::new().decompress(block, &mut out[start..]) {
        Ok(m) if m == n => Ok(()),
        _ => {
            out.truncate(start);
            Err(CompressionError::Corrupt("bad snappy block"))
        }
    }
}

fn snappy_decompress(input: &[u8], limit: usize) -> Result<Vec<u8>, CompressionError> {
    let mut out = Vec::new();
    if input.len() < SNAPPY_XERIAL_HEADER_LEN || input[..8] != SNAPPY_XERIAL_MAGIC {
        // raw snappy, as xerial's SnappyInputStream falls back to
        snappy_raw_block(input, &mut out, limit)?;
        return Ok(out);
    }
    let mut pos = 0usize;
    while pos < input.len() {
        let rest = &input[pos..];
        if rest.len() >= SNAPPY_XERIAL_HEADER_LEN && rest[..8] == SNAPPY_XERIAL_MAGIC {
            // (possibly concatenated) stream header; its first i32 is negative,
            // so it can never be mistaken for a chunk length
            pos += SNAPPY_XERIAL_HEADER_LEN;
            continue;
        }
        if rest.len() < 4 {
            return Err(CompressionError::Corrupt("truncated snappy chunk length"));
        }
        let len = i32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]);
        if len < 0 {
            return Err(CompressionError::Corrupt("negative snappy chunk length"));
        }
        let len = len as usize;
        if rest.len() - 4 < len {
            return Err(CompressionError::Corrupt("truncated snappy chunk"));
        }
        snappy_raw_block(&rest[4..4 + len], &mut out, limit)?;
        pos += 4 + len;
    }
    Ok(out)
}

// ---------------------------------------------------------------------------
// lz4 frame

/// LZ4 frame magic, little endian on the wire (`04 22 4D 18`).
pub const LZ4_MAGIC: u32 = 0x184D_2204;
const LZ4_FLG: u8 = 0x60; // version 01, block independence
const LZ4_BD: u8 = 0x40; // 64 KiB max block size
const LZ4_BLOCK: usize = 64 * 1024;
const LZ4_UNCOMPRESSED_BIT: u32 = 0x8000_0000;

fn lz4_frame_compress(input: &[u8], out: &mut BytesMut) {
    out.put_u32_le(LZ4_MAGIC);
    out.put_u8(LZ4_FLG);
    out.put_u8(LZ4_BD);
    out.put_u8((xxh32(&[LZ4_FLG, LZ4_BD], 0) >> 8) as u8);
    for chunk in input.chunks(LZ4_BLOCK) {
        let len_pos = out.len();
        let max = lz4_flex::block::get_maximum_output_size(chunk.len());
        out.resize(len_pos + 4 + max, 0);
        let n = lz4_flex::block::compress_into(chunk, &mut out[len_pos + 4..]).ok();
        match n {
            Some(n) if n < chunk.len() => {
                out[len_pos..len_pos + 4].copy_from_slice(&(n as u32).to_le_bytes());
                out.truncate(len_pos + 4 + n);
            }
            _ => {
                // incompressible: store raw, as Lz4BlockOutputStream does
                out.truncate(len_pos);
                out.put_u32_le(chunk.len() as u32 | LZ4_UNCOMPRESSED_BIT);
                out.put_slice(chunk);
            }
        }
    }
    out.put_u32_le(0); // end mark
}

fn lz4_frame_decompress(input: &[u8], limit: usize) -> Result<Vec<u8>, CompressionError> {
    use CompressionError::Corrupt;
    let mut r = crate::protocol::wire::Reader::new(input);
    let trunc = |_| Corrupt("truncated lz4 frame");
    let magic = u32::from_le_bytes(r.get_slice(4).map_err(trunc)?.try_into().unwrap());
    if magic != LZ4_MAGIC {
        return Err(Corrupt("bad lz4 frame magic"));
    }
    let desc_start = r.position();
    let flg = r.get_u8().map_err(trunc)?;
    let bd = r.get_u8().map_err(trunc)?;
    if flg >> 6 != 1 {
        return Err(Corrupt("unsupported lz4 frame version"));
    }
    if flg & 0x03 != 0 {
        return Err(Corrupt("lz4 frame reserved FLG bits set (dictionary ids unsupported)"));
    }
    if flg & 0x20 == 0 {
        return Err(Corrupt("dependent lz4 blocks are unsupported"));
    }
    let block_checksum = flg & 0x10 != 0;
    let content_size = flg & 0x08 != 0;
    let content_checksum = flg & 0x04 != 0;
    if bd & 0x8f != 0 {
        return Err(Corrupt("lz4 frame reserved BD bits set"));
    }
    let bsize_id = (bd >> 4) & 7;
    if !(4..=7).contains(&bsize_id) {
        return Err(Corrupt("bad lz4 block maximum size"));
    }
    let max_block = 1usize << (2 * bsize_id as usize + 8);
    if content_size {
        r.skip(8).map_err(trunc)?;
    }
    let desc = &input[desc_start..r.position()];
    let hc = r.get_u8().map_err(trunc)?;
    if hc != (xxh32(desc, 0) >> 8) as u8 {
        return Err(Corrupt("lz4 frame descriptor checksum mismatch"));
    }
    let mut out: Vec<u8> = Vec::new();
    loop {
        let word = r.get_u32().map_err(trunc)?.swap_bytes(); // LE
        if word == 0 {
            break;
        }
        let raw = word & LZ4_UNCOMPRESSED_BIT != 0;
        let size = (word & !LZ4_UNCOMPRESSED_BIT) as usize;
        if size > max_block {
            return Err(Corrupt("lz4 block larger than the frame's maximum"));
        }
        let data = r.get_slice(size).map_err(trunc)?;
        if block_checksum {
            let sum = r.get_u32().map_err(trunc)?.swap_bytes();
            if sum != xxh32(data, 0) {
                return Err(Corrupt("lz4 block checksum mismatch"));
            }
        }
        let room = limit - out.len();
        if raw {
            if data.len() > room {
                return Err(CompressionError::TooLarge { limit });
            }
            out.extend_from_slice(data);
        } else {
            // LZ4 expands at most ~255x: never allocate more than the block can produce
            let cap = room.min(max_block).min(data.len().saturating_mul(255).saturating_add(16));
            let start = out.len();
            out.resize(start + cap, 0);
            match lz4_flex::block::decompress_into(data, &mut out[start..]) {
                Ok(n) => out.truncate(start + n),
                Err(_) => {
                    out.truncate(start);
                    return Err(if cap == room && room < max_block {
                        CompressionError::TooLarge { limit }
                    } else {
                        Corrupt("bad lz4 block")
                    });
                }
            }
        }
    }
    if content_checksum {
        let sum = r.get_u32().map_err(trunc)?.swap_bytes();
        if sum != xxh32(&out, 0) {
            return Err(Corrupt("lz4 content checksum mismatch"));
        }
    }
    Ok(out)
}

// ---------------------------------------------------------------------------
// xxHash32 (needed for LZ4 frame header / block / content checksums)

const P1: u32 = 2_654_435_761;
const P2: u32 = 2_246_822_519;
const P3: u32 = 3_266_489_917;
const P4: u32 = 668_265_263;
const P5: u32 = 374_761_393;

#[inline]
fn xx_round(acc: u32, lane: u32) -> u32 {
    acc.wrapping_add(lane.wrapping_mul(P2)).rotate_left(13).wrapping_mul(P1)
}

#[inline]
fn le32(b: &[u8]) -> u32 {
    u32::from_le_bytes([b[0], b[1], b[2], b[3]])
}

/// One-shot xxHash32.
pub fn xxh32(data: &[u8], seed: u32) -> u32 {
    let len = data.len();
    let mut rest = data;
    let mut h = if len >= 16 {
        let mut v1 = seed.wrapping_add(P1).wrapping_add(P2);
        let mut v2 = seed.wrapping_add(P2);
        let mut v3 = seed;
        let mut v4 = seed.wrapping_sub(P1);
        while rest.len() >= 16 {
            v1 = xx_round(v1, le32(&rest[0..]));
            v2 = xx_round(v2, le32(&rest[4..]));
            v3 = xx_round(v3, le32(&rest[8..]));
            v4 = xx_round(v4, le32(&rest[12..]));
            rest = &rest[16..];
        }
        v1.rotate_left(1)
            .wrapping_add(v2.rotate_left(7))
            .wrapping_add(v3.rotate_left(12))
            .wrapping_add(v4.rotate_left(18))
    } else {
        seed.wrapping_add(P5)
    };
    h = h.wrapping_add(len as u32);
    while rest.len() >= 4 {
        h = h.wrapping_add(le32(rest).wrapping_mul(P3)).rotate_left(17).wrapping_mul(P4);
        rest = &rest[4..];
    }
    for &b in rest {
        h = h.wrapping_add((b as u32).wrapping_mul(P5)).rotate_left(11).wrapping_mul(P1);
    }
    h ^= h >> 15;
    h = h.wrapping_mul(P2);
    h ^= h >> 13;
    h = h.wrapping_mul(P3);
    h ^= h >> 16;
    h
}
