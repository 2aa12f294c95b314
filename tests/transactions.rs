//! Transactions against a real 3-broker Kafka (replication factor 3,
//! min.insync.replicas 2), for both transaction protocols: v1 (classic) and
//! v2 (KIP-890), switched with Kafka's FeatureCommand. Verified by
//! confluent-kafka consumers in read_committed/read_uncommitted mode,
//! DumpLogSegments and the group's committed offsets.

mod common;

use std::ffi::{c_char, CStr, CString};
use std::time::{Duration, Instant};

use common::*;
use kp::ffi::*;

#[derive(Debug)]
struct TxnErr {
    code: i32,
    message: String,
    retriable: bool,
    fatal: bool,
    requires_abort: bool,
}

fn take(e: *mut kp_error_t) -> Result<(), TxnErr> {
    if e.is_null() {
        return Ok(());
    }
    let r = unsafe {
        TxnErr {
            code: kp_error_code(e),
            message: CStr::from_ptr(kp_error_message(e)).to_string_lossy().into_owned(),
            retriable: kp_error_is_retriable(e),
            fatal: kp_error_is_fatal(e),
            requires_abort: kp_error_txn_requires_abort(e),
        }
    };
    unsafe { kp_error_destroy(e) };
    Err(r)
}

/// One field of a feature in FeatureCommand's `describe` output: lines of
/// `Feature: NAME  Field: VALUE ...`, tab-separated in Kafka 3.9 and 4.1, padded
/// with spaces in 4.4.
fn feature_field(describe: &str, feature: &str, field: &str) -> Option<String> {
    describe.lines().find_map(|l| {
        let t: Vec<&str> = l.split_whitespace().collect();
        if t.len() < 2 || t[0] != "Feature:" || t[1] != feature {
            return None;
        }
        let i = t.iter().position(|w| w.strip_suffix(':') == Some(field))?;
        t.get(i + 1).map(|v| v.to_string())
    })
}

fn set_transaction_version(level: u32) {
    let bs = bootstrap();
    let op = if level >= 2 { "upgrade" } else { "downgrade" };
    let f = format!("transaction.version={level}");
    let _ = Command::new("bash")
        .arg(format!("{}/testbed/kafka.sh", repo()))
        .args([
            "java",
            "org.apache.kafka.tools.FeatureCommand",
            "--bootstrap-server",
            &bs,
            op,
            "--feature",
            &f,
        ])
        .output();
    // Wait until every broker announces it (new connections read it).
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let out = kafka(&[
            "java",
            "org.apache.kafka.tools.FeatureCommand",
            "--bootstrap-server",
            &bs,
            "describe",
        ]);
        if feature_field(&out, "transaction.version", "FinalizedVersionLevel")
            == Some(level.to_string())
        {
            break;
        }
        assert!(Instant::now() < deadline, "transaction.version did not become {level}:\n{out}");
        std::thread::sleep(Duration::from_millis(300));
    }
    std::thread::sleep(Duration::from_secs(2));
}

use std::process::Command;

fn txn_producer(id: &str, extra: &[(&str, &str)]) -> TestProducer {
    let mut s = vec![("transactional.id", id), ("linger.ms", "5")];
    s.extend_from_slice(extra);
    TestProducer::new(&s)
}

fn values(topic: &str, n: usize, isolation: &str) -> Vec<String> {
    consume_independent(topic, n, isolation)
        .into_iter()
        .map(|c| String::from_utf8(c.value.unwrap()).unwrap())
        .collect()
}

fn send_n(p: &TestProducer, topic: &str, prefix: &str, n: usize, tag0: usize) {
    for i in 0..n {
        let v = format!("{prefix}-{i}");
        let (rc, msg) = p.send(&Rec::new(topic, v.as_bytes()), tag0 + i);
        assert_eq!(rc, KP_OK, "{msg}");
    }
}

fn committed_offset(group: &str, topic: &str, partition: i32) -> i64 {
    let script = format!(
        "from confluent_kafka import Consumer, TopicPartition\n\
         c = Consumer({{'bootstrap.servers': '{}', 'group.id': '{}', 'enable.auto.commit': False}})\n\
         print(c.committed([TopicPartition('{}', {})], timeout=30)[0].offset)\n\
         c.close()\n",
        bootstrap(),
        group,
        topic,
        partition
    );
    let out = Command::new("python3").arg("-c").arg(&script).output().expect("python3");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

/// The highest `transaction.version` the cluster's brokers support (FeatureCommand's
/// SupportedMaxVersion); 0 when they do not know the feature (Kafka 3.x). Asked once.
fn supported_transaction_version() -> u32 {
    static MAX: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    *MAX.get_or_init(|| {
        let out = kafka(&[
            "java",
            "org.apache.kafka.tools.FeatureCommand",
            "--bootstrap-server",
            &bootstrap(),
            "describe",
        ]);
        feature_field(&out, "transaction.version", "SupportedMaxVersion")
            .map(|v| v.parse().expect("SupportedMaxVersion"))
            .unwrap_or(0)
    })
}

/// Runs `f` with transaction protocol v1 and, where the brokers support it, v2
/// (Kafka 4.x), switching `transaction.version` between them and back to 2.
/// Brokers without v2 (Kafka 3.9) run the classic protocol only.
fn run_for_both_versions(f: impl Fn(u32)) {
    if testbed_nodes() != Some(3) {
        eprintln!("SKIPPED: needs the 3-node testbed cluster (scripts/test.sh), which can switch transaction.version");
        return;
    }
    if supported_transaction_version() < 2 {
        eprintln!("transaction.version 2 unsupported by these brokers: protocol v1 only");
        f(1);
        return;
    }
    for v in [1u32, 2] {
        set_transaction_version(v);
        f(v);
    }
    set_transaction_version(2);
}

#[test]
fn commit_is_visible_and_abort_is_not() {
    run_for_both_versions(|v| {
        let a = unique_topic(&format!("txa-v{v}"));
        let b = unique_topic(&format!("txb-v{v}"));
        create_topic(&a, 3, 3, &["--config", "min.insync.replicas=2"]);
        create_topic(&b, 2, 3, &["--config", "min.insync.replicas=2"]);
        let p = txn_producer(&unique_topic("tid"), &[]);
        take(unsafe { kp_init_transactions(p.p, 60_000) }).expect("init");
        assert_eq!(
            unsafe { kp_transaction_protocol_version(p.p) },
            v as i32,
            "negotiated protocol"
        );
        // Outside a transaction, sends are refused.
        assert_eq!(p.send(&Rec::new(&a, b"early"), 999).0, KP_ERR_STATE);

        take(unsafe { kp_begin_transaction(p.p) }).unwrap();
        send_n(&p, &a, "committed-a", 100, 0);
        send_n(&p, &b, "committed-b", 50, 100);
        take(unsafe { kp_commit_transaction(p.p, 60_000) }).expect("commit");
        let reports = p.reports();
        assert_one_report_each(&reports, 150);
        assert!(reports.iter().all(|r| r.error == KP_OK));

        take(unsafe { kp_begin_transaction(p.p) }).unwrap();
        send_n(&p, &a, "aborted-a", 40, 150);
        assert_eq!(p.flush(30_000), KP_OK);
        send_n(&p, &b, "aborted-b", 10, 190); // may still be queued at abort
        take(unsafe { kp_abort_transaction(p.p, 60_000) }).expect("abort");
        let reports = p.reports();
        assert_one_report_each(&reports, 200);

        // A third transaction after the abort works.
        take(unsafe { kp_begin_transaction(p.p) }).unwrap();
        send_n(&p, &a, "after-abort", 5, 200);
        take(unsafe { kp_commit_transaction(p.p, 60_000) }).expect("commit after abort");

        let committed_a = values(&a, 105, "read_committed");
        assert_eq!(committed_a.len(), 105, "v{v}: read_committed sees the committed records only");
        assert!(
            committed_a.iter().all(|s| !s.starts_with("aborted")),
            "v{v}: aborted record visible"
        );
        let committed_b = values(&b, 50, "read_committed");
        assert_eq!(committed_b.len(), 50);
        assert!(committed_b.iter().all(|s| s.starts_with("committed-b")));
        let all_a = values(&a, 145, "read_uncommitted");
        assert_eq!(
            all_a.len(),
            145,
            "v{v}: read_uncommitted also sees the aborted records that were written"
        );

        // The log has kp's transactional batches and the control markers.
        let mut dumps = String::new();
        for part in 0..3 {
            let leader = {
                let t = CString::new(a.as_str()).unwrap();
                let mut info = std::ptr::null_mut();
                let mut err = [0 as c_char; 256];
                assert_eq!(
                    unsafe {
                        kp_partitions_for(
                            p.p,
                            t.as_ptr(),
                            10_000,
                            &mut info,
                            err.as_mut_ptr(),
                            err.len(),
                        )
                    },
                    KP_OK
                );
                let l = unsafe { kp_topic_info_leader(info, part) };
                unsafe { kp_topic_info_destroy(info) };
                l
            };
            dumps.push_str(&kafka(&["dump-log", &a, &part.to_string(), &leader.to_string()]));
        }
        assert!(dumps.contains("isTransactional: true"), "v{v}: no transactional batch:\n{dumps}");
        assert!(dumps.contains("isControl: true"), "v{v}: no control batch");
        assert!(dumps.contains("endTxnMarker: COMMIT"), "v{v}: no COMMIT marker");
        assert!(dumps.contains("endTxnMarker: ABORT"), "v{v}: no ABORT marker");
    });
}

#[test]
fn a_second_producer_with_the_same_id_fences_the_first() {
    run_for_both_versions(|v| {
        let topic = unique_topic(&format!("fence-v{v}"));
        create_topic(&topic, 1, 3, &["--config", "min.insync.replicas=2"]);
        let id = unique_topic("fenced-id");
        let p1 = txn_producer(&id, &[]);
        take(unsafe { kp_init_transactions(p1.p, 60_000) }).expect("init p1");
        take(unsafe { kp_begin_transaction(p1.p) }).unwrap();
        send_n(&p1, &topic, "zombie", 20, 0);
        assert_eq!(p1.flush(30_000), KP_OK);

        let p2 = txn_producer(&id, &[]);
        take(unsafe { kp_init_transactions(p2.p, 60_000) }).expect("init p2 fences p1");

        // p1 learns it is fenced: fatal, and it says so.
        let fatal_seen;
        let send_rc = p1.send(&Rec::new(&topic, b"after-fence"), 20).0;
        if send_rc == KP_OK {
            let _ = p1.flush(30_000);
        }
        match take(unsafe { kp_commit_transaction(p1.p, 30_000) }) {
            Ok(()) => panic!("v{v}: the fenced producer committed"),
            Err(e) => {
                if e.requires_abort {
                    let e2 = take(unsafe { kp_abort_transaction(p1.p, 30_000) })
                        .expect_err("abort of a fenced producer must fail");
                    fatal_seen = Some(e2);
                } else {
                    fatal_seen = Some(e);
                }
            }
        }
        let e = fatal_seen.unwrap();
        assert!(e.fatal, "v{v}: fencing must be fatal: {e:?}");
        assert!(e.message.contains("fenced"), "v{v}: {e:?}");
        let mut buf = [0 as c_char; 256];
        assert_ne!(unsafe { kp_producer_fatal_error(p1.p, buf.as_mut_ptr(), buf.len()) }, KP_OK);
        assert_eq!(p1.send(&Rec::new(&topic, b"x"), 21).0, KP_ERR_FATAL);

        take(unsafe { kp_begin_transaction(p2.p) }).unwrap();
        send_n(&p2, &topic, "p2", 5, 0);
        take(unsafe { kp_commit_transaction(p2.p, 60_000) }).expect("p2 commits");
        let seen = values(&topic, 5, "read_committed");
        assert_eq!(seen.len(), 5, "v{v}: {seen:?}");
        assert!(
            seen.iter().all(|s| s.starts_with("p2-")),
            "v{v}: the fenced transaction is visible: {seen:?}"
        );
        drop(p1);
    });
}

#[test]
fn a_transaction_open_too_long_is_aborted_and_the_next_one_works() {
    run_for_both_versions(|v| {
        let topic = unique_topic(&format!("txtimeout-v{v}"));
        create_topic(&topic, 1, 3, &["--config", "min.insync.replicas=2"]);
        let id = unique_topic("slow-id");
        let p = txn_producer(&id, &[("transaction.timeout.ms", "2000")]);
        take(unsafe { kp_init_transactions(p.p, 60_000) }).expect("init");
        take(unsafe { kp_begin_transaction(p.p) }).unwrap();
        send_n(&p, &topic, "too-slow", 10, 0);
        assert_eq!(p.flush(30_000), KP_OK);
        std::thread::sleep(Duration::from_secs(8)); // the broker aborts it meanwhile
        let e = take(unsafe { kp_commit_transaction(p.p, 30_000) })
            .expect_err("commit after the broker aborted");
        assert!(e.requires_abort && !e.fatal, "v{v}: expected an abortable error, got {e:?}");
        let next = if v >= 2 {
            // v2 (KIP-890): the coordinator bumped the epoch on abort and
            // lets this producer resume after its own abort.
            take(unsafe { kp_abort_transaction(p.p, 30_000) }).expect("v2: abort after timeout");
            p
        } else {
            // v1: the coordinator fenced the producer's epoch when it timed
            // the transaction out (as the Java client also reports); the
            // abort says so, and a new producer with the same id carries on.
            let e = take(unsafe { kp_abort_transaction(p.p, 30_000) })
                .expect_err("v1: the timed-out producer is fenced");
            assert!(e.fatal && e.message.contains("transaction.timeout.ms"), "v1: {e:?}");
            drop(p);
            let p2 = txn_producer(&id, &[("transaction.timeout.ms", "2000")]);
            take(unsafe { kp_init_transactions(p2.p, 60_000) }).expect("init again");
            p2
        };
        take(unsafe { kp_begin_transaction(next.p) }).unwrap();
        send_n(&next, &topic, "on-time", 10, 10);
        take(unsafe { kp_commit_transaction(next.p, 30_000) }).expect("next transaction commits");
        let seen = values(&topic, 10, "read_committed");
        assert_eq!(seen.len(), 10, "v{v}: {seen:?}");
        assert!(seen.iter().all(|s| s.starts_with("on-time")), "v{v}: {seen:?}");
    });
}

#[test]
fn offsets_sent_to_a_transaction_commit_with_it() {
    run_for_both_versions(|v| {
        let input = unique_topic(&format!("input-v{v}"));
        let output = unique_topic(&format!("output-v{v}"));
        create_topic(&input, 1, 3, &[]);
        create_topic(&output, 1, 3, &[]);
        let group = unique_topic("group");
        let p = txn_producer(&unique_topic("ctp-id"), &[]);
        take(unsafe { kp_init_transactions(p.p, 60_000) }).expect("init");
        let t = CString::new(input.as_str()).unwrap();
        let g = CString::new(group.as_str()).unwrap();

        // Aborted: the offsets must not move.
        take(unsafe { kp_begin_transaction(p.p) }).unwrap();
        send_n(&p, &output, "x", 3, 0);
        let o = kp_offsets_new();
        assert_eq!(unsafe { kp_offsets_add(o, t.as_ptr(), 0, 17) }, KP_OK);
        take(unsafe { kp_send_offsets_to_transaction(p.p, o, g.as_ptr(), 60_000) })
            .expect("send offsets");
        take(unsafe { kp_abort_transaction(p.p, 60_000) }).expect("abort");
        assert!(
            committed_offset(&group, &input, 0) < 0,
            "v{v}: offsets moved by an aborted transaction"
        );

        // Committed: now they do.
        take(unsafe { kp_begin_transaction(p.p) }).unwrap();
        send_n(&p, &output, "y", 3, 3);
        take(unsafe { kp_send_offsets_to_transaction(p.p, o, g.as_ptr(), 60_000) })
            .expect("send offsets");
        take(unsafe { kp_commit_transaction(p.p, 60_000) }).expect("commit");
        unsafe { kp_offsets_destroy(o) };
        assert_eq!(committed_offset(&group, &input, 0), 17, "v{v}: committed offset");
    });
}

#[test]
fn transactional_calls_check_state_and_arguments() {
    let p = TestProducer::new(&[]);
    let e = take(unsafe { kp_init_transactions(p.p, 1000) }).unwrap_err();
    assert_eq!(e.code, KP_ERR_STATE);
    assert!(e.message.contains("transactional.id"));
    let e = take(unsafe { kp_begin_transaction(std::ptr::null_mut()) }).unwrap_err();
    assert_eq!(e.code, KP_ERR_INVALID_ARG);
    let p = txn_producer(&unique_topic("state-id"), &[]);
    let e = take(unsafe { kp_begin_transaction(p.p) }).unwrap_err();
    assert!(e.message.contains("kp_init_transactions"), "{e:?}");
    let e = take(unsafe { kp_commit_transaction(p.p, 1000) }).unwrap_err();
    assert_eq!(e.code, KP_ERR_STATE);
    assert!(!e.retriable && !e.fatal);
}
