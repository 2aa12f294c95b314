//! Secured broker connections: `security.protocol` ssl / sasl_plaintext /
//! sasl_ssl. The connection layer calls [`Security::establish`] on every new
//! socket (bootstrap, leaders and coordinators alike): TLS handshake first,
//! then the SASL exchange (SaslHandshake v1 + SaslAuthenticate v1), and only
//! then the ApiVersions handshake and normal traffic.
//!
//! Failures that retrying cannot fix (bad credentials, untrusted or
//! mismatched certificates, TLS spoken to a plaintext port or the reverse)
//! carry the code [`error::AUTHENTICATION`] and a message naming the cause,
//! the user and mechanism or certificate problem, and the broker address. The
//! engine is told through the hook set with [`Security::on_auth_failure`] and
//! fails the affected records at once instead of letting them wait for
//! delivery.timeout.ms. Secrets never reach a message: only user names,
//! mechanisms, setting names and file paths do.

pub(crate) mod oauth;
pub(crate) mod sasl;
pub(crate) mod scram;
mod tls;

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use crate::error::{self, Error};

pub use oauth::{Provider, Token};
pub(crate) use sasl::SaslChannel;
use sasl::SaslSettings;
use tls::{Tls, TlsSettings};

/// Setting names whose values are secrets: `kp_config_get` never returns
/// them, and no message quotes them.
pub const SECRET_SETTINGS: &[&str] = &[
    "sasl.password",
    "sasl.jaas.config",
    "ssl.key.password",
    "ssl.key.pem",
    "ssl.keystore.password",
    "ssl.truststore.password",
    "sasl.oauthbearer.config",
];

/// What `kp_config_get` shows for a secret that was set.
pub const HIDDEN: &str = "[hidden]";

type AuthFailureHook = Box<dyn Fn(Error) + Send + Sync>;

/// The security settings of one producer (cheap to clone).
#[derive(Clone, Default)]
pub struct Security {
    tls: Option<Tls>,
    sasl: Option<Arc<SaslSettings>>,
    hook: Arc<OnceLock<AuthFailureHook>>,
    /// A TLS handshake has completed with a broker of this cluster. Since
    /// then, a connection any broker closes during a handshake is a broker
    /// going down or starting up (retried), not a plaintext listener: the
    /// brokers of a cluster share their listeners' security protocol, and a
    /// restarting broker may reset connections before its TLS listener
    /// serves (seen with Kafka 3.9 under a broker kill, to a broker this
    /// producer had not connected to yet).
    tls_seen: Arc<AtomicBool>,
}

impl std::fmt::Debug for Security {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Security")
            .field("tls", &self.tls.is_some())
            .field("sasl", &self.sasl.as_ref().map(|s| s.mechanism.name()))
            .finish()
    }
}

impl Security {
    /// Builds the settings from the configuration. `get` returns a setting's
    /// value (its default when unset; None when it has none). Files are read
    /// here, so a missing CA or a wrong key password fails producer creation.
    pub fn from_config(get: &dyn Fn(&str) -> Option<String>) -> Result<Security, String> {
        let protocol = get("security.protocol").unwrap_or_else(|| "plaintext".into());
        let (use_tls, use_sasl) = match protocol.as_str() {
            "plaintext" => (false, false),
            "ssl" => (true, false),
            "sasl_plaintext" => (false, true),
            "sasl_ssl" => (true, true),
            other => return Err(format!("\"security.protocol\": unknown value \"{other}\"")),
        };
        let tls = if use_tls {
            let text = |n: &str| get(n).filter(|v| !v.is_empty());
            let algorithm = get("ssl.endpoint.identification.algorithm").unwrap_or_default();
            let s = TlsSettings {
                ca_location: text("ssl.ca.location"),
                ca_pem: text("ssl.ca.pem"),
                truststore_type: text("ssl.truststore.type").unwrap_or_else(|| "pem".into()),
                truststore_password: text("ssl.truststore.password"),
                cert_location: text("ssl.certificate.location"),
                cert_pem: text("ssl.certificate.pem"),
                key_location: text("ssl.key.location"),
                key_pem: text("ssl.key.pem"),
                key_password: text("ssl.key.password"),
                keystore_location: text("ssl.keystore.location"),
                keystore_type: text("ssl.keystore.type").unwrap_or_else(|| "pkcs12".into()),
                keystore_password: text("ssl.keystore.password"),
                verify_certificates: get("enable.ssl.certificate.verification").as_deref()
                    != Some("false"),
                verify_hostname: algorithm == "https",
            };
            Some(Tls::new(&s)?)
        } else {
            None
        };
        let sasl = if use_sasl { Some(Arc::new(SaslSettings::from_config(get)?)) } else { None };
        Ok(Security { tls, sasl, hook: Arc::new(OnceLock::new()), tls_seen: Arc::default() })
    }

    /// A copy for one producer, with its own (unset) failure hook.
    pub fn for_producer(&self) -> Security {
        Security {
            tls: self.tls.clone(),
            sasl: self.sasl.clone(),
            hook: Arc::new(OnceLock::new()),
            tls_seen: Arc::default(),
        }
    }

    /// Gives SASL OAUTHBEARER the application's token provider; an error
    /// when OAUTHBEARER is configured with no token source at all.
    pub fn set_token_provider(&mut self, p: Option<Arc<Provider>>) -> Result<(), String> {
        match &mut self.sasl {
            Some(s) => Arc::make_mut(s).set_token_provider(p),
            None => Ok(()),
        }
    }

    /// Sets what to do when a connection fails authentication (once).
    pub fn on_auth_failure(&self, f: impl Fn(Error) + Send + Sync + 'static) {
        let _ = self.hook.set(Box::new(f));
    }

    /// Called with every failed connection attempt: authentication failures
    /// keep their code and go to the hook.
    pub fn connect_failed(&self, code: error::Code, mut e: Error) -> Error {
        if code == error::AUTHENTICATION {
            e.code = code;
            if let Some(h) = self.hook.get() {
                h(e.clone());
            }
        }
        e
    }

    /// TLS handshake (if configured) and SASL authentication (if configured)
    /// on a fresh socket. `host` is the name the broker was reached by.
    /// With SASL and a broker that limits the session's lifetime, also what
    /// the connection needs to re-authenticate in time.
    pub async fn establish(
        &self,
        tcp: TcpStream,
        host: &str,
        addr: &str,
        client_id: &str,
    ) -> Result<(Stream, Option<Reauth>), Error> {
        let mut stream = match &self.tls {
            None => Stream::Plain(tcp),
            Some(t) => {
                let tls = t.handshake(host, tcp).await.map_err(|e| {
                    tls_handshake_error(&e, addr, self.tls_seen.load(Ordering::Relaxed))
                })?;
                self.tls_seen.store(true, Ordering::Relaxed);
                Stream::Tls(Box::new(tls))
            }
        };
        let mut reauth = None;
        if let Some(s) = &self.sasl {
            let mut bare = sasl::Bare { stream: &mut stream, next: 0 };
            let lifetime = sasl::authenticate(&mut bare, s, client_id, addr).await?;
            reauth = Reauth::due_after(lifetime).map(|due| Reauth {
                sasl: s.clone(),
                client_id: client_id.to_string(),
                addr: addr.to_string(),
                due,
                lifetime_ms: lifetime,
                count: 0,
            });
        }
        Ok((stream, reauth))
    }
}

/// Re-authentication (KIP-368) of a live connection: the broker granted the
/// SASL session a limited lifetime (SaslAuthenticate v1's
/// session_lifetime_ms, set by `connections.max.reauth.ms` or a token's
/// expiry) and closes the connection when it runs out. The connection's I/O
/// task runs the SASL exchange again on the same connection at 85% of the
/// lifetime, holding back new requests meanwhile (responses to those in
/// flight still arrive first, in order), so nothing is dropped or reordered.
pub struct Reauth {
    sasl: Arc<SaslSettings>,
    client_id: String,
    addr: String,
    /// When to start the next re-authentication.
    pub due: tokio::time::Instant,
    /// The lifetime the broker granted last (ms).
    pub lifetime_ms: i64,
    /// Re-authentications done on this connection.
    pub count: u64,
}

impl Reauth {
    fn due_after(lifetime_ms: i64) -> Option<tokio::time::Instant> {
        (lifetime_ms > 0).then(|| {
            tokio::time::Instant::now()
                + std::time::Duration::from_millis(lifetime_ms as u64 * 85 / 100)
        })
    }

    /// The mechanism's name, for log lines.
    pub fn mechanism(&self) -> &'static str {
        self.sasl.mechanism.name()
    }

    /// Authenticates again over `ch`; Ok(false) when the broker granted an
    /// unlimited session this time (no further re-authentication).
    pub(crate) async fn run<C: SaslChannel>(&mut self, ch: &mut C) -> Result<bool, Error> {
        let lifetime = sasl::authenticate(ch, &self.sasl, &self.client_id, &self.addr).await?;
        self.lifetime_ms = lifetime;
        self.count += 1;
        match Self::due_after(lifetime) {
            Some(due) => {
                self.due = due;
                Ok(true)
            }
            None => Ok(false),
        }
    }
}

/// `tls_seen`: a handshake with a broker of this cluster completed before,
/// so a closed connection is a broker going down or starting up (retried),
/// not a plaintext listener (fatal, said at once).
fn tls_handshake_error(e: &std::io::Error, addr: &str, tls_seen: bool) -> Error {
    use std::io::ErrorKind::*;
    if let Some(r) = rustls_error(e) {
        return Error::new(error::AUTHENTICATION, format!("TLS handshake with {addr} failed: {r}"));
    }
    match e.kind() {
        UnexpectedEof | ConnectionReset | ConnectionAborted | BrokenPipe if !tls_seen => Error::new(
            error::AUTHENTICATION,
            format!(
                "TLS handshake with {addr} failed: the broker closed the connection ({e}); \
                 is this a plaintext listener? (security.protocol ssl/sasl_ssl needs a TLS listener)"
            ),
        ),
        _ => Error::new(error::TRANSPORT, format!("TLS handshake with {addr} failed: {e}")),
    }
}

fn rustls_error(e: &std::io::Error) -> Option<&rustls::Error> {
    e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>())
}

/// The broker answered a plaintext request with a TLS record.
#[derive(Debug)]
pub struct TlsAnswer;

impl std::fmt::Display for TlsAnswer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(
            "the broker answered with TLS: this is a TLS listener (set security.protocol to ssl or sasl_ssl)",
        )
    }
}

impl std::error::Error for TlsAnswer {}

/// For a frame length read from a plaintext connection: an error when the
/// four bytes are the start of a TLS record (an alert or a handshake).
pub fn tls_record_instead_of_frame(len_bytes: i32) -> Option<std::io::Error> {
    let b = len_bytes.to_be_bytes();
    if matches!(b[0], 0x15 | 0x16) && b[1] == 0x03 && b[2] <= 0x04 {
        Some(std::io::Error::new(std::io::ErrorKind::InvalidData, TlsAnswer))
    } else {
        None
    }
}

/// Maps an I/O error during connection setup to an [`Error`]: TLS failures
/// (a bad certificate seen after the handshake, an alert from the broker, a
/// TLS answer on a plaintext connection) are authentication failures.
pub fn setup_io_error(e: &std::io::Error, context: &str) -> Error {
    if let Some(r) = rustls_error(e) {
        return Error::new(error::AUTHENTICATION, format!("{context}: TLS: {r}"));
    }
    if e.get_ref().is_some_and(|i| i.is::<TlsAnswer>()) {
        return Error::new(error::AUTHENTICATION, format!("{context}: {e}"));
    }
    Error::new(error::TRANSPORT, format!("{context}: {e}"))
}

/// A broker connection's byte stream: plain TCP or TLS over TCP.
pub enum Stream {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Stream::Plain(s) => s.is_write_vectored(),
            Stream::Tls(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_records_are_recognised() {
        assert!(tls_record_instead_of_frame(i32::from_be_bytes([0x15, 0x03, 0x03, 0x00])).is_some());
        assert!(tls_record_instead_of_frame(i32::from_be_bytes([0x16, 0x03, 0x01, 0x02])).is_some());
        assert!(tls_record_instead_of_frame(1024).is_none());
        let e = tls_record_instead_of_frame(0x15030300).unwrap();
        let err = setup_io_error(&e, "ApiVersions handshake failed");
        assert_eq!(err.code, error::AUTHENTICATION);
        assert!(err.message.contains("TLS listener"), "{}", err.message);
    }

    #[test]
    fn plaintext_needs_nothing_and_unknown_protocol_is_refused() {
        let s = Security::from_config(&|_| None).unwrap();
        assert!(s.tls.is_none() && s.sasl.is_none());
        let e = Security::from_config(&|n| (n == "security.protocol").then(|| "tls".into()))
            .unwrap_err();
        assert!(e.contains("security.protocol"));
    }

    #[test]
    fn a_closed_handshake_is_fatal_only_before_any_tls_handshake_completed() {
        let reset = std::io::Error::from(std::io::ErrorKind::ConnectionReset);
        let first = tls_handshake_error(&reset, "127.0.0.1:9093", false);
        assert_eq!(first.code, error::AUTHENTICATION);
        assert!(first.message.contains("plaintext listener"), "{}", first.message);
        // Another broker of a cluster that already spoke TLS: a restart, retried.
        let later = tls_handshake_error(&reset, "127.0.0.1:9094", true);
        assert_eq!(later.code, error::TRANSPORT);
    }
}
