//! Shared helpers for the integration tests: the real cluster (from
//! KP_BOOTSTRAP, set by scripts/test.sh), the testbed script, an independent
//! consumer, and a small safe wrapper over kp's C ABI.
#![allow(dead_code)]

use std::ffi::{c_void, CStr, CString};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kp::ffi::*;

pub fn bootstrap() -> String {
    std::env::var("KP_BOOTSTRAP").expect(
        "KP_BOOTSTRAP is not set: run the integration tests through `make test` (scripts/test.sh starts a real cluster)",
    )
}

/// Number of nodes of the cluster the testbed started (None for an external cluster).
pub fn testbed_nodes() -> Option<u32> {
    std::env::var("KP_TESTBED_NODES").ok().and_then(|v| v.parse().ok())
}

pub fn repo() -> &'static str {
    env!("CARGO_MANIFEST_DIR")
}

/// Runs testbed/kafka.sh and returns stdout; panics with stderr on failure.
pub fn kafka(args: &[&str]) -> String {
    let out = Command::new("bash")
        .arg(format!("{}/testbed/kafka.sh", repo()))
        .args(args)
        .output()
        .expect("run testbed/kafka.sh");
    if !out.status.success() {
        panic!("kafka.sh {:?} failed: {}", args, String::from_utf8_lossy(&out.stderr));
    }
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn unique_topic(prefix: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos()
            % 1_000_000_000;
    format!("{prefix}-{}-{nanos}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed))
}

pub fn create_topic(name: &str, partitions: u32, rf: u32, configs: &[&str]) {
    let p = partitions.to_string();
    let r = rf.to_string();
    let mut args = vec!["create-topic", name, &p, &r];
    args.extend_from_slice(configs);
    kafka(&args);
}

pub fn delete_topic(name: &str) {
    kafka(&["delete-topic", name]);
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Consumed {
    pub partition: i32,
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub headers: Vec<(String, Option<Vec<u8>>)>,
    pub timestamp: i64,
}

fn b64(s: Option<&str>) -> Option<Vec<u8>> {
    s.map(base64_decode)
}

fn base64_decode(s: &str) -> Vec<u8> {
    let val = |c: u8| -> u32 {
        match c {
            b'A'..=b'Z' => (c - b'A') as u32,
            b'a'..=b'z' => (c - b'a' + 26) as u32,
            b'0'..=b'9' => (c - b'0' + 52) as u32,
            b'+' => 62,
            b'/' => 63,
            _ => 0,
        }
    };
    let bytes: Vec<u8> = s.bytes().filter(|&c| c != b'=').collect();
    let mut out = Vec::with_capacity(bytes.len() * 3 / 4);
    for chunk in bytes.chunks(4) {
        let mut n = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            n |= val(c) << (18 - 6 * i);
        }
        out.push((n >> 16) as u8);
        if chunk.len() > 2 {
            out.push((n >> 8) as u8);
        }
        if chunk.len() > 3 {
            out.push(n as u8);
        }
    }
    out
}

/// Reads a topic with confluent-kafka (librdkafka's consumer, independent of kp).
pub fn consume_independent(topic: &str, expected: usize, isolation: &str) -> Vec<Consumed> {
    consume_independent_at(&bootstrap(), topic, expected, isolation, &[])
}

/// Like `consume_independent`, at `bootstrap` with extra librdkafka settings (e.g. TLS).
pub fn consume_independent_at(
    bootstrap: &str,
    topic: &str,
    expected: usize,
    isolation: &str,
    config: &[(&str, &str)],
) -> Vec<Consumed> {
    consume_with_timeout(bootstrap, topic, expected, isolation, config, 90)
}

/// [`consume_independent`] giving up after `timeout_s` seconds.
pub fn consume_independent_within(
    topic: &str,
    expected: usize,
    isolation: &str,
    timeout_s: u32,
) -> Vec<Consumed> {
    consume_with_timeout(&bootstrap(), topic, expected, isolation, &[], timeout_s)
}

fn consume_with_timeout(
    bootstrap: &str,
    topic: &str,
    expected: usize,
    isolation: &str,
    config: &[(&str, &str)],
    timeout_s: u32,
) -> Vec<Consumed> {
    let out = Command::new("python3")
        .arg(format!("{}/tests/verify/consume.py", repo()))
        .args(config.iter().flat_map(|(k, v)| ["--config".to_string(), format!("{k}={v}")]))
        .args([
            bootstrap,
            topic,
            &expected.to_string(),
            "--timeout",
            &timeout_s.to_string(),
            "--isolation",
            isolation,
        ])
        .output()
        .expect("run tests/verify/consume.py");
    if !out.status.success() {
        panic!(
            "independent consumer failed (status {:?}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    String::from_utf8_lossy(&out.stdout).lines().map(parse_consumed).collect()
}

fn json_field<'a>(line: &'a str, name: &str) -> &'a str {
    let pat = format!("\"{name}\": ");
    let start = line.find(&pat).unwrap_or_else(|| panic!("no {name} in {line}")) + pat.len();
    let rest = &line[start..];
    if rest.starts_with('[') {
        let mut depth = 0;
        for (i, c) in rest.char_indices() {
            match c {
                '[' => depth += 1,
                ']' => {
                    depth -= 1;
                    if depth == 0 {
                        return &rest[..=i];
                    }
                }
                _ => {}
            }
        }
        rest
    } else {
        let end = rest.find([',', '}']).unwrap_or(rest.len());
        &rest[..end]
    }
}

fn json_str(v: &str) -> Option<&str> {
    if v == "null" {
        None
    } else {
        Some(v.trim_matches('"'))
    }
}

fn parse_consumed(line: &str) -> Consumed {
    let headers_raw = json_field(line, "headers");
    let mut headers = Vec::new();
    let inner = headers_raw.trim_start_matches('[').trim_end_matches(']');
    for pair in inner.split("], [").filter(|s| !s.trim().is_empty()) {
        let pair = pair.trim_matches(|c| c == '[' || c == ']');
        let (k, v) = pair.split_once(", ").expect("header pair");
        headers.push((k.trim_matches('"').to_string(), b64(json_str(v))));
    }
    Consumed {
        partition: json_field(line, "partition").parse().unwrap(),
        offset: json_field(line, "offset").parse().unwrap(),
        key: b64(json_str(json_field(line, "key"))),
        value: b64(json_str(json_field(line, "value"))),
        headers,
        timestamp: json_field(line, "timestamp").parse().unwrap(),
    }
}

// ------------------------------------------------------------- kp wrapper

#[derive(Debug, Clone)]
pub struct Report {
    pub tag: usize,
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub timestamp: i64,
    pub error: i32,
    pub message: Option<String>,
    pub retriable: bool,
    pub persistence: i32,
    pub thread: std::thread::ThreadId,
    /// When the callback ran.
    pub at: Instant,
}

#[derive(Default)]
pub struct Collector {
    pub reports: Mutex<Vec<Report>>,
}

impl Collector {
    /// Heap bytes the collected reports take (the vector and each report's
    /// strings, malloc's chunk header included): the test's own memory, for
    /// telling it apart from kp's in RSS measurements.
    pub fn heap_bytes(&self) -> usize {
        // malloc_usable_size + the 8-byte chunk header glibc keeps per allocation.
        fn chunk(ptr: *const u8, cap: usize) -> usize {
            if cap == 0 {
                0
            } else {
                // SAFETY: ptr is the start of a live allocation of the global
                // allocator (glibc malloc: the test binary sets no other).
                unsafe { libc::malloc_usable_size(ptr as *mut c_void) + 8 }
            }
        }
        let r = self.reports.lock().unwrap();
        let vec = chunk(r.as_ptr() as *const u8, r.capacity() * std::mem::size_of::<Report>());
        vec + r
            .iter()
            .map(|x| {
                chunk(x.topic.as_ptr(), x.topic.capacity())
                    + x.message.as_ref().map_or(0, |m| chunk(m.as_ptr(), m.capacity()))
            })
            .sum::<usize>()
    }
}

pub struct Ctx {
    collector: Arc<Collector>,
    tag: usize,
}

pub unsafe extern "C" fn collect_cb(r: *const kp_report_t, ctx: *mut c_void) {
    let ctx = Box::from_raw(ctx as *mut Ctx);
    let msg = kp_report_error_message(r);
    let rep = Report {
        tag: ctx.tag,
        topic: CStr::from_ptr(kp_report_topic(r)).to_string_lossy().into_owned(),
        partition: kp_report_partition(r),
        offset: kp_report_offset(r),
        timestamp: kp_report_timestamp(r),
        error: kp_report_error(r),
        message: if msg.is_null() {
            None
        } else {
            Some(CStr::from_ptr(msg).to_string_lossy().into_owned())
        },
        retriable: kp_report_is_retriable(r),
        persistence: kp_report_persistence(r),
        thread: std::thread::current().id(),
        at: Instant::now(),
    };
    ctx.collector.reports.lock().unwrap().push(rep);
}

pub fn config(settings: &[(&str, &str)]) -> *mut kp_config_t {
    let cfg = kp_config_new();
    for (k, v) in settings {
        let k = CString::new(*k).unwrap();
        let v = CString::new(*v).unwrap();
        let mut err = [0i8; 512];
        let rc = unsafe { kp_config_set(cfg, k.as_ptr(), v.as_ptr(), err.as_mut_ptr(), err.len()) };
        assert_eq!(rc, KP_CONFIG_OK, "config {:?}={:?}: {}", k, v, cstr_buf(&err));
    }
    cfg
}

pub fn cstr_buf(b: &[i8]) -> String {
    unsafe { CStr::from_ptr(b.as_ptr()) }.to_string_lossy().into_owned()
}

pub struct TestProducer {
    pub p: *mut kp_producer_t,
    pub collector: Arc<Collector>,
}

unsafe impl Send for TestProducer {}
unsafe impl Sync for TestProducer {}

pub struct Rec<'a> {
    pub topic: &'a str,
    pub partition: i32,
    pub key: Option<&'a [u8]>,
    pub value: Option<&'a [u8]>,
    pub headers: &'a [(&'a str, Option<&'a [u8]>)],
    pub timestamp: i64,
}

impl<'a> Rec<'a> {
    pub fn new(topic: &'a str, value: &'a [u8]) -> Rec<'a> {
        Rec {
            topic,
            partition: KP_PARTITION_ANY,
            key: None,
            value: Some(value),
            headers: &[],
            timestamp: 0,
        }
    }
}

impl TestProducer {
    /// A producer on the test cluster with the given extra settings.
    pub fn new(settings: &[(&str, &str)]) -> TestProducer {
        let bs = bootstrap();
        let mut all = vec![("bootstrap.servers", bs.as_str())];
        all.extend_from_slice(settings);
        Self::with_config(config(&all))
    }

    pub fn with_config(cfg: *mut kp_config_t) -> TestProducer {
        let mut err = [0i8; 512];
        let p = unsafe { kp_producer_new(cfg, err.as_mut_ptr(), err.len()) };
        assert!(!p.is_null(), "kp_producer_new: {}", cstr_buf(&err));
        TestProducer { p, collector: Arc::new(Collector::default()) }
    }

    /// kp_send with a collecting callback; returns the immediate code and message.
    pub fn send(&self, r: &Rec<'_>, tag: usize) -> (i32, String) {
        let topic = CString::new(r.topic).unwrap();
        let hk: Vec<CString> = r.headers.iter().map(|h| CString::new(h.0).unwrap()).collect();
        let hdrs: Vec<kp_header_t> = r
            .headers
            .iter()
            .zip(&hk)
            .map(|(h, k)| kp_header_t {
                key: k.as_ptr(),
                key_len: h.0.len(),
                value: h.1.map(|v| v.as_ptr() as *const c_void).unwrap_or(std::ptr::null()),
                value_len: h.1.map(|v| v.len()).unwrap_or(0),
            })
            .collect();
        let rec = kp_record_t {
            struct_size: std::mem::size_of::<kp_record_t>(),
            topic: topic.as_ptr(),
            partition: r.partition,
            key: r.key.map(|k| k.as_ptr() as *const c_void).unwrap_or(std::ptr::null()),
            key_len: r.key.map(|k| k.len()).unwrap_or(0),
            value: r.value.map(|v| v.as_ptr() as *const c_void).unwrap_or(std::ptr::null()),
            value_len: r.value.map(|v| v.len()).unwrap_or(0),
            headers: if hdrs.is_empty() { std::ptr::null() } else { hdrs.as_ptr() },
            header_count: hdrs.len(),
            timestamp_ms: r.timestamp,
            value_free: None,
            value_free_opaque: std::ptr::null_mut(),
        };
        let ctx = Box::into_raw(Box::new(Ctx { collector: self.collector.clone(), tag }));
        let mut err = [0i8; 512];
        let rc = unsafe {
            kp_send_with_errstr(
                self.p,
                &rec,
                Some(collect_cb),
                ctx as *mut c_void,
                err.as_mut_ptr(),
                err.len(),
            )
        };
        if rc != KP_OK {
            drop(unsafe { Box::from_raw(ctx) });
        }
        (rc, cstr_buf(&err))
    }

    pub fn flush(&self, timeout_ms: i32) -> i32 {
        unsafe { kp_flush(self.p, timeout_ms) }
    }

    pub fn close(&self, timeout_ms: i32) -> i32 {
        unsafe { kp_producer_close(self.p, timeout_ms) }
    }

    pub fn reports(&self) -> Vec<Report> {
        self.collector.reports.lock().unwrap().clone()
    }

    pub fn report_count(&self) -> usize {
        self.collector.reports.lock().unwrap().len()
    }

    /// Waits until `n` reports arrived (or the timeout) and returns them.
    pub fn wait_reports(&self, n: usize, timeout: Duration) -> Vec<Report> {
        let deadline = Instant::now() + timeout;
        while self.report_count() < n && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        self.reports()
    }
}

impl Drop for TestProducer {
    fn drop(&mut self) {
        unsafe { kp_producer_destroy(self.p) };
    }
}

/// The leader's node id of `topic`/`partition`, as kp's metadata says.
pub fn leader_of(p: &TestProducer, topic: &str, partition: i32) -> i32 {
    let t = CString::new(topic).unwrap();
    let mut info = std::ptr::null_mut();
    let mut err = [0 as std::ffi::c_char; 512];
    let rc = unsafe {
        kp_partitions_for(p.p, t.as_ptr(), 10_000, &mut info, err.as_mut_ptr(), err.len())
    };
    assert_eq!(rc, KP_OK, "{}", cstr_buf(&err));
    let leader = unsafe { kp_topic_info_leader(info, partition) };
    unsafe { kp_topic_info_destroy(info) };
    leader
}

/// Exactly one report per tag 0..n; panics naming the first offender.
pub fn assert_one_report_each(reports: &[Report], n: usize) {
    let mut seen = vec![0u32; n];
    for r in reports {
        assert!(r.tag < n, "unexpected tag {}", r.tag);
        seen[r.tag] += 1;
    }
    for (i, c) in seen.iter().enumerate() {
        assert_eq!(*c, 1, "record {i} got {c} reports (want exactly 1)");
    }
}
