//! The configuration registry: every setting kp understands, its type, range,
//! default, aliases (librdkafka names) and documentation. Parsing, validation,
//! `kp_config_set` and the README's config table all come from `REGISTRY`.

use std::collections::BTreeMap;

use crate::protocol::compression::Compression;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Integer in [min, max].
    Int {
        min: i64,
        max: i64,
    },
    Bool,
    /// One of the listed words (case-insensitive).
    Enum(&'static [&'static str]),
    /// Free text (validated by `check` in `ProducerConfig::from_map`).
    Text,
}

/// One registered setting.
pub struct Def {
    pub name: &'static str,
    /// librdkafka (or other) names accepted for the same setting.
    pub aliases: &'static [&'static str],
    pub kind: Kind,
    /// Default as text; "" means unset.
    pub default: &'static str,
    pub doc: &'static str,
    /// Multiply an alias's value by this (e.g. KiB → bytes) — (alias, factor).
    pub alias_scale: Option<(&'static str, i64)>,
}

const I32MAX: i64 = i32::MAX as i64;

macro_rules! def {
    ($name:expr, [$($alias:expr),*], $kind:expr, $default:expr, $doc:expr) => {
        Def { name: $name, aliases: &[$($alias),*], kind: $kind, default: $default, doc: $doc, alias_scale: None }
    };
    ($name:expr, [$($alias:expr),*], $kind:expr, $default:expr, $doc:expr, scale $a:expr => $f:expr) => {
        Def { name: $name, aliases: &[$($alias),*], kind: $kind, default: $default, doc: $doc, alias_scale: Some(($a, $f)) }
    };
}

pub const COMPRESSION_NAMES: &[&str] = &["none", "gzip", "snappy", "lz4", "zstd"];
pub const PARTITIONER_NAMES: &[&str] =
    &["murmur2_random", "murmur2", "consistent_random", "consistent", "random", "round_robin"];

pub static REGISTRY: &[Def] = &[
    def!("bootstrap.servers", ["metadata.broker.list"], Kind::Text, "",
        "Comma-separated host:port list of brokers used to discover the cluster (required)."),
    def!("client.id", [], Kind::Text, "kp", "Client id sent with every request (broker logs and quotas)."),
    def!("acks", ["request.required.acks"], Kind::Enum(&["all", "-1", "0", "1"]), "all",
        "Acknowledgements the leader must receive: 0 (none), 1 (leader only), all/-1 (all in-sync replicas)."),
    def!("enable.idempotence", [], Kind::Bool, "true",
        "Idempotent producer (producer id + sequence numbers: no duplicates from retries, order kept). Requires acks=all, retries > 0 and max.in.flight.requests.per.connection <= 5; when not set explicitly it is turned off if those conflict."),
    def!("linger.ms", ["queue.buffering.max.ms"], Kind::Int { min: 0, max: 900_000 }, "5",
        "How long a partition's batch may wait for more records before it is sent."),
    def!("batch.size", [], Kind::Int { min: 1, max: 100_000_000 }, "131072",
        "Target uncompressed size in bytes of one partition's batch; a full batch is sent at once. \
         Batches grow as records arrive, so this is a cap, not memory reserved per partition \
         (why 128 KiB: BENCHMARKS.md, W6 session 7)."),
    def!("buffer.memory", ["queue.buffering.max.kbytes"], Kind::Int { min: 1024, max: 1 << 40 }, "33554432",
        "Total bytes of records kp may hold unsent; beyond it kp_send blocks up to max.block.ms.",
        scale "queue.buffering.max.kbytes" => 1024),
    def!("max.block.ms", [], Kind::Int { min: 0, max: I32MAX }, "60000",
        "How long kp_send may block when the buffer is full (0: QUEUE_FULL at once), or for a new topic's metadata once 1 MiB waits for it."),
    def!("compression.type", ["compression.codec"], Kind::Enum(COMPRESSION_NAMES), "none",
        "Batch compression: none, gzip, snappy, lz4 or zstd."),
    def!("compression.gzip.level", [], Kind::Int { min: -1, max: 9 }, "-1", "gzip level 1-9; -1 is the codec default (6)."),
    def!("compression.lz4.level", [], Kind::Int { min: -1, max: 17 }, "-1", "lz4 level; -1 is the codec default."),
    def!("compression.zstd.level", [], Kind::Int { min: -131072, max: 22 }, "3", "zstd level -131072..22 (3 is zstd's default)."),
    def!("compression.level", [], Kind::Int { min: -131072, max: 22 }, "-1",
        "librdkafka-style level for whichever codec is chosen; -1 keeps the per-codec level."),
    def!("request.timeout.ms", [], Kind::Int { min: 1, max: I32MAX }, "30000",
        "How long to wait for a broker's response before the request is failed (and retried)."),
    def!("delivery.timeout.ms", ["message.timeout.ms"], Kind::Int { min: 1, max: I32MAX }, "120000",
        "Upper bound from kp_send to the delivery report, retries included."),
    def!("retries", ["message.send.max.retries"], Kind::Int { min: 0, max: I32MAX }, "2147483647",
        "How many times a failed batch is retried (within delivery.timeout.ms)."),
    def!("retry.backoff.ms", [], Kind::Int { min: 0, max: I32MAX }, "100", "First backoff before a retry; doubles each attempt."),
    def!("retry.backoff.max.ms", [], Kind::Int { min: 0, max: I32MAX }, "1000", "Upper bound of the retry backoff."),
    def!("max.in.flight.requests.per.connection", ["max.in.flight"], Kind::Int { min: 1, max: 1_000_000 }, "5",
        "Produce requests sent to one broker before waiting for responses."),
    def!("max.request.size", ["message.max.bytes"], Kind::Int { min: 1000, max: 1_000_000_000 }, "1048576",
        "Largest produce request in bytes; a larger record is rejected at kp_send."),
    def!("metadata.max.age.ms", [], Kind::Int { min: 1, max: I32MAX }, "300000", "Metadata is refreshed at least this often."),
    def!("metadata.recovery.strategy", [], Kind::Enum(&["rebootstrap", "none"]), "rebootstrap",
        "What to do when no known broker can be reached (KIP-899): rebootstrap forgets the known brokers and connects to bootstrap.servers again, resolving their names anew (also when a broker answers REBOOTSTRAP_REQUIRED); none keeps to the known brokers once metadata came."),
    def!("metadata.recovery.rebootstrap.trigger.ms", [], Kind::Int { min: 0, max: I32MAX }, "300000",
        "With metadata.recovery.strategy=rebootstrap: rebootstrap also when no metadata came from any known broker for this long (KIP-1102)."),
    def!("reconnect.backoff.ms", [], Kind::Int { min: 0, max: I32MAX }, "50", "First wait before reconnecting to a broker."),
    def!("reconnect.backoff.max.ms", [], Kind::Int { min: 0, max: I32MAX }, "1000", "Upper bound of the reconnect backoff."),
    def!("socket.connection.setup.timeout.ms", [], Kind::Int { min: 1, max: I32MAX }, "10000",
        "Time allowed for a TCP connect plus the ApiVersions handshake."),
    def!("send.buffer.bytes", ["socket.send.buffer.bytes"], Kind::Int { min: -1, max: I32MAX }, "131072",
        "SO_SNDBUF for broker sockets; -1 keeps the OS default."),
    def!("receive.buffer.bytes", ["socket.receive.buffer.bytes"], Kind::Int { min: -1, max: I32MAX }, "32768",
        "SO_RCVBUF for broker sockets; -1 keeps the OS default."),
    def!("partitioner", [], Kind::Enum(PARTITIONER_NAMES), "murmur2_random",
        "Key placement: murmur2 (Java producer's), consistent (librdkafka's CRC32), random, round_robin; the *_random forms and murmur2 put null keys on a sticky partition."),
    def!("partitioner.ignore.keys", [], Kind::Bool, "false", "Place keyed records as if they had no key."),
    def!("allow.auto.create.topics", [], Kind::Bool, "true",
        "Ask the broker to auto-create unknown topics in metadata requests (the broker's auto.create.topics.enable still decides)."),
    def!("transactional.id", [], Kind::Text, "",
        "Enables transactions (kp_init_transactions ...); implies enable.idempotence=true. Unset: no transactions."),
    def!("transaction.timeout.ms", [], Kind::Int { min: 1, max: I32MAX }, "60000",
        "How long the broker lets a transaction stay open before aborting it."),
    def!("delivery.report.mode", [], Kind::Enum(&["thread", "poll"]), "thread",
        "thread: callbacks run on a kp-owned thread; poll: callbacks run inside kp_poll/kp_flush on the caller's thread."),
    def!("log_level", [], Kind::Int { min: 0, max: 7 }, "6",
        "Most verbose syslog level passed to the log callback (kp_config_set_log_callback): 0 emerg .. 3 error, 4 warning, 5 notice, 6 info, 7 debug."),
    def!("debug", [], Kind::Text, "",
        "Comma-separated debug contexts logged at level 7: broker, protocol, metadata, producer, txn, security, all (setting it raises log_level to 7, as in librdkafka)."),
    def!("security.protocol", [], Kind::Enum(&["plaintext", "ssl", "sasl_plaintext", "sasl_ssl"]), "plaintext",
        "How to reach brokers: plaintext, ssl (TLS), sasl_plaintext (SASL without TLS) or sasl_ssl (SASL over TLS)."),
    def!("ssl.ca.location", ["ssl.truststore.location"], Kind::Text, "",
        "CA certificates to trust: a PEM file, a directory of PEM files, or a PKCS#12 file with ssl.truststore.type=PKCS12. Unset (and no ssl.ca.pem): the system trust store."),
    def!("ssl.ca.pem", ["ssl.truststore.certificates"], Kind::Text, "", "CA certificates to trust, as inline PEM."),
    def!("ssl.truststore.type", [], Kind::Enum(&["pem", "pkcs12", "jks"]), "pem",
        "Format of ssl.ca.location / ssl.truststore.location: PEM or PKCS12 (JKS is refused: convert it to PKCS12 or PEM)."),
    def!("ssl.truststore.password", [], Kind::Text, "", "Password of a PKCS#12 truststore (secret: never shown)."),
    def!("ssl.certificate.location", [], Kind::Text, "", "Client certificate (chain) PEM file, for mutual TLS."),
    def!("ssl.certificate.pem", ["ssl.keystore.certificate.chain"], Kind::Text, "", "Client certificate (chain) as inline PEM."),
    def!("ssl.key.location", [], Kind::Text, "",
        "Client private key PEM file (PKCS#8, PKCS#1 or SEC1; encrypted PKCS#8 with ssl.key.password)."),
    def!("ssl.key.pem", ["ssl.keystore.key"], Kind::Text, "", "Client private key as inline PEM (secret: never shown)."),
    def!("ssl.key.password", [], Kind::Text, "", "Password of an encrypted client key (secret: never shown)."),
    def!("ssl.keystore.location", [], Kind::Text, "",
        "Client certificate and key in one file: PKCS#12 (default) or PEM (ssl.keystore.type)."),
    def!("ssl.keystore.type", [], Kind::Enum(&["pkcs12", "pem", "jks"]), "pkcs12",
        "Format of ssl.keystore.location: PKCS12 or PEM (JKS is refused: convert it to PKCS12 or PEM)."),
    def!("ssl.keystore.password", [], Kind::Text, "", "Password of the PKCS#12 keystore (secret: never shown)."),
    def!("enable.ssl.certificate.verification", [], Kind::Bool, "true",
        "Verify the broker's certificate chain. false accepts any certificate (testing only: anyone can impersonate the broker)."),
    def!("ssl.endpoint.identification.algorithm", [], Kind::Enum(&["https", "none", ""]), "https",
        "https: the broker's certificate must be valid for the host name or IP kp connected to; none (or empty): do not check the name (the chain is still verified; a man in the middle with any certificate from a trusted CA is not detected)."),
    def!("sasl.mechanism", ["sasl.mechanisms"], Kind::Enum(&["plain", "scram-sha-256", "scram-sha-512", "oauthbearer"]), "plain",
        "SASL mechanism for sasl_plaintext / sasl_ssl: PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 or OAUTHBEARER (tokens from kp_config_set_oauthbearer_token_refresh_cb, or unsecured JWTs for tests)."),
    def!("sasl.oauthbearer.config", [], Kind::Text, "",
        "OAUTHBEARER: text passed to the token refresh callback; with enable.sasl.oauthbearer.unsecure.jwt, the unsecured JWT to build: principal=<name> [scope=<a,b>] [lifeSeconds=<n>] [extension_<name>=<value>] (librdkafka's format; never shown)."),
    def!("enable.sasl.oauthbearer.unsecure.jwt", [], Kind::Bool, "false",
        "OAUTHBEARER without a token refresh callback: build unsecured JWTs (alg none) from sasl.oauthbearer.config. For test clusters only."),
    def!("sasl.username", [], Kind::Text, "", "SASL user name (or username in sasl.jaas.config)."),
    def!("sasl.password", [], Kind::Text, "", "SASL password (secret: never shown)."),
    def!("sasl.jaas.config", [], Kind::Text, "",
        "Java-style credentials: PlainLoginModule or ScramLoginModule with username=\"...\" password=\"...\"; sasl.username/sasl.password win when both are set (secret: never shown)."),
];

pub fn find(name: &str) -> Option<(&'static Def, Option<i64>)> {
    for d in REGISTRY {
        if d.name == name {
            return Some((d, None));
        }
        if d.aliases.contains(&name) {
            let scale = d.alias_scale.filter(|(a, _)| *a == name).map(|(_, f)| f);
            return Some((d, scale));
        }
    }
    None
}

/// Outcome of setting one property.
#[derive(Debug, PartialEq, Eq)]
pub enum SetError {
    Unknown(String),
    Invalid(String),
}

/// The raw, validated-per-key settings (canonical name → canonical value).
#[derive(Clone, Default, Debug)]
pub struct ConfigMap {
    values: BTreeMap<&'static str, String>,
}

fn parse_int(s: &str) -> Option<i64> {
    s.trim().parse::<i64>().ok()
}

fn parse_bool(s: &str) -> Option<bool> {
    match s.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Some(true),
        "false" | "0" | "no" | "off" => Some(false),
        _ => None,
    }
}

impl ConfigMap {
    pub fn set(&mut self, name: &str, value: &str) -> Result<(), SetError> {
        let (def, scale) = find(name).ok_or_else(|| {
            SetError::Unknown(format!("unknown configuration property \"{name}\""))
        })?;
        let canonical = match def.kind {
            Kind::Int { min, max } => {
                let v = parse_int(value).ok_or_else(|| {
                    SetError::Invalid(format!("\"{name}\" expects an integer, got \"{value}\""))
                })?;
                let v = v.checked_mul(scale.unwrap_or(1)).ok_or_else(|| {
                    SetError::Invalid(format!("\"{name}\" value \"{value}\" is out of range"))
                })?;
                if v < min || v > max {
                    return Err(SetError::Invalid(format!(
                        "\"{name}\" must be between {min} and {max}, got {v}"
                    )));
                }
                v.to_string()
            }
            Kind::Bool => parse_bool(value)
                .ok_or_else(|| {
                    SetError::Invalid(format!("\"{name}\" expects true or false, got \"{value}\""))
                })?
                .to_string(),
            Kind::Enum(words) => {
                let lower = value.trim().to_ascii_lowercase();
                if !words.contains(&lower.as_str()) {
                    return Err(SetError::Invalid(format!(
                        "\"{name}\" must be one of {}, got \"{value}\"",
                        words.join(", ")
                    )));
                }
                lower
            }
            Kind::Text => value.to_string(),
        };
        if def.name == "bootstrap.servers" {
            parse_bootstrap(&canonical).map_err(SetError::Invalid)?;
        }
        if def.name == "debug" {
            crate::log::parse_debug(&canonical).map_err(SetError::Invalid)?;
        }
        self.values.insert(def.name, canonical);
        Ok(())
    }

    /// A setting's value as `kp_config_get` shows it: secrets that were set
    /// read as "[hidden]".
    pub fn get(&self, name: &str) -> Option<String> {
        let (def, _) = find(name)?;
        if crate::engine::security::SECRET_SETTINGS.contains(&def.name) && self.is_set(def.name) {
            return Some(crate::engine::security::HIDDEN.to_string());
        }
        self.raw(name)
    }

    /// A setting's value, secrets included (for building the configuration).
    fn raw(&self, name: &str) -> Option<String> {
        let (def, _) = find(name)?;
        Some(self.values.get(def.name).cloned().unwrap_or_else(|| def.default.to_string()))
    }

    fn is_set(&self, name: &str) -> bool {
        self.values.contains_key(name)
    }

    fn int(&self, name: &str) -> i64 {
        parse_int(&self.get(name).expect("registered")).unwrap_or(0)
    }

    fn boolean(&self, name: &str) -> bool {
        parse_bool(&self.get(name).expect("registered")).unwrap_or(false)
    }
}

pub fn parse_bootstrap(s: &str) -> Result<Vec<(String, u16)>, String> {
    let mut out = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let part = part.strip_prefix("PLAINTEXT://").unwrap_or(part);
        let (host, port) = part
            .rsplit_once(':')
            .ok_or_else(|| format!("\"bootstrap.servers\" entry \"{part}\" must be host:port"))?;
        let port: u16 = port
            .parse()
            .map_err(|_| format!("\"bootstrap.servers\" entry \"{part}\" has an invalid port"))?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() {
            return Err(format!("\"bootstrap.servers\" entry \"{part}\" has an empty host"));
        }
        out.push((host.to_string(), port));
    }
    if out.is_empty() {
        return Err("\"bootstrap.servers\" is empty".into());
    }
    Ok(out)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Partitioner {
    /// Java-compatible murmur2 for keys, sticky for null keys.
    Murmur2Random,
    /// murmur2 for keys; null keys all go to one sticky partition per batch as well.
    Murmur2,
    /// librdkafka CRC32 for keys, sticky for null keys.
    ConsistentRandom,
    /// librdkafka CRC32 for keys; null keys hash as empty (partition of crc32("")).
    Consistent,
    Random,
    RoundRobin,
}

/// metadata.recovery.strategy (KIP-899).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MetadataRecovery {
    None,
    Rebootstrap,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeliveryMode {
    Thread,
    Poll,
}

/// Fully validated producer configuration.
#[derive(Clone, Debug)]
pub struct ProducerConfig {
    pub bootstrap: Vec<(String, u16)>,
    pub client_id: String,
    pub acks: i16,
    pub idempotence: bool,
    pub linger_ms: u64,
    pub batch_size: usize,
    pub buffer_memory: usize,
    pub max_block_ms: u64,
    pub compression: Compression,
    pub request_timeout_ms: u64,
    pub delivery_timeout_ms: u64,
    pub retries: u32,
    pub retry_backoff_ms: u64,
    pub retry_backoff_max_ms: u64,
    pub max_in_flight: usize,
    pub max_request_size: usize,
    pub metadata_max_age_ms: u64,
    pub metadata_recovery: MetadataRecovery,
    pub rebootstrap_trigger_ms: u64,
    pub reconnect_backoff_ms: u64,
    pub reconnect_backoff_max_ms: u64,
    pub connection_setup_timeout_ms: u64,
    pub send_buffer_bytes: i32,
    pub receive_buffer_bytes: i32,
    pub partitioner: Partitioner,
    pub partitioner_ignore_keys: bool,
    pub allow_auto_create_topics: bool,
    pub delivery_mode: DeliveryMode,
    pub transactional_id: Option<String>,
    pub transaction_timeout_ms: i32,
    /// `log_level` and `debug`.
    pub log_filter: crate::log::Filter,
    /// The logger (logs nothing unless the FFI layer gives it a callback).
    pub log: crate::log::Log,
    /// TLS and SASL settings (files already loaded).
    pub security: crate::engine::security::Security,
}

fn level(v: i64) -> Option<i32> {
    if v == -1 {
        None
    } else {
        Some(v as i32)
    }
}

impl ProducerConfig {
    /// Cross-checks the settings and builds the typed configuration.
    pub fn from_map(m: &ConfigMap) -> Result<ProducerConfig, String> {
        let servers = m.get("bootstrap.servers").unwrap_or_default();
        if servers.trim().is_empty() {
            return Err("\"bootstrap.servers\" is required".into());
        }
        let bootstrap = parse_bootstrap(&servers)?;
        let security = crate::engine::security::Security::from_config(&|n| m.raw(n))?;
        let acks = match m.get("acks").unwrap().as_str() {
            "0" => 0,
            "1" => 1,
            _ => -1,
        };
        let max_in_flight = m.int("max.in.flight.requests.per.connection") as usize;
        let transactional_id = m.get("transactional.id").filter(|s| !s.is_empty());
        let idempotence = idempotence(m, acks, max_in_flight, transactional_id.is_some())?;
        let compression = compression(m);
        let linger_ms = m.int("linger.ms") as u64;
        let request_timeout_ms = m.int("request.timeout.ms") as u64;
        let delivery_timeout_ms = m.int("delivery.timeout.ms") as u64;
        if m.is_set("delivery.timeout.ms") && delivery_timeout_ms < linger_ms + request_timeout_ms {
            return Err(format!(
                "\"delivery.timeout.ms\" ({delivery_timeout_ms}) must be at least linger.ms + request.timeout.ms ({})",
                linger_ms + request_timeout_ms
            ));
        }
        Ok(ProducerConfig {
            bootstrap,
            client_id: m.get("client.id").unwrap(),
            acks,
            idempotence,
            linger_ms,
            batch_size: m.int("batch.size") as usize,
            buffer_memory: m.int("buffer.memory") as usize,
            max_block_ms: m.int("max.block.ms") as u64,
            compression,
            request_timeout_ms,
            delivery_timeout_ms: if m.is_set("delivery.timeout.ms") {
                delivery_timeout_ms
            } else {
                delivery_timeout_ms.max(linger_ms + request_timeout_ms)
            },
            retries: m.int("retries") as u32,
            retry_backoff_ms: m.int("retry.backoff.ms") as u64,
            retry_backoff_max_ms: m.int("retry.backoff.max.ms").max(m.int("retry.backoff.ms"))
                as u64,
            max_in_flight,
            max_request_size: m.int("max.request.size") as usize,
            metadata_max_age_ms: m.int("metadata.max.age.ms") as u64,
            metadata_recovery: if m.get("metadata.recovery.strategy").as_deref() == Some("none") {
                MetadataRecovery::None
            } else {
                MetadataRecovery::Rebootstrap
            },
            rebootstrap_trigger_ms: m.int("metadata.recovery.rebootstrap.trigger.ms") as u64,
            reconnect_backoff_ms: m.int("reconnect.backoff.ms") as u64,
            reconnect_backoff_max_ms: m
                .int("reconnect.backoff.max.ms")
                .max(m.int("reconnect.backoff.ms")) as u64,
            connection_setup_timeout_ms: m.int("socket.connection.setup.timeout.ms") as u64,
            send_buffer_bytes: m.int("send.buffer.bytes") as i32,
            receive_buffer_bytes: m.int("receive.buffer.bytes") as i32,
            partitioner: partitioner(m),
            partitioner_ignore_keys: m.boolean("partitioner.ignore.keys"),
            allow_auto_create_topics: m.boolean("allow.auto.create.topics"),
            transactional_id,
            transaction_timeout_ms: m.int("transaction.timeout.ms") as i32,
            security,
            log_filter: crate::log::Filter {
                level: m.int("log_level") as i32,
                debug: crate::log::parse_debug(&m.get("debug").unwrap_or_default())?,
            },
            log: Default::default(),
            delivery_mode: if m.get("delivery.report.mode").as_deref() == Some("poll") {
                DeliveryMode::Poll
            } else {
                DeliveryMode::Thread
            },
        })
    }
}

/// Whether the producer is idempotent. Like the Java producer: on by
/// default, silently off when not asked for explicitly and other settings
/// conflict with it; an error when asked for and they conflict.
fn idempotence(
    m: &ConfigMap,
    acks: i16,
    max_in_flight: usize,
    transactional: bool,
) -> Result<bool, String> {
    let retries_zero = m.is_set("retries") && m.int("retries") == 0;
    if transactional && m.is_set("enable.idempotence") && !m.boolean("enable.idempotence") {
        return Err(
            "\"transactional.id\" requires \"enable.idempotence\"=true, but it was set to false"
                .into(),
        );
    }
    let idempotence = if transactional || m.is_set("enable.idempotence") {
        transactional || m.boolean("enable.idempotence")
    } else {
        acks == -1 && max_in_flight <= 5 && !retries_zero
    };
    if idempotence {
        if acks != -1 {
            return Err(format!(
                "\"enable.idempotence\"=true requires \"acks\"=all, but acks={acks} was set"
            ));
        }
        if max_in_flight > 5 {
            return Err(format!(
                "\"enable.idempotence\"=true requires \"max.in.flight.requests.per.connection\" <= 5, got {max_in_flight}"
            ));
        }
        if retries_zero {
            return Err("\"enable.idempotence\"=true requires \"retries\" > 0".into());
        }
    }
    Ok(idempotence)
}

/// compression.type with its level (compression.level overrides the
/// codec-specific levels).
fn compression(m: &ConfigMap) -> Compression {
    let generic_level = m.int("compression.level");
    let pick = |specific: &str| -> Option<i32> {
        if generic_level != -1 {
            Some(generic_level as i32)
        } else {
            level(m.int(specific))
        }
    };
    match m.get("compression.type").unwrap().as_str() {
        "gzip" => Compression::Gzip(pick("compression.gzip.level")),
        "snappy" => Compression::Snappy,
        "lz4" => Compression::Lz4(pick("compression.lz4.level")),
        "zstd" => Compression::Zstd(if generic_level != -1 {
            Some(generic_level as i32)
        } else {
            Some(m.int("compression.zstd.level") as i32)
        }),
        _ => Compression::None,
    }
}

fn partitioner(m: &ConfigMap) -> Partitioner {
    match m.get("partitioner").unwrap().as_str() {
        "murmur2" => Partitioner::Murmur2,
        "consistent_random" => Partitioner::ConsistentRandom,
        "consistent" => Partitioner::Consistent,
        "random" => Partitioner::Random,
        "round_robin" => Partitioner::RoundRobin,
        _ => Partitioner::Murmur2Random,
    }
}

/// The README's configuration table, generated from the registry.
pub fn markdown_table() -> String {
    let mut s = String::from(
        "| property | aliases | default | range / values | meaning |\n|---|---|---|---|---|\n",
    );
    for d in REGISTRY {
        let range = match d.kind {
            Kind::Int { min, max } => format!("{min} .. {max}"),
            Kind::Bool => "true, false".to_string(),
            Kind::Enum(w) => w.join(", "),
            Kind::Text => "text".to_string(),
        };
        let aliases = if d.aliases.is_empty() { String::new() } else { d.aliases.join(", ") };
        let default = if d.default.is_empty() {
            "(required)".to_string()
        } else {
            format!("`{}`", d.default)
        };
        s.push_str(&format!(
            "| `{}` | {} | {} | {} | {} |\n",
            d.name, aliases, default, range, d.doc
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> ConfigMap {
        let mut m = ConfigMap::default();
        m.set("bootstrap.servers", "127.0.0.1:9092").unwrap();
        m
    }

    #[test]
    fn unknown_and_invalid_name_the_key() {
        let mut m = ConfigMap::default();
        match m.set("no.such.thing", "1") {
            Err(SetError::Unknown(msg)) => assert!(msg.contains("no.such.thing")),
            other => panic!("{other:?}"),
        }
        match m.set("linger.ms", "soon") {
            Err(SetError::Invalid(msg)) => {
                assert!(msg.contains("linger.ms") && msg.contains("soon"))
            }
            other => panic!("{other:?}"),
        }
        match m.set("acks", "2") {
            Err(SetError::Invalid(msg)) => assert!(msg.contains("acks")),
            other => panic!("{other:?}"),
        }
        match m.set("batch.size", "0") {
            Err(SetError::Invalid(msg)) => assert!(msg.contains("batch.size")),
            other => panic!("{other:?}"),
        }
        assert!(matches!(m.set("bootstrap.servers", "nohostport"), Err(SetError::Invalid(_))));
    }

    #[test]
    fn aliases_and_scaling() {
        let mut m = base();
        m.set("queue.buffering.max.kbytes", "2048").unwrap();
        m.set("request.required.acks", "1").unwrap();
        m.set("compression.codec", "LZ4").unwrap();
        m.set("message.timeout.ms", "60000").unwrap();
        let c = ProducerConfig::from_map(&m).unwrap();
        assert_eq!(c.buffer_memory, 2048 * 1024);
        assert_eq!(c.acks, 1);
        assert_eq!(c.compression, Compression::Lz4(None));
        assert_eq!(c.delivery_timeout_ms, 60000);
    }

    #[test]
    fn defaults_and_cross_checks() {
        let c = ProducerConfig::from_map(&base()).unwrap();
        assert_eq!(c.acks, -1);
        assert_eq!(c.linger_ms, 5);
        assert_eq!(c.max_in_flight, 5);
        assert_eq!(c.partitioner, Partitioner::Murmur2Random);
        assert!(c.idempotence, "idempotence is on by default");
        let mut m = base();
        m.set("acks", "1").unwrap();
        assert!(!ProducerConfig::from_map(&m).unwrap().idempotence, "implicitly off with acks=1");
        assert!(ProducerConfig::from_map(&ConfigMap::default())
            .unwrap_err()
            .contains("bootstrap.servers"));
        let mut m = base();
        m.set("enable.idempotence", "true").unwrap();
        m.set("acks", "1").unwrap();
        assert!(ProducerConfig::from_map(&m).unwrap_err().contains("acks"));
        let mut m = base();
        m.set("enable.idempotence", "true").unwrap();
        m.set("max.in.flight", "6").unwrap();
        assert!(ProducerConfig::from_map(&m).unwrap_err().contains("max.in.flight"));
        let mut m = base();
        m.set("security.protocol", "SASL_SSL").unwrap();
        m.set("ssl.ca.location", "/nonexistent/ca.pem").unwrap();
        assert!(ProducerConfig::from_map(&m).unwrap_err().contains("ssl.ca.location"));
        let mut m = base();
        m.set("delivery.timeout.ms", "1000").unwrap();
        assert!(ProducerConfig::from_map(&m).unwrap_err().contains("delivery.timeout.ms"));
    }

    #[test]
    fn secrets_are_hidden_and_both_naming_styles_land_on_one_setting() {
        let mut m = base();
        for (k, v) in [
            ("sasl.password", "pw-1"),
            ("sasl.jaas.config", "x.PlainLoginModule required username=\"u\" password=\"pw-2\";"),
            ("ssl.key.password", "pw-3"),
            ("ssl.keystore.password", "pw-4"),
            ("ssl.truststore.password", "pw-5"),
            ("ssl.keystore.key", "-----BEGIN PRIVATE KEY-----"),
        ] {
            m.set(k, v).unwrap();
            assert_eq!(m.get(k).unwrap(), "[hidden]", "{k}");
            assert_eq!(m.raw(k).unwrap(), v);
        }
        assert_eq!(m.get("sasl.username").unwrap(), "", "unset, not secret");
        m.set("ssl.truststore.location", "/tmp/ca.pem").unwrap();
        assert_eq!(m.get("ssl.ca.location").unwrap(), "/tmp/ca.pem");
        m.set("sasl.mechanisms", "SCRAM-SHA-512").unwrap();
        assert_eq!(m.get("sasl.mechanism").unwrap(), "scram-sha-512");
        assert!(matches!(m.set("sasl.mechanism", "GSSAPI"), Err(SetError::Invalid(_))));
    }

    #[test]
    fn bootstrap_list() {
        assert_eq!(
            parse_bootstrap("a:1, PLAINTEXT://b:2,[::1]:3").unwrap(),
            vec![("a".into(), 1), ("b".into(), 2), ("::1".into(), 3)]
        );
    }

    #[test]
    fn readme_table_is_current() {
        let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
            .expect("README.md");
        let start = readme.find("<!-- config-table:start -->").expect("start marker")
            + "<!-- config-table:start -->\n".len();
        let end = readme.find("<!-- config-table:end -->").expect("end marker");
        assert_eq!(
            &readme[start..end],
            markdown_table(),
            "README config table is stale: run `cargo run --example print_config_table` and paste it"
        );
    }
}
