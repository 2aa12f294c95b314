//! Sans-I/O Kafka protocol layer: wire primitives, record batches (magic v2),
//! compression codecs, request/response messages and framing helpers.
//!
//! Client side: [`api::encode_request`] / [`api::encode_request_vectored`]
//! and [`api::decode_response`]. Broker side (for mock brokers in tests):
//! [`api::decode_request`] / [`api::encode_response`].
//!
//! Vectored writes: [`api::encode_request_vectored`] returns the frame as a
//! `Vec<Bytes>`; record batches of Produce requests (all of them) are the
//! caller's own `Bytes` (refcount bump, no copy), everything else is packed
//! into small owned segments. Concatenated, the segments are byte-identical
//! to [`api::encode_request`]'s output.
//!
//! Nothing in here performs I/O. Encoders write into `BytesMut`; decoders read
//! from byte slices and never panic, loop forever or allocate in proportion to
//! an attacker-controlled length prefix (collection lengths are capped by the
//! number of bytes that remain).

pub mod api;
pub mod compression;
pub mod errors;
pub mod messages;
pub mod record_batch;
#[cfg(any(test, feature = "fuzzing"))]
pub mod test_support;
pub mod wire;

#[cfg(test)]
mod tests;

use std::fmt;

pub use api::{
    decode_request, decode_response, encode_request, encode_request_vectored, encode_response,
    is_flexible, negotiate, peek_correlation_id, DecodeRequest, EncodeResponse, Request,
    RequestHeader, Response,
};
pub use compression::{Compression, CompressionError};
pub use record_batch::{restamp, BatchBuilder, ProducerStamp, RecordHeader, SealedBatch};
pub use wire::Reader;

/// Error returned by every decoder of this layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    /// The input ended before the structure was complete.
    Truncated,
    /// The input is structurally invalid (bad length, bad magic, ...).
    Invalid(&'static str),
    /// A record batch CRC did not match.
    CrcMismatch { expected: u32, actual: u32 },
    /// The requested API version is not supported by this decoder.
    UnsupportedVersion { api_key: i16, version: i16 },
    /// A compressed payload could not be decompressed.
    Compression(CompressionError),
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::Truncated => f.write_str("truncated input"),
            DecodeError::Invalid(what) => write!(f, "invalid input: {what}"),
            DecodeError::CrcMismatch { expected, actual } => write!(
                f,
                "record batch CRC mismatch: header says {expected:#010x}, computed {actual:#010x}"
            ),
            DecodeError::UnsupportedVersion { api_key, version } => {
                write!(f, "api key {api_key} version {version} not supported")
            }
            DecodeError::Compression(e) => write!(f, "decompression failed: {e}"),
        }
    }
}

impl std::error::Error for DecodeError {}

impl From<CompressionError> for DecodeError {
    fn from(e: CompressionError) -> Self {
        DecodeError::Compression(e)
    }
}
