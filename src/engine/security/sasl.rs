//! SASL authentication of a fresh connection (KIP-43/KIP-152): SaslHandshake
//! v1 names the mechanism, then SaslAuthenticate v1 requests carry the
//! mechanism's messages. PLAIN, SCRAM-SHA-256/512 and OAUTHBEARER.

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};

use std::sync::Arc;

use super::oauth::{self, Tokens};
use super::scram::{Hash, Scram};
use crate::error::{self, Error};
use crate::protocol::api::{self, Request};
use crate::protocol::messages::{
    SaslAuthenticateRequest, SaslAuthenticateResponse, SaslHandshakeRequest,
};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mechanism {
    Plain,
    ScramSha256,
    ScramSha512,
    OAuthBearer,
}

impl Mechanism {
    pub fn name(self) -> &'static str {
        match self {
            Mechanism::Plain => "PLAIN",
            Mechanism::ScramSha256 => "SCRAM-SHA-256",
            Mechanism::ScramSha512 => "SCRAM-SHA-512",
            Mechanism::OAuthBearer => "OAUTHBEARER",
        }
    }
}

/// Mechanism and credentials. `Debug` leaves the password out.
#[derive(Clone)]
pub struct SaslSettings {
    pub mechanism: Mechanism,
    pub username: String,
    password: String,
    /// OAUTHBEARER: where tokens come from (None until the application's
    /// callback is set, see [`SaslSettings::set_token_provider`]).
    tokens: Option<Arc<Tokens>>,
    /// OAUTHBEARER: `sasl.oauthbearer.config`, handed to the provider.
    oauth_config: String,
}

impl std::fmt::Debug for SaslSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SaslSettings")
            .field("mechanism", &self.mechanism)
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// The options of a JAAS login module line, e.g.
/// `org.apache.kafka.common.security.scram.ScramLoginModule required username="alice" password="x";`
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Jaas {
    pub module: String,
    pub options: Vec<(String, String)>,
}

impl Jaas {
    pub(crate) fn parse(s: &str) -> Result<Jaas, String> {
        let s = s.trim();
        let body = s.strip_suffix(';').unwrap_or(s).trim();
        let mut words = body.splitn(3, char::is_whitespace);
        let module = words.next().unwrap_or_default().to_string();
        let flag = words.next().unwrap_or_default();
        if module.is_empty() || !["required", "requisite", "sufficient", "optional"].contains(&flag)
        {
            return Err("\"sasl.jaas.config\" must look like `<LoginModule class> required key=\"value\" ...;`".into());
        }
        let rest: Vec<char> = words.next().unwrap_or_default().chars().collect();
        let mut options = Vec::new();
        let mut i = 0;
        while i < rest.len() {
            if rest[i].is_whitespace() {
                i += 1;
                continue;
            }
            let start = i;
            while i < rest.len() && rest[i] != '=' && !rest[i].is_whitespace() {
                i += 1;
            }
            let key: String = rest[start..i].iter().collect();
            if i >= rest.len() || rest[i] != '=' || key.is_empty() {
                return Err(format!("\"sasl.jaas.config\": option \"{key}\" has no value"));
            }
            i += 1;
            let mut value = String::new();
            if i < rest.len() && rest[i] == '"' {
                i += 1;
                loop {
                    match rest.get(i) {
                        None => {
                            return Err(format!(
                                "\"sasl.jaas.config\": unterminated quote in option \"{key}\""
                            ))
                        }
                        Some('\\') if i + 1 < rest.len() => {
                            value.push(rest[i + 1]);
                            i += 2;
                        }
                        Some('"') => {
                            i += 1;
                            break;
                        }
                        Some(c) => {
                            value.push(*c);
                            i += 1;
                        }
                    }
                }
            } else {
                while i < rest.len() && !rest[i].is_whitespace() {
                    value.push(rest[i]);
                    i += 1;
                }
            }
            options.push((key, value));
        }
        Ok(Jaas { module, options })
    }

    fn option(&self, name: &str) -> Option<&str> {
        self.options.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

impl SaslSettings {
    pub fn from_config(get: &dyn Fn(&str) -> Option<String>) -> Result<SaslSettings, String> {
        let mechanism = match get("sasl.mechanism").unwrap_or_default().as_str() {
            "scram-sha-256" => Mechanism::ScramSha256,
            "scram-sha-512" => Mechanism::ScramSha512,
            "oauthbearer" => Mechanism::OAuthBearer,
            _ => Mechanism::Plain,
        };
        if mechanism == Mechanism::OAuthBearer {
            return Self::oauthbearer(get);
        }
        let mut username = get("sasl.username").filter(|s| !s.is_empty());
        let mut password = get("sasl.password").filter(|s| !s.is_empty());
        if let Some(j) = get("sasl.jaas.config").filter(|s| !s.is_empty()) {
            let jaas = Jaas::parse(&j)?;
            let class = jaas.module.rsplit('.').next().unwrap_or_default();
            let fits = match class {
                "PlainLoginModule" => mechanism == Mechanism::Plain,
                "ScramLoginModule" => mechanism != Mechanism::Plain,
                other => {
                    return Err(format!(
                        "\"sasl.jaas.config\": login module {other} is not supported \
                         (PlainLoginModule, ScramLoginModule)"
                    ))
                }
            };
            if !fits {
                return Err(format!(
                    "\"sasl.jaas.config\" uses {class} but \"sasl.mechanism\" is {}; set \
                     sasl.mechanism to {}",
                    mechanism.name(),
                    if class == "PlainLoginModule" {
                        "PLAIN"
                    } else {
                        "SCRAM-SHA-256 or SCRAM-SHA-512"
                    }
                ));
            }
            username = username.or_else(|| jaas.option("username").map(str::to_string));
            password = password.or_else(|| jaas.option("password").map(str::to_string));
        }
        let username = username.ok_or_else(|| {
            format!(
                "SASL {} needs a user name: set sasl.username (or username in sasl.jaas.config)",
                mechanism.name()
            )
        })?;
        let password = password.ok_or_else(|| {
            format!(
                "SASL {} needs a password: set sasl.password (or password in sasl.jaas.config)",
                mechanism.name()
            )
        })?;
        Ok(SaslSettings {
            mechanism,
            username,
            password,
            tokens: None,
            oauth_config: String::new(),
        })
    }

    /// OAUTHBEARER: tokens from the application's callback (set later), or
    /// unsecured JWTs built from `sasl.oauthbearer.config` (or from a Java
    /// OAuthBearerLoginModule's unsecuredLoginStringClaim_sub option).
    fn oauthbearer(get: &dyn Fn(&str) -> Option<String>) -> Result<SaslSettings, String> {
        let mut config = get("sasl.oauthbearer.config").unwrap_or_default();
        if let Some(j) = get("sasl.jaas.config").filter(|s| !s.is_empty()) {
            let jaas = Jaas::parse(&j)?;
            if !jaas.module.ends_with("OAuthBearerLoginModule") {
                return Err(format!(
                    "\"sasl.jaas.config\" uses {} but \"sasl.mechanism\" is OAUTHBEARER \
                     (OAuthBearerLoginModule expected)",
                    jaas.module
                ));
            }
            if config.is_empty() {
                if let Some(sub) = jaas.option("unsecuredLoginStringClaim_sub") {
                    config = format!("principal={sub}");
                    if let Some(l) = jaas.option("unsecuredLoginLifetimeSeconds") {
                        config.push_str(&format!(" lifeSeconds={l}"));
                    }
                }
            }
        }
        let unsecured = get("enable.sasl.oauthbearer.unsecure.jwt").as_deref() == Some("true");
        let tokens = if unsecured {
            // Fail at creation, not at the first connection, on a bad config.
            oauth::unsecured_jwt(&config)?;
            Some(Tokens::new(Arc::new(oauth::unsecured_jwt), config.clone()))
        } else {
            None
        };
        Ok(SaslSettings {
            mechanism: Mechanism::OAuthBearer,
            username: String::new(),
            password: String::new(),
            tokens,
            oauth_config: config,
        })
    }

    /// Gives OAUTHBEARER the application's token provider (which wins over
    /// unsecured JWTs); an error when OAUTHBEARER ends up with no token source.
    pub fn set_token_provider(&mut self, p: Option<Arc<oauth::Provider>>) -> Result<(), String> {
        if self.mechanism != Mechanism::OAuthBearer {
            return Ok(());
        }
        if let Some(p) = p {
            self.tokens = Some(Tokens::new(p, self.oauth_config.clone()));
        }
        if self.tokens.is_none() {
            return Err("SASL OAUTHBEARER needs tokens: register a token refresh callback \
                 (kp_config_set_oauthbearer_token_refresh_cb), or for test clusters set \
                 enable.sasl.oauthbearer.unsecure.jwt=true and sasl.oauthbearer.config=principal=<name>"
                .into());
        }
        Ok(())
    }
}

/// Carries SASL request frames to the broker and their responses back: the
/// bare stream of a new connection, or a live session (re-authentication).
pub(crate) trait SaslChannel {
    /// The correlation id for the next request.
    fn next_correlation(&mut self) -> i32;
    /// Writes one request frame (correlation id `corr`) and waits for its
    /// response frame.
    async fn round_trip(&mut self, corr: i32, frame: BytesMut) -> Result<bytes::Bytes, Error>;
}

/// A fresh connection's stream before any other traffic.
pub(crate) struct Bare<'a, S> {
    pub stream: &'a mut S,
    pub next: i32,
}

impl<S: AsyncRead + AsyncWrite + Unpin> SaslChannel for Bare<'_, S> {
    fn next_correlation(&mut self) -> i32 {
        self.next += 1;
        self.next
    }

    async fn round_trip(&mut self, _corr: i32, frame: BytesMut) -> Result<bytes::Bytes, Error> {
        self.stream
            .write_all(&frame)
            .await
            .map_err(|e| super::setup_io_error(&e, "SASL: write failed"))?;
        crate::engine::conn::read_frame(self.stream)
            .await
            .map_err(|e| super::setup_io_error(&e, "SASL: no answer from the broker"))
    }
}

/// Sends one request and decodes its response.
async fn exchange<C, R>(
    ch: &mut C,
    req: &R,
    version: i16,
    client_id: &str,
) -> Result<R::Response, Error>
where
    C: SaslChannel,
    R: Request,
{
    let corr = ch.next_correlation();
    let mut frame = BytesMut::new();
    api::encode_request(&mut frame, req, version, corr, client_id);
    let resp = ch.round_trip(corr, frame).await?;
    let (got, r) = api::decode_response::<R>(version, resp)
        .map_err(|e| Error::new(error::BAD_RESPONSE, format!("SASL: undecodable response: {e}")))?;
    if got != corr {
        return Err(Error::new(error::BAD_RESPONSE, "SASL: correlation id mismatch"));
    }
    Ok(r)
}

/// Runs the whole exchange; returns the session lifetime the broker granted
/// (0: unlimited).
pub async fn authenticate<C: SaslChannel>(
    stream: &mut C,
    s: &SaslSettings,
    client_id: &str,
    addr: &str,
) -> Result<i64, Error> {
    let mech = s.mechanism.name();
    let hs =
        exchange(stream, &SaslHandshakeRequest { mechanism: mech.into() }, 1, client_id).await?;
    if hs.error_code != 0 {
        return Err(Error::new(
            error::AUTHENTICATION,
            format!(
                "SASL mechanism {mech} is not enabled on the listener at {addr} (it offers: {}; error code {})",
                hs.mechanisms.join(", "),
                hs.error_code
            ),
        ));
    }
    let token = match &s.tokens {
        Some(t) if s.mechanism == Mechanism::OAuthBearer => Some(t.get().await?),
        _ => None,
    };
    let who = match &token {
        Some(t) => format!("principal {}", t.principal),
        None => format!("user {}", s.username),
    };
    let failed = |why: Result<Error, String>| match why {
        Ok(e) => e,
        Err(why) => Error::new(
            error::AUTHENTICATION,
            format!("SASL authentication failed for {who} with {mech} at {addr}: {why}"),
        ),
    };
    match s.mechanism {
        Mechanism::OAuthBearer => {
            let Some(t) = token else {
                return Err(Error::new(error::INTERNAL, "OAUTHBEARER without a token source"));
            };
            let r = step(stream, t.client_first_message(), client_id).await.map_err(&failed)?;
            if r.auth_bytes.is_empty() {
                return Ok(r.session_lifetime_ms);
            }
            // The broker's error challenge (RFC 7628 3.2.2, JSON): answered
            // with a lone separator, after which the broker fails the exchange.
            let detail = String::from_utf8_lossy(&r.auth_bytes).into_owned();
            let _ = step(stream, vec![1], client_id).await;
            Err(failed(Err(format!("the broker refused the token: {detail}"))))
        }
        Mechanism::Plain => {
            let mut msg = Vec::with_capacity(s.username.len() + s.password.len() + 2);
            msg.push(0);
            msg.extend_from_slice(s.username.as_bytes());
            msg.push(0);
            msg.extend_from_slice(s.password.as_bytes());
            Ok(step(stream, msg, client_id).await.map_err(&failed)?.session_lifetime_ms)
        }
        Mechanism::ScramSha256 | Mechanism::ScramSha512 => {
            let hash =
                if s.mechanism == Mechanism::ScramSha256 { Hash::Sha256 } else { Hash::Sha512 };
            let nonce = Scram::random_nonce().map_err(|e| Error::new(error::INTERNAL, e))?;
            let (mut scram, first) = Scram::start(hash, &s.username, nonce);
            let server_first = step(stream, first, client_id).await.map_err(&failed)?.auth_bytes;
            let fin = scram.client_final(&server_first, &s.password).map_err(|e| failed(Err(e)))?;
            let r = step(stream, fin, client_id).await.map_err(&failed)?;
            scram.verify_server_final(&r.auth_bytes).map_err(|e| failed(Err(e)))?;
            Ok(r.session_lifetime_ms)
        }
    }
}

/// One SaslAuthenticate round trip. Err(Ok(e)): the exchange itself failed;
/// Err(Err(why)): the broker refused the credentials.
async fn step<C: SaslChannel>(
    stream: &mut C,
    bytes: Vec<u8>,
    client_id: &str,
) -> Result<SaslAuthenticateResponse, Result<Error, String>> {
    let r = exchange(stream, &SaslAuthenticateRequest { auth_bytes: bytes.into() }, 1, client_id)
        .await
        .map_err(Ok)?;
    if r.error_code != 0 {
        return Err(Err(r
            .error_message
            .unwrap_or_else(|| error::description(r.error_code as i32).into())));
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jaas_lines_parse() {
        let j = Jaas::parse(
            "org.apache.kafka.common.security.scram.ScramLoginModule required username=\"alice\" password=\"p \\\"q\\\" r\";",
        )
        .unwrap();
        assert_eq!(j.module, "org.apache.kafka.common.security.scram.ScramLoginModule");
        assert_eq!(j.option("username"), Some("alice"));
        assert_eq!(j.option("password"), Some("p \"q\" r"));
        let j =
            Jaas::parse("x.PlainLoginModule required\n  username=bob\n  password=\"s\";").unwrap();
        assert_eq!(j.option("username"), Some("bob"));
        assert!(Jaas::parse("username=\"a\";").is_err());
        assert!(Jaas::parse("M required username=\"a;").is_err());
    }

    fn settings(pairs: &'static [(&'static str, &'static str)]) -> Result<SaslSettings, String> {
        SaslSettings::from_config(&|n| pairs.iter().find(|p| p.0 == n).map(|p| p.1.to_string()))
    }

    #[test]
    fn credentials_from_either_style_and_no_password_in_debug() {
        let s = settings(&[
            ("sasl.mechanism", "scram-sha-512"),
            ("sasl.username", "alice"),
            ("sasl.password", "pw-123"),
        ])
        .unwrap();
        assert_eq!(s.mechanism, Mechanism::ScramSha512);
        assert!(!format!("{s:?}").contains("pw-123"));
        let s = settings(&[
            ("sasl.mechanism", "scram-sha-256"),
            ("sasl.jaas.config", "org.apache.kafka.common.security.scram.ScramLoginModule required username=\"alice\" password=\"pw-123\";"),
        ])
        .unwrap();
        assert_eq!((s.username.as_str(), s.password.as_str()), ("alice", "pw-123"));
        let e = settings(&[
            ("sasl.mechanism", "plain"),
            ("sasl.jaas.config", "org.apache.kafka.common.security.scram.ScramLoginModule required username=\"a\" password=\"pw-123\";"),
        ])
        .unwrap_err();
        assert!(e.contains("sasl.mechanism") && !e.contains("pw-123"), "{e}");
        assert!(settings(&[("sasl.username", "a")]).unwrap_err().contains("password"));
    }
}
