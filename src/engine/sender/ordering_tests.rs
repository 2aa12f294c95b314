//! Produce requests must reach a broker in the order the sender assigned
//! their sequence numbers. A broker that has no state yet for a producer id
//! (a fresh id, or the new id after a KIP-360 bump, e.g. after kp_purge)
//! accepts any sequence first; if a later batch of a partition overtakes an
//! earlier one there, the earlier one can never line up: it is rejected with
//! OUT_OF_ORDER_SEQUENCE_NUMBER until delivery.timeout.ms (the post-purge
//! stall), and the partition's records are written out of order.
//!
//! The same rule bites when a partition's first batch under a producer id is
//! answered with an error that leaves it unwritten (NOT_LEADER_OR_FOLLOWER
//! while a new topic's leaders settle) and a later batch, already in flight
//! behind it, is accepted as the first: so until the broker has acknowledged
//! one batch of the partition under the current id, only one may be in
//! flight.
//!
//! The mock broker below answers ApiVersions, Metadata, InitProducerId and
//! Produce, with Kafka's sequence rules (ProducerAppendInfo.checkSequence).

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::config::{ConfigMap, ProducerConfig};
use crate::error;
use crate::protocol::api::{self, Request};
use crate::protocol::messages::*;
use crate::protocol::test_support::{decode_batches, led_partition};

use crate::engine::{Dispatch, Producer, Record, ReportView, Token};

#[derive(Default)]
pub(super) struct ProducerState {
    epoch: i16,
    last_seq: i32,
    /// (first seq, last seq, base offset) of the last 5 batches.
    recent: VecDeque<(i32, i32, i64)>,
}

#[derive(Default)]
pub(super) struct Log {
    /// Per partition: next offset.
    pub(super) next_offset: HashMap<i32, i64>,
    /// Per (partition, producer id).
    producers: HashMap<(i32, i64), ProducerState>,
    /// Per (partition, producer id): base sequences in arrival order.
    arrivals: HashMap<(i32, i64), Vec<i32>>,
    out_of_order_answers: usize,
    /// (partition, epoch, base sequence) of every produced batch, in arrival
    /// order over all partitions.
    pub(super) arrived: Vec<(i32, i16, i32)>,
    /// Every (producer id, epoch) InitProducerId handed out.
    pub(super) epochs_given: Vec<(i64, i16)>,
    /// Per partition: (producer id, epoch, base sequence) of each batch
    /// appended, in log order.
    pub(super) appended: HashMap<i32, Vec<(i64, i16, i32)>>,
}

impl Log {
    /// Kafka's rules: a producer id the partition has no state for may start
    /// at any sequence; otherwise the batch must follow the last one (or
    /// repeat one of the last five: a duplicate, answered with its offset).
    fn append(&mut self, partition: i32, pid: i64, epoch: i16, seq: i32, count: i32) -> (i16, i64) {
        self.arrivals.entry((partition, pid)).or_default().push(seq);
        self.arrived.push((partition, epoch, seq));
        let last = seq + count - 1;
        match self.producers.get(&(partition, pid)) {
            Some(st) if epoch < st.epoch => {
                return (error::INVALID_PRODUCER_EPOCH as i16, -1);
            }
            Some(st) if st.epoch == epoch => {
                if let Some(&(_, _, off)) = st.recent.iter().find(|b| b.0 == seq && b.1 == last) {
                    return (0, off);
                }
                if seq != st.last_seq.wrapping_add(1) {
                    self.out_of_order_answers += 1;
                    return (error::OUT_OF_ORDER_SEQUENCE_NUMBER as i16, -1);
                }
            }
            Some(_) if seq != 0 => {
                self.out_of_order_answers += 1;
                return (error::OUT_OF_ORDER_SEQUENCE_NUMBER as i16, -1);
            }
            _ => {}
        }
        self.appended.entry(partition).or_default().push((pid, epoch, seq));
        let next = self.next_offset.entry(partition).or_insert(0);
        let base = *next;
        *next += count as i64;
        let st = self.producers.entry((partition, pid)).or_default();
        st.epoch = epoch;
        st.last_seq = last;
        st.recent.push_back((seq, last, base));
        if st.recent.len() > 5 {
            st.recent.pop_front();
        }
        (0, base)
    }
}

/// What the mock does with one partition's next produce (see `Mock::faults`).
#[derive(Clone, Copy, Debug)]
pub(super) enum Fault {
    /// Appends as usual and answers.
    Write,
    /// Appends, then hangs up without answering (the client cannot tell
    /// whether the batch was written).
    WriteThenHangUp,
    /// Hangs up without appending or answering, after 100 ms (so requests
    /// sent meanwhile queue up behind it on the connection).
    HangUp,
    /// Refuses the batch with this error code (not appended).
    Refuse(i16),
}

pub(super) struct Mock {
    pub(super) port: u16,
    partitions: i32,
    pub(super) log: Mutex<Log>,
    next_pid: AtomicI64,
    /// Partitions whose leadership is not ready yet: their first produce is
    /// answered NOT_LEADER_OR_FOLLOWER (unwritten), after a pause in which
    /// later requests pile up behind it on the connection.
    unready: Mutex<HashSet<i32>>,
    /// The partitions of each produce request, in arrival order.
    pub(super) requests: Mutex<Vec<Vec<i32>>>,
    /// Per partition, what to do with its next produces (in turn; then
    /// `Fault::Write`).
    pub(super) faults: Mutex<HashMap<i32, VecDeque<Fault>>>,
}

pub(super) async fn read_frame(s: &mut TcpStream) -> Option<Vec<u8>> {
    let len = s.read_i32().await.ok()?;
    let mut buf = vec![0u8; len as usize];
    s.read_exact(&mut buf).await.ok()?;
    Some(buf)
}

pub(super) fn ranges() -> Vec<ApiVersionRange> {
    let r = |api_key: i16, min_version: i16, max_version: i16| ApiVersionRange {
        api_key,
        min_version,
        max_version,
    };
    vec![
        r(ApiVersionsRequest::API_KEY, 0, 3),
        r(MetadataRequest::API_KEY, MetadataRequest::MIN_VERSION, MetadataRequest::MAX_VERSION),
        r(ProduceRequest::API_KEY, ProduceRequest::MIN_VERSION, ProduceRequest::MAX_VERSION),
        r(
            InitProducerIdRequest::API_KEY,
            InitProducerIdRequest::MIN_VERSION,
            InitProducerIdRequest::MAX_VERSION,
        ),
    ]
}

async fn serve_connection(mock: Arc<Mock>, mut s: TcpStream) {
    // One request at a time per connection, like a Kafka broker.
    while let Some(frame) = read_frame(&mut s).await {
        let (h, _) = api::decode_request_header(&frame).expect("request header");
        let mut out = BytesMut::new();
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
                    decoded_version: h.api_version,
                };
                api::encode_response(&mut out, h.api_key, h.api_version, h.correlation_id, &resp);
            }
            api::API_METADATA => {
                let (_, req) =
                    api::decode_request::<MetadataRequest>(&frame).expect("metadata request");
                let topics = req
                    .topics
                    .unwrap_or_default()
                    .into_iter()
                    .map(|t| MetadataTopic {
                        error_code: 0,
                        name: t.name,
                        topic_id: [0; 16],
                        is_internal: false,
                        partitions: (0..mock.partitions).map(|p| led_partition(p, 1)).collect(),
                        topic_authorized_operations: i32::MIN,
                    })
                    .collect();
                let resp = MetadataResponse {
                    throttle_time_ms: 0,
                    brokers: vec![MetadataBroker {
                        node_id: 1,
                        host: "127.0.0.1".into(),
                        port: mock.port as i32,
                        rack: None,
                    }],
                    cluster_id: Some("mock".into()),
                    controller_id: 1,
                    topics,
                    cluster_authorized_operations: i32::MIN,
                    error_code: 0,
                };
                api::encode_response(&mut out, h.api_key, h.api_version, h.correlation_id, &resp);
            }
            api::API_INIT_PRODUCER_ID => {
                let (_, req) = api::decode_request::<InitProducerIdRequest>(&frame)
                    .expect("init producer id request");
                // Slow enough that records pile up before the first send.
                tokio::time::sleep(Duration::from_millis(100)).await;
                // A known id is an epoch bump (KIP-360).
                let (producer_id, producer_epoch) = if req.producer_id >= 0 {
                    (req.producer_id, req.producer_epoch + 1)
                } else {
                    (mock.next_pid.fetch_add(1, Ordering::Relaxed), 0)
                };
                mock.log.lock().unwrap().epochs_given.push((producer_id, producer_epoch));
                let resp = InitProducerIdResponse {
                    throttle_time_ms: 0,
                    error_code: 0,
                    producer_id,
                    producer_epoch,
                };
                api::encode_response(&mut out, h.api_key, h.api_version, h.correlation_id, &resp);
            }
            api::API_PRODUCE => {
                let (_, req) =
                    api::decode_request::<ProduceRequest>(&frame).expect("produce request");
                mock.requests.lock().unwrap().push(
                    req.topic_data
                        .iter()
                        .flat_map(|t| t.partition_data.iter().map(|p| p.index))
                        .collect(),
                );
                let mut responses = Vec::new();
                let mut pause = false;
                let mut hang_up = false;
                for t in req.topic_data {
                    let mut parts = Vec::new();
                    for p in t.partition_data {
                        let batches = decode_batches(&p.records).expect("record batch");
                        assert_eq!(batches.len(), 1, "one batch per partition");
                        let b = &batches[0];
                        let unready = mock.unready.lock().unwrap().remove(&p.index);
                        pause |= unready;
                        let fault = mock
                            .faults
                            .lock()
                            .unwrap()
                            .get_mut(&p.index)
                            .and_then(|q| q.pop_front())
                            .unwrap_or(Fault::Write);
                        let (code, base) = match fault {
                            _ if unready => (error::NOT_LEADER_OR_FOLLOWER as i16, -1),
                            Fault::Refuse(code) => (code, -1),
                            Fault::HangUp => {
                                tokio::time::sleep(Duration::from_millis(100)).await;
                                hang_up = true;
                                (0, -1)
                            }
                            Fault::Write | Fault::WriteThenHangUp => {
                                hang_up |= matches!(fault, Fault::WriteThenHangUp);
                                mock.log.lock().unwrap().append(
                                    p.index,
                                    b.producer_id,
                                    b.producer_epoch,
                                    b.base_sequence,
                                    b.record_count,
                                )
                            }
                        };
                        parts.push(PartitionProduceResponse {
                            index: p.index,
                            error_code: code,
                            base_offset: base,
                            log_append_time_ms: -1,
                            log_start_offset: 0,
                            record_errors: vec![],
                            error_message: None,
                            current_leader: None,
                        });
                    }
                    responses
                        .push(TopicProduceResponse { name: t.name, partition_responses: parts });
                }
                if hang_up {
                    return;
                }
                if pause {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                let resp =
                    ProduceResponse { responses, throttle_time_ms: 0, node_endpoints: vec![] };
                api::encode_response(&mut out, h.api_key, h.api_version, h.correlation_id, &resp);
            }
            other => panic!("the mock broker does not speak API {other}"),
        }
        if s.write_all(&out).await.is_err() {
            return;
        }
    }
}

/// Starts the mock broker on its own runtime thread.
pub(super) fn start_mock(partitions: i32) -> (Arc<Mock>, tokio::runtime::Runtime) {
    let rt =
        tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let listener = rt.block_on(TcpListener::bind("127.0.0.1:0")).unwrap();
    let mock = Arc::new(Mock {
        port: listener.local_addr().unwrap().port(),
        partitions,
        log: Mutex::new(Log::default()),
        next_pid: AtomicI64::new(1000),
        unready: Mutex::new(HashSet::new()),
        requests: Mutex::new(Vec::new()),
        faults: Mutex::new(HashMap::new()),
    });
    let m = mock.clone();
    rt.spawn(async move {
        while let Ok((s, _)) = listener.accept().await {
            let _ = s.set_nodelay(true);
            tokio::spawn(serve_connection(m.clone(), s));
        }
    });
    (mock, rt)
}

/// (tag, partition, error code, offset) of each report.
pub(super) type Reports = Arc<Mutex<Vec<(usize, i32, i32, i64)>>>;

fn producer(port: u16, reports: Reports) -> Producer {
    producer_with(port, reports, &[])
}

/// A producer with the settings above, then `extra`.
pub(super) fn producer_with(port: u16, reports: Reports, extra: &[(&str, &str)]) -> Producer {
    let mut m = ConfigMap::default();
    for (k, v) in [
        ("bootstrap.servers", format!("127.0.0.1:{port}")),
        ("enable.idempotence", "true".into()),
        ("linger.ms", "0".into()),
        ("batch.size", "1000".into()),
        ("request.timeout.ms", "2000".into()),
        ("delivery.timeout.ms", "4000".into()),
        ("retry.backoff.ms", "10".into()),
    ] {
        m.set(k, &v).unwrap();
    }
    for (k, v) in extra {
        m.set(k, v).unwrap();
    }
    let cfg = ProducerConfig::from_map(&m).unwrap();
    let dispatch: Arc<Dispatch> = Arc::new(move |v: &ReportView<'_>, t: &Token| {
        if let Token::Callback { ctx, .. } = t {
            reports.lock().unwrap().push((*ctx, v.partition, v.error, v.offset));
        }
    });
    Producer::new(cfg, dispatch, None).unwrap()
}

/// The dispatch above records reports itself; the callback is never called.
pub(super) unsafe extern "C" fn no_callback(
    _: *const crate::engine::report::kp_report_t,
    _: *mut std::ffi::c_void,
) {
}

#[test]
fn produce_requests_reach_the_broker_in_sequence_order() {
    let partitions = 2;
    let (mock, _rt) = start_mock(partitions);
    for round in 0..8 {
        send_and_check(&mock, partitions, round);
    }
}

/// A partition's first batch under a producer id is refused unwritten
/// (NOT_LEADER_OR_FOLLOWER, as while a new topic's leaders settle) while
/// later batches of it are queued behind on the connection: none of them
/// may be accepted before it (the broker would take it as the first
/// sequence), so the log keeps the send order.
#[test]
fn a_later_batch_is_not_written_first_when_the_first_is_refused() {
    let partitions = 2;
    let (mock, _rt) = start_mock(partitions);
    for round in 0..4 {
        // Each round is a new producer, so a new producer id.
        mock.unready.lock().unwrap().extend(0..partitions);
        send_and_check(&mock, partitions, round);
    }
}

/// Many partitions with data waiting and requests that hold only a few of
/// their batches: each pass must go on where the last full request stopped
/// (as Java's drain index), not one partition further, or the partitions at
/// the end of the list wait for dozens of requests (at 2,000 partitions, a
/// minute: the W6 benchmark's p99).
#[test]
fn full_requests_take_turns_over_all_partitions() {
    let partitions = 40;
    let (mock, _rt) = start_mock(partitions);
    let reports: Reports = Arc::default();
    // ~8 records of 100 B per batch, ~4 batches per request, one request at
    // a time.
    let p = producer_with(
        mock.port,
        reports.clone(),
        &[("max.request.size", "4500"), ("max.in.flight.requests.per.connection", "1")],
    );
    // Three batches per partition, all queued before the producer id comes
    // (the mock's InitProducerId takes 100 ms).
    send_round_robin(&p, partitions, partitions as usize * 24);
    assert!(p.flush(Duration::from_secs(10)).is_ok(), "flush timed out");
    let _ = p.close(Duration::from_secs(1));
    let requests = mock.requests.lock().unwrap().clone();
    assert!(requests.iter().all(|r| r.len() <= 4), "requests: {requests:?}");
    // 40 partitions, 4 per request: every partition's first batch within the
    // first 10 requests (with a margin for the one-batch-until-acknowledged
    // start-up rule).
    let first_of = |part: i32| requests.iter().position(|r| r.contains(&part));
    let late: Vec<_> = (0..partitions).filter(|&q| first_of(q).is_none_or(|at| at >= 13)).collect();
    assert!(
        late.is_empty(),
        "partitions {late:?} waited past the 13th request; requests: {:?}",
        &requests[..requests.len().min(20)]
    );
    assert_eq!(reports.lock().unwrap().len(), partitions as usize * 24);
}

/// Sends `n` records of 100 B to topic "t", record i to partition
/// i % `partitions`, tagged i.
fn send_round_robin(p: &Producer, partitions: i32, n: usize) {
    let value = [b'v'; 100];
    for i in 0..n {
        let rec = Record {
            topic: "t",
            partition: (i % partitions as usize) as i32,
            key: None,
            value: Some(&value),
            headers: &[],
            timestamp_ms: 0,
        };
        p.send(&rec, Token::Callback { cb: no_callback, ctx: i }).unwrap();
    }
}

/// Sends 3,000 records over `partitions` with a fresh producer and checks
/// what reached the mock's log: in sequence order, no OUT_OF_ORDER answer,
/// every record delivered once, each partition's offsets in send order.
fn send_and_check(mock: &Mock, partitions: i32, round: usize) {
    let reports: Reports = Arc::default();
    let p = producer(mock.port, reports.clone());
    // Each partition gets ~10 records per batch; sends keep arriving
    // while the sender drains, as in kp_send loops.
    let n = 3000;
    send_round_robin(&p, partitions, n);
    let t0 = Instant::now();
    let flushed = p.flush(Duration::from_secs(10)).is_ok();
    let _ = p.close(Duration::from_secs(1));
    let reports = reports.lock().unwrap().clone();
    let mut log = mock.log.lock().unwrap();
    // Out-of-order arrivals at the broker, per (partition, producer id).
    let mut overtaken = Vec::new();
    for ((part, pid), seqs) in &log.arrivals {
        if let Some(w) = seqs.windows(2).find(|w| w[1] < w[0]) {
            overtaken.push(format!(
                "partition {part} producer {pid}: {} after {} (arrivals {:?}...)",
                w[1],
                w[0],
                &seqs[..seqs.len().min(12)]
            ));
        }
    }
    assert!(
        overtaken.is_empty(),
        "round {round}: produce requests overtook each other: {overtaken:?}"
    );
    assert_eq!(
        log.out_of_order_answers, 0,
        "round {round}: the broker answered OUT_OF_ORDER_SEQUENCE_NUMBER"
    );
    log.arrivals.clear();
    drop(log);
    assert!(flushed, "round {round}: flush timed out after {:?}", t0.elapsed());
    assert_eq!(reports.len(), n, "round {round}: one report per record");
    let failed: Vec<_> = reports.iter().filter(|r| r.2 != 0).collect();
    assert!(
        failed.is_empty(),
        "round {round}: {} record(s) failed, first {:?}",
        failed.len(),
        failed[0]
    );
    // Within a partition, reports come in offset order (requests pipelined
    // to one broker are answered in order; their reports must not overtake
    // each other on the way to the report queue).
    offsets_increase_per_partition(&reports, &format!("round {round}: in report order"));
    // Within a partition, the log order is the send order.
    let mut by_tag: Vec<_> = reports.clone();
    by_tag.sort_by_key(|r| r.0);
    offsets_increase_per_partition(&by_tag, &format!("round {round}: in send order"));
}

/// Asserts that, taken in the given order, each partition's offsets rise.
fn offsets_increase_per_partition(reports: &[(usize, i32, i32, i64)], what: &str) {
    let mut last: HashMap<i32, i64> = HashMap::new();
    for &(tag, partition, _, offset) in reports {
        if let Some(prev) = last.insert(partition, offset) {
            assert!(
                offset > prev,
                "{what}: record {tag} of partition {partition} at offset {offset} after offset {prev}"
            );
        }
    }
}
