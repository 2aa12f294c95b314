//! Connection layer: one I/O task per live broker connection. Requests are
//! pipelined (written without waiting) and responses matched to callers in
//! order by correlation id. Generic over the byte stream so it can be tested
//! without sockets.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};

use crate::error::{self, Error};
use crate::log::kp_log;
use crate::protocol::api::{self, Request};
use crate::protocol::messages::{ApiVersionsRequest, ApiVersionsResponse};

use super::backoff::Backoff;
use super::metrics::Metrics;

/// Largest response frame accepted from a broker (a hostile or broken broker
/// must not make us allocate without bound).
const MAX_RESPONSE_FRAME: usize = 256 * 1024 * 1024;

/// Connection settings taken from the producer configuration.
#[derive(Clone, Debug)]
pub struct ConnSettings {
    pub client_id: String,
    pub request_timeout: Duration,
    pub setup_timeout: Duration,
    pub reconnect_backoff: Duration,
    pub reconnect_backoff_max: Duration,
    pub send_buffer_bytes: i32,
    pub receive_buffer_bytes: i32,
    /// Counts connections opened and closed.
    pub metrics: Arc<Metrics>,
    /// TLS and SASL (security.protocol).
    pub security: super::security::Security,
    pub log: crate::log::Log,
}

/// Where a connection logs (its producer's log) and how it names its peer.
#[derive(Default)]
pub struct ConnLog {
    pub log: crate::log::Log,
    pub peer: String,
    /// SASL re-authentication due on this connection, and its time limit.
    pub reauth: Option<(super::security::Reauth, Duration)>,
}

/// API version ranges the broker announced, plus finalized features.
#[derive(Debug, Default, Clone)]
pub struct BrokerApis {
    ranges: Vec<ApiRange>,
    /// Finalized feature levels (name, max level), e.g. transaction.version.
    features: Vec<(String, i16)>,
}

/// The versions of one API the broker speaks.
#[derive(Debug, Clone, Copy)]
struct ApiRange {
    key: i16,
    min: i16,
    max: i16,
}

impl BrokerApis {
    pub fn range(&self, key: i16) -> Option<(i16, i16)> {
        self.ranges.iter().find(|r| r.key == key).map(|r| (r.min, r.max))
    }

    pub fn version_for<R: Request>(&self) -> Option<i16> {
        let b = self.range(R::API_KEY)?;
        api::negotiate((R::MIN_VERSION, R::MAX_VERSION), b)
    }

    pub fn feature_level(&self, name: &str) -> i16 {
        self.features.iter().find(|(n, _)| n == name).map_or(0, |(_, level)| *level)
    }
}

struct Outgoing {
    /// The request frame as segments: small fields copied, record batches
    /// referenced (no copy of the batch bytes on the way to the socket).
    frame: Vec<Bytes>,
    correlation_id: i32,
    /// None for acks=0 produce requests: the broker sends no response.
    reply: Option<oneshot::Sender<Result<Bytes, Error>>>,
    written: Option<oneshot::Sender<()>>,
}

/// One established connection (TCP + ApiVersions done).
pub struct Session {
    tx: mpsc::UnboundedSender<Outgoing>,
    /// Shared with the I/O task, which numbers re-authentication requests.
    next_correlation: Arc<AtomicI32>,
    pub apis: Arc<BrokerApis>,
    alive: Arc<AtomicBool>,
    killed: Arc<tokio::sync::Notify>,
}

impl Session {
    pub fn is_alive(&self) -> bool {
        self.alive.load(Ordering::Acquire) && !self.tx.is_closed()
    }

    fn kill(&self) {
        self.alive.store(false, Ordering::Release);
        self.killed.notify_one();
    }
}

/// A broker we may talk to; owns at most one live session at a time.
pub struct Broker {
    pub node_id: i32,
    pub host: String,
    pub port: u16,
    settings: ConnSettings,
    session: tokio::sync::Mutex<Option<Arc<Session>>>,
    failures: parking_lot::Mutex<ConnectFailures>,
    /// Produce requests currently awaiting a response.
    pub in_flight: AtomicUsize,
    /// Until when the broker asked us to back off (quota throttling).
    pub throttled_until: parking_lot::Mutex<Option<Instant>>,
    /// Produce requests are queued on the connection, and their answers
    /// handled, in the order the sender made them (see `produce_turn` and
    /// `report_turn`): one ticket per request, two orders it passes through.
    produce_tickets: AtomicU64,
    queue_order: TurnOrder,
    report_order: TurnOrder,
}

/// Tasks holding tickets 0, 1, 2, ... take turns in ticket order: ticket
/// n's turn comes when turn n - 1 ends. Every ticket handed out must have
/// its turn (and end it), or later ones wait forever.
struct TurnOrder {
    turn: AtomicU64,
    changed: tokio::sync::Notify,
}

impl TurnOrder {
    fn new() -> TurnOrder {
        TurnOrder { turn: AtomicU64::new(0), changed: tokio::sync::Notify::new() }
    }

    async fn wait(&self, ticket: u64) -> Turn<'_> {
        loop {
            // Created before the check, so no wake-up is missed.
            let changed = self.changed.notified();
            if self.turn.load(Ordering::Acquire) == ticket {
                return Turn { order: self };
            }
            changed.await;
        }
    }
}

/// A ticket's turn in a [`TurnOrder`]; the next ticket's comes when it is
/// dropped.
pub struct Turn<'a> {
    order: &'a TurnOrder,
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        self.order.turn.fetch_add(1, Ordering::AcqRel);
        self.order.changed.notify_waiters();
    }
}

/// Failed connection attempts since the last success.
#[derive(Default)]
struct ConnectFailures {
    count: u32,
    /// No new attempt before this (reconnect backoff).
    retry_after: Option<Instant>,
    why: String,
}

/// A request queued on a session, its answer not yet awaited.
pub struct Queued {
    session: Arc<Session>,
    version: i16,
    wait: QueuedWait,
}

impl Queued {
    /// The API version the request was encoded with.
    pub fn version(&self) -> i16 {
        self.version
    }
}

enum QueuedWait {
    Response(oneshot::Receiver<Result<Bytes, Error>>),
    /// A request the broker does not answer (acks=0): until it is written.
    Written(oneshot::Receiver<()>),
}

impl Broker {
    pub fn new(node_id: i32, host: String, port: u16, settings: ConnSettings) -> Arc<Broker> {
        Arc::new(Broker {
            node_id,
            host,
            port,
            settings,
            session: tokio::sync::Mutex::new(None),
            failures: parking_lot::Mutex::new(ConnectFailures::default()),
            in_flight: AtomicUsize::new(0),
            throttled_until: parking_lot::Mutex::new(None),
            produce_tickets: AtomicU64::new(0),
            queue_order: TurnOrder::new(),
            report_order: TurnOrder::new(),
        })
    }

    pub fn addr(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }

    /// True while a reconnect backoff after a failure is running.
    pub fn in_backoff(&self) -> bool {
        let f = self.failures.lock();
        matches!(f.retry_after, Some(t) if Instant::now() < t)
    }

    pub fn throttle_remaining(&self) -> Option<Duration> {
        let t = self.throttled_until.lock();
        t.and_then(|t| t.checked_duration_since(Instant::now()))
    }

    /// The live session, connecting first when there is none.
    pub async fn session(&self) -> Result<Arc<Session>, Error> {
        let mut guard = self.session.lock().await;
        if let Some(s) = guard.as_ref() {
            if s.is_alive() {
                return Ok(s.clone());
            }
        }
        *guard = None;
        {
            let f = self.failures.lock();
            if let Some(t) = f.retry_after {
                if Instant::now() < t {
                    return Err(Error::new(
                        error::TRANSPORT,
                        format!("broker {} ({}) unreachable: {}", self.node_id, self.addr(), f.why),
                    ));
                }
            }
        }
        match tokio::time::timeout(self.settings.setup_timeout, self.connect()).await {
            Ok(Ok(s)) => {
                kp_log!(
                    self.settings.log,
                    INFO,
                    BROKER,
                    "connected to broker {} ({})",
                    self.node_id,
                    self.addr()
                );
                kp_log!(
                    self.settings.log,
                    DEBUG,
                    PROTOCOL,
                    "broker {}: {} APIs, features {:?}",
                    self.node_id,
                    s.apis.ranges.len(),
                    s.apis.features
                );
                self.settings.metrics.connection_opened();
                *self.failures.lock() = ConnectFailures::default();
                let s = Arc::new(s);
                *guard = Some(s.clone());
                Ok(s)
            }
            Ok(Err(e)) => {
                Err(self.settings.security.connect_failed(e.code, self.note_failure(e.message)))
            }
            Err(_) => Err(self.note_failure(format!(
                "connection setup timed out after {} ms",
                self.settings.setup_timeout.as_millis()
            ))),
        }
    }

    fn note_failure(&self, why: String) -> Error {
        let mut f = self.failures.lock();
        f.count = f.count.saturating_add(1);
        let backoff =
            Backoff::new(self.settings.reconnect_backoff, self.settings.reconnect_backoff_max);
        f.retry_after = Some(Instant::now() + backoff.delay(f.count));
        f.why = why.clone();
        let e = Error::new(
            error::TRANSPORT,
            format!("broker {} ({}): {why}", self.node_id, self.addr()),
        );
        kp_log!(self.settings.log, WARNING, BROKER, "{}", e.message);
        e
    }

    /// Drops the current session (e.g. after a request timeout); in-flight
    /// requests on it fail with a transport error.
    pub async fn reset(&self) {
        let mut guard = self.session.lock().await;
        if let Some(s) = guard.take() {
            s.kill();
        }
    }

    async fn connect(&self) -> Result<Session, Error> {
        let stream = TcpStream::connect((self.host.as_str(), self.port)).await.map_err(|e| {
            Error::new(error::TRANSPORT, format!("connect to {} failed: {e}", self.addr()))
        })?;
        let _ = stream.set_nodelay(true);
        let sock = socket2_ref(&stream);
        if self.settings.send_buffer_bytes > 0 {
            set_buf(sock, libc::SO_SNDBUF, self.settings.send_buffer_bytes);
        }
        if self.settings.receive_buffer_bytes > 0 {
            set_buf(sock, libc::SO_RCVBUF, self.settings.receive_buffer_bytes);
        }
        let addr = self.addr();
        let (stream, reauth) = self
            .settings
            .security
            .establish(stream, &self.host, &addr, &self.settings.client_id)
            .await?;
        let peer = ConnLog {
            log: self.settings.log.clone(),
            peer: format!("broker {} ({addr})", self.node_id),
            reauth: reauth.map(|r| (r, self.settings.setup_timeout)),
        };
        start_session(stream, &self.settings.client_id, self.settings.metrics.clone(), peer).await
    }

    /// Takes the next place in this broker's produce request order (the
    /// sender takes it when it makes the request).
    pub fn take_produce_ticket(&self) -> u64 {
        self.produce_tickets.fetch_add(1, Ordering::AcqRel)
    }

    /// Waits until every produce request with an earlier ticket has been
    /// queued on the connection (or given up). The sender assigns sequence
    /// numbers in ticket order, and they must reach the broker in that
    /// order: tasks do not run in the order they were spawned, and a broker
    /// with no state yet for a producer id accepts any first sequence, so a
    /// batch that overtook an earlier one of its partition would be written
    /// first and the earlier one could never line up.
    pub async fn produce_turn(&self, ticket: u64) -> Turn<'_> {
        self.queue_order.wait(ticket).await
    }

    /// Waits until the answers to every produce request with an earlier
    /// ticket have been handled. The broker answers in request order, but
    /// the tasks awaiting the answers wake in any order: without this, a
    /// partition's reports could overtake each other (delivery reports come
    /// in offset order per partition, as in librdkafka and Java).
    pub async fn report_turn(&self, ticket: u64) -> Turn<'_> {
        self.report_order.wait(ticket).await
    }

    /// Sends a request and waits (up to request.timeout.ms) for its response.
    pub async fn request<R: Request>(&self, req: &R) -> Result<R::Response, Error> {
        let q = self.queue(req, None, true).await?;
        Self::expect_response(self.finish::<R>(q).await)
    }

    /// Like `request`, with the version capped at `max_version`.
    pub async fn request_capped<R: Request>(
        &self,
        req: &R,
        max_version: i16,
    ) -> Result<R::Response, Error> {
        let q = self.queue(req, Some(max_version), true).await?;
        Self::expect_response(self.finish::<R>(q).await)
    }

    /// Queues a request on the live session (connecting first when there is
    /// none) without waiting for its answer (`finish` does): callers can keep
    /// requests in order and still have several in flight.
    /// `expect_response` false: the broker sends none (produce, acks=0).
    pub async fn queue<R: Request>(
        &self,
        req: &R,
        max_version: Option<i16>,
        expect_response: bool,
    ) -> Result<Queued, Error> {
        let session = self.session().await?;
        let version = session
            .apis
            .range(R::API_KEY)
            .and_then(|b| {
                api::negotiate(
                    (R::MIN_VERSION, max_version.map_or(R::MAX_VERSION, |m| R::MAX_VERSION.min(m))),
                    b,
                )
            })
            .ok_or_else(|| {
                Error::new(
                    error::UNSUPPORTED_VERSION,
                    format!(
                        "broker {} supports no version of API {} that kp speaks",
                        self.node_id,
                        R::API_KEY
                    ),
                )
            })?;
        self.queue_on(&session, req, version, expect_response)
    }

    fn queue_on<R: Request>(
        &self,
        session: &Arc<Session>,
        req: &R,
        version: i16,
        expect_response: bool,
    ) -> Result<Queued, Error> {
        let corr = session.next_correlation.fetch_add(1, Ordering::Relaxed);
        let frame = api::encode_request_vectored(req, version, corr, &self.settings.client_id);
        let (msg, wait) = if expect_response {
            let (tx, rx) = oneshot::channel();
            (
                Outgoing { frame, correlation_id: corr, reply: Some(tx), written: None },
                QueuedWait::Response(rx),
            )
        } else {
            let (tx, rx) = oneshot::channel();
            (
                Outgoing { frame, correlation_id: corr, reply: None, written: Some(tx) },
                QueuedWait::Written(rx),
            )
        };
        session.tx.send(msg).map_err(|_| {
            Error::new(error::TRANSPORT, format!("connection to broker {} closed", self.node_id))
        })?;
        Ok(Queued { session: session.clone(), version, wait })
    }

    /// Waits (up to request.timeout.ms) for a queued request's response, or
    /// for it to be written when the broker sends none (Ok(None)).
    pub async fn finish<R: Request>(&self, q: Queued) -> Result<Option<R::Response>, Error> {
        let Queued { session, version, wait } = q;
        let rx = match wait {
            QueuedWait::Response(rx) => rx,
            QueuedWait::Written(rx) => {
                return match tokio::time::timeout(self.settings.request_timeout, rx).await {
                    Ok(Ok(())) => Ok(None),
                    Ok(Err(_)) => Err(Error::new(
                        error::TRANSPORT,
                        format!("connection to broker {} lost", self.node_id),
                    )),
                    Err(_) => {
                        session.kill();
                        Err(Error::new(error::REQUEST_TIMED_OUT, "socket write timed out"))
                    }
                };
            }
        };
        let bytes = match tokio::time::timeout(self.settings.request_timeout, rx).await {
            Ok(Ok(r)) => r?,
            Ok(Err(_)) => {
                return Err(Error::new(
                    error::TRANSPORT,
                    format!("connection to broker {} lost", self.node_id),
                ))
            }
            Err(_) => {
                session.kill();
                return Err(Error::new(
                    error::REQUEST_TIMED_OUT,
                    format!(
                        "no response from broker {} within request.timeout.ms ({} ms)",
                        self.node_id,
                        self.settings.request_timeout.as_millis()
                    ),
                ));
            }
        };
        let (_, resp) = api::decode_response::<R>(version, bytes).map_err(|e| {
            session.kill();
            Error::new(
                error::BAD_RESPONSE,
                format!("broker {} sent an undecodable response: {e}", self.node_id),
            )
        })?;
        Ok(Some(resp))
    }

    fn expect_response<T>(r: Result<Option<T>, Error>) -> Result<T, Error> {
        r?.ok_or_else(|| {
            Error::new(error::INTERNAL, "a request queued for a response finished without one")
        })
    }

    pub async fn request_on<R: Request>(
        &self,
        session: &Arc<Session>,
        req: &R,
        version: i16,
    ) -> Result<R::Response, Error> {
        let q = self.queue_on(session, req, version, true)?;
        Self::expect_response(self.finish::<R>(q).await)
    }
}

fn socket2_ref(s: &TcpStream) -> i32 {
    use std::os::fd::AsRawFd;
    s.as_raw_fd()
}

fn set_buf(fd: i32, opt: i32, size: i32) {
    // SAFETY: fd is a valid open socket owned by the TcpStream for the duration
    // of this call; the option value is a plain int.
    unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            opt,
            &size as *const i32 as *const libc::c_void,
            std::mem::size_of::<i32>() as libc::socklen_t,
        );
    }
}

/// Runs the ApiVersions handshake on a fresh stream and spawns its I/O task
/// (which counts the connection in `metrics` as closed when it ends while
/// still in use).
pub async fn start_session<S>(
    mut stream: S,
    client_id: &str,
    metrics: Arc<Metrics>,
    peer: ConnLog,
) -> Result<Session, Error>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let mut apis = None;
    for version in [3i16, 0] {
        let req = ApiVersionsRequest {
            client_software_name: "kp".into(),
            client_software_version: env!("CARGO_PKG_VERSION").into(),
        };
        let mut frame = BytesMut::new();
        api::encode_request(&mut frame, &req, version, 0, client_id);
        stream
            .write_all(&frame)
            .await
            .map_err(|e| Error::new(error::TRANSPORT, format!("write failed: {e}")))?;
        let resp = read_frame(&mut stream)
            .await
            .map_err(|e| super::security::setup_io_error(&e, "ApiVersions handshake failed"))?;
        let (_, r): (i32, ApiVersionsResponse) =
            api::decode_response::<ApiVersionsRequest>(version, resp).map_err(|e| {
                Error::new(error::BAD_RESPONSE, format!("bad ApiVersions response: {e}"))
            })?;
        if r.error_code == error::UNSUPPORTED_VERSION as i16 && version != 0 {
            continue;
        }
        if r.error_code != 0 {
            return Err(Error::new(r.error_code as i32, "ApiVersions request failed"));
        }
        apis = Some(BrokerApis {
            ranges: r
                .api_keys
                .iter()
                .map(|k| ApiRange { key: k.api_key, min: k.min_version, max: k.max_version })
                .collect(),
            features: r
                .finalized_features
                .iter()
                .map(|f| (f.name.clone(), f.max_version_level))
                .collect(),
        });
        break;
    }
    let apis = apis.ok_or_else(|| {
        Error::new(error::UNSUPPORTED_VERSION, "broker rejected every ApiVersions version")
    })?;
    let (tx, rx) = mpsc::unbounded_channel();
    let alive = Arc::new(AtomicBool::new(true));
    let killed = Arc::new(tokio::sync::Notify::new());
    let next_correlation = Arc::new(AtomicI32::new(1));
    let corr = next_correlation.clone();
    tokio::spawn(io_task(stream, rx, alive.clone(), killed.clone(), metrics, peer, corr));
    Ok(Session { tx, next_correlation, apis: Arc::new(apis), alive, killed })
}

pub(crate) async fn read_frame<S: AsyncRead + Unpin>(s: &mut S) -> std::io::Result<Bytes> {
    let len = s.read_i32().await?;
    if len < 4 || len as usize > MAX_RESPONSE_FRAME {
        if let Some(e) = super::security::tls_record_instead_of_frame(len) {
            return Err(e);
        }
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("bad frame length {len}"),
        ));
    }
    let mut buf = BytesMut::zeroed(len as usize);
    s.read_exact(&mut buf).await?;
    Ok(buf.freeze())
}

/// Why a connection ends when its session was dropped (not counted as closed).
const NO_LONGER_USED: &str = "connection no longer used";

struct Pending {
    correlation_id: i32,
    reply: oneshot::Sender<Result<Bytes, Error>>,
}

type PendingReplies = Arc<parking_lot::Mutex<VecDeque<Pending>>>;

/// Reads response frames and hands each to the request it answers (the
/// oldest pending one; its correlation id must match). Returns why it
/// stopped.
async fn read_responses<R: AsyncRead + Unpin>(
    mut rd: R,
    pending: PendingReplies,
    alive: Arc<AtomicBool>,
) -> String {
    loop {
        let frame = match read_frame(&mut rd).await {
            Ok(f) => f,
            Err(e) => return format!("read failed: {e}"),
        };
        let corr = match api::peek_correlation_id(&frame) {
            Ok(c) => c,
            Err(e) => return format!("bad response header: {e}"),
        };
        let p = pending.lock().pop_front();
        match p {
            Some(p) if p.correlation_id == corr => {
                let _ = p.reply.send(Ok(frame));
            }
            Some(p) => {
                let _ =
                    p.reply.send(Err(Error::new(error::BAD_RESPONSE, "correlation id mismatch")));
                return format!(
                    "correlation id mismatch: expected {}, got {corr}",
                    p.correlation_id
                );
            }
            None => return format!("unexpected response with correlation id {corr}"),
        }
        if !alive.load(Ordering::Acquire) {
            return "connection closed".into();
        }
    }
}

/// Writes a run of queued requests (registering their replies first, in
/// write order, so no answer can arrive before its reply is registered).
async fn write_requests<W: AsyncWrite + Unpin>(
    wr: &mut W,
    batch: Vec<Outgoing>,
    pending: &PendingReplies,
) -> std::io::Result<()> {
    let mut written = Vec::new();
    let mut frames = Vec::with_capacity(batch.len());
    {
        let mut p = pending.lock();
        for m in batch {
            if let Some(reply) = m.reply {
                p.push_back(Pending { correlation_id: m.correlation_id, reply });
            }
            if let Some(w) = m.written {
                written.push(w);
            }
            frames.push(m.frame);
        }
    }
    for seg in frames.iter().flatten() {
        wr.write_all(seg).await?;
    }
    wr.flush().await?;
    for w in written {
        let _ = w.send(());
    }
    Ok(())
}

async fn io_task<S>(
    stream: S,
    mut rx: mpsc::UnboundedReceiver<Outgoing>,
    alive: Arc<AtomicBool>,
    killed: Arc<tokio::sync::Notify>,
    metrics: Arc<Metrics>,
    mut peer: ConnLog,
    corr: Arc<AtomicI32>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let mut reauth = peer.reauth.take();
    let (rd, wr) = tokio::io::split(stream);
    // Small segments are coalesced here; large ones (record batches) go
    // straight to the socket.
    let mut wr = tokio::io::BufWriter::with_capacity(64 * 1024, wr);
    let pending: PendingReplies = Arc::new(parking_lot::Mutex::new(VecDeque::new()));
    let mut reader = tokio::spawn(read_responses(rd, pending.clone(), alive.clone()));
    let why: String = loop {
        tokio::select! {
            msg = rx.recv() => {
                let Some(first) = msg else { break NO_LONGER_USED.into() };
                if !alive.load(Ordering::Acquire) { break "connection closed".into(); }
                let mut batch = vec![first];
                while batch.len() < 64 {
                    match rx.try_recv() { Ok(m) => batch.push(m), Err(_) => break }
                }
                if let Err(e) = write_requests(&mut wr, batch, &pending).await {
                    break format!("write failed: {e}");
                }
            }
            r = &mut reader => {
                break r.unwrap_or_else(|e| format!("reader stopped: {e}"));
            }
            _ = killed.notified() => {
                break "connection closed by the client".into();
            }
            _ = reauth_due(reauth.as_ref().map(|r| r.0.due)) => {
                let Some((r, limit)) = reauth.as_mut() else { continue };
                let mut ch = InSession { wr: &mut wr, pending: &pending, corr: &corr };
                let done = tokio::select! {
                    d = tokio::time::timeout(*limit, r.run(&mut ch)) => d,
                    x = &mut reader => break x.unwrap_or_else(|e| format!("reader stopped: {e}")),
                    _ = killed.notified() => break "connection closed by the client".into(),
                };
                match done {
                    Ok(Ok(again)) => {
                        kp_log!(peer.log, DEBUG, SECURITY,
                            "re-authenticated with {} ({}, #{}), session lifetime {} ms",
                            peer.peer, r.mechanism(), r.count, r.lifetime_ms);
                        if !again {
                            reauth = None;
                        }
                    }
                    Ok(Err(e)) => break format!("re-authentication failed: {}", e.message),
                    Err(_) => break "re-authentication timed out".into(),
                }
            }
        }
    };
    alive.store(false, Ordering::Release);
    if why != NO_LONGER_USED {
        metrics.connection_closed();
        kp_log!(peer.log, NOTICE, BROKER, "connection to {} closed: {why}", peer.peer);
    }
    reader.abort();
    let _ = wr.shutdown().await;
    let lost = || Err(Error::new(error::TRANSPORT, format!("connection lost: {why}")));
    let drained: Vec<Pending> = pending.lock().drain(..).collect();
    for p in drained {
        let _ = p.reply.send(lost());
    }
    rx.close();
    while let Ok(m) = rx.try_recv() {
        if let Some(r) = m.reply {
            let _ = r.send(lost());
        }
    }
}

/// Sleeps until `due` (forever when None).
async fn reauth_due(due: Option<tokio::time::Instant>) {
    match due {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}

/// SASL re-authentication requests on a live connection: registered and
/// written like any request, so the reader hands them their responses in
/// order, after those of the requests already in flight.
struct InSession<'a, W> {
    wr: &'a mut W,
    pending: &'a PendingReplies,
    corr: &'a AtomicI32,
}

impl<W: AsyncWrite + Unpin> super::security::SaslChannel for InSession<'_, W> {
    fn next_correlation(&mut self) -> i32 {
        self.corr.fetch_add(1, Ordering::Relaxed)
    }

    async fn round_trip(&mut self, corr: i32, frame: BytesMut) -> Result<Bytes, Error> {
        let (tx, rx) = oneshot::channel();
        let m = Outgoing {
            frame: vec![frame.freeze()],
            correlation_id: corr,
            reply: Some(tx),
            written: None,
        };
        write_requests(self.wr, vec![m], self.pending)
            .await
            .map_err(|e| Error::new(error::TRANSPORT, format!("write failed: {e}")))?;
        rx.await.map_err(|_| Error::new(error::TRANSPORT, "connection lost"))?
    }
}

#[cfg(test)]
#[path = "conn_tests.rs"]
mod tests;
