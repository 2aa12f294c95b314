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
//! The producer only compresses. The decompressors (which the tests and the
//! mock brokers use to check what kp wrote) live in
//! `protocol::test_support`, outside the shipped library.
//!
//! lz4 frames are written by hand around `lz4_flex`'s block compressor:
//! straight into the batch buffer. `lz4_flex::frame::FrameEncoder` would
//! copy the batch into its own buffer, compress into a second one and copy
//! that out again, allocating both buffers and a hash table per batch.

use std::fmt;
use std::io::Write;

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

pub(crate) fn codec_err(e: impl fmt::Display) -> CompressionError {
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

// ---------------------------------------------------------------------------
// snappy (xerial framing)

/// xerial snappy-java stream magic.
pub const SNAPPY_XERIAL_MAGIC: [u8; 8] = [0x82, b'S', b'N', b'A', b'P', b'P', b'Y', 0];
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

// ---------------------------------------------------------------------------
// lz4 frame

/// LZ4 frame magic, little endian on the wire (`04 22 4D 18`).
pub const LZ4_MAGIC: u32 = 0x184D_2204;
pub(crate) const LZ4_FLG: u8 = 0x60; // version 01, block independence
pub(crate) const LZ4_BD: u8 = 0x40; // 64 KiB max block size
/// Header checksum: `(xxh32([FLG, BD], 0) >> 8) as u8`, constant for the
/// one header kp writes (the tests recompute it).
pub(crate) const LZ4_HC: u8 = 0x82;
pub(crate) const LZ4_BLOCK: usize = 64 * 1024;
pub(crate) const LZ4_UNCOMPRESSED_BIT: u32 = 0x8000_0000;

fn lz4_frame_compress(input: &[u8], out: &mut BytesMut) {
    out.put_u32_le(LZ4_MAGIC);
    out.put_u8(LZ4_FLG);
    out.put_u8(LZ4_BD);
    out.put_u8(LZ4_HC);
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
