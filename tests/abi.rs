//! The binding-oriented ABI (batch send, batched report drain, error
//! classes, calls from inside a delivery callback) against a real Apache
//! Kafka cluster (started by scripts/test.sh, or KP_BOOTSTRAP); what kp
//! wrote is read back by confluent-kafka (tests/verify/consume.py).

mod common;

use std::collections::{HashMap, HashSet};
use std::ffi::{c_void, CStr, CString};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::*;
use kp::ffi::*;

fn rf() -> u32 {
    testbed_nodes().unwrap_or(3).min(3)
}

/// What a callback saw: (ctx, error, error class, partition, offset).
type Seen = (usize, i32, i32, i32, i64);

/// Reports of every test, told apart by their ctx ranges.
static SEEN: Mutex<Vec<Seen>> = Mutex::new(Vec::new());

unsafe extern "C" fn record_cb(r: *const kp_report_t, ctx: *mut c_void) {
    let seen = (
        ctx as usize,
        kp_report_error(r),
        kp_report_error_class(r),
        kp_report_partition(r),
        kp_report_offset(r),
    );
    SEEN.lock().unwrap().push(seen);
}

fn seen_in(range: std::ops::Range<usize>) -> Vec<Seen> {
    SEEN.lock().unwrap().iter().filter(|s| range.contains(&s.0)).copied().collect()
}

/// Headers as the consumer reports them: (key, value).
type Headers = Vec<(String, Option<Vec<u8>>)>;

/// Owned storage for C records (the strings and headers they point to).
struct Batch {
    topics: Vec<CString>,
    keys: Vec<Vec<u8>>,
    values: Vec<Vec<u8>>,
    header_keys: Vec<[CString; 2]>,
    header_values: Vec<[Vec<u8>; 2]>,
    headers: Vec<[kp_header_t; 2]>,
    records: Vec<kp_record_t>,
}

impl Batch {
    /// `n` records with a key, a value and two headers each (the second
    /// header's value NULL on odd records).
    fn new(topics: &[&str], n: usize, value_len: usize) -> Batch {
        let mut b = Batch {
            topics: topics.iter().map(|t| CString::new(*t).unwrap()).collect(),
            keys: (0..n).map(|i| format!("key-{i}").into_bytes()).collect(),
            values: (0..n)
                .map(|i| {
                    let mut v = format!("value-{i}-").into_bytes();
                    v.resize(value_len.max(v.len()), b'v');
                    v
                })
                .collect(),
            header_keys: (0..n)
                .map(|_| [CString::new("h-one").unwrap(), CString::new("h-two").unwrap()])
                .collect(),
            header_values: (0..n)
                .map(|i| [format!("hv-{i}").into_bytes(), vec![0u8, 1, 2, (i % 256) as u8]])
                .collect(),
            headers: Vec::new(),
            records: Vec::new(),
        };
        for i in 0..n {
            let hk = &b.header_keys[i];
            let hv = &b.header_values[i];
            b.headers.push([
                kp_header_t {
                    key: hk[0].as_ptr(),
                    key_len: 5,
                    value: hv[0].as_ptr().cast(),
                    value_len: hv[0].len(),
                },
                kp_header_t {
                    key: hk[1].as_ptr(),
                    key_len: 5,
                    value: if i % 2 == 1 { std::ptr::null() } else { hv[1].as_ptr().cast() },
                    value_len: hv[1].len(),
                },
            ]);
        }
        for i in 0..n {
            b.records.push(kp_record_t {
                struct_size: std::mem::size_of::<kp_record_t>(),
                topic: b.topics[i % b.topics.len()].as_ptr(),
                partition: KP_PARTITION_ANY,
                key: b.keys[i].as_ptr().cast(),
                key_len: b.keys[i].len(),
                value: b.values[i].as_ptr().cast(),
                value_len: b.values[i].len(),
                headers: b.headers[i].as_ptr(),
                header_count: 2,
                timestamp_ms: 0,
                value_free: None,
                value_free_opaque: std::ptr::null_mut(),
            });
        }
        b
    }

    /// What a consumer should read back for record i.
    fn expected(&self, i: usize) -> (Vec<u8>, Vec<u8>, Headers) {
        let hv = &self.header_values[i];
        (
            self.keys[i].clone(),
            self.values[i].clone(),
            vec![
                ("h-one".into(), Some(hv[0].clone())),
                ("h-two".into(), if i % 2 == 1 { None } else { Some(hv[1].clone()) }),
            ],
        )
    }
}

fn send_batch(p: &TestProducer, b: &Batch, base: usize, cb: kp_delivery_cb_t) -> (usize, Vec<i32>) {
    let ctxs: Vec<*mut c_void> = (0..b.records.len()).map(|i| (base + i) as *mut c_void).collect();
    let mut results = vec![i32::MIN; b.records.len()];
    let n = unsafe {
        kp_send_batch(
            p.p,
            b.records.as_ptr(),
            b.records.len(),
            cb,
            ctxs.as_ptr(),
            results.as_mut_ptr(),
        )
    };
    (n, results)
}

#[test]
fn batch_send_of_10000_records_with_headers_reads_back_byte_identical() {
    let topic = unique_topic("batch10k");
    create_topic(&topic, 3, rf(), &[]);
    let p = TestProducer::new(&[("acks", "all"), ("linger.ms", "5")]);
    let n = 10_000;
    let b = Batch::new(&[&topic], n, 40);
    let base = 1_000_000;
    let (accepted, results) = send_batch(&p, &b, base, Some(record_cb));
    assert_eq!(accepted, n);
    assert!(results.iter().all(|r| *r == KP_OK));
    assert_eq!(p.flush(60_000), KP_OK);

    // One report per record, each with its own ctx, all delivered.
    let seen = seen_in(base..base + n);
    assert_eq!(seen.len(), n);
    let ctxs: HashSet<usize> = seen.iter().map(|s| s.0).collect();
    assert_eq!(ctxs.len(), n, "every ctx exactly once");
    assert!(seen.iter().all(|s| s.1 == KP_OK && s.2 == KP_ERROR_CLASS_NONE && s.4 >= 0));

    // Byte-identical read-back by an independent consumer, at the reported
    // partition and offset.
    let at: HashMap<(i32, i64), usize> = seen.iter().map(|s| ((s.3, s.4), s.0 - base)).collect();
    let consumed = consume_independent(&topic, n, "read_uncommitted");
    assert_eq!(consumed.len(), n);
    for c in &consumed {
        let i = at[&(c.partition, c.offset)];
        let (k, v, h) = b.expected(i);
        assert_eq!(c.key.as_deref(), Some(&k[..]), "key of record {i}");
        assert_eq!(c.value.as_deref(), Some(&v[..]), "value of record {i}");
        assert_eq!(c.headers, h, "headers of record {i}");
    }
}

#[test]
fn batch_send_accepts_the_valid_records_and_says_why_for_the_others() {
    let topic = unique_topic("batchmix");
    create_topic(&topic, 1, rf(), &[]);
    let p = TestProducer::new(&[("max.request.size", "100000")]);
    let mut b = Batch::new(&[&topic], 6, 10);
    let big = vec![b'x'; 200_000];
    b.records[1].value = big.as_ptr().cast();
    b.records[1].value_len = big.len();
    let bad = CString::new("not a topic!").unwrap();
    b.records[3].topic = bad.as_ptr();
    b.records[5].topic = std::ptr::null();
    let base = 2_000_000;
    let (accepted, results) = send_batch(&p, &b, base, Some(record_cb));
    assert_eq!(
        results,
        vec![
            KP_OK,
            KP_ERR_RECORD_TOO_LARGE,
            KP_OK,
            KP_ERR_INVALID_TOPIC,
            KP_OK,
            KP_ERR_INVALID_TOPIC
        ]
    );
    assert_eq!(accepted, 3);
    assert_eq!(p.flush(30_000), KP_OK);
    let mut got: Vec<usize> = seen_in(base..base + 6).iter().map(|s| s.0 - base).collect();
    got.sort();
    assert_eq!(got, vec![0, 2, 4], "reports only for the accepted records");
    let consumed = consume_independent(&topic, 3, "read_uncommitted");
    let values: HashSet<Vec<u8>> = consumed.into_iter().filter_map(|c| c.value).collect();
    assert_eq!(values, [0, 2, 4].iter().map(|i| b.values[*i].clone()).collect());

    // A NULL producer or a bad stride refuses the whole batch, saying why.
    let mut results = vec![0; 2];
    let n = unsafe {
        kp_send_batch(
            std::ptr::null_mut(),
            b.records.as_ptr(),
            2,
            None,
            std::ptr::null(),
            results.as_mut_ptr(),
        )
    };
    assert_eq!((n, results.clone()), (0, vec![KP_ERR_INVALID_ARG; 2]));
    b.records[0].struct_size = 3;
    let n = unsafe {
        kp_send_batch(p.p, b.records.as_ptr(), 2, None, std::ptr::null(), results.as_mut_ptr())
    };
    assert_eq!((n, results), (0, vec![KP_ERR_INVALID_ARG; 2]));
}

/// A kp_report_info_t copied out (its topic string read while valid).
struct Drained {
    struct_size: usize,
    topic: String,
    partition: i32,
    offset: i64,
    timestamp: i64,
    error: i32,
    error_class: i32,
    persistence: i32,
    ctx: usize,
}

impl From<&kp_report_info_t> for Drained {
    fn from(r: &kp_report_info_t) -> Drained {
        Drained {
            struct_size: r.struct_size,
            topic: unsafe { CStr::from_ptr(r.topic) }.to_str().unwrap().to_string(),
            partition: r.partition,
            offset: r.offset,
            timestamp: r.timestamp,
            error: r.error,
            error_class: r.error_class,
            persistence: r.persistence,
            ctx: r.ctx as usize,
        }
    }
}

#[test]
fn batched_drain_returns_every_report_exactly_once_across_threads() {
    let topic = unique_topic("drain");
    create_topic(&topic, 3, rf(), &[]);
    let p = TestProducer::new(&[("delivery.report.mode", "poll"), ("linger.ms", "2")]);
    let n = 20_000;
    let b = Batch::new(&[&topic], n, 20);
    let base = 3_000_000;
    // A callback is given but must not run: drained reports carry the ctx.
    let (accepted, _) = send_batch(&p, &b, base, Some(record_cb));
    assert_eq!(accepted, n);

    let total = AtomicUsize::new(0);
    let drained: Mutex<Vec<Drained>> = Mutex::new(Vec::new());
    let pp = p.p as usize;
    let calls = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                let deadline = Instant::now() + Duration::from_secs(60);
                let mut buf: Vec<kp_report_info_t> =
                    (0..64).map(|_| unsafe { std::mem::zeroed() }).collect();
                buf[0].struct_size = std::mem::size_of::<kp_report_info_t>();
                while total.load(Ordering::SeqCst) < n && Instant::now() < deadline {
                    let p = pp as *mut kp_producer_t;
                    let got = unsafe { kp_poll_reports(p, buf.as_mut_ptr(), buf.len(), 50) };
                    assert!(got >= 0, "kp_poll_reports: {got}");
                    calls.fetch_add(1, Ordering::Relaxed);
                    let got = got as usize;
                    let mut d = drained.lock().unwrap();
                    d.extend(buf[..got].iter().map(Drained::from));
                    total.fetch_add(got, Ordering::SeqCst);
                    buf[0].struct_size = std::mem::size_of::<kp_report_info_t>();
                }
            });
        }
    });
    let drained = drained.into_inner().unwrap();
    assert_eq!(drained.len(), n, "every report, none twice ({} calls)", calls.into_inner());
    let ctxs: HashSet<usize> = drained.iter().map(|r| r.ctx).collect();
    assert_eq!(ctxs, (base..base + n).collect(), "each ctx exactly once");
    assert!(seen_in(base..base + n).is_empty(), "drained records' callbacks did not run");
    let mut offsets = HashSet::new();
    for r in &drained {
        assert_eq!(r.struct_size, std::mem::size_of::<kp_report_info_t>());
        assert_eq!(r.topic, topic);
        assert_eq!((r.error, r.error_class, r.persistence), (KP_OK, 0, KP_PERSISTED));
        assert!(r.offset >= 0 && r.timestamp > 0);
        assert!(offsets.insert((r.partition, r.offset)), "offset reported twice");
    }
    assert_eq!(unsafe { kp_producer_outstanding(p.p) }, 0);

    // The reported partition and offset hold the record (split batches
    // keep their offsets right).
    let at: HashMap<(i32, i64), usize> =
        drained.iter().map(|r| ((r.partition, r.offset), r.ctx - base)).collect();
    for c in consume_independent(&topic, n, "read_uncommitted") {
        let i = at[&(c.partition, c.offset)];
        assert_eq!(c.value.as_deref(), Some(&b.values[i][..]));
    }
}

/// Without a delivery callback, the drained report still carries the
/// record's ctx (bindings that drain need it to find the record).
#[test]
fn a_record_sent_without_a_callback_is_drained_with_its_ctx() {
    let topic = unique_topic("drain-ctx");
    create_topic(&topic, 1, rf(), &[]);
    let p = TestProducer::new(&[("delivery.report.mode", "poll")]);
    let n = 50;
    let b = Batch::new(&[&topic], n, 20);
    let base = 5_000_000;
    assert_eq!(send_batch(&p, &b, base, None).0, n);
    let ctopic = CString::new(topic.as_str()).unwrap();
    let mut rec: kp_record_t = unsafe { std::mem::zeroed() };
    rec.struct_size = std::mem::size_of::<kp_record_t>();
    rec.topic = ctopic.as_ptr();
    rec.partition = KP_PARTITION_ANY;
    rec.value = b"single".as_ptr() as *const c_void;
    rec.value_len = 6;
    let single = (base + n) as *mut c_void;
    assert_eq!(unsafe { kp_send(p.p, &rec, None, single) }, KP_OK);
    assert_eq!(unsafe { kp_send(p.p, &rec, None, std::ptr::null_mut()) }, KP_OK);

    let mut got: Vec<usize> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut buf: Vec<kp_report_info_t> = (0..16).map(|_| unsafe { std::mem::zeroed() }).collect();
    while got.len() < n + 2 && Instant::now() < deadline {
        buf[0].struct_size = std::mem::size_of::<kp_report_info_t>();
        let k = unsafe { kp_poll_reports(p.p, buf.as_mut_ptr(), buf.len(), 100) };
        assert!(k >= 0, "kp_poll_reports: {k}");
        for r in &buf[..k as usize] {
            assert_eq!(r.error, KP_OK);
            got.push(r.ctx as usize);
        }
    }
    got.sort_unstable();
    let mut want: Vec<usize> = (base..=base + n).collect();
    want.insert(0, 0);
    assert_eq!(got, want, "each ctx once, NULL for the record sent without one");
}

/// kp_send_queued sends the records queued so far without waiting for
/// linger.ms (15 minutes here) and does not wait for their reports; a record
/// sent after it lingers as usual (until the flush).
#[test]
fn send_queued_sends_what_is_queued_without_waiting_for_linger() {
    let topic = unique_topic("send-queued");
    create_topic(&topic, 2, rf(), &[]);
    let p = TestProducer::new(&[("linger.ms", "900000")]);
    let n = 20;
    for i in 0..n {
        let value = format!("queued-{i}");
        assert_eq!(p.send(&Rec::new(&topic, value.as_bytes()), i).0, KP_OK);
    }
    assert_eq!(
        p.wait_reports(1, Duration::from_secs(3)).len(),
        0,
        "records linger before kp_send_queued"
    );

    assert_eq!(unsafe { kp_send_queued(p.p) }, KP_OK);
    let reports = p.wait_reports(n, Duration::from_secs(60));
    assert_one_report_each(&reports, n);
    assert!(reports.iter().all(|r| r.error == KP_OK), "{reports:?}");

    assert_eq!(p.send(&Rec::new(&topic, b"after"), n).0, KP_OK);
    assert_eq!(
        p.wait_reports(n + 1, Duration::from_secs(3)).len(),
        n,
        "a record sent after kp_send_queued lingers"
    );
    assert_eq!(p.flush(30_000), KP_OK);
    assert_one_report_each(&p.reports(), n + 1);

    assert_eq!(unsafe { kp_send_queued(std::ptr::null_mut()) }, KP_ERR_INVALID_ARG);
    let mut values: Vec<Vec<u8>> = consume_independent(&topic, n + 1, "read_uncommitted")
        .into_iter()
        .map(|c| c.value.unwrap_or_default())
        .collect();
    values.sort();
    let mut want: Vec<Vec<u8>> = (0..n).map(|i| format!("queued-{i}").into_bytes()).collect();
    want.push(b"after".to_vec());
    want.sort();
    assert_eq!(values, want);
}

#[test]
fn batched_drain_rejects_bad_arguments_and_serves_nothing_in_thread_mode() {
    let p = TestProducer::new(&[]);
    let mut buf: [kp_report_info_t; 2] = unsafe { std::mem::zeroed() };
    let bad = |buf: *mut kp_report_info_t, max| unsafe { kp_poll_reports(p.p, buf, max, 0) };
    assert_eq!(bad(std::ptr::null_mut(), 2), KP_ERR_INVALID_ARG);
    assert_eq!(bad(buf.as_mut_ptr(), 2), KP_ERR_INVALID_ARG, "struct_size 0");
    buf[0].struct_size = std::mem::size_of::<kp_report_info_t>();
    assert_eq!(bad(buf.as_mut_ptr(), 0), KP_ERR_INVALID_ARG);
    assert_eq!(bad(buf.as_mut_ptr(), 2), 0, "thread mode: nothing to drain");
    assert_eq!(
        unsafe { kp_poll_reports(std::ptr::null_mut(), buf.as_mut_ptr(), 2, 0) },
        KP_ERR_INVALID_ARG
    );
}

#[test]
fn a_retriable_error_out_of_retries_is_abortable_inside_a_transaction() {
    // auto.create.topics.enable=false on the test bed: a missing topic's
    // records wait for metadata (UNKNOWN_TOPIC_OR_PARTITION, retriable)
    // until delivery.timeout.ms.
    let missing = unique_topic("missing");
    let settings = [("delivery.timeout.ms", "3000"), ("request.timeout.ms", "1000")];
    let base = 4_000_000;
    for (k, transactional) in [(0usize, false), (1, true)] {
        let tid = unique_topic("txn-class");
        let mut s = settings.to_vec();
        if transactional {
            s.push(("transactional.id", &tid));
        }
        let p = TestProducer::new(&s);
        if transactional {
            let e = unsafe { kp_init_transactions(p.p, 30_000) };
            assert!(e.is_null(), "init: {}", unsafe { kp_error_code(e) });
            assert!(unsafe { kp_begin_transaction(p.p) }.is_null());
        }
        let b = Batch::new(&[&missing], 1, 1);
        assert_eq!(send_batch(&p, &b, base + k, Some(record_cb)).0, 1);
        assert_eq!(p.flush(30_000), KP_OK);
        let seen = seen_in(base + k..base + k + 1);
        assert_eq!(seen.len(), 1);
        let (_, code, class, _, _) = seen[0];
        assert_ne!(code, KP_OK);
        let code_class = kp_err_class(code);
        assert!(
            code_class == KP_ERROR_CLASS_RETRIABLE
                || code_class == KP_ERROR_CLASS_REFRESH_RETRIABLE,
            "{code} should be a retriable error, class {code_class}"
        );
        if transactional {
            assert_eq!(class, KP_ERROR_CLASS_ABORTABLE, "retriable, out of retries, in a txn");
            let e = unsafe { kp_abort_transaction(p.p, 30_000) };
            assert!(e.is_null(), "the abortable transaction aborts");
        } else {
            assert_eq!(class, code_class, "outside a transaction the code's own class");
        }
    }
}

/// Return codes and durations of calls made from inside a callback.
static FROM_CALLBACK: Mutex<Vec<(&'static str, i32, Duration)>> = Mutex::new(Vec::new());

unsafe extern "C" fn reentrant_cb(_r: *const kp_report_t, ctx: *mut c_void) {
    let p = ctx as *mut kp_producer_t;
    let mut out = FROM_CALLBACK.lock().unwrap();
    let t = Instant::now();
    out.push(("kp_flush", kp_flush(p, 10_000), t.elapsed()));
    let t = Instant::now();
    out.push(("kp_producer_close", kp_producer_close(p, 10_000), t.elapsed()));
    let t = Instant::now();
    let e = kp_commit_transaction(p, 10_000);
    out.push(("kp_commit_transaction", kp_error_code(e), t.elapsed()));
    kp_error_destroy(e);
}

#[test]
fn waiting_calls_from_a_delivery_callback_fail_at_once_with_state() {
    let topic = unique_topic("reentrant");
    create_topic(&topic, 1, rf(), &[]);
    for mode in ["thread", "poll"] {
        FROM_CALLBACK.lock().unwrap().clear();
        let p = TestProducer::new(&[("delivery.report.mode", mode)]);
        let b = Batch::new(&[&topic], 1, 1);
        let ctx = [p.p as *mut c_void];
        let mut res = [0];
        let n = unsafe {
            kp_send_batch(
                p.p,
                b.records.as_ptr(),
                1,
                Some(reentrant_cb),
                ctx.as_ptr(),
                res.as_mut_ptr(),
            )
        };
        assert_eq!(n, 1);
        // In poll mode the callback runs inside this flush.
        assert_eq!(p.flush(30_000), KP_OK);
        let calls = FROM_CALLBACK.lock().unwrap().clone();
        assert_eq!(calls.len(), 3, "{mode}: the callback ran once");
        for (what, code, took) in calls {
            assert_eq!(code, KP_ERR_STATE, "{mode}: {what}");
            assert!(took < Duration::from_secs(1), "{mode}: {what} took {took:?}");
        }
        // The producer is still open and works.
        assert_eq!(p.send(&Rec::new(&topic, b"after"), 1).0, KP_OK);
        assert_eq!(p.flush(30_000), KP_OK);
        assert_eq!(p.reports()[0].error, KP_OK);
    }
}

/// What a log callback saw: (level, facility, message, thread name).
type Line = (i32, String, String, String);

#[derive(Default)]
struct Logged(Mutex<Vec<Line>>);

impl Logged {
    fn lines(&self) -> Vec<Line> {
        self.0.lock().unwrap().clone()
    }

    /// Waits up to `timeout` for a line `pred` accepts (thread mode:
    /// lines come from the delivery thread on their own).
    fn wait_for(&self, timeout: Duration, pred: impl Fn(&Line) -> bool) -> Option<Line> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(l) = self.lines().into_iter().find(|l| pred(l)) {
                return Some(l);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

unsafe extern "C" fn log_cb(
    level: i32,
    facility: *const std::ffi::c_char,
    message: *const std::ffi::c_char,
    ctx: *mut c_void,
) {
    let logged = unsafe { &*(ctx as *const Logged) };
    let text = |p| unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned();
    let thread = std::thread::current().name().unwrap_or("").to_string();
    logged.0.lock().unwrap().push((level, text(facility), text(message), thread));
}

/// A producer whose log lines go to `logged` (which outlives it).
fn logged_producer(settings: &[(&str, &str)], logged: &Logged) -> TestProducer {
    let cfg = config(settings);
    let ctx = logged as *const Logged as *mut c_void;
    assert_eq!(unsafe { kp_config_set_log_callback(cfg, Some(log_cb), ctx) }, KP_OK);
    TestProducer::with_config(cfg)
}

#[test]
fn the_log_callback_hears_connections_and_metadata_on_the_delivery_thread() {
    let topic = unique_topic("log-thread");
    create_topic(&topic, 3, rf(), &[]);
    let bs = bootstrap();
    let logged = Logged::default();
    let p = logged_producer(&[("bootstrap.servers", &bs), ("debug", "metadata")], &logged);
    let (rc, msg) = p.send(&Rec::new(&topic, b"v"), 0);
    assert_eq!(rc, KP_OK, "{msg}");
    assert_eq!(p.flush(30_000), KP_OK);
    let first = bs.split(',').next().unwrap().to_string();
    let connected = logged
        .wait_for(Duration::from_secs(10), |l| l.2.contains("connected to broker"))
        .expect("a connection line");
    assert_eq!((connected.0, connected.1.as_str()), (KP_LOG_INFO, "broker"));
    assert!(
        logged
            .lines()
            .iter()
            .any(|l| l.2.starts_with("connected to broker -1 (") && l.2.contains(&first)),
        "the bootstrap connection names its address {first}: {:?}",
        logged.lines()
    );
    let partitions = format!("{topic}: 3 partition(s)");
    let meta = logged
        .wait_for(Duration::from_secs(10), |l| l.2 == partitions)
        .unwrap_or_else(|| panic!("a metadata line for the topic: {:?}", logged.lines()));
    assert_eq!((meta.0, meta.1.as_str()), (KP_LOG_DEBUG, "metadata"));
    assert!(logged.lines().iter().any(|l| l.1 == "metadata" && l.2.starts_with("broker ")));
    drop(p);
    let lines = logged.lines();
    assert!(lines.iter().all(|l| l.3 == "kp-delivery"), "only on kp's delivery thread: {lines:?}");
    assert!(
        lines.iter().all(|l| l.0 < KP_LOG_DEBUG || l.1 == "metadata"),
        "debug lines only for the enabled context: {lines:?}"
    );
}

#[test]
fn in_poll_mode_log_lines_wait_for_the_callers_thread_and_make_the_fd_readable() {
    let bs = bootstrap();
    let logged = Logged::default();
    let p =
        logged_producer(&[("bootstrap.servers", &bs), ("delivery.report.mode", "poll")], &logged);
    // The producer connects on its own (bootstrap metadata): that is logged.
    let fd = unsafe { kp_poll_fd(p.p) };
    assert!(fd >= 0);
    let mut pfd = libc::pollfd { fd, events: libc::POLLIN, revents: 0 };
    let ready = unsafe { libc::poll(&mut pfd, 1, 10_000) };
    assert_eq!(ready, 1, "the fd turns readable when log lines wait");
    assert!(logged.lines().is_empty(), "nothing is called before kp_poll");
    assert_eq!(unsafe { kp_poll(p.p, 0) }, 0, "log lines are not reports");
    let lines = logged.lines();
    assert!(lines.iter().any(|l| l.2.contains("connected to broker")), "{lines:?}");
    let me = std::thread::current().name().unwrap_or("").to_string();
    assert!(lines.iter().all(|l| l.3 == me), "on the polling thread: {lines:?}");
    // kp_poll_reports serves them too.
    let mut buf: [kp_report_info_t; 4] = unsafe { std::mem::zeroed() };
    buf[0].struct_size = std::mem::size_of::<kp_report_info_t>();
    let before = logged.lines().len();
    let topic = unique_topic("log-poll");
    create_topic(&topic, 1, rf(), &[]);
    let (rc, msg) = p.send(&Rec::new(&topic, b"v"), 0);
    assert_eq!(rc, KP_OK, "{msg}");
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut got = 0;
    while got == 0 && Instant::now() < deadline {
        got = unsafe { kp_poll_reports(p.p, buf.as_mut_ptr(), 4, 100) };
    }
    assert_eq!(got, 1);
    let lines = logged.lines();
    assert!(lines[before..].iter().all(|l| l.3 == me), "kp_poll_reports serves on this thread too");
    assert!(lines.iter().all(|l| l.0 <= KP_LOG_INFO), "no debug line without `debug`: {lines:?}");
}

#[test]
fn an_unreachable_broker_is_logged_once_with_its_address_not_every_backoff() {
    let logged = Logged::default();
    let p = logged_producer(
        &[
            ("bootstrap.servers", "127.0.0.1:1"),
            ("reconnect.backoff.ms", "10"),
            ("reconnect.backoff.max.ms", "20"),
            ("retry.backoff.ms", "10"),
            ("delivery.timeout.ms", "1500"),
            ("request.timeout.ms", "1000"),
            ("linger.ms", "0"),
        ],
        &logged,
    );
    let (rc, msg) = p.send(&Rec::new("nowhere", b"v"), 0);
    assert_eq!(rc, KP_OK, "{msg}");
    assert_eq!(p.flush(10_000), KP_OK);
    let reports = p.reports();
    assert_eq!(reports.len(), 1);
    assert_ne!(reports[0].error, KP_OK);
    let failed = logged
        .wait_for(Duration::from_secs(5), |l| l.1 == "broker" && l.2.contains("127.0.0.1:1"))
        .expect("a connection failure line");
    assert_eq!(failed.0, KP_LOG_WARNING);
    assert!(failed.2.contains("refused"), "says why: {}", failed.2);
    assert!(logged
        .wait_for(Duration::from_secs(5), |l| l.1 == "metadata" && l.0 == KP_LOG_WARNING)
        .is_some());
    drop(p);
    let lines = logged.lines();
    let same = lines.iter().filter(|l| l.2 == failed.2).count();
    assert_eq!(same, 1, "1.5 s of 10-20 ms backoffs, one line (rate-limited): {lines:?}");
}

#[test]
fn transaction_states_are_logged_at_debug_and_a_fenced_producer_logs_its_fatal_error() {
    let topic = unique_topic("log-txn");
    create_topic(&topic, 1, rf(), &[]);
    let bs = bootstrap();
    let tid = unique_topic("log-txn-id");
    let logged = Logged::default();
    let s = [("bootstrap.servers", bs.as_str()), ("transactional.id", &tid), ("debug", "txn")];
    let p = logged_producer(&s, &logged);
    assert!(unsafe { kp_init_transactions(p.p, 30_000) }.is_null());
    assert!(unsafe { kp_begin_transaction(p.p) }.is_null());
    assert_eq!(p.send(&Rec::new(&topic, b"v"), 0).0, KP_OK);
    assert!(unsafe { kp_commit_transaction(p.p, 30_000) }.is_null());
    assert!(unsafe { kp_begin_transaction(p.p) }.is_null());
    // A second producer with the same id fences the first.
    let other = TestProducer::new(&[("transactional.id", &tid)]);
    assert!(unsafe { kp_init_transactions(other.p, 30_000) }.is_null());
    assert_eq!(p.send(&Rec::new(&topic, b"w"), 1).0, KP_OK);
    let e = unsafe { kp_commit_transaction(p.p, 30_000) };
    assert!(!e.is_null(), "the fenced producer cannot commit");
    unsafe { kp_error_destroy(e) };
    let e = unsafe { kp_abort_transaction(p.p, 30_000) };
    assert!(!e.is_null(), "nor abort");
    assert!(unsafe { kp_error_is_fatal(e) }, "fenced: fatal");
    unsafe { kp_error_destroy(e) };
    let fatal = logged
        .wait_for(Duration::from_secs(10), |l| l.0 == KP_LOG_ERR)
        .unwrap_or_else(|| panic!("a fatal error line: {:?}", logged.lines()));
    assert_eq!(fatal.1, "producer");
    assert!(fatal.2.starts_with("fatal error: ") && fatal.2.contains("fenced"), "{}", fatal.2);
    // Lines reach the callback from kp's delivery thread, in order but not
    // before the calls return: the abort's own line comes after the fatal one.
    logged
        .wait_for(Duration::from_secs(10), |l| l.1 == "txn" && l.2.starts_with("abort_transaction"))
        .unwrap_or_else(|| panic!("the abort_transaction line: {:?}", logged.lines()));
    // The second begin_transaction line equals the first: logged once
    // (repeats within 30 s are counted, not logged).
    let txn: Vec<String> =
        logged.lines().into_iter().filter(|l| l.1 == "txn").map(|l| l.2).collect();
    assert_eq!(
        txn[..3],
        [
            "init_transactions: state Ready",
            "begin_transaction: state InTransaction",
            "commit_transaction: state Ready"
        ],
        "{txn:?}"
    );
    assert!(
        txn[3].starts_with("commit_transaction: state Abortable(")
            && txn[3].contains("after an error: "),
        "{txn:?}"
    );
    assert!(txn[4].starts_with("abort_transaction: state Fatal("), "{txn:?}");
    assert!(logged.lines().iter().filter(|l| l.1 == "txn").all(|l| l.0 == KP_LOG_DEBUG));
}
