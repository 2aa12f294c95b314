//! Requests encoded by kp are decoded by the independent kafka-protocol crate;
//! responses encoded by kafka-protocol are decoded by kp. Every supported
//! version is exercised, flexible and non-flexible, including the framing
//! (size prefix, request header v1/v2, response header v0/v1).

use bytes::{Buf, Bytes, BytesMut};
use kafka_protocol::messages as km;
use kafka_protocol::messages::{BrokerId, GroupId, ProducerId, TopicName, TransactionalId};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, StrBytes};

use crate::protocol::api::*;
use crate::protocol::compression::Compression;
use crate::protocol::messages::*;
use crate::protocol::record_batch::{BatchBuilder, ProducerStamp};

const CORR: i32 = 0x0102_0304;
const CLIENT: &str = "kp-oracle";

fn s(x: &str) -> StrBytes {
    StrBytes::from_string(x.to_owned())
}
fn os(x: &Option<StrBytes>) -> Option<String> {
    x.as_ref().map(|v| v.to_string())
}
fn tn(x: &str) -> TopicName {
    TopicName(s(x))
}
fn uuid(b: [u8; 16]) -> uuid::Uuid {
    uuid::Uuid::from_bytes(b)
}

/// Encode with kp (full frame), decode header + body with the oracle.
fn kp_to_oracle<R: Request, O: Decodable + HeaderVersion>(req: &R, v: i16) -> O {
    let mut out = BytesMut::new();
    encode_request(&mut out, req, v, CORR, CLIENT);
    // the vectored encoder must produce the very same bytes
    let segs = encode_request_vectored_with(req, v, CORR, CLIENT, 1);
    let joined: Vec<u8> = segs.iter().flat_map(|b| b.iter().copied()).collect();
    assert_eq!(joined, out.to_vec(), "vectored frame differs (api {} v{v})", R::API_KEY);

    let mut b = out.freeze();
    let size = b.get_i32();
    assert_eq!(size as usize, b.remaining());
    let hv = O::header_version(v);
    assert_eq!(
        hv,
        request_header_version(R::API_KEY, v),
        "request header version api {} v{v}",
        R::API_KEY
    );
    let h = km::RequestHeader::decode(&mut b, hv).unwrap();
    assert_eq!(h.request_api_key, R::API_KEY);
    assert_eq!(h.request_api_version, v);
    assert_eq!(h.correlation_id, CORR);
    assert_eq!(os(&h.client_id).as_deref(), Some(CLIENT));
    let o = O::decode(&mut b, v)
        .unwrap_or_else(|e| panic!("oracle decode api {} v{v}: {e}", R::API_KEY));
    assert_eq!(b.remaining(), 0, "trailing bytes api {} v{v}", R::API_KEY);
    o
}

/// Encode a response frame (no size prefix) with the oracle, decode with kp.
fn oracle_to_kp<R: Request, O: Encodable + HeaderVersion>(resp: &O, v: i16) -> R::Response {
    let hv = O::header_version(v);
    assert_eq!(
        hv,
        response_header_version(R::API_KEY, v),
        "response header version api {} v{v}",
        R::API_KEY
    );
    let mut b = BytesMut::new();
    let mut h = km::ResponseHeader::default();
    h.correlation_id = CORR;
    h.encode(&mut b, hv).unwrap();
    resp.encode(&mut b, v).unwrap_or_else(|e| panic!("oracle encode api {} v{v}: {e}", R::API_KEY));
    let frame = b.freeze();
    assert_eq!(peek_correlation_id(&frame).unwrap(), CORR);
    let (corr, r) = decode_response::<R>(v, frame).unwrap();
    assert_eq!(corr, CORR);
    r
}

#[test]
fn flexible_versions_match_oracle_header_versions() {
    fn check<Req: HeaderVersion, Resp: HeaderVersion>(api: i16, lo: i16, hi: i16) {
        for v in lo..=hi {
            assert_eq!(
                Req::header_version(v),
                request_header_version(api, v),
                "req api {api} v{v}"
            );
            assert_eq!(
                Resp::header_version(v),
                response_header_version(api, v),
                "resp api {api} v{v}"
            );
        }
    }
    check::<km::ProduceRequest, km::ProduceResponse>(API_PRODUCE, 3, 12);
    check::<km::MetadataRequest, km::MetadataResponse>(API_METADATA, 0, 13);
    check::<km::ApiVersionsRequest, km::ApiVersionsResponse>(API_API_VERSIONS, 0, 4);
    check::<km::FindCoordinatorRequest, km::FindCoordinatorResponse>(API_FIND_COORDINATOR, 0, 6);
    check::<km::InitProducerIdRequest, km::InitProducerIdResponse>(API_INIT_PRODUCER_ID, 0, 5);
    check::<km::AddPartitionsToTxnRequest, km::AddPartitionsToTxnResponse>(
        API_ADD_PARTITIONS_TO_TXN,
        0,
        3,
    );
    check::<km::AddOffsetsToTxnRequest, km::AddOffsetsToTxnResponse>(API_ADD_OFFSETS_TO_TXN, 0, 4);
    check::<km::EndTxnRequest, km::EndTxnResponse>(API_END_TXN, 0, 5);
    check::<km::TxnOffsetCommitRequest, km::TxnOffsetCommitResponse>(API_TXN_OFFSET_COMMIT, 0, 5);
    check::<km::SaslHandshakeRequest, km::SaslHandshakeResponse>(API_SASL_HANDSHAKE, 0, 1);
    check::<km::SaslAuthenticateRequest, km::SaslAuthenticateResponse>(API_SASL_AUTHENTICATE, 0, 2);
}

// ---------------------------------------------------------------------------
// ApiVersions

#[test]
fn api_versions_request() {
    let req = ApiVersionsRequest {
        client_software_name: "kp".into(),
        client_software_version: "0.1.0-test".into(),
    };
    for v in 0..=4 {
        let o: km::ApiVersionsRequest = kp_to_oracle(&req, v);
        if v >= 3 {
            assert_eq!(o.client_software_name.to_string(), "kp");
            assert_eq!(o.client_software_version.to_string(), "0.1.0-test");
        }
    }
}

pub(super) fn oracle_api_versions(v: i16, error_code: i16) -> km::ApiVersionsResponse {
    let mut o = km::ApiVersionsResponse::default();
    o.error_code = error_code;
    for (k, lo, hi) in [(0i16, 3i16, 12i16), (3, 0, 12), (18, 0, 4), (22, 0, 5)] {
        let mut a = km::api_versions_response::ApiVersion::default();
        a.api_key = k;
        a.min_version = lo;
        a.max_version = hi;
        o.api_keys.push(a);
    }
    if v >= 1 {
        o.throttle_time_ms = 17;
    }
    if v >= 3 {
        let mut f = km::api_versions_response::SupportedFeatureKey::default();
        f.name = s("transaction.version");
        f.min_version = 1;
        f.max_version = 2;
        o.supported_features.push(f);
        o.finalized_features_epoch = 123;
        let mut f = km::api_versions_response::FinalizedFeatureKey::default();
        f.name = s("transaction.version");
        f.max_version_level = 2;
        f.min_version_level = 1;
        o.finalized_features.push(f);
        let mut f = km::api_versions_response::FinalizedFeatureKey::default();
        f.name = s("metadata.version");
        f.max_version_level = 25;
        f.min_version_level = 1;
        o.finalized_features.push(f);
        o.zk_migration_ready = true;
    }
    o
}

fn check_api_versions(r: &ApiVersionsResponse, o: &km::ApiVersionsResponse) {
    assert_eq!(r.error_code, o.error_code);
    let keys: Vec<(i16, i16, i16)> =
        r.api_keys.iter().map(|k| (k.api_key, k.min_version, k.max_version)).collect();
    let okeys: Vec<(i16, i16, i16)> =
        o.api_keys.iter().map(|k| (k.api_key, k.min_version, k.max_version)).collect();
    assert_eq!(keys, okeys);
    assert_eq!(r.throttle_time_ms, o.throttle_time_ms);
    assert_eq!(r.finalized_features_epoch, o.finalized_features_epoch);
    assert_eq!(r.zk_migration_ready, o.zk_migration_ready);
    let sf: Vec<(String, i16, i16)> = r
        .supported_features
        .iter()
        .map(|f| (f.name.clone(), f.min_version, f.max_version))
        .collect();
    let osf: Vec<(String, i16, i16)> = o
        .supported_features
        .iter()
        .map(|f| (f.name.to_string(), f.min_version, f.max_version))
        .collect();
    assert_eq!(sf, osf);
    let ff: Vec<(String, i16, i16)> = r
        .finalized_features
        .iter()
        .map(|f| (f.name.clone(), f.max_version_level, f.min_version_level))
        .collect();
    let off: Vec<(String, i16, i16)> = o
        .finalized_features
        .iter()
        .map(|f| (f.name.to_string(), f.max_version_level, f.min_version_level))
        .collect();
    assert_eq!(ff, off);
}

#[test]
fn api_versions_response() {
    for v in 0..=4 {
        let o = oracle_api_versions(v, 0);
        let r = oracle_to_kp::<ApiVersionsRequest, _>(&o, v);
        check_api_versions(&r, &o);
        assert_eq!(r.decoded_version, v);
        assert_eq!(r.version_range(API_PRODUCE), Some((3, 12)));
        assert_eq!(r.version_range(99), None);
        if v >= 3 {
            assert_eq!(r.transaction_version(), 2);
            assert_eq!(r.finalized_feature("metadata.version").unwrap().max_version_level, 25);
        } else {
            assert_eq!(r.transaction_version(), 0);
        }
    }
}

#[test]
fn api_versions_unsupported_version_falls_back_to_v0() {
    // the broker answers a v3/v4 request it does not support with a v0 body
    let o = oracle_api_versions(0, crate::protocol::errors::UNSUPPORTED_VERSION);
    for v in [1, 2, 3, 4] {
        let mut b = BytesMut::new();
        let mut h = km::ResponseHeader::default();
        h.correlation_id = CORR;
        h.encode(&mut b, 0).unwrap();
        o.encode(&mut b, 0).unwrap();
        let (corr, r) = decode_response::<ApiVersionsRequest>(v, b.freeze()).unwrap();
        assert_eq!(corr, CORR);
        assert_eq!(r.decoded_version, 0, "v{v}");
        check_api_versions(&r, &o);
    }
}

// ---------------------------------------------------------------------------
// Metadata

#[test]
fn metadata_request() {
    let named = MetadataRequest {
        topics: Some(vec![
            MetadataRequestTopic { topic_id: [0; 16], name: Some("alpha".into()) },
            MetadataRequestTopic { topic_id: [0; 16], name: Some("beta-topic".into()) },
        ]),
        allow_auto_topic_creation: false,
        include_cluster_authorized_operations: false,
        include_topic_authorized_operations: true,
    };
    let all = MetadataRequest::all_topics();
    let empty = MetadataRequest::for_topics::<&str>(&[], true);
    for v in 4..=13 {
        let o: km::MetadataRequest = kp_to_oracle(&named, v);
        let topics = o.topics.unwrap();
        let names: Vec<String> =
            topics.iter().map(|t| t.name.as_ref().unwrap().0.to_string()).collect();
        assert_eq!(names, vec!["alpha", "beta-topic"]);
        assert!(topics.iter().all(|t| t.topic_id.is_nil()));
        assert!(!o.allow_auto_topic_creation);
        assert_eq!(o.include_topic_authorized_operations, v >= 8);
        let o: km::MetadataRequest = kp_to_oracle(&all, v);
        assert!(o.topics.is_none());
        assert!(o.allow_auto_topic_creation);
        let o: km::MetadataRequest = kp_to_oracle(&empty, v);
        assert_eq!(o.topics.map(|t| t.len()), Some(0));
    }
}

pub(super) fn oracle_metadata(v: i16) -> km::MetadataResponse {
    let mut o = km::MetadataResponse::default();
    o.throttle_time_ms = 3;
    for (id, host, port, rack) in
        [(1, "b1.example", 9092, Some("r1")), (2, "b2.example", 9093, None)]
    {
        let mut b = km::metadata_response::MetadataResponseBroker::default();
        b.node_id = BrokerId(id);
        b.host = s(host);
        b.port = port;
        b.rack = rack.map(s);
        o.brokers.push(b);
    }
    o.cluster_id = Some(s("cluster-xyz"));
    o.controller_id = BrokerId(2);
    for (ti, name) in ["orders", "__consumer_offsets"].iter().enumerate() {
        let mut t = km::metadata_response::MetadataResponseTopic::default();
        t.error_code = if ti == 0 { 0 } else { 3 };
        t.name = Some(tn(name));
        if v >= 10 {
            t.topic_id = uuid([ti as u8 + 1; 16]);
        }
        t.is_internal = ti == 1;
        for p in 0..3 {
            let mut pm = km::metadata_response::MetadataResponsePartition::default();
            pm.error_code = if p == 2 { 5 } else { 0 };
            pm.partition_index = p;
            pm.leader_id = BrokerId(p % 2 + 1);
            if v >= 7 {
                pm.leader_epoch = 10 + p;
            }
            pm.replica_nodes = vec![BrokerId(1), BrokerId(2)];
            pm.isr_nodes = vec![BrokerId(p % 2 + 1)];
            if v >= 5 {
                pm.offline_replicas = if p == 1 { vec![BrokerId(2)] } else { vec![] };
            }
            t.partitions.push(pm);
        }
        if v >= 8 {
            t.topic_authorized_operations = 0x0f;
        }
        o.topics.push(t);
    }
    if (8..=10).contains(&v) {
        o.cluster_authorized_operations = 0x1ff;
    }
    if v >= 13 {
        o.error_code = 129;
    }
    o
}

fn from_oracle_metadata(o: &km::MetadataResponse) -> MetadataResponse {
    MetadataResponse {
        throttle_time_ms: o.throttle_time_ms,
        brokers: o
            .brokers
            .iter()
            .map(|b| MetadataBroker {
                node_id: b.node_id.0,
                host: b.host.to_string(),
                port: b.port,
                rack: os(&b.rack),
            })
            .collect(),
        cluster_id: os(&o.cluster_id),
        controller_id: o.controller_id.0,
        topics: o
            .topics
            .iter()
            .map(|t| MetadataTopic {
                error_code: t.error_code,
                name: t.name.as_ref().map(|n| n.0.to_string()),
                topic_id: *t.topic_id.as_bytes(),
                is_internal: t.is_internal,
                partitions: t
                    .partitions
                    .iter()
                    .map(|p| MetadataPartition {
                        error_code: p.error_code,
                        partition_index: p.partition_index,
                        leader_id: p.leader_id.0,
                        leader_epoch: p.leader_epoch,
                        replica_nodes: p.replica_nodes.iter().map(|b| b.0).collect(),
                        isr_nodes: p.isr_nodes.iter().map(|b| b.0).collect(),
                        offline_replicas: p.offline_replicas.iter().map(|b| b.0).collect(),
                    })
                    .collect(),
                topic_authorized_operations: t.topic_authorized_operations,
            })
            .collect(),
        cluster_authorized_operations: o.cluster_authorized_operations,
        error_code: o.error_code,
    }
}

#[test]
fn metadata_response() {
    for v in 4..=13 {
        let o = oracle_metadata(v);
        let r = oracle_to_kp::<MetadataRequest, _>(&o, v);
        assert_eq!(r, from_oracle_metadata(&o), "v{v}");
    }
}

// ---------------------------------------------------------------------------
// Produce

fn batch(n: usize, c: Compression) -> Bytes {
    let mut b = BatchBuilder::with_capacity(1024);
    for i in 0..n {
        b.append(1_700_000_000_000 + i as i64, Some(b"key"), Some(&vec![i as u8; 300]), &[]);
    }
    b.seal(c, ProducerStamp::NONE).unwrap().bytes
}

#[test]
fn produce_request() {
    let b1 = batch(10, Compression::None);
    let b2 = batch(3, Compression::Lz4(None));
    let mut two = BytesMut::new();
    two.extend_from_slice(&b1);
    two.extend_from_slice(&b2);
    let req = ProduceRequest {
        transactional_id: Some("txn-1".into()),
        acks: -1,
        timeout_ms: 30_000,
        topic_data: vec![
            TopicProduceData {
                name: "orders".into(),
                partition_data: vec![
                    PartitionProduceData { index: 0, records: b1.clone() },
                    PartitionProduceData { index: 7, records: two.freeze() },
                ],
            },
            TopicProduceData {
                name: "t2".into(),
                partition_data: vec![PartitionProduceData { index: 2, records: b2.clone() }],
            },
        ],
    };
    let mut no_txn = req.clone();
    no_txn.transactional_id = None;
    no_txn.acks = 1;
    for v in 3..=12 {
        for r in [&req, &no_txn] {
            let o: km::ProduceRequest = kp_to_oracle(r, v);
            assert_eq!(o.transactional_id.as_ref().map(|t| t.0.to_string()), r.transactional_id);
            assert_eq!(o.acks, r.acks);
            assert_eq!(o.timeout_ms, r.timeout_ms);
            assert_eq!(o.topic_data.len(), r.topic_data.len());
            for (ot, t) in o.topic_data.iter().zip(&r.topic_data) {
                assert_eq!(ot.name.0.to_string(), t.name);
                assert_eq!(ot.partition_data.len(), t.partition_data.len());
                for (op, p) in ot.partition_data.iter().zip(&t.partition_data) {
                    assert_eq!(op.index, p.index);
                    assert_eq!(op.records.as_ref(), Some(&p.records));
                }
            }
            let mut body = BytesMut::new();
            r.encode_body(v, &mut body);
            assert_eq!(body.len(), r.body_size(v), "body_size v{v}");
        }
    }
}

#[test]
fn produce_request_vectored_shares_batches() {
    let big = batch(50, Compression::None);
    // a one-record batch (under the 1 KiB that used to be copied) is
    // referenced as well: a queued request never holds a second copy of what
    // buffer.memory counts once
    let small = batch(1, Compression::None);
    assert!(small.len() < 1024, "{}", small.len());
    let req = ProduceRequest {
        transactional_id: None,
        acks: 1,
        timeout_ms: 1000,
        topic_data: vec![TopicProduceData {
            name: "t".into(),
            partition_data: vec![
                PartitionProduceData { index: 0, records: big.clone() },
                PartitionProduceData { index: 1, records: small.clone() },
            ],
        }],
    };
    for v in [3, 8, 9, 12] {
        let segs = encode_request_vectored(&req, v, 5, "c");
        // head, batch, glue, batch, then the trailing tagged fields when flexible
        assert_eq!(segs.len(), if v >= 9 { 5 } else { 4 }, "v{v}");
        // the batch segments point into the caller's buffer: no copy
        assert_eq!(segs[1].as_ptr(), big.as_ptr());
        assert_eq!(segs[3].as_ptr(), small.as_ptr());
        let mut flat = BytesMut::new();
        encode_request(&mut flat, &req, v, 5, "c");
        let joined: Vec<u8> = segs.iter().flat_map(|b| b.iter().copied()).collect();
        assert_eq!(joined, flat.to_vec());
    }
}

pub(super) fn oracle_produce(v: i16) -> km::ProduceResponse {
    let mut o = km::ProduceResponse::default();
    for (ti, name) in ["orders", "t2"].iter().enumerate() {
        let mut t = km::produce_response::TopicProduceResponse::default();
        t.name = tn(name);
        for p in 0..2 {
            let mut pr = km::produce_response::PartitionProduceResponse::default();
            pr.index = p;
            pr.error_code = if p == 1 { 6 } else { 0 };
            pr.base_offset = 1000 * (ti as i64 + 1) + p as i64;
            pr.log_append_time_ms = if p == 0 { 1_700_000_000_123 } else { -1 };
            if v >= 5 {
                pr.log_start_offset = 42;
            }
            if v >= 8 && p == 1 {
                let mut e = km::produce_response::BatchIndexAndErrorMessage::default();
                e.batch_index = 3;
                e.batch_index_error_message = Some(s("bad record"));
                pr.record_errors.push(e);
                let mut e = km::produce_response::BatchIndexAndErrorMessage::default();
                e.batch_index = 4;
                pr.record_errors.push(e);
                pr.error_message = Some(s("not leader"));
            }
            if v >= 10 && p == 1 {
                pr.current_leader.leader_id = BrokerId(3);
                pr.current_leader.leader_epoch = 77;
            }
            t.partition_responses.push(pr);
        }
        o.responses.push(t);
    }
    o.throttle_time_ms = 9;
    if v >= 10 {
        let mut n = km::produce_response::NodeEndpoint::default();
        n.node_id = BrokerId(3);
        n.host = s("b3.example");
        n.port = 9094;
        n.rack = Some(s("rack-3"));
        o.node_endpoints.push(n);
    }
    o
}

fn from_oracle_produce(o: &km::ProduceResponse) -> ProduceResponse {
    ProduceResponse {
        responses: o
            .responses
            .iter()
            .map(|t| TopicProduceResponse {
                name: t.name.0.to_string(),
                partition_responses: t
                    .partition_responses
                    .iter()
                    .map(|p| PartitionProduceResponse {
                        index: p.index,
                        error_code: p.error_code,
                        base_offset: p.base_offset,
                        log_append_time_ms: p.log_append_time_ms,
                        log_start_offset: p.log_start_offset,
                        record_errors: p
                            .record_errors
                            .iter()
                            .map(|e| BatchIndexAndErrorMessage {
                                batch_index: e.batch_index,
                                batch_index_error_message: os(&e.batch_index_error_message),
                            })
                            .collect(),
                        error_message: os(&p.error_message),
                        current_leader: if p.current_leader == Default::default() {
                            None
                        } else {
                            Some(LeaderIdAndEpoch {
                                leader_id: p.current_leader.leader_id.0,
                                leader_epoch: p.current_leader.leader_epoch,
                            })
                        },
                    })
                    .collect(),
            })
            .collect(),
        throttle_time_ms: o.throttle_time_ms,
        node_endpoints: o
            .node_endpoints
            .iter()
            .map(|n| NodeEndpoint {
                node_id: n.node_id.0,
                host: n.host.to_string(),
                port: n.port,
                rack: os(&n.rack),
            })
            .collect(),
    }
}

#[test]
fn produce_response() {
    for v in 3..=12 {
        let o = oracle_produce(v);
        let r = oracle_to_kp::<ProduceRequest, _>(&o, v);
        assert_eq!(r, from_oracle_produce(&o), "v{v}");
        if v >= 10 {
            assert_eq!(
                r.responses[0].partition_responses[1].current_leader,
                Some(LeaderIdAndEpoch { leader_id: 3, leader_epoch: 77 })
            );
            assert_eq!(r.node_endpoints.len(), 1);
        }
    }
}

// ---------------------------------------------------------------------------
// InitProducerId

#[test]
fn init_producer_id() {
    let req = InitProducerIdRequest {
        transactional_id: Some("tx".into()),
        transaction_timeout_ms: 45_000,
        producer_id: 1234,
        producer_epoch: 5,
    };
    let idem = InitProducerIdRequest::default();
    for v in 0..=5 {
        let o: km::InitProducerIdRequest = kp_to_oracle(&req, v);
        assert_eq!(o.transactional_id.map(|t| t.0.to_string()).as_deref(), Some("tx"));
        assert_eq!(o.transaction_timeout_ms, 45_000);
        if v >= 3 {
            assert_eq!(o.producer_id.0, 1234);
            assert_eq!(o.producer_epoch, 5);
        }
        let o: km::InitProducerIdRequest = kp_to_oracle(&idem, v);
        assert!(o.transactional_id.is_none());
        assert_eq!(o.producer_id.0, -1);
        assert_eq!(o.producer_epoch, -1);

        let mut o = km::InitProducerIdResponse::default();
        o.throttle_time_ms = 1;
        o.error_code = 47;
        o.producer_id = ProducerId(987_654_321_000);
        o.producer_epoch = 12;
        let r = oracle_to_kp::<InitProducerIdRequest, _>(&o, v);
        assert_eq!(
            r,
            InitProducerIdResponse {
                throttle_time_ms: 1,
                error_code: 47,
                producer_id: 987_654_321_000,
                producer_epoch: 12
            }
        );
    }
}

// ---------------------------------------------------------------------------
// FindCoordinator

#[test]
fn find_coordinator() {
    let req = FindCoordinatorRequest::transaction("my-txn");
    for v in 0..=6 {
        let o: km::FindCoordinatorRequest = kp_to_oracle(&req, v);
        if v <= 3 {
            assert_eq!(o.key.to_string(), "my-txn");
        } else {
            assert_eq!(
                o.coordinator_keys.iter().map(|k| k.to_string()).collect::<Vec<_>>(),
                vec!["my-txn"]
            );
        }
        if v >= 1 {
            assert_eq!(o.key_type, 1);
        }

        let mut o = km::FindCoordinatorResponse::default();
        if v >= 1 {
            o.throttle_time_ms = 4;
        }
        let expected = if v <= 3 {
            o.error_code = 0;
            if v >= 1 {
                o.error_message = Some(s("ok"));
            }
            o.node_id = BrokerId(5);
            o.host = s("coord.example");
            o.port = 19092;
            Coordinator {
                key: String::new(),
                node_id: 5,
                host: "coord.example".into(),
                port: 19092,
                error_code: 0,
                error_message: if v >= 1 { Some("ok".into()) } else { None },
            }
        } else {
            let mut c = km::find_coordinator_response::Coordinator::default();
            c.key = s("my-txn");
            c.node_id = BrokerId(5);
            c.host = s("coord.example");
            c.port = 19092;
            c.error_code = 15;
            c.error_message = None;
            o.coordinators.push(c);
            Coordinator {
                key: "my-txn".into(),
                node_id: 5,
                host: "coord.example".into(),
                port: 19092,
                error_code: 15,
                error_message: None,
            }
        };
        let r = oracle_to_kp::<FindCoordinatorRequest, _>(&o, v);
        assert_eq!(r.throttle_time_ms, if v >= 1 { 4 } else { 0 });
        assert_eq!(r.coordinators, vec![expected.clone()]);
        assert_eq!(r.coordinator_for("my-txn"), Some(&expected));
    }
}

// ---------------------------------------------------------------------------
// AddPartitionsToTxn / AddOffsetsToTxn / EndTxn

#[test]
fn add_partitions_to_txn() {
    let req = AddPartitionsToTxnRequest {
        transactional_id: "tx".into(),
        producer_id: 77,
        producer_epoch: 3,
        topics: vec![
            AddPartitionsToTxnTopic { name: "a".into(), partitions: vec![0, 1, 2] },
            AddPartitionsToTxnTopic { name: "b".into(), partitions: vec![9] },
        ],
    };
    for v in 0..=3 {
        let o: km::AddPartitionsToTxnRequest = kp_to_oracle(&req, v);
        assert_eq!(o.v3_and_below_transactional_id.0.to_string(), "tx");
        assert_eq!(o.v3_and_below_producer_id.0, 77);
        assert_eq!(o.v3_and_below_producer_epoch, 3);
        let topics: Vec<(String, Vec<i32>)> = o
            .v3_and_below_topics
            .iter()
            .map(|t| (t.name.0.to_string(), t.partitions.clone()))
            .collect();
        assert_eq!(topics, vec![("a".to_string(), vec![0, 1, 2]), ("b".to_string(), vec![9])]);

        let mut o = km::AddPartitionsToTxnResponse::default();
        o.throttle_time_ms = 2;
        let mut t = km::add_partitions_to_txn_response::AddPartitionsToTxnTopicResult::default();
        t.name = tn("a");
        for (p, e) in [(0, 0i16), (1, 51)] {
            let mut pr =
                km::add_partitions_to_txn_response::AddPartitionsToTxnPartitionResult::default();
            pr.partition_index = p;
            pr.partition_error_code = e;
            t.results_by_partition.push(pr);
        }
        o.results_by_topic_v3_and_below.push(t);
        let r = oracle_to_kp::<AddPartitionsToTxnRequest, _>(&o, v);
        assert_eq!(
            r,
            AddPartitionsToTxnResponse {
                throttle_time_ms: 2,
                results_by_topic: vec![AddPartitionsToTxnTopicResult {
                    name: "a".into(),
                    results_by_partition: vec![
                        AddPartitionsToTxnPartitionResult {
                            partition_index: 0,
                            partition_error_code: 0
                        },
                        AddPartitionsToTxnPartitionResult {
                            partition_index: 1,
                            partition_error_code: 51
                        },
                    ],
                }],
            }
        );
    }
}

#[test]
fn add_offsets_to_txn() {
    let req = AddOffsetsToTxnRequest {
        transactional_id: "tx".into(),
        producer_id: 5,
        producer_epoch: 6,
        group_id: "g1".into(),
    };
    for v in 0..=4 {
        let o: km::AddOffsetsToTxnRequest = kp_to_oracle(&req, v);
        assert_eq!(o.transactional_id.0.to_string(), "tx");
        assert_eq!(o.producer_id.0, 5);
        assert_eq!(o.producer_epoch, 6);
        assert_eq!(o.group_id.0.to_string(), "g1");
        let mut o = km::AddOffsetsToTxnResponse::default();
        o.throttle_time_ms = 8;
        o.error_code = 48;
        let r = oracle_to_kp::<AddOffsetsToTxnRequest, _>(&o, v);
        assert_eq!(r, AddOffsetsToTxnResponse { throttle_time_ms: 8, error_code: 48 });
    }
}

#[test]
fn end_txn() {
    for committed in [true, false] {
        let req = EndTxnRequest {
            transactional_id: "tx".into(),
            producer_id: 11,
            producer_epoch: 12,
            committed,
        };
        for v in 0..=5 {
            let o: km::EndTxnRequest = kp_to_oracle(&req, v);
            assert_eq!(o.transactional_id.0.to_string(), "tx");
            assert_eq!(o.producer_id.0, 11);
            assert_eq!(o.producer_epoch, 12);
            assert_eq!(o.committed, committed);
            let mut o = km::EndTxnResponse::default();
            o.throttle_time_ms = 1;
            o.error_code = 0;
            if v >= 5 {
                o.producer_id = ProducerId(11);
                o.producer_epoch = 13;
            }
            let r = oracle_to_kp::<EndTxnRequest, _>(&o, v);
            let (pid, epoch) = if v >= 5 { (11, 13) } else { (-1, -1) };
            assert_eq!(
                r,
                EndTxnResponse {
                    throttle_time_ms: 1,
                    error_code: 0,
                    producer_id: pid,
                    producer_epoch: epoch
                }
            );
        }
    }
}

// ---------------------------------------------------------------------------
// TxnOffsetCommit

#[test]
fn txn_offset_commit() {
    let req = TxnOffsetCommitRequest {
        transactional_id: "tx".into(),
        group_id: "grp".into(),
        producer_id: 31,
        producer_epoch: 2,
        generation_id: 9,
        member_id: "member-1".into(),
        group_instance_id: Some("inst".into()),
        topics: vec![TxnOffsetCommitTopic {
            name: "in".into(),
            partitions: vec![
                TxnOffsetCommitPartition {
                    partition_index: 0,
                    committed_offset: 100,
                    committed_leader_epoch: 4,
                    committed_metadata: Some("meta".into()),
                },
                TxnOffsetCommitPartition {
                    partition_index: 3,
                    committed_offset: 7,
                    committed_leader_epoch: -1,
                    committed_metadata: None,
                },
            ],
        }],
    };
    for v in 0..=5 {
        let o: km::TxnOffsetCommitRequest = kp_to_oracle(&req, v);
        assert_eq!(o.transactional_id.0.to_string(), "tx");
        assert_eq!(o.group_id.0.to_string(), "grp");
        assert_eq!(o.producer_id.0, 31);
        assert_eq!(o.producer_epoch, 2);
        if v >= 3 {
            assert_eq!(o.generation_id, 9);
            assert_eq!(o.member_id.to_string(), "member-1");
            assert_eq!(os(&o.group_instance_id).as_deref(), Some("inst"));
        }
        assert_eq!(o.topics.len(), 1);
        assert_eq!(o.topics[0].name.0.to_string(), "in");
        let ps = &o.topics[0].partitions;
        assert_eq!(ps.len(), 2);
        assert_eq!((ps[0].partition_index, ps[0].committed_offset), (0, 100));
        assert_eq!(ps[0].committed_leader_epoch, if v >= 2 { 4 } else { -1 });
        assert_eq!(os(&ps[0].committed_metadata).as_deref(), Some("meta"));
        assert_eq!(os(&ps[1].committed_metadata), None);

        let mut o = km::TxnOffsetCommitResponse::default();
        o.throttle_time_ms = 6;
        let mut t = km::txn_offset_commit_response::TxnOffsetCommitResponseTopic::default();
        t.name = tn("in");
        for (p, e) in [(0, 0i16), (3, 22)] {
            let mut pr =
                km::txn_offset_commit_response::TxnOffsetCommitResponsePartition::default();
            pr.partition_index = p;
            pr.error_code = e;
            t.partitions.push(pr);
        }
        o.topics.push(t);
        let r = oracle_to_kp::<TxnOffsetCommitRequest, _>(&o, v);
        assert_eq!(
            r,
            TxnOffsetCommitResponse {
                throttle_time_ms: 6,
                topics: vec![TxnOffsetCommitTopicResult {
                    name: "in".into(),
                    partitions: vec![
                        TxnOffsetCommitPartitionResult { partition_index: 0, error_code: 0 },
                        TxnOffsetCommitPartitionResult { partition_index: 3, error_code: 22 },
                    ],
                }],
            }
        );
    }
}

#[test]
fn negotiation() {
    assert_eq!(negotiate((3, 12), (0, 11)), Some(11));
    assert_eq!(negotiate((3, 12), (0, 13)), Some(12));
    assert_eq!(negotiate((3, 12), (0, 2)), None);
    assert_eq!(negotiate((0, 5), (5, 9)), Some(5));
    assert_eq!(negotiate_for::<ProduceRequest>((0, 13)), Some(12));
    assert_eq!(negotiate_for::<MetadataRequest>((0, 3)), None);
    assert!(is_flexible(API_PRODUCE, 9) && !is_flexible(API_PRODUCE, 8));
    assert!(!is_flexible(API_SASL_HANDSHAKE, 1));
    assert_eq!(response_header_version(API_API_VERSIONS, 4), 0);
    assert_eq!(request_header_version(API_API_VERSIONS, 3), 2);
    // decode_response rejects versions outside the supported range
    assert!(decode_response::<ProduceRequest>(13, Bytes::from_static(&[0, 0, 0, 1])).is_err());
    assert_eq!(peek_correlation_id(&[0, 0, 1]), Err(crate::protocol::DecodeError::Truncated));
    let _ = (GroupId(s("x")), TransactionalId(s("y")));
}
