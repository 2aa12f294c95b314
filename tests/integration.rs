//! Integration tests against a real Apache Kafka cluster (started by
//! scripts/test.sh, or KP_BOOTSTRAP). What kp wrote is judged by clients kp
//! did not write: confluent-kafka (librdkafka) for Python, Kafka's own
//! ConsoleProducer/ConsoleConsumer/DumpLogSegments, and kcat.

mod common;

use std::collections::{HashMap, HashSet};
use std::ffi::{c_char, c_void, CString};
use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::*;
use kp::ffi::*;

fn rf() -> u32 {
    testbed_nodes().unwrap_or(3).min(3)
}

#[test]
fn every_codec_round_trips_byte_identical() {
    for codec in ["none", "gzip", "snappy", "lz4", "zstd"] {
        let topic = unique_topic(&format!("codec-{codec}"));
        create_topic(&topic, 3, rf(), &[]);
        let p =
            TestProducer::new(&[("compression.type", codec), ("linger.ms", "20"), ("acks", "all")]);
        let n = 300usize;
        let base_ts =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis()
                as i64
                - 3_600_000;
        let mut sent = Vec::new();
        for i in 0..n {
            // Binary values of varying size (incl. empty and null), binary
            // keys (incl. null), headers with null and binary values.
            let key: Option<Vec<u8>> =
                if i % 7 == 0 { None } else { Some(format!("key-{i}").into_bytes()) };
            let value: Option<Vec<u8>> = match i % 11 {
                0 => None,
                1 => Some(Vec::new()),
                _ => Some((0..(i * 13 % 2000)).map(|b| ((b * 31 + i) % 256) as u8).collect()),
            };
            let hv = vec![0u8, 1, 2, 255, b'\n'];
            let headers: Vec<(&str, Option<&[u8]>)> = match i % 3 {
                0 => vec![],
                1 => vec![("h1", Some(b"v1".as_slice()))],
                _ => vec![
                    ("bin", Some(hv.as_slice())),
                    ("null", None),
                    ("h1", Some(b"again".as_slice())),
                ],
            };
            // Recent explicit timestamps: records older than retention.ms
            // (7 days) would be deleted by the broker's retention check.
            let ts = base_ts + i as i64;
            let (rc, msg) = p.send(
                &Rec {
                    topic: &topic,
                    partition: KP_PARTITION_ANY,
                    key: key.as_deref(),
                    value: value.as_deref(),
                    headers: &headers,
                    timestamp: ts,
                },
                i,
            );
            assert_eq!(rc, KP_OK, "{codec}: send {i}: {msg}");
            sent.push((
                key,
                value,
                headers
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.map(|v| v.to_vec())))
                    .collect::<Vec<_>>(),
                ts,
            ));
        }
        assert_eq!(p.flush(60_000), KP_OK, "{codec}: flush");
        let reports = p.reports();
        assert_one_report_each(&reports, n);
        for r in &reports {
            assert_eq!(r.error, KP_OK, "{codec}: record {} failed: {:?}", r.tag, r.message);
            assert_eq!(r.persistence, KP_PERSISTED);
            assert!(r.offset >= 0);
        }
        let by_pos: HashMap<(i32, i64), usize> =
            reports.iter().map(|r| ((r.partition, r.offset), r.tag)).collect();
        let got = consume_independent(&topic, n, "read_uncommitted");
        assert_eq!(got.len(), n, "{codec}: consumer saw {} records", got.len());
        for c in &got {
            let tag = *by_pos.get(&(c.partition, c.offset)).unwrap_or_else(|| {
                panic!("{codec}: unexpected record at {}:{}", c.partition, c.offset)
            });
            let (k, v, h, ts) = &sent[tag];
            assert_eq!(&c.key, k, "{codec}: key of record {tag}");
            assert_eq!(&c.value, v, "{codec}: value of record {tag}");
            assert_eq!(&c.headers, h, "{codec}: headers of record {tag}");
            assert_eq!(c.timestamp, *ts, "{codec}: timestamp of record {tag}");
        }
        // Kafka's own DumpLogSegments: valid CRCs and the right codec.
        let leader = leader_of(&p, &topic, 0).to_string();
        let dump = kafka(&["dump-log", &topic, "0", &leader]);
        let want_codec = codec;
        let batches: Vec<&str> = dump.lines().filter(|l| l.contains("baseOffset:")).collect();
        assert!(!batches.is_empty(), "{codec}: DumpLogSegments shows no batch:\n{dump}");
        for b in &batches {
            assert!(b.contains("isvalid: true"), "{codec}: invalid batch: {b}");
            assert!(
                b.contains(&format!("compresscodec: {want_codec}")),
                "{codec}: wrong codec: {b}"
            );
        }
        drop(p);
    }
}

fn partitions_seen_by_console_consumer(topic: &str, n: usize) -> HashMap<String, i32> {
    let out = kafka(&["consume", topic, &n.to_string()]);
    let mut m = HashMap::new();
    for line in out.lines() {
        // CreateTime:..\tPartition:P\tOffset:O\tHEADERS\tKEY\tVALUE
        let cols: Vec<&str> = line.split('\t').collect();
        let p = cols.iter().find_map(|c| c.strip_prefix("Partition:")).expect("partition column");
        let key = cols[cols.len() - 2];
        m.insert(key.to_string(), p.parse().unwrap());
    }
    m
}

#[test]
fn keyed_records_land_where_java_and_librdkafka_put_them() {
    let n = 200;
    let keys: Vec<String> = (0..n).map(|i| format!("user-{i}-{}", i * 7919)).collect();
    // Java's producer (Kafka's ConsoleProducer) places the same keys.
    let java_topic = unique_topic("keys-java");
    create_topic(&java_topic, 7, rf(), &[]);
    let mut child = Command::new("bash")
        .arg(format!("{}/testbed/kafka.sh", repo()))
        .args([
            "console-produce",
            &java_topic,
            "--property",
            "parse.key=true",
            "--property",
            "key.separator=:",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    {
        let stdin = child.stdin.as_mut().unwrap();
        for k in &keys {
            writeln!(stdin, "{k}:v").unwrap();
        }
    }
    assert!(child.wait().unwrap().success(), "ConsoleProducer failed");
    let java = partitions_seen_by_console_consumer(&java_topic, n);
    assert_eq!(java.len(), n);

    let kp_topic = unique_topic("keys-kp");
    create_topic(&kp_topic, 7, rf(), &[]);
    let p = TestProducer::new(&[]);
    for (i, k) in keys.iter().enumerate() {
        let r = Rec { key: Some(k.as_bytes()), ..Rec::new(&kp_topic, b"v") };
        assert_eq!(p.send(&r, i).0, KP_OK);
    }
    assert_eq!(p.flush(30_000), KP_OK);
    for r in p.reports() {
        assert_eq!(r.error, KP_OK);
        assert_eq!(
            r.partition, java[&keys[r.tag]],
            "key {} placed differently from the Java producer",
            keys[r.tag]
        );
    }
    // And the independent reader agrees with the reports.
    let kp_seen = partitions_seen_by_console_consumer(&kp_topic, n);
    assert_eq!(kp_seen, java);

    // librdkafka (kcat's default partitioner is consistent_random = CRC32).
    let rdk_topic = unique_topic("keys-rdk");
    create_topic(&rdk_topic, 7, rf(), &[]);
    let mut child = Command::new("kcat")
        .args([
            "-P",
            "-b",
            &bootstrap(),
            "-t",
            &rdk_topic,
            "-K",
            ":",
            "-X",
            "topic.partitioner=consistent_random",
        ])
        .stdin(Stdio::piped())
        .spawn()
        .expect("kcat (scripts/install-deps.sh installs it)");
    {
        let stdin = child.stdin.as_mut().unwrap();
        for k in &keys {
            writeln!(stdin, "{k}:v").unwrap();
        }
    }
    assert!(child.wait().unwrap().success(), "kcat failed");
    let rdk = partitions_seen_by_console_consumer(&rdk_topic, n);
    let p2 = TestProducer::new(&[("partitioner", "consistent_random")]);
    for (i, k) in keys.iter().enumerate() {
        let r = Rec { key: Some(k.as_bytes()), ..Rec::new(&kp_topic, b"v") };
        assert_eq!(p2.send(&r, i).0, KP_OK);
    }
    assert_eq!(p2.flush(30_000), KP_OK);
    for r in p2.reports() {
        assert_eq!(
            r.partition, rdk[&keys[r.tag]],
            "key {} placed differently from librdkafka's consistent_random",
            keys[r.tag]
        );
    }
    // The two hashes really differ for some keys (else the test proves nothing).
    assert!(keys.iter().any(|k| java[k] != rdk[k]));
}

#[test]
fn acks_zero_one_and_all_each_deliver() {
    for acks in ["0", "1", "all"] {
        let topic = unique_topic(&format!("acks{acks}"));
        create_topic(&topic, 2, rf(), &[]);
        let p = TestProducer::new(&[("acks", acks)]);
        let n = 500;
        for i in 0..n {
            let v = format!("acks-{acks}-{i}");
            assert_eq!(p.send(&Rec::new(&topic, v.as_bytes()), i).0, KP_OK);
        }
        assert_eq!(p.flush(30_000), KP_OK);
        let reports = p.reports();
        assert_one_report_each(&reports, n);
        for r in &reports {
            assert_eq!(r.error, KP_OK, "acks={acks}: {:?}", r.message);
            if acks == "0" {
                assert_eq!(r.offset, -1, "acks=0 has no offsets");
                assert_eq!(r.persistence, KP_POSSIBLY_PERSISTED);
            } else {
                assert!(r.offset >= 0);
                assert_eq!(r.persistence, KP_PERSISTED);
            }
        }
        let got = consume_independent(&topic, n, "read_uncommitted");
        let values: HashSet<Vec<u8>> = got.iter().filter_map(|c| c.value.clone()).collect();
        assert_eq!(values.len(), n, "acks={acks}: consumer saw {} distinct records", values.len());
    }
}

fn isr_size(topic: &str) -> usize {
    let out = kafka(&[
        "java",
        "org.apache.kafka.tools.TopicCommand",
        "--bootstrap-server",
        &bootstrap(),
        "--describe",
        "--topic",
        topic,
    ]);
    let line = out.lines().find(|l| l.contains("Isr:")).unwrap_or_default();
    let isr = line.split("Isr: ").nth(1).unwrap_or("").split('\t').next().unwrap_or("");
    isr.split(',').filter(|s| !s.trim().is_empty()).count()
}

#[test]
fn not_enough_replicas_is_reported_after_retries_not_a_hang() {
    // Kafka 4 caps min.insync.replicas at the replication factor (KIP-966),
    // so this needs a real replica to drop out of the ISR.
    if testbed_nodes() != Some(3) {
        eprintln!(
            "SKIPPED: needs the 3-node testbed cluster (scripts/test.sh) to take a replica down"
        );
        return;
    }
    let topic = unique_topic("nerepl");
    create_topic(&topic, 1, 3, &["--config", "min.insync.replicas=3"]);
    kafka(&["kill-node", "3"]);
    let deadline = Instant::now() + Duration::from_secs(60);
    while isr_size(&topic) > 2 {
        assert!(Instant::now() < deadline, "ISR never shrank after killing node 3");
        std::thread::sleep(Duration::from_millis(500));
    }
    let result = std::panic::catch_unwind(|| {
        let p = TestProducer::new(&[
            ("acks", "all"),
            ("linger.ms", "0"),
            ("request.timeout.ms", "2000"),
            ("delivery.timeout.ms", "6000"),
            ("retry.backoff.ms", "100"),
        ]);
        let start = Instant::now();
        for i in 0..10 {
            assert_eq!(p.send(&Rec::new(&topic, b"x"), i).0, KP_OK);
        }
        assert_eq!(p.flush(30_000), KP_OK, "flush must end: reports arrive, no hang");
        let reports = p.reports();
        assert_one_report_each(&reports, 10);
        for r in &reports {
            assert_eq!(r.error, KP_ERR_NOT_ENOUGH_REPLICAS, "{:?}", r.message);
            assert!(r.retriable);
            assert_eq!(r.persistence, KP_NOT_PERSISTED);
            let m = r.message.as_deref().unwrap();
            assert!(m.contains("attempt"), "message should say it retried: {m}");
        }
        assert!(
            start.elapsed() >= Duration::from_millis(1000),
            "it should have retried for a while"
        );

        // With a bounded retry count it gives up with the same error.
        let p = TestProducer::new(&[
            ("acks", "all"),
            ("linger.ms", "0"),
            ("retries", "2"),
            ("retry.backoff.ms", "50"),
        ]);
        assert_eq!(p.send(&Rec::new(&topic, b"x"), 0).0, KP_OK);
        assert_eq!(p.flush(30_000), KP_OK);
        let r = &p.reports()[0];
        assert_eq!(r.error, KP_ERR_NOT_ENOUGH_REPLICAS);
        assert!(r.message.as_deref().unwrap().contains("3 attempt"), "{:?}", r.message);
    });
    kafka(&["start-node", "3"]);
    if let Err(e) = result {
        std::panic::resume_unwind(e);
    }
}

#[test]
fn broker_killed_and_restarted_loses_nothing() {
    if testbed_nodes() != Some(3) {
        eprintln!("SKIPPED: needs the 3-node testbed cluster (scripts/test.sh) to kill brokers");
        return;
    }
    let topic = unique_topic("failover");
    create_topic(&topic, 3, 3, &["--config", "min.insync.replicas=2"]);
    let p =
        TestProducer::new(&[("acks", "all"), ("linger.ms", "5"), ("request.timeout.ms", "5000")]);
    let n = 30_000usize;
    let sent = AtomicUsize::new(0);
    std::thread::scope(|s| {
        s.spawn(|| {
            for i in 0..n {
                let v = format!("seq-{i:08}");
                let (rc, msg) = p.send(&Rec::new(&topic, v.as_bytes()), i);
                assert_eq!(rc, KP_OK, "send {i}: {msg}");
                sent.store(i + 1, Ordering::Release);
                if i % 100 == 0 {
                    std::thread::sleep(Duration::from_millis(5));
                }
            }
        });
        // Kill the leader-holding node 2 while records flow, then restart it.
        while sent.load(Ordering::Acquire) < n / 4 {
            std::thread::sleep(Duration::from_millis(10));
        }
        kafka(&["kill-node", "2"]);
        std::thread::sleep(Duration::from_secs(3));
        kafka(&["start-node", "2"]);
        while sent.load(Ordering::Acquire) < n * 3 / 4 {
            std::thread::sleep(Duration::from_millis(10));
        }
        kafka(&["kill-node", "1"]);
        std::thread::sleep(Duration::from_secs(3));
        kafka(&["start-node", "1"]);
    });
    assert_eq!(p.flush(120_000), KP_OK, "flush after failover");
    let reports = p.reports();
    assert_one_report_each(&reports, n);
    let failed: Vec<_> = reports.iter().filter(|r| r.error != KP_OK).collect();
    assert!(failed.is_empty(), "{} record(s) failed, first: {:?}", failed.len(), failed.first());
    let got = consume_independent(&topic, n, "read_uncommitted");
    let values: HashSet<Vec<u8>> = got.iter().filter_map(|c| c.value.clone()).collect();
    for i in 0..n {
        assert!(values.contains(format!("seq-{i:08}").as_bytes()), "record {i} lost");
    }
    eprintln!(
        "failover: {} records read for {} sent ({} duplicates)",
        got.len(),
        n,
        got.len() - values.len()
    );
}

#[test]
fn oversized_record_is_rejected_and_nothing_else_is_lost() {
    let topic = unique_topic("toolarge");
    create_topic(&topic, 1, rf(), &[]);
    let p = TestProducer::new(&[("max.request.size", "100000")]);
    assert_eq!(p.send(&Rec::new(&topic, b"before"), 0).0, KP_OK);
    let big = vec![7u8; 200_000];
    let (rc, msg) = p.send(&Rec::new(&topic, &big), 1);
    assert_eq!(rc, KP_ERR_RECORD_TOO_LARGE);
    assert!(msg.contains("max.request.size"), "{msg}");
    assert_eq!(p.send(&Rec::new(&topic, b"after"), 2).0, KP_OK);
    assert_eq!(p.flush(30_000), KP_OK);
    let reports = p.reports();
    assert_eq!(reports.len(), 2, "the rejected record gets no report, the others one each");
    assert!(reports.iter().all(|r| r.error == KP_OK));
    let got = consume_independent(&topic, 2, "read_uncommitted");
    let vals: Vec<_> = got.iter().map(|c| c.value.clone().unwrap()).collect();
    assert_eq!(vals, vec![b"before".to_vec(), b"after".to_vec()]);
}

#[test]
fn invalid_topic_names_get_a_clear_error() {
    let p = TestProducer::new(&[]);
    for bad in ["has space", "", "..", "x/y", &"a".repeat(250)] {
        let (rc, msg) = p.send(&Rec::new(bad, b"v"), 0);
        assert_eq!(rc, KP_ERR_INVALID_TOPIC, "topic {bad:?}");
        assert!(msg.contains("topic"), "{msg}");
    }
    assert!(p.reports().is_empty());
}

#[test]
fn unknown_topic_fails_after_delivery_timeout() {
    let topic = unique_topic("nosuchtopic");
    let p = TestProducer::new(&[
        ("request.timeout.ms", "1000"),
        ("delivery.timeout.ms", "3000"),
        ("linger.ms", "0"),
    ]);
    let start = Instant::now();
    for i in 0..3 {
        assert_eq!(p.send(&Rec::new(&topic, b"v"), i).0, KP_OK);
    }
    let reports = p.wait_reports(3, Duration::from_secs(30));
    assert_one_report_each(&reports, 3);
    let took = start.elapsed();
    assert!(took >= Duration::from_millis(3000), "failed before delivery.timeout.ms: {took:?}");
    for r in &reports {
        assert_eq!(r.error, KP_ERR_UNKNOWN_TOPIC_OR_PARTITION, "{:?}", r.message);
        assert!(r.message.as_deref().unwrap().contains(&topic));
        assert_eq!(r.persistence, KP_NOT_PERSISTED);
    }
}

#[test]
fn unreachable_bootstrap_fails_clearly_not_a_hang() {
    let cfg = config(&[
        ("bootstrap.servers", "127.0.0.1:1,127.0.0.1:2"),
        ("request.timeout.ms", "1000"),
        ("delivery.timeout.ms", "2500"),
        ("linger.ms", "0"),
    ]);
    let p = TestProducer::with_config(cfg);
    assert_eq!(p.send(&Rec::new("anything", b"v"), 0).0, KP_OK);
    let reports = p.wait_reports(1, Duration::from_secs(30));
    assert_eq!(reports.len(), 1);
    assert_eq!(reports[0].error, KP_ERR_ALL_BROKERS_DOWN, "{:?}", reports[0].message);
    let m = reports[0].message.as_deref().unwrap();
    assert!(
        m.contains("127.0.0.1:1") && m.contains("refused"),
        "message should name the brokers and the cause: {m}"
    );
    // Metadata queries end at their timeout with the reason.
    let t = CString::new("anything").unwrap();
    let mut info = std::ptr::null_mut();
    let mut err = [0 as c_char; 512];
    let rc =
        unsafe { kp_partitions_for(p.p, t.as_ptr(), 500, &mut info, err.as_mut_ptr(), err.len()) };
    assert_eq!(rc, KP_ERR_TIMED_OUT);
    assert!(info.is_null());
    assert!(cstr_buf(&err).contains("127.0.0.1"), "{}", cstr_buf(&err));
}

#[test]
fn full_buffer_blocks_up_to_max_block_ms_then_fails() {
    // Nothing drains (unreachable broker), so the buffer fills up.
    for (block_ms, expect_wait) in [("0", false), ("300", true)] {
        let cfg = config(&[
            ("bootstrap.servers", "127.0.0.1:1"),
            ("buffer.memory", "65536"),
            ("max.block.ms", block_ms),
        ]);
        let p = TestProducer::with_config(cfg);
        let value = vec![1u8; 1000];
        let mut accepted = 0;
        let (rc, msg, waited) = loop {
            let t = Instant::now();
            let (rc, msg) = p.send(&Rec::new("t", &value), accepted);
            if rc != KP_OK {
                break (rc, msg, t.elapsed());
            }
            accepted += 1;
            assert!(accepted < 1000, "buffer.memory is not enforced");
        };
        assert_eq!(rc, KP_ERR_QUEUE_FULL, "{msg}");
        assert!(msg.contains("buffer.memory"), "{msg}");
        // Records may fill 7/8 of the pool (the rest is headroom for batch
        // growth), and each one parked for metadata counts its copy's
        // bookkeeping too (~150 B): about 47 fit.
        assert!(accepted >= 40, "accepted only {accepted} records of 1 KB in 64 KB");
        if expect_wait {
            assert!(
                waited >= Duration::from_millis(300),
                "returned after {waited:?}, before max.block.ms"
            );
        }
        // Close: every accepted record still gets exactly one report.
        assert_eq!(p.close(0), KP_ERR_TIMED_OUT);
        let reports = p.reports();
        assert_one_report_each(&reports, accepted);
        assert!(reports
            .iter()
            .all(|r| r.error == KP_ERR_CLOSED && r.persistence == KP_NOT_PERSISTED));
    }
}

#[test]
fn close_with_queued_records_delivers_or_fails_each_once() {
    // Reachable cluster, long linger: close sends everything and waits.
    let topic = unique_topic("close");
    create_topic(&topic, 3, rf(), &[]);
    let p = TestProducer::new(&[("linger.ms", "60000")]);
    for i in 0..1000 {
        assert_eq!(p.send(&Rec::new(&topic, format!("c{i}").as_bytes()), i).0, KP_OK);
    }
    assert_eq!(p.close(30_000), KP_OK);
    let reports = p.reports();
    assert_one_report_each(&reports, 1000);
    assert!(reports.iter().all(|r| r.error == KP_OK));
    let (rc, _) = p.send(&Rec::new(&topic, b"late"), 0);
    assert_eq!(rc, KP_ERR_CLOSED);

    // Unreachable cluster: close times out and fails each record once.
    let p = TestProducer::with_config(config(&[("bootstrap.servers", "127.0.0.1:1")]));
    for i in 0..100 {
        assert_eq!(p.send(&Rec::new("x", b"v"), i).0, KP_OK);
    }
    let t = Instant::now();
    assert_eq!(p.close(500), KP_ERR_TIMED_OUT);
    assert!(t.elapsed() < Duration::from_secs(20));
    let reports = p.reports();
    assert_one_report_each(&reports, 100);
    assert!(reports.iter().all(|r| r.error == KP_ERR_CLOSED));
}

#[test]
fn metadata_query_lists_partitions_and_leaders() {
    let topic = unique_topic("meta");
    create_topic(&topic, 5, rf(), &[]);
    let p = TestProducer::new(&[]);
    let t = CString::new(topic.as_str()).unwrap();
    let mut info = std::ptr::null_mut();
    let mut err = [0 as c_char; 512];
    let rc = unsafe {
        kp_partitions_for(p.p, t.as_ptr(), 10_000, &mut info, err.as_mut_ptr(), err.len())
    };
    assert_eq!(rc, KP_OK, "{}", cstr_buf(&err));
    unsafe {
        assert_eq!(kp_topic_info_partition_count(info), 5);
        for i in 0..5 {
            assert!(kp_topic_info_leader(info, i) >= 1, "partition {i} has no leader");
        }
        assert_eq!(kp_topic_info_leader(info, 5), -1);
        kp_topic_info_destroy(info);
    }
}

static ON_SEND: AtomicUsize = AtomicUsize::new(0);
static ON_ACK: AtomicUsize = AtomicUsize::new(0);

unsafe extern "C" fn count_send(_r: *const kp_record_t, _ctx: *mut c_void) {
    ON_SEND.fetch_add(1, Ordering::Relaxed);
}
unsafe extern "C" fn count_ack(_r: *const kp_report_t, _ctx: *mut c_void) {
    ON_ACK.fetch_add(1, Ordering::Relaxed);
}
unsafe extern "C" fn last_partition(
    _t: *const c_char,
    _k: *const c_void,
    _kl: usize,
    n: i32,
    ctx: *mut c_void,
) -> i32 {
    assert_eq!(ctx as usize, 42);
    n - 1
}

#[test]
fn interceptors_and_custom_partitioner_are_called() {
    let topic = unique_topic("icpt");
    create_topic(&topic, 4, rf(), &[]);
    let cfg = config(&[("bootstrap.servers", &bootstrap())]);
    unsafe {
        assert_eq!(
            kp_config_set_interceptors(
                cfg,
                Some(count_send),
                Some(count_ack),
                std::ptr::null_mut()
            ),
            KP_OK
        );
        assert_eq!(kp_config_set_partitioner(cfg, Some(last_partition), 42 as *mut c_void), KP_OK);
    }
    let p = TestProducer::with_config(cfg);
    for i in 0..50 {
        let r = Rec { key: Some(b"k"), ..Rec::new(&topic, b"v") };
        assert_eq!(p.send(&r, i).0, KP_OK);
    }
    assert_eq!(p.flush(30_000), KP_OK);
    assert_eq!(ON_SEND.load(Ordering::Relaxed), 50);
    assert_eq!(ON_ACK.load(Ordering::Relaxed), 50);
    assert!(p.reports().iter().all(|r| r.error == KP_OK && r.partition == 3));
}

#[test]
fn poll_mode_delivers_on_the_callers_thread_with_a_readable_fd() {
    let topic = unique_topic("poll");
    create_topic(&topic, 1, rf(), &[]);
    let p = TestProducer::new(&[("delivery.report.mode", "poll"), ("linger.ms", "0")]);
    let fd = unsafe { kp_poll_fd(p.p) };
    assert!(fd >= 0);
    for i in 0..20 {
        assert_eq!(p.send(&Rec::new(&topic, b"v"), i).0, KP_OK);
    }
    // The fd becomes readable once reports wait; nothing runs until we poll.
    let mut pfd = libc::pollfd { fd, events: libc::POLLIN, revents: 0 };
    let ready = unsafe { libc::poll(&mut pfd, 1, 20_000) };
    assert_eq!(ready, 1, "poll fd never became readable");
    std::thread::sleep(Duration::from_millis(200));
    let mut served = 0;
    let deadline = Instant::now() + Duration::from_secs(20);
    while served < 20 && Instant::now() < deadline {
        served += unsafe { kp_poll(p.p, 100) } as usize;
    }
    assert_eq!(served, 20);
    let me = std::thread::current().id();
    assert!(p.reports().iter().all(|r| r.thread == me && r.error == KP_OK));
}

#[test]
fn null_keys_stick_to_a_partition_for_about_a_batch_then_move_on() {
    let topic = unique_topic("sticky");
    create_topic(&topic, 4, rf(), &[]);
    let batch_size = 16384;
    let p = TestProducer::new(&[("batch.size", "16384"), ("linger.ms", "20")]);
    let value = vec![b'v'; 1000];
    let n = 400;
    for i in 0..n {
        assert_eq!(p.send(&Rec::new(&topic, &value), i).0, KP_OK);
    }
    assert_eq!(p.flush(30_000), KP_OK);
    let mut reports = p.reports();
    assert_one_report_each(&reports, n);
    assert!(reports.iter().all(|r| r.error == KP_OK));
    reports.sort_by_key(|r| r.tag);
    // Runs of consecutive records on one partition (send order).
    let mut runs: Vec<(i32, usize)> = Vec::new();
    for r in &reports {
        match runs.last_mut() {
            Some((part, len)) if *part == r.partition => *len += 1,
            _ => runs.push((r.partition, 1)),
        }
    }
    let partitions: std::collections::HashSet<i32> = runs.iter().map(|r| r.0).collect();
    assert!(partitions.len() >= 3, "null-key records used only partitions {partitions:?}");
    // About batch.size bytes per partition, then another partition: a record
    // here costs 1000 bytes of value plus its framing and bookkeeping.
    let (lo, hi) = (batch_size / 1100, batch_size / 1000 + 1);
    for (i, (part, len)) in runs.iter().enumerate().take(runs.len() - 1) {
        assert!(
            (lo..=hi).contains(len),
            "run {i}: {len} records on partition {part}, expected {lo}..={hi}; runs {runs:?}"
        );
    }
}

#[test]
fn synchronous_send_returns_partition_and_offset() {
    let topic = unique_topic("sync");
    create_topic(&topic, 2, rf(), &[]);
    let p = TestProducer::new(&[]);
    let t = CString::new(topic.as_str()).unwrap();
    let mut last = -1;
    for i in 0..5 {
        let v = format!("s{i}");
        let rec = kp_record_t {
            struct_size: std::mem::size_of::<kp_record_t>(),
            topic: t.as_ptr(),
            partition: 1,
            key: std::ptr::null(),
            key_len: 0,
            value: v.as_ptr() as *const c_void,
            value_len: v.len(),
            headers: std::ptr::null(),
            header_count: 0,
            timestamp_ms: 0,
            value_free: None,
            value_free_opaque: std::ptr::null_mut(),
        };
        let (mut part, mut off) = (-5, -5);
        let mut err = [0 as c_char; 256];
        let rc = unsafe {
            kp_send_sync(p.p, &rec, 10_000, &mut part, &mut off, err.as_mut_ptr(), err.len())
        };
        assert_eq!(rc, KP_OK, "{}", cstr_buf(&err));
        assert_eq!(part, 1);
        assert!(off > last);
        last = off;
    }
    // Explicit partition out of range: immediate error.
    let rec = kp_record_t {
        struct_size: std::mem::size_of::<kp_record_t>(),
        topic: t.as_ptr(),
        partition: 9,
        key: std::ptr::null(),
        key_len: 0,
        value: std::ptr::null(),
        value_len: 0,
        headers: std::ptr::null(),
        header_count: 0,
        timestamp_ms: 0,
        value_free: None,
        value_free_opaque: std::ptr::null_mut(),
    };
    let mut err = [0 as c_char; 256];
    let rc = unsafe {
        kp_send_sync(
            p.p,
            &rec,
            10_000,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            err.as_mut_ptr(),
            err.len(),
        )
    };
    assert_eq!(rc, KP_ERR_UNKNOWN_PARTITION, "{}", cstr_buf(&err));
    assert!(cstr_buf(&err).contains("2 partition"));
}

#[test]
fn config_errors_name_the_key() {
    let cfg = kp_config_new();
    let mut err = [0 as c_char; 256];
    let set = |k: &str, v: &str, err: &mut [c_char; 256]| unsafe {
        let k = CString::new(k).unwrap();
        let v = CString::new(v).unwrap();
        kp_config_set(cfg, k.as_ptr(), v.as_ptr(), err.as_mut_ptr(), err.len())
    };
    assert_eq!(set("linger.msec", "5", &mut err), KP_CONFIG_UNKNOWN);
    assert!(cstr_buf(&err).contains("linger.msec"));
    assert_eq!(set("acks", "most", &mut err), KP_CONFIG_INVALID);
    assert!(cstr_buf(&err).contains("acks"));
    assert_eq!(set("compression.codec", "brotli", &mut err), KP_CONFIG_INVALID);
    assert!(cstr_buf(&err).contains("compression.codec"));
    // Cross-checks happen at kp_producer_new, which leaves cfg with the caller.
    assert_eq!(set("bootstrap.servers", &bootstrap(), &mut err), KP_CONFIG_OK);
    assert_eq!(set("enable.idempotence", "true", &mut err), KP_CONFIG_OK);
    assert_eq!(set("acks", "1", &mut err), KP_CONFIG_OK);
    let p = unsafe { kp_producer_new(cfg, err.as_mut_ptr(), err.len()) };
    assert!(p.is_null());
    assert!(cstr_buf(&err).contains("acks"), "{}", cstr_buf(&err));
    unsafe { kp_config_destroy(cfg) };
}

#[test]
fn idempotent_stream_is_exactly_once_and_in_order_through_leader_kills() {
    if testbed_nodes() != Some(3) {
        eprintln!("SKIPPED: needs the 3-node testbed cluster (scripts/test.sh) to kill leaders");
        return;
    }
    let topic = unique_topic("idem");
    create_topic(&topic, 3, 3, &["--config", "min.insync.replicas=2"]);
    let p = TestProducer::new(&[
        ("enable.idempotence", "true"),
        ("linger.ms", "5"),
        ("request.timeout.ms", "5000"),
    ]);
    let n = 200_000usize;
    let sent = AtomicUsize::new(0);
    let kills = AtomicUsize::new(0);
    std::thread::scope(|s| {
        s.spawn(|| {
            for i in 0..n {
                let part = (i % 3) as i32;
                let v = format!("p{part}-{i:09}");
                let r = Rec { partition: part, ..Rec::new(&topic, v.as_bytes()) };
                let (rc, msg) = p.send(&r, i);
                assert_eq!(rc, KP_OK, "send {i}: {msg}");
                sent.store(i + 1, Ordering::Release);
                if i % 2000 == 0 {
                    std::thread::sleep(Duration::from_millis(10));
                }
            }
        });
        // Kill the current leader of partition (k % 3) three times mid-stream.
        for k in 0..3 {
            while sent.load(Ordering::Acquire) < n * (k + 1) / 4 {
                std::thread::sleep(Duration::from_millis(10));
            }
            let leader = leader_of(&p, &topic, k as i32);
            kafka(&["kill-node", &leader.to_string()]);
            kills.fetch_add(1, Ordering::Relaxed);
            std::thread::sleep(Duration::from_secs(2));
            kafka(&["start-node", &leader.to_string()]);
        }
    });
    assert_eq!(kills.load(Ordering::Relaxed), 3);
    assert_eq!(p.flush(180_000), KP_OK, "flush after leader kills");
    let reports = p.reports();
    assert_one_report_each(&reports, n);
    let failed: Vec<_> = reports.iter().filter(|r| r.error != KP_OK).collect();
    assert!(failed.is_empty(), "{} record(s) failed, first: {:?}", failed.len(), failed.first());
    let got = consume_independent(&topic, n, "read_uncommitted");
    assert_eq!(got.len(), n, "exactly once: the consumer read {} records for {n} sent", got.len());
    let mut last: HashMap<i32, i64> = HashMap::new();
    let mut seen = HashSet::new();
    for c in &got {
        let v = String::from_utf8(c.value.clone().unwrap()).unwrap();
        let (ptag, seq) = v.split_once('-').unwrap();
        assert_eq!(ptag, format!("p{}", c.partition), "record {v} in partition {}", c.partition);
        let seq: i64 = seq.parse().unwrap();
        if let Some(prev) = last.insert(c.partition, seq) {
            assert!(
                seq > prev,
                "partition {}: {seq} after {prev} (out of order or duplicate)",
                c.partition
            );
        }
        assert!(seen.insert(seq), "duplicate {v}");
    }
    assert_eq!(seen.len(), n);
    // The log carries kp's producer id and sequences.
    let leader = leader_of(&p, &topic, 0).to_string();
    let dump = kafka(&["dump-log", &topic, "0", &leader]);
    let first = dump.lines().find(|l| l.contains("baseOffset: 0 ")).expect("first batch");
    assert!(first.contains("baseSequence: 0 "), "{first}");
    assert!(!first.contains("producerId: -1"), "{first}");
}

#[test]
fn purge_reports_each_record_once_and_the_producer_carries_on() {
    let topic = unique_topic("purge");
    create_topic(&topic, 3, rf(), &[]);
    // Queued only: a long linger keeps everything in the accumulator.
    let p = TestProducer::new(&[("linger.ms", "60000")]);
    for i in 0..500 {
        assert_eq!(p.send(&Rec::new(&topic, b"queued"), i).0, KP_OK);
    }
    assert_eq!(unsafe { kp_purge(p.p, KP_PURGE_QUEUED) }, KP_OK);
    let reports = p.wait_reports(500, Duration::from_secs(30));
    assert_one_report_each(&reports, 500);
    assert!(reports
        .iter()
        .all(|r| r.error == KP_ERR_PURGED_QUEUED && r.persistence == KP_NOT_PERSISTED));
    assert_eq!(unsafe { kp_purge(p.p, 8) }, KP_ERR_INVALID_ARG);
    assert_eq!(unsafe { kp_purge(std::ptr::null_mut(), KP_PURGE_QUEUED) }, KP_ERR_INVALID_ARG);

    // Queued and in flight, under load (idempotent producer: it must bump
    // its epoch and keep going afterwards).
    let p2 = TestProducer::new(&[("linger.ms", "0"), ("enable.idempotence", "true")]);
    let value = vec![b'x'; 1000];
    // Several purges in a row: each bump gives a new producer id, and the
    // first batches of a new id are where a reordered request stalled the
    // producer (accepted out of order, the earlier batch could never line up).
    let n = 20_000;
    for round in 0..3 {
        let base = round * (n + 100);
        for i in 0..n {
            assert_eq!(p2.send(&Rec::new(&topic, &value), base + i).0, KP_OK);
        }
        assert_eq!(unsafe { kp_purge(p2.p, KP_PURGE_QUEUED | KP_PURGE_IN_FLIGHT) }, KP_OK);
        assert_eq!(p2.flush(60_000), KP_OK, "round {round}");
        let reports = p2.reports();
        assert_one_report_each(&reports, base + n);
        let purged = reports.iter().filter(|r| r.tag >= base && r.error != KP_OK).count();
        for r in &reports {
            assert!(
                [KP_OK, KP_ERR_PURGED_QUEUED, KP_ERR_PURGED_IN_FLIGHT].contains(&r.error),
                "unexpected report {:?}",
                r
            );
            if r.error == KP_ERR_PURGED_IN_FLIGHT {
                assert_eq!(r.persistence, KP_POSSIBLY_PERSISTED);
            }
        }
        assert!(purged > 0, "round {round}: nothing was purged; the test proves nothing");
        for i in 0..100 {
            assert_eq!(p2.send(&Rec::new(&topic, b"after-purge"), base + n + i).0, KP_OK);
        }
        // Wait past delivery.timeout.ms (120 s): by then every record has its
        // report, so a stall shows up below as a failure that says why.
        let rc = p2.flush(180_000);
        let outstanding = unsafe { kp_producer_outstanding(p2.p) };
        assert_eq!(
            rc, KP_OK,
            "round {round}: flush after purge: {outstanding} record(s) still without a report"
        );
        let after: Vec<_> = p2.reports().into_iter().filter(|r| r.tag >= base + n).collect();
        assert_eq!(after.len(), 100);
        assert!(
            after.iter().all(|r| r.error == KP_OK),
            "round {round}: after purge: {:?}",
            after.iter().find(|r| r.error != KP_OK)
        );
    }
}

/// Stress for purges under load (not run by default):
///   cargo test --release --test integration purge_stress -- --ignored --nocapture
/// Knobs: PURGE_STRESS_ITERS (producers, default 10), PURGE_STRESS_ROUNDS
/// (purges per producer, 3), PURGE_STRESS_N (records per round, 20000),
/// PURGE_STRESS_DELAY_MS (max random wait before the purge, 20),
/// PURGE_STRESS_CFG (extra settings, "k=v,k=v"). Half the purges happen
/// while the records are still being sent.
#[test]
#[ignore]
fn purge_stress() {
    let env = |k: &str, d: usize| std::env::var(k).ok().and_then(|v| v.parse().ok()).unwrap_or(d);
    let (iters, rounds, n, max_delay) = (
        env("PURGE_STRESS_ITERS", 10),
        env("PURGE_STRESS_ROUNDS", 3),
        env("PURGE_STRESS_N", 20_000),
        env("PURGE_STRESS_DELAY_MS", 20),
    );
    let extra: Vec<(String, String)> = std::env::var("PURGE_STRESS_CFG")
        .unwrap_or_default()
        .split(',')
        .filter_map(|kv| kv.split_once('=').map(|(k, v)| (k.to_string(), v.to_string())))
        .collect();
    let topic = unique_topic("purgestress");
    create_topic(&topic, 3, rf(), &[]);
    let value = vec![b'x'; 1000];
    let mut stalls = Vec::new();
    for it in 0..iters {
        let mut cfg: Vec<(&str, &str)> = vec![("linger.ms", "0"), ("enable.idempotence", "true")];
        cfg.extend(extra.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        let p = TestProducer::new(&cfg);
        let mut tag = 0usize;
        for round in 0..rounds {
            let mid = fastrand::bool();
            let start = tag;
            std::thread::scope(|s| {
                let sender = s.spawn(|| {
                    for t in start..start + n {
                        assert_eq!(p.send(&Rec::new(&topic, &value), t).0, KP_OK);
                    }
                });
                if mid {
                    let at = fastrand::usize(n / 16..n / 4);
                    while unsafe { kp_producer_outstanding(p.p) } < at && !sender.is_finished() {
                        std::thread::sleep(Duration::from_micros(200));
                    }
                    std::thread::sleep(Duration::from_millis(fastrand::u64(0..50)));
                    assert_eq!(
                        unsafe { kp_purge(p.p, KP_PURGE_QUEUED | KP_PURGE_IN_FLIGHT) },
                        KP_OK
                    );
                }
            });
            tag += n;
            if !mid {
                std::thread::sleep(Duration::from_millis(fastrand::u64(
                    0..max_delay.max(1) as u64,
                )));
            }
            assert_eq!(unsafe { kp_purge(p.p, KP_PURGE_QUEUED | KP_PURGE_IN_FLIGHT) }, KP_OK);
            assert_eq!(p.flush(60_000), KP_OK, "iter {it} round {round}: flush after purge");
            let after_start = tag;
            for _ in 0..100 {
                assert_eq!(p.send(&Rec::new(&topic, b"after-purge"), tag).0, KP_OK);
                tag += 1;
            }
            let t0 = Instant::now();
            if p.flush(30_000) != KP_OK {
                let outstanding = unsafe { kp_producer_outstanding(p.p) };
                eprintln!("STALL iter {it} round {round} (mid={mid}): {outstanding} outstanding after 30 s");
                stalls.push((it, round));
                break;
            }
            let reports = p.reports();
            let purged = reports
                .iter()
                .filter(|r| (start..after_start).contains(&r.tag) && r.error != KP_OK)
                .count();
            let bad = reports.iter().filter(|r| r.tag >= after_start && r.error != KP_OK).count();
            eprintln!("iter {it} round {round} mid={mid}: purged={purged} after-purge failed={bad} in {:?}", t0.elapsed());
            assert_eq!(bad, 0, "iter {it} round {round}: after-purge records failed");
        }
        p.close(1_000);
    }
    assert!(stalls.is_empty(), "{} stall(s) in {iters} producers: {stalls:?}", stalls.len());
}
