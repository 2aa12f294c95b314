//! Interceptors: functions a config registers to see every record as it is
//! sent and every report before the record's own callback.

use std::ffi::c_void;

use super::boundary::{guard, handle_mut};
use super::config::kp_config_t;
use super::errors::{kp_err_t, KP_ERR_INVALID_ARG, KP_OK};
use super::report::kp_report_t;
use super::send::kp_record_t;

/// Interceptor called in kp_send() before the record is accepted (read-only).
pub type kp_on_send_fn_t =
    Option<unsafe extern "C" fn(record: *const kp_record_t, ctx: *mut c_void)>;
/// Interceptor called once per report, before the record's own callback.
pub type kp_on_ack_fn_t =
    Option<unsafe extern "C" fn(report: *const kp_report_t, ctx: *mut c_void)>;

/// The registered pair and their context (an address: it must outlive the
/// producer, as kp_config_set_interceptors() documents).
#[derive(Clone, Copy)]
pub(crate) struct Interceptors {
    on_send: kp_on_send_fn_t,
    on_ack: kp_on_ack_fn_t,
    ctx: usize,
}

impl Interceptors {
    /// Runs `on_send` (if any) for a record about to be sent.
    pub(crate) fn on_send(&self, record: *const kp_record_t) {
        if let Some(f) = self.on_send {
            // SAFETY: a C function registered with kp_config_set_interceptors,
            // called as kp.h documents, with a record valid during the call.
            unsafe { f(record, self.ctx as *mut c_void) }
        }
    }

    /// Runs `on_ack` (if any) for a report.
    pub(crate) fn on_ack(&self, report: *const kp_report_t) {
        if let Some(f) = self.on_ack {
            // SAFETY: as for on_send; the report is valid during the call.
            unsafe { f(report, self.ctx as *mut c_void) }
        }
    }
}

/// Registers interceptors: `on_send` runs inside kp_send() before the record
/// is accepted; `on_ack` runs once per delivery report (on the thread that
/// runs delivery callbacks) before the record's own callback. Either may be
/// NULL. `ctx` is passed to both and must outlive the producer.
///
/// # Safety
/// `cfg` is NULL or a live config used by no other thread.
#[no_mangle]
pub unsafe extern "C" fn kp_config_set_interceptors(
    cfg: *mut kp_config_t,
    on_send: kp_on_send_fn_t,
    on_ack: kp_on_ack_fn_t,
    ctx: *mut c_void,
) -> kp_err_t {
    guard(|| {
        let Some(cfg) = handle_mut!(cfg) else { return KP_ERR_INVALID_ARG };
        cfg.interceptors = if on_send.is_none() && on_ack.is_none() {
            None
        } else {
            Some(Interceptors { on_send, on_ack, ctx: ctx as usize })
        };
        KP_OK
    })
}
