//! Decompression, only for the tests and the mock brokers (the producer
//! never decompresses). Every decompressor takes an output `limit` and fails
//! with [`CompressionError::TooLarge`] instead of producing more, so a
//! decompression bomb costs at most `limit` bytes of memory.

use std::io::Read;

use crate::protocol::compression::*;

const SNAPPY_XERIAL_HEADER_LEN: usize = 16;

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
