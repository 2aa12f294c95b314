use bytes::{BufMut, BytesMut};

use crate::protocol::api::{DecodeRequest, EncodeResponse, Request, Response, API_METADATA};
use crate::protocol::wire::*;
use crate::protocol::DecodeError;

use super::schema::{message, request_ids, Field};

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MetadataRequestTopic {
    /// v10+ (all zeros = unknown)
    pub topic_id: Uuid,
    /// nullable from v10 (only meaningful with a topic id, v12+)
    pub name: Option<String>,
}

/// Metadata request, v4..=13 (v9+ flexible; v13 has v12's body).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetadataRequest {
    /// `None` = all topics.
    pub topics: Option<Vec<MetadataRequestTopic>>,
    pub allow_auto_topic_creation: bool,
    /// v8..=10
    pub include_cluster_authorized_operations: bool,
    /// v8+
    pub include_topic_authorized_operations: bool,
}

impl Default for MetadataRequest {
    fn default() -> Self {
        MetadataRequest {
            topics: None,
            allow_auto_topic_creation: true,
            include_cluster_authorized_operations: false,
            include_topic_authorized_operations: false,
        }
    }
}

impl MetadataRequest {
    /// Metadata for all topics.
    pub fn all_topics() -> Self {
        Self::default()
    }

    /// Metadata for these topic names.
    pub fn for_topics<S: AsRef<str>>(names: &[S], allow_auto_topic_creation: bool) -> Self {
        MetadataRequest {
            topics: Some(
                names
                    .iter()
                    .map(|n| MetadataRequestTopic {
                        topic_id: [0; 16],
                        name: Some(n.as_ref().to_owned()),
                    })
                    .collect(),
            ),
            allow_auto_topic_creation,
            ..Default::default()
        }
    }
}

impl Request for MetadataRequest {
    request_ids!(API_METADATA, 4..=13, MetadataResponse);

    fn encode_body(&self, version: i16, out: &mut BytesMut) {
        let flex = version >= 9;
        put_nullable_arr_len(out, self.topics.as_ref().map(|t| t.len()), flex);
        for t in self.topics.iter().flatten() {
            if version >= 10 {
                put_uuid(out, &t.topic_id);
                put_nullable_str(out, t.name.as_deref(), flex);
            } else {
                put_str(out, t.name.as_deref().unwrap_or(""), flex);
            }
            put_tagged_fields_if(out, flex);
        }
        put_bool(out, self.allow_auto_topic_creation);
        if (8..=10).contains(&version) {
            put_bool(out, self.include_cluster_authorized_operations);
        }
        if version >= 8 {
            put_bool(out, self.include_topic_authorized_operations);
        }
        put_tagged_fields_if(out, flex);
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MetadataBroker {
    pub node_id: i32,
    pub host: String,
    pub port: i32,
    pub rack: Option<String>,
}

message! {
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct MetadataPartition {
        error_code: i16,
        partition_index: i32,
        leader_id: i32,
        /// v7+ (default -1)
        leader_epoch: i32 = -1, since 7,
        replica_nodes: Vec<i32>,
        isr_nodes: Vec<i32>,
        /// v5+
        offline_replicas: Vec<i32> = Vec::new(), since 5,
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetadataTopic {
    pub error_code: i16,
    /// null only for unknown topics queried by id (v12+)
    pub name: Option<String>,
    /// v10+ (zeros when unknown)
    pub topic_id: Uuid,
    pub is_internal: bool,
    pub partitions: Vec<MetadataPartition>,
    /// v8+ (default i32::MIN)
    pub topic_authorized_operations: i32,
}

/// Metadata response, v4..=13.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetadataResponse {
    pub throttle_time_ms: i32,
    pub brokers: Vec<MetadataBroker>,
    pub cluster_id: Option<String>,
    pub controller_id: i32,
    pub topics: Vec<MetadataTopic>,
    /// v8..=10 (default i32::MIN)
    pub cluster_authorized_operations: i32,
    /// v13+: the top-level error (e.g. REBOOTSTRAP_REQUIRED, KIP-1102); 0 before.
    pub error_code: i16,
}

impl Response for MetadataResponse {
    fn decode_body(version: i16, r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let flex = version >= 9;
        let throttle_time_ms = r.get_i32()?;
        let brokers = r.array(flex, 9, |r| {
            let b = MetadataBroker {
                node_id: r.get_i32()?,
                host: r.string(flex)?,
                port: r.get_i32()?,
                rack: r.nullable_string(flex)?,
            };
            r.tagged_fields_if(flex)?;
            Ok(b)
        })?;
        let cluster_id = r.nullable_string(flex)?;
        let controller_id = r.get_i32()?;
        let topics = r.array(flex, 4, |r| {
            let error_code = r.get_i16()?;
            let name = r.nullable_string(flex)?;
            let topic_id = if version >= 10 { r.get_uuid()? } else { [0; 16] };
            let is_internal = r.get_bool()?;
            let partitions: Vec<MetadataPartition> = Field::get(r, version, flex)?;
            let topic_authorized_operations = if version >= 8 { r.get_i32()? } else { i32::MIN };
            r.tagged_fields_if(flex)?;
            Ok(MetadataTopic {
                error_code,
                name,
                topic_id,
                is_internal,
                partitions,
                topic_authorized_operations,
            })
        })?;
        let cluster_authorized_operations =
            if (8..=10).contains(&version) { r.get_i32()? } else { i32::MIN };
        let error_code = if version >= 13 { r.get_i16()? } else { 0 };
        r.tagged_fields_if(flex)?;
        Ok(MetadataResponse {
            throttle_time_ms,
            brokers,
            cluster_id,
            controller_id,
            topics,
            cluster_authorized_operations,
            error_code,
        })
    }
}

impl DecodeRequest for MetadataRequest {
    fn decode_body(version: i16, r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let flex = version >= 9;
        let topics = match r.nullable_array_len(flex, 2)? {
            None => None,
            Some(n) => {
                let mut v = Vec::with_capacity(n);
                for _ in 0..n {
                    let (topic_id, name) = if version >= 10 {
                        (r.get_uuid()?, r.nullable_string(flex)?)
                    } else {
                        ([0; 16], Some(r.string(flex)?))
                    };
                    r.tagged_fields_if(flex)?;
                    v.push(MetadataRequestTopic { topic_id, name });
                }
                Some(v)
            }
        };
        let allow_auto_topic_creation = r.get_bool()?;
        let include_cluster_authorized_operations =
            if (8..=10).contains(&version) { r.get_bool()? } else { false };
        let include_topic_authorized_operations = if version >= 8 { r.get_bool()? } else { false };
        r.tagged_fields_if(flex)?;
        Ok(MetadataRequest {
            topics,
            allow_auto_topic_creation,
            include_cluster_authorized_operations,
            include_topic_authorized_operations,
        })
    }
}

impl EncodeResponse for MetadataResponse {
    fn encode_body(&self, version: i16, out: &mut BytesMut) {
        let flex = version >= 9;
        out.put_i32(self.throttle_time_ms);
        put_arr_len(out, self.brokers.len(), flex);
        for b in &self.brokers {
            out.put_i32(b.node_id);
            put_str(out, &b.host, flex);
            out.put_i32(b.port);
            put_nullable_str(out, b.rack.as_deref(), flex);
            put_tagged_fields_if(out, flex);
        }
        put_nullable_str(out, self.cluster_id.as_deref(), flex);
        out.put_i32(self.controller_id);
        put_arr_len(out, self.topics.len(), flex);
        for t in &self.topics {
            out.put_i16(t.error_code);
            put_nullable_str(out, t.name.as_deref(), flex);
            if version >= 10 {
                put_uuid(out, &t.topic_id);
            }
            put_bool(out, t.is_internal);
            t.partitions.put(out, version, flex);
            if version >= 8 {
                out.put_i32(t.topic_authorized_operations);
            }
            put_tagged_fields_if(out, flex);
        }
        if (8..=10).contains(&version) {
            out.put_i32(self.cluster_authorized_operations);
        }
        if version >= 13 {
            out.put_i16(self.error_code);
        }
        put_tagged_fields_if(out, flex);
    }
}
