//! Idempotence / transaction messages: InitProducerId, FindCoordinator,
//! AddPartitionsToTxn, AddOffsetsToTxn, EndTxn, TxnOffsetCommit.

use bytes::{BufMut, BytesMut};

use crate::protocol::api::{
    DecodeRequest, EncodeResponse, Request, Response, API_ADD_OFFSETS_TO_TXN,
    API_ADD_PARTITIONS_TO_TXN, API_END_TXN, API_FIND_COORDINATOR, API_INIT_PRODUCER_ID,
    API_TXN_OFFSET_COMMIT,
};
use crate::protocol::wire::*;
use crate::protocol::DecodeError;

// ---------------------------------------------------------------------------
// InitProducerId

/// InitProducerId request, v0..=5 (v2+ flexible).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitProducerIdRequest {
    pub transactional_id: Option<String>,
    pub transaction_timeout_ms: i32,
    /// v3+ (default -1): current id when bumping the epoch of an existing producer
    pub producer_id: i64,
    /// v3+ (default -1)
    pub producer_epoch: i16,
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

impl Request for InitProducerIdRequest {
    const API_KEY: i16 = API_INIT_PRODUCER_ID;
    const MIN_VERSION: i16 = 0;
    const MAX_VERSION: i16 = 5;
    type Response = InitProducerIdResponse;

    fn encode_body(&self, version: i16, out: &mut BytesMut) {
        let flex = version >= 2;
        put_nullable_str(out, self.transactional_id.as_deref(), flex);
        out.put_i32(self.transaction_timeout_ms);
        if version >= 3 {
            out.put_i64(self.producer_id);
            out.put_i16(self.producer_epoch);
        }
        put_tagged_fields_if(out, flex);
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct InitProducerIdResponse {
    pub throttle_time_ms: i32,
    pub error_code: i16,
    pub producer_id: i64,
    pub producer_epoch: i16,
}

impl Response for InitProducerIdResponse {
    fn decode_body(version: i16, r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let resp = InitProducerIdResponse {
            throttle_time_ms: r.get_i32()?,
            error_code: r.get_i16()?,
            producer_id: r.get_i64()?,
            producer_epoch: r.get_i16()?,
        };
        r.tagged_fields_if(version >= 2)?;
        Ok(resp)
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
    const API_KEY: i16 = API_FIND_COORDINATOR;
    const MIN_VERSION: i16 = 0;
    const MAX_VERSION: i16 = 6;
    type Response = FindCoordinatorResponse;

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
// AddPartitionsToTxn (client versions 0..=3)

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AddPartitionsToTxnTopic {
    pub name: String,
    pub partitions: Vec<i32>,
}

/// AddPartitionsToTxn request, v0..=3 (v3 flexible). Versions 4+ are
/// broker-to-broker and not supported.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AddPartitionsToTxnRequest {
    pub transactional_id: String,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub topics: Vec<AddPartitionsToTxnTopic>,
}

impl Request for AddPartitionsToTxnRequest {
    const API_KEY: i16 = API_ADD_PARTITIONS_TO_TXN;
    const MIN_VERSION: i16 = 0;
    const MAX_VERSION: i16 = 3;
    type Response = AddPartitionsToTxnResponse;

    fn encode_body(&self, version: i16, out: &mut BytesMut) {
        let flex = version >= 3;
        put_str(out, &self.transactional_id, flex);
        out.put_i64(self.producer_id);
        out.put_i16(self.producer_epoch);
        put_arr_len(out, self.topics.len(), flex);
        for t in &self.topics {
            put_str(out, &t.name, flex);
            put_i32_array(out, &t.partitions, flex);
            put_tagged_fields_if(out, flex);
        }
        put_tagged_fields_if(out, flex);
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AddPartitionsToTxnPartitionResult {
    pub partition_index: i32,
    pub partition_error_code: i16,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AddPartitionsToTxnTopicResult {
    pub name: String,
    pub results_by_partition: Vec<AddPartitionsToTxnPartitionResult>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AddPartitionsToTxnResponse {
    pub throttle_time_ms: i32,
    pub results_by_topic: Vec<AddPartitionsToTxnTopicResult>,
}

impl Response for AddPartitionsToTxnResponse {
    fn decode_body(version: i16, r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let flex = version >= 3;
        let throttle_time_ms = r.get_i32()?;
        let results_by_topic = r.array(flex, 2, |r| {
            let name = r.string(flex)?;
            let results_by_partition = r.array(flex, 6, |r| {
                let p = AddPartitionsToTxnPartitionResult {
                    partition_index: r.get_i32()?,
                    partition_error_code: r.get_i16()?,
                };
                r.tagged_fields_if(flex)?;
                Ok(p)
            })?;
            r.tagged_fields_if(flex)?;
            Ok(AddPartitionsToTxnTopicResult { name, results_by_partition })
        })?;
        r.tagged_fields_if(flex)?;
        Ok(AddPartitionsToTxnResponse { throttle_time_ms, results_by_topic })
    }
}

// ---------------------------------------------------------------------------
// AddOffsetsToTxn

/// AddOffsetsToTxn request, v0..=4 (v3+ flexible).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AddOffsetsToTxnRequest {
    pub transactional_id: String,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub group_id: String,
}

impl Request for AddOffsetsToTxnRequest {
    const API_KEY: i16 = API_ADD_OFFSETS_TO_TXN;
    const MIN_VERSION: i16 = 0;
    const MAX_VERSION: i16 = 4;
    type Response = AddOffsetsToTxnResponse;

    fn encode_body(&self, version: i16, out: &mut BytesMut) {
        let flex = version >= 3;
        put_str(out, &self.transactional_id, flex);
        out.put_i64(self.producer_id);
        out.put_i16(self.producer_epoch);
        put_str(out, &self.group_id, flex);
        put_tagged_fields_if(out, flex);
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AddOffsetsToTxnResponse {
    pub throttle_time_ms: i32,
    pub error_code: i16,
}

impl Response for AddOffsetsToTxnResponse {
    fn decode_body(version: i16, r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let resp =
            AddOffsetsToTxnResponse { throttle_time_ms: r.get_i32()?, error_code: r.get_i16()? };
        r.tagged_fields_if(version >= 3)?;
        Ok(resp)
    }
}

// ---------------------------------------------------------------------------
// EndTxn

/// EndTxn request, v0..=5 (v3+ flexible; v5 = KIP-890 part 2 epoch bump).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EndTxnRequest {
    pub transactional_id: String,
    pub producer_id: i64,
    pub producer_epoch: i16,
    /// true = commit, false = abort
    pub committed: bool,
}

impl Request for EndTxnRequest {
    const API_KEY: i16 = API_END_TXN;
    const MIN_VERSION: i16 = 0;
    const MAX_VERSION: i16 = 5;
    type Response = EndTxnResponse;

    fn encode_body(&self, version: i16, out: &mut BytesMut) {
        let flex = version >= 3;
        put_str(out, &self.transactional_id, flex);
        out.put_i64(self.producer_id);
        out.put_i16(self.producer_epoch);
        put_bool(out, self.committed);
        put_tagged_fields_if(out, flex);
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndTxnResponse {
    pub throttle_time_ms: i32,
    pub error_code: i16,
    /// v5+ (default -1): the producer id to use for the next transaction
    pub producer_id: i64,
    /// v5+ (default -1): the bumped epoch to use for the next transaction
    pub producer_epoch: i16,
}

impl Response for EndTxnResponse {
    fn decode_body(version: i16, r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let throttle_time_ms = r.get_i32()?;
        let error_code = r.get_i16()?;
        let (producer_id, producer_epoch) =
            if version >= 5 { (r.get_i64()?, r.get_i16()?) } else { (-1, -1) };
        r.tagged_fields_if(version >= 3)?;
        Ok(EndTxnResponse { throttle_time_ms, error_code, producer_id, producer_epoch })
    }
}

// ---------------------------------------------------------------------------
// TxnOffsetCommit

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnOffsetCommitPartition {
    pub partition_index: i32,
    pub committed_offset: i64,
    /// v2+ (default -1)
    pub committed_leader_epoch: i32,
    pub committed_metadata: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TxnOffsetCommitTopic {
    pub name: String,
    pub partitions: Vec<TxnOffsetCommitPartition>,
}

/// TxnOffsetCommit request, v0..=5 (v3+ flexible; v5 has v4's body).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnOffsetCommitRequest {
    pub transactional_id: String,
    pub group_id: String,
    pub producer_id: i64,
    pub producer_epoch: i16,
    /// v3+ (default -1)
    pub generation_id: i32,
    /// v3+ (default "")
    pub member_id: String,
    /// v3+ (default null)
    pub group_instance_id: Option<String>,
    pub topics: Vec<TxnOffsetCommitTopic>,
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

impl Request for TxnOffsetCommitRequest {
    const API_KEY: i16 = API_TXN_OFFSET_COMMIT;
    const MIN_VERSION: i16 = 0;
    const MAX_VERSION: i16 = 5;
    type Response = TxnOffsetCommitResponse;

    fn encode_body(&self, version: i16, out: &mut BytesMut) {
        let flex = version >= 3;
        put_str(out, &self.transactional_id, flex);
        put_str(out, &self.group_id, flex);
        out.put_i64(self.producer_id);
        out.put_i16(self.producer_epoch);
        if version >= 3 {
            out.put_i32(self.generation_id);
            put_str(out, &self.member_id, flex);
            put_nullable_str(out, self.group_instance_id.as_deref(), flex);
        }
        put_arr_len(out, self.topics.len(), flex);
        for t in &self.topics {
            put_str(out, &t.name, flex);
            put_arr_len(out, t.partitions.len(), flex);
            for p in &t.partitions {
                out.put_i32(p.partition_index);
                out.put_i64(p.committed_offset);
                if version >= 2 {
                    out.put_i32(p.committed_leader_epoch);
                }
                put_nullable_str(out, p.committed_metadata.as_deref(), flex);
                put_tagged_fields_if(out, flex);
            }
            put_tagged_fields_if(out, flex);
        }
        put_tagged_fields_if(out, flex);
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TxnOffsetCommitPartitionResult {
    pub partition_index: i32,
    pub error_code: i16,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TxnOffsetCommitTopicResult {
    pub name: String,
    pub partitions: Vec<TxnOffsetCommitPartitionResult>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TxnOffsetCommitResponse {
    pub throttle_time_ms: i32,
    pub topics: Vec<TxnOffsetCommitTopicResult>,
}

impl Response for TxnOffsetCommitResponse {
    fn decode_body(version: i16, r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let flex = version >= 3;
        let throttle_time_ms = r.get_i32()?;
        let topics = r.array(flex, 2, |r| {
            let name = r.string(flex)?;
            let partitions = r.array(flex, 6, |r| {
                let p = TxnOffsetCommitPartitionResult {
                    partition_index: r.get_i32()?,
                    error_code: r.get_i16()?,
                };
                r.tagged_fields_if(flex)?;
                Ok(p)
            })?;
            r.tagged_fields_if(flex)?;
            Ok(TxnOffsetCommitTopicResult { name, partitions })
        })?;
        r.tagged_fields_if(flex)?;
        Ok(TxnOffsetCommitResponse { throttle_time_ms, topics })
    }
}

// ---------------------------------------------------------------------------
// broker side

impl DecodeRequest for InitProducerIdRequest {
    fn decode_body(version: i16, r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let flex = version >= 2;
        let transactional_id = r.nullable_string(flex)?;
        let transaction_timeout_ms = r.get_i32()?;
        let (producer_id, producer_epoch) =
            if version >= 3 { (r.get_i64()?, r.get_i16()?) } else { (-1, -1) };
        r.tagged_fields_if(flex)?;
        Ok(InitProducerIdRequest {
            transactional_id,
            transaction_timeout_ms,
            producer_id,
            producer_epoch,
        })
    }
}

impl EncodeResponse for InitProducerIdResponse {
    fn encode_body(&self, version: i16, out: &mut BytesMut) {
        out.put_i32(self.throttle_time_ms);
        out.put_i16(self.error_code);
        out.put_i64(self.producer_id);
        out.put_i16(self.producer_epoch);
        put_tagged_fields_if(out, version >= 2);
    }
}

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

impl DecodeRequest for AddPartitionsToTxnRequest {
    fn decode_body(version: i16, r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let flex = version >= 3;
        let transactional_id = r.string(flex)?;
        let producer_id = r.get_i64()?;
        let producer_epoch = r.get_i16()?;
        let topics = r.array(flex, 2, |r| {
            let name = r.string(flex)?;
            let partitions = r.i32_array(flex)?;
            r.tagged_fields_if(flex)?;
            Ok(AddPartitionsToTxnTopic { name, partitions })
        })?;
        r.tagged_fields_if(flex)?;
        Ok(AddPartitionsToTxnRequest { transactional_id, producer_id, producer_epoch, topics })
    }
}

impl EncodeResponse for AddPartitionsToTxnResponse {
    fn encode_body(&self, version: i16, out: &mut BytesMut) {
        let flex = version >= 3;
        out.put_i32(self.throttle_time_ms);
        put_arr_len(out, self.results_by_topic.len(), flex);
        for t in &self.results_by_topic {
            put_str(out, &t.name, flex);
            put_arr_len(out, t.results_by_partition.len(), flex);
            for p in &t.results_by_partition {
                out.put_i32(p.partition_index);
                out.put_i16(p.partition_error_code);
                put_tagged_fields_if(out, flex);
            }
            put_tagged_fields_if(out, flex);
        }
        put_tagged_fields_if(out, flex);
    }
}

impl DecodeRequest for AddOffsetsToTxnRequest {
    fn decode_body(version: i16, r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let flex = version >= 3;
        let req = AddOffsetsToTxnRequest {
            transactional_id: r.string(flex)?,
            producer_id: r.get_i64()?,
            producer_epoch: r.get_i16()?,
            group_id: r.string(flex)?,
        };
        r.tagged_fields_if(flex)?;
        Ok(req)
    }
}

impl EncodeResponse for AddOffsetsToTxnResponse {
    fn encode_body(&self, version: i16, out: &mut BytesMut) {
        out.put_i32(self.throttle_time_ms);
        out.put_i16(self.error_code);
        put_tagged_fields_if(out, version >= 3);
    }
}

impl DecodeRequest for EndTxnRequest {
    fn decode_body(version: i16, r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let flex = version >= 3;
        let req = EndTxnRequest {
            transactional_id: r.string(flex)?,
            producer_id: r.get_i64()?,
            producer_epoch: r.get_i16()?,
            committed: r.get_bool()?,
        };
        r.tagged_fields_if(flex)?;
        Ok(req)
    }
}

impl EncodeResponse for EndTxnResponse {
    fn encode_body(&self, version: i16, out: &mut BytesMut) {
        out.put_i32(self.throttle_time_ms);
        out.put_i16(self.error_code);
        if version >= 5 {
            out.put_i64(self.producer_id);
            out.put_i16(self.producer_epoch);
        }
        put_tagged_fields_if(out, version >= 3);
    }
}

impl DecodeRequest for TxnOffsetCommitRequest {
    fn decode_body(version: i16, r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let flex = version >= 3;
        let mut req = TxnOffsetCommitRequest {
            transactional_id: r.string(flex)?,
            group_id: r.string(flex)?,
            producer_id: r.get_i64()?,
            producer_epoch: r.get_i16()?,
            ..Default::default()
        };
        if version >= 3 {
            req.generation_id = r.get_i32()?;
            req.member_id = r.string(flex)?;
            req.group_instance_id = r.nullable_string(flex)?;
        }
        req.topics = r.array(flex, 2, |r| {
            let name = r.string(flex)?;
            let partitions = r.array(flex, 13, |r| {
                let partition_index = r.get_i32()?;
                let committed_offset = r.get_i64()?;
                let committed_leader_epoch = if version >= 2 { r.get_i32()? } else { -1 };
                let committed_metadata = r.nullable_string(flex)?;
                r.tagged_fields_if(flex)?;
                Ok(TxnOffsetCommitPartition {
                    partition_index,
                    committed_offset,
                    committed_leader_epoch,
                    committed_metadata,
                })
            })?;
            r.tagged_fields_if(flex)?;
            Ok(TxnOffsetCommitTopic { name, partitions })
        })?;
        r.tagged_fields_if(flex)?;
        Ok(req)
    }
}

impl EncodeResponse for TxnOffsetCommitResponse {
    fn encode_body(&self, version: i16, out: &mut BytesMut) {
        let flex = version >= 3;
        out.put_i32(self.throttle_time_ms);
        put_arr_len(out, self.topics.len(), flex);
        for t in &self.topics {
            put_str(out, &t.name, flex);
            put_arr_len(out, t.partitions.len(), flex);
            for p in &t.partitions {
                out.put_i32(p.partition_index);
                out.put_i16(p.error_code);
                put_tagged_fields_if(out, flex);
            }
            put_tagged_fields_if(out, flex);
        }
        put_tagged_fields_if(out, flex);
    }
}
