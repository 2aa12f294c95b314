//! Report dispatch: every record of an outcome is reported once, with its
//! own offset and timestamp; sync records complete in place; a panicking
//! callback does not stop the others; the eventfd and the delivery thread.

use std::sync::atomic::AtomicUsize;

use super::*;

/// What a test callback saw: (token id, partition, offset, timestamp, code, persistence).
type Seen = Arc<Mutex<Vec<(usize, i32, i64, i64, Code, Persistence)>>>;

fn recorder() -> (Seen, Box<Dispatch>) {
    let seen: Seen = Arc::default();
    let s = seen.clone();
    let d: Box<Dispatch> = Box::new(move |v: &ReportView<'_>, t: &Token| {
        let Token::Callback { ctx, .. } = t else { panic!("only callback tokens are dispatched") };
        s.lock().push((*ctx, v.partition, v.offset, v.timestamp, v.error, v.persistence));
    });
    (seen, d)
}

/// The recorder dispatch reads the ctx itself; the callback is never called.
unsafe extern "C" fn never_called(_: *const kp_report_t, _: *mut std::ffi::c_void) {}

fn cb(id: usize) -> RecordMeta {
    RecordMeta { token: Token::Callback { cb: never_called, ctx: id }, timestamp: 1000 + id as i64 }
}

fn outcome(records: Vec<RecordMeta>, base_offset: i64, log_append_time: i64) -> Outcome {
    Outcome {
        topic: TopicName::new("t"),
        partition: 3,
        base_offset,
        log_append_time,
        error: None,
        error_cmsg: None,
        persistence: Persistence::Persisted,
        records,
    }
}

fn accept(q: &ReportQueue, n: usize) {
    for _ in 0..n {
        q.accepted();
    }
}

#[test]
fn each_record_gets_its_offset_and_timestamp() {
    let q = ReportQueue::new(false);
    let (seen, d) = recorder();
    accept(&q, 3);
    q.complete(outcome(vec![cb(0), cb(1), cb(2)], 40, -1));
    assert_eq!(q.outstanding(), 3, "not reported until served");
    assert_eq!(q.serve(&*d, Duration::ZERO), 3);
    assert_eq!(q.outstanding(), 0);
    assert_eq!(q.reported(), (3, 0));
    let got = seen.lock().clone();
    assert_eq!(
        got,
        vec![
            (0, 3, 40, 1000, error::OK, Persistence::Persisted),
            (1, 3, 41, 1001, error::OK, Persistence::Persisted),
            (2, 3, 42, 1002, error::OK, Persistence::Persisted),
        ]
    );
    // LogAppendTime replaces every record's own timestamp.
    accept(&q, 1);
    q.complete(outcome(vec![cb(9)], 7, 5555));
    q.serve(&*d, Duration::ZERO);
    assert_eq!(seen.lock().last().unwrap().3, 5555);
    assert_eq!(q.serve(&*d, Duration::ZERO), 0, "nothing twice");
}

#[test]
fn failures_carry_code_and_no_offset() {
    let q = ReportQueue::new(false);
    accept(&q, 2);
    let err = Arc::new(Error::new(error::REQUEST_TIMED_OUT, "slow\0broker"));
    type Failure = (i64, Code, bool, String, Persistence);
    let seen: Arc<Mutex<Vec<Failure>>> = Arc::default();
    let s = seen.clone();
    let d: Box<Dispatch> = Box::new(move |v: &ReportView<'_>, _t: &Token| {
        let msg = v.message.map(|m| m.to_string_lossy().into_owned()).unwrap_or_default();
        s.lock().push((v.offset, v.error, v.retriable, msg, v.persistence));
    });
    q.fail(TopicName::new("t"), -1, err, Persistence::PossiblyPersisted, vec![cb(0), cb(1)]);
    assert_eq!(q.serve(&*d, Duration::ZERO), 2);
    assert_eq!(q.reported(), (0, 2));
    for (offset, code, retriable, msg, p) in seen.lock().iter() {
        assert_eq!(*offset, -1);
        assert_eq!(*code, error::REQUEST_TIMED_OUT);
        assert!(*retriable);
        assert_eq!(msg, "slow broker", "NUL replaced for C");
        assert_eq!(*p, Persistence::PossiblyPersisted);
    }
}

#[test]
fn sync_records_complete_in_place_and_are_not_dispatched() {
    let q = ReportQueue::new(false);
    let (seen, d) = recorder();
    let slot = Arc::new(SyncSlot::default());
    accept(&q, 3);
    let sync = RecordMeta { token: Token::Sync(slot.clone()), timestamp: 77 };
    q.complete(outcome(vec![cb(0), sync, cb(2)], 10, -1));
    let r = slot.wait(Duration::ZERO).expect("filled by complete, before any serve");
    assert_eq!((r.partition, r.offset, r.timestamp), (3, 11, 77));
    assert!(r.error.is_none());
    assert_eq!(q.outstanding(), 2, "the sync record is done");
    assert_eq!(q.serve(&*d, Duration::ZERO), 2);
    let ids: Vec<usize> = seen.lock().iter().map(|s| s.0).collect();
    assert_eq!(ids, vec![0, 2]);
    assert_eq!(q.outstanding(), 0);
    // An all-sync outcome is never queued.
    let slot = Arc::new(SyncSlot::default());
    accept(&q, 1);
    q.complete(outcome(vec![RecordMeta { token: Token::Sync(slot.clone()), timestamp: 1 }], 5, -1));
    assert_eq!(q.outstanding(), 0);
    assert_eq!(q.serve(&*d, Duration::ZERO), 0);
    assert_eq!(slot.wait(Duration::ZERO).unwrap().offset, 5);
}

#[test]
fn a_panicking_callback_does_not_stop_the_others() {
    let q = ReportQueue::new(false);
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    let d: Box<Dispatch> = Box::new(move |_v: &ReportView<'_>, t: &Token| {
        c.fetch_add(1, Ordering::Relaxed);
        if matches!(t, Token::Callback { ctx: 1, .. }) {
            panic!("callback failure");
        }
    });
    accept(&q, 3);
    q.complete(outcome(vec![cb(0), cb(1), cb(2)], 0, -1));
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let served = q.serve(&*d, Duration::ZERO);
    std::panic::set_hook(hook);
    assert_eq!(served, 3);
    assert_eq!(calls.load(Ordering::Relaxed), 3);
    assert_eq!(q.outstanding(), 0);
}

#[test]
fn eventfd_is_readable_while_reports_wait() {
    let q = ReportQueue::new(true);
    let fd = q.fd();
    assert!(fd >= 0);
    let readable = || {
        let mut p = libc::pollfd { fd, events: libc::POLLIN, revents: 0 };
        // SAFETY: one valid pollfd, zero timeout.
        unsafe { libc::poll(&mut p, 1, 0) == 1 }
    };
    assert!(!readable());
    accept(&q, 1);
    q.complete(outcome(vec![cb(0)], 0, -1));
    assert!(readable());
    let (_, d) = recorder();
    q.serve(&*d, Duration::ZERO);
    assert!(!readable(), "cleared once served");
    q.serve(&*d, Duration::ZERO);
    assert!(!readable(), "an empty poll leaves it clear");
    q.wake();
    assert!(readable(), "readable again when woken (log lines wait)");
    q.serve(&*d, Duration::ZERO);
    assert!(!readable(), "cleared by the next poll");
    assert_eq!(ReportQueue::new(false).fd(), -1, "thread mode needs no fd");
}

#[test]
fn delivery_thread_serves_and_drains_before_stopping() {
    let q = Arc::new(ReportQueue::new(false));
    let (seen, d) = recorder();
    let d: Arc<Dispatch> = Arc::from(d);
    let (q2, d2) = (q.clone(), d.clone());
    let t = std::thread::spawn(move || q2.run_delivery_thread(&*d2));
    accept(&q, 2);
    q.complete(outcome(vec![cb(0)], 0, -1));
    // The running thread serves it (no one else does).
    let deadline = Instant::now() + Duration::from_secs(5);
    while q.outstanding() != 1 {
        assert!(Instant::now() < deadline, "the delivery thread served nothing");
        std::thread::sleep(Duration::from_millis(1));
    }
    q.complete(outcome(vec![cb(1)], 1, -1));
    q.stop_delivery_thread();
    t.join().expect("delivery thread");
    assert_eq!(q.outstanding(), 0, "everything queued before stop was served");
    assert_eq!(seen.lock().len(), 2);
    assert!(q.wait_all_done(Duration::from_millis(10), None));
}

#[test]
fn wait_all_done_serves_on_the_calling_thread_in_poll_mode() {
    let q = ReportQueue::new(true);
    let (seen, d) = recorder();
    accept(&q, 1);
    assert!(!q.wait_all_done(Duration::from_millis(20), Some(&*d)), "times out");
    q.complete(outcome(vec![cb(0)], 0, -1));
    assert!(q.wait_all_done(Duration::from_secs(5), Some(&*d)));
    assert_eq!(seen.lock().len(), 1);
}

#[test]
fn drain_stops_inside_a_batch_and_keeps_offsets_and_order() {
    let q = ReportQueue::new(true);
    for _ in 0..13 {
        q.accepted();
    }
    // A sync record in the middle is completed at once, never drained.
    let mut first: Vec<RecordMeta> = (0..10).map(cb).collect();
    first[4].token = Token::Sync(Arc::default());
    q.complete(outcome(first, 100, -1));
    q.complete(outcome((10..13).map(cb).collect(), 500, -1));
    let mut seen = Vec::new();
    let mut take = |max| {
        q.drain(max, Duration::ZERO, &mut |v, t| {
            let Token::Callback { ctx, .. } = t else { panic!("only callbacks are drained") };
            seen.push((*ctx, v.offset));
        })
    };
    assert_eq!(take(3), 3);
    assert_eq!(take(3), 3, "the sync record is skipped, not counted");
    assert_eq!(take(100), 6);
    assert_eq!(take(100), 0);
    let want: Vec<(usize, i64)> = [0, 1, 2, 3, 5, 6, 7, 8, 9]
        .iter()
        .map(|&i| (i, 100 + i as i64))
        .chain((10..13).map(|i| (i, 500 + i as i64 - 10)))
        .collect();
    assert_eq!(seen, want);
    assert_eq!(q.outstanding(), 0);
}
