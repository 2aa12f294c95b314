//! Broker-side codecs (request decoding, response encoding) for mock
//! brokers: kafka-protocol-encoded responses decoded by kp re-encode to the
//! identical bytes, and kp requests survive encode -> decode -> encode.

use std::fmt::Debug;

use bytes::{Bytes, BytesMut};

use super::robustness::valid_frames;
use crate::protocol::api::*;
use crate::protocol::compression::Compression;
use crate::protocol::messages::*;
use crate::protocol::record_batch::{BatchBuilder, ProducerStamp};

fn reencode<R: Request>(v: i16, frame: &[u8]) -> Vec<u8>
where
    R::Response: EncodeResponse,
{
    let (corr, resp) = decode_response_slice::<R>(v, frame).unwrap();
    let mut out = BytesMut::new();
    encode_response(&mut out, R::API_KEY, v, corr, &resp);
    let size = i32::from_be_bytes(out[..4].try_into().unwrap());
    assert_eq!(size as usize, out.len() - 4);
    out[4..].to_vec()
}

#[test]
fn responses_reencode_to_the_oracle_bytes() {
    let mut n = 0;
    for (api, v, frame) in valid_frames() {
        let again = match api {
            API_API_VERSIONS => reencode::<ApiVersionsRequest>(v, &frame),
            API_METADATA => reencode::<MetadataRequest>(v, &frame),
            API_PRODUCE => reencode::<ProduceRequest>(v, &frame),
            API_INIT_PRODUCER_ID => reencode::<InitProducerIdRequest>(v, &frame),
            API_FIND_COORDINATOR => reencode::<FindCoordinatorRequest>(v, &frame),
            API_ADD_PARTITIONS_TO_TXN => reencode::<AddPartitionsToTxnRequest>(v, &frame),
            API_ADD_OFFSETS_TO_TXN => reencode::<AddOffsetsToTxnRequest>(v, &frame),
            API_END_TXN => reencode::<EndTxnRequest>(v, &frame),
            API_TXN_OFFSET_COMMIT => reencode::<TxnOffsetCommitRequest>(v, &frame),
            _ => unreachable!(),
        };
        assert_eq!(again, frame, "api {api} v{v}");
        n += 1;
    }
    assert!(n > 50);
}

fn roundtrip<R: DecodeRequest + PartialEq + Debug>(req: &R, v: i16) -> R {
    let mut out = BytesMut::new();
    encode_request(&mut out, req, v, 99, "client-x");
    let (h, back) =
        decode_request::<R>(&out[4..]).unwrap_or_else(|e| panic!("api {} v{v}: {e}", R::API_KEY));
    assert_eq!(
        h,
        RequestHeader {
            api_key: R::API_KEY,
            api_version: v,
            correlation_id: 99,
            client_id: Some("client-x".into())
        }
    );
    let mut again = BytesMut::new();
    encode_request(&mut again, &back, v, 99, "client-x");
    assert_eq!(again, out, "api {} v{v}", R::API_KEY);
    if v == R::MAX_VERSION {
        assert_eq!(&back, req);
    }
    back
}

#[test]
fn requests_roundtrip_through_the_broker_side_decoder() {
    let mut b = BatchBuilder::with_capacity(0);
    b.append(5, Some(b"k"), Some(b"v"), &[]);
    let records: Bytes = b.seal(Compression::Snappy, ProducerStamp::NONE).unwrap().bytes;
    let produce = ProduceRequest {
        transactional_id: Some("t".into()),
        acks: -1,
        timeout_ms: 100,
        topic_data: vec![TopicProduceData {
            name: "x".into(),
            partition_data: vec![PartitionProduceData { index: 3, records }],
        }],
    };
    for v in 3..=12 {
        roundtrip(&produce, v);
    }
    let md = MetadataRequest {
        include_topic_authorized_operations: true,
        ..MetadataRequest::for_topics(&["a", "b"], false)
    };
    for v in 4..=13 {
        roundtrip(&md, v);
        roundtrip(&MetadataRequest::all_topics(), v);
    }
    let av = ApiVersionsRequest {
        client_software_name: "kp".into(),
        client_software_version: "1".into(),
    };
    for v in 0..=4 {
        roundtrip(&av, v);
    }
    let ip = InitProducerIdRequest {
        transactional_id: Some("t".into()),
        transaction_timeout_ms: 5,
        producer_id: 8,
        producer_epoch: 9,
    };
    for v in 0..=5 {
        roundtrip(&ip, v);
    }
    for v in 0..=6 {
        let back = roundtrip(&FindCoordinatorRequest::transaction("tx"), v);
        assert_eq!(back.keys, vec!["tx".to_string()]);
    }
    let ap = AddPartitionsToTxnRequest {
        transactional_id: "t".into(),
        producer_id: 1,
        producer_epoch: 2,
        topics: vec![AddPartitionsToTxnTopic { name: "a".into(), partitions: vec![1, 2] }],
    };
    for v in 0..=3 {
        roundtrip(&ap, v);
    }
    let ao = AddOffsetsToTxnRequest {
        transactional_id: "t".into(),
        producer_id: 1,
        producer_epoch: 2,
        group_id: "g".into(),
    };
    for v in 0..=4 {
        roundtrip(&ao, v);
    }
    let et = EndTxnRequest {
        transactional_id: "t".into(),
        producer_id: 1,
        producer_epoch: 2,
        committed: true,
    };
    for v in 0..=5 {
        roundtrip(&et, v);
    }
    let tc = TxnOffsetCommitRequest {
        transactional_id: "t".into(),
        group_id: "g".into(),
        producer_id: 3,
        producer_epoch: 4,
        generation_id: 5,
        member_id: "m".into(),
        group_instance_id: None,
        topics: vec![TxnOffsetCommitTopic {
            name: "a".into(),
            partitions: vec![TxnOffsetCommitPartition {
                partition_index: 0,
                committed_offset: 10,
                committed_leader_epoch: 2,
                committed_metadata: Some("m".into()),
            }],
        }],
    };
    for v in 0..=5 {
        roundtrip(&tc, v);
    }
    // wrong api key / unsupported version are reported
    let mut out = BytesMut::new();
    encode_request(&mut out, &et, 3, 1, "c");
    assert!(decode_request::<AddOffsetsToTxnRequest>(&out[4..]).is_err());
}
