use bytes::{BufMut, BytesMut};

use crate::protocol::api::{DecodeRequest, EncodeResponse, Request, Response, API_API_VERSIONS};
use crate::protocol::errors::UNSUPPORTED_VERSION;
use crate::protocol::wire::*;
use crate::protocol::DecodeError;

use super::schema::{message, request_ids, Field};

/// ApiVersions request, v0..=4 (v3+ flexible; v3 and v4 have the same body).
///
/// Brokers reject (INVALID_REQUEST) software names/versions that do not match
/// `[a-zA-Z0-9](?:[a-zA-Z0-9\-.]*[a-zA-Z0-9])?` (KIP-511).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ApiVersionsRequest {
    /// v3+
    pub client_software_name: String,
    /// v3+
    pub client_software_version: String,
}

impl Request for ApiVersionsRequest {
    request_ids!(API_API_VERSIONS, 0..=4, ApiVersionsResponse);

    fn encode_body(&self, version: i16, out: &mut BytesMut) {
        if version >= 3 {
            put_compact_string(out, &self.client_software_name);
            put_compact_string(out, &self.client_software_version);
            put_empty_tagged_fields(out);
        }
    }
}

message! {
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct ApiVersionRange { api_key: i16, min_version: i16, max_version: i16 }
}

message! {
    /// In a tagged field: always in the flexible encoding.
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct SupportedFeature { name: String, min_version: i16, max_version: i16 }
}

message! {
    /// In a tagged field: always in the flexible encoding.
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct FinalizedFeature { name: String, max_version_level: i16, min_version_level: i16 }
}

/// ApiVersions response. When the broker rejects our request version it
/// answers `UNSUPPORTED_VERSION` in the v0 format; decoding detects that and
/// falls back to v0 (see [`ApiVersionsResponse::decoded_version`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiVersionsResponse {
    pub error_code: i16,
    pub api_keys: Vec<ApiVersionRange>,
    /// v1+
    pub throttle_time_ms: i32,
    /// v3+ tagged field 0
    pub supported_features: Vec<SupportedFeature>,
    /// v3+ tagged field 1 (default -1)
    pub finalized_features_epoch: i64,
    /// v3+ tagged field 2
    pub finalized_features: Vec<FinalizedFeature>,
    /// v3+ tagged field 3
    pub zk_migration_ready: bool,
    /// The version the body was actually decoded with (0 after a fallback).
    pub decoded_version: i16,
}

impl Default for ApiVersionsResponse {
    fn default() -> Self {
        ApiVersionsResponse {
            error_code: 0,
            api_keys: Vec::new(),
            throttle_time_ms: 0,
            supported_features: Vec::new(),
            finalized_features_epoch: -1,
            finalized_features: Vec::new(),
            zk_migration_ready: false,
            decoded_version: 0,
        }
    }
}

impl ApiVersionsResponse {
    /// The broker's `(min, max)` for an API key.
    pub fn version_range(&self, api_key: i16) -> Option<(i16, i16)> {
        self.api_keys.iter().find(|k| k.api_key == api_key).map(|k| (k.min_version, k.max_version))
    }

    /// A finalized feature by name (e.g. `"transaction.version"`), valid only
    /// when `finalized_features_epoch >= 0`.
    pub fn finalized_feature(&self, name: &str) -> Option<&FinalizedFeature> {
        self.finalized_features.iter().find(|f| f.name == name)
    }

    /// Finalized max level of `transaction.version` (0 if absent). Level >= 2
    /// means the cluster runs the KIP-890 transactions v2 protocol.
    pub fn transaction_version(&self) -> i16 {
        self.finalized_feature("transaction.version").map(|f| f.max_version_level).unwrap_or(0)
    }

    fn decode_at(version: i16, r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let flex = version >= 3;
        let mut resp = ApiVersionsResponse { decoded_version: version, ..Default::default() };
        resp.error_code = r.get_i16()?;
        resp.api_keys = Field::get(r, version, flex)?;
        if version >= 1 {
            resp.throttle_time_ms = r.get_i32()?;
        }
        if flex {
            r.read_tagged_fields(|tag, f| {
                match tag {
                    0 => resp.supported_features = Field::get(f, version, true)?,
                    1 => resp.finalized_features_epoch = f.get_i64()?,
                    2 => resp.finalized_features = Field::get(f, version, true)?,
                    3 => resp.zk_migration_ready = f.get_bool()?,
                    _ => {}
                }
                Ok(())
            })?;
        }
        Ok(resp)
    }
}

impl Response for ApiVersionsResponse {
    fn decode_body(version: i16, r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        if version == 0 {
            return Self::decode_at(0, r);
        }
        // UNSUPPORTED_VERSION answers come in the v0 format.
        let error_code = r.clone().get_i16()?;
        if error_code == UNSUPPORTED_VERSION {
            let mut v0 = r.clone();
            if let Ok(resp) = Self::decode_at(0, &mut v0) {
                *r = v0;
                return Ok(resp);
            }
        }
        let mut at = r.clone();
        match Self::decode_at(version, &mut at) {
            Ok(resp) => {
                *r = at;
                Ok(resp)
            }
            Err(e) => {
                // like the Java client: retry in the v0 format
                let mut v0 = r.clone();
                match Self::decode_at(0, &mut v0) {
                    Ok(resp) => {
                        *r = v0;
                        Ok(resp)
                    }
                    Err(_) => Err(e),
                }
            }
        }
    }
}

impl DecodeRequest for ApiVersionsRequest {
    fn decode_body(version: i16, r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let mut req = ApiVersionsRequest::default();
        if version >= 3 {
            req.client_software_name = r.get_compact_string()?;
            req.client_software_version = r.get_compact_string()?;
            r.skip_tagged_fields()?;
        }
        Ok(req)
    }
}

impl EncodeResponse for ApiVersionsResponse {
    fn encode_body(&self, version: i16, out: &mut BytesMut) {
        let flex = version >= 3;
        out.put_i16(self.error_code);
        self.api_keys.put(out, version, flex);
        if version >= 1 {
            out.put_i32(self.throttle_time_ms);
        }
        if flex {
            let mut fields: Vec<(u32, BytesMut)> = Vec::new();
            if !self.supported_features.is_empty() {
                let mut b = BytesMut::new();
                self.supported_features.put(&mut b, version, true);
                fields.push((0, b));
            }
            if self.finalized_features_epoch != -1 {
                let mut b = BytesMut::new();
                b.put_i64(self.finalized_features_epoch);
                fields.push((1, b));
            }
            if !self.finalized_features.is_empty() {
                let mut b = BytesMut::new();
                self.finalized_features.put(&mut b, version, true);
                fields.push((2, b));
            }
            if self.zk_migration_ready {
                fields.push((3, BytesMut::from(&[1u8][..])));
            }
            put_uvarint(out, fields.len() as u32);
            for (tag, data) in &fields {
                put_tagged_field(out, *tag, data);
            }
        }
    }
}
