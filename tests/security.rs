//! TLS and SASL against the real test cluster's secured listeners
//! (testbed/kafka.sh: SASL_SSL, SSL with client certificates required,
//! SASL_PLAINTEXT; users alice (topics "sec-*" only) and admin; certificates
//! made per start). What kp wrote is read back by confluent-kafka over mutual
//! TLS. Run by scripts/test.sh, which exports the listeners' addresses.

mod common;

use std::collections::{HashMap, HashSet};
use std::ffi::{c_char, c_void, CStr, CString};
use std::sync::Mutex;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::*;
use kp::ffi::*;

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: run through scripts/test.sh (the testbed's secured listeners)")
    })
}

fn tls(file: &str) -> String {
    format!("{}/{file}", env("KP_TLS_DIR"))
}

fn rf() -> u32 {
    testbed_nodes().unwrap_or(3).min(3)
}

/// confluent-kafka settings for reading back over mutual TLS (CN=kp-client is a super user).
fn reader_tls() -> Vec<(String, String)> {
    vec![
        ("security.protocol".into(), "SSL".into()),
        ("ssl.ca.location".into(), tls("ca.pem")),
        ("ssl.certificate.location".into(), tls("client.pem")),
        ("ssl.key.location".into(), tls("client.key")),
    ]
}

fn read_back(topic: &str, n: usize, isolation: &str) -> Vec<Consumed> {
    let cfg = reader_tls();
    let cfg: Vec<(&str, &str)> = cfg.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    consume_independent_at(&env("KP_SSL_BOOTSTRAP"), topic, n, isolation, &cfg)
}

fn producer(bootstrap: &str, settings: &[(&str, &str)]) -> TestProducer {
    let mut all = vec![("bootstrap.servers", bootstrap)];
    all.extend_from_slice(settings);
    TestProducer::with_config(config(&all))
}

/// Producers with different settings write to one topic; `verify` reads it
/// back over TLS with confluent-kafka and checks every record byte for byte.
struct RoundTrips {
    topic: String,
    expected: HashMap<Vec<u8>, Vec<u8>>,
    labels: Vec<String>,
}

const HEADER: &[u8] = b"\x00\x01binary";

impl RoundTrips {
    fn new() -> RoundTrips {
        let topic = unique_topic("sec-rt");
        create_topic(&topic, 2, rf(), &[]);
        RoundTrips { topic, expected: HashMap::new(), labels: Vec::new() }
    }

    /// Sends 200 keyed records with a header through a producer made with
    /// `settings`; all must be delivered.
    fn produce(&mut self, label: &str, bootstrap: &str, settings: &[(&str, &str)]) {
        let p = producer(bootstrap, settings);
        let n = 200;
        for i in 0..n {
            let key = format!("{label}#{i}").into_bytes();
            let value = format!("{label}-{i}-\u{e9}\u{0}\u{ff}").into_bytes();
            let mut r = Rec::new(&self.topic, &value);
            r.key = Some(&key);
            r.headers = &[("h", Some(HEADER))];
            let (rc, msg) = p.send(&r, i);
            assert_eq!(rc, KP_OK, "{label}: send {i}: {msg}");
            self.expected.insert(key, value);
        }
        assert_eq!(p.flush(30_000), KP_OK, "{label}: flush");
        let reports = p.reports();
        assert_one_report_each(&reports, n);
        let bad: Vec<_> = reports.iter().filter(|r| r.error != KP_OK).collect();
        assert!(bad.is_empty(), "{label}: {} failed, first {:?}", bad.len(), bad.first());
        self.labels.push(label.to_string());
    }

    fn verify(self) {
        let n = self.expected.len();
        let got = read_back(&self.topic, n, "read_uncommitted");
        assert_eq!(got.len(), n, "records read back");
        for c in &got {
            let key = c.key.clone().expect("key");
            let want = self.expected.get(&key).unwrap_or_else(|| panic!("unexpected key {key:?}"));
            assert_eq!(c.value.as_deref(), Some(want.as_slice()), "value of {key:?}");
            assert_eq!(c.headers, vec![("h".to_string(), Some(HEADER.to_vec()))]);
        }
        for l in &self.labels {
            eprintln!(
                "{l}: 200 records written by kp, read back identical by confluent-kafka over TLS"
            );
        }
    }
}

fn jaas(module: &str, user: &str, pw: &str) -> String {
    format!(
        "org.apache.kafka.common.security.{module} required username=\"{user}\" password=\"{pw}\";"
    )
}

#[test]
fn sasl_ssl_each_mechanism_with_librdkafka_names() {
    let mut rt = RoundTrips::new();
    let ca = tls("ca.pem");
    for mech in ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] {
        rt.produce(
            &format!("SASL_SSL {mech} (librdkafka names)"),
            &env("KP_SASL_SSL_BOOTSTRAP"),
            &[
                ("security.protocol", "SASL_SSL"),
                ("sasl.mechanisms", mech),
                ("sasl.username", "alice"),
                ("sasl.password", "alice-secret"),
                ("ssl.ca.location", &ca),
            ],
        );
    }
    rt.verify();
}

#[test]
fn sasl_ssl_each_mechanism_with_java_names() {
    let mut rt = RoundTrips::new();
    let ca_p12 = tls("ca.p12");
    let ca_inline = std::fs::read_to_string(tls("ca.pem")).unwrap();
    for (mech, module) in [
        ("PLAIN", "plain.PlainLoginModule"),
        ("SCRAM-SHA-256", "scram.ScramLoginModule"),
        ("SCRAM-SHA-512", "scram.ScramLoginModule"),
    ] {
        let j = jaas(module, "alice", "alice-secret");
        // PKCS#12 truststore for one, inline PEM certificates for the others.
        let mut s = vec![
            ("security.protocol", "SASL_SSL"),
            ("sasl.mechanism", mech),
            ("sasl.jaas.config", j.as_str()),
            ("ssl.endpoint.identification.algorithm", "https"),
        ];
        if mech == "PLAIN" {
            s.extend([
                ("ssl.truststore.location", ca_p12.as_str()),
                ("ssl.truststore.type", "PKCS12"),
                ("ssl.truststore.password", "ca-p12-pass"),
            ]);
        } else {
            s.extend([("ssl.truststore.type", "PEM"), ("ssl.truststore.certificates", &ca_inline)]);
        }
        rt.produce(&format!("SASL_SSL {mech} (Java names)"), &env("KP_SASL_SSL_BOOTSTRAP"), &s);
    }
    rt.verify();
}

#[test]
fn sasl_plaintext_plain_and_scram() {
    let mut rt = RoundTrips::new();
    let b = env("KP_SASL_PLAINTEXT_BOOTSTRAP");
    rt.produce(
        "SASL_PLAINTEXT PLAIN",
        &b,
        &[
            ("security.protocol", "SASL_PLAINTEXT"),
            ("sasl.mechanism", "PLAIN"),
            ("sasl.username", "alice"),
            ("sasl.password", "alice-secret"),
        ],
    );
    let j = jaas("scram.ScramLoginModule", "alice", "alice-secret");
    rt.produce(
        "SASL_PLAINTEXT SCRAM-SHA-256 (Java names)",
        &b,
        &[
            ("security.protocol", "SASL_PLAINTEXT"),
            ("sasl.mechanism", "SCRAM-SHA-256"),
            ("sasl.jaas.config", &j),
        ],
    );
    rt.verify();
}

#[test]
fn mutual_tls_with_pem_encrypted_key_pkcs12_and_inline_pem() {
    let mut rt = RoundTrips::new();
    let b = env("KP_SSL_BOOTSTRAP");
    let (ca, cert, key, enc, p12) = (
        tls("ca.pem"),
        tls("client.pem"),
        tls("client.key"),
        tls("client-enc.key"),
        tls("client.p12"),
    );
    rt.produce(
        "mTLS PEM files (librdkafka names)",
        &b,
        &[
            ("security.protocol", "SSL"),
            ("ssl.ca.location", &ca),
            ("ssl.certificate.location", &cert),
            ("ssl.key.location", &key),
        ],
    );
    rt.produce(
        "mTLS encrypted PKCS#8 key",
        &b,
        &[
            ("security.protocol", "SSL"),
            ("ssl.ca.location", &ca),
            ("ssl.certificate.location", &cert),
            ("ssl.key.location", &enc),
            ("ssl.key.password", "client-key-pass"),
        ],
    );
    rt.produce(
        "mTLS PKCS#12 keystore (Java names)",
        &b,
        &[
            ("security.protocol", "SSL"),
            ("ssl.truststore.location", &ca),
            ("ssl.truststore.type", "PEM"),
            ("ssl.keystore.location", &p12),
            ("ssl.keystore.type", "PKCS12"),
            ("ssl.keystore.password", "client-p12-pass"),
        ],
    );
    let cert_pem = std::fs::read_to_string(&cert).unwrap();
    let key_pem = std::fs::read_to_string(&key).unwrap();
    let ca_pem = std::fs::read_to_string(&ca).unwrap();
    rt.produce(
        "mTLS inline PEM (Java names)",
        &b,
        &[
            ("security.protocol", "SSL"),
            ("ssl.truststore.certificates", &ca_pem),
            ("ssl.keystore.certificate.chain", &cert_pem),
            ("ssl.keystore.key", &key_pem),
        ],
    );
    rt.verify();
}

/// Lines of the brokers' logs saying a client failed to authenticate.
fn broker_auth_failures() -> usize {
    let cluster = std::path::Path::new(&env("KP_TLS_DIR")).parent().unwrap().to_path_buf();
    let mut n = 0;
    for e in std::fs::read_dir(&cluster).unwrap().flatten() {
        let log = e.path().join("server.log");
        if let Ok(s) = std::fs::read_to_string(&log) {
            n += s.lines().filter(|l| l.contains("Failed authentication with")).count();
        }
    }
    n
}

const SECRETS: &[&str] =
    &["alice-secret", "wrong-secret", "client-key-pass", "client-p12-pass", "PRIVATE KEY"];

/// A producer whose connections cannot be authenticated: every record gets
/// one failed report within a few seconds whose message contains `expect`,
/// no secret shows anywhere, and the brokers see a bounded number of
/// attempts (`count_on_broker`: failures the broker logs, e.g. bad SASL).
fn fails_fast(
    label: &str,
    bootstrap: &str,
    settings: &[(&str, &str)],
    expect: &[&str],
    count_on_broker: bool,
) {
    // The records never get far enough to need the topic to exist.
    let topic = unique_topic("sec-fail");
    let before = broker_auth_failures();
    let mut all = vec![("reconnect.backoff.ms", "200"), ("reconnect.backoff.max.ms", "1000")];
    all.extend_from_slice(settings);
    let p = producer(bootstrap, &all);
    let t0 = Instant::now();
    let n = 20;
    let mut accepted = 0;
    for i in 0..n {
        let (rc, msg) = p.send(&Rec::new(&topic, b"never"), accepted);
        if rc == KP_OK {
            accepted += 1;
        } else {
            // After the failure the producer refuses new records at once, saying why.
            assert!(expect.iter().all(|e| msg.contains(e)), "{label}: send {i}: {msg}");
            assert!(SECRETS.iter().all(|s| !msg.contains(s)), "{label}: secret in {msg}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    // Usually the first records are accepted and fail later; on a loaded
    // machine the handshake can fail before the first send, and then every
    // send was refused, each saying why (checked above).
    let reports = p.wait_reports(accepted, Duration::from_secs(10));
    let took = t0.elapsed();
    assert_one_report_each(&reports, accepted);
    assert!(took < Duration::from_secs(10), "{label}: reports took {took:?}");
    for r in &reports {
        assert_ne!(r.error, KP_OK, "{label}: record {} delivered", r.tag);
        let m = r.message.clone().unwrap_or_default();
        assert!(
            expect.iter().all(|e| m.contains(e)),
            "{label}: report says {m:?}, want {expect:?}"
        );
        for s in SECRETS {
            assert!(!m.contains(s), "{label}: secret {s:?} in {m:?}");
        }
    }
    // The producer's fatal error names the cause too.
    let mut buf = [0i8; 1024];
    let code = unsafe { kp_producer_fatal_error(p.p, buf.as_mut_ptr(), buf.len()) };
    assert_ne!(code, KP_OK, "{label}: no fatal error");
    let fm = cstr_buf(&buf);
    assert!(expect.iter().all(|e| fm.contains(e)), "{label}: fatal error {fm:?}");
    // No retry storm: give it 3 s more, then count what the brokers saw.
    std::thread::sleep(Duration::from_secs(3));
    let attempts = broker_auth_failures() - before;
    // reconnect.backoff.max.ms is 1 s: about one attempt per second and
    // bootstrap broker (plus the first few, 200 ms apart), never a storm.
    let nodes = bootstrap.split(',').count();
    let secs = t0.elapsed().as_secs_f64();
    let bound = nodes * (3 + secs.ceil() as usize);
    if count_on_broker {
        assert!(
            (1..=bound).contains(&attempts),
            "{label}: brokers logged {attempts} failed authentications in {secs:.1} s (bound {bound})"
        );
    } else {
        assert!(attempts <= bound, "{label}: brokers logged {attempts} failed authentications");
    }
    p.close(5_000);
    eprintln!(
        "{label}: {accepted} accepted records failed within {:?} ({} refused at send) with {:?}; broker-side failed authentications: {attempts}",
        took,
        n - accepted,
        reports.first().and_then(|r| r.message.as_deref()).unwrap_or("(no record was accepted)")
    );
}

#[test]
fn wrong_credentials_fail_fast_and_say_so() {
    let b = env("KP_SASL_SSL_BOOTSTRAP");
    let ca = tls("ca.pem");
    for mech in ["SCRAM-SHA-256", "SCRAM-SHA-512", "PLAIN"] {
        fails_fast(
            &format!("wrong password {mech}"),
            &b,
            &[
                ("security.protocol", "SASL_SSL"),
                ("sasl.mechanism", mech),
                ("sasl.username", "alice"),
                ("sasl.password", "wrong-secret"),
                ("ssl.ca.location", &ca),
            ],
            &["SASL authentication failed for user alice with", mech, "127.0.0.1:"],
            true,
        );
    }
    fails_fast(
        "unknown user",
        &b,
        &[
            ("security.protocol", "SASL_SSL"),
            ("sasl.mechanism", "SCRAM-SHA-256"),
            ("sasl.username", "mallory"),
            ("sasl.password", "alice-secret"),
            ("ssl.ca.location", &ca),
        ],
        &["SASL authentication failed for user mallory with SCRAM-SHA-256"],
        true,
    );
    // The SASL_PLAINTEXT listener does not enable SCRAM-SHA-512.
    fails_fast(
        "mechanism not enabled",
        &env("KP_SASL_PLAINTEXT_BOOTSTRAP"),
        &[
            ("security.protocol", "SASL_PLAINTEXT"),
            ("sasl.mechanism", "SCRAM-SHA-512"),
            ("sasl.username", "alice"),
            ("sasl.password", "alice-secret"),
        ],
        &["SASL mechanism SCRAM-SHA-512 is not enabled", "PLAIN"],
        false,
    );
}

#[test]
fn certificate_problems_fail_fast_and_say_so() {
    let ssl = env("KP_SSL_BOOTSTRAP");
    let (cert, key) = (tls("client.pem"), tls("client.key"));
    fails_fast(
        "untrusted CA",
        &ssl,
        &[
            ("security.protocol", "SSL"),
            ("ssl.ca.location", &tls("other-ca.pem")),
            ("ssl.certificate.location", &cert),
            ("ssl.key.location", &key),
        ],
        &["TLS handshake with 127.0.0.1:", "UnknownIssuer"],
        false,
    );
    // The broker certificate is for IP 127.0.0.1 only: "localhost" does not match.
    let localhost = ssl.replace("127.0.0.1", "localhost");
    fails_fast(
        "hostname mismatch",
        &localhost,
        &[
            ("security.protocol", "SSL"),
            ("ssl.ca.location", &tls("ca.pem")),
            ("ssl.certificate.location", &cert),
            ("ssl.key.location", &key),
        ],
        &["TLS handshake with localhost:", "not valid for name"],
        false,
    );
    fails_fast(
        "no client certificate on the mTLS listener",
        &ssl,
        &[("security.protocol", "SSL"), ("ssl.ca.location", &tls("ca.pem"))],
        &["TLS", "127.0.0.1:"],
        true,
    );
    fails_fast(
        "plaintext client on a TLS port",
        &ssl,
        &[("security.protocol", "PLAINTEXT")],
        &["127.0.0.1:"],
        false,
    );
    fails_fast(
        "TLS client on the plaintext port",
        &bootstrap(),
        &[("security.protocol", "SSL"), ("ssl.ca.location", &tls("ca.pem"))],
        &["TLS handshake with 127.0.0.1:", "plaintext listener"],
        false,
    );
}

#[test]
fn expired_and_not_yet_valid_server_certificates_fail_fast() {
    // Listeners serving the broker's key with a CA-signed certificate valid
    // only in January 2020 / January 2040 (testbed/kafka.sh).
    let ca = tls("ca.pem");
    fails_fast(
        "expired server certificate",
        &env("KP_EXPIRED_SSL_BOOTSTRAP"),
        &[("security.protocol", "SSL"), ("ssl.ca.location", &ca)],
        &["TLS handshake with 127.0.0.1:", "certificate expired", "not valid after"],
        false,
    );
    fails_fast(
        "server certificate not yet valid",
        &env("KP_NOTYET_SSL_BOOTSTRAP"),
        &[("security.protocol", "SSL"), ("ssl.ca.location", &ca)],
        &["TLS handshake with 127.0.0.1:", "certificate not valid yet"],
        false,
    );
}

#[test]
fn hostname_check_can_be_turned_off() {
    let mut rt = RoundTrips::new();
    let localhost = env("KP_SSL_BOOTSTRAP").replace("127.0.0.1", "localhost");
    // The metadata still advertises 127.0.0.1, so only the bootstrap connection uses "localhost".
    rt.produce(
        "mTLS via localhost with ssl.endpoint.identification.algorithm=none",
        &localhost,
        &[
            ("security.protocol", "SSL"),
            ("ssl.endpoint.identification.algorithm", "none"),
            ("ssl.ca.location", &tls("ca.pem")),
            ("ssl.certificate.location", &tls("client.pem")),
            ("ssl.key.location", &tls("client.key")),
        ],
    );
    rt.verify();
}

#[test]
fn bad_local_files_fail_producer_creation_with_the_setting_named() {
    let bs = env("KP_SSL_BOOTSTRAP");
    let cases: &[(&[(&str, &str)], &str)] = &[
        (&[("ssl.ca.location", "/nonexistent/ca.pem")], "ssl.ca.location"),
        (&[("ssl.truststore.type", "JKS"), ("ssl.truststore.location", "/x.jks")], "JKS"),
    ];
    // A real Java KeyStore, made by keytool from the test CA.
    let dir = std::env::temp_dir().join(format!("kp-jks-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let jks = dir.join("ca.jks").to_string_lossy().into_owned();
    let _ = std::fs::remove_file(&jks);
    let out = std::process::Command::new("keytool")
        .args(["-importcert", "-noprompt", "-alias", "ca", "-storetype", "JKS"])
        .args(["-storepass", "jks-store-pass", "-file", &tls("ca.pem"), "-keystore", &jks])
        .output()
        .expect("keytool (from the JDK the test bed runs on)");
    assert!(out.status.success(), "keytool: {}", String::from_utf8_lossy(&out.stderr));
    let jks_cases: Vec<(Vec<(&str, &str)>, &str)> = vec![
        // The file's magic number gives it away, whatever type is claimed.
        (
            vec![("ssl.truststore.location", &jks), ("ssl.truststore.password", "jks-store-pass")],
            "is a Java KeyStore (JKS)",
        ),
        (
            vec![
                ("ssl.keystore.location", &jks),
                ("ssl.keystore.type", "JKS"),
                ("ssl.keystore.password", "jks-store-pass"),
            ],
            "ssl.keystore.location: JKS stores are not supported",
        ),
        (
            vec![("ssl.keystore.location", &jks), ("ssl.keystore.password", "jks-store-pass")],
            "is a Java KeyStore (JKS)",
        ),
    ];
    let enc = tls("client-enc.key");
    let cert = tls("client.pem");
    let wrong_pw: Vec<(&str, &str)> = vec![
        ("ssl.certificate.location", &cert),
        ("ssl.key.location", &enc),
        ("ssl.key.password", "wrong-secret"),
    ];
    let mut all: Vec<(Vec<(&str, &str)>, &str)> =
        cases.iter().map(|(s, e)| (s.to_vec(), *e)).collect();
    all.push((wrong_pw, "ssl.key.password"));
    all.extend(jks_cases);
    for (settings, expect) in all {
        let mut s = vec![("bootstrap.servers", bs.as_str()), ("security.protocol", "SSL")];
        s.extend(settings);
        let cfg = config(&s);
        let mut err = [0i8; 512];
        let p = unsafe { kp_producer_new(cfg, err.as_mut_ptr(), err.len()) };
        let msg = cstr_buf(&err);
        assert!(p.is_null(), "created with {s:?}");
        assert!(msg.contains(expect), "{msg}");
        if expect.contains("JKS") {
            assert!(msg.contains("convert") && msg.contains("PKCS12"), "advice: {msg}");
            eprintln!("JKS refused: {msg}");
        }
        assert!(!msg.contains("wrong-secret") && !msg.contains("jks-store-pass"), "{msg}");
        unsafe { kp_config_destroy(cfg) };
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn secrets_never_come_back_from_config_get() {
    let j = jaas("scram.ScramLoginModule", "alice", "alice-secret");
    let cfg = config(&[
        ("sasl.password", "alice-secret"),
        ("sasl.jaas.config", &j),
        ("ssl.key.password", "client-key-pass"),
        ("ssl.keystore.password", "client-p12-pass"),
        ("ssl.truststore.password", "ca-p12-pass"),
    ]);
    for name in [
        "sasl.password",
        "sasl.jaas.config",
        "ssl.key.password",
        "ssl.keystore.password",
        "ssl.truststore.password",
    ] {
        let n = CString::new(name).unwrap();
        let mut buf = [0i8; 512];
        let mut size = buf.len();
        assert_eq!(unsafe { kp_config_get(cfg, n.as_ptr(), buf.as_mut_ptr(), &mut size) }, KP_OK);
        let v = cstr_buf(&buf);
        assert_eq!(v, "[hidden]", "{name}");
    }
    unsafe { kp_config_destroy(cfg) };
}

#[test]
fn topic_authorization_failure_per_record_names_the_topic() {
    let allowed = unique_topic("sec-acl");
    let denied = unique_topic("secdeny-acl");
    create_topic(&allowed, 1, rf(), &[]);
    create_topic(&denied, 1, rf(), &[]);
    let p = producer(
        &env("KP_SASL_SSL_BOOTSTRAP"),
        &[
            ("security.protocol", "SASL_SSL"),
            ("sasl.mechanism", "SCRAM-SHA-256"),
            ("sasl.username", "alice"),
            ("sasl.password", "alice-secret"),
            ("ssl.ca.location", &tls("ca.pem")),
        ],
    );
    for i in 0..10 {
        let t = if i % 2 == 0 { &allowed } else { &denied };
        assert_eq!(p.send(&Rec::new(t, b"v"), i).0, KP_OK);
    }
    let t0 = Instant::now();
    let reports = p.wait_reports(10, Duration::from_secs(20));
    assert_one_report_each(&reports, 10);
    for r in &reports {
        if r.tag % 2 == 0 {
            assert_eq!(r.error, KP_OK, "allowed topic: {:?}", r);
        } else {
            assert_eq!(r.error, 29, "TOPIC_AUTHORIZATION_FAILED expected: {:?}", r);
            let m = r.message.clone().unwrap_or_default();
            assert!(m.contains(&denied), "message names the topic: {m}");
            assert!(!r.retriable);
        }
    }
    eprintln!(
        "authorization: 5 delivered, 5 TOPIC_AUTHORIZATION_FAILED in {:?}: {:?}",
        t0.elapsed(),
        reports.iter().find(|r| r.error != KP_OK).and_then(|r| r.message.clone())
    );
}

fn take(e: *mut kp_error_t) -> Result<(), String> {
    if e.is_null() {
        return Ok(());
    }
    let m = unsafe { CStr::from_ptr(kp_error_message(e)) }.to_string_lossy().into_owned();
    unsafe { kp_error_destroy(e) };
    Err(m)
}

#[test]
fn transactions_commit_and_abort_over_sasl_ssl() {
    let topic = unique_topic("sec-txn");
    create_topic(&topic, 2, rf(), &[]);
    let id = unique_topic("sec-txn-id");
    let p = producer(
        &env("KP_SASL_SSL_BOOTSTRAP"),
        &[
            ("security.protocol", "SASL_SSL"),
            ("sasl.mechanism", "SCRAM-SHA-512"),
            ("sasl.username", "alice"),
            ("sasl.password", "alice-secret"),
            ("ssl.ca.location", &tls("ca.pem")),
            ("transactional.id", &id),
        ],
    );
    take(unsafe { kp_init_transactions(p.p, 60_000) }).expect("init");
    take(unsafe { kp_begin_transaction(p.p) }).unwrap();
    for i in 0..50 {
        assert_eq!(p.send(&Rec::new(&topic, format!("committed-{i}").as_bytes()), i).0, KP_OK);
    }
    take(unsafe { kp_commit_transaction(p.p, 60_000) }).expect("commit");
    take(unsafe { kp_begin_transaction(p.p) }).unwrap();
    for i in 0..50 {
        assert_eq!(p.send(&Rec::new(&topic, format!("aborted-{i}").as_bytes()), 50 + i).0, KP_OK);
    }
    assert_eq!(p.flush(30_000), KP_OK);
    take(unsafe { kp_abort_transaction(p.p, 60_000) }).expect("abort");
    let got = read_back(&topic, 50, "read_committed");
    let vals: HashSet<String> =
        got.iter().map(|c| String::from_utf8(c.value.clone().unwrap()).unwrap()).collect();
    assert_eq!(got.len(), 50, "read_committed sees the committed transaction only");
    for i in 0..50 {
        assert!(vals.contains(&format!("committed-{i}")));
    }
    assert!(vals.iter().all(|v| v.starts_with("committed-")));
    eprintln!("transactions over SASL_SSL: 50 committed visible, 50 aborted hidden (read_committed over TLS)");
}

#[test]
fn idempotent_producer_survives_a_broker_kill_over_sasl_ssl() {
    if testbed_nodes() != Some(3) {
        eprintln!("SKIPPED: needs the 3-node testbed cluster (scripts/test.sh) to kill brokers");
        return;
    }
    let topic = unique_topic("sec-failover");
    create_topic(&topic, 3, 3, &["--config", "min.insync.replicas=2"]);
    let p = producer(
        &env("KP_SASL_SSL_BOOTSTRAP"),
        &[
            ("security.protocol", "SASL_SSL"),
            ("sasl.mechanism", "SCRAM-SHA-256"),
            ("sasl.username", "alice"),
            ("sasl.password", "alice-secret"),
            ("ssl.ca.location", &tls("ca.pem")),
            ("enable.idempotence", "true"),
            ("request.timeout.ms", "5000"),
        ],
    );
    let n = 20_000usize;
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
        while sent.load(Ordering::Acquire) < n / 3 {
            std::thread::sleep(Duration::from_millis(10));
        }
        kafka(&["kill-node", "2"]);
        std::thread::sleep(Duration::from_secs(3));
        kafka(&["start-node", "2"]);
    });
    assert_eq!(p.flush(120_000), KP_OK, "flush after failover");
    let reports = p.reports();
    assert_one_report_each(&reports, n);
    let failed: Vec<_> = reports.iter().filter(|r| r.error != KP_OK).collect();
    assert!(failed.is_empty(), "{} failed, first: {:?}", failed.len(), failed.first());
    let got = read_back(&topic, n, "read_uncommitted");
    let values: HashSet<Vec<u8>> = got.iter().filter_map(|c| c.value.clone()).collect();
    for i in 0..n {
        assert!(values.contains(format!("seq-{i:08}").as_bytes()), "record {i} lost");
    }
    assert_eq!(got.len(), n, "duplicates: {} read for {n} sent", got.len());
    eprintln!("SASL_SSL failover: {n} sent, {} read, none lost or duplicated", got.len());
}

/// Log lines a producer passed to its log callback (outlives the producer).
#[derive(Default)]
struct Lines(Mutex<Vec<String>>);

unsafe extern "C" fn collect_line(
    _level: i32,
    _facility: *const c_char,
    message: *const c_char,
    ctx: *mut c_void,
) {
    // SAFETY: ctx is the &Lines given with the callback; message is valid during the call.
    let lines = unsafe { &*(ctx as *const Lines) };
    let m = unsafe { CStr::from_ptr(message) }.to_string_lossy().into_owned();
    lines.0.lock().unwrap().push(m);
}

fn logged_producer(bootstrap: &str, settings: &[(&str, &str)], lines: &Lines) -> TestProducer {
    let mut all = vec![("bootstrap.servers", bootstrap)];
    all.extend_from_slice(settings);
    let cfg = config(&all);
    let ctx = lines as *const Lines as *mut c_void;
    assert_eq!(unsafe { kp_config_set_log_callback(cfg, Some(collect_line), ctx) }, KP_OK);
    TestProducer::with_config(cfg)
}

fn metrics(p: &TestProducer) -> kp_metrics_t {
    let mut m: kp_metrics_t = unsafe { std::mem::zeroed() };
    m.struct_size = std::mem::size_of::<kp_metrics_t>();
    assert_eq!(unsafe { kp_producer_metrics(p.p, &mut m) }, KP_OK);
    m
}

/// Sends one small record every 10 ms for `secs` seconds; every record must
/// be delivered, and confluent-kafka must read them all back.
fn stream_for(p: &TestProducer, topic: &str, secs: u64) -> usize {
    let t0 = Instant::now();
    let mut n = 0;
    while t0.elapsed() < Duration::from_secs(secs) {
        let v = format!("r-{n:06}");
        let (rc, msg) = p.send(&Rec::new(topic, v.as_bytes()), n);
        assert_eq!(rc, KP_OK, "send {n}: {msg}");
        n += 1;
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(p.flush(30_000), KP_OK, "flush");
    let reports = p.reports();
    assert_one_report_each(&reports, n);
    let failed: Vec<_> = reports.iter().filter(|r| r.error != KP_OK).collect();
    assert!(failed.is_empty(), "{} failed, first {:?}", failed.len(), failed.first());
    let got = read_back(topic, n, "read_uncommitted");
    let values: HashSet<Vec<u8>> = got.iter().filter_map(|c| c.value.clone()).collect();
    assert_eq!((got.len(), values.len()), (n, n), "read back");
    n
}

/// The brokers' socket-server metrics of the SASL_SSL listener, read over JMX
/// (testbed/kafka.sh jmx: Kafka's JmxTool), summed over nodes and network
/// processors: attribute name -> value.
fn broker_sasl_ssl_metrics() -> HashMap<String, f64> {
    const ATTRS: &str = "successful-reauthentication-total,failed-reauthentication-total,\
                         expired-connections-killed-count,connection-creation-total";
    let out = kafka(&[
        "jmx",
        "kafka.server:type=socket-server-metrics,listener=SASL_SSL,networkProcessor=*",
        ATTRS,
    ]);
    let mut sums: HashMap<String, f64> = HashMap::new();
    for line in out.lines() {
        // node N kafka.server:type=...,networkProcessor=K:ATTR=VALUE
        let (name, value) = line.rsplit_once('=').unwrap_or_else(|| panic!("jmx line {line:?}"));
        let attr = name.rsplit_once(':').unwrap_or_else(|| panic!("jmx line {line:?}")).1;
        let value: f64 = value.parse().unwrap_or_else(|_| panic!("jmx line {line:?}"));
        *sums.entry(attr.to_string()).or_default() += value;
    }
    for attr in ATTRS.split(',') {
        assert!(sums.contains_key(attr), "broker metric {attr} missing: {out}");
    }
    sums
}

#[test]
fn sasl_sessions_are_reauthenticated_on_the_same_connection() {
    // The SASL_SSL listener has connections.max.reauth.ms=10000: the broker
    // grants 10 s sessions and closes a connection whose session ran out.
    // The broker's own counters (JMX) are the evidence, read before and after.
    let topic = unique_topic("sec-reauth");
    create_topic(&topic, 2, rf(), &[]);
    let before = broker_sasl_ssl_metrics();
    let lines = Lines::default();
    let p = logged_producer(
        &env("KP_SASL_SSL_BOOTSTRAP"),
        &[
            ("security.protocol", "SASL_SSL"),
            ("sasl.mechanism", "SCRAM-SHA-512"),
            ("sasl.username", "alice"),
            ("sasl.password", "alice-secret"),
            ("ssl.ca.location", &tls("ca.pem")),
            ("enable.idempotence", "true"),
            ("debug", "security"),
        ],
        &lines,
    );
    // The issue's 2-minute stream: about 14 sessions per connection.
    let secs = 120;
    let n = stream_for(&p, &topic, secs);
    let m = metrics(&p);
    p.close(5_000);
    drop(p);
    let after = broker_sasl_ssl_metrics();
    let broker = |attr: &str| (after[attr] - before[attr]) as u64;
    let lines = lines.0.lock().unwrap();
    let reauths: Vec<&String> =
        lines.iter().filter(|l| l.starts_with("re-authenticated with")).collect();
    for l in lines.iter() {
        assert!(!l.contains("alice-secret"), "secret in the log: {l}");
    }
    let opened = m.connections_opened;
    // No session ran out: the broker counted no failed re-authentication and
    // killed no connection for an expired session.
    let (ok, failed, killed, accepted) = (
        broker("successful-reauthentication-total"),
        broker("failed-reauthentication-total"),
        broker("expired-connections-killed-count"),
        broker("connection-creation-total"),
    );
    let counts = format!(
        "broker: {ok} re-authenticated, {failed} failed, {killed} killed as expired, \
         {accepted} accepted; kp: {opened} opened, {} closed",
        m.connections_closed
    );
    assert_eq!((failed, killed), (0, 0), "{counts}");
    // Every connection re-authenticates every 8.5 s: 14 times in 120 s (at
    // least 10 each, for a connection opened late on a loaded machine),
    // counted by the broker on the connection it authenticated first.
    assert!(ok >= 10 * opened, "{counts}");
    // The broker saw exactly kp's connections, and kp closed or reopened none.
    assert_eq!(accepted, opened, "{counts}");
    assert_eq!(m.connections_closed, 0, "{counts}: {lines:?}");
    assert!(opened <= u64::from(rf()) + 1, "{counts}");
    // kp's log agrees with the broker (one per connection may be in flight at close).
    assert!(
        ok.abs_diff(reauths.len() as u64) <= opened,
        "{counts}; kp logged {}: {lines:?}",
        reauths.len()
    );
    assert!(
        reauths[0].contains("SCRAM-SHA-512") && reauths[0].contains("10000 ms"),
        "{}",
        reauths[0]
    );
    eprintln!(
        "re-authentication: {n} records over {secs} s, none failed, read back by confluent-kafka; \
         broker (JMX, SASL_SSL listener): {ok} successful re-authentications, 0 failed, \
         0 expired connections killed, {opened} connections accepted = kp's {opened} opened, \
         0 closed; kp logged {} re-authentications, e.g. {:?}",
        reauths.len(),
        reauths[0]
    );
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64
}

/// base64url without padding (JWT segments).
fn b64url(data: &[u8]) -> String {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut o = String::new();
    for c in data.chunks(3) {
        let n = c.iter().enumerate().fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..=c.len() {
            o.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
    }
    o
}

/// The test's "identity provider": hands out unsecured JWTs (the broker's
/// test validator accepts them) living `life_ms`, and records each call.
struct TokenSource {
    principal: &'static str,
    life_ms: i64,
    /// (thread name, sasl.oauthbearer.config, ms since the test started)
    calls: Mutex<Vec<(String, String, u128)>>,
    t0: Instant,
}

unsafe extern "C" fn refresh_token(
    req: *mut kp_oauthbearer_request_t,
    config: *const c_char,
    ctx: *mut c_void,
) {
    // SAFETY: ctx is the &TokenSource registered with the callback; config is valid during the call.
    let src = unsafe { &*(ctx as *const TokenSource) };
    let config = unsafe { CStr::from_ptr(config) }.to_string_lossy().into_owned();
    let thread = std::thread::current().name().unwrap_or("").to_string();
    src.calls.lock().unwrap().push((thread, config, src.t0.elapsed().as_millis()));
    let (now, exp) = (now_ms(), now_ms() + src.life_ms);
    let claims =
        format!(r#"{{"sub":"{}","iat":{},"exp":{}}}"#, src.principal, now / 1000, exp / 1000);
    let token = format!("{}.{}.", b64url(br#"{"alg":"none"}"#), b64url(claims.as_bytes()));
    let token = CString::new(token).unwrap();
    let principal = CString::new(src.principal).unwrap();
    let ext: Vec<CString> =
        ["traceId", "kp-test"].iter().map(|s| CString::new(*s).unwrap()).collect();
    let ext_ptrs: Vec<*const c_char> = ext.iter().map(|s| s.as_ptr()).collect();
    let mut err = [0i8; 256];
    let rc = unsafe {
        kp_oauthbearer_set_token(
            req,
            token.as_ptr(),
            (exp / 1000) * 1000,
            principal.as_ptr(),
            ext_ptrs.as_ptr(),
            ext_ptrs.len(),
            err.as_mut_ptr(),
            err.len(),
        )
    };
    assert_eq!(rc, KP_OK, "kp_oauthbearer_set_token: {}", cstr_buf(&err));
}

#[test]
fn oauthbearer_tokens_from_the_callback_are_used_and_refreshed_before_expiry() {
    // The SASL_SSL listener validates unsecured JWTs and limits sessions to
    // 10 s (or the token's remaining lifetime, when shorter): connections
    // must re-authenticate with a fresh token, or the broker closes them.
    let topic = unique_topic("sec-oauth");
    create_topic(&topic, 2, rf(), &[]);
    let src = TokenSource {
        principal: "alice",
        life_ms: 15_000,
        calls: Mutex::default(),
        t0: Instant::now(),
    };
    let lines = Lines::default();
    let mut all = vec![
        ("bootstrap.servers", env("KP_SASL_SSL_BOOTSTRAP")),
        ("security.protocol", "SASL_SSL".into()),
        ("sasl.mechanism", "OAUTHBEARER".into()),
        ("sasl.oauthbearer.config", "audience=kp-test".into()),
        ("ssl.ca.location", tls("ca.pem")),
        ("debug", "security".into()),
    ];
    all.push(("enable.idempotence", "true".into()));
    let all: Vec<(&str, &str)> = all.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let cfg = config(&all);
    let ctx = &src as *const TokenSource as *mut c_void;
    assert_eq!(
        unsafe { kp_config_set_oauthbearer_token_refresh_cb(cfg, Some(refresh_token), ctx) },
        KP_OK
    );
    let lctx = &lines as *const Lines as *mut c_void;
    assert_eq!(unsafe { kp_config_set_log_callback(cfg, Some(collect_line), lctx) }, KP_OK);
    let p = TestProducer::with_config(cfg);
    let secs = 28;
    let n = stream_for(&p, &topic, secs);
    let m = metrics(&p);
    p.close(5_000);
    drop(p);
    let calls = src.calls.lock().unwrap().clone();
    // 15 s tokens, refreshed at 80%: fetched at ~0, ~12 and ~24 s.
    assert!(calls.len() >= 3, "token callback calls: {calls:?}");
    for (thread, config, _) in &calls {
        assert_eq!(thread, "kp-oauth", "called on kp's token thread, not the I/O thread");
        assert_eq!(config, "audience=kp-test");
    }
    assert!(calls[1].2 >= 10_000 && calls[1].2 < 14_000, "first refresh before expiry: {calls:?}");
    let lines = lines.0.lock().unwrap();
    let reauths = lines.iter().filter(|l| l.starts_with("re-authenticated with")).count();
    assert!(reauths >= 2, "re-authentications: {lines:?}");
    assert!(lines.iter().all(|l| !l.contains("eyJ")), "a token in the log: {lines:?}");
    assert_eq!(m.connections_closed, 0, "no session ran out: {lines:?}");
    eprintln!(
        "OAUTHBEARER: {n} records over {secs} s, none failed, read back; token callback called at {:?} ms \
         (15 s tokens) on thread kp-oauth; {reauths} re-authentications, {} connections, 0 closed",
        calls.iter().map(|c| c.2).collect::<Vec<_>>(),
        m.connections_opened
    );
}

#[test]
fn oauthbearer_unsecured_jwt_for_test_clusters() {
    let mut rt = RoundTrips::new();
    let b = env("KP_SASL_SSL_BOOTSTRAP");
    let ca = tls("ca.pem");
    rt.produce(
        "OAUTHBEARER unsecured JWT (librdkafka names)",
        &b,
        &[
            ("security.protocol", "SASL_SSL"),
            ("sasl.mechanism", "OAUTHBEARER"),
            ("enable.sasl.oauthbearer.unsecure.jwt", "true"),
            ("sasl.oauthbearer.config", "principal=alice lifeSeconds=60 extension_traceId=t1"),
            ("ssl.ca.location", &ca),
        ],
    );
    rt.produce(
        "OAUTHBEARER unsecured JWT (Java names)",
        &b,
        &[
            ("security.protocol", "SASL_SSL"),
            ("sasl.mechanism", "OAUTHBEARER"),
            ("enable.sasl.oauthbearer.unsecure.jwt", "true"),
            (
                "sasl.jaas.config",
                "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required unsecuredLoginStringClaim_sub=\"alice\";",
            ),
            ("ssl.ca.location", &ca),
        ],
    );
    rt.verify();
    // No token source at all: refused at creation, saying what to do.
    let cfg = config(&[
        ("bootstrap.servers", &b),
        ("security.protocol", "SASL_SSL"),
        ("sasl.mechanism", "OAUTHBEARER"),
        ("ssl.ca.location", &ca),
    ]);
    let mut err = [0i8; 512];
    let p = unsafe { kp_producer_new(cfg, err.as_mut_ptr(), err.len()) };
    assert!(p.is_null());
    let msg = cstr_buf(&err);
    assert!(msg.contains("kp_config_set_oauthbearer_token_refresh_cb"), "{msg}");
    unsafe { kp_config_destroy(cfg) };
}

unsafe extern "C" fn refuse_token(
    req: *mut kp_oauthbearer_request_t,
    _config: *const c_char,
    ctx: *mut c_void,
) {
    // SAFETY: ctx is the &AtomicUsize registered with the callback.
    unsafe { &*(ctx as *const AtomicUsize) }.fetch_add(1, Ordering::SeqCst);
    let why = CString::new("identity provider unreachable").unwrap();
    assert_eq!(unsafe { kp_oauthbearer_set_token_failure(req, why.as_ptr()) }, KP_OK);
}

#[test]
fn oauthbearer_token_failure_fails_the_records_fast_with_the_reason() {
    let calls = AtomicUsize::new(0);
    let cfg = config(&[
        ("bootstrap.servers", &env("KP_SASL_SSL_BOOTSTRAP")),
        ("security.protocol", "SASL_SSL"),
        ("sasl.mechanism", "OAUTHBEARER"),
        ("ssl.ca.location", &tls("ca.pem")),
    ]);
    let ctx = &calls as *const AtomicUsize as *mut c_void;
    assert_eq!(
        unsafe { kp_config_set_oauthbearer_token_refresh_cb(cfg, Some(refuse_token), ctx) },
        KP_OK
    );
    let p = TestProducer::with_config(cfg);
    let topic = unique_topic("sec-oauth-fail");
    let t0 = Instant::now();
    for i in 0..5 {
        assert_eq!(p.send(&Rec::new(&topic, b"never"), i).0, KP_OK);
    }
    let reports = p.wait_reports(5, Duration::from_secs(10));
    let took = t0.elapsed();
    assert_one_report_each(&reports, 5);
    for r in &reports {
        let m = r.message.clone().unwrap_or_default();
        assert_ne!(r.error, KP_OK);
        assert!(m.contains("OAUTHBEARER") && m.contains("identity provider unreachable"), "{m}");
    }
    assert!(took < Duration::from_secs(10), "{took:?}");
    p.close(5_000);
    drop(p);
    let n = calls.load(Ordering::SeqCst);
    assert!((1..=5).contains(&n), "token callback called {n} times");
    eprintln!(
        "OAUTHBEARER token failure: 5 records failed in {took:?} with {:?}; callback called {n} time(s)",
        reports.first().and_then(|r| r.message.as_deref()).unwrap_or("(no record was accepted)")
    );
}
