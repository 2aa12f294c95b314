//! Leader discovery with two mock brokers (nodes 1 and 2):
//!
//! - KIP-951: node 1 answers a produce with NOT_LEADER_OR_FOLLOWER naming
//!   node 2 as the current leader (a newer leader epoch) and node 2's
//!   endpoint. The metadata the mock serves never changes (node 1 leads in
//!   epoch 5, node 2 is not even listed), so the batch can only reach node 2
//!   through the produce answer, and stale metadata must not move the
//!   partition back.
//! - KIP-1102: a known broker answers Metadata with REBOOTSTRAP_REQUIRED and
//!   kp starts over from bootstrap.servers.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};

use crate::config::{ConfigMap, ProducerConfig};
use crate::error;
use crate::protocol::api;
use crate::protocol::messages::*;
use crate::protocol::test_support::led_partition;

use crate::engine::{Dispatch, Producer, Record, ReportView, Token};

use super::ordering_tests::{ranges, read_frame};

struct Mock {
    /// Ports of nodes 1 and 2.
    ports: [u16; 2],
    /// Metadata requests each node answered.
    metadata: [AtomicUsize; 2],
    /// Produce requests each node answered.
    produce: [AtomicUsize; 2],
    /// Node 1 refuses produce requests, naming node 2 (leader epoch 6).
    node1_moved: AtomicBool,
    /// Node 2 answers Metadata with REBOOTSTRAP_REQUIRED.
    node2_wants_rebootstrap: AtomicBool,
    /// Metadata lists node 2 (not node 1) as the only broker and leader.
    metadata_names_node2: AtomicBool,
    next_offset: Mutex<i64>,
}

fn metadata_answer(mock: &Mock, req: MetadataRequest, node: usize) -> MetadataResponse {
    let rebootstrap = node == 2 && mock.node2_wants_rebootstrap.load(Ordering::Acquire);
    let leader = if mock.metadata_names_node2.load(Ordering::Acquire) { 2 } else { 1 };
    let topics = req
        .topics
        .unwrap_or_default()
        .into_iter()
        .map(|t| MetadataTopic {
            error_code: 0,
            name: t.name,
            topic_id: [7; 16],
            is_internal: false,
            partitions: vec![MetadataPartition { leader_epoch: 5, ..led_partition(0, leader) }],
            topic_authorized_operations: i32::MIN,
        })
        .collect();
    MetadataResponse {
        throttle_time_ms: 0,
        brokers: vec![MetadataBroker {
            node_id: leader,
            host: "127.0.0.1".into(),
            port: mock.ports[leader as usize - 1] as i32,
            rack: None,
        }],
        cluster_id: Some("mock".into()),
        controller_id: leader,
        topics,
        cluster_authorized_operations: i32::MIN,
        error_code: if rebootstrap { error::REBOOTSTRAP_REQUIRED as i16 } else { 0 },
    }
}

fn produce_answer(mock: &Mock, req: ProduceRequest, node: usize) -> ProduceResponse {
    let refuse = node == 1 && mock.node1_moved.load(Ordering::Acquire);
    let responses = req
        .topic_data
        .into_iter()
        .map(|t| TopicProduceResponse {
            name: t.name,
            partition_responses: t
                .partition_data
                .iter()
                .map(|p| {
                    let (code, base, current_leader) = if refuse {
                        let l = LeaderIdAndEpoch { leader_id: 2, leader_epoch: 6 };
                        (error::NOT_LEADER_OR_FOLLOWER as i16, -1, Some(l))
                    } else {
                        let mut next = mock.next_offset.lock().unwrap();
                        let base = *next;
                        *next += 1;
                        (0, base, None)
                    };
                    PartitionProduceResponse {
                        index: p.index,
                        error_code: code,
                        base_offset: base,
                        log_append_time_ms: -1,
                        log_start_offset: 0,
                        record_errors: vec![],
                        error_message: None,
                        current_leader,
                    }
                })
                .collect(),
        })
        .collect();
    let node_endpoints = if refuse {
        vec![NodeEndpoint {
            node_id: 2,
            host: "127.0.0.1".into(),
            port: mock.ports[1] as i32,
            rack: None,
        }]
    } else {
        vec![]
    };
    ProduceResponse { responses, throttle_time_ms: 0, node_endpoints }
}

/// `node` is 1 or 2.
async fn serve_connection(mock: Arc<Mock>, mut s: TcpStream, node: usize) {
    while let Some(frame) = read_frame(&mut s).await {
        let (h, _) = api::decode_request_header(&frame).expect("request header");
        let mut out = BytesMut::new();
        let (v, corr) = (h.api_version, h.correlation_id);
        match h.api_key {
            api::API_API_VERSIONS => {
                let resp = ApiVersionsResponse {
                    error_code: 0,
                    api_keys: ranges(),
                    throttle_time_ms: 0,
                    supported_features: vec![],
                    finalized_features_epoch: -1,
                    finalized_features: vec![],
                    zk_migration_ready: false,
                    decoded_version: v,
                };
                api::encode_response(&mut out, h.api_key, v, corr, &resp);
            }
            api::API_METADATA => {
                mock.metadata[node - 1].fetch_add(1, Ordering::AcqRel);
                let (_, req) = api::decode_request::<MetadataRequest>(&frame).expect("metadata");
                let resp = metadata_answer(&mock, req, node);
                api::encode_response(&mut out, h.api_key, v, corr, &resp);
            }
            api::API_INIT_PRODUCER_ID => {
                let resp = InitProducerIdResponse {
                    throttle_time_ms: 0,
                    error_code: 0,
                    producer_id: 4000,
                    producer_epoch: 0,
                };
                api::encode_response(&mut out, h.api_key, v, corr, &resp);
            }
            api::API_PRODUCE => {
                mock.produce[node - 1].fetch_add(1, Ordering::AcqRel);
                let (_, req) = api::decode_request::<ProduceRequest>(&frame).expect("produce");
                let resp = produce_answer(&mock, req, node);
                api::encode_response(&mut out, h.api_key, v, corr, &resp);
            }
            other => panic!("the mock broker does not speak API {other}"),
        }
        if s.write_all(&out).await.is_err() {
            return;
        }
    }
}

fn start_mock() -> (Arc<Mock>, tokio::runtime::Runtime) {
    let rt =
        tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let l1 = rt.block_on(TcpListener::bind("127.0.0.1:0")).unwrap();
    let l2 = rt.block_on(TcpListener::bind("127.0.0.1:0")).unwrap();
    let mock = Arc::new(Mock {
        ports: [l1.local_addr().unwrap().port(), l2.local_addr().unwrap().port()],
        metadata: Default::default(),
        produce: Default::default(),
        node1_moved: AtomicBool::new(false),
        node2_wants_rebootstrap: AtomicBool::new(false),
        metadata_names_node2: AtomicBool::new(false),
        next_offset: Mutex::new(0),
    });
    for (node, l) in [(1, l1), (2, l2)] {
        let m = mock.clone();
        rt.spawn(async move {
            while let Ok((s, _)) = l.accept().await {
                tokio::spawn(serve_connection(m.clone(), s, node));
            }
        });
    }
    (mock, rt)
}

type Reports = Arc<Mutex<Vec<(i32, i64)>>>;

fn producer(port: u16, extra: &[(&str, &str)]) -> (Producer, Reports) {
    let mut m = ConfigMap::default();
    m.set("bootstrap.servers", &format!("127.0.0.1:{port}")).unwrap();
    m.set("linger.ms", "0").unwrap();
    for (k, v) in extra {
        m.set(k, v).unwrap();
    }
    let reports: Reports = Arc::default();
    let r = reports.clone();
    let dispatch: Arc<Dispatch> = Arc::new(move |v: &ReportView<'_>, _: &Token| {
        r.lock().unwrap().push((v.error, v.offset));
    });
    (Producer::new(ProducerConfig::from_map(&m).unwrap(), dispatch, None).unwrap(), reports)
}

fn send_one(p: &Producer) {
    let rec = Record {
        topic: "t",
        partition: 0,
        key: None,
        value: Some(b"v"),
        headers: &[],
        timestamp_ms: 0,
    };
    p.send(&rec, Token::None).unwrap();
}

fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn a_refused_batch_follows_the_current_leader_named_in_the_produce_answer() {
    let (mock, _rt) = start_mock();
    mock.node1_moved.store(true, Ordering::Release);
    // A retry after backoff would wait 10 s or more: far past the flush.
    let (p, reports) = producer(
        mock.ports[0],
        &[("retry.backoff.ms", "10000"), ("retry.backoff.max.ms", "10000")],
    );
    send_one(&p);
    assert!(p.flush(Duration::from_secs(8)).is_ok(), "the batch waited for a backoff");
    assert_eq!(reports.lock().unwrap().as_slice(), &[(0, 0)], "delivered once, by node 2");
    assert_eq!(mock.produce[0].load(Ordering::Acquire), 1, "node 1 refused it once");
    assert_eq!(mock.produce[1].load(Ordering::Acquire), 1);
    let inner = &p.inner;
    let pq = inner.topics.read().get("t").unwrap().meta.read().partitions[0].clone();
    assert_eq!((pq.leader(), pq.leadership().epoch), (2, 6));

    // The background refresh (and any later one) serves the stale leader
    // (node 1, epoch 5): the partition stays with node 2.
    let asked = || mock.metadata.iter().map(|m| m.load(Ordering::Acquire)).sum::<usize>();
    let before = asked();
    inner.request_metadata();
    wait_until("a metadata refresh", || asked() > before);
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(pq.leader(), 2, "stale metadata moved the partition back");
    send_one(&p);
    assert!(p.flush(Duration::from_secs(8)).is_ok());
    assert_eq!(reports.lock().unwrap().as_slice(), &[(0, 0), (0, 1)]);
    assert_eq!(mock.produce[0].load(Ordering::Acquire), 1, "the second batch went to node 2");
    let _ = p.close(Duration::from_secs(1));
}

#[test]
fn rebootstrap_required_sends_kp_back_to_the_bootstrap_servers() {
    let (mock, _rt) = start_mock();
    // Bootstrap is node 1; metadata names node 2 only, which then asks for
    // a rebootstrap.
    mock.metadata_names_node2.store(true, Ordering::Release);
    let (p, reports) = producer(mock.ports[0], &[("metadata.max.age.ms", "100")]);
    send_one(&p);
    assert!(p.flush(Duration::from_secs(8)).is_ok());
    assert_eq!(mock.produce[1].load(Ordering::Acquire), 1, "node 2 leads");
    let asked_bootstrap = mock.metadata[0].load(Ordering::Acquire);
    mock.node2_wants_rebootstrap.store(true, Ordering::Release);
    let inner = &p.inner;
    wait_until("a rebootstrap", || inner.metadata.rebootstraps.load(Ordering::Acquire) >= 1);
    wait_until("metadata from the bootstrap server again", || {
        mock.metadata[0].load(Ordering::Acquire) > asked_bootstrap
    });
    // The producer carries on (node 2 still leads).
    mock.node2_wants_rebootstrap.store(false, Ordering::Release);
    send_one(&p);
    assert!(p.flush(Duration::from_secs(8)).is_ok());
    let got = reports.lock().unwrap().clone();
    assert_eq!(got.len(), 2);
    assert!(got.iter().all(|&(e, _)| e == 0), "{got:?}");
    let _ = p.close(Duration::from_secs(1));
}

#[test]
fn metadata_recovery_none_keeps_to_the_known_brokers() {
    let (mock, _rt) = start_mock();
    mock.metadata_names_node2.store(true, Ordering::Release);
    let (p, _reports) = producer(
        mock.ports[0],
        &[("metadata.max.age.ms", "100"), ("metadata.recovery.strategy", "none")],
    );
    send_one(&p);
    assert!(p.flush(Duration::from_secs(8)).is_ok());
    mock.node2_wants_rebootstrap.store(true, Ordering::Release);
    let asked = mock.metadata[1].load(Ordering::Acquire);
    let bootstrap_asked = mock.metadata[0].load(Ordering::Acquire);
    wait_until("node 2 asked again", || mock.metadata[1].load(Ordering::Acquire) >= asked + 3);
    assert_eq!(p.inner.metadata.rebootstraps.load(Ordering::Acquire), 0);
    assert_eq!(mock.metadata[0].load(Ordering::Acquire), bootstrap_asked, "bootstrap asked");
    let _ = p.close(Duration::from_secs(1));
}
