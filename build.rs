//! Generates include/kp.h from src/ffi/ with cbindgen (only rewriting it
//! when the text changes) and gives libkp.so its soname.
//!
//! cbindgen parses the whole `ffi` module once. The header is then written
//! section by section (one per file of src/ffi/, in [`SECTIONS`] order):
//! the file's constants and types, any generated extras, then its functions.
//! Which item belongs to which section comes from parsing each file alone;
//! the text of every declaration comes from the whole-module parse, so it
//! is exactly what a single cbindgen run would print. Nothing here parses
//! Rust source text: the error codes come from `src/error.rs` (compiled into
//! this script) and the init macros from the struct fields cbindgen parsed.

use std::collections::{BTreeSet, HashMap};
use std::env;
use std::path::{Path, PathBuf};

use cbindgen::bindgen::ir::{ItemContainer, Type};
use cbindgen::{Bindings, Builder, Config};

#[path = "src/error.rs"]
#[allow(dead_code)]
mod error;

/// One header section: title, introduction, and the files it is made of.
struct Section {
    title: &'static str,
    intro: &'static str,
    files: &'static [&'static str],
}

const SECTIONS: &[Section] = &[
    Section {
        title: "Errors",
        intro: "Every call reports failure with a kp_err_t: KP_OK (0), a Kafka protocol error\n\
                number (positive) for errors a broker returned, or a KP_ERR_* code below -100\n\
                for errors kp detects itself. kp_err_name() and kp_err_str() describe any\n\
                code. The transactional calls return a kp_error_t object instead (NULL on\n\
                success) that also says whether to retry, abort or give up.",
        files: &["src/ffi/errors.rs"],
    },
    Section {
        title: "Configuration",
        intro: "A kp_config_t holds properties set by name (the Java producer's names, plus\n\
                librdkafka aliases where they mean the same) and an optional custom\n\
                partitioner. kp_producer_new() consumes it on success.",
        files: &["src/ffi/config.rs"],
    },
    Section {
        title: "Logging",
        intro: "kp never prints. Register a log callback on the config to learn what the\n\
                producer does (connections, metadata changes, retries, fatal and internal\n\
                errors); log_level (syslog 0-7, default 6) and debug (contexts broker,\n\
                protocol, metadata, producer, txn, security, all) choose the lines, as in\n\
                librdkafka. Lines are delivered where reports are (never on the I/O thread).",
        files: &["src/ffi/log.rs"],
    },
    Section {
        title: "Producer",
        intro: "A kp_producer_t sends records to a Kafka cluster from any number of threads.\n\
                Create it from a config, close it (delivering what is queued), destroy it.",
        files: &["src/ffi/producer.rs"],
    },
    Section {
        title: "Sending",
        intro: "Fill a kp_record_t (start from KP_RECORD_INIT) and hand it to kp_send(): once\n\
                accepted, the record gets exactly one delivery report, through the callback\n\
                given with it. kp copies what it needs before kp_send() returns.",
        files: &["src/ffi/send.rs", "src/engine/report.rs"],
    },
    Section {
        title: "Delivery reports",
        intro: "A delivery callback receives a kp_report_t, valid during the callback: read\n\
                it with the accessors below. In delivery.report.mode=poll, reports are served\n\
                on the thread calling kp_poll() (kp_poll_fd() for event loops).",
        files: &["src/ffi/report.rs"],
    },
    Section {
        title: "Interceptors",
        intro: "Optional functions registered on the config that see every record sent and\n\
                every report, e.g. for tracing or metrics.",
        files: &["src/ffi/interceptors.rs"],
    },
    Section {
        title: "Metrics",
        intro: "Counters of a producer, read without locks into a caller-owned kp_metrics_t\n\
                (declare it with KP_METRICS_INIT).",
        files: &["src/ffi/metrics.rs"],
    },
    Section {
        title: "Metadata",
        intro: "A topic's partitions and their leaders, from the producer's metadata.",
        files: &["src/ffi/topic.rs"],
    },
    Section {
        title: "Transactions",
        intro: "Exactly-once writes (needs transactional.id): kp_init_transactions() once,\n\
                then begin, send, optionally add consumer offsets, commit or abort. Each call\n\
                returns NULL on success or a kp_error_t (see Errors) to free.",
        files: &["src/ffi/txn.rs"],
    },
    Section {
        title: "SASL OAUTHBEARER tokens",
        intro: "With sasl.mechanism=OAUTHBEARER, kp asks the application for tokens through a\n\
                callback registered on the config, on kp's \"kp-oauth\" thread: when a\n\
                connection first needs one and again at 80% of each token's lifetime.",
        files: &["src/ffi/oauth.rs"],
    },
    Section {
        title: "Version",
        intro: "The version of this header (macros) and of the library (functions); a\n\
                program can compare both at run time.",
        files: &["src/ffi/version.rs"],
    },
];

/// Init-macro values that differ from the type's zero (NULL or 0).
const INIT_OVERRIDES: &[(&str, &str, &str)] = &[("kp_record_t", "partition", "KP_PARTITION_ANY")];

fn main() {
    let dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap());
    let major = env::var("CARGO_PKG_VERSION_MAJOR").unwrap();
    let minor = env::var("CARGO_PKG_VERSION_MINOR").unwrap();
    let patch = env::var("CARGO_PKG_VERSION_PATCH").unwrap();
    for f in ["src/ffi", "src/error.rs", "src/engine/report.rs", "cbindgen.toml", "build.rs"] {
        println!("cargo:rerun-if-changed={f}");
    }
    // ABI policy: the soname carries the major version (0.x: the minor too).
    let soname =
        if major == "0" { format!("libkp.so.0.{minor}") } else { format!("libkp.so.{major}") };
    if env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
        println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,{soname}");
    }
    let version = format!(
        "/* Version of this header; compare with kp_version() at run time. */\n\
         #define KP_VERSION_MAJOR {major}\n#define KP_VERSION_MINOR {minor}\n\
         #define KP_VERSION_PATCH {patch}\n\
         #define KP_VERSION ((KP_VERSION_MAJOR << 16) | (KP_VERSION_MINOR << 8) | KP_VERSION_PATCH)\n\
         #define KP_VERSION_STR \"{major}.{minor}.{patch}\"\n"
    );
    let text = match header(&dir, &version) {
        Ok(t) => t,
        Err(e) => {
            println!("cargo:warning=cbindgen failed: {e}");
            return;
        }
    };
    let out = dir.join("include").join("kp.h");
    if std::fs::read(&out).unwrap_or_default() != text.as_bytes() {
        std::fs::create_dir_all(out.parent().unwrap()).unwrap();
        std::fs::write(&out, &text).unwrap();
    }
}

fn config(dir: &Path) -> Config {
    Config::from_file(dir.join("cbindgen.toml")).expect("cbindgen.toml")
}

/// A config that prints declarations only (no guard, includes or banner).
fn bare(dir: &Path, cpp_compat: bool) -> Config {
    let mut c = config(dir);
    c.header = None;
    c.include_guard = None;
    c.sys_includes.clear();
    c.includes.clear();
    c.no_includes = true;
    c.after_includes = None;
    c.trailer = None;
    c.autogen_warning = None;
    c.include_version = false;
    c.cpp_compat = cpp_compat;
    c
}

fn parse(dir: &Path, files: &[&str], config: Config) -> Result<Bindings, cbindgen::Error> {
    files.iter().fold(Builder::new().with_config(config), |b, f| b.with_src(dir.join(f))).generate()
}

fn name_of(item: &ItemContainer) -> String {
    item.deref().path().name().to_string()
}

/// The names of the constants, items and functions a file declares.
fn names_in(dir: &Path, file: &str) -> Result<BTreeSet<String>, cbindgen::Error> {
    let b = parse(dir, &[file], bare(dir, false))?;
    // Alone, cbindgen only knows the types this file defines: types from
    // other files are unresolved names here, not items.
    let mut names: BTreeSet<String> = b.items.iter().map(name_of).collect();
    names.extend(b.constants.iter().map(|c| c.path.name().to_string()));
    names.extend(b.functions.iter().map(|f| f.path.name().to_string()));
    Ok(names)
}

fn render(b: &Bindings) -> String {
    let mut v = Vec::new();
    b.write(&mut v);
    String::from_utf8(v).unwrap().trim().to_string()
}

fn header(dir: &Path, version: &str) -> Result<String, cbindgen::Error> {
    let all_files: Vec<&str> = SECTIONS.iter().flat_map(|s| s.files.iter().copied()).collect();
    let mut full = parse(dir, &all_files, bare(dir, true))?;
    let constants = std::mem::take(&mut full.constants);
    let items = std::mem::take(&mut full.items);
    let functions = std::mem::take(&mut full.functions);

    // The KP_ERR_* lines come from the error table; the Rust constants of
    // the same names must be exactly the table's C rows.
    let table_codes: BTreeSet<String> =
        error::TABLE.iter().filter(|e| e.c_abi).map(|e| format!("KP_ERR_{}", e.name)).collect();
    let rust_codes: BTreeSet<String> = constants
        .iter()
        .map(|c| c.path.name().to_string())
        .filter(|n| n.starts_with("KP_ERR_"))
        .collect();
    assert_eq!(rust_codes, table_codes, "src/ffi/errors.rs and the C rows of src/error.rs differ");

    let mut placed: HashMap<String, &str> = HashMap::new();
    let mut out = String::new();
    out.push_str(&config(dir).header.unwrap_or_default());
    out.push_str("\n\n#ifndef KP_H\n#define KP_H\n\n");
    out.push_str("#include <stdbool.h>\n#include <stddef.h>\n#include <stdint.h>\n");
    for (i, s) in SECTIONS.iter().enumerate() {
        let mut names = BTreeSet::new();
        for f in s.files {
            names.extend(names_in(dir, f)?);
        }
        for n in &names {
            if let Some(other) = placed.insert(n.clone(), s.title) {
                panic!("{n} is declared in both sections {other} and {}", s.title);
            }
        }
        let rule = "=".repeat(74);
        out.push_str(&format!("\n\n/* {rule}\n * {}. {}\n *\n", i + 1, s.title));
        for line in s.intro.lines() {
            out.push_str(&format!(" * {}\n", line.trim_start()));
        }
        out.push_str(&format!(" * {rule} */\n"));

        // Constants and types.
        full.constants = constants
            .iter()
            .filter(|c| names.contains(c.path.name()) && !c.path.name().starts_with("KP_ERR_"))
            .cloned()
            .collect();
        full.items = items.iter().filter(|it| names.contains(&name_of(it))).cloned().collect();
        full.functions = Vec::new();
        let types = render(&full);
        if !types.is_empty() {
            out.push('\n');
            out.push_str(&types);
            out.push('\n');
        }
        // Extras that belong right after the types.
        for it in &full.items {
            if let Some(init) = init_macro(it) {
                out.push('\n');
                out.push_str(&init);
            }
        }
        if s.files.contains(&"src/ffi/errors.rs") {
            out.push_str(&error_codes());
        }
        if s.files.contains(&"src/ffi/version.rs") {
            out.push('\n');
            out.push_str(version);
        }
        // Functions.
        full.constants = Vec::new();
        full.items = Vec::new();
        full.functions =
            functions.iter().filter(|f| names.contains(f.path.name())).cloned().collect();
        let fns = render(&full);
        if !fns.is_empty() {
            out.push('\n');
            out.push_str(&fns);
            out.push('\n');
        }
    }
    // Everything cbindgen found must have landed in a section.
    let missing: Vec<String> = constants
        .iter()
        .map(|c| c.path.name().to_string())
        .chain(items.iter().map(name_of))
        .chain(functions.iter().map(|f| f.path.name().to_string()))
        .filter(|n| !placed.contains_key(n))
        .collect();
    assert!(missing.is_empty(), "declarations in no header section: {missing:?}");
    out.push_str("\n#endif  /* KP_H */\n");
    Ok(out)
}

/// `#define KP_ERR_<name> <code>` for every C row of the error table.
fn error_codes() -> String {
    let mut s = String::new();
    for e in error::TABLE.iter().filter(|e| e.c_abi) {
        let origin = if e.code > 0 {
            format!("Broker error (Kafka code {})", e.code)
        } else {
            "kp error".to_string()
        };
        let retry = if e.class.is_retriable() { "retriable" } else { "not retriable" };
        s.push_str(&format!(
            "\n/*\n {origin}, {retry}: {}.\n */\n#define KP_ERR_{} {}\n",
            e.message, e.name, e.code
        ));
    }
    s
}

/// KP_<NAME>_INIT for a versioned struct (one whose first field is
/// struct_size): sizeof for struct_size, NULL for pointers, 0 otherwise
/// (or the value in INIT_OVERRIDES), one value per field cbindgen printed.
fn init_macro(item: &ItemContainer) -> Option<String> {
    let ItemContainer::Struct(s) = item else { return None };
    let name = s.path.name();
    if s.fields.first().map(|f| f.name.as_str()) != Some("struct_size") {
        return None;
    }
    let values: Vec<String> = s
        .fields
        .iter()
        .map(|f| {
            if f.name == "struct_size" {
                return format!("sizeof({name})");
            }
            if let Some(o) = INIT_OVERRIDES.iter().find(|o| o.0 == name && o.1 == f.name) {
                return o.2.to_string();
            }
            match f.ty {
                Type::Ptr { .. } | Type::FuncPtr { .. } => "NULL".into(),
                _ => "0".into(),
            }
        })
        .collect();
    let stem = name.trim_end_matches("_t").to_uppercase();
    Some(format!(
        "/*\n Initialiser for {name}: struct_size set, every other field NULL or 0{}.\n */\n\
         #define {stem}_INIT {{ {} }}\n",
        if name == "kp_record_t" { " (partition KP_PARTITION_ANY)" } else { "" },
        values.join(", ")
    ))
}
