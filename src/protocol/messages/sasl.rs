//! SaslHandshake (key 17, v0..=1) and SaslAuthenticate (key 36, v0..=2; v2
//! flexible). kp sends SaslHandshake v1 and then carries the mechanism's
//! messages in SaslAuthenticate requests (KIP-152).

use bytes::{Bytes, BytesMut};

use super::schema::{api, decode, encode, message, Decoded};
use crate::protocol::api::{API_SASL_AUTHENTICATE, API_SASL_HANDSHAKE};
use crate::protocol::wire::*;

// SaslHandshake has no flexible version.
api! { key API_SASL_HANDSHAKE, versions 0..=1, flexible from 32767;
    /// SaslHandshake request: the mechanism the client wants to use.
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct SaslHandshakeRequest { mechanism: String }
    /// SaslHandshake response: an error (UNSUPPORTED_SASL_MECHANISM, 33) and
    /// the mechanisms the listener has enabled.
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct SaslHandshakeResponse { error_code: i16, mechanisms: Vec<String> }
}

api! { key API_SASL_AUTHENTICATE, versions 0..=2, flexible from 2;
    /// SaslAuthenticate request: one message of the mechanism's exchange.
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct SaslAuthenticateRequest { auth_bytes: Bytes }
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct SaslAuthenticateResponse {
        error_code: i16,
        error_message: Option<String>,
        auth_bytes: Bytes,
        /// v1+: how long the broker keeps the session (0: no limit).
        session_lifetime_ms: i64 = 0, since 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::api::{Request, Response};
    use bytes::Buf;
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
            SaslAuthenticateRequest { auth_bytes: Bytes::from_static(b"n,,n=alice,r=abc") }
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
            assert_eq!(&ours.auth_bytes[..], b"v=xyz");
            assert_eq!(ours.session_lifetime_ms, if v >= 1 { 5000 } else { 0 });
            let mut bb = b.freeze();
            let back = km::SaslAuthenticateResponse::decode(&mut bb, v).unwrap();
            assert_eq!(back.error_code, 58);
            assert!(!bb.has_remaining());
        }
    }
}
