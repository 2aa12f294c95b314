//! Network faults between kp and the real brokers: kp talks to the 3-node
//! testbed cluster only through a fault-injection proxy (tests/faults/proxy.rs)
//! that blackholes, resets, half-closes, slows down or drops each broker's
//! listener. The cluster must be started with KP_TESTBED_PROXY=1 (scripts/test.sh
//! does): each node then has a listener PROXIED on P+8 advertised as P+9, where
//! the proxy listens, so every connection kp makes, bootstrap or not, passes it.
//! What kp wrote is read back directly from the brokers by confluent-kafka.
//!
//! Each test runs with idempotence on and off. Run alone:
//!   cargo test --release --test faults -- --test-threads=1 --nocapture

mod common;
#[path = "faults/proxy.rs"]
mod proxy;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use common::*;
use kp::ffi::*;
use proxy::{Faults, Proxy};

/// The proxy binds fixed ports: one test at a time.
static SERIAL: Mutex<()> = Mutex::new(());

struct Bed {
    proxy: Proxy,
    bootstrap: String,
    _serial: MutexGuard<'static, ()>,
}

/// The proxy in front of every node (route i is node i+1), or None (test
/// skipped) when the cluster has no PROXIED listener.
fn bed() -> Option<Bed> {
    let serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let Ok(bootstrap) = std::env::var("KP_PROXIED_BOOTSTRAP") else {
        eprintln!(
            "SKIPPED: no KP_PROXIED_BOOTSTRAP (start the cluster with KP_TESTBED_PROXY=1, as scripts/test.sh does)"
        );
        return None;
    };
    if testbed_nodes() != Some(3) {
        eprintln!("SKIPPED: needs the 3-node testbed cluster");
        return None;
    }
    let pairs: Vec<(SocketAddr, SocketAddr)> = bootstrap
        .split(',')
        .map(|a| {
            let listen: SocketAddr = a.parse().expect("KP_PROXIED_BOOTSTRAP address");
            let upstream = SocketAddr::new(listen.ip(), listen.port() - 1);
            (listen, upstream)
        })
        .collect();
    Some(Bed { proxy: Proxy::start(&pairs), bootstrap, _serial: serial })
}

fn producer(bed: &Bed, idempotent: bool, extra: &[(&str, &str)]) -> TestProducer {
    let mut s = vec![
        ("bootstrap.servers", bed.bootstrap.as_str()),
        ("enable.idempotence", if idempotent { "true" } else { "false" }),
        ("acks", "all"),
        ("linger.ms", "5"),
        ("request.timeout.ms", "3000"),
        ("socket.connection.setup.timeout.ms", "3000"),
        ("retry.backoff.ms", "100"),
        ("retry.backoff.max.ms", "1000"),
        ("reconnect.backoff.max.ms", "1000"),
    ];
    s.extend_from_slice(extra);
    TestProducer::with_config(config(&s))
}

/// Record `tag` goes to partition tag % parts with value "p<partition>-<tag>" (padded).
fn send_tagged(p: &TestProducer, topic: &str, tag: usize, parts: usize, pad: usize) -> i32 {
    let part = (tag % parts) as i32;
    let mut v = format!("p{part}-{tag:08}-").into_bytes();
    v.resize(v.len().max(pad), b'.');
    let (rc, msg) = p.send(&Rec { partition: part, ..Rec::new(topic, &v) }, tag);
    assert!(rc == KP_OK || rc == KP_ERR_QUEUE_FULL, "send {tag}: {rc} {msg}");
    rc
}

fn parse_tag(value: &[u8]) -> (i32, usize) {
    let v = std::str::from_utf8(value).unwrap();
    let mut it = v.split('-');
    let part = it.next().unwrap().trim_start_matches('p').parse().unwrap();
    let tag = it.next().unwrap().parse().unwrap();
    (part, tag)
}

/// VmRSS of this process in KiB: (raw, after malloc_trim(0)). The second
/// is what kp still holds: glibc keeps freed heap pages until trimmed.
fn vm_rss_kib() -> (u64, u64) {
    let read = || {
        let s = std::fs::read_to_string("/proc/self/status").unwrap();
        let line = s.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
        line.split_whitespace().nth(1).unwrap().parse::<u64>().unwrap()
    };
    let raw = read();
    unsafe { libc::malloc_trim(0) };
    (raw, read())
}

/// Reads the topic back (confluent-kafka, straight from the brokers) and
/// checks it against kp's reports for tags in `tags`: a record reported
/// persisted is in the log (at its reported offset), a record reported not
/// persisted is not, a possibly persisted one may be; idempotent: no record
/// twice and each partition in send order. Returns how many records the log
/// holds more than once (non-idempotent duplicates).
fn check_log(topic: &str, reports: &[Report], sent: usize, idempotent: bool) -> usize {
    assert_one_report_each(reports, sent);
    let by_tag: HashMap<usize, &Report> = reports.iter().map(|r| (r.tag, r)).collect();
    let ok = reports.iter().filter(|r| r.error == KP_OK).count();
    let got = consume_independent(topic, ok, "read_uncommitted");
    let mut count: HashMap<usize, usize> = HashMap::new();
    let mut last: HashMap<i32, usize> = HashMap::new();
    let mut offsets: HashMap<usize, Vec<(i32, i64)>> = HashMap::new();
    for c in &got {
        let (part, tag) = parse_tag(c.value.as_deref().unwrap());
        assert_eq!(part, c.partition, "record {tag} in partition {}", c.partition);
        *count.entry(tag).or_default() += 1;
        offsets.entry(tag).or_default().push((c.partition, c.offset));
        if idempotent {
            if let Some(prev) = last.insert(c.partition, tag) {
                let report = |t: usize| {
                    by_tag.get(&t).map(|r| (r.error, r.persistence, r.partition, r.offset))
                };
                assert!(
                    tag > prev,
                    "partition {}: record {tag} (offset {}) after {prev} (out of order or duplicate); \
                     kp's reports (error, persistence, partition, offset): {tag}: {:?}, {prev}: {:?}; \
                     where the log holds them: {tag}: {:?}, {prev}: {:?}",
                    c.partition,
                    c.offset,
                    report(tag),
                    report(prev),
                    offsets.get(&tag),
                    offsets.get(&prev)
                );
            }
        }
    }
    let mut dups = 0;
    let mut possibly_in_log = 0;
    for tag in 0..sent {
        let n = count.get(&tag).copied().unwrap_or(0);
        let r = by_tag[&tag];
        if n > 1 {
            dups += 1;
            assert!(!idempotent, "idempotent: record {tag} is in the log {n} times");
        }
        match r.persistence {
            KP_PERSISTED => {
                assert_eq!(r.error, KP_OK);
                assert!(n >= 1, "record {tag} was reported persisted but is not in the log");
                assert!(
                    offsets[&tag].contains(&(r.partition, r.offset)),
                    "record {tag}: reported at {}/{}, in the log at {:?}",
                    r.partition,
                    r.offset,
                    offsets[&tag]
                );
            }
            KP_NOT_PERSISTED => {
                assert_eq!(n, 0, "record {tag} was reported not persisted but is in the log: {r:?}")
            }
            KP_POSSIBLY_PERSISTED => {
                assert_ne!(r.error, KP_OK);
                possibly_in_log += (n > 0) as usize;
            }
            other => panic!("record {tag}: persistence {other}"),
        }
    }
    println!(
        "  log: {} records read back for {sent} sent ({ok} reported persisted, {possibly_in_log} \
         reported possibly persisted and in the log, {dups} in the log more than once)",
        got.len()
    );
    dups
}

fn flush_all(p: &TestProducer, what: &str) {
    let t = Instant::now();
    let rc = p.flush(90_000);
    let outstanding = unsafe { kp_producer_outstanding(p.p) };
    assert_eq!(rc, KP_OK, "{what}: flush: {outstanding} record(s) still without a report");
    println!("  {what}: flushed in {:?}", t.elapsed());
}

// ------------------------------------------------------------------ tests

#[test]
fn every_connection_goes_through_the_proxy() {
    let Some(bed) = bed() else { return };
    let topic = unique_topic("faults-route");
    create_topic(&topic, 6, 3, &[]);
    let p = producer(&bed, true, &[]);
    let n = 3000;
    for tag in 0..n {
        assert_eq!(send_tagged(&p, &topic, tag, 6, 100), KP_OK);
    }
    flush_all(&p, "through the proxy");
    let reports = p.reports();
    assert!(reports.iter().all(|r| r.error == KP_OK));
    let leaders: Vec<i32> = (0..6).map(|part| leader_of(&p, &topic, part)).collect();
    for (i, route) in bed.proxy.routes.iter().enumerate() {
        let s = route.stats();
        println!("  node {}: {s:?}", i + 1);
        if leaders.contains(&(i as i32 + 1)) {
            assert!(s.accepted >= 1, "node {} leads a partition but kp never connected", i + 1);
        }
    }
    // Every record's bytes passed the proxy (no direct connection to a broker).
    let total = bed.proxy.total();
    assert!(
        total.bytes_up >= (n * 100) as u64,
        "only {} bytes went through the proxy",
        total.bytes_up
    );
    check_log(&topic, &reports, n, true);
}

/// The leader of partition 0 stops answering (accepts, reads, never answers;
/// held bytes arrive late, after the client gave up on them) for longer than
/// request.timeout.ms (3 s) while records keep coming.
fn blackholed_leader(idempotent: bool, extra: &[(&str, &str)]) {
    let Some(bed) = bed() else { return };
    println!("blackholed leader: idempotence {idempotent}, {extra:?}");
    let topic = unique_topic("faults-bh");
    create_topic(&topic, 3, 3, &["--config", "min.insync.replicas=2"]);
    let mut settings = vec![("delivery.timeout.ms", "30000")];
    settings.extend_from_slice(extra);
    let p = producer(&bed, idempotent, &settings);
    let mut tag = 0;
    while tag < 300 {
        send_tagged(&p, &topic, tag, 3, 50);
        tag += 1;
    }
    flush_all(&p, "before");
    let leader = leader_of(&p, &topic, 0);
    let route = &bed.proxy.routes[leader as usize - 1];
    let before = route.stats();
    let t0 = Instant::now();
    route.blackhole(true);
    // 5 s of blackhole, a batch of records every 100 ms.
    while t0.elapsed() < Duration::from_secs(5) {
        for _ in 0..30 {
            send_tagged(&p, &topic, tag, 3, 50);
            tag += 1;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    route.blackhole(false);
    let during = route.stats();
    println!(
        "  node {leader} blackholed {:?}: kp opened {} connection(s) to it meanwhile",
        t0.elapsed(),
        during.accepted - before.accepted
    );
    for _ in 0..300 {
        send_tagged(&p, &topic, tag, 3, 50);
        tag += 1;
    }
    flush_all(&p, "after");
    let reports = p.reports();
    let failed: Vec<&Report> = reports.iter().filter(|r| r.error != KP_OK).collect();
    println!("  {} of {tag} records failed", failed.len());
    for r in &failed {
        assert_ne!(r.persistence, KP_PERSISTED, "{r:?}");
    }
    let retries_zero = extra.contains(&("retries", "0"));
    if retries_zero {
        assert!(!failed.is_empty(), "retries=0: no record failed, the blackhole did nothing");
        assert!(
            failed.iter().any(|r| r.persistence == KP_POSSIBLY_PERSISTED),
            "retries=0: no record reported possibly persisted"
        );
    } else {
        assert!(failed.is_empty(), "first failure: {:?}", failed[0]);
    }
    check_log(&topic, &reports, tag, idempotent);
    // The producer is still usable.
    let base = tag;
    for _ in 0..30 {
        send_tagged(&p, &topic, tag, 3, 50);
        tag += 1;
    }
    flush_all(&p, "afterwards");
    assert!(p.reports()[base..].iter().all(|r| r.error == KP_OK));
}

#[test]
fn blackholed_leader_idempotent_loses_nothing_duplicates_nothing_keeps_order() {
    blackholed_leader(true, &[]);
}

#[test]
fn blackholed_leader_without_idempotence_reports_each_record_once() {
    blackholed_leader(false, &[]);
    // No retries: what was sent and never answered is reported possibly
    // persisted (and may be in the log: the held bytes arrive late).
    blackholed_leader(false, &[("retries", "0")]);
}

/// Every broker unreachable (listeners closed, open connections blackholed)
/// for longer than delivery.timeout.ms, with a full buffer.
fn full_outage(idempotent: bool) {
    let Some(bed) = bed() else { return };
    println!("full outage: idempotence {idempotent}");
    let topic = unique_topic("faults-outage");
    create_topic(&topic, 3, 3, &[]);
    let buffer = 16 << 20;
    let p = producer(
        &bed,
        idempotent,
        &[
            ("delivery.timeout.ms", "8000"),
            ("max.block.ms", "500"),
            ("buffer.memory", &buffer.to_string()),
        ],
    );
    let mut tag = 0;
    for _ in 0..3000 {
        send_tagged(&p, &topic, tag, 3, 1000);
        tag += 1;
    }
    flush_all(&p, "before");
    std::thread::sleep(Duration::from_millis(500));
    let rss0 = vm_rss_kib();
    let test_heap0 = p.collector.heap_bytes();

    for r in &bed.proxy.routes {
        r.close_listener();
        r.blackhole(true);
    }
    let t_out = Instant::now();
    let first_out = tag;
    let (blocked, waited) = loop {
        let t = Instant::now();
        let rc = send_tagged(&p, &topic, tag, 3, 1000);
        if rc == KP_ERR_QUEUE_FULL {
            break (tag, t.elapsed());
        }
        tag += 1;
        assert!(tag - first_out < 10 * buffer / 1000, "buffer.memory is not enforced");
    };
    let accepted = tag - first_out;
    let rss_full = vm_rss_kib();
    println!(
        "  outage: {accepted} records accepted, then kp_send blocked {waited:?} and returned QUEUE_FULL (record {blocked})"
    );
    assert!(
        waited >= Duration::from_millis(450),
        "QUEUE_FULL after {waited:?}, before max.block.ms"
    );
    assert!(accepted * 1000 >= buffer / 2, "only {accepted} records of 1 KB filled {buffer} bytes");
    // Every record of the outage fails once delivery.timeout.ms (8 s) passed.
    {
        let reports = p.wait_reports(tag, Duration::from_secs(60));
        assert_one_report_each(&reports, tag);
        let outage_reports: Vec<&Report> = reports.iter().filter(|r| r.tag >= first_out).collect();
        assert!(
            outage_reports.iter().all(|r| r.error != KP_OK),
            "a record was delivered during the outage"
        );
        let possibly =
            outage_reports.iter().filter(|r| r.persistence == KP_POSSIBLY_PERSISTED).count();
        println!(
            "  all {accepted} failed after {:?} ({possibly} possibly persisted, the rest not persisted); errors: {:?}",
            t_out.elapsed(),
            outage_reports.iter().map(|r| r.error).collect::<std::collections::BTreeSet<_>>()
        );
    } // the copies of the reports are freed before RSS is measured again
    std::thread::sleep(Duration::from_millis(500));
    let rss_failed = vm_rss_kib();

    // The brokers come back: the producer delivers again.
    let t_back = Instant::now();
    for r in &bed.proxy.routes {
        r.blackhole(false);
        r.open_listener();
    }
    let first_probe = tag + 1; // `blocked` was refused: no report, tag reused below
    tag = first_probe;
    for _ in 0..3 {
        assert_eq!(send_tagged(&p, &topic, tag, 3, 1000), KP_OK);
        tag += 1;
    }
    let probes = loop {
        let r: Vec<Report> = p.reports().into_iter().filter(|r| r.tag >= first_probe).collect();
        if r.len() == 3 || t_back.elapsed() > Duration::from_secs(60) {
            break r;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let recovery = t_back.elapsed();
    println!("  recovery: the first records after the outage were delivered {recovery:?} after the brokers returned (retry.backoff.max.ms=1000)");
    assert!(
        probes.len() == 3 && probes.iter().all(|r| r.error == KP_OK),
        "after the outage: {probes:?}"
    );
    assert!(recovery < Duration::from_secs(20), "recovery took {recovery:?}");
    for _ in 0..3000 {
        assert_eq!(send_tagged(&p, &topic, tag, 3, 1000), KP_OK);
        tag += 1;
    }
    flush_all(&p, "after");
    std::thread::sleep(Duration::from_millis(500));
    let rss_after = vm_rss_kib();
    // The test itself keeps every report (topic and error message strings
    // included: ~16,000 more than at the baseline); that growth is the
    // test's, not kp's.
    let test_heap_kib = (p.collector.heap_bytes() - test_heap0) as u64 / 1024;
    let kp_kept_kib = rss_after.1.saturating_sub(rss0.1 + test_heap_kib);
    println!(
        "  VmRSS KiB (raw, after malloc_trim): baseline {rss0:?}, buffer full {rss_full:?}, \
         after the failures {rss_failed:?}, after recovery {rss_after:?}; the test's own \
         reports grew by {test_heap_kib} KiB, so kp kept {kp_kept_kib} KiB of the outage"
    );
    // The buffer (16 MiB) was full; afterwards kp holds at most a few MiB more
    // than before the outage.
    assert!(
        kp_kept_kib <= 4096,
        "kp kept {kp_kept_kib} KiB after the outage: RSS {} KiB (trimmed) against {} KiB before, \
         the test's reports {test_heap_kib} KiB",
        rss_after.1,
        rss0.1
    );
    // Check the log for every record but the refused one (no report: the
    // tags around it are checked, it is counted as not persisted).
    let mut reports = p.reports();
    reports.push(Report {
        tag: blocked,
        error: KP_ERR_QUEUE_FULL,
        persistence: KP_NOT_PERSISTED,
        ..reports[0].clone()
    });
    check_log(&topic, &reports, tag, idempotent);
}

#[test]
fn full_outage_idempotent_fails_each_record_once_and_recovers() {
    full_outage(true);
}

#[test]
fn full_outage_without_idempotence_fails_each_record_once_and_recovers() {
    full_outage(false);
}

/// Resets mid-response, then slow links (latency, bandwidth cap) and a half-close.
fn resets_and_slow_links(idempotent: bool) {
    let Some(bed) = bed() else { return };
    println!("resets and slow links: idempotence {idempotent}");
    let topic = unique_topic("faults-reset");
    create_topic(&topic, 3, 3, &[]);
    let p = producer(&bed, idempotent, &[("delivery.timeout.ms", "60000")]);
    let mut tag = 0;
    // Every connection is reset after 50..1500 bytes of responses.
    bed.proxy.update_all(|f| f.reset_after = Some((50, 1500)));
    let t = Instant::now();
    for i in 0..3000 {
        send_tagged(&p, &topic, tag, 3, 200);
        tag += 1;
        if i % 100 == 99 {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    flush_all(&p, "resets");
    let s = bed.proxy.total();
    println!("  resets: {s:?} in {:?}", t.elapsed());
    assert!(s.mid_response_resets >= 1, "no mid-response reset");

    // Slow links: 50 ms each way, 256 KiB/s per connection and direction;
    // halfway through every connection is half-closed by the "broker" side.
    bed.proxy.update_all(|f| {
        *f = Faults {
            latency: Duration::from_millis(50),
            bytes_per_sec: Some(256 * 1024),
            ..Faults::default()
        }
    });
    let t = Instant::now();
    for i in 0..3000 {
        send_tagged(&p, &topic, tag, 3, 500);
        tag += 1;
        if i == 1500 {
            let n: usize = bed.proxy.routes.iter().map(|r| r.half_close_connections()).sum();
            assert!(n > 0, "no connection to half-close");
        }
        if i % 100 == 99 {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    flush_all(&p, "slow links");
    let s2 = bed.proxy.total();
    println!("  slow links: {s2:?} in {:?}", t.elapsed());
    assert!(s2.half_closes > 0);
    bed.proxy.update_all(|f| *f = Faults::default());
    let reports = p.reports();
    let failed: Vec<&Report> = reports.iter().filter(|r| r.error != KP_OK).collect();
    assert!(failed.is_empty(), "{} failed, first: {:?}", failed.len(), failed.first());
    check_log(&topic, &reports, tag, idempotent);
}

#[test]
fn resets_mid_response_and_slow_links_idempotent_exactly_once_in_order() {
    resets_and_slow_links(true);
}

#[test]
fn resets_mid_response_and_slow_links_without_idempotence_one_report_each() {
    resets_and_slow_links(false);
}
