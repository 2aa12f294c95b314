//! The connection task over an in-memory duplex stream (no sockets): the
//! ApiVersions handshake, pipelined requests matched by correlation id, a
//! broker that answers with the wrong id, one that closes mid-response,
//! requests without a response (acks=0), and the request timeout.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncWriteExt, DuplexStream};

use super::*;
use crate::protocol::api::{self, Request};
use crate::protocol::messages::*;

fn settings(request_timeout: Duration) -> ConnSettings {
    ConnSettings {
        client_id: "conn-test".into(),
        request_timeout,
        setup_timeout: Duration::from_secs(5),
        reconnect_backoff: Duration::from_millis(50),
        reconnect_backoff_max: Duration::from_millis(1000),
        send_buffer_bytes: 0,
        receive_buffer_bytes: 0,
        metrics: Arc::new(Metrics::default()),
        security: Default::default(),
        log: Default::default(),
    }
}

fn api_versions_response(version: i16) -> ApiVersionsResponse {
    let r = |api_key: i16, min_version: i16, max_version: i16| ApiVersionRange {
        api_key,
        min_version,
        max_version,
    };
    ApiVersionsResponse {
        error_code: 0,
        api_keys: vec![
            r(ApiVersionsRequest::API_KEY, 0, 3),
            r(InitProducerIdRequest::API_KEY, 0, InitProducerIdRequest::MAX_VERSION),
        ],
        throttle_time_ms: 0,
        supported_features: vec![],
        finalized_features_epoch: -1,
        finalized_features: vec![],
        zk_migration_ready: false,
        decoded_version: version,
    }
}

/// A broker whose half of the stream the test drives by hand.
struct FakeBroker {
    stream: DuplexStream,
}

impl FakeBroker {
    /// Reads one request frame: its header and the whole frame.
    async fn read(&mut self) -> Option<(api::RequestHeader, Bytes)> {
        let frame = read_frame(&mut self.stream).await.ok()?;
        let (h, _) = api::decode_request_header(&frame).expect("request header");
        Some((h, frame))
    }

    async fn answer_init_pid(&mut self, h: &api::RequestHeader, correlation_id: i32, pid: i64) {
        let resp = InitProducerIdResponse {
            throttle_time_ms: 0,
            error_code: 0,
            producer_id: pid,
            producer_epoch: 0,
        };
        let mut out = BytesMut::new();
        api::encode_response(&mut out, h.api_key, h.api_version, correlation_id, &resp);
        self.stream.write_all(&out).await.expect("write response");
    }
}

/// A broker with a live session over a duplex stream, after the handshake.
async fn connected(settings: ConnSettings) -> (Arc<Broker>, FakeBroker) {
    let (client, server) = tokio::io::duplex(1 << 16);
    let mut fake = FakeBroker { stream: server };
    let metrics = settings.metrics.clone();
    let handshake = async {
        let (h, _) = fake.read().await.expect("ApiVersions request");
        assert_eq!(h.api_key, api::API_API_VERSIONS);
        assert_eq!(h.client_id.as_deref(), Some("conn-test"));
        let mut out = BytesMut::new();
        let resp = api_versions_response(h.api_version);
        api::encode_response(&mut out, h.api_key, h.api_version, h.correlation_id, &resp);
        fake.stream.write_all(&out).await.expect("write ApiVersions response");
    };
    let (session, ()) =
        tokio::join!(start_session(client, "conn-test", metrics, ConnLog::default()), handshake);
    let session = session.expect("handshake");
    assert!(session.apis.version_for::<InitProducerIdRequest>().is_some());
    assert!(session.apis.version_for::<ProduceRequest>().is_none(), "not announced");
    let broker = Broker::new(1, "fake".into(), 9, settings);
    *broker.session.lock().await = Some(Arc::new(session));
    (broker, fake)
}

fn init_pid_request() -> InitProducerIdRequest {
    InitProducerIdRequest { transactional_id: None, ..Default::default() }
}

#[tokio::test]
async fn pipelined_requests_are_matched_by_correlation_id() {
    let (broker, mut fake) = connected(settings(Duration::from_secs(5))).await;
    // Three requests queued without waiting for an answer.
    let req = init_pid_request();
    let mut queued = Vec::new();
    for _ in 0..3 {
        queued.push(broker.queue(&req, None, true).await.expect("queued"));
    }
    // The broker sees all three before it answers any: they were pipelined.
    let mut headers = Vec::new();
    for _ in 0..3 {
        headers.push(fake.read().await.expect("request").0);
    }
    let ids: Vec<i32> = headers.iter().map(|h| h.correlation_id).collect();
    assert!(ids.windows(2).all(|w| w[1] == w[0] + 1), "increasing correlation ids {ids:?}");
    assert!(ids[0] > 0, "the handshake used correlation id 0");
    for (i, h) in headers.iter().enumerate() {
        fake.answer_init_pid(h, h.correlation_id, 100 + i as i64).await;
    }
    for (i, q) in queued.into_iter().enumerate() {
        let resp = broker.finish::<InitProducerIdRequest>(q).await.expect("answer").expect("some");
        assert_eq!(resp.producer_id, 100 + i as i64, "response {i} went to request {i}");
    }
    assert!(broker.session().await.expect("still connected").is_alive());
}

#[tokio::test]
async fn wrong_correlation_id_fails_the_request_and_the_connection() {
    let (broker, mut fake) = connected(settings(Duration::from_secs(5))).await;
    let req = init_pid_request();
    let first = broker.queue(&req, None, true).await.expect("queued");
    let second = broker.queue(&req, None, true).await.expect("queued");
    let (h, _) = fake.read().await.expect("request");
    fake.answer_init_pid(&h, h.correlation_id + 1, 7).await;
    let e = broker.finish::<InitProducerIdRequest>(first).await.unwrap_err();
    assert_eq!(e.code, error::BAD_RESPONSE, "{e}");
    let e = broker.finish::<InitProducerIdRequest>(second).await.unwrap_err();
    assert_eq!(e.code, error::TRANSPORT, "{e}");
    assert!(e.message.contains("correlation id mismatch"), "{e}");
}

#[tokio::test]
async fn broker_closing_mid_response_fails_pending_requests() {
    let s = settings(Duration::from_secs(5));
    let metrics = s.metrics.clone();
    let (broker, mut fake) = connected(s).await;
    let req = init_pid_request();
    let pending = broker.queue(&req, None, true).await.expect("queued");
    let (h, _) = fake.read().await.expect("request");
    // Half a response: the length says 100 bytes, 6 arrive, then EOF.
    let mut partial = BytesMut::new();
    partial.extend_from_slice(&100i32.to_be_bytes());
    partial.extend_from_slice(&h.correlation_id.to_be_bytes());
    partial.extend_from_slice(&[0, 0]);
    fake.stream.write_all(&partial).await.expect("write");
    drop(fake);
    let e = broker.finish::<InitProducerIdRequest>(pending).await.unwrap_err();
    assert_eq!(e.code, error::TRANSPORT, "{e}");
    assert!(e.message.contains("connection lost"), "{e}");
    assert_eq!(metrics.connections_closed.load(Ordering::Relaxed), 1);
    // The dead session is not reused: a new request tries to reconnect
    // (to a host that does not exist here) and fails.
    let e = broker.request(&req).await.unwrap_err();
    assert_eq!(e.code, error::TRANSPORT, "{e}");
}

#[tokio::test]
async fn request_without_response_finishes_once_written() {
    let (broker, mut fake) = connected(settings(Duration::from_secs(5))).await;
    let req = init_pid_request();
    let q = broker.queue(&req, None, false).await.expect("queued");
    let r = broker.finish::<InitProducerIdRequest>(q).await.expect("written");
    assert!(r.is_none());
    let (h, _) = fake.read().await.expect("the request reached the broker");
    assert_eq!(h.api_key, api::API_INIT_PRODUCER_ID);
    // The next request with a response still matches up.
    let q = broker.queue(&req, None, true).await.expect("queued");
    let (h, _) = fake.read().await.expect("request");
    fake.answer_init_pid(&h, h.correlation_id, 42).await;
    let resp = broker.finish::<InitProducerIdRequest>(q).await.expect("answer").expect("some");
    assert_eq!(resp.producer_id, 42);
}

#[tokio::test]
async fn unanswered_request_times_out_and_closes_the_connection() {
    let (broker, mut fake) = connected(settings(Duration::from_millis(100))).await;
    let req = init_pid_request();
    let q = broker.queue(&req, None, true).await.expect("queued");
    let session = q.session.clone();
    let _ = fake.read().await.expect("request");
    let e = broker.finish::<InitProducerIdRequest>(q).await.unwrap_err();
    assert_eq!(e.code, error::REQUEST_TIMED_OUT, "{e}");
    assert!(!session.is_alive(), "a timed-out connection is not reused");
}

#[tokio::test]
async fn unsupported_api_is_refused_before_sending() {
    let (broker, _fake) = connected(settings(Duration::from_secs(5))).await;
    let req = MetadataRequest {
        topics: None,
        allow_auto_topic_creation: false,
        include_cluster_authorized_operations: false,
        include_topic_authorized_operations: false,
    };
    let e = broker.request(&req).await.unwrap_err();
    assert_eq!(e.code, error::UNSUPPORTED_VERSION, "{e}");
}
