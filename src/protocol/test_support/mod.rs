//! Test support: what only the tests and the in-process mock brokers need
//! (decoding record batches, decompression). Not part of the shipped
//! library.

pub mod batches;
pub mod decompress;

pub use batches::*;
pub use decompress::{decompress, xxh32};

use super::messages::MetadataPartition;

/// A healthy partition as a Metadata response lists it: `leader` is its
/// only replica, in sync.
pub fn led_partition(index: i32, leader: i32) -> MetadataPartition {
    MetadataPartition {
        error_code: 0,
        partition_index: index,
        leader_id: leader,
        leader_epoch: 0,
        replica_nodes: vec![leader],
        isr_nodes: vec![leader],
        offline_replicas: vec![],
    }
}
