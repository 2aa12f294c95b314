//! Idempotence / transaction messages: InitProducerId, FindCoordinator,
//! AddPartitionsToTxn, AddOffsetsToTxn, EndTxn, TxnOffsetCommit. All but
//! FindCoordinator (whose v4 turned one key into an array) are declared as
//! field tables (see `schema`).

use bytes::{BufMut, BytesMut};

use super::schema::{api, decode, encode, message, request_ids, Decoded};
use crate::protocol::api::{
    DecodeRequest, EncodeResponse, Request, Response, API_ADD_OFFSETS_TO_TXN,
    API_ADD_PARTITIONS_TO_TXN, API_END_TXN, API_FIND_COORDINATOR, API_INIT_PRODUCER_ID,
    API_TXN_OFFSET_COMMIT,
};
use crate::protocol::wire::*;
use crate::protocol::DecodeError;

// ---------------------------------------------------------------------------
// InitProducerId

api! { key API_INIT_PRODUCER_ID, versions 0..=5, flexible from 2;
    /// InitProducerId request, v0..=5 (v2+ flexible).
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct InitProducerIdRequest {
        transactional_id: Option<String>,
        transaction_timeout_ms: i32,
        /// v3+ (default -1): current id when bumping the epoch of an existing producer
        producer_id: i64 = -1, since 3,
        /// v3+ (default -1)
        producer_epoch: i16 = -1, since 3,
    }
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct InitProducerIdResponse {
        throttle_time_ms: i32,
        error_code: i16,
        producer_id: i64,
        producer_epoch: i16,
    }
}

impl Default for InitProducerIdRequest {
    fn default() -> Self {
        InitProducerIdRequest {
            transactional_id: None,
            transaction_timeout_ms: 60_000,
            producer_id: -1,
            producer_epoch: -1,
        }
    }
}

// ---------------------------------------------------------------------------
// FindCoordinator

pub const COORDINATOR_KEY_TYPE_GROUP: i8 = 0;
pub const COORDINATOR_KEY_TYPE_TRANSACTION: i8 = 1;

/// FindCoordinator request, v0..=6 (v3+ flexible). Versions 0..=3 carry a
/// single `key` (the first of `keys`); v4+ batch all `keys`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FindCoordinatorRequest {
    pub keys: Vec<String>,
    /// v1+: 0 = group, 1 = transaction
    pub key_type: i8,
}

impl FindCoordinatorRequest {
    pub fn transaction(transactional_id: &str) -> Self {
        FindCoordinatorRequest {
            keys: vec![transactional_id.to_owned()],
            key_type: COORDINATOR_KEY_TYPE_TRANSACTION,
        }
    }
    pub fn group(group_id: &str) -> Self {
        FindCoordinatorRequest {
            keys: vec![group_id.to_owned()],
            key_type: COORDINATOR_KEY_TYPE_GROUP,
        }
    }
}

impl Request for FindCoordinatorRequest {
    request_ids!(API_FIND_COORDINATOR, 0..=6, FindCoordinatorResponse);

    fn encode_body(&self, version: i16, out: &mut BytesMut) {
        let flex = version >= 3;
        if version <= 3 {
            put_str(out, self.keys.first().map(|s| s.as_str()).unwrap_or(""), flex);
        }
        if version >= 1 {
            out.put_i8(self.key_type);
        }
        if version >= 4 {
            put_compact_array_len(out, self.keys.len());
            for k in &self.keys {
                put_compact_string(out, k);
            }
        }
        put_tagged_fields_if(out, flex);
    }
}

/// One coordinator lookup result.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Coordinator {
    /// The key looked up (empty for v0..=3 responses, which do not echo it).
    pub key: String,
    pub node_id: i32,
    pub host: String,
    pub port: i32,
    pub error_code: i16,
    pub error_message: Option<String>,
}

/// FindCoordinator response, uniform over versions: v0..=3 answers are
/// exposed as a single [`Coordinator`] with an empty `key`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FindCoordinatorResponse {
    /// v1+
    pub throttle_time_ms: i32,
    pub coordinators: Vec<Coordinator>,
}

impl FindCoordinatorResponse {
    /// The result for `key`: the entry with that key, or the single entry of
    /// a v0..=3 response.
    pub fn coordinator_for(&self, key: &str) -> Option<&Coordinator> {
        self.coordinators.iter().find(|c| c.key == key).or(match self.coordinators.as_slice() {
            [only] if only.key.is_empty() => Some(only),
            _ => None,
        })
    }
}

impl Response for FindCoordinatorResponse {
    fn decode_body(version: i16, r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let flex = version >= 3;
        let throttle_time_ms = if version >= 1 { r.get_i32()? } else { 0 };
        let coordinators = if version <= 3 {
            let error_code = r.get_i16()?;
            let error_message = if version >= 1 { r.nullable_string(flex)? } else { None };
            vec![Coordinator {
                key: String::new(),
                node_id: r.get_i32()?,
                host: r.string(flex)?,
                port: r.get_i32()?,
                error_code,
                error_message,
            }]
        } else {
            r.array(true, 13, |r| {
                let c = Coordinator {
                    key: r.get_compact_string()?,
                    node_id: r.get_i32()?,
                    host: r.get_compact_string()?,
                    port: r.get_i32()?,
                    error_code: r.get_i16()?,
                    error_message: r.get_compact_nullable_string()?,
                };
                r.skip_tagged_fields()?;
                Ok(c)
            })?
        };
        r.tagged_fields_if(flex)?;
        Ok(FindCoordinatorResponse { throttle_time_ms, coordinators })
    }
}

// ---------------------------------------------------------------------------
// AddPartitionsToTxn (client versions 0..=3; 4+ are broker-to-broker)

message! {
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct AddPartitionsToTxnTopic { name: String, partitions: Vec<i32> }
}

api! { key API_ADD_PARTITIONS_TO_TXN, versions 0..=3, flexible from 3;
    /// AddPartitionsToTxn request, v0..=3 (v3 flexible).
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct AddPartitionsToTxnRequest {
        transactional_id: String, producer_id: i64, producer_epoch: i16,
        topics: Vec<AddPartitionsToTxnTopic>,
    }
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct AddPartitionsToTxnResponse {
        throttle_time_ms: i32,
        results_by_topic: Vec<AddPartitionsToTxnTopicResult>,
    }
}

message! {
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
    pub struct AddPartitionsToTxnPartitionResult { partition_index: i32, partition_error_code: i16 }
}

message! {
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct AddPartitionsToTxnTopicResult {
        name: String,
        results_by_partition: Vec<AddPartitionsToTxnPartitionResult>,
    }
}

// ---------------------------------------------------------------------------
// AddOffsetsToTxn

api! { key API_ADD_OFFSETS_TO_TXN, versions 0..=4, flexible from 3;
    /// AddOffsetsToTxn request, v0..=4 (v3+ flexible).
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct AddOffsetsToTxnRequest {
        transactional_id: String, producer_id: i64, producer_epoch: i16,
        group_id: String,
    }
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct AddOffsetsToTxnResponse { throttle_time_ms: i32, error_code: i16 }
}

// ---------------------------------------------------------------------------
// EndTxn

api! { key API_END_TXN, versions 0..=5, flexible from 3;
    /// EndTxn request, v0..=5 (v3+ flexible; v5 = KIP-890 part 2 epoch bump).
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct EndTxnRequest {
        transactional_id: String, producer_id: i64, producer_epoch: i16,
        /// true = commit, false = abort
        committed: bool,
    }
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct EndTxnResponse {
        throttle_time_ms: i32,
        error_code: i16,
        /// v5+ (default -1): the producer id to use for the next transaction
        producer_id: i64 = -1, since 5,
        /// v5+ (default -1): the bumped epoch to use for the next transaction
        producer_epoch: i16 = -1, since 5,
    }
}

// ---------------------------------------------------------------------------
// TxnOffsetCommit

message! {
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct TxnOffsetCommitPartition {
        partition_index: i32,
        committed_offset: i64,
        /// v2+ (default -1)
        committed_leader_epoch: i32 = -1, since 2,
        committed_metadata: Option<String>,
    }
}

message! {
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct TxnOffsetCommitTopic {
        name: String,
        partitions: Vec<TxnOffsetCommitPartition>,
    }
}

api! { key API_TXN_OFFSET_COMMIT, versions 0..=5, flexible from 3;
    /// TxnOffsetCommit request, v0..=5 (v3+ flexible; v5 has v4's body).
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct TxnOffsetCommitRequest {
        transactional_id: String,
        group_id: String,
        producer_id: i64,
        producer_epoch: i16,
        /// v3+ (default -1)
        generation_id: i32 = -1, since 3,
        /// v3+ (default "")
        member_id: String = String::new(), since 3,
        /// v3+ (default null)
        group_instance_id: Option<String> = None, since 3,
        topics: Vec<TxnOffsetCommitTopic>,
    }
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct TxnOffsetCommitResponse {
        throttle_time_ms: i32,
        topics: Vec<TxnOffsetCommitTopicResult>,
    }
}

impl Default for TxnOffsetCommitRequest {
    fn default() -> Self {
        TxnOffsetCommitRequest {
            transactional_id: String::new(),
            group_id: String::new(),
            producer_id: -1,
            producer_epoch: -1,
            generation_id: -1,
            member_id: String::new(),
            group_instance_id: None,
            topics: Vec::new(),
        }
    }
}

message! {
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
    pub struct TxnOffsetCommitPartitionResult { partition_index: i32, error_code: i16 }
}

message! {
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct TxnOffsetCommitTopicResult {
        name: String,
        partitions: Vec<TxnOffsetCommitPartitionResult>,
    }
}

// ---------------------------------------------------------------------------
// FindCoordinator, broker side

impl DecodeRequest for FindCoordinatorRequest {
    fn decode_body(version: i16, r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let flex = version >= 3;
        let mut keys = Vec::new();
        if version <= 3 {
            keys.push(r.string(flex)?);
        }
        let key_type = if version >= 1 { r.get_i8()? } else { 0 };
        if version >= 4 {
            keys = r.array(true, 1, |r| r.get_compact_string())?;
        }
        r.tagged_fields_if(flex)?;
        Ok(FindCoordinatorRequest { keys, key_type })
    }
}

impl EncodeResponse for FindCoordinatorResponse {
    /// v0..=3 encode the first coordinator only.
    fn encode_body(&self, version: i16, out: &mut BytesMut) {
        let flex = version >= 3;
        if version >= 1 {
            out.put_i32(self.throttle_time_ms);
        }
        if version <= 3 {
            let empty = Coordinator::default();
            let c = self.coordinators.first().unwrap_or(&empty);
            out.put_i16(c.error_code);
            if version >= 1 {
                put_nullable_str(out, c.error_message.as_deref(), flex);
            }
            out.put_i32(c.node_id);
            put_str(out, &c.host, flex);
            out.put_i32(c.port);
        } else {
            put_compact_array_len(out, self.coordinators.len());
            for c in &self.coordinators {
                put_compact_string(out, &c.key);
                out.put_i32(c.node_id);
                put_compact_string(out, &c.host);
                out.put_i32(c.port);
                out.put_i16(c.error_code);
                put_compact_nullable_string(out, c.error_message.as_deref());
                put_empty_tagged_fields(out);
            }
        }
        put_tagged_fields_if(out, flex);
    }
}
