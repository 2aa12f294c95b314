//! Test support: what only the tests and the in-process mock brokers need
//! (decoding record batches, decompression). Not part of the shipped
//! library.

pub mod batches;
pub mod decompress;

pub use batches::*;
pub use decompress::{decompress, xxh32};
