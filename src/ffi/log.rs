//! Logging: the log callback a config registers (kp_config_set_log_callback)
//! and the syslog levels it receives. The filtering, queueing and
//! rate-limiting live in `crate::log`; panics caught at the boundary are
//! logged from `boundary`.

use std::ffi::{c_char, c_void, CStr};

use super::boundary::{guard, handle_mut};
use super::config::kp_config_t;
use super::errors::{kp_err_t, KP_ERR_INVALID_ARG, KP_OK};
use super::report::CallbackScope;
use crate::log::{Filter, Log};

// Log levels (syslog's): a line is passed to the log callback when its
// level is at most the `log_level` setting (default KP_LOG_INFO).

/// System is unusable (kp does not use it).
pub const KP_LOG_EMERG: i32 = 0;
/// Action must be taken immediately (kp does not use it).
pub const KP_LOG_ALERT: i32 = 1;
/// Critical: an internal error (a panic caught inside kp).
pub const KP_LOG_CRIT: i32 = 2;
/// Error: the producer turned fatal, authentication failed.
pub const KP_LOG_ERR: i32 = 3;
/// Warning: a broker unreachable, a metadata refresh failed.
pub const KP_LOG_WARNING: i32 = 4;
/// Notice: a connection lost, an epoch bump.
pub const KP_LOG_NOTICE: i32 = 5;
/// Informational: connected, leader changes, retries, producer id.
pub const KP_LOG_INFO: i32 = 6;
/// Debug: only for the contexts named in the `debug` setting.
pub const KP_LOG_DEBUG: i32 = 7;

/// Log callback: `level` is a KP_LOG_* value, `facility` the context the
/// line belongs to ("broker", "protocol", "metadata", "producer", "txn" or
/// "security"), `message` the text (no trailing newline). Both strings are
/// valid only during the call. It runs on kp's delivery thread in
/// delivery.report.mode=thread, and inside kp_poll(), kp_poll_reports(),
/// kp_flush() and kp_producer_close() on the calling thread in mode "poll"
/// (kp_poll_fd() turns readable when lines wait); never on the network I/O
/// thread, and never twice at once for one producer.
pub type kp_log_fn_t = Option<
    unsafe extern "C" fn(
        level: i32,
        facility: *const c_char,
        message: *const c_char,
        ctx: *mut c_void,
    ),
>;

/// The registered C log function and its context.
#[derive(Clone, Copy)]
pub(crate) struct LogCallback {
    f: unsafe extern "C" fn(i32, *const c_char, *const c_char, *mut c_void),
    /// The caller's `ctx` (an address: it must outlive the producer).
    ctx: usize,
}

impl LogCallback {
    /// The producer's logger: `filter` from the config, lines to `self`.
    pub(crate) fn logger(self, filter: Filter) -> Log {
        Log::new(
            filter,
            Box::new(move |level, facility: &CStr, message: &CStr| {
                // A wait for reports from inside the log callback would wait
                // for itself: kp_flush() and friends return KP_ERR_STATE.
                let _scope = CallbackScope::enter();
                // SAFETY: the C function registered with
                // kp_config_set_log_callback(), called as kp.h documents with
                // strings valid during the call and the caller's ctx.
                unsafe {
                    (self.f)(level, facility.as_ptr(), message.as_ptr(), self.ctx as *mut c_void)
                }
            }),
        )
    }
}

/// Registers a log callback (NULL removes it): the producer created from
/// this config passes it the lines its `log_level` and `debug` settings let
/// through (connections up, down and failed with the broker's address,
/// authentication failures, metadata changes such as leader moves, retries,
/// epoch bumps, fatal errors, internal errors, and at debug level
/// transaction states and more). A line repeated within 30 s is logged once;
/// its next occurrence after that says "repeated N times". Without a
/// callback kp logs nothing anywhere (it never writes to stdout/stderr).
/// `ctx` is passed to every call and must stay valid until
/// kp_producer_destroy() returns. Returns KP_OK or KP_ERR_INVALID_ARG (NULL
/// cfg).
///
/// # Safety
/// `cfg` is NULL or a live config used by no other thread; `cb` is NULL or
/// a function callable from any thread as kp_log_fn_t documents.
#[no_mangle]
pub unsafe extern "C" fn kp_config_set_log_callback(
    cfg: *mut kp_config_t,
    cb: kp_log_fn_t,
    ctx: *mut c_void,
) -> kp_err_t {
    guard(|| {
        let Some(cfg) = handle_mut!(cfg) else { return KP_ERR_INVALID_ARG };
        cfg.log = cb.map(|f| LogCallback { f, ctx: ctx as usize });
        KP_OK
    })
}
