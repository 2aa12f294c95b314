//! Generates include/kp.h from src/ffi.rs with cbindgen (only rewriting it
//! when the text changes) and gives libkp.so its soname.

use std::env;
use std::path::PathBuf;

/// Number of fields of `pub struct NAME { ... }` in `src` (one `pub` field
/// per line), so initialiser macros list every field (-Wextra wants that).
fn struct_field_count(src: &str, name: &str) -> usize {
    let start = src
        .find(&format!("pub struct {name} {{"))
        .unwrap_or_else(|| panic!("struct {name} not found in src/ffi.rs"));
    src[start..]
        .lines()
        .skip(1)
        .take_while(|l| l.trim() != "}")
        .filter(|l| l.trim_start().starts_with("pub "))
        .count()
}

fn main() {
    let dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap());
    let major = env::var("CARGO_PKG_VERSION_MAJOR").unwrap();
    let minor = env::var("CARGO_PKG_VERSION_MINOR").unwrap();
    let patch = env::var("CARGO_PKG_VERSION_PATCH").unwrap();
    println!("cargo:rerun-if-changed=src/ffi.rs");
    println!("cargo:rerun-if-changed=cbindgen.toml");
    println!("cargo:rerun-if-changed=build.rs");
    // ABI policy: the soname carries the major version (0.x: the minor too).
    let soname =
        if major == "0" { format!("libkp.so.0.{minor}") } else { format!("libkp.so.{major}") };
    if env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
        println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,{soname}");
    }

    let mut config = cbindgen::Config::from_file(dir.join("cbindgen.toml")).expect("cbindgen.toml");
    config.after_includes = Some(format!(
        "\n/* Version of this header; compare with kp_version() at run time. */\n\
         #define KP_VERSION_MAJOR {major}\n#define KP_VERSION_MINOR {minor}\n#define KP_VERSION_PATCH {patch}\n\
         #define KP_VERSION ((KP_VERSION_MAJOR << 16) | (KP_VERSION_MINOR << 8) | KP_VERSION_PATCH)\n\
         #define KP_VERSION_STR \"{major}.{minor}.{patch}\"\n"
    ));
    let ffi_src = std::fs::read_to_string(dir.join("src").join("ffi.rs")).expect("src/ffi.rs");
    let metrics_zeros = ", 0".repeat(struct_field_count(&ffi_src, "kp_metrics_t") - 1);
    config.trailer = Some(format!(
        "/* Initialiser for kp_record_t: sets struct_size, KP_PARTITION_ANY and NULLs. */\n\
         #define KP_RECORD_INIT {{ sizeof(kp_record_t), NULL, KP_PARTITION_ANY, NULL, 0, NULL, 0, NULL, 0, 0, NULL, NULL }}\n\
         /* Initialiser for kp_metrics_t: sets struct_size, zeroes the counters. */\n\
         #define KP_METRICS_INIT {{ sizeof(kp_metrics_t){metrics_zeros} }}\n"
    ));
    let mut text = Vec::new();
    match cbindgen::Builder::new()
        .with_src(dir.join("src").join("ffi.rs"))
        .with_config(config)
        .generate()
    {
        Ok(b) => {
            b.write(&mut text);
        }
        Err(e) => {
            println!("cargo:warning=cbindgen failed: {e}");
            return;
        }
    }
    let out = dir.join("include").join("kp.h");
    let old = std::fs::read(&out).unwrap_or_default();
    if old != text {
        std::fs::create_dir_all(out.parent().unwrap()).unwrap();
        std::fs::write(&out, &text).unwrap();
    }
}
