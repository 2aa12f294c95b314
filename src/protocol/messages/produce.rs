use bytes::{BufMut, Bytes, BytesMut};

use crate::protocol::api::{
    BodySink, DecodeRequest, EncodeResponse, Request, Response, VectoredWriter, API_PRODUCE,
};
use crate::protocol::wire::*;
use crate::protocol::DecodeError;

use super::schema::{message, request_ids, Field};

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PartitionProduceData {
    pub index: i32,
    /// One or more sealed record batches, written as-is.
    pub records: Bytes,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TopicProduceData {
    pub name: String,
    pub partition_data: Vec<PartitionProduceData>,
}

/// Produce request, v3..=12 (v9+ flexible). v13 (topic ids) is not supported.
///
/// v12 has the same body as v11; it tells a broker with `transaction.version`
/// >= 2 that transactional partitions are added implicitly (KIP-890 part 2).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ProduceRequest {
    pub transactional_id: Option<String>,
    pub acks: i16,
    pub timeout_ms: i32,
    pub topic_data: Vec<TopicProduceData>,
}

impl ProduceRequest {
    fn encode_into<S: BodySink>(&self, version: i16, s: &mut S) {
        let flex = version >= 9;
        {
            let out = s.buf();
            put_nullable_str(out, self.transactional_id.as_deref(), flex);
            out.put_i16(self.acks);
            out.put_i32(self.timeout_ms);
            put_arr_len(out, self.topic_data.len(), flex);
        }
        for t in &self.topic_data {
            let out = s.buf();
            put_str(out, &t.name, flex);
            put_arr_len(out, t.partition_data.len(), flex);
            for p in &t.partition_data {
                let out = s.buf();
                out.put_i32(p.index);
                if flex {
                    put_uvarint(out, p.records.len() as u32 + 1);
                } else {
                    out.put_i32(p.records.len() as i32);
                }
                s.put_shared(&p.records);
                put_tagged_fields_if(s.buf(), flex);
            }
            put_tagged_fields_if(s.buf(), flex);
        }
        put_tagged_fields_if(s.buf(), flex);
    }

    /// Exact size of the encoded body for `version`.
    pub fn body_size(&self, version: i16) -> usize {
        let flex = version >= 9;
        let str_len = |s: &str| {
            if flex {
                uvarint_len(s.len() as u32 + 1) + s.len()
            } else {
                2 + s.len()
            }
        };
        let arr_len = |n: usize| if flex { uvarint_len(n as u32 + 1) } else { 4 };
        let tf = flex as usize;
        let mut n = match &self.transactional_id {
            None => {
                if flex {
                    1
                } else {
                    2
                }
            }
            Some(s) => str_len(s),
        };
        n += 2 + 4 + arr_len(self.topic_data.len());
        for t in &self.topic_data {
            n += str_len(&t.name) + arr_len(t.partition_data.len()) + tf;
            for p in &t.partition_data {
                let l = p.records.len();
                n += 4 + if flex { uvarint_len(l as u32 + 1) } else { 4 } + l + tf;
            }
        }
        n + tf
    }
}

impl Request for ProduceRequest {
    request_ids!(API_PRODUCE, 3..=12, ProduceResponse);

    fn encode_body(&self, version: i16, out: &mut BytesMut) {
        out.reserve(self.body_size(version));
        self.encode_into(version, out)
    }

    fn encode_body_vectored(&self, version: i16, w: &mut VectoredWriter) {
        self.encode_into(version, w)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BatchIndexAndErrorMessage {
    pub batch_index: i32,
    pub batch_index_error_message: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LeaderIdAndEpoch {
    pub leader_id: i32,
    pub leader_epoch: i32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionProduceResponse {
    pub index: i32,
    pub error_code: i16,
    pub base_offset: i64,
    /// -1 unless the topic uses LogAppendTime
    pub log_append_time_ms: i64,
    /// v5+ (default -1)
    pub log_start_offset: i64,
    /// v8+
    pub record_errors: Vec<BatchIndexAndErrorMessage>,
    /// v8+
    pub error_message: Option<String>,
    /// v10+ tagged field 0 (sent with NOT_LEADER_OR_FOLLOWER / FENCED_LEADER_EPOCH)
    pub current_leader: Option<LeaderIdAndEpoch>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TopicProduceResponse {
    pub name: String,
    pub partition_responses: Vec<PartitionProduceResponse>,
}

message! {
    /// In a tagged field: always in the flexible encoding.
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct NodeEndpoint { node_id: i32, host: String, port: i32, rack: Option<String> }
}

/// Produce response, v3..=12.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ProduceResponse {
    pub responses: Vec<TopicProduceResponse>,
    pub throttle_time_ms: i32,
    /// v10+ tagged field 0: endpoints of the new leaders named in `current_leader`
    pub node_endpoints: Vec<NodeEndpoint>,
}

impl Response for ProduceResponse {
    fn decode_body(version: i16, r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let flex = version >= 9;
        let responses = r.array(flex, 5, |r| {
            let name = r.string(flex)?;
            let partition_responses = r.array(flex, 14, |r| {
                let mut p = PartitionProduceResponse {
                    index: r.get_i32()?,
                    error_code: r.get_i16()?,
                    base_offset: r.get_i64()?,
                    log_append_time_ms: r.get_i64()?,
                    log_start_offset: -1,
                    record_errors: Vec::new(),
                    error_message: None,
                    current_leader: None,
                };
                if version >= 5 {
                    p.log_start_offset = r.get_i64()?;
                }
                if version >= 8 {
                    p.record_errors = r.array(flex, 5, |r| {
                        let e = BatchIndexAndErrorMessage {
                            batch_index: r.get_i32()?,
                            batch_index_error_message: r.nullable_string(flex)?,
                        };
                        r.tagged_fields_if(flex)?;
                        Ok(e)
                    })?;
                    p.error_message = r.nullable_string(flex)?;
                }
                if flex {
                    r.read_tagged_fields(|tag, f| {
                        if tag == 0 && version >= 10 {
                            let l = LeaderIdAndEpoch {
                                leader_id: f.get_i32()?,
                                leader_epoch: f.get_i32()?,
                            };
                            f.skip_tagged_fields()?;
                            p.current_leader = Some(l);
                        }
                        Ok(())
                    })?;
                }
                Ok(p)
            })?;
            r.tagged_fields_if(flex)?;
            Ok(TopicProduceResponse { name, partition_responses })
        })?;
        let throttle_time_ms = r.get_i32()?;
        let mut node_endpoints = Vec::new();
        if flex {
            r.read_tagged_fields(|tag, f| {
                if tag == 0 && version >= 10 {
                    node_endpoints = Field::get(f, version, true)?;
                }
                Ok(())
            })?;
        }
        Ok(ProduceResponse { responses, throttle_time_ms, node_endpoints })
    }
}

impl DecodeRequest for ProduceRequest {
    /// `records` are copied out of the frame (a null record set decodes as empty).
    fn decode_body(version: i16, r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let flex = version >= 9;
        let transactional_id = r.nullable_string(flex)?;
        let acks = r.get_i16()?;
        let timeout_ms = r.get_i32()?;
        let topic_data = r.array(flex, 2, |r| {
            let name = r.string(flex)?;
            let partition_data = r.array(flex, 5, |r| {
                let index = r.get_i32()?;
                let records = Bytes::copy_from_slice(r.nullable_bytes(flex)?.unwrap_or(&[]));
                r.tagged_fields_if(flex)?;
                Ok(PartitionProduceData { index, records })
            })?;
            r.tagged_fields_if(flex)?;
            Ok(TopicProduceData { name, partition_data })
        })?;
        r.tagged_fields_if(flex)?;
        Ok(ProduceRequest { transactional_id, acks, timeout_ms, topic_data })
    }
}

impl EncodeResponse for ProduceResponse {
    fn encode_body(&self, version: i16, out: &mut BytesMut) {
        let flex = version >= 9;
        put_arr_len(out, self.responses.len(), flex);
        for t in &self.responses {
            put_str(out, &t.name, flex);
            put_arr_len(out, t.partition_responses.len(), flex);
            for p in &t.partition_responses {
                out.put_i32(p.index);
                out.put_i16(p.error_code);
                out.put_i64(p.base_offset);
                out.put_i64(p.log_append_time_ms);
                if version >= 5 {
                    out.put_i64(p.log_start_offset);
                }
                if version >= 8 {
                    put_arr_len(out, p.record_errors.len(), flex);
                    for e in &p.record_errors {
                        out.put_i32(e.batch_index);
                        put_nullable_str(out, e.batch_index_error_message.as_deref(), flex);
                        put_tagged_fields_if(out, flex);
                    }
                    put_nullable_str(out, p.error_message.as_deref(), flex);
                }
                if flex {
                    match (&p.current_leader, version >= 10) {
                        (Some(l), true) => {
                            let mut b = BytesMut::with_capacity(9);
                            b.put_i32(l.leader_id);
                            b.put_i32(l.leader_epoch);
                            put_empty_tagged_fields(&mut b);
                            put_uvarint(out, 1);
                            put_tagged_field(out, 0, &b);
                        }
                        _ => put_empty_tagged_fields(out),
                    }
                }
            }
            put_tagged_fields_if(out, flex);
        }
        out.put_i32(self.throttle_time_ms);
        if flex {
            if version >= 10 && !self.node_endpoints.is_empty() {
                let mut b = BytesMut::new();
                self.node_endpoints.put(&mut b, version, true);
                put_uvarint(out, 1);
                put_tagged_field(out, 0, &b);
            } else {
                put_empty_tagged_fields(out);
            }
        }
    }
}
