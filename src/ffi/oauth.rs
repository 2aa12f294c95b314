//! SASL OAUTHBEARER tokens from the application: the token refresh
//! callback a config registers (kp_config_set_oauthbearer_token_refresh_cb)
//! and the two functions it answers with.

use std::ffi::{c_char, c_void, CString};
use std::sync::Arc;

use super::boundary::{c_slice, c_str, c_str_of, guard, handle_mut, set_errstr, Borrowed, Handle};
use super::config::kp_config_t;
use super::errors::{kp_err_t, KP_ERR_INVALID_ARG, KP_OK};
use crate::engine::security::{Provider, Token};

/// A request for a token (opaque), lent to the token refresh callback and
/// valid only during that call: answer it with kp_oauthbearer_set_token() or
/// kp_oauthbearer_set_token_failure() before returning.
pub struct kp_oauthbearer_request_t {
    answer: Option<Result<Token, String>>,
}

impl Handle for kp_oauthbearer_request_t {
    type Ownership = Borrowed;
}

/// Token refresh callback (SASL OAUTHBEARER): get a token, e.g. from an
/// identity provider, and hand it over with kp_oauthbearer_set_token(req,
/// ...), or call kp_oauthbearer_set_token_failure(req, why). `req` is valid
/// only during the call. `oauthbearer_config` is the sasl.oauthbearer.config
/// setting ("" when unset), valid during the call. kp calls it when a
/// connection first needs a token and again at 80% of the token's lifetime,
/// on a kp thread named "kp-oauth" (never the network I/O thread), one call at a
/// time per producer; it may block (e.g. for an HTTP request), but must not
/// call kp_flush(), kp_producer_close() or kp_producer_destroy().
pub type kp_oauthbearer_token_refresh_fn_t = Option<
    unsafe extern "C" fn(
        req: *mut kp_oauthbearer_request_t,
        oauthbearer_config: *const c_char,
        ctx: *mut c_void,
    ),
>;

/// The registered token refresh callback and its context.
#[derive(Clone, Copy)]
pub(crate) struct TokenCallback {
    f: unsafe extern "C" fn(*mut kp_oauthbearer_request_t, *const c_char, *mut c_void),
    /// The caller's `ctx` (an address: it must outlive the producer).
    ctx: usize,
}

impl TokenCallback {
    /// The engine's token provider calling the C callback.
    pub(crate) fn provider(self) -> Arc<Provider> {
        Arc::new(move |config: &str| {
            let config = CString::new(config).unwrap_or_default();
            let mut req = kp_oauthbearer_request_t { answer: None };
            // SAFETY: the C function registered with
            // kp_config_set_oauthbearer_token_refresh_cb(), called as kp.h
            // documents: `req` and the string live until it returns.
            unsafe { (self.f)(&mut req, config.as_ptr(), self.ctx as *mut c_void) };
            req.answer.unwrap_or_else(|| {
                Err("the token refresh callback returned without calling \
                     kp_oauthbearer_set_token() or kp_oauthbearer_set_token_failure()"
                    .into())
            })
        })
    }
}

/// Registers the token refresh callback for sasl.mechanism=OAUTHBEARER
/// (NULL removes it). Without one, OAUTHBEARER needs
/// enable.sasl.oauthbearer.unsecure.jwt=true (test clusters only). `ctx` is
/// passed to every call and must stay valid until kp_producer_destroy()
/// returns. Returns KP_OK or KP_ERR_INVALID_ARG (NULL cfg).
///
/// # Safety
/// `cfg` is NULL or a live config used by no other thread; `cb` is NULL or
/// a function callable from any thread as kp_oauthbearer_token_refresh_fn_t
/// documents.
#[no_mangle]
pub unsafe extern "C" fn kp_config_set_oauthbearer_token_refresh_cb(
    cfg: *mut kp_config_t,
    cb: kp_oauthbearer_token_refresh_fn_t,
    ctx: *mut c_void,
) -> kp_err_t {
    guard(|| {
        let Some(cfg) = handle_mut!(cfg) else { return KP_ERR_INVALID_ARG };
        cfg.token_refresh = cb.map(|f| TokenCallback { f, ctx: ctx as usize });
        KP_OK
    })
}

/// Answers a token request with a token (from the token refresh callback).
/// `token_value`: the token (printable ASCII, no spaces; kp copies it and
/// never logs it). `expiry_ms`: when it expires, in milliseconds since the
/// Unix epoch (librdkafka's md_lifetime_ms); kp asks for the next token at
/// 80% of the time left. `principal`: the principal name the token is for.
/// `extensions`: NULL or `extension_size` strings, alternating SASL
/// extension names and values (KIP-342); `extension_size` must be even.
/// Returns KP_OK, or KP_ERR_INVALID_ARG with the reason in `errstr` (NULL
/// or empty arguments, an expiry not in the future, a bad extension); the
/// request then counts as failed with that reason.
///
/// # Safety
/// `req` is NULL or the request passed to the running callback;
/// `token_value`, `principal` and each extension string are NULL or
/// NUL-terminated; `extensions` is NULL or has `extension_size` pointers;
/// `errstr` is NULL or has `errstr_size` writable bytes.
#[no_mangle]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn kp_oauthbearer_set_token(
    req: *mut kp_oauthbearer_request_t,
    token_value: *const c_char,
    expiry_ms: i64,
    principal: *const c_char,
    extensions: *const *const c_char,
    extension_size: usize,
    errstr: *mut c_char,
    errstr_size: usize,
) -> kp_err_t {
    guard(|| {
        let Some(req) = handle_mut!(req) else {
            set_errstr!(errstr, errstr_size, "req is NULL");
            return KP_ERR_INVALID_ARG;
        };
        let token = || -> Result<Token, String> {
            let value = c_str!(token_value).ok_or("token_value must be a non-NULL UTF-8 string")?;
            let principal = c_str!(principal).ok_or("principal must be a non-NULL UTF-8 string")?;
            if !extension_size.is_multiple_of(2) {
                return Err("extension_size must be even (name, value pairs)".into());
            }
            let list = if extension_size == 0 {
                &[][..]
            } else {
                c_slice!(extensions, extension_size).ok_or("extensions is NULL")?
            };
            let mut ext = Vec::with_capacity(extension_size / 2);
            for pair in list.chunks(2) {
                // SAFETY: each element is NULL or NUL-terminated (this
                // function's contract).
                let (k, v) = unsafe { (c_str_of(pair[0]), c_str_of(pair[1])) };
                let (Some(k), Some(v)) = (k, v) else {
                    return Err("extension names and values must be non-NULL UTF-8 strings".into());
                };
                ext.push((k.to_string(), v.to_string()));
            }
            Token::new(value.to_string(), expiry_ms, principal.to_string(), ext)
        };
        match token() {
            Ok(t) => {
                req.answer = Some(Ok(t));
                KP_OK
            }
            Err(m) => {
                set_errstr!(errstr, errstr_size, &m);
                req.answer = Some(Err(format!("kp_oauthbearer_set_token(): {m}")));
                KP_ERR_INVALID_ARG
            }
        }
    })
}

/// Answers a token request with a failure (from the token refresh
/// callback): `errstr` says why (NULL: no reason given). While the current
/// token is still valid, kp asks again 10 s later (sooner when it runs out
/// first); when no valid token is left, connecting fails with
/// KP_ERR_AUTHENTICATION and this reason, and the producer turns fatal, as
/// with wrong credentials.
/// Returns KP_OK or KP_ERR_INVALID_ARG (NULL req).
///
/// # Safety
/// `req` is NULL or the request passed to the running callback; `errstr` is
/// NULL or NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn kp_oauthbearer_set_token_failure(
    req: *mut kp_oauthbearer_request_t,
    errstr: *const c_char,
) -> kp_err_t {
    guard(|| {
        let Some(req) = handle_mut!(req) else { return KP_ERR_INVALID_ARG };
        let why = c_str!(errstr).unwrap_or("no reason given");
        req.answer = Some(Err(why.to_string()));
        KP_OK
    })
}
