//! Table-driven messages: a message is declared once, as its fields in wire
//! order with the version each one appeared in ([`message!`]), and
//! [`api!`] ties a request to its response. Both sides (client encode /
//! decode and the broker side used by mock brokers) come from that one
//! declaration, so a new control-plane message (e.g. SaslHandshake) is a
//! table of fields, not another hand-written encoder and decoder.
//!
//! The hot path (Produce, record batches) stays hand-written.

use bytes::{BufMut, Bytes, BytesMut};

use crate::protocol::wire::*;
use crate::protocol::DecodeError;

/// A value with a Kafka wire form. `flex`: the message version is flexible
/// (compact strings/arrays, tagged fields at the end of every struct).
pub trait Field: Sized {
    /// A lower bound on the encoded size (caps array lengths read from the
    /// wire by the bytes that remain).
    const MIN_LEN: usize;
    fn put(&self, out: &mut BytesMut, version: i16, flex: bool);
    fn get(r: &mut Reader<'_>, version: i16, flex: bool) -> Result<Self, DecodeError>;
}

macro_rules! fixed_field {
    ($ty:ty, $len:expr, $put:ident, $get:ident) => {
        impl Field for $ty {
            const MIN_LEN: usize = $len;
            fn put(&self, out: &mut BytesMut, _: i16, _: bool) {
                out.$put(*self);
            }
            fn get(r: &mut Reader<'_>, _: i16, _: bool) -> Result<Self, DecodeError> {
                r.$get()
            }
        }
    };
}

fixed_field!(i8, 1, put_i8, get_i8);
fixed_field!(i16, 2, put_i16, get_i16);
fixed_field!(i32, 4, put_i32, get_i32);
fixed_field!(i64, 8, put_i64, get_i64);

impl Field for bool {
    const MIN_LEN: usize = 1;
    fn put(&self, out: &mut BytesMut, _: i16, _: bool) {
        put_bool(out, *self);
    }
    fn get(r: &mut Reader<'_>, _: i16, _: bool) -> Result<Self, DecodeError> {
        r.get_bool()
    }
}

impl Field for String {
    const MIN_LEN: usize = 1;
    fn put(&self, out: &mut BytesMut, _: i16, flex: bool) {
        put_str(out, self, flex);
    }
    fn get(r: &mut Reader<'_>, _: i16, flex: bool) -> Result<Self, DecodeError> {
        r.string(flex)
    }
}

impl Field for Option<String> {
    const MIN_LEN: usize = 1;
    fn put(&self, out: &mut BytesMut, _: i16, flex: bool) {
        put_nullable_str(out, self.as_deref(), flex);
    }
    fn get(r: &mut Reader<'_>, _: i16, flex: bool) -> Result<Self, DecodeError> {
        r.nullable_string(flex)
    }
}

/// Kafka `bytes`.
impl Field for Bytes {
    const MIN_LEN: usize = 1;
    fn put(&self, out: &mut BytesMut, _: i16, flex: bool) {
        if flex {
            put_compact_bytes(out, self);
        } else {
            put_bytes(out, self);
        }
    }
    fn get(r: &mut Reader<'_>, _: i16, flex: bool) -> Result<Self, DecodeError> {
        let b = if flex { r.get_compact_bytes()? } else { r.get_bytes()? };
        Ok(Bytes::copy_from_slice(b))
    }
}

/// Kafka arrays of any field type.
impl<T: Field> Field for Vec<T> {
    const MIN_LEN: usize = 1;
    fn put(&self, out: &mut BytesMut, version: i16, flex: bool) {
        put_arr_len(out, self.len(), flex);
        for v in self {
            v.put(out, version, flex);
        }
    }
    fn get(r: &mut Reader<'_>, version: i16, flex: bool) -> Result<Self, DecodeError> {
        r.array(flex, T::MIN_LEN.max(1), |r| T::get(r, version, flex))
    }
}

/// Declares a message struct from its fields in wire order. A field
/// written `name: Type = default, since N` exists from version N on (older
/// versions neither write it nor read it, and decode to `default`). Every
/// struct ends with tagged fields in flexible versions.
macro_rules! message {
    (
        $(#[$meta:meta])*
        pub struct $name:ident {
            $(
                $(#[$fmeta:meta])*
                $field:ident : $ty:ty $(= $default:expr, since $since:literal)?
            ),* $(,)?
        }
    ) => {
        $(#[$meta])*
        pub struct $name {
            $( $(#[$fmeta])* pub $field: $ty, )*
        }

        impl $crate::protocol::messages::schema::Field for $name {
            // Fields of later versions do not count: the bound holds for all.
            const MIN_LEN: usize = 0 $( + message!(@min $ty $(, $since)?) )*;

            #[allow(unused_comparisons)]
            fn put(&self, out: &mut ::bytes::BytesMut, version: i16, flex: bool) {
                $(
                    if version >= message!(@since $($since)?) {
                        $crate::protocol::messages::schema::Field::put(
                            &self.$field, out, version, flex,
                        );
                    }
                )*
                $crate::protocol::wire::put_tagged_fields_if(out, flex);
            }

            #[allow(unused_comparisons)]
            fn get(
                r: &mut $crate::protocol::wire::Reader<'_>,
                version: i16,
                flex: bool,
            ) -> Result<Self, $crate::protocol::DecodeError> {
                let v = $name {
                    $(
                        $field: if version >= message!(@since $($since)?) {
                            <$ty as $crate::protocol::messages::schema::Field>::get(r, version, flex)?
                        } else {
                            message!(@default $($default)?)
                        },
                    )*
                };
                r.tagged_fields_if(flex)?;
                Ok(v)
            }
        }
    };
    (@min $ty:ty) => { <$ty as $crate::protocol::messages::schema::Field>::MIN_LEN };
    (@min $ty:ty, $since:literal) => { 0 };
    (@since) => { 0 };
    (@since $since:literal) => { $since };
    (@default) => { unreachable!("a field without `since` is in every version") };
    (@default $default:expr) => { $default };
}

/// The associated items of a `Request` impl: API key, the versions kp
/// speaks and the response type (for requests encoded by hand).
macro_rules! request_ids {
    ($key:expr, $min:literal..=$max:literal, $resp:ty) => {
        const API_KEY: i16 = $key;
        const MIN_VERSION: i16 = $min;
        const MAX_VERSION: i16 = $max;
        type Response = $resp;
    };
}

/// Declares one API: its key, the versions kp speaks and the first
/// flexible version, then its request and response structs (as in
/// [`message!`]). Implements the client side (encode the request, decode
/// the response) and the broker side (for mock brokers).
///
/// The invoking module imports `BytesMut`, `Reader`, `Decoded`, `encode`
/// and `decode`.
macro_rules! api {
    (   key $key:expr, versions $min:literal..=$max:literal, flexible from $flex:literal;
        $(#[$rqmeta:meta])* pub struct $req:ident $rqbody:tt
        $(#[$rsmeta:meta])* pub struct $resp:ident $rsbody:tt
    ) => {
        message! { $(#[$rqmeta])* pub struct $req $rqbody }
        message! { $(#[$rsmeta])* pub struct $resp $rsbody }
        impl $crate::protocol::api::Request for $req {
            $crate::protocol::messages::schema::request_ids!($key, $min..=$max, $resp);
            fn encode_body(&self, v: i16, out: &mut BytesMut) {
                encode(self, v, $flex, out)
            }
        }
        impl $crate::protocol::api::Response for $resp {
            fn decode_body(v: i16, r: &mut Reader<'_>) -> Decoded<Self> {
                decode(r, v, $flex)
            }
        }
        impl $crate::protocol::api::DecodeRequest for $req {
            fn decode_body(v: i16, r: &mut Reader<'_>) -> Decoded<Self> {
                decode(r, v, $flex)
            }
        }
        impl $crate::protocol::api::EncodeResponse for $resp {
            fn encode_body(&self, v: i16, out: &mut BytesMut) {
                encode(self, v, $flex, out)
            }
        }
    };
}

/// Encodes a whole message body (flexible from version `flex_from`).
pub fn encode<T: Field>(msg: &T, version: i16, flex_from: i16, out: &mut BytesMut) {
    msg.put(out, version, version >= flex_from);
}

/// Decodes a whole message body (flexible from version `flex_from`).
pub fn decode<T: Field>(r: &mut Reader<'_>, version: i16, flex_from: i16) -> Decoded<T> {
    T::get(r, version, version >= flex_from)
}

pub(crate) use {api, message, request_ids};

/// What a decoder returns.
pub type Decoded<T> = Result<T, DecodeError>;

#[cfg(test)]
mod tests {
    //! The table machinery on a message shaped like SaslAuthenticate
    //! (bytes, a nullable string, a field added in v1, flexible from v2).

    use bytes::{Bytes, BytesMut};

    use super::{decode, encode, Decoded, Field};
    use crate::protocol::api::{decode_request, encode_request, encode_response};
    use crate::protocol::wire::Reader;

    api! { key 36, versions 0..=2, flexible from 2;
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub struct AuthRequest { auth_bytes: Bytes }
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub struct AuthResponse {
            error_code: i16,
            error_message: Option<String>,
            auth_bytes: Bytes,
            session_lifetime_ms: i64 = 0, since 1,
            items: Vec<Item>,
        }
    }

    message! {
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub struct Item { name: String, ids: Vec<i32> }
    }

    fn response() -> AuthResponse {
        AuthResponse {
            error_code: 0,
            error_message: Some("ok".into()),
            auth_bytes: Bytes::from_static(b"\x00user\x00pass"),
            session_lifetime_ms: 3_600_000,
            items: vec![Item { name: "a".into(), ids: vec![1, 2] }],
        }
    }

    #[test]
    fn both_sides_roundtrip_in_every_version() {
        let req = AuthRequest { auth_bytes: Bytes::from_static(b"token") };
        for v in 0..=2 {
            let mut out = BytesMut::new();
            encode_request(&mut out, &req, v, 7, "c");
            let (h, back) = decode_request::<AuthRequest>(&out[4..]).unwrap();
            assert_eq!((h.api_key, h.api_version, back), (36, v, req.clone()));

            let mut out = BytesMut::new();
            encode_response(&mut out, 36, v, 7, &response());
            let (corr, back) =
                crate::protocol::api::decode_response::<AuthRequest>(v, out.split_off(4).freeze())
                    .unwrap();
            assert_eq!(corr, 7);
            let mut want = response();
            if v < 1 {
                want.session_lifetime_ms = 0; // not in v0: the default
            }
            assert_eq!(back, want, "v{v}");
        }
    }

    #[test]
    fn versions_and_flexible_forms_change_the_bytes() {
        let r = response();
        let mut v0 = BytesMut::new();
        r.put(&mut v0, 0, false);
        let mut v1 = BytesMut::new();
        r.put(&mut v1, 1, false);
        assert_eq!(v1.len(), v0.len() + 8, "v1 adds session_lifetime_ms");
        let mut v2 = BytesMut::new();
        r.put(&mut v2, 2, true);
        assert!(v2.len() < v1.len(), "compact lengths are shorter, tagged fields added");
        // v0 body: i16, nullable string, bytes, array of (string, i32 array).
        let mut want = BytesMut::new();
        want.extend_from_slice(&0i16.to_be_bytes());
        want.extend_from_slice(&[0, 2, b'o', b'k']);
        want.extend_from_slice(&10i32.to_be_bytes());
        want.extend_from_slice(b"\x00user\x00pass");
        want.extend_from_slice(&1i32.to_be_bytes());
        want.extend_from_slice(&[0, 1, b'a']);
        want.extend_from_slice(&2i32.to_be_bytes());
        want.extend_from_slice(&1i32.to_be_bytes());
        want.extend_from_slice(&2i32.to_be_bytes());
        assert_eq!(v0, want);
    }

    #[test]
    fn hostile_array_length_is_refused_before_allocating() {
        // v0 response whose array claims 1,000,000 items in 4 bytes.
        let mut b = BytesMut::new();
        b.extend_from_slice(&0i16.to_be_bytes());
        b.extend_from_slice(&(-1i16).to_be_bytes());
        b.extend_from_slice(&0i32.to_be_bytes());
        b.extend_from_slice(&1_000_000i32.to_be_bytes());
        b.extend_from_slice(&[0; 4]);
        let mut r = Reader::new(&b);
        assert!(<AuthResponse as Field>::get(&mut r, 0, false).is_err());
        assert_eq!(Item::MIN_LEN, 2, "string (1) + array length (1), compact lower bound");
    }
}
