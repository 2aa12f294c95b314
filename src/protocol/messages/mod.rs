//! Request and response messages used by the producer.
//!
//! Field presence per version and flexible versions follow Apache Kafka's
//! message JSON schemas (`clients/src/main/resources/common/message/*.json`).
//! Requests implement [`Request`](super::api::Request) (encoding only),
//! responses implement [`Response`](super::api::Response) (decoding only).
//! Fields absent from the negotiated version keep the schema default on
//! decode and are not written on encode.

mod api_versions;
mod metadata;
mod produce;
pub(crate) mod schema;
mod txn;

pub use api_versions::*;
pub use metadata::*;
pub use produce::*;
pub use txn::*;
