//! A fault-injection TCP proxy for tests: it sits between kp and each real
//! broker (one [`Route`] per broker: listen address -> upstream address) and,
//! at runtime, per route, can
//!
//! - add latency to every chunk, both directions ([`Faults::latency`]);
//! - cap the bandwidth of each connection, each direction ([`Faults::bytes_per_sec`]);
//! - blackhole: accept and never answer, stop forwarding in both directions
//!   while keeping every socket open ([`Faults::blackhole`]); what was read
//!   meanwhile is held, and forwarded (late) once the blackhole is lifted,
//!   like a network partition TCP rides out;
//! - reset each connection after N bytes of responses (broker -> client),
//!   N drawn per connection from a range ([`Faults::reset_after`]); the
//!   proxy tracks Kafka's size-prefixed framing and counts the resets that
//!   cut a response in the middle;
//! - half-close the current connections (FIN to the client, the client's
//!   side still read and forwarded: [`Route::half_close_connections`]);
//! - reset the current connections ([`Route::reset_connections`]);
//! - drop the listener (new connections refused) and open it again
//!   ([`Route::close_listener`], [`Route::open_listener`]).
//!
//! It runs on its own tokio runtime; every method is called from the test's
//! (plain) thread. Counters per route: connections accepted, bytes each way,
//! resets, mid-response resets, half-closes.

use std::io;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::Runtime;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// The faults a route applies to all its connections, current and new.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Faults {
    /// Delay of every chunk, each direction.
    pub latency: Duration,
    /// Bandwidth cap per connection and direction (None: no cap).
    pub bytes_per_sec: Option<u64>,
    /// Accept, but forward nothing either way; sockets stay open.
    pub blackhole: bool,
    /// Reset each connection after `lo..=hi` bytes of responses (drawn per connection).
    pub reset_after: Option<(u64, u64)>,
}

/// Counters of one route.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    pub accepted: u64,
    pub bytes_up: u64,
    pub bytes_down: u64,
    pub resets: u64,
    pub mid_response_resets: u64,
    pub half_closes: u64,
}

#[derive(Default)]
struct Counters {
    accepted: AtomicU64,
    bytes_up: AtomicU64,
    bytes_down: AtomicU64,
    resets: AtomicU64,
    mid_response_resets: AtomicU64,
    half_closes: AtomicU64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cmd {
    Run,
    HalfClose,
    Reset,
}

/// One proxied broker: connections to `listen` are forwarded to `upstream`.
pub struct Route {
    pub listen: SocketAddr,
    pub upstream: SocketAddr,
    rt: tokio::runtime::Handle,
    faults: watch::Sender<Faults>,
    counters: Arc<Counters>,
    conns: Arc<Mutex<Vec<watch::Sender<Cmd>>>>,
    acceptor: Mutex<Option<JoinHandle<()>>>,
}

pub struct Proxy {
    pub routes: Vec<Route>,
    _rt: Runtime,
}

impl Proxy {
    /// Starts one listening route per (listen, upstream) pair.
    pub fn start(pairs: &[(SocketAddr, SocketAddr)]) -> Proxy {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("fault-proxy")
            .enable_all()
            .build()
            .expect("proxy runtime");
        let routes = pairs
            .iter()
            .map(|&(listen, upstream)| {
                let r = Route {
                    listen,
                    upstream,
                    rt: rt.handle().clone(),
                    faults: watch::channel(Faults::default()).0,
                    counters: Arc::default(),
                    conns: Arc::default(),
                    acceptor: Mutex::new(None),
                };
                r.open_listener();
                r
            })
            .collect();
        Proxy { routes, _rt: rt }
    }

    /// Applies `f` to the faults of every route.
    pub fn update_all(&self, f: impl Fn(&mut Faults)) {
        for r in &self.routes {
            r.update(&f);
        }
    }

    pub fn total(&self) -> Stats {
        self.routes.iter().map(Route::stats).fold(Stats::default(), |a, s| Stats {
            accepted: a.accepted + s.accepted,
            bytes_up: a.bytes_up + s.bytes_up,
            bytes_down: a.bytes_down + s.bytes_down,
            resets: a.resets + s.resets,
            mid_response_resets: a.mid_response_resets + s.mid_response_resets,
            half_closes: a.half_closes + s.half_closes,
        })
    }
}

impl Route {
    pub fn update(&self, f: impl FnOnce(&mut Faults)) {
        self.faults.send_modify(f);
    }

    pub fn blackhole(&self, on: bool) {
        self.update(|f| f.blackhole = on);
    }

    pub fn stats(&self) -> Stats {
        let c = &self.counters;
        Stats {
            accepted: c.accepted.load(Ordering::Relaxed),
            bytes_up: c.bytes_up.load(Ordering::Relaxed),
            bytes_down: c.bytes_down.load(Ordering::Relaxed),
            resets: c.resets.load(Ordering::Relaxed),
            mid_response_resets: c.mid_response_resets.load(Ordering::Relaxed),
            half_closes: c.half_closes.load(Ordering::Relaxed),
        }
    }

    /// Sends `cmd` to every live connection; returns how many got it.
    fn command(&self, cmd: Cmd) -> usize {
        let mut conns = self.conns.lock().unwrap();
        conns.retain(|c| !c.is_closed());
        conns.iter().filter(|c| c.send(cmd).is_ok()).count()
    }

    /// Resets (RST) both sides of every current connection.
    pub fn reset_connections(&self) -> usize {
        self.command(Cmd::Reset)
    }

    /// Half-closes every current connection: the client reads EOF (FIN) and
    /// gets nothing more, while what it sends is still forwarded.
    pub fn half_close_connections(&self) -> usize {
        self.command(Cmd::HalfClose)
    }

    /// Drops the listening socket: new connections are refused (current ones stay).
    pub fn close_listener(&self) {
        if let Some(h) = self.acceptor.lock().unwrap().take() {
            h.abort();
            // Wait until the task (and with it the socket) is gone.
            let _ = self.rt.block_on(h);
        }
    }

    /// Listens again (after [`Route::close_listener`]; no-op when listening).
    pub fn open_listener(&self) {
        let mut acceptor = self.acceptor.lock().unwrap();
        if acceptor.is_some() {
            return;
        }
        let listen = self.listen;
        let listener = self.rt.block_on(async move {
            // The port of a just-closed listener can take a moment to free up.
            let mut tries = 0;
            loop {
                match TcpListener::bind(listen).await {
                    Ok(l) => break l,
                    Err(e) if tries < 50 => {
                        tries += 1;
                        let _ = e;
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                    Err(e) => panic!("proxy: bind {listen}: {e}"),
                }
            }
        });
        let upstream = self.upstream;
        let faults = self.faults.subscribe();
        let counters = self.counters.clone();
        let conns = self.conns.clone();
        *acceptor = Some(self.rt.spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else { continue };
                counters.accepted.fetch_add(1, Ordering::Relaxed);
                let (cmd_tx, cmd_rx) = watch::channel(Cmd::Run);
                conns.lock().unwrap().push(cmd_tx);
                tokio::spawn(connection(
                    client,
                    upstream,
                    faults.clone(),
                    cmd_rx,
                    counters.clone(),
                ));
            }
        }));
    }
}

impl Drop for Route {
    fn drop(&mut self) {
        self.close_listener();
        self.reset_connections();
    }
}

// ------------------------------------------------------------------ plumbing

async fn read_some(s: &TcpStream, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        s.readable().await?;
        match s.try_read(buf) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            r => return r,
        }
    }
}

async fn write_all(s: &TcpStream, mut buf: &[u8]) -> io::Result<()> {
    while !buf.is_empty() {
        s.writable().await?;
        match s.try_write(buf) {
            Ok(n) => buf = &buf[n..],
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

fn shutdown_write(s: &TcpStream) {
    unsafe { libc::shutdown(s.as_raw_fd(), libc::SHUT_WR) };
}

/// SO_LINGER 0: the close that follows sends RST instead of FIN.
fn arm_reset(s: &TcpStream) {
    let l = libc::linger { l_onoff: 1, l_linger: 0 };
    unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            &l as *const libc::linger as *const libc::c_void,
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        )
    };
}

/// Position in a stream of Kafka frames (4-byte big-endian size, then the body).
#[derive(Default)]
struct Framing {
    header: [u8; 4],
    header_len: usize,
    body_left: u64,
}

impl Framing {
    fn advance(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            if self.body_left > 0 {
                let n = (self.body_left as usize).min(bytes.len());
                self.body_left -= n as u64;
                bytes = &bytes[n..];
            } else {
                self.header[self.header_len] = bytes[0];
                self.header_len += 1;
                bytes = &bytes[1..];
                if self.header_len == 4 {
                    self.header_len = 0;
                    self.body_left = u32::from_be_bytes(self.header) as u64;
                }
            }
        }
    }

    fn mid_frame(&self) -> bool {
        self.header_len > 0 || self.body_left > 0
    }
}

enum Dir {
    Up,
    Down,
}

/// How a pump ended.
#[derive(Debug, PartialEq, Eq)]
enum End {
    /// The source closed; the destination got a FIN.
    Eof,
    /// I/O error on either side, or the response budget ran out: reset all.
    Reset,
}

/// Reads `src` into a queue of (due time, bytes); the due time carries the latency.
async fn reader(
    src: Arc<TcpStream>,
    faults: watch::Receiver<Faults>,
    tx: mpsc::Sender<Option<(Instant, Vec<u8>)>>,
) -> End {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        match read_some(&src, &mut buf).await {
            Ok(0) => {
                let _ = tx.send(None).await;
                return End::Eof;
            }
            Ok(n) => {
                let due = Instant::now() + faults.borrow().latency;
                if tx.send(Some((due, buf[..n].to_vec()))).await.is_err() {
                    return End::Eof;
                }
            }
            Err(_) => return End::Reset,
        }
    }
}

/// Writes the queue to `dst` when due, holding it while blackholed, at the
/// capped rate; downstream, resets after the connection's response budget.
async fn writer(
    dst: Arc<TcpStream>,
    dir: Dir,
    mut faults: watch::Receiver<Faults>,
    mut rx: mpsc::Receiver<Option<(Instant, Vec<u8>)>>,
    counters: Arc<Counters>,
) -> End {
    let mut framing = Framing::default();
    let mut sent: u64 = 0;
    let mut budget: Option<u64> = None;
    let mut next_free = Instant::now();
    while let Some(item) = rx.recv().await {
        let Some((due, data)) = item else {
            shutdown_write(&dst);
            return End::Eof;
        };
        tokio::time::sleep_until(due).await;
        let mut rest = &data[..];
        while !rest.is_empty() {
            if faults.wait_for(|f| !f.blackhole).await.is_err() {
                return End::Reset;
            }
            let f = faults.borrow().clone();
            let mut piece = rest.len();
            if let Some(rate) = f.bytes_per_sec {
                piece = piece.min((rate / 50).max(1) as usize);
            }
            if let Dir::Down = dir {
                match (f.reset_after, budget) {
                    (Some((lo, hi)), None) => budget = Some(sent + fastrand::u64(lo..=hi.max(lo))),
                    (None, Some(_)) => budget = None,
                    _ => {}
                }
                if let Some(b) = budget {
                    let left = b.saturating_sub(sent);
                    if (piece as u64) >= left {
                        let cut = &rest[..left as usize];
                        if write_all(&dst, cut).await.is_ok() {
                            framing.advance(cut);
                            counters.bytes_down.fetch_add(cut.len() as u64, Ordering::Relaxed);
                        }
                        if framing.mid_frame() {
                            counters.mid_response_resets.fetch_add(1, Ordering::Relaxed);
                        }
                        return End::Reset;
                    }
                }
            }
            if let Some(rate) = f.bytes_per_sec {
                tokio::time::sleep_until(next_free).await;
                next_free = Instant::now().max(next_free)
                    + Duration::from_micros(piece as u64 * 1_000_000 / rate.max(1));
            }
            let (now, later) = rest.split_at(piece);
            if write_all(&dst, now).await.is_err() {
                return End::Reset;
            }
            sent += now.len() as u64;
            match dir {
                Dir::Up => counters.bytes_up.fetch_add(now.len() as u64, Ordering::Relaxed),
                Dir::Down => {
                    framing.advance(now);
                    counters.bytes_down.fetch_add(now.len() as u64, Ordering::Relaxed)
                }
            };
            rest = later;
        }
    }
    End::Eof
}

async fn connection(
    client: TcpStream,
    upstream: SocketAddr,
    faults: watch::Receiver<Faults>,
    mut cmd: watch::Receiver<Cmd>,
    counters: Arc<Counters>,
) {
    let client = Arc::new(client);
    let server = match TcpStream::connect(upstream).await {
        Ok(s) => Arc::new(s),
        Err(_) => {
            arm_reset(&client);
            return;
        }
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    // Up: client -> server; down: server -> client. 64 chunks of up to 16 KiB
    // are queued per direction (what a network would buffer) before reading stops.
    let (up_tx, up_rx) = mpsc::channel(64);
    let (down_tx, down_rx) = mpsc::channel(64);
    let mut tasks = tokio::task::JoinSet::new();
    tasks.spawn(reader(client.clone(), faults.clone(), up_tx));
    tasks.spawn(writer(server.clone(), Dir::Up, faults.clone(), up_rx, counters.clone()));
    tasks.spawn(reader(server.clone(), faults.clone(), down_tx));
    let down = tasks.spawn(writer(client.clone(), Dir::Down, faults, down_rx, counters.clone()));
    loop {
        tokio::select! {
            r = tasks.join_next() => match r {
                None => break,
                // A pump that ended cleanly, or the downstream one a half-close stopped.
                Some(Ok(End::Eof)) => {}
                Some(Err(e)) if e.is_cancelled() => {}
                Some(_) => {
                    counters.resets.fetch_add(1, Ordering::Relaxed);
                    break reset(&client, &server, tasks).await;
                }
            },
            c = cmd.changed() => match c.map(|()| *cmd.borrow()) {
                Err(_) | Ok(Cmd::Reset) => {
                    counters.resets.fetch_add(1, Ordering::Relaxed);
                    break reset(&client, &server, tasks).await;
                }
                Ok(Cmd::HalfClose) => {
                    counters.half_closes.fetch_add(1, Ordering::Relaxed);
                    down.abort();
                    shutdown_write(&client);
                }
                Ok(Cmd::Run) => {}
            },
        }
    }
}

async fn reset(client: &TcpStream, server: &TcpStream, mut tasks: tokio::task::JoinSet<End>) {
    arm_reset(client);
    arm_reset(server);
    tasks.abort_all();
    while tasks.join_next().await.is_some() {}
}
