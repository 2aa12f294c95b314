//! SASL authentication of a fresh connection (KIP-43/KIP-152): SaslHandshake
//! v1 names the mechanism, then SaslAuthenticate v1 requests carry the
//! mechanism's messages. PLAIN and SCRAM-SHA-256/512.

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};

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
}

impl Mechanism {
    pub fn name(self) -> &'static str {
        match self {
            Mechanism::Plain => "PLAIN",
            Mechanism::ScramSha256 => "SCRAM-SHA-256",
            Mechanism::ScramSha512 => "SCRAM-SHA-512",
        }
    }
}

/// Mechanism and credentials. `Debug` leaves the password out.
#[derive(Clone)]
pub struct SaslSettings {
    pub mechanism: Mechanism,
    pub username: String,
    password: String,
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
            _ => Mechanism::Plain,
        };
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
        Ok(SaslSettings { mechanism, username, password })
    }
}

/// Writes one request frame and reads its response on the bare stream.
async fn exchange<S, R>(
    stream: &mut S,
    req: &R,
    version: i16,
    corr: i32,
    client_id: &str,
) -> Result<R::Response, Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
    R: Request,
{
    let mut frame = BytesMut::new();
    api::encode_request(&mut frame, req, version, corr, client_id);
    stream.write_all(&frame).await.map_err(|e| super::setup_io_error(&e, "SASL: write failed"))?;
    let resp = crate::engine::conn::read_frame(stream)
        .await
        .map_err(|e| super::setup_io_error(&e, "SASL: no answer from the broker"))?;
    let (got, r) = api::decode_response::<R>(version, resp)
        .map_err(|e| Error::new(error::BAD_RESPONSE, format!("SASL: undecodable response: {e}")))?;
    if got != corr {
        return Err(Error::new(error::BAD_RESPONSE, "SASL: correlation id mismatch"));
    }
    Ok(r)
}

/// Runs the whole exchange; returns the session lifetime the broker granted
/// (0: unlimited).
pub async fn authenticate<S>(
    stream: &mut S,
    s: &SaslSettings,
    client_id: &str,
    addr: &str,
) -> Result<i64, Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mech = s.mechanism.name();
    let hs =
        exchange(stream, &SaslHandshakeRequest { mechanism: mech.into() }, 1, 1, client_id).await?;
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
    let failed = |why: Result<Error, String>| match why {
        Ok(e) => e,
        Err(why) => Error::new(
            error::AUTHENTICATION,
            format!(
                "SASL authentication failed for user {} with {mech} at {addr}: {why}",
                s.username
            ),
        ),
    };
    match s.mechanism {
        Mechanism::Plain => {
            let mut msg = Vec::with_capacity(s.username.len() + s.password.len() + 2);
            msg.push(0);
            msg.extend_from_slice(s.username.as_bytes());
            msg.push(0);
            msg.extend_from_slice(s.password.as_bytes());
            Ok(step(stream, msg, 2, client_id).await.map_err(&failed)?.session_lifetime_ms)
        }
        Mechanism::ScramSha256 | Mechanism::ScramSha512 => {
            let hash =
                if s.mechanism == Mechanism::ScramSha256 { Hash::Sha256 } else { Hash::Sha512 };
            let nonce = Scram::random_nonce().map_err(|e| Error::new(error::INTERNAL, e))?;
            let (mut scram, first) = Scram::start(hash, &s.username, nonce);
            let server_first = step(stream, first, 2, client_id).await.map_err(&failed)?.auth_bytes;
            let fin = scram.client_final(&server_first, &s.password).map_err(|e| failed(Err(e)))?;
            let r = step(stream, fin, 3, client_id).await.map_err(&failed)?;
            scram.verify_server_final(&r.auth_bytes).map_err(|e| failed(Err(e)))?;
            Ok(r.session_lifetime_ms)
        }
    }
}

/// One SaslAuthenticate round trip. Err(Ok(e)): the exchange itself failed;
/// Err(Err(why)): the broker refused the credentials.
async fn step<S>(
    stream: &mut S,
    bytes: Vec<u8>,
    corr: i32,
    client_id: &str,
) -> Result<SaslAuthenticateResponse, Result<Error, String>>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let r =
        exchange(stream, &SaslAuthenticateRequest { auth_bytes: bytes.into() }, 1, corr, client_id)
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
