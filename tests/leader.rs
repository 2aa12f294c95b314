//! Leader discovery against the real 3-node cluster: leadership of a
//! partition moves (reassignment of the replica order, then a preferred
//! leader election) while an idempotent producer streams into it. Nothing
//! may be lost, duplicated or reordered (read back by the independent
//! consumer), and the test prints how long acknowledgements stalled at each
//! move (BENCHMARKS.md, "Leader change recovery").

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::*;
use kp::ffi::*;

/// The leader and replicas of partition 0, as the brokers' TopicCommand
/// describes them.
fn describe_partition0(topic: &str) -> (i32, Vec<i32>) {
    let out = kafka(&[
        "java",
        "org.apache.kafka.tools.TopicCommand",
        "--bootstrap-server",
        &bootstrap(),
        "--describe",
        "--topic",
        topic,
    ]);
    let line = out
        .lines()
        .find(|l| l.contains("Partition: 0\t") || l.contains("Partition: 0 "))
        .unwrap_or_else(|| panic!("no partition 0 in: {out}"));
    let field = |name: &str| {
        let at = line.find(name).unwrap_or_else(|| panic!("no {name} in {line}")) + name.len();
        line[at..].split_whitespace().next().unwrap().to_string()
    };
    let leader = field("Leader: ").parse().unwrap();
    let replicas = field("Replicas: ").split(',').map(|r| r.parse().unwrap()).collect();
    (leader, replicas)
}

/// Makes `to` the leader of partition 0: first in the replica list, then a
/// preferred leader election. Waits until the brokers say so.
fn move_leader(topic: &str, replicas: &[i32], to: i32) {
    let mut order = vec![to];
    order.extend(replicas.iter().copied().filter(|&r| r != to));
    let list = order.iter().map(|r| r.to_string()).collect::<Vec<_>>().join(",");
    let json = format!(
        "{{\"version\":1,\"partitions\":[{{\"topic\":\"{topic}\",\"partition\":0,\"replicas\":[{list}]}}]}}"
    );
    let file = std::env::temp_dir().join(format!("{topic}-reassign.json"));
    std::fs::write(&file, json).unwrap();
    let bs = bootstrap();
    kafka(&[
        "java",
        "org.apache.kafka.tools.reassign.ReassignPartitionsCommand",
        "--bootstrap-server",
        &bs,
        "--reassignment-json-file",
        file.to_str().unwrap(),
        "--execute",
    ]);
    let _ = std::fs::remove_file(&file);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        kafka(&[
            "java",
            "org.apache.kafka.tools.LeaderElectionCommand",
            "--bootstrap-server",
            &bs,
            "--election-type",
            "PREFERRED",
            "--topic",
            topic,
            "--partition",
            "0",
        ]);
        if describe_partition0(topic).0 == to {
            return;
        }
        assert!(Instant::now() < deadline, "leadership of {topic}-0 did not move to {to}");
        std::thread::sleep(Duration::from_millis(500));
    }
}

#[test]
fn idempotent_stream_follows_leader_moves_exactly_once_in_order() {
    if testbed_nodes() != Some(3) {
        eprintln!("SKIPPED: needs the 3-node testbed cluster (scripts/test.sh) to move leaders");
        return;
    }
    let topic = unique_topic("leader-move");
    create_topic(&topic, 1, 3, &["--config", "min.insync.replicas=2"]);
    let p = TestProducer::new(&[
        ("enable.idempotence", "true"),
        ("linger.ms", "0"),
        ("request.timeout.ms", "10000"),
    ]);
    let sent_at: Mutex<Vec<Instant>> = Mutex::new(Vec::new());
    let stop = AtomicBool::new(false);
    // (start, end) of each move, and the leaders it went between.
    let mut moves: Vec<(Instant, Instant, i32, i32)> = Vec::new();
    std::thread::scope(|s| {
        s.spawn(|| {
            let mut i = 0usize;
            while !stop.load(Ordering::Acquire) {
                let v = format!("{i:09}");
                let r = Rec { partition: 0, ..Rec::new(&topic, v.as_bytes()) };
                sent_at.lock().unwrap().push(Instant::now());
                let (rc, msg) = p.send(&r, i);
                assert_eq!(rc, KP_OK, "send {i}: {msg}");
                i += 1;
                std::thread::sleep(Duration::from_millis(2));
            }
        });
        std::thread::sleep(Duration::from_secs(2));
        for _ in 0..3 {
            let (from, replicas) = describe_partition0(&topic);
            let to = replicas.iter().copied().find(|&r| r != from).unwrap();
            let start = Instant::now();
            move_leader(&topic, &replicas, to);
            moves.push((start, Instant::now(), from, to));
            std::thread::sleep(Duration::from_secs(2));
        }
        stop.store(true, Ordering::Release);
    });
    let sent_at = sent_at.into_inner().unwrap();
    let n = sent_at.len();
    assert_eq!(p.flush(120_000), KP_OK, "flush after the leader moves");
    let reports = p.reports();
    assert_one_report_each(&reports, n);
    let failed: Vec<_> = reports.iter().filter(|r| r.error != KP_OK).collect();
    assert!(failed.is_empty(), "{} record(s) failed, first: {:?}", failed.len(), failed.first());

    // How long acknowledgements stalled around each move.
    let mut acks: Vec<(Instant, usize)> = reports.iter().map(|r| (r.at, r.tag)).collect();
    acks.sort();
    let latency = |tag: usize, at: Instant| at.duration_since(sent_at[tag]);
    let mut quiet: Vec<Duration> = Vec::new();
    for (at, tag) in &acks {
        let t = sent_at[*tag];
        if !moves.iter().any(|(s, e, _, _)| t + Duration::from_secs(1) >= *s && t <= *e) {
            quiet.push(latency(*tag, *at));
        }
    }
    quiet.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    eprintln!(
        "leader moves: {n} records, latency outside the moves p50 {:.1} ms, p99 {:.1} ms",
        ms(quiet[quiet.len() / 2]),
        ms(quiet[quiet.len() * 99 / 100])
    );
    for (k, (start, end, from, to)) in moves.iter().enumerate() {
        let window: Vec<&(Instant, usize)> = acks
            .iter()
            .filter(|(at, _)| *at >= *start && *at <= *end + Duration::from_secs(1))
            .collect();
        let max_latency = window.iter().map(|(at, tag)| latency(*tag, *at)).max().unwrap();
        let max_gap =
            window.windows(2).map(|w| w[1].0.duration_since(w[0].0)).max().unwrap_or_default();
        eprintln!(
            "leader move {k}: {from} -> {to}: longest record latency {:.1} ms, longest gap between acknowledgements {:.1} ms",
            ms(max_latency),
            ms(max_gap)
        );
    }

    // The independent consumer: every record once, in order.
    let got = consume_independent(&topic, n, "read_uncommitted");
    assert_eq!(got.len(), n, "the consumer read {} records for {n} sent", got.len());
    for (i, c) in got.iter().enumerate() {
        let v = String::from_utf8(c.value.clone().unwrap()).unwrap();
        assert_eq!(v, format!("{i:09}"), "offset {}: duplicate, loss or reorder", c.offset);
    }
    delete_topic(&topic);
}

/// A single-node cluster of the rebootstrap test, in its own testbed dir
/// (under target/), PLAINTEXT only.
struct Cluster {
    dir: String,
    port: u16,
}

impl Cluster {
    fn new(name: &str, port: u16) -> Cluster {
        Cluster { dir: format!("{}/target/testbed-rebootstrap-{name}", repo()), port }
    }

    fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Runs testbed/kafka.sh against this cluster.
    fn kafka(&self, args: &[&str]) {
        let jars = std::env::var("KP_TESTBED_JARS").unwrap_or_else(|_| {
            let tb =
                std::env::var("KP_TESTBED_DIR").unwrap_or_else(|_| format!("{}/.testbed", repo()));
            format!("{tb}/jars")
        });
        let out = std::process::Command::new("bash")
            .arg(format!("{}/testbed/kafka.sh", repo()))
            .args(args)
            .env("KP_TESTBED_DIR", &self.dir)
            .env("KP_TESTBED_JARS", jars)
            .env("KP_TESTBED_PORT", self.port.to_string())
            .env("KP_TESTBED_SECURITY", "0")
            .env("KP_TESTBED_STOP_GRACE", "5")
            .env("KP_BOOTSTRAP", self.bootstrap())
            .output()
            .expect("run testbed/kafka.sh");
        assert!(
            out.status.success(),
            "kafka.sh {args:?} ({}) failed: {}",
            self.dir,
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// Stops both clusters however the test ends.
struct Clusters(Cluster, Cluster);

impl Drop for Clusters {
    fn drop(&mut self) {
        for c in [&self.0, &self.1] {
            let _ = std::process::Command::new("bash")
                .arg(format!("{}/testbed/kafka.sh", repo()))
                .arg("stop")
                .env("KP_TESTBED_DIR", &c.dir)
                .env("KP_TESTBED_STOP_GRACE", "5")
                .output();
        }
    }
}

/// KIP-899: the whole cluster behind the bootstrap addresses is replaced.
/// bootstrap.servers names cluster A and cluster B; only A runs at first.
/// A stops, records are sent during the outage, then B starts (the topic
/// created there too). The default producer (metadata.recovery.strategy=
/// rebootstrap) finds B and delivers every record there, once; one with
/// strategy none keeps to A's broker and reports each of its outage
/// records failed, once. Opt-in (it starts two single-node clusters, about
/// a minute): KP_REBOOTSTRAP_PORTS=<port A>,<port B>.
#[test]
fn rebootstrap_reaches_a_new_cluster_behind_the_bootstrap_addresses() {
    let Ok(ports) = std::env::var("KP_REBOOTSTRAP_PORTS") else {
        eprintln!(
            "SKIPPED: set KP_REBOOTSTRAP_PORTS=<port A>,<port B> (two free port ranges P..P+9) to \
             run it; it starts and stops two single-node clusters of its own"
        );
        return;
    };
    let ports: Vec<u16> = ports.split(',').map(|p| p.trim().parse().unwrap()).collect();
    let clusters = Clusters(Cluster::new("a", ports[0]), Cluster::new("b", ports[1]));
    let (a, b) = (&clusters.0, &clusters.1);
    a.kafka(&["start", "1"]);
    let topic = unique_topic("rebootstrap");
    a.kafka(&["create-topic", &topic, "1", "1"]);
    let servers = format!("{},{}", a.bootstrap(), b.bootstrap());
    let common = [
        ("bootstrap.servers", servers.as_str()),
        ("allow.auto.create.topics", "false"),
        ("linger.ms", "5"),
        ("request.timeout.ms", "5000"),
    ];
    let with = |extra: &[(&'static str, &'static str)]| {
        let mut all = common.to_vec();
        all.extend_from_slice(extra);
        TestProducer::with_config(config(&all))
    };
    let reb = with(&[("delivery.timeout.ms", "120000")]);
    let none = with(&[("delivery.timeout.ms", "30000"), ("metadata.recovery.strategy", "none")]);
    let send = |p: &TestProducer, who: &str, tags: std::ops::Range<usize>| {
        for i in tags {
            let v = format!("{who}-{i:04}");
            assert_eq!(p.send(&Rec { partition: 0, ..Rec::new(&topic, v.as_bytes()) }, i).0, KP_OK);
        }
    };
    // Phase 1: both deliver to A.
    send(&reb, "r", 0..100);
    send(&none, "n", 0..100);
    assert_eq!(reb.flush(60_000), KP_OK);
    assert_eq!(none.flush(60_000), KP_OK);
    // Phase 2: A goes away; records sent during the outage.
    a.kafka(&["stop"]);
    send(&reb, "r", 100..200);
    send(&none, "n", 100..200);
    std::thread::sleep(Duration::from_secs(3));
    b.kafka(&["start", "1"]);
    b.kafka(&["create-topic", &topic, "1", "1"]);
    // Phase 3: after B is up.
    send(&reb, "r", 200..300);
    assert_eq!(reb.flush(120_000), KP_OK, "flush of the rebootstrapping producer");
    assert_eq!(none.flush(120_000), KP_OK, "flush of the producer without rebootstrap");
    let r = reb.reports();
    assert_one_report_each(&r, 300);
    let failed: Vec<_> = r.iter().filter(|r| r.error != KP_OK).collect();
    assert!(failed.is_empty(), "{} failed, first {:?}", failed.len(), failed.first());
    let n = none.reports();
    assert_one_report_each(&n, 200);
    let n_failed = n.iter().filter(|r| r.tag >= 100 && r.error != KP_OK).count();
    assert_eq!(n_failed, 100, "strategy none: every outage record fails");
    // B holds the rebootstrapping producer's records of phases 2 and 3, once
    // each, in order.
    let got = consume_independent_at(&b.bootstrap(), &topic, 200, "read_uncommitted", &[]);
    let values: Vec<String> =
        got.iter().map(|c| String::from_utf8(c.value.clone().unwrap()).unwrap()).collect();
    let want: Vec<String> = (100..300).map(|i| format!("r-{i:04}")).collect();
    assert_eq!(values, want);
    drop(clusters);
}
