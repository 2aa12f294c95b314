//! Logging: what the producer tells the application about itself
//! (connections, metadata changes, retries, epoch bumps, fatal errors,
//! transaction states, caught panics), handed to the callback registered
//! with kp_config_set_log_callback(). kp never writes to stdout/stderr.
//!
//! - Levels are syslog's (0 emerg .. 7 debug); `log_level` (default 6)
//!   drops what is less severe. Debug lines belong to a context (`debug`
//!   config: broker, protocol, metadata, producer, txn, security, all) and
//!   only the enabled contexts are logged; setting `debug` raises the level
//!   to 7, as in librdkafka.
//! - Call sites use [`kp_log!`]: one branch on a plain field when the line
//!   is filtered out (nothing is formatted), and nothing of it runs per
//!   record.
//! - Lines are queued (at most [`QUEUE_LINES`]; beyond that they are
//!   counted and the count is logged) and delivered off the I/O thread: by
//!   the delivery thread (delivery.report.mode=thread) or inside
//!   kp_poll()/kp_poll_reports()/kp_flush()/close on the caller's thread
//!   (poll mode). The report queue calls [`Log::deliver`].
//! - The same line again within [`REPEAT_WINDOW`] is counted, not queued;
//!   its next occurrence after the window says "repeated N times".

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};
use std::ffi::{CStr, CString};
use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

pub const EMERG: i32 = 0;
pub const ALERT: i32 = 1;
pub const CRIT: i32 = 2;
pub const ERR: i32 = 3;
pub const WARNING: i32 = 4;
pub const NOTICE: i32 = 5;
pub const INFO: i32 = 6;
pub const DEBUG: i32 = 7;

/// Lines waiting for delivery, at most (more are dropped and counted).
pub const QUEUE_LINES: usize = 1000;
/// An identical line within this window is counted instead of logged.
pub const REPEAT_WINDOW: Duration = Duration::from_secs(30);
/// Distinct recent lines remembered for the repeat check, at most.
const REPEAT_KEYS: usize = 256;

/// A log context: the facility of a line and what `debug` enables.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ctx(u8, &'static CStr);

impl Ctx {
    pub const BROKER: Ctx = Ctx(1, c"broker");
    pub const PROTOCOL: Ctx = Ctx(2, c"protocol");
    pub const METADATA: Ctx = Ctx(4, c"metadata");
    pub const PRODUCER: Ctx = Ctx(8, c"producer");
    pub const TXN: Ctx = Ctx(16, c"txn");
    pub const SECURITY: Ctx = Ctx(32, c"security");
    const ALL: [Ctx; 6] =
        [Ctx::BROKER, Ctx::PROTOCOL, Ctx::METADATA, Ctx::PRODUCER, Ctx::TXN, Ctx::SECURITY];

    pub fn name(self) -> &'static str {
        self.1.to_str().unwrap_or("")
    }
}

/// The `debug` setting as a bit mask: a comma-separated list of contexts
/// (case-insensitive; "all" is every one; empty is none).
pub fn parse_debug(s: &str) -> Result<u8, String> {
    let mut mask = 0;
    for word in s.split(',').map(str::trim).filter(|w| !w.is_empty()) {
        let w = word.to_ascii_lowercase();
        mask |= match Ctx::ALL.iter().find(|c| c.name() == w) {
            Some(c) => c.0,
            None if w == "all" => 0x3f,
            None => {
                return Err(format!(
                    "\"debug\" contexts are broker, protocol, metadata, producer, txn, security and all; got \"{word}\""
                ))
            }
        };
    }
    Ok(mask)
}

/// Which lines are logged: `log_level` and the `debug` contexts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Filter {
    pub level: i32,
    pub debug: u8,
}

impl Default for Filter {
    fn default() -> Filter {
        Filter { level: INFO, debug: 0 }
    }
}

/// The application's log function: (level, facility, message).
pub type LogFn = dyn Fn(i32, &CStr, &CStr) + Send + Sync;

/// A producer's logger; cheap to clone. The default logs nothing.
#[derive(Clone)]
pub struct Log {
    /// Most verbose level logged (-1: nothing, when there is no callback).
    max: i32,
    debug: u8,
    shared: Option<Arc<Shared>>,
}

impl Default for Log {
    fn default() -> Log {
        Log { max: -1, debug: 0, shared: None }
    }
}

impl fmt::Debug for Log {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Log").field("max", &self.max).field("debug", &self.debug).finish()
    }
}

struct Line {
    level: i32,
    facility: &'static CStr,
    message: CString,
}

#[derive(Default)]
struct Queue {
    lines: VecDeque<Line>,
    dropped: u64,
    /// Recent lines (by hash): when first logged, and repeats since.
    recent: HashMap<u64, (Instant, u32)>,
}

struct Shared {
    callback: Box<LogFn>,
    queue: Mutex<Queue>,
    /// Lines wait in the queue.
    waiting: AtomicBool,
    /// Held while lines are handed to the callback (one thread at a time,
    /// in order).
    delivering: Mutex<()>,
    /// Wakes whoever delivers (the delivery thread or kp_poll_fd).
    wake: OnceLock<Box<dyn Fn() + Send + Sync>>,
}

thread_local! {
    /// Whether this thread is running the log callback.
    static IN_LOG_CALLBACK: Cell<bool> = const { Cell::new(false) };
    /// The producer log of a kp-owned thread (I/O, delivery).
    static THREAD_LOG: RefCell<Option<Log>> = const { RefCell::new(None) };
}

impl Log {
    /// A logger calling `callback` for the lines `filter` lets through.
    pub fn new(filter: Filter, callback: Box<LogFn>) -> Log {
        Log {
            max: if filter.debug != 0 { DEBUG } else { filter.level },
            debug: filter.debug,
            shared: Some(Arc::new(Shared {
                callback,
                queue: Mutex::default(),
                waiting: AtomicBool::new(false),
                delivering: Mutex::new(()),
                wake: OnceLock::new(),
            })),
        }
    }

    /// Whether a line of this level and context would be logged (no
    /// callback: never).
    #[inline]
    pub fn enabled(&self, level: i32, ctx: Ctx) -> bool {
        level <= self.max && (level < DEBUG || self.debug & ctx.0 != 0)
    }

    /// Queues a line (call through [`kp_log!`], which checks `enabled`).
    #[cold]
    pub fn write(&self, level: i32, ctx: Ctx, args: fmt::Arguments<'_>) {
        self.push(level, ctx, args.to_string(), Instant::now(), false);
    }

    /// Queues a line from the panic hook: never blocks (the panic may have
    /// happened while the queue was locked).
    pub fn write_from_panic(&self, message: String) {
        if self.enabled(CRIT, Ctx::PRODUCER) {
            self.push(CRIT, Ctx::PRODUCER, message, Instant::now(), true);
        }
    }

    fn push(&self, level: i32, ctx: Ctx, mut message: String, now: Instant, no_wait: bool) {
        let Some(s) = &self.shared else { return };
        let Some(mut q) = (if no_wait { s.queue.try_lock() } else { Some(s.queue.lock()) }) else {
            return;
        };
        let key = {
            let mut h = std::collections::hash_map::DefaultHasher::new();
            (level, ctx.0, &message).hash(&mut h);
            h.finish()
        };
        match q.recent.get_mut(&key) {
            Some((since, n)) if now.duration_since(*since) < REPEAT_WINDOW => {
                *n += 1;
                return;
            }
            Some((since, n)) => {
                if *n > 0 {
                    let secs = now.duration_since(*since).as_secs();
                    message.push_str(&format!(" (repeated {n} times in the last {secs} s)"));
                }
                *since = now;
                *n = 0;
            }
            None => {
                if q.recent.len() >= REPEAT_KEYS {
                    q.recent.retain(|_, (since, _)| now.duration_since(*since) < REPEAT_WINDOW);
                    if q.recent.len() >= REPEAT_KEYS {
                        q.recent.clear();
                    }
                }
                q.recent.insert(key, (now, 0));
            }
        }
        if q.lines.len() >= QUEUE_LINES {
            q.dropped += 1;
            return;
        }
        let message = CString::new(message.replace('\0', " ")).unwrap_or_default();
        q.lines.push_back(Line { level, facility: ctx.1, message });
        drop(q);
        if !s.waiting.swap(true, Ordering::AcqRel) {
            if let Some(w) = s.wake.get() {
                w();
            }
        }
    }

    /// Sets what wakes the thread that delivers lines (once).
    pub fn set_waker(&self, wake: impl Fn() + Send + Sync + 'static) {
        if let Some(s) = &self.shared {
            let _ = s.wake.set(Box::new(wake));
        }
    }

    /// Whether lines wait for [`Log::deliver`] (false inside the log
    /// callback itself, which cannot deliver).
    pub fn waiting(&self) -> bool {
        self.shared.as_ref().is_some_and(|s| s.waiting.load(Ordering::Acquire))
            && !IN_LOG_CALLBACK.with(Cell::get)
    }

    /// Hands every waiting line to the callback on this thread, in order.
    /// Does nothing inside the log callback (no re-entry).
    pub fn deliver(&self) {
        let Some(s) = &self.shared else { return };
        if IN_LOG_CALLBACK.with(Cell::get) {
            return;
        }
        let _one_at_a_time = s.delivering.lock();
        IN_LOG_CALLBACK.with(|c| c.set(true));
        loop {
            let (lines, dropped) = {
                let mut q = s.queue.lock();
                s.waiting.store(false, Ordering::Release);
                (std::mem::take(&mut q.lines), std::mem::take(&mut q.dropped))
            };
            if lines.is_empty() && dropped == 0 {
                break;
            }
            if dropped > 0 {
                let m = format!("{dropped} log line(s) dropped: more than {QUEUE_LINES} waited");
                let m = CString::new(m).unwrap_or_default();
                self.call(s, WARNING, Ctx::PRODUCER.1, &m);
            }
            for l in &lines {
                self.call(s, l.level, l.facility, &l.message);
            }
        }
        IN_LOG_CALLBACK.with(|c| c.set(false));
    }

    fn call(&self, s: &Shared, level: i32, facility: &CStr, message: &CStr) {
        // The callback is the application's (it cannot unwind into kp: a
        // C function; a Rust closure that panics is contained here).
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            (s.callback)(level, facility, message)
        }));
    }

    /// Marks the calling thread as kp's own (I/O or delivery thread) for
    /// this producer: a panic on it is logged here, never printed.
    pub fn enter_kp_thread(&self) {
        let log = self.clone();
        THREAD_LOG.with(|t| *t.borrow_mut() = Some(log));
    }
}

/// The producer log of the calling thread when it is one of kp's own
/// (None on the application's threads).
pub fn kp_thread_log() -> Option<Log> {
    THREAD_LOG.try_with(|t| t.try_borrow().ok().and_then(|l| l.clone())).ok().flatten()
}

/// Logs a line when its level and context are enabled; the arguments are
/// formatted only then.
/// `kp_log!(log, WARNING, BROKER, "connect to {} failed: {}", addr, e)`
macro_rules! kp_log {
    ($log:expr, $level:ident, $ctx:ident, $($arg:tt)+) => {{
        let log: &$crate::log::Log = &$log;
        if log.enabled($crate::log::$level, $crate::log::Ctx::$ctx) {
            log.write($crate::log::$level, $crate::log::Ctx::$ctx, format_args!($($arg)+));
        }
    }};
}
pub(crate) use kp_log;

#[cfg(test)]
mod tests {
    use super::*;

    type Seen = Arc<Mutex<Vec<(i32, String, String)>>>;

    fn logger(filter: Filter) -> (Log, Seen) {
        let seen: Seen = Arc::default();
        let s = seen.clone();
        let log = Log::new(
            filter,
            Box::new(move |level, f, m| {
                s.lock().push((
                    level,
                    f.to_string_lossy().into_owned(),
                    m.to_string_lossy().into_owned(),
                ))
            }),
        );
        (log, seen)
    }

    #[test]
    fn levels_and_debug_contexts_filter_lines() {
        let (log, seen) = logger(Filter { level: WARNING, debug: 0 });
        kp_log!(log, ERR, BROKER, "err {}", 1);
        kp_log!(log, WARNING, METADATA, "warning");
        kp_log!(log, INFO, BROKER, "info is below log_level 4");
        kp_log!(log, DEBUG, BROKER, "debug needs a context");
        log.deliver();
        let got = seen.lock().clone();
        assert_eq!(
            got,
            vec![
                (ERR, "broker".into(), "err 1".into()),
                (WARNING, "metadata".into(), "warning".into())
            ]
        );
        let (log, seen) = logger(Filter { level: ERR, debug: parse_debug("txn, Broker").unwrap() });
        kp_log!(log, DEBUG, BROKER, "b");
        kp_log!(log, DEBUG, TXN, "t");
        kp_log!(log, DEBUG, METADATA, "m is not enabled");
        kp_log!(log, INFO, METADATA, "debug raises the level to 7");
        log.deliver();
        let msgs: Vec<String> = seen.lock().iter().map(|l| l.2.clone()).collect();
        assert_eq!(msgs, ["b", "t", "debug raises the level to 7"]);
        assert_eq!(parse_debug("all").unwrap(), 0x3f);
        assert_eq!(parse_debug("").unwrap(), 0);
        assert!(parse_debug("broker,cgrp").unwrap_err().contains("\"cgrp\""));
    }

    #[test]
    fn no_callback_logs_nothing_and_formats_nothing() {
        let log = Log::default();
        struct Boom;
        impl fmt::Display for Boom {
            fn fmt(&self, _: &mut fmt::Formatter<'_>) -> fmt::Result {
                panic!("formatted although nothing logs")
            }
        }
        kp_log!(log, EMERG, BROKER, "{}", Boom);
        assert!(!log.waiting());
        log.deliver();
    }

    #[test]
    fn repeats_within_the_window_are_counted_then_reported() {
        let (log, seen) = logger(Filter::default());
        let t0 = Instant::now();
        for i in 0..5 {
            log.push(
                WARNING,
                Ctx::BROKER,
                "connect failed".into(),
                t0 + Duration::from_secs(i),
                false,
            );
        }
        log.push(WARNING, Ctx::BROKER, "another line".into(), t0, false);
        log.push(WARNING, Ctx::BROKER, "connect failed".into(), t0 + REPEAT_WINDOW, false);
        log.push(WARNING, Ctx::BROKER, "connect failed".into(), t0 + REPEAT_WINDOW * 2, false);
        log.deliver();
        let msgs: Vec<String> = seen.lock().iter().map(|l| l.2.clone()).collect();
        assert_eq!(
            msgs,
            [
                "connect failed",
                "another line",
                "connect failed (repeated 4 times in the last 30 s)",
                "connect failed"
            ]
        );
    }

    #[test]
    fn the_queue_is_bounded_and_says_how_many_lines_it_dropped() {
        let (log, seen) = logger(Filter::default());
        let woken = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let w = woken.clone();
        log.set_waker(move || {
            w.fetch_add(1, Ordering::Relaxed);
        });
        for i in 0..QUEUE_LINES + 7 {
            kp_log!(log, INFO, PRODUCER, "line {i}");
        }
        assert_eq!(woken.load(Ordering::Relaxed), 1, "woken once, when the first line came");
        assert!(log.waiting());
        log.deliver();
        assert!(!log.waiting());
        let got = seen.lock().clone();
        assert_eq!(got.len(), QUEUE_LINES + 1);
        assert_eq!(got[0].0, WARNING);
        assert!(got[0].2.starts_with("7 log line(s) dropped"), "{}", got[0].2);
        assert_eq!(got[1].2, "line 0");
        kp_log!(log, INFO, PRODUCER, "after delivery");
        assert_eq!(woken.load(Ordering::Relaxed), 2);
    }

    #[test]
    fn the_callback_cannot_reenter_delivery() {
        let cell: Arc<OnceLock<Log>> = Arc::default();
        let c = cell.clone();
        let count = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let n = count.clone();
        let log = Log::new(
            Filter::default(),
            Box::new(move |_, _, _| {
                n.fetch_add(1, Ordering::Relaxed);
                let log = c.get().unwrap();
                kp_log!(log, INFO, PRODUCER, "from the callback");
                assert!(!log.waiting(), "inside the callback nothing waits for it");
                log.deliver();
            }),
        );
        let _ = cell.set(log.clone());
        kp_log!(log, INFO, PRODUCER, "first");
        log.deliver();
        assert_eq!(count.load(Ordering::Relaxed), 2, "the line logged by the callback came next");
    }
}
