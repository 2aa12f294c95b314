//! kp: a Kafka producer with a C ABI.
//!
//! Layers (dependencies point down only; docs/ARCHITECTURE.md has the
//! picture):
//! - `protocol`: sans-I/O encoding/decoding of the Kafka wire protocol.
//! - `engine::conn`: one task per broker connection, pipelined requests.
//! - `engine`: the producer API, topics and partitioner, accumulator,
//!   sender, metadata, idempotence, transactions, delivery reports.
//! - `ffi`: the thin `extern "C"` layer (include/kp.h is generated from it).
//! - `config`, `error` and `log`: the configuration table, the error codes
//!   and the logger, shared by every layer.

pub mod config;
pub mod engine;
pub mod error;
pub mod ffi;
#[cfg(any(test, feature = "fuzzing"))]
#[doc(hidden)]
pub mod fuzzing;
pub mod log;
pub mod protocol;

/// (major << 16) | (minor << 8) | patch, from Cargo.toml.
pub const VERSION_NUMBER: u32 = {
    const fn parse(s: &str) -> u32 {
        let b = s.as_bytes();
        let mut i = 0;
        let mut v = 0u32;
        while i < b.len() {
            v = v * 10 + (b[i] - b'0') as u32;
            i += 1;
        }
        v
    }
    (parse(env!("CARGO_PKG_VERSION_MAJOR")) << 16)
        | (parse(env!("CARGO_PKG_VERSION_MINOR")) << 8)
        | parse(env!("CARGO_PKG_VERSION_PATCH"))
};
