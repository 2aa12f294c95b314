//! API keys, request/response traits, framing and version negotiation.
//!
//! Framing: a request frame is `[i32 size][request header][body]`; the
//! request header is v1 (`api_key, api_version, correlation_id, client_id` as
//! a classic nullable string) or v2 for flexible versions (v1 + an empty
//! tagged-field section). A response frame (after the size prefix has been
//! stripped by the transport) is `[correlation_id][tagged fields if the
//! response header is v1][body]`; ApiVersions responses always use header v0.

use bytes::{BufMut, Bytes, BytesMut};

use super::wire::{put_empty_tagged_fields, put_nullable_string, Reader};
use super::DecodeError;

pub const API_PRODUCE: i16 = 0;
pub const API_FETCH: i16 = 1;
pub const API_LIST_OFFSETS: i16 = 2;
pub const API_METADATA: i16 = 3;
pub const API_FIND_COORDINATOR: i16 = 10;
pub const API_SASL_HANDSHAKE: i16 = 17;
pub const API_API_VERSIONS: i16 = 18;
pub const API_INIT_PRODUCER_ID: i16 = 22;
pub const API_ADD_PARTITIONS_TO_TXN: i16 = 24;
pub const API_ADD_OFFSETS_TO_TXN: i16 = 25;
pub const API_END_TXN: i16 = 26;
pub const API_TXN_OFFSET_COMMIT: i16 = 28;
pub const API_SASL_AUTHENTICATE: i16 = 36;

/// First flexible version of an API (per the `flexibleVersions` of the
/// request/response JSON schemas), `None` if the API is unknown here or has no
/// flexible version.
pub fn first_flexible_version(api_key: i16) -> Option<i16> {
    Some(match api_key {
        API_PRODUCE => 9,
        API_FETCH => 12,
        API_LIST_OFFSETS => 6,
        API_METADATA => 9,
        API_FIND_COORDINATOR => 3,
        API_API_VERSIONS => 3,
        API_INIT_PRODUCER_ID => 2,
        API_ADD_PARTITIONS_TO_TXN => 3,
        API_ADD_OFFSETS_TO_TXN => 3,
        API_END_TXN => 3,
        API_TXN_OFFSET_COMMIT => 3,
        API_SASL_AUTHENTICATE => 2,
        _ => return None, // includes SaslHandshake (never flexible)
    })
}

/// Whether `version` of `api_key` uses the flexible (compact + tagged fields) encoding.
pub fn is_flexible(api_key: i16, version: i16) -> bool {
    matches!(first_flexible_version(api_key), Some(v) if version >= v)
}

/// Request header version (1 or 2) for an API version.
pub fn request_header_version(api_key: i16, version: i16) -> i16 {
    if is_flexible(api_key, version) {
        2
    } else {
        1
    }
}

/// Response header version (0 or 1); ApiVersions always answers with v0.
pub fn response_header_version(api_key: i16, version: i16) -> i16 {
    if api_key != API_API_VERSIONS && is_flexible(api_key, version) {
        1
    } else {
        0
    }
}

/// A request message.
pub trait Request {
    const API_KEY: i16;
    const MIN_VERSION: i16;
    const MAX_VERSION: i16;
    type Response: Response;

    /// Write the body only (no size prefix, no header).
    fn encode_body(&self, version: i16, out: &mut BytesMut);

    /// Write the body to a vectored writer; requests carrying large shared
    /// payloads (Produce) override this to hand them over without copying.
    fn encode_body_vectored(&self, version: i16, w: &mut VectoredWriter) {
        self.encode_body(version, w.buf())
    }
}

/// A response message.
pub trait Response: Sized {
    fn decode_body(version: i16, r: &mut Reader<'_>) -> Result<Self, DecodeError>;
}

/// Destination for request bodies that may contain large shared `Bytes`
/// (record batches). Implemented by `BytesMut` (copies) and
/// [`VectoredWriter`] (keeps them as separate segments).
pub trait BodySink {
    fn buf(&mut self) -> &mut BytesMut;
    fn put_shared(&mut self, b: &Bytes);
}

impl BodySink for BytesMut {
    #[inline]
    fn buf(&mut self) -> &mut BytesMut {
        self
    }
    #[inline]
    fn put_shared(&mut self, b: &Bytes) {
        self.extend_from_slice(b)
    }
}

/// Builds a request frame as a list of `Bytes` segments for vectored writes:
/// small fields are copied into an owned buffer, shared payloads of at least
/// `min_shared` bytes are referenced (refcount bump, no copy).
#[derive(Debug)]
pub struct VectoredWriter {
    head: Option<BytesMut>,
    segs: Vec<Bytes>,
    cur: BytesMut,
    min_shared: usize,
}

/// Shared payloads smaller than this are copied into the frame buffer. One
/// byte: every record batch is referenced, never copied. A request waiting
/// in a busy connection's queue then holds no second copy of the batches
/// buffer.memory already counts (with thousands of partitions, batches are
/// small and a copied request was up to 1 MiB outside the bound); the
/// connection's write buffer coalesces small segments, so this costs no
/// extra system calls.
pub const DEFAULT_MIN_SHARED: usize = 1;

impl VectoredWriter {
    fn new(min_shared: usize) -> Self {
        VectoredWriter {
            head: None,
            segs: Vec::new(),
            cur: BytesMut::with_capacity(256),
            min_shared,
        }
    }

    fn flush(&mut self) {
        if self.cur.is_empty() {
            return;
        }
        let chunk = self.cur.split();
        match self.head {
            None => self.head = Some(chunk),
            Some(_) => self.segs.push(chunk.freeze()),
        }
    }

    /// Finish the frame: patch the size prefix and return the segments.
    fn finish(mut self) -> Vec<Bytes> {
        self.flush();
        let mut head = self.head.take().unwrap_or_default();
        let total: usize = head.len() + self.segs.iter().map(|s| s.len()).sum::<usize>();
        if head.len() >= 4 {
            head[..4].copy_from_slice(&((total - 4) as i32).to_be_bytes());
        }
        let mut out = Vec::with_capacity(1 + self.segs.len());
        out.push(head.freeze());
        out.extend(self.segs);
        out
    }
}

impl BodySink for VectoredWriter {
    #[inline]
    fn buf(&mut self) -> &mut BytesMut {
        &mut self.cur
    }
    fn put_shared(&mut self, b: &Bytes) {
        if b.len() < self.min_shared {
            self.cur.extend_from_slice(b);
        } else {
            self.flush();
            self.segs.push(b.clone());
        }
    }
}

fn put_request_header(
    out: &mut BytesMut,
    api_key: i16,
    version: i16,
    correlation_id: i32,
    client_id: &str,
) {
    out.put_i16(api_key);
    out.put_i16(version);
    out.put_i32(correlation_id);
    // always the classic i16-length string, even in header v2
    put_nullable_string(out, Some(client_id));
    if request_header_version(api_key, version) >= 2 {
        put_empty_tagged_fields(out);
    }
}

/// Append a complete request frame (size prefix, header, body) to `out`.
pub fn encode_request<R: Request>(
    out: &mut BytesMut,
    req: &R,
    version: i16,
    correlation_id: i32,
    client_id: &str,
) {
    debug_assert!(
        (R::MIN_VERSION..=R::MAX_VERSION).contains(&version),
        "api {} version {} outside {}..={}",
        R::API_KEY,
        version,
        R::MIN_VERSION,
        R::MAX_VERSION
    );
    let start = out.len();
    out.put_i32(0);
    put_request_header(out, R::API_KEY, version, correlation_id, client_id);
    req.encode_body(version, out);
    let size = (out.len() - start - 4) as i32;
    out[start..start + 4].copy_from_slice(&size.to_be_bytes());
}

/// Encode a complete request frame as segments for a vectored write
/// (`write_vectored` / `writev`). Concatenating the segments yields exactly
/// what [`encode_request`] writes. Record batches of Produce requests
/// (every non-empty one: [`DEFAULT_MIN_SHARED`]) are returned as clones of
/// the caller's `Bytes` (no copy).
pub fn encode_request_vectored<R: Request>(
    req: &R,
    version: i16,
    correlation_id: i32,
    client_id: &str,
) -> Vec<Bytes> {
    encode_request_vectored_with(req, version, correlation_id, client_id, DEFAULT_MIN_SHARED)
}

/// [`encode_request_vectored`] with an explicit copy threshold.
pub fn encode_request_vectored_with<R: Request>(
    req: &R,
    version: i16,
    correlation_id: i32,
    client_id: &str,
    min_shared: usize,
) -> Vec<Bytes> {
    let mut w = VectoredWriter::new(min_shared);
    w.cur.put_i32(0);
    put_request_header(&mut w.cur, R::API_KEY, version, correlation_id, client_id);
    req.encode_body_vectored(version, &mut w);
    w.finish()
}

/// Decode a response frame (without its 4-byte size prefix): correlation id,
/// header tagged fields when the response header is v1, then the body.
/// Trailing bytes after the body are ignored.
pub fn decode_response<R: Request>(
    version: i16,
    frame: Bytes,
) -> Result<(i32, R::Response), DecodeError> {
    decode_response_slice::<R>(version, &frame)
}

/// [`decode_response`] over a borrowed slice.
pub fn decode_response_slice<R: Request>(
    version: i16,
    frame: &[u8],
) -> Result<(i32, R::Response), DecodeError> {
    if !(R::MIN_VERSION..=R::MAX_VERSION).contains(&version) {
        return Err(DecodeError::UnsupportedVersion { api_key: R::API_KEY, version });
    }
    let mut r = Reader::new(frame);
    let correlation_id = r.get_i32()?;
    if response_header_version(R::API_KEY, version) >= 1 {
        r.skip_tagged_fields()?;
    }
    let body = R::Response::decode_body(version, &mut r)?;
    Ok((correlation_id, body))
}

/// The correlation id at the start of a response frame (size prefix stripped).
pub fn peek_correlation_id(frame: &[u8]) -> Result<i32, DecodeError> {
    Reader::new(frame).get_i32()
}

/// Highest version in `ours ∩ broker` (inclusive ranges), if any.
pub fn negotiate(ours: (i16, i16), broker: (i16, i16)) -> Option<i16> {
    let lo = ours.0.max(broker.0);
    let hi = ours.1.min(broker.1);
    if lo <= hi {
        Some(hi)
    } else {
        None
    }
}

/// [`negotiate`] with `R`'s supported range.
pub fn negotiate_for<R: Request>(broker: (i16, i16)) -> Option<i16> {
    negotiate((R::MIN_VERSION, R::MAX_VERSION), broker)
}

// ---------------------------------------------------------------------------
// broker side (for mock brokers in tests): decode requests, encode responses

/// A request that can also be decoded (broker side).
pub trait DecodeRequest: Request + Sized {
    fn decode_body(version: i16, r: &mut Reader<'_>) -> Result<Self, DecodeError>;
}

/// A response that can also be encoded (broker side).
pub trait EncodeResponse {
    fn encode_body(&self, version: i16, out: &mut BytesMut);
}

/// A decoded request header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestHeader {
    pub api_key: i16,
    pub api_version: i16,
    pub correlation_id: i32,
    pub client_id: Option<String>,
}

/// Decode the request header of `frame` (size prefix already stripped);
/// returns the header and a reader positioned at the body.
pub fn decode_request_header(frame: &[u8]) -> Result<(RequestHeader, Reader<'_>), DecodeError> {
    let mut r = Reader::new(frame);
    let api_key = r.get_i16()?;
    let api_version = r.get_i16()?;
    let correlation_id = r.get_i32()?;
    let client_id = r.get_nullable_string()?;
    if request_header_version(api_key, api_version) >= 2 {
        r.skip_tagged_fields()?;
    }
    Ok((RequestHeader { api_key, api_version, correlation_id, client_id }, r))
}

/// Decode a whole request frame (size prefix stripped) as `R`.
pub fn decode_request<R: DecodeRequest>(frame: &[u8]) -> Result<(RequestHeader, R), DecodeError> {
    let (h, mut r) = decode_request_header(frame)?;
    if h.api_key != R::API_KEY {
        return Err(DecodeError::Invalid("request api key does not match the expected type"));
    }
    if !(R::MIN_VERSION..=R::MAX_VERSION).contains(&h.api_version) {
        return Err(DecodeError::UnsupportedVersion { api_key: h.api_key, version: h.api_version });
    }
    let body = R::decode_body(h.api_version, &mut r)?;
    Ok((h, body))
}

/// Append a complete response frame: size prefix, response header (v0, or v1
/// with empty tagged fields when flexible; always v0 for ApiVersions), body.
pub fn encode_response<T: EncodeResponse>(
    out: &mut BytesMut,
    api_key: i16,
    version: i16,
    correlation_id: i32,
    resp: &T,
) {
    let start = out.len();
    out.put_i32(0);
    out.put_i32(correlation_id);
    if response_header_version(api_key, version) >= 1 {
        put_empty_tagged_fields(out);
    }
    resp.encode_body(version, out);
    let size = (out.len() - start - 4) as i32;
    out[start..start + 4].copy_from_slice(&size.to_be_bytes());
}
