use proptest::prelude::*;

use crate::protocol::compression::Compression;
use crate::protocol::record_batch::*;
use crate::protocol::test_support::*;
use crate::protocol::DecodeError;

#[derive(Debug, Clone)]
pub(crate) struct Rec {
    pub ts: i64,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub headers: Vec<(Vec<u8>, Option<Vec<u8>>)>,
}

pub(crate) fn codecs() -> Vec<Compression> {
    vec![
        Compression::None,
        Compression::Gzip(None),
        Compression::Snappy,
        Compression::Lz4(None),
        Compression::Zstd(None),
    ]
}

pub(crate) fn build(recs: &[Rec]) -> BatchBuilder {
    let mut b = BatchBuilder::with_capacity(128);
    let mut expected_size = BATCH_HEADER_LEN;
    for (i, r) in recs.iter().enumerate() {
        let hs: Vec<RecordHeader<'_>> =
            r.headers.iter().map(|(k, v)| RecordHeader { key: k, value: v.as_deref() }).collect();
        let sz = b.record_size(r.ts, r.key.as_deref(), r.value.as_deref(), &hs);
        let od = b.append(r.ts, r.key.as_deref(), r.value.as_deref(), &hs);
        assert_eq!(od, i as i32);
        expected_size += sz;
        assert_eq!(b.size_in_bytes(), expected_size, "record_size must be exact");
    }
    b
}

pub(crate) fn arb_rec(header_key: BoxedStrategy<Vec<u8>>) -> impl Strategy<Value = Rec> {
    let bytes = proptest::collection::vec(any::<u8>(), 0..40);
    (
        prop_oneof![Just(0i64), -5i64..5, 1_600_000_000_000i64..1_800_000_000_000, any::<i64>()],
        proptest::option::of(bytes.clone()),
        proptest::option::of(proptest::collection::vec(any::<u8>(), 0..300)),
        proptest::collection::vec((header_key, proptest::option::of(bytes)), 0..4),
    )
        .prop_map(|(ts, key, value, headers)| Rec { ts, key, value, headers })
}

pub(crate) fn arb_stamp() -> impl Strategy<Value = ProducerStamp> {
    prop_oneof![
        Just(ProducerStamp::NONE),
        (any::<i64>(), any::<i16>(), any::<i32>(), any::<bool>()).prop_map(|(a, b, c, d)| {
            ProducerStamp { producer_id: a, producer_epoch: b, base_sequence: c, transactional: d }
        }),
    ]
}

fn check_decoded(d: &DecodedBatch, recs: &[Rec], c: Compression, s: ProducerStamp, len: usize) {
    assert_eq!(d.base_offset, 0);
    assert_eq!(d.batch_length as usize, len - 12);
    assert_eq!(d.partition_leader_epoch, -1);
    assert_eq!(d.magic, 2);
    assert_eq!(d.codec_id(), c.codec_id());
    assert_eq!(d.is_transactional(), s.transactional);
    assert!(!d.is_control());
    assert!(!d.is_log_append_time());
    assert_eq!(d.attributes & !0x17, 0);
    assert_eq!(d.last_offset_delta, recs.len() as i32 - 1);
    assert_eq!(d.record_count, recs.len() as i32);
    assert_eq!(d.producer_id, s.producer_id);
    assert_eq!(d.producer_epoch, s.producer_epoch);
    assert_eq!(d.base_sequence, s.base_sequence);
    let base = recs.first().map(|r| r.ts).unwrap_or(-1);
    let max = recs.iter().map(|r| r.ts).max().unwrap_or(-1);
    assert_eq!(d.base_timestamp, base);
    assert_eq!(d.max_timestamp, max);
    assert_eq!(d.records.len(), recs.len());
    for (i, (got, want)) in d.records.iter().zip(recs).enumerate() {
        assert_eq!(got.offset_delta, i as i32);
        assert_eq!(got.attributes, 0);
        assert_eq!(got.timestamp, want.ts);
        assert_eq!(got.timestamp_delta, want.ts.wrapping_sub(base));
        assert_eq!(got.key, want.key);
        assert_eq!(got.value, want.value);
        let hs: Vec<(Vec<u8>, Option<Vec<u8>>)> =
            got.headers.iter().map(|h| (h.key.clone(), h.value.clone())).collect();
        assert_eq!(hs, want.headers);
    }
}

/// The batch header of an uncompressed, non-idempotent batch with one
/// record (ts 1000, key "k", value "v", no headers), checked by hand against
/// the v2 format description.
#[test]
fn known_vector_single_record() {
    let mut b = BatchBuilder::with_capacity(0);
    assert_eq!(b.record_size(1000, Some(b"k"), Some(b"v"), &[]), 9);
    b.append(1000, Some(b"k"), Some(b"v"), &[]);
    let sealed = b.seal(Compression::None, ProducerStamp::NONE).unwrap();
    let record: [u8; 9] = [
        0x10, // length 8 (zigzag 16)
        0x00, // attributes
        0x00, // timestamp delta 0
        0x00, // offset delta 0
        0x02, b'k', // key length 1, key
        0x02, b'v', // value length 1, value
        0x00, // 0 headers
    ];
    let mut expected = vec![];
    expected.extend_from_slice(&0i64.to_be_bytes()); // base offset
    expected.extend_from_slice(&58i32.to_be_bytes()); // batch length: 61 - 12 + 9
    expected.extend_from_slice(&(-1i32).to_be_bytes()); // partition leader epoch
    expected.push(2); // magic
    expected.extend_from_slice(&[0, 0, 0, 0]); // crc placeholder
    expected.extend_from_slice(&0i16.to_be_bytes()); // attributes
    expected.extend_from_slice(&0i32.to_be_bytes()); // last offset delta
    expected.extend_from_slice(&1000i64.to_be_bytes()); // base timestamp
    expected.extend_from_slice(&1000i64.to_be_bytes()); // max timestamp
    expected.extend_from_slice(&(-1i64).to_be_bytes()); // producer id
    expected.extend_from_slice(&(-1i16).to_be_bytes()); // producer epoch
    expected.extend_from_slice(&(-1i32).to_be_bytes()); // base sequence
    expected.extend_from_slice(&1i32.to_be_bytes()); // record count
    expected.extend_from_slice(&record);
    assert_eq!(expected.len(), 70);
    let crc = crc32c::crc32c(&expected[21..]);
    expected[17..21].copy_from_slice(&crc.to_be_bytes());
    assert_eq!(&sealed.bytes[..], &expected[..]);
    // CRC-32C check value of the standard "123456789" vector, to pin the polynomial
    assert_eq!(crc32c::crc32c(b"123456789"), 0xE306_9283);
}

#[test]
fn restamp_equals_direct_stamp_for_every_codec() {
    let recs: Vec<Rec> = (0..50)
        .map(|i| Rec {
            ts: 1_700_000_000_000 + i,
            key: Some(format!("key-{i}").into_bytes()),
            value: Some(vec![i as u8; 100]),
            headers: vec![(b"h".to_vec(), None)],
        })
        .collect();
    let stamp = ProducerStamp {
        producer_id: 4242,
        producer_epoch: 7,
        base_sequence: 1000,
        transactional: true,
    };
    for c in codecs() {
        let direct = build(&recs).seal(c, stamp).unwrap();
        let plain = build(&recs).seal(c, ProducerStamp::NONE).unwrap();
        let mut m = plain.bytes.to_vec();
        assert!(restamp(&mut m, stamp));
        assert_eq!(m, direct.bytes.to_vec(), "{c:?}");
        let again = restamp_bytes(plain.bytes.clone(), stamp);
        assert_eq!(again, direct.bytes);
        // and back
        assert!(restamp(&mut m, ProducerStamp::NONE));
        assert_eq!(m, plain.bytes.to_vec());
        let d = decode_batches(&direct.bytes).unwrap();
        check_decoded(&d[0], &recs, c, stamp, direct.bytes.len());
    }
    assert!(!restamp(&mut [0u8; 10], stamp));
}

#[test]
fn large_batches_span_many_codec_blocks() {
    let recs: Vec<Rec> = (0..40)
        .map(|i| Rec {
            ts: i * 3,
            key: None,
            value: Some((0..20_000).map(|j| ((j * i) % 97) as u8).collect()),
            headers: vec![],
        })
        .collect();
    for c in codecs() {
        let s = build(&recs).seal(c, ProducerStamp::NONE).unwrap();
        assert_eq!(s.record_count, 40);
        assert!(s.uncompressed_size > 800_000);
        let d = decode_batches(&s.bytes).unwrap();
        check_decoded(&d[0], &recs, c, ProducerStamp::NONE, s.bytes.len());
    }
}

#[test]
fn corruption_is_detected() {
    let recs =
        vec![Rec { ts: 5, key: Some(b"a".to_vec()), value: Some(b"b".to_vec()), headers: vec![] }];
    let s = build(&recs).seal(Compression::None, ProducerStamp::NONE).unwrap();
    let mut bad = s.bytes.to_vec();
    let n = bad.len();
    bad[n - 2] ^= 1;
    assert!(matches!(decode_batches(&bad), Err(DecodeError::CrcMismatch { .. })));
    let mut bad = s.bytes.to_vec();
    bad[16] = 1; // magic
    assert!(decode_batches(&bad).is_err());
    assert_eq!(decode_batches(&s.bytes[..s.bytes.len() - 1]), Err(DecodeError::Truncated));
    // concatenation of two batches
    let mut two = s.bytes.to_vec();
    two.extend_from_slice(&s.bytes);
    assert_eq!(decode_batches(&two).unwrap().len(), 2);
}

#[test]
fn empty_builder_reports_state() {
    let b = BatchBuilder::with_capacity(10);
    assert!(b.is_empty());
    assert_eq!(b.record_count(), 0);
    assert_eq!(b.size_in_bytes(), BATCH_HEADER_LEN);
    assert_eq!(b.first_timestamp(), -1);
    // sizes of the first record do not depend on the timestamp
    assert_eq!(b.record_size(i64::MAX, None, None, &[]), b.record_size(0, None, None, &[]));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: super::cases(96), ..ProptestConfig::default() })]
    #[test]
    fn batch_roundtrip(
        recs in proptest::collection::vec(
            arb_rec(proptest::collection::vec(any::<u8>(), 0..12).boxed()), 1..30),
        ci in 0usize..5,
        stamp in arb_stamp(),
    ) {
        let c = codecs()[ci];
        let b = build(&recs);
        let sealed = b.seal(c, stamp).unwrap();
        prop_assert_eq!(sealed.record_count, recs.len() as i32);
        let d = decode_batches(&sealed.bytes).unwrap();
        prop_assert_eq!(d.len(), 1);
        check_decoded(&d[0], &recs, c, stamp, sealed.bytes.len());
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: super::cases(96), ..ProptestConfig::default() })]
    /// The send path sizes a record once (RecordLayout) and appends with
    /// try_append: the layout's bound must cover the exact size at any
    /// position, try_append must keep the batch within its limit (except
    /// for a batch's first record), and what it wrote must decode to the
    /// records it accepted.
    #[test]
    fn try_append_respects_the_limit_and_the_layout_bound(
        recs in proptest::collection::vec(
            arb_rec(proptest::collection::vec(any::<u8>(), 0..12).boxed()), 1..40),
        limit in 61usize..4000,
    ) {
        let mut b = BatchBuilder::with_capacity(64);
        let mut accepted = Vec::new();
        for r in &recs {
            let hs: Vec<RecordHeader<'_>> = r.headers.iter().map(|(k, v)| RecordHeader { key: k, value: v.as_deref() }).collect();
            let layout = RecordLayout::new(r.key.as_deref(), r.value.as_deref(), &hs);
            let exact = b.encoded_len(r.ts, &layout);
            prop_assert!(exact <= layout.max_encoded_len(), "exact {} > bound {}", exact, layout.max_encoded_len());
            let before = b.size_in_bytes();
            match b.try_append(limit, r.ts, r.key.as_deref(), r.value.as_deref(), &hs, &layout) {
                Some(od) => {
                    prop_assert_eq!(od as usize, accepted.len());
                    prop_assert_eq!(b.size_in_bytes(), before + exact);
                    prop_assert!(accepted.is_empty() || b.size_in_bytes() <= limit);
                    accepted.push(r.clone());
                }
                None => {
                    prop_assert!(before + exact > limit);
                    prop_assert_eq!(b.size_in_bytes(), before);
                }
            }
        }
        let sealed = b.seal(Compression::None, ProducerStamp::NONE).unwrap();
        let d = decode_batches(&sealed.bytes).unwrap();
        check_decoded(&d[0], &accepted, Compression::None, ProducerStamp::NONE, sealed.bytes.len());
    }
}
