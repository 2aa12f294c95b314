//! kp-encoded record batches decoded by the independent kafka-protocol crate.

use bytes::Bytes;
use kafka_protocol::records::{Compression as KpCompression, RecordBatchDecoder, TimestampType};
use proptest::prelude::*;

use super::batch_tests::{arb_rec, arb_stamp, build, codecs, Rec};
use crate::protocol::compression::Compression;
use crate::protocol::record_batch::ProducerStamp;

fn oracle_codec(c: Compression) -> KpCompression {
    match c {
        Compression::None => KpCompression::None,
        Compression::Gzip(_) => KpCompression::Gzip,
        Compression::Snappy => KpCompression::Snappy,
        Compression::Lz4(_) => KpCompression::Lz4,
        Compression::Zstd(_) => KpCompression::Zstd,
    }
}

fn check_with_oracle(recs: &[Rec], c: Compression, stamp: ProducerStamp) {
    let sealed = build(recs).seal(c, stamp).unwrap();
    let mut buf: Bytes = sealed.bytes.clone();
    let sets = RecordBatchDecoder::decode_all(&mut buf).expect("oracle decodes kp batch");
    assert_eq!(sets.len(), 1);
    let set = &sets[0];
    assert_eq!(set.version, 2);
    assert_eq!(set.compression, oracle_codec(c));
    assert_eq!(set.records.len(), recs.len());
    for (i, (got, want)) in set.records.iter().zip(recs).enumerate() {
        assert_eq!(got.transactional, stamp.transactional);
        assert!(!got.control);
        assert_eq!(got.partition_leader_epoch, -1);
        assert_eq!(got.producer_id, stamp.producer_id);
        assert_eq!(got.producer_epoch, stamp.producer_epoch);
        assert_eq!(got.timestamp_type, TimestampType::Creation);
        assert_eq!(got.offset, i as i64);
        assert_eq!(got.sequence, stamp.base_sequence.wrapping_add(i as i32));
        assert_eq!(got.timestamp, want.ts);
        assert_eq!(got.key.as_deref(), want.key.as_deref());
        assert_eq!(got.value.as_deref(), want.value.as_deref());
        assert_eq!(got.headers.len(), want.headers.len());
        for ((gk, gv), (wk, wv)) in got.headers.iter().zip(&want.headers) {
            assert_eq!(gk.as_bytes(), &wk[..]);
            assert_eq!(gv.as_deref(), wv.as_deref());
        }
    }
}

#[test]
fn oracle_decodes_every_codec_with_large_values() {
    let recs: Vec<Rec> = (0..30)
        .map(|i| Rec {
            ts: 1_700_000_000_000 - i * 1000,
            key: if i % 3 == 0 { None } else { Some(format!("k{i}").into_bytes()) },
            value: if i % 5 == 0 { None } else { Some(vec![(i % 7) as u8; 9000]) },
            headers: (0..(i % 3))
                .map(|h| (format!("h{h}").into_bytes(), Some(vec![h as u8])))
                .collect(),
        })
        .collect();
    for c in codecs() {
        check_with_oracle(&recs, c, ProducerStamp::NONE);
        check_with_oracle(
            &recs,
            c,
            ProducerStamp {
                producer_id: 99,
                producer_epoch: 3,
                base_sequence: 17,
                transactional: true,
            },
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: super::cases(64), ..ProptestConfig::default() })]
    #[test]
    fn oracle_decodes_random_batches(
        // the oracle keys headers by UTF-8 string in a map: use distinct ASCII keys
        recs in proptest::collection::vec(arb_rec("[a-z]{0,6}".prop_map(|s| s.into_bytes()).boxed()), 1..20)
            .prop_map(|mut v| {
                for r in v.iter_mut() {
                    let mut seen = std::collections::HashSet::new();
                    r.headers.retain(|(k, _)| seen.insert(k.clone()));
                    // the oracle reads the timestamp delta as a 32-bit varint (Java and kp use a
                    // varlong); keep deltas within i32 here, kp's own tests cover full i64 deltas
                    r.ts = 1_700_000_000_000 + r.ts % 1_000_000_000;
                }
                v
            }),
        ci in 0usize..5,
        stamp in arb_stamp(),
    ) {
        check_with_oracle(&recs, codecs()[ci], stamp);
    }
}
