//! Seed inputs of the fuzz targets (`kp::fuzzing`, `fuzz/`): valid response
//! frames of every API and version the client negotiates, record batches of
//! every codec, compressed containers, SASL messages and configuration pairs.
//!
//! The test checks every seed is a *valid* input (decodes `Ok`), so the
//! fuzzer starts from the decoders' happy paths. With
//! `KP_WRITE_FUZZ_SEEDS=1` it also writes them to `fuzz/corpus/<target>/`
//! (`seed-*` files; libFuzzer adds its own next to them).

use bytes::BytesMut;

use super::robustness::valid_frames;
use crate::config::REGISTRY;
use crate::fuzzing::{response_selector, DECOMPRESS_LIMIT};
use crate::protocol::api::*;
use crate::protocol::compression::{compress, Compression};
use crate::protocol::messages::*;
use crate::protocol::record_batch::*;
use crate::protocol::test_support::{decode_batches, decompress};

fn response_seeds() -> Vec<(String, Vec<u8>)> {
    let mut frames = valid_frames();
    for v in 0..=1 {
        let r = SaslHandshakeResponse {
            error_code: 33,
            mechanisms: vec!["PLAIN".into(), "SCRAM-SHA-256".into()],
        };
        frames.push((API_SASL_HANDSHAKE, v, encoded(API_SASL_HANDSHAKE, v, &r)));
    }
    for v in 0..=2 {
        let r = SaslAuthenticateResponse {
            error_code: 0,
            error_message: Some("m".into()),
            auth_bytes: bytes::Bytes::from_static(b"v=abc"),
            session_lifetime_ms: 3_600_000,
        };
        frames.push((API_SASL_AUTHENTICATE, v, encoded(API_SASL_AUTHENTICATE, v, &r)));
    }
    frames
        .into_iter()
        .map(|(api, v, f)| {
            let mut input = response_selector(api, v).to_vec();
            input.extend_from_slice(&f);
            (format!("seed-api{api}-v{v}"), input)
        })
        .collect()
}

/// A response frame as the transport hands it over (size prefix stripped).
fn encoded<T: EncodeResponse>(api: i16, v: i16, r: &T) -> Vec<u8> {
    let mut out = BytesMut::new();
    encode_response(&mut out, api, v, 7, r);
    out[4..].to_vec()
}

const CODECS: [Compression; 5] = [
    Compression::None,
    Compression::Gzip(None),
    Compression::Snappy,
    Compression::Lz4(None),
    Compression::Zstd(None),
];

fn batch(c: Compression, n: usize, stamp: ProducerStamp) -> Vec<u8> {
    let mut b = BatchBuilder::with_capacity(256);
    for i in 0..n {
        let h = [RecordHeader { key: b"hk", value: Some(b"hv") }];
        let value = if i % 2 == 0 { Some(&b"value-value"[..]) } else { None };
        b.append(1000 + i as i64, Some(b"key"), value, if i == 0 { &h } else { &[] });
    }
    b.seal(c, stamp).unwrap().bytes.to_vec()
}

fn batch_seeds() -> Vec<(String, Vec<u8>)> {
    let txn =
        ProducerStamp { producer_id: 5, producer_epoch: 1, base_sequence: 0, transactional: true };
    let mut out = Vec::new();
    for c in CODECS {
        let mut input = vec![0u8];
        input.extend(batch(c, 3, ProducerStamp::NONE));
        out.push((format!("seed-{}", c.name()), input));
    }
    let mut two = vec![0u8];
    two.extend(batch(Compression::None, 1, txn));
    two.extend(batch(Compression::Lz4(None), 2, txn));
    out.push(("seed-two-batches".into(), two));
    out
}

const TEXT: &[u8] = b"kp kp kp kafka producer record batch 0123456789 kp kp kp kafka producer";

fn compression_seeds() -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for (i, c) in CODECS.into_iter().enumerate() {
        let mut input = vec![i as u8];
        let mut body = BytesMut::new();
        compress(c, TEXT, &mut body).unwrap();
        input.extend_from_slice(&body);
        out.push((format!("seed-{}", c.name()), input));
        let mut round = vec![0x80 | i as u8];
        round.extend_from_slice(TEXT);
        out.push((format!("seed-{}-roundtrip", c.name()), round));
    }
    out
}

fn sasl_seeds() -> Vec<(String, Vec<u8>)> {
    let with = |k: u8, s: &[u8]| [&[k][..], s].concat();
    vec![
        ("seed-jaas-scram".into(), with(0, b"org.apache.kafka.common.security.scram.ScramLoginModule required username=\"alice\" password=\"a\\\"b\";")),
        ("seed-jaas-plain".into(), with(0, b"org.apache.kafka.common.security.plain.PlainLoginModule required username=bob password=x")),
        (
            "seed-scram-sha256".into(),
            with(1, b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096\0v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="),
        ),
        ("seed-scram-sha512-error".into(), with(2, b"r=rOprNGfwEbeRWgbNEkqOxyz,s=QSXCR+Q6sek8bf92,i=4096\0e=invalid-proof")),
        ("seed-oauth-jwt".into(), with(3, b"principal=alice scope=a,b lifeSeconds=60 extension_traceId=x")),
        ("seed-tls-record".into(), with(4, &[0x16, 0x03, 0x03, 0x00])),
    ]
}

fn config_seeds() -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for d in REGISTRY {
        let value = if d.default.is_empty() { "x" } else { d.default };
        out.push((format!("seed-{}", d.name), format!("{}\0{value}", d.name).into_bytes()));
    }
    let full = [
        ("bootstrap.servers", "a:9092,[::1]:9093"),
        ("security.protocol", "SASL_PLAINTEXT"),
        ("sasl.mechanism", "SCRAM-SHA-512"),
        ("sasl.jaas.config", "org.apache.kafka.common.security.scram.ScramLoginModule required username=\"u\" password=\"p\";"),
        ("enable.idempotence", "false"),
        ("acks", "1"),
        ("linger.ms", "10"),
        ("compression.type", "zstd"),
    ];
    let text: Vec<String> = full.iter().map(|(n, v)| format!("{n}\0{v}")).collect();
    out.push(("seed-full-sasl".into(), text.join("\0").into_bytes()));
    let oauth = "bootstrap.servers\0h:1\0security.protocol\0sasl_plaintext\0sasl.mechanism\0OAUTHBEARER\0enable.sasl.oauthbearer.unsecure.jwt\0true\0sasl.oauthbearer.config\0principal=p lifeSeconds=10";
    out.push(("seed-full-oauth".into(), oauth.as_bytes().to_vec()));
    out
}

/// Named seed inputs of one target.
type Seeds = Vec<(String, Vec<u8>)>;

/// Every target's seeds, by target name.
pub(crate) fn seeds() -> Vec<(&'static str, Seeds)> {
    vec![
        ("responses", response_seeds()),
        ("record_batch", batch_seeds()),
        ("compression", compression_seeds()),
        ("sasl", sasl_seeds()),
        ("config", config_seeds()),
    ]
}

#[test]
fn seeds_are_valid_inputs() {
    for (name, input) in response_seeds() {
        // decoding through the fuzz entry must succeed: check with the same
        // selector arithmetic
        let (api, v) = (input[0], input[1]);
        let (api, lo, _) = crate::fuzzing::RESPONSES[api as usize];
        let ok = match api {
            API_SASL_HANDSHAKE => {
                decode_response_slice::<SaslHandshakeRequest>(lo + v as i16, &input[2..]).is_ok()
            }
            API_SASL_AUTHENTICATE => {
                decode_response_slice::<SaslAuthenticateRequest>(lo + v as i16, &input[2..]).is_ok()
            }
            _ => true, // valid_frames() is checked by the robustness tests
        };
        assert!(ok, "{name}");
        crate::fuzzing::responses(&input);
    }
    for (name, input) in batch_seeds() {
        assert!(decode_batches(&input[1..]).is_ok(), "{name}");
    }
    for (name, input) in compression_seeds() {
        if input[0] & 0x80 == 0 {
            assert_eq!(
                decompress(input[0], &input[1..], DECOMPRESS_LIMIT).unwrap(),
                TEXT,
                "{name}"
            );
        }
    }
    let mut m = crate::config::ConfigMap::default();
    for (name, input) in config_seeds() {
        let text = String::from_utf8(input).unwrap();
        let parts: Vec<&str> = text.split('\0').collect();
        for p in parts.chunks(2) {
            if !p[0].ends_with(".location") && p[0] != "bootstrap.servers" {
                // every registered name is known; values may be placeholders
                assert!(
                    !matches!(m.set(p[0], p[1]), Err(crate::config::SetError::Unknown(_))),
                    "{name}"
                );
            }
        }
    }
    if std::env::var_os("KP_WRITE_FUZZ_SEEDS").is_some() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus");
        for (target, files) in seeds() {
            let dir = root.join(target);
            std::fs::create_dir_all(&dir).unwrap();
            for (name, input) in files {
                std::fs::write(dir.join(name), input).unwrap();
            }
        }
    }
}
