//! Delivery reports. Every accepted record carries a `Token`; its batch's
//! outcome is queued here and handed to the caller's callback on the delivery
//! thread or inside `poll` — never on the network I/O thread. Synchronous sends
//! are completed in place (no user code runs there).

use std::collections::VecDeque;
use std::ffi::{c_void, CString};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex, MutexGuard};

use crate::error::{self, Code, Error};
use crate::log::Log;

/// Whether the record may be in the log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(i32)]
pub enum Persistence {
    NotPersisted = 0,
    PossiblyPersisted = 1,
    Persisted = 2,
}

/// Topic name, kept once per topic (with a C copy for reports).
#[derive(Debug)]
pub struct TopicName {
    pub name: Arc<str>,
    pub cname: CString,
}

impl TopicName {
    pub fn new(name: &str) -> Arc<TopicName> {
        Arc::new(TopicName { name: Arc::from(name), cname: CString::new(name).unwrap_or_default() })
    }
}

/// Result slot for a synchronous send.
#[derive(Default)]
pub struct SyncSlot {
    result: Mutex<Option<SyncResult>>,
    cv: Condvar,
}

#[derive(Clone, Debug)]
pub struct SyncResult {
    pub partition: i32,
    pub offset: i64,
    pub timestamp: i64,
    pub error: Option<Arc<Error>>,
    pub persistence: Persistence,
}

impl SyncSlot {
    pub fn wait(&self, timeout: Duration) -> Option<SyncResult> {
        let deadline = Instant::now() + timeout;
        let mut g = self.result.lock();
        while g.is_none() {
            if self.cv.wait_until(&mut g, deadline).timed_out() {
                break;
            }
        }
        g.clone()
    }
}

/// A delivery report (opaque). Valid only during the callback that receives
/// it; read it with the kp_report_*() accessors.
// The handle C callbacks receive: a `ReportView` behind an opaque type. It
// lives here so `Token` can hold the callback with its real type; the FFI
// layer casts views to it and back (src/ffi/report.rs).
#[allow(non_camel_case_types)]
pub struct kp_report_t {
    _private: [u8; 0],
}

/// A delivery callback as the C caller gave it to kp_send().
pub type DeliveryFn = unsafe extern "C" fn(report: *const kp_report_t, ctx: *mut c_void);

/// What the caller asked to happen when the record completes. The engine
/// only stores the callback; the FFI layer's dispatch function calls it.
#[derive(Clone)]
pub enum Token {
    None,
    Callback {
        cb: DeliveryFn,
        ctx: usize,
    },
    /// No callback, only the caller's ctx: kp_poll_reports() hands it back.
    Ctx(usize),
    Sync(Arc<SyncSlot>),
    /// Already completed (sync slot filled).
    Done,
}

pub struct RecordMeta {
    pub token: Token,
    pub timestamp: i64,
}

/// The outcome of a batch (or of a single record that never reached a batch).
pub struct Outcome {
    pub topic: Arc<TopicName>,
    pub partition: i32,
    pub base_offset: i64,
    pub log_append_time: i64,
    pub error: Option<Arc<Error>>,
    pub error_cmsg: Option<CString>,
    pub persistence: Persistence,
    pub records: Vec<RecordMeta>,
}

impl Outcome {
    /// Splits off the records from `at` on as an outcome of their own (for
    /// a drain that stops inside a batch); offsets stay per record.
    fn split_off(&mut self, at: usize) -> Outcome {
        Outcome {
            topic: self.topic.clone(),
            partition: self.partition,
            base_offset: if self.base_offset >= 0 { self.base_offset + at as i64 } else { -1 },
            log_append_time: self.log_append_time,
            error: self.error.clone(),
            error_cmsg: self.error_cmsg.clone(),
            persistence: self.persistence,
            records: self.records.split_off(at),
        }
    }
}

/// What one delivery report shows (borrowed for the callback's duration).
pub struct ReportView<'a> {
    pub topic: &'a TopicName,
    pub partition: i32,
    pub offset: i64,
    pub timestamp: i64,
    pub error: Code,
    pub message: Option<&'a CString>,
    pub retriable: bool,
    pub persistence: Persistence,
}

pub type Dispatch = dyn Fn(&ReportView<'_>, &Token) + Send + Sync;

/// Queue of outcomes plus the count of accepted-but-unreported records.
pub struct ReportQueue {
    queue: Mutex<VecDeque<Outcome>>,
    cv: Condvar,
    outstanding: AtomicUsize,
    /// Records whose outcome was success / failure (counted per outcome).
    delivered: AtomicU64,
    failed: AtomicU64,
    done_lock: Mutex<()>,
    done_cv: Condvar,
    eventfd: i32,
    /// Set after each write to `eventfd`: an empty poll skips the read(2).
    eventfd_set: AtomicBool,
    shutting_down: AtomicBool,
    /// Log lines are delivered where reports are served (see crate::log).
    log: Log,
}

impl ReportQueue {
    /// `with_fd`: keep an eventfd that is readable while reports wait (poll
    /// mode, for kp_poll_fd). The delivery thread does not need one, and
    /// skipping it saves two syscalls per served batch.
    pub fn new(with_fd: bool) -> ReportQueue {
        // SAFETY: plain syscall; -1 on failure is handled (no fd readiness).
        let fd = if with_fd {
            unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) }
        } else {
            -1
        };
        ReportQueue {
            queue: Mutex::new(VecDeque::new()),
            cv: Condvar::new(),
            outstanding: AtomicUsize::new(0),
            delivered: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            done_lock: Mutex::new(()),
            done_cv: Condvar::new(),
            eventfd: fd,
            eventfd_set: AtomicBool::new(false),
            shutting_down: Default::default(),
            log: Log::default(),
        }
    }

    /// Serves `log`'s lines with the reports (a producer's queue).
    pub fn with_log(mut self, log: Log) -> ReportQueue {
        self.log = log;
        self
    }

    /// Wakes whoever serves the queue (log lines wait) and makes the poll
    /// fd readable.
    pub fn wake(&self) {
        drop(self.queue.lock());
        self.cv.notify_all();
        self.signal_eventfd();
    }

    fn signal_eventfd(&self) {
        if self.eventfd >= 0 {
            let one: u64 = 1;
            // SAFETY: eventfd is open for the queue's lifetime; 8-byte write.
            unsafe { libc::write(self.eventfd, &one as *const u64 as *const libc::c_void, 8) };
            self.eventfd_set.store(true, Ordering::Release);
        }
    }

    /// Waits until reports are queued (true) or `deadline` (false; at
    /// once for a zero timeout), delivering log lines meanwhile.
    fn wait_for_reports(
        &self,
        q: &mut MutexGuard<'_, VecDeque<Outcome>>,
        timeout: Duration,
        deadline: Instant,
    ) {
        while q.is_empty() {
            if self.log.waiting() {
                MutexGuard::unlocked(q, || self.log.deliver());
                continue;
            }
            if timeout.is_zero() || self.cv.wait_until(q, deadline).timed_out() {
                break;
            }
        }
    }

    pub fn fd(&self) -> i32 {
        self.eventfd
    }

    pub fn accepted(&self) {
        self.outstanding.fetch_add(1, Ordering::AcqRel);
    }

    pub fn outstanding(&self) -> usize {
        self.outstanding.load(Ordering::Acquire)
    }

    /// Records reported so far: (delivered, failed), counted when the
    /// outcome is known (before its callbacks run).
    pub fn reported(&self) -> (u64, u64) {
        (self.delivered.load(Ordering::Relaxed), self.failed.load(Ordering::Relaxed))
    }

    fn finished(&self, n: usize) {
        if n == 0 {
            return;
        }
        let before = self.outstanding.fetch_sub(n, Ordering::AcqRel);
        if before == n {
            let _g = self.done_lock.lock();
            self.done_cv.notify_all();
        }
    }

    /// Queues a batch outcome; sync records are completed here and now.
    pub fn complete(&self, mut o: Outcome) {
        if o.records.is_empty() {
            return;
        }
        let counter = if o.error.is_none() { &self.delivered } else { &self.failed };
        counter.fetch_add(o.records.len() as u64, Ordering::Relaxed);
        let mut synced = 0;
        for (i, r) in o.records.iter_mut().enumerate() {
            if let Token::Sync(slot) = &r.token {
                let res = SyncResult {
                    partition: o.partition,
                    offset: if o.base_offset >= 0 { o.base_offset + i as i64 } else { -1 },
                    timestamp: if o.log_append_time >= 0 { o.log_append_time } else { r.timestamp },
                    error: o.error.clone(),
                    persistence: o.persistence,
                };
                *slot.result.lock() = Some(res);
                slot.cv.notify_all();
                r.token = Token::Done;
                synced += 1;
            }
        }
        if synced == o.records.len() {
            self.finished(synced);
            return;
        }
        if synced > 0 {
            self.finished(synced);
        }
        let was_empty;
        {
            let mut q = self.queue.lock();
            was_empty = q.is_empty();
            q.push_back(o);
        }
        self.cv.notify_one();
        if was_empty {
            self.signal_eventfd();
        }
    }

    /// Builds the outcome for records that failed before or without a batch.
    pub fn fail(
        &self,
        topic: Arc<TopicName>,
        partition: i32,
        err: Arc<Error>,
        persistence: Persistence,
        records: Vec<RecordMeta>,
    ) {
        let cmsg = CString::new(err.message.replace('\0', " ")).ok();
        self.complete(Outcome {
            topic,
            partition,
            base_offset: -1,
            log_append_time: -1,
            error: Some(err),
            error_cmsg: cmsg,
            persistence,
            records,
        });
    }

    /// Reads only when something was written since the last read: writers set
    /// `eventfd_set` after writing and this clears it before reading, so every
    /// write is followed by a set flag that makes this or a later call read it.
    fn clear_eventfd(&self) {
        if self.eventfd >= 0 && self.eventfd_set.swap(false, Ordering::AcqRel) {
            let mut v: u64 = 0;
            // SAFETY: non-blocking read of 8 bytes into a local.
            unsafe { libc::read(self.eventfd, &mut v as *mut u64 as *mut libc::c_void, 8) };
        }
    }

    /// Serves queued reports on the calling thread, waiting up to `timeout`
    /// for the first one. Returns the number of reports served.
    pub fn serve(&self, dispatch: &Dispatch, timeout: Duration) -> usize {
        let deadline = Instant::now() + timeout;
        let batch: Vec<Outcome> = {
            let mut q = self.queue.lock();
            self.wait_for_reports(&mut q, timeout, deadline);
            let v = q.drain(..).collect();
            self.clear_eventfd();
            v
        };
        self.log.deliver();
        let mut served = 0;
        for o in batch {
            served += self.dispatch_outcome(&mut |v, t| dispatch(v, t), o);
        }
        served
    }

    /// Hands up to `max` queued reports to `f` on the calling thread, waiting
    /// up to `timeout` for the first (poll mode's batched drain). Reports
    /// past `max` stay queued, in order, for the next call; concurrent
    /// callers never see the same report. Returns how many `f` received.
    pub fn drain(
        &self,
        max: usize,
        timeout: Duration,
        f: &mut dyn FnMut(&ReportView<'_>, &Token),
    ) -> usize {
        if max == 0 {
            return 0;
        }
        let deadline = Instant::now() + timeout;
        let mut batch = Vec::new();
        {
            let mut q = self.queue.lock();
            self.wait_for_reports(&mut q, timeout, deadline);
            let mut budget = max;
            while budget > 0 {
                let Some(mut o) = q.pop_front() else { break };
                let mut live = 0;
                let cut = o
                    .records
                    .iter()
                    .position(|r| {
                        live += usize::from(!matches!(r.token, Token::Done));
                        live > budget
                    })
                    .unwrap_or(o.records.len());
                if cut < o.records.len() {
                    q.push_front(o.split_off(cut));
                }
                budget -= o.records.iter().filter(|r| !matches!(r.token, Token::Done)).count();
                batch.push(o);
            }
            if q.is_empty() {
                self.clear_eventfd();
            }
        }
        self.log.deliver();
        batch.into_iter().map(|o| self.dispatch_outcome(f, o)).sum()
    }

    fn dispatch_outcome(
        &self,
        dispatch: &mut dyn FnMut(&ReportView<'_>, &Token),
        o: Outcome,
    ) -> usize {
        let code = o.error.as_ref().map(|e| e.code).unwrap_or(error::OK);
        let retriable = o.error.as_ref().map(|e| e.retriable()).unwrap_or(false);
        let mut n = 0;
        for (i, r) in o.records.iter().enumerate() {
            if matches!(r.token, Token::Done) {
                continue;
            }
            let view = ReportView {
                topic: &o.topic,
                partition: o.partition,
                offset: if o.base_offset >= 0 { o.base_offset + i as i64 } else { -1 },
                timestamp: if o.log_append_time >= 0 { o.log_append_time } else { r.timestamp },
                error: code,
                message: o.error_cmsg.as_ref(),
                retriable,
                persistence: o.persistence,
            };
            // A panicking callback must not take the delivery thread down.
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                dispatch(&view, &r.token)
            }));
            n += 1;
        }
        self.finished(n);
        n
    }

    /// Waits until every accepted record has been reported, or the timeout.
    /// With `serve` the calling thread dispatches reports itself meanwhile.
    pub fn wait_all_done(&self, timeout: Duration, serve: Option<&Dispatch>) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if self.outstanding() == 0 {
                return true;
            }
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            match serve {
                Some(d) => {
                    self.serve(d, (deadline - now).min(Duration::from_millis(100)));
                }
                None => {
                    let mut g = self.done_lock.lock();
                    if self.outstanding() == 0 {
                        return true;
                    }
                    let _ = self
                        .done_cv
                        .wait_until(&mut g, deadline.min(now + Duration::from_millis(100)));
                }
            }
        }
    }

    /// The delivery thread's loop (thread mode).
    pub fn run_delivery_thread(&self, dispatch: &Dispatch) {
        loop {
            self.serve(dispatch, Duration::from_millis(100));
            if self.shutting_down.load(Ordering::Acquire) {
                let empty = self.queue.lock().is_empty();
                if empty {
                    self.log.deliver();
                    return;
                }
            }
        }
    }

    pub fn stop_delivery_thread(&self) {
        self.shutting_down.store(true, Ordering::Release);
        let _q = self.queue.lock();
        self.cv.notify_all();
    }
}

impl Drop for ReportQueue {
    fn drop(&mut self) {
        if self.eventfd >= 0 {
            // SAFETY: we own the fd.
            unsafe { libc::close(self.eventfd) };
        }
    }
}

#[cfg(test)]
#[path = "report_tests.rs"]
mod tests;
