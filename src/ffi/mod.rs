//! The C ABI: thin `extern "C"` functions over the engine, one module per C
//! type. include/kp.h is generated from these files by build.rs (cbindgen),
//! one header section per module.
//!
//! Every exported function runs inside a panic boundary (a panic inside kp
//! becomes KP_ERR_INTERNAL, NULL or the function's documented neutral value,
//! never an unwind into C) and accepts NULL for every pointer. All pointer
//! handling lives in [`boundary`]; the per-type modules hold no raw pointer
//! dereference of their own, only calls into C function pointers the caller
//! registered.
#![allow(non_camel_case_types)]
#![deny(unsafe_op_in_unsafe_fn)]

pub(crate) mod boundary;

pub mod config;
pub mod errors;
pub mod interceptors;
pub mod log;
pub mod metrics;
pub mod oauth;
pub mod producer;
pub mod report;
pub mod send;
pub mod topic;
pub mod txn;
pub mod version;

pub use config::*;
pub use errors::*;
pub use interceptors::*;
pub use log::*;
pub use metrics::*;
pub use oauth::*;
pub use producer::*;
pub use report::*;
pub use send::*;
pub use topic::*;
pub use txn::*;
pub use version::*;

#[cfg(test)]
mod tests;
