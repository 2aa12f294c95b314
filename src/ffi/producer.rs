//! `kp_producer_t`: creating a producer from a config, flushing, purging,
//! closing and destroying it.

use std::collections::HashMap;
use std::ffi::{c_char, c_void, CString};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Once};
use std::time::Duration;

use parking_lot::Mutex;

use super::boundary::{
    calling_producer, guard, handle, into_handle, set_errstr, take_handle, timeout, Handle, Owned,
};
use super::config::{kp_config_t, Partitioner};
use super::errors::{kp_err_t, KP_ERR_INVALID_ARG, KP_OK};
use super::interceptors::Interceptors;
use super::report::{dispatch, in_delivery_callback};
use crate::config::ProducerConfig;
use crate::engine::{PartitionerFn, Producer};
use crate::error::{self, Error};

/// Producer handle (opaque). All functions taking it are thread-safe, except
/// kp_producer_destroy(), after which the handle must not be used.
pub struct kp_producer_t {
    pub(crate) producer: Producer,
    pub(crate) on_send: Option<Interceptors>,
    /// Whether records belong to transactions (their reports' class).
    pub(crate) transactional: bool,
    /// The process that created the producer, and the fork generation then.
    pid: u32,
    fork_generation: u32,
    /// Topic names handed out by kp_poll_reports(), valid until destroy.
    topic_names: Mutex<HashMap<Arc<str>, CString>>,
    /// Test hook: kp_flush() panics (KP_TEST_FORCE_PANIC=flush).
    panic_in_flush: bool,
}

/// Test hook, for tests only: the environment variable
/// KP_TEST_FORCE_PANIC, read when a producer is created, makes kp panic on
/// purpose: "flush" inside every kp_flush() of that producer (the caller's
/// thread), "io" once on its I/O thread. Tests check that such a panic is
/// logged and not printed.
fn forced_panic() -> Option<String> {
    std::env::var("KP_TEST_FORCE_PANIC").ok()
}

/// Incremented in every child process right after fork(): a producer made
/// under another generation belongs to a process whose threads this one
/// does not have. One relaxed load per call; no getpid() on the hot path.
static FORK_GENERATION: AtomicU32 = AtomicU32::new(0);

extern "C" fn after_fork_in_child() {
    FORK_GENERATION.fetch_add(1, Ordering::Relaxed);
}

fn watch_forks() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // SAFETY: registers a handler that only touches an atomic (which
        // is async-signal-safe, as a fork child handler must be).
        unsafe { libc::pthread_atfork(None, None, Some(after_fork_in_child)) };
    });
}

impl kp_producer_t {
    /// Whether this process is not the one that created the producer.
    pub(crate) fn forked(&self) -> bool {
        FORK_GENERATION.load(Ordering::Relaxed) != self.fork_generation
    }

    fn forked_error(&self) -> Error {
        Error::new(
            error::FORKED,
            format!(
                "this producer was created in process {}; create a new producer after fork()",
                self.pid
            ),
        )
    }

    /// A NUL-terminated copy of `name` that lives as long as the producer.
    pub(crate) fn topic_cname(&self, name: &Arc<str>) -> *const c_char {
        let mut names = self.topic_names.lock();
        names
            .entry(name.clone())
            .or_insert_with(|| CString::new(name.as_bytes()).unwrap_or_default())
            .as_ptr()
    }
}

/// The producer behind a handle, if it can be used here: NULL is
/// KP_ERR_INVALID_ARG, a producer from before a fork() KP_ERR_FORKED.
pub(crate) fn usable(p: Option<&kp_producer_t>) -> Result<&kp_producer_t, Error> {
    match p {
        None => Err(Error::new(error::INVALID_ARG, "producer is NULL")),
        Some(p) if p.forked() => Err(p.forked_error()),
        Some(p) => {
            calling_producer(&p.producer.config().log);
            Ok(p)
        }
    }
}

/// KP_ERR_STATE when called from a delivery callback (a call that waits for
/// reports would wait for itself).
pub(crate) fn not_in_callback(what: &str) -> Result<(), Error> {
    if in_delivery_callback() {
        Err(Error::new(error::STATE, format!("{what} must not be called from a delivery callback")))
    } else {
        Ok(())
    }
}

impl Handle for kp_producer_t {
    type Ownership = Owned;
}

/// kp_purge() flag: drop records not yet sent.
pub const KP_PURGE_QUEUED: i32 = 1;
/// kp_purge() flag: give up on records whose request is in flight (they may
/// still land in the log: their report says KP_POSSIBLY_PERSISTED).
pub const KP_PURGE_IN_FLIGHT: i32 = 2;

/// The engine's partitioner function calling a C partitioner.
fn partitioner_fn(p: Partitioner) -> Arc<PartitionerFn> {
    Arc::new(move |topic: &str, key: Option<&[u8]>, n: i32| {
        let t = std::ffi::CString::new(topic).unwrap_or_default();
        let (kp, kl) = match key {
            Some(k) => (k.as_ptr().cast::<c_void>(), k.len()),
            None => (std::ptr::null(), 0),
        };
        // SAFETY: the C partitioner registered with kp_config_set_partitioner,
        // called as kp.h documents, with buffers valid during the call.
        unsafe { (p.f)(t.as_ptr(), kp, kl, n, p.ctx as *mut c_void) }
    })
}

/// Creates a producer. On success the producer takes ownership of `cfg`
/// (do not destroy it); on failure (NULL return) the caller still owns
/// `cfg` and `errstr` says why (e.g. a missing bootstrap.servers or
/// conflicting settings). Connecting to brokers happens in the background:
/// unreachable brokers show up as delivery errors, not here.
///
/// # Safety
/// `cfg` is NULL or a live config used by no other thread; `errstr` is NULL
/// or has `errstr_size` writable bytes.
#[no_mangle]
pub unsafe extern "C" fn kp_producer_new(
    cfg: *mut kp_config_t,
    errstr: *mut c_char,
    errstr_size: usize,
) -> *mut kp_producer_t {
    guard(|| {
        let Some(c) = handle!(cfg) else {
            set_errstr!(errstr, errstr_size, "cfg is NULL");
            return std::ptr::null_mut();
        };
        let mut pcfg = match ProducerConfig::from_map(&c.map) {
            Ok(p) => p,
            Err(m) => {
                set_errstr!(errstr, errstr_size, &m);
                return std::ptr::null_mut();
            }
        };
        if let Some(cb) = c.log {
            pcfg.log = cb.logger(pcfg.log_filter);
        }
        if let Err(m) = pcfg.security.set_token_provider(c.token_refresh.map(|t| t.provider())) {
            set_errstr!(errstr, errstr_size, &m);
            return std::ptr::null_mut();
        }
        let part_fn = c.partitioner.map(partitioner_fn);
        let transactional = pcfg.transactional_id.is_some();
        watch_forks();
        let fork_generation = FORK_GENERATION.load(Ordering::Relaxed);
        match Producer::new(pcfg, dispatch(c.interceptors, transactional), part_fn) {
            Ok(producer) => {
                let forced = forced_panic();
                if forced.as_deref() == Some("io") {
                    producer.spawn(async { panic!("forced by KP_TEST_FORCE_PANIC=io") });
                }
                let on_send = c.interceptors;
                // SAFETY: `cfg` came from kp_config_new/dup (this function's
                // contract) and is consumed on success, as kp.h documents;
                // `c` is not used after this.
                drop(unsafe { take_handle(cfg) });
                into_handle(kp_producer_t {
                    producer,
                    on_send,
                    transactional,
                    pid: std::process::id(),
                    fork_generation,
                    topic_names: Mutex::default(),
                    panic_in_flush: forced.as_deref() == Some("flush"),
                })
            }
            Err(e) => {
                set_errstr!(errstr, errstr_size, &e.to_string());
                std::ptr::null_mut()
            }
        }
    })
}

/// Sends everything queued at once (ignoring linger.ms) and waits up to
/// `timeout_ms` until every accepted record has had its report (in mode
/// "poll" the reports are served on this thread meanwhile). Returns KP_OK
/// or KP_ERR_TIMED_OUT; KP_ERR_STATE at once when called from a delivery
/// callback. Thread-safe.
///
/// # Safety
/// `p` is NULL or a producer not yet destroyed.
#[no_mangle]
pub unsafe extern "C" fn kp_flush(p: *mut kp_producer_t, timeout_ms: i32) -> kp_err_t {
    guard(|| {
        let r = usable(handle!(p)).and_then(|p| {
            not_in_callback("kp_flush")?;
            if p.panic_in_flush {
                panic!("forced by KP_TEST_FORCE_PANIC=flush");
            }
            p.producer.flush(timeout(timeout_ms))
        });
        r.err().map_or(KP_OK, |e| e.code)
    })
}

/// Sends every record queued so far without waiting for linger.ms, and
/// returns at once: their reports arrive as usual (use kp_flush() to wait
/// for them). Records sent after this call linger as usual. For a caller
/// that sends a group of records and then waits for their reports in its own
/// way (a language binding's synchronous batch send). Returns KP_OK, or
/// KP_ERR_INVALID_ARG for NULL, KP_ERR_FORKED in a fork() child.
/// Thread-safe; does not block.
///
/// # Safety
/// `p` is NULL or a producer not yet destroyed.
#[no_mangle]
pub unsafe extern "C" fn kp_send_queued(p: *mut kp_producer_t) -> kp_err_t {
    guard(|| match usable(handle!(p)) {
        Ok(p) => {
            p.producer.send_queued();
            KP_OK
        }
        Err(e) => e.code,
    })
}

/// The error that put the producer in its fatal state (e.g. fenced, or
/// not authorized to be idempotent): returns its code and writes its message
/// to `errstr`, or returns KP_OK when the producer is healthy. Once fatal,
/// every queued record has been reported with that error and kp_send()
/// fails fast with KP_ERR_FATAL; destroy the producer and create a new one.
///
/// # Safety
/// `p` is NULL or a producer not yet destroyed; `errstr` is NULL or has
/// `errstr_size` writable bytes.
#[no_mangle]
pub unsafe extern "C" fn kp_producer_fatal_error(
    p: *const kp_producer_t,
    errstr: *mut c_char,
    errstr_size: usize,
) -> kp_err_t {
    guard(|| {
        let fatal = match usable(handle!(p)) {
            Ok(p) => p.producer.fatal_error(),
            Err(e) => Some(e),
        };
        match fatal {
            None => KP_OK,
            Some(e) => {
                set_errstr!(errstr, errstr_size, &e.message);
                e.code
            }
        }
    })
}

/// Purges records (`flags`: KP_PURGE_QUEUED and/or KP_PURGE_IN_FLIGHT).
/// Each purged record gets exactly one report, with KP_ERR_PURGED_QUEUED or
/// KP_ERR_PURGED_IN_FLIGHT; serve them with kp_poll() in poll mode. With
/// idempotence the producer bumps its epoch afterwards; inside a transaction
/// the transaction must then be aborted. Thread-safe.
///
/// # Safety
/// `p` is NULL or a producer not yet destroyed.
#[no_mangle]
pub unsafe extern "C" fn kp_purge(p: *mut kp_producer_t, flags: i32) -> kp_err_t {
    guard(|| match usable(handle!(p)) {
        Err(e) => e.code,
        Ok(_) if flags & !(KP_PURGE_QUEUED | KP_PURGE_IN_FLIGHT) != 0 => KP_ERR_INVALID_ARG,
        Ok(p) => {
            p.producer.purge(flags & KP_PURGE_QUEUED != 0, flags & KP_PURGE_IN_FLIGHT != 0);
            KP_OK
        }
    })
}

/// Number of records accepted but not yet reported. Thread-safe.
///
/// # Safety
/// `p` is NULL or a producer not yet destroyed.
#[no_mangle]
pub unsafe extern "C" fn kp_producer_outstanding(p: *const kp_producer_t) -> usize {
    guard(|| usable(handle!(p)).map(|p| p.producer.outstanding()).unwrap_or(0))
}

/// Closes the producer: no new records are accepted; queued records are sent
/// and the call waits up to `timeout_ms` for their reports. Records still
/// unreported at the timeout get a KP_ERR_CLOSED report; with `timeout_ms`
/// 0 nothing more is sent: queued records get KP_ERR_CLOSED at once (records
/// already on the wire may still be delivered). When it returns,
/// every accepted record has had exactly one report. Returns KP_OK, or
/// KP_ERR_TIMED_OUT when it had to fail records. Idempotent. Must not be
/// called from a delivery callback (then it returns KP_ERR_STATE at once).
/// In a child process after fork() it returns KP_ERR_FORKED. The handle stays valid
/// until kp_producer_destroy().
///
/// # Safety
/// `p` is NULL or a producer not yet destroyed.
#[no_mangle]
pub unsafe extern "C" fn kp_producer_close(p: *mut kp_producer_t, timeout_ms: i32) -> kp_err_t {
    guard(|| {
        let r = usable(handle!(p)).and_then(|p| {
            not_in_callback("kp_producer_close")?;
            p.producer.close(timeout(timeout_ms))
        });
        r.err().map_or(KP_OK, |e| e.code)
    })
}

/// Frees the producer. If it was not closed, it is closed with a zero
/// timeout first: queued records get a KP_ERR_CLOSED report (call
/// kp_producer_close() with a timeout first to deliver them). NULL is a
/// no-op. No other call may use the handle concurrently or afterwards.
/// In a child process after fork(), it returns at once: it frees the handle
/// but not the engine's state, which belongs to threads of the parent.
///
/// # Safety
/// `p` is NULL or a producer not yet destroyed, used by no other thread
/// during or after this call.
#[no_mangle]
pub unsafe extern "C" fn kp_producer_destroy(p: *mut kp_producer_t) {
    guard(|| {
        // SAFETY: this function's contract.
        let Some(b) = (unsafe { take_handle(p) }) else { return };
        if b.forked() {
            // In a fork() child the engine's threads do not exist and its
            // locks may be held forever: free the handle, leak the engine.
            let kp_producer_t { producer, .. } = *b;
            std::mem::forget(producer);
        } else {
            let _ = b.producer.close(Duration::ZERO);
        }
    })
}
