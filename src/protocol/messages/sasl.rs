//! SaslHandshake (key 17, v0..=1) and SaslAuthenticate (key 36, v0..=2; v2
//! flexible). kp sends SaslHandshake v1 and then carries the mechanism's
//! messages in SaslAuthenticate requests (KIP-152).

use bytes::BytesMut;

use crate::protocol::api::{Request, Response, API_SASL_AUTHENTICATE, API_SASL_HANDSHAKE};
use crate::protocol::wire::*;
use crate::protocol::DecodeError;

/// SaslHandshake request: the mechanism the client wants to use.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SaslHandshakeRequest {
    pub mechanism: String,
}

impl Request for SaslHandshakeRequest {
    const API_KEY: i16 = API_SASL_HANDSHAKE;
    const MIN_VERSION: i16 = 0;
    const MAX_VERSION: i16 = 1;
    type Response = SaslHandshakeResponse;

    fn encode_body(&self, _version: i16, out: &mut BytesMut) {
        put_string(out, &self.mechanism);
    }
}

/// SaslHandshake response: an error (UNSUPPORTED_SASL_MECHANISM, 33) and the
/// mechanisms the listener has enabled.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SaslHandshakeResponse {
    pub error_code: i16,
    pub mechanisms: Vec<String>,
}

impl Response for SaslHandshakeResponse {
    fn decode_body(_version: i16, r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let error_code = r.get_i16()?;
        let n = r.get_array_len(2)?;
        let mut mechanisms = Vec::with_capacity(n);
        for _ in 0..n {
            mechanisms.push(r.get_string()?);
        }
        Ok(SaslHandshakeResponse { error_code, mechanisms })
    }
}

/// SaslAuthenticate request: one message of the mechanism's exchange.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SaslAuthenticateRequest {
    pub auth_bytes: Vec<u8>,
}

impl Request for SaslAuthenticateRequest {
    const API_KEY: i16 = API_SASL_AUTHENTICATE;
    const MIN_VERSION: i16 = 0;
    const MAX_VERSION: i16 = 2;
    type Response = SaslAuthenticateResponse;

    fn encode_body(&self, version: i16, out: &mut BytesMut) {
        if version >= 2 {
            put_compact_bytes(out, &self.auth_bytes);
            put_empty_tagged_fields(out);
        } else {
            put_bytes(out, &self.auth_bytes);
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SaslAuthenticateResponse {
    pub error_code: i16,
    pub error_message: Option<String>,
    pub auth_bytes: Vec<u8>,
    /// v1+: how long the broker keeps the session (0: no limit).
    pub session_lifetime_ms: i64,
}

impl Response for SaslAuthenticateResponse {
    fn decode_body(version: i16, r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let flexible = version >= 2;
        let error_code = r.get_i16()?;
        let error_message = r.nullable_string(flexible)?;
        let auth_bytes = if flexible { r.get_compact_bytes()? } else { r.get_bytes()? }.to_vec();
        let session_lifetime_ms = if version >= 1 { r.get_i64()? } else { 0 };
        r.tagged_fields_if(flexible)?;
        Ok(SaslAuthenticateResponse { error_code, error_message, auth_bytes, session_lifetime_ms })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::wire::Reader;
    use bytes::{Buf, Bytes};
    use kafka_protocol::messages as km;
    use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

    #[test]
    fn requests_match_the_reference_encoding() {
        for v in 0..=1 {
            let mut ours = BytesMut::new();
            SaslHandshakeRequest { mechanism: "SCRAM-SHA-256".into() }.encode_body(v, &mut ours);
            let mut theirs = BytesMut::new();
            km::SaslHandshakeRequest::default()
                .with_mechanism(StrBytes::from_static_str("SCRAM-SHA-256"))
                .encode(&mut theirs, v)
                .unwrap();
            assert_eq!(ours, theirs, "handshake v{v}");
        }
        for v in 0..=2 {
            let mut ours = BytesMut::new();
            SaslAuthenticateRequest { auth_bytes: b"n,,n=alice,r=abc".to_vec() }
                .encode_body(v, &mut ours);
            let mut theirs = BytesMut::new();
            km::SaslAuthenticateRequest::default()
                .with_auth_bytes(Bytes::from_static(b"n,,n=alice,r=abc"))
                .encode(&mut theirs, v)
                .unwrap();
            assert_eq!(ours, theirs, "authenticate v{v}");
        }
    }

    #[test]
    fn responses_decode_the_reference_encoding() {
        let hs = km::SaslHandshakeResponse::default()
            .with_error_code(33)
            .with_mechanisms(vec![StrBytes::from_static_str("PLAIN")]);
        for v in 0..=1 {
            let mut b = BytesMut::new();
            hs.encode(&mut b, v).unwrap();
            let ours = SaslHandshakeResponse::decode_body(v, &mut Reader::new(&b)).unwrap();
            assert_eq!(ours.error_code, 33);
            assert_eq!(ours.mechanisms, vec!["PLAIN".to_string()]);
        }
        let au = km::SaslAuthenticateResponse::default()
            .with_error_code(58)
            .with_error_message(Some(StrBytes::from_static_str("bad")))
            .with_auth_bytes(Bytes::from_static(b"v=xyz"))
            .with_session_lifetime_ms(5000);
        for v in 0..=2 {
            let mut b = BytesMut::new();
            au.encode(&mut b, v).unwrap();
            let mut r = Reader::new(&b);
            let ours = SaslAuthenticateResponse::decode_body(v, &mut r).unwrap();
            assert!(r.is_empty(), "v{v} left bytes");
            assert_eq!(ours.error_code, 58);
            assert_eq!(ours.error_message.as_deref(), Some("bad"));
            assert_eq!(ours.auth_bytes, b"v=xyz");
            assert_eq!(ours.session_lifetime_ms, if v >= 1 { 5000 } else { 0 });
            let mut bb = b.freeze();
            let back = km::SaslAuthenticateResponse::decode(&mut bb, v).unwrap();
            assert_eq!(back.error_code, 58);
            assert!(!bb.has_remaining());
        }
    }
}
