//! SASL OAUTHBEARER (RFC 7628, KIP-255): where tokens come from and how
//! they are kept fresh.
//!
//! A token comes from a provider: the application's callback (through the C
//! ABI) or, for tests, an unsecured JWT kp builds from
//! `sasl.oauthbearer.config` (librdkafka's format, with
//! `enable.sasl.oauthbearer.unsecure.jwt=true`). The provider runs on a
//! thread of its own, "kp-oauth" (never an I/O thread): first when a connection
//! needs a token, then again at 80% of the token's lifetime, in the
//! background, so connections and re-authentications find a fresh one
//! without waiting. Token values never reach a message or a log line.

use std::sync::{Arc, Weak};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use tokio::time::Instant;

use crate::error::{self, Error};

/// One OAUTHBEARER token. `Debug` leaves the value out.
#[derive(Clone, PartialEq, Eq)]
pub struct Token {
    pub value: String,
    /// When the token expires: milliseconds since the Unix epoch.
    pub expiry_ms: i64,
    pub principal: String,
    /// SASL extensions (KIP-342) sent with the token.
    pub extensions: Vec<(String, String)>,
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Token")
            .field("principal", &self.principal)
            .field("expiry_ms", &self.expiry_ms)
            .field("extensions", &self.extensions)
            .finish_non_exhaustive()
    }
}

impl Token {
    /// Checks what a provider returned; the message never quotes the value.
    pub fn new(
        value: String,
        expiry_ms: i64,
        principal: String,
        extensions: Vec<(String, String)>,
    ) -> Result<Token, String> {
        if value.is_empty() || !value.bytes().all(|b| (0x21..0x7f).contains(&b)) {
            return Err("the token value must be non-empty printable ASCII without spaces".into());
        }
        if principal.is_empty() {
            return Err("the token's principal name must not be empty".into());
        }
        if expiry_ms <= now_ms() {
            return Err(format!(
                "the token's expiry time ({expiry_ms} ms since the epoch) is not in the future"
            ));
        }
        for (k, v) in &extensions {
            if k == "auth" || k.is_empty() || !k.bytes().all(|b| b.is_ascii_alphabetic()) {
                return Err(format!(
                    "SASL extension name \"{k}\" is invalid (letters only, not \"auth\")"
                ));
            }
            if v.is_empty()
                || !v.bytes().all(|b| matches!(b, 0x21..=0x7e | b' ' | b'\t' | b'\r' | b'\n'))
            {
                return Err(format!("SASL extension \"{k}\" has an invalid value"));
            }
        }
        Ok(Token { value, expiry_ms, principal, extensions })
    }

    /// The client's first (and only) message (RFC 7628 section 3.1).
    pub fn client_first_message(&self) -> Vec<u8> {
        let mut m = format!("n,,\x01auth=Bearer {}\x01", self.value);
        for (k, v) in &self.extensions {
            m.push_str(&format!("{k}={v}\x01"));
        }
        m.push('\x01');
        m.into_bytes()
    }

    fn remaining(&self) -> Duration {
        Duration::from_millis((self.expiry_ms - now_ms()).max(0) as u64)
    }
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

/// Gets a token, given `sasl.oauthbearer.config`. May block: it runs on a
/// thread of its own.
pub type Provider = dyn Fn(&str) -> Result<Token, String> + Send + Sync;

/// A producer's token source: the current token and its refresher.
pub struct Tokens {
    provider: Arc<Provider>,
    config: String,
    state: parking_lot::Mutex<State>,
    /// One provider call at a time.
    fetching: tokio::sync::Mutex<()>,
}

#[derive(Default)]
struct State {
    token: Option<Token>,
    refresher: bool,
    /// The provider's last failure (shown when no valid token is left).
    failed: Option<String>,
}

impl Tokens {
    pub fn new(provider: Arc<Provider>, config: String) -> Arc<Tokens> {
        Arc::new(Tokens {
            provider,
            config,
            state: Default::default(),
            fetching: tokio::sync::Mutex::new(()),
        })
    }

    /// A valid token: the current one, or a new one from the provider
    /// (waiting for it). Starts the background refresher on first use.
    pub async fn get(self: &Arc<Self>) -> Result<Token, Error> {
        if let Some(t) = self.valid() {
            return Ok(t);
        }
        let _one = self.fetching.lock().await;
        if let Some(t) = self.valid() {
            return Ok(t);
        }
        let t = self.fetch().await?;
        let mut st = self.state.lock();
        if !st.refresher {
            st.refresher = true;
            tokio::spawn(refresh(Arc::downgrade(self)));
        }
        Ok(t)
    }

    fn valid(&self) -> Option<Token> {
        let st = self.state.lock();
        st.token.clone().filter(|t| t.expiry_ms > now_ms())
    }

    /// Calls the provider on its own thread and keeps its token.
    async fn fetch(&self) -> Result<Token, Error> {
        let (p, c) = (self.provider.clone(), self.config.clone());
        // A thread of its own (rare: once per token), named so the
        // application can tell it from the I/O threads.
        let (tx, rx) = tokio::sync::oneshot::channel();
        std::thread::Builder::new()
            .name("kp-oauth".into())
            .spawn(move || {
                let _ = tx.send(p(&c));
            })
            .map_err(|e| Error::new(error::INTERNAL, format!("cannot start a thread: {e}")))?;
        let r = rx.await.unwrap_or_else(|_| Err("the token provider panicked".into()));
        let mut st = self.state.lock();
        match r {
            Ok(t) => {
                st.token = Some(t.clone());
                st.failed = None;
                Ok(t)
            }
            Err(why) => {
                st.failed = Some(why.clone());
                Err(Error::new(
                    error::AUTHENTICATION,
                    format!("SASL OAUTHBEARER: the token refresh failed: {why}"),
                ))
            }
        }
    }
}

/// Refreshes the token at 80% of its lifetime (after a failure: again in
/// 10 s, or sooner when the token runs out before) until the producer is gone.
async fn refresh(tokens: Weak<Tokens>) {
    let mut wait = Duration::ZERO;
    loop {
        {
            let Some(t) = tokens.upgrade() else { return };
            let st = t.state.lock();
            if let (Some(tok), None) = (&st.token, &st.failed) {
                wait = tok.remaining() * 4 / 5;
            }
        }
        tokio::time::sleep_until(Instant::now() + wait).await;
        let Some(t) = tokens.upgrade() else { return };
        let _one = t.fetching.lock().await;
        if t.fetch().await.is_err() {
            let left = t.valid().map_or(Duration::ZERO, |k| k.remaining());
            wait = Duration::from_secs(10).min(left / 2).max(Duration::from_millis(500));
        }
    }
}

/// The unsecured JWT (`alg: none`) librdkafka builds for tests from
/// `sasl.oauthbearer.config`: `principal=<name> [principalClaimName=<claim>]
/// [scope=<a,b>] [scopeClaimName=<claim>] [lifeSeconds=<n>]
/// [extension_<name>=<value>]...`. Brokers accept it only with their
/// unsecured validator (test clusters).
pub fn unsecured_jwt(config: &str) -> Result<Token, String> {
    let mut principal = None;
    let (mut principal_claim, mut scope_claim) = ("sub".to_string(), "scope".to_string());
    let mut scope: Vec<String> = Vec::new();
    let mut life_s: i64 = 3600;
    let mut extensions = Vec::new();
    for item in config.split_whitespace() {
        let (k, v) = item
            .split_once('=')
            .ok_or_else(|| format!("\"sasl.oauthbearer.config\": \"{item}\" is not name=value"))?;
        match k {
            "principal" => principal = Some(v.to_string()),
            "principalClaimName" => principal_claim = v.to_string(),
            "scopeClaimName" => scope_claim = v.to_string(),
            "scope" => scope = v.split(',').filter(|s| !s.is_empty()).map(str::to_string).collect(),
            "lifeSeconds" => {
                life_s = v.parse().ok().filter(|n| *n > 0).ok_or_else(|| {
                    format!(
                        "\"sasl.oauthbearer.config\": lifeSeconds \"{v}\" is not a positive number"
                    )
                })?
            }
            _ => match k.strip_prefix("extension_") {
                Some(name) => extensions.push((name.to_string(), v.to_string())),
                None => {
                    return Err(format!(
                        "\"sasl.oauthbearer.config\": unknown key \"{k}\" (principal, \
                         principalClaimName, scope, scopeClaimName, lifeSeconds, extension_<name>)"
                    ))
                }
            },
        }
    }
    let principal = principal.filter(|p| !p.is_empty()).ok_or(
        "\"sasl.oauthbearer.config\" needs principal=<name> for an unsecured JWT".to_string(),
    )?;
    let now = now_ms();
    let expiry_ms =
        life_s.checked_mul(1000).and_then(|ms| now.checked_add(ms)).ok_or_else(|| {
            format!("\"sasl.oauthbearer.config\": lifeSeconds \"{life_s}\" is too large")
        })?;
    let mut claims = format!(
        "{{{}:{},\"iat\":{:.3},\"exp\":{:.3}",
        json_str(&principal_claim),
        json_str(&principal),
        now as f64 / 1000.0,
        expiry_ms as f64 / 1000.0
    );
    if !scope.is_empty() {
        let list: Vec<String> = scope.iter().map(|s| json_str(s)).collect();
        claims.push_str(&format!(",{}:[{}]", json_str(&scope_claim), list.join(",")));
    }
    claims.push('}');
    let value = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(br#"{"alg":"none"}"#),
        URL_SAFE_NO_PAD.encode(claims.as_bytes())
    );
    Token::new(value, expiry_ms, principal, extensions)
}

/// A JSON string literal.
fn json_str(s: &str) -> String {
    let mut o = String::with_capacity(s.len() + 2);
    o.push('"');
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            c if (c as u32) < 0x20 => o.push_str(&format!("\\u{:04x}", c as u32)),
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsecured_jwt_has_the_claims_and_no_signature() {
        let t =
            unsecured_jwt("principal=alice scope=a,b lifeSeconds=60 extension_traceId=x1").unwrap();
        assert_eq!(t.principal, "alice");
        assert_eq!(t.extensions, vec![("traceId".to_string(), "x1".to_string())]);
        let parts: Vec<&str> = t.value.split('.').collect();
        assert_eq!(parts.len(), 3);
        assert_eq!(parts[2], "");
        assert_eq!(URL_SAFE_NO_PAD.decode(parts[0]).unwrap(), br#"{"alg":"none"}"#);
        let claims = String::from_utf8(URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
        assert!(claims.starts_with(r#"{"sub":"alice","iat":"#), "{claims}");
        assert!(claims.ends_with(r#","scope":["a","b"]}"#), "{claims}");
        let left = t.expiry_ms - now_ms();
        assert!((55_000..=60_000).contains(&left), "{left}");
        let m = String::from_utf8(t.client_first_message()).unwrap();
        assert_eq!(m, format!("n,,\x01auth=Bearer {}\x01traceId=x1\x01\x01", t.value));
        assert!(unsecured_jwt("scope=a").unwrap_err().contains("principal"));
        assert!(unsecured_jwt("principal=a lifeSeconds=0").unwrap_err().contains("lifeSeconds"));
        assert!(unsecured_jwt("principal=a what=1").unwrap_err().contains("what"));
        // found while writing the fuzz target: the expiry overflowed i64
        // (a panic in debug builds, a "not in the future" token in release)
        let e = unsecured_jwt("principal=a lifeSeconds=9223372036854775807").unwrap_err();
        assert!(e.contains("too large"), "{e}");
        assert!(unsecured_jwt("principal=a lifeSeconds=9223372036854775").is_err());
        assert_eq!(json_str("a\"\\\n"), "\"a\\\"\\\\\\u000a\"");
    }

    #[test]
    fn provider_tokens_are_checked_and_debug_hides_the_value() {
        let later = now_ms() + 60_000;
        let t = Token::new("tok-secret".into(), later, "bob".into(), vec![]).unwrap();
        assert!(!format!("{t:?}").contains("tok-secret"));
        assert!(Token::new("a b".into(), later, "bob".into(), vec![]).is_err());
        assert!(Token::new("t".into(), later, "".into(), vec![]).is_err());
        assert!(Token::new("t".into(), now_ms() - 1, "bob".into(), vec![]).is_err());
        let ext = vec![("auth".to_string(), "x".to_string())];
        assert!(Token::new("t".into(), later, "bob".into(), ext).is_err());
    }

    #[test]
    fn tokens_are_fetched_once_then_refreshed_in_the_background() {
        let calls = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let c = calls.clone();
        let provider: Arc<Provider> = Arc::new(move |cfg: &str| {
            assert_eq!(cfg, "principal=p lifeSeconds=1");
            c.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            unsecured_jwt(cfg)
        });
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let tokens = Tokens::new(provider, "principal=p lifeSeconds=1".into());
            let a = tokens.get().await.unwrap();
            let b = tokens.get().await.unwrap();
            assert_eq!(a, b);
            assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 1);
            // Refreshed at 80% of its 1 s lifetime, before it expires.
            tokio::time::sleep(Duration::from_millis(1500)).await;
            assert!(calls.load(std::sync::atomic::Ordering::SeqCst) >= 2);
            let c = tokens.get().await.unwrap();
            assert!(c.expiry_ms > a.expiry_ms);
        });
    }
}
