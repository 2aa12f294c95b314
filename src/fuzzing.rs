//! Entry points of the coverage-guided fuzz targets (`fuzz/`, cargo-fuzz)
//! and of the corpus replay test (`tests/fuzz_corpus.rs`, stable toolchain).
//! Built only with the `fuzzing` feature (or in this crate's own tests); not
//! part of the C ABI or of the documented Rust API.
//!
//! Every function takes arbitrary bytes and must return normally: decoders
//! answer `Err` on bad input, never panic, never loop forever and never
//! allocate in proportion to a length field (the fuzz runs cap single
//! allocations with libFuzzer's `-malloc_limit_mb`). Where a round trip is
//! checkable (compress then decompress) the function asserts it.
//!
//! Inputs start with selector bytes that pick the decoder (and API version),
//! so one target covers a whole family and the corpus files say what they
//! exercise.

use std::ffi::{c_char, CString};

use crate::config::{ConfigMap, ProducerConfig};
use crate::engine::security::{oauth, sasl, scram, tls_record_instead_of_frame};
use crate::protocol::api::*;
use crate::protocol::compression::{compress, Compression};
use crate::protocol::messages::*;
use crate::protocol::record_batch::{restamp, restamp_bytes, ProducerStamp, BATCH_HEADER_LEN};
use crate::protocol::test_support::{decode_batches_with_limit, decompress};

/// A fuzz target's entry function.
pub type Target = fn(&[u8]);

/// The targets by name, as `fuzz/fuzz_targets/<name>.rs` and
/// `fuzz/corpus/<name>/` name them.
pub const TARGETS: &[(&str, Target)] = &[
    ("responses", responses),
    ("record_batch", record_batch),
    ("compression", compression),
    ("sasl", sasl),
    ("config", config),
];

/// Output cap for decompression (per batch / per container), as the tests use.
pub const DECOMPRESS_LIMIT: usize = 1 << 20;

/// Every response the client decodes, with the versions it may negotiate:
/// each request type's own range, so a version added there is fuzzed too.
pub const RESPONSES: &[(i16, i16, i16)] = &[
    range::<ApiVersionsRequest>(),
    range::<MetadataRequest>(),
    range::<ProduceRequest>(),
    range::<InitProducerIdRequest>(),
    range::<FindCoordinatorRequest>(),
    range::<AddPartitionsToTxnRequest>(),
    range::<AddOffsetsToTxnRequest>(),
    range::<EndTxnRequest>(),
    range::<TxnOffsetCommitRequest>(),
    range::<SaslHandshakeRequest>(),
    range::<SaslAuthenticateRequest>(),
];

const fn range<R: Request>() -> (i16, i16, i16) {
    (R::API_KEY, R::MIN_VERSION, R::MAX_VERSION)
}

/// Input prefix that selects `api` at `version` in [`responses`].
pub fn response_selector(api: i16, version: i16) -> [u8; 2] {
    let i = RESPONSES.iter().position(|r| r.0 == api).expect("listed api");
    [i as u8, (version - RESPONSES[i].1) as u8]
}

fn decode<R: Request>(version: i16, frame: &[u8]) -> Option<R::Response> {
    decode_response_slice::<R>(version, frame).ok().map(|(_, r)| r)
}

/// `[api index][version offset][response frame without size prefix]`.
pub fn responses(data: &[u8]) {
    let [sel, ver, frame @ ..] = data else { return };
    let (api, lo, hi) = RESPONSES[*sel as usize % RESPONSES.len()];
    let version = lo + (*ver as i16 % (hi - lo + 1));
    let _ = peek_correlation_id(frame);
    let text = match api {
        API_API_VERSIONS => decode::<ApiVersionsRequest>(version, frame).map(|r| {
            let _ = (r.version_range(API_PRODUCE), r.transaction_version());
            let _ = r.finalized_feature("transaction.version");
            format!("{r:?}")
        }),
        API_METADATA => decode::<MetadataRequest>(version, frame).map(|r| format!("{r:?}")),
        API_PRODUCE => decode::<ProduceRequest>(version, frame).map(|r| format!("{r:?}")),
        API_INIT_PRODUCER_ID => {
            decode::<InitProducerIdRequest>(version, frame).map(|r| format!("{r:?}"))
        }
        API_FIND_COORDINATOR => decode::<FindCoordinatorRequest>(version, frame).map(|r| {
            let _ = r.coordinator_for("k");
            format!("{r:?}")
        }),
        API_ADD_PARTITIONS_TO_TXN => {
            decode::<AddPartitionsToTxnRequest>(version, frame).map(|r| format!("{r:?}"))
        }
        API_ADD_OFFSETS_TO_TXN => {
            decode::<AddOffsetsToTxnRequest>(version, frame).map(|r| format!("{r:?}"))
        }
        API_END_TXN => decode::<EndTxnRequest>(version, frame).map(|r| format!("{r:?}")),
        API_TXN_OFFSET_COMMIT => {
            decode::<TxnOffsetCommitRequest>(version, frame).map(|r| format!("{r:?}"))
        }
        API_SASL_HANDSHAKE => {
            decode::<SaslHandshakeRequest>(version, frame).map(|r| format!("{r:?}"))
        }
        API_SASL_AUTHENTICATE => {
            decode::<SaslAuthenticateRequest>(version, frame).map(|r| format!("{r:?}"))
        }
        _ => unreachable!("RESPONSES lists only the apis above"),
    };
    std::hint::black_box(text);
}

/// `[flags][record batches]`: flags bit 0 recomputes the first batch's CRC
/// so the record parser and the decompressors see the damage behind it.
pub fn record_batch(data: &[u8]) {
    let [flags, rest @ ..] = data else { return };
    let mut buf = rest.to_vec();
    if flags & 1 == 1 && buf.len() >= BATCH_HEADER_LEN {
        let crc = crc32c::crc32c(&buf[21..]);
        buf[17..21].copy_from_slice(&crc.to_be_bytes());
    }
    if let Ok(batches) = decode_batches_with_limit(&buf, DECOMPRESS_LIMIT) {
        for b in &batches {
            let _ = (b.codec_id(), b.is_transactional(), b.is_control(), b.is_log_append_time());
        }
        std::hint::black_box(format!("{batches:?}"));
    }
    let stamp = ProducerStamp {
        producer_id: 7,
        producer_epoch: 1,
        base_sequence: 9,
        transactional: flags & 2 == 2,
    };
    let _ = restamp(&mut buf, stamp);
    let _ = restamp_bytes(bytes::Bytes::copy_from_slice(rest), stamp);
}

/// `[codec (low 3 bits, mod 5) | round trip (bit 7)][payload]`: decompress
/// the payload with the codec's decoder (capped at [`DECOMPRESS_LIMIT`]);
/// with bit 7, compress the payload and check it decompresses to itself.
pub fn compression(data: &[u8]) {
    let [sel, payload @ ..] = data else { return };
    let codec = (sel & 7) % 5;
    let _ = decompress(codec, payload, DECOMPRESS_LIMIT);
    if sel & 0x80 != 0 {
        let c = [
            Compression::None,
            Compression::Gzip(None),
            Compression::Snappy,
            Compression::Lz4(None),
            Compression::Zstd(None),
        ][codec as usize];
        let mut out = bytes::BytesMut::new();
        compress(c, payload, &mut out).expect("compression of a valid payload");
        let back = decompress(codec, &out, DECOMPRESS_LIMIT.max(payload.len()))
            .expect("kp's own compressed output decompresses");
        assert_eq!(back, payload, "{c:?} round trip");
    }
}

/// Highest SCRAM iteration count the fuzz target lets through: kp accepts up
/// to 1,000,000 (a deliberate bound), but every PBKDF2 iteration costs fuzz
/// throughput, so larger counts stop at the harness (the check itself is
/// covered by unit tests).
const FUZZ_MAX_ITERATIONS: u32 = 8192;

/// `[kind][payload]`: kind 0 a `sasl.jaas.config` value, 1/2 a SCRAM-SHA-256
/// / -512 exchange (`server-first \0 server-final` against the client nonce
/// of RFC 7677's example), 3 a `sasl.oauthbearer.config` for the unsecured
/// JWT, 4 a TLS-record check of a frame's size prefix.
pub fn sasl(data: &[u8]) {
    let [kind, payload @ ..] = data else { return };
    match kind % 5 {
        0 => {
            if let Ok(s) = std::str::from_utf8(payload) {
                std::hint::black_box(sasl::Jaas::parse(s).map(|j| format!("{j:?}")).ok());
            }
        }
        k @ (1 | 2) => {
            let hash = if k == 1 { scram::Hash::Sha256 } else { scram::Hash::Sha512 };
            let mut parts = payload.splitn(2, |b| *b == 0);
            let first = parts.next().unwrap_or_default();
            let fin = parts.next().unwrap_or_default();
            let costly = first.split(|b| *b == b',').any(|a| {
                a.strip_prefix(b"i=")
                    .and_then(|v| std::str::from_utf8(v).ok())
                    .and_then(|v| v.parse::<u32>().ok())
                    .is_some_and(|n| n > FUZZ_MAX_ITERATIONS)
            });
            if costly {
                return;
            }
            let (mut s, _) = scram::Scram::start(hash, "user", "rOprNGfwEbeRWgbNEkqO".into());
            if s.client_final(first, "pencil").is_ok() {
                let _ = s.verify_server_final(fin);
            }
        }
        3 => {
            if let Ok(s) = std::str::from_utf8(payload) {
                if let Ok(t) = oauth::unsecured_jwt(s) {
                    std::hint::black_box(t.client_first_message());
                }
            }
        }
        _ => {
            let mut len = [0u8; 4];
            let n = payload.len().min(4);
            len[..n].copy_from_slice(&payload[..n]);
            let _ = tls_record_instead_of_frame(i32::from_be_bytes(len));
        }
    }
}

/// Settings that name files: skipped, so the fuzzer cannot read
/// `/dev/zero` or the like (a path is trusted application input).
fn names_a_file(name: &[u8]) -> bool {
    name.ends_with(b".location")
}

/// `name \0 value \0 name \0 value ...`: each pair goes through the
/// C ABI's path of `kp_config_set` (C string → UTF-8 check →
/// `ConfigMap::set`) and through `kp_config_set` / `kp_config_get`
/// themselves (with a small errstr buffer); then the map is built into a
/// producer configuration as `kp_producer_new` does (bootstrap list,
/// security settings, inline PEM material, JAAS) — without connecting.
pub fn config(data: &[u8]) {
    let mut map = ConfigMap::default();
    let cfg = crate::ffi::config::kp_config_new();
    let mut fields = data.split(|b| *b == 0);
    let mut errstr = [0 as c_char; 24];
    while let (Some(name), Some(value)) = (fields.next(), fields.next()) {
        if names_a_file(name) {
            continue;
        }
        let (n, v) =
            (CString::new(name).expect("split at NUL"), CString::new(value).expect("split at NUL"));
        // SAFETY: both are NUL-terminated strings alive for the call.
        let (ns, vs) = unsafe {
            (crate::ffi::boundary::c_str_of(n.as_ptr()), crate::ffi::boundary::c_str_of(v.as_ptr()))
        };
        if let (Some(ns), Some(vs)) = (ns, vs) {
            let _ = map.set(ns, vs);
            let _ = map.get(ns);
        }
        // SAFETY: cfg is a live config, the strings are NUL-terminated and
        // errstr has errstr.len() writable bytes.
        unsafe {
            crate::ffi::config::kp_config_set(
                cfg,
                n.as_ptr(),
                v.as_ptr(),
                errstr.as_mut_ptr(),
                errstr.len(),
            );
            let mut out = [0 as c_char; 16];
            let mut size = out.len();
            crate::ffi::config::kp_config_get(cfg, n.as_ptr(), out.as_mut_ptr(), &mut size);
        }
    }
    // SAFETY: created above, not used afterwards.
    unsafe { crate::ffi::config::kp_config_destroy(cfg) };
    std::hint::black_box(ProducerConfig::from_map(&map).map(|c| format!("{c:?}")).ok());
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::TARGETS;

    /// Replays every committed corpus file and crash reproducer
    /// (`fuzz/corpus/<target>/`, `fuzz/artifacts/<target>/`) through the
    /// targets' entry functions: what the fuzz campaign found stays fixed,
    /// on the stable toolchain, without libFuzzer.
    #[test]
    fn committed_corpora_and_reproducers_replay_cleanly() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
        let mut total = 0;
        for (name, f) in TARGETS {
            let mut files = 0;
            for dir in ["corpus", "artifacts"] {
                let Ok(entries) = std::fs::read_dir(root.join(dir).join(name)) else { continue };
                for e in entries {
                    let path = e.unwrap().path();
                    let data = std::fs::read(&path).unwrap();
                    let r = std::panic::catch_unwind(|| f(&data));
                    assert!(r.is_ok(), "{} panicked on {}", name, path.display());
                    files += 1;
                }
            }
            assert!(files > 0, "no corpus for fuzz target {name}");
            total += files;
        }
        eprintln!("replayed {total} fuzz inputs");
    }
}
