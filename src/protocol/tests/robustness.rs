//! Fuzz-style robustness: random bytes, truncations and mutations of valid
//! frames and batches fed to every decoder must yield `Ok` or `Err`, never a
//! panic, and never an allocation out of proportion to the input (checked
//! with a per-thread tracking global allocator).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use bytes::BytesMut;
use kafka_protocol::messages as km;
use kafka_protocol::messages::{BrokerId, ProducerId, TopicName};
use kafka_protocol::protocol::{Encodable, HeaderVersion, StrBytes};
use proptest::prelude::*;

use super::oracle_messages::{oracle_api_versions, oracle_metadata, oracle_produce};
use crate::protocol::api::*;
use crate::protocol::compression::Compression;
use crate::protocol::messages::*;
use crate::protocol::record_batch::*;
use crate::protocol::test_support::*;

// ---------------------------------------------------------------------------
// allocation tracking

struct Tracking;

thread_local! {
    static MAX_ALLOC: Cell<usize> = const { Cell::new(0) };
}

#[inline]
fn note(n: usize) {
    let _ = MAX_ALLOC.try_with(|m| {
        if n > m.get() {
            m.set(n)
        }
    });
}

unsafe impl GlobalAlloc for Tracking {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        note(l.size());
        System.alloc(l)
    }
    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        note(l.size());
        System.alloc_zeroed(l)
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        System.dealloc(p, l)
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new_size: usize) -> *mut u8 {
        note(new_size);
        System.realloc(p, l, new_size)
    }
}

#[global_allocator]
static GLOBAL: Tracking = Tracking;

/// Largest single allocation made by `f` on this thread.
fn max_alloc_during<T>(f: impl FnOnce() -> T) -> (T, usize) {
    MAX_ALLOC.with(|m| m.set(0));
    let t = f();
    (t, MAX_ALLOC.with(|m| m.get()))
}

fn message_alloc_bound(input_len: usize) -> usize {
    64 * input_len + 64 * 1024
}

// ---------------------------------------------------------------------------
// valid frames

fn s(x: &str) -> StrBytes {
    StrBytes::from_string(x.to_owned())
}

fn frame<O: Encodable + HeaderVersion>(o: &O, v: i16) -> Vec<u8> {
    let mut b = BytesMut::new();
    let mut h = km::ResponseHeader::default();
    h.correlation_id = 7;
    h.encode(&mut b, O::header_version(v)).unwrap();
    o.encode(&mut b, v).unwrap();
    b.to_vec()
}

/// Decode `frame` as the response of API `api` at `version`; `true` if Ok.
fn decode_any(api: i16, version: i16, frame: &[u8]) -> bool {
    match api {
        API_API_VERSIONS => decode_response_slice::<ApiVersionsRequest>(version, frame).is_ok(),
        API_METADATA => decode_response_slice::<MetadataRequest>(version, frame).is_ok(),
        API_PRODUCE => decode_response_slice::<ProduceRequest>(version, frame).is_ok(),
        API_INIT_PRODUCER_ID => {
            decode_response_slice::<InitProducerIdRequest>(version, frame).is_ok()
        }
        API_FIND_COORDINATOR => {
            decode_response_slice::<FindCoordinatorRequest>(version, frame).is_ok()
        }
        API_ADD_PARTITIONS_TO_TXN => {
            decode_response_slice::<AddPartitionsToTxnRequest>(version, frame).is_ok()
        }
        API_ADD_OFFSETS_TO_TXN => {
            decode_response_slice::<AddOffsetsToTxnRequest>(version, frame).is_ok()
        }
        API_END_TXN => decode_response_slice::<EndTxnRequest>(version, frame).is_ok(),
        API_TXN_OFFSET_COMMIT => {
            decode_response_slice::<TxnOffsetCommitRequest>(version, frame).is_ok()
        }
        API_SASL_HANDSHAKE => decode_response_slice::<SaslHandshakeRequest>(version, frame).is_ok(),
        API_SASL_AUTHENTICATE => {
            decode_response_slice::<SaslAuthenticateRequest>(version, frame).is_ok()
        }
        _ => unreachable!(),
    }
}

/// Every response the client decodes, with its request type's versions
/// (the same table the fuzz targets use).
const RANGES: &[(i16, i16, i16)] = crate::fuzzing::RESPONSES;

pub(super) fn valid_frames() -> Vec<(i16, i16, Vec<u8>)> {
    let mut out = Vec::new();
    for v in 0..=4 {
        out.push((API_API_VERSIONS, v, frame(&oracle_api_versions(v, 0), v)));
    }
    for v in 4..=13 {
        out.push((API_METADATA, v, frame(&oracle_metadata(v), v)));
    }
    for v in 3..=12 {
        out.push((API_PRODUCE, v, frame(&oracle_produce(v), v)));
    }
    for v in 0..=5 {
        let mut o = km::InitProducerIdResponse::default();
        o.producer_id = ProducerId(5);
        o.producer_epoch = 1;
        out.push((API_INIT_PRODUCER_ID, v, frame(&o, v)));
    }
    for v in 0..=6 {
        let mut o = km::FindCoordinatorResponse::default();
        if v <= 3 {
            o.host = s("h");
            o.node_id = BrokerId(1);
        } else {
            let mut c = km::find_coordinator_response::Coordinator::default();
            c.key = s("k");
            c.host = s("h");
            o.coordinators.push(c);
        }
        out.push((API_FIND_COORDINATOR, v, frame(&o, v)));
    }
    for v in 0..=3 {
        let mut o = km::AddPartitionsToTxnResponse::default();
        let mut t = km::add_partitions_to_txn_response::AddPartitionsToTxnTopicResult::default();
        t.name = TopicName(s("t"));
        t.results_by_partition.push(Default::default());
        o.results_by_topic_v3_and_below.push(t);
        out.push((API_ADD_PARTITIONS_TO_TXN, v, frame(&o, v)));
    }
    for v in 0..=4 {
        out.push((API_ADD_OFFSETS_TO_TXN, v, frame(&km::AddOffsetsToTxnResponse::default(), v)));
    }
    for v in 0..=5 {
        out.push((API_END_TXN, v, frame(&km::EndTxnResponse::default(), v)));
    }
    for v in 0..=5 {
        let mut o = km::TxnOffsetCommitResponse::default();
        let mut t = km::txn_offset_commit_response::TxnOffsetCommitResponseTopic::default();
        t.name = TopicName(s("t"));
        t.partitions.push(Default::default());
        o.topics.push(t);
        out.push((API_TXN_OFFSET_COMMIT, v, frame(&o, v)));
    }
    out
}

#[test]
fn valid_frames_decode_and_every_truncation_is_safe() {
    for (api, v, f) in valid_frames() {
        assert!(decode_any(api, v, &f), "valid frame api {api} v{v}");
        for n in 0..f.len() {
            let (_, max) = max_alloc_during(|| decode_any(api, v, &f[..n]));
            assert!(max <= message_alloc_bound(n), "api {api} v{v} prefix {n}: alloc {max}");
        }
    }
}

#[test]
fn hostile_array_lengths_are_rejected_without_allocating() {
    for &(api, lo, hi) in RANGES {
        for v in lo..=hi {
            let flex = is_flexible(api, v);
            // correlation id, (header tagged fields), then a body made of
            // "huge count" patterns in every position
            let mut f = vec![0, 0, 0, 7];
            if response_header_version(api, v) == 1 {
                f.push(0);
            }
            for _ in 0..8 {
                if flex {
                    f.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0x0f]);
                } else {
                    f.extend_from_slice(&[0x7f, 0xff, 0xff, 0xff]);
                }
            }
            let (ok, max) = max_alloc_during(|| decode_any(api, v, &f));
            assert!(
                !ok || api == API_ADD_OFFSETS_TO_TXN
                    || api == API_END_TXN
                    || api == API_INIT_PRODUCER_ID,
                "api {api} v{v} accepted a hostile frame"
            );
            assert!(max <= message_alloc_bound(f.len()), "api {api} v{v}: alloc {max}");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: super::cases(512), ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(which in 0usize..RANGES.len(), vsel in any::<prop::sample::Index>(),
                                data in proptest::collection::vec(any::<u8>(), 0..400)) {
        let (api, lo, hi) = RANGES[which];
        let v = lo + vsel.index((hi - lo + 1) as usize) as i16;
        let (_, max) = max_alloc_during(|| decode_any(api, v, &data));
        prop_assert!(max <= message_alloc_bound(data.len()), "alloc {}", max);
    }

    #[test]
    fn mutated_frames_never_panic(idx in any::<prop::sample::Index>(),
                                  flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
                                  insert in proptest::option::of((any::<prop::sample::Index>(), proptest::collection::vec(any::<u8>(), 1..8))),
                                  cut in proptest::option::of(any::<prop::sample::Index>())) {
        let frames = valid_frames();
        let (api, v, mut f) = frames[idx.index(frames.len())].clone();
        for (pos, b) in flips {
            let i = pos.index(f.len());
            f[i] = b;
        }
        if let Some((pos, bytes)) = insert {
            let i = pos.index(f.len() + 1);
            f.splice(i..i, bytes);
        }
        if let Some(c) = cut {
            let n = c.index(f.len() + 1);
            f.truncate(n);
        }
        let (_, max) = max_alloc_during(|| decode_any(api, v, &f));
        prop_assert!(max <= message_alloc_bound(f.len()), "alloc {}", max);
    }
}

// ---------------------------------------------------------------------------
// record batches

const BATCH_LIMIT: usize = 1 << 20;

fn batch_alloc_bound(input_len: usize) -> usize {
    // decompressor state (zstd contexts are a few hundred KiB) plus an output
    // vector that may double past the 1 MiB limit once
    64 * input_len + 4 * BATCH_LIMIT
}

fn sample_batch(ci: usize, n: usize) -> Vec<u8> {
    let c = [
        Compression::None,
        Compression::Gzip(None),
        Compression::Snappy,
        Compression::Lz4(None),
        Compression::Zstd(None),
    ][ci];
    let mut b = BatchBuilder::with_capacity(256);
    for i in 0..n {
        let h = [RecordHeader { key: b"hk", value: Some(b"hv") }];
        b.append(
            1000 + i as i64,
            Some(b"key"),
            if i % 2 == 0 { Some(b"value-value") } else { None },
            &h,
        );
    }
    b.seal(c, ProducerStamp::NONE).unwrap().bytes.to_vec()
}

fn fix_crc(b: &mut [u8]) {
    if b.len() >= BATCH_HEADER_LEN {
        let crc = crc32c::crc32c(&b[CRC_START..]);
        b[17..21].copy_from_slice(&crc.to_be_bytes());
    }
}

#[test]
fn hostile_record_counts_and_lengths() {
    for ci in 0..5 {
        let mut b = sample_batch(ci, 3);
        // absurd record count
        b[57..61].copy_from_slice(&i32::MAX.to_be_bytes());
        fix_crc(&mut b);
        let (r, max) = max_alloc_during(|| decode_batches_with_limit(&b, BATCH_LIMIT));
        assert!(r.is_err());
        assert!(max <= batch_alloc_bound(b.len()), "codec {ci}: alloc {max}");
        // negative record count
        b[57..61].copy_from_slice(&(-5i32).to_be_bytes());
        fix_crc(&mut b);
        assert!(decode_batches(&b).is_err());
    }
    // huge batch length
    let mut b = sample_batch(0, 1);
    b[8..12].copy_from_slice(&i32::MAX.to_be_bytes());
    assert!(decode_batches(&b).is_err());
    // a record announcing a huge key
    let mut b = sample_batch(0, 1);
    // record starts at 61: length varint, attributes, ts delta, offset delta, key len
    b[61 + 4] = 0xfe;
    b.insert(61 + 5, 0xff);
    let n = b.len() as i32 - 12;
    b[8..12].copy_from_slice(&n.to_be_bytes());
    fix_crc(&mut b);
    let (r, max) = max_alloc_during(|| decode_batches(&b));
    assert!(r.is_err());
    assert!(max <= batch_alloc_bound(b.len()));
}

#[test]
fn decompression_bomb_in_a_batch_is_capped() {
    let mut bb = BatchBuilder::with_capacity(0);
    let zeros = vec![0u8; 3 << 20];
    bb.append(0, None, Some(&zeros), &[]);
    for c in [
        Compression::Gzip(None),
        Compression::Snappy,
        Compression::Lz4(None),
        Compression::Zstd(None),
    ] {
        let mut b2 = BatchBuilder::with_capacity(0);
        b2.append(0, None, Some(&zeros), &[]);
        let sealed = b2.seal(c, ProducerStamp::NONE).unwrap();
        assert!(sealed.bytes.len() < 1 << 20);
        let (r, max) = max_alloc_during(|| decode_batches_with_limit(&sealed.bytes, BATCH_LIMIT));
        assert!(r.is_err(), "{c:?}");
        assert!(max <= batch_alloc_bound(sealed.bytes.len()), "{c:?}: alloc {max}");
        assert!(decode_batches(&sealed.bytes).is_ok());
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: super::cases(256), ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_as_batches(data in proptest::collection::vec(any::<u8>(), 0..300)) {
        let (_, max) = max_alloc_during(|| decode_batches_with_limit(&data, BATCH_LIMIT));
        prop_assert!(max <= batch_alloc_bound(data.len()));
    }

    /// Mutations behind the CRC (the CRC is recomputed so the parser and the
    /// decompressors see the damage).
    #[test]
    fn mutated_batches_never_panic(ci in 0usize..5, n in 1usize..20,
                                   flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
                                   cut in proptest::option::of(any::<prop::sample::Index>()),
                                   fix in any::<bool>()) {
        let mut b = sample_batch(ci, n);
        for (pos, byte) in flips {
            let i = pos.index(b.len());
            b[i] = byte;
        }
        if let Some(c) = cut {
            let n = c.index(b.len() + 1);
            b.truncate(n);
            if fix && b.len() >= 12 {
                let l = b.len() as i32 - 12;
                b[8..12].copy_from_slice(&l.to_be_bytes());
            }
        }
        if fix {
            fix_crc(&mut b);
        }
        let (_, max) = max_alloc_during(|| decode_batches_with_limit(&b, BATCH_LIMIT));
        prop_assert!(max <= batch_alloc_bound(b.len()), "alloc {}", max);
        let mut m = b.clone();
        let _ = restamp(&mut m, ProducerStamp { producer_id: 1, producer_epoch: 2, base_sequence: 3, transactional: true });
    }
}

#[test]
fn allocation_tracker_sees_allocations() {
    let (v, max) = max_alloc_during(|| vec![1u8; 1 << 20]);
    assert_eq!(v.len(), 1 << 20);
    assert!(max >= 1 << 20);
    let (_, max) = max_alloc_during(|| 1 + 1);
    assert_eq!(max, 0);
}
