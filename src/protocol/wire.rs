//! Kafka wire primitives.
//!
//! * [`Reader`]: a bounds-checked cursor over a byte slice. Every getter
//!   returns `Result<_, DecodeError>`; nothing here can panic on hostile input.
//!   Array lengths are validated against the bytes that remain (given a
//!   minimum encoded element size) *before* the caller allocates.
//! * `put_*` free functions: encoders that append to any [`BufMut`]
//!   (normally a `BytesMut`).
//! * `*_len` helpers: exact encoded sizes of varints.

use bytes::BufMut;

use super::DecodeError;

/// A 16-byte UUID as it travels on the wire (big-endian, most significant half first).
pub type Uuid = [u8; 16];

/// Bounds-checked reader over a byte slice.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    /// Bytes not yet consumed.
    #[inline]
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    #[inline]
    pub fn is_empty(&self) -> bool {
        self.remaining() == 0
    }

    /// Number of bytes consumed so far.
    #[inline]
    pub fn position(&self) -> usize {
        self.pos
    }

    /// The unconsumed tail.
    #[inline]
    pub fn rest(&self) -> &'a [u8] {
        &self.buf[self.pos..]
    }

    /// Consume exactly `n` bytes.
    #[inline]
    pub fn get_slice(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if n > self.remaining() {
            return Err(DecodeError::Truncated);
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    /// Skip `n` bytes.
    #[inline]
    #[cfg(any(test, feature = "fuzzing"))]
    pub fn skip(&mut self, n: usize) -> Result<(), DecodeError> {
        self.get_slice(n).map(|_| ())
    }

    #[inline]
    fn fixed<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let s = self.get_slice(N)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }

    #[inline]
    pub fn get_u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.fixed::<1>()?[0])
    }
    #[inline]
    pub fn get_i8(&mut self) -> Result<i8, DecodeError> {
        Ok(self.get_u8()? as i8)
    }
    /// Kafka booleans: any non-zero byte is `true`.
    #[inline]
    pub fn get_bool(&mut self) -> Result<bool, DecodeError> {
        Ok(self.get_u8()? != 0)
    }
    #[inline]
    pub fn get_i16(&mut self) -> Result<i16, DecodeError> {
        Ok(i16::from_be_bytes(self.fixed()?))
    }
    #[inline]
    pub fn get_i32(&mut self) -> Result<i32, DecodeError> {
        Ok(i32::from_be_bytes(self.fixed()?))
    }
    #[inline]
    #[cfg(any(test, feature = "fuzzing"))]
    pub fn get_u32(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_be_bytes(self.fixed()?))
    }
    #[inline]
    pub fn get_i64(&mut self) -> Result<i64, DecodeError> {
        Ok(i64::from_be_bytes(self.fixed()?))
    }
    #[inline]
    pub fn get_uuid(&mut self) -> Result<Uuid, DecodeError> {
        self.fixed()
    }

    /// Unsigned LEB128 varint of at most 5 bytes (Kafka `UNSIGNED_VARINT`).
    /// Like the Java implementation, bits beyond 32 in the fifth byte are ignored.
    pub fn get_uvarint(&mut self) -> Result<u32, DecodeError> {
        let mut value: u32 = 0;
        let mut shift = 0u32;
        loop {
            let b = self.get_u8()?;
            value |= ((b & 0x7f) as u32).wrapping_shl(shift);
            if b & 0x80 == 0 {
                return Ok(value);
            }
            shift += 7;
            if shift > 28 {
                return Err(DecodeError::Invalid("varint longer than 5 bytes"));
            }
        }
    }

    /// Unsigned LEB128 varlong of at most 10 bytes.
    pub fn get_uvarlong(&mut self) -> Result<u64, DecodeError> {
        let mut value: u64 = 0;
        let mut shift = 0u32;
        loop {
            let b = self.get_u8()?;
            value |= ((b & 0x7f) as u64).wrapping_shl(shift);
            if b & 0x80 == 0 {
                return Ok(value);
            }
            shift += 7;
            if shift > 63 {
                return Err(DecodeError::Invalid("varlong longer than 10 bytes"));
            }
        }
    }

    /// Zig-zag signed varint (record fields).
    #[inline]
    #[cfg(any(test, feature = "fuzzing"))]
    pub fn get_varint(&mut self) -> Result<i32, DecodeError> {
        let v = self.get_uvarint()?;
        Ok(((v >> 1) as i32) ^ -((v & 1) as i32))
    }

    /// Zig-zag signed varlong (record fields).
    #[inline]
    #[cfg(any(test, feature = "fuzzing"))]
    pub fn get_varlong(&mut self) -> Result<i64, DecodeError> {
        let v = self.get_uvarlong()?;
        Ok(((v >> 1) as i64) ^ -((v & 1) as i64))
    }

    fn utf8(bytes: &[u8]) -> Result<String, DecodeError> {
        match std::str::from_utf8(bytes) {
            Ok(s) => Ok(s.to_owned()),
            Err(_) => Err(DecodeError::Invalid("string is not valid UTF-8")),
        }
    }

    /// `STRING`: i16 length then UTF-8 bytes.
    pub fn get_string(&mut self) -> Result<String, DecodeError> {
        self.get_nullable_string()?.ok_or(DecodeError::Invalid("null in non-nullable string"))
    }

    /// `NULLABLE_STRING`: i16 length (-1 = null) then UTF-8 bytes.
    pub fn get_nullable_string(&mut self) -> Result<Option<String>, DecodeError> {
        let len = self.get_i16()?;
        match len {
            -1 => Ok(None),
            l if l < 0 => Err(DecodeError::Invalid("negative string length")),
            l => Self::utf8(self.get_slice(l as usize)?).map(Some),
        }
    }

    /// `COMPACT_STRING`: uvarint (length + 1) then UTF-8 bytes.
    pub fn get_compact_string(&mut self) -> Result<String, DecodeError> {
        self.get_compact_nullable_string()?
            .ok_or(DecodeError::Invalid("null in non-nullable compact string"))
    }

    /// `COMPACT_NULLABLE_STRING`: uvarint (length + 1, 0 = null) then UTF-8 bytes.
    pub fn get_compact_nullable_string(&mut self) -> Result<Option<String>, DecodeError> {
        match self.get_compact_nullable_bytes()? {
            None => Ok(None),
            Some(b) => Self::utf8(b).map(Some),
        }
    }

    /// `BYTES`: i32 length then bytes.
    pub fn get_bytes(&mut self) -> Result<&'a [u8], DecodeError> {
        self.get_nullable_bytes()?.ok_or(DecodeError::Invalid("null in non-nullable bytes"))
    }

    /// `NULLABLE_BYTES`: i32 length (-1 = null) then bytes.
    pub fn get_nullable_bytes(&mut self) -> Result<Option<&'a [u8]>, DecodeError> {
        let len = self.get_i32()?;
        match len {
            -1 => Ok(None),
            l if l < 0 => Err(DecodeError::Invalid("negative bytes length")),
            l => self.get_slice(l as usize).map(Some),
        }
    }

    /// `COMPACT_BYTES`.
    pub fn get_compact_bytes(&mut self) -> Result<&'a [u8], DecodeError> {
        self.get_compact_nullable_bytes()?
            .ok_or(DecodeError::Invalid("null in non-nullable compact bytes"))
    }

    /// `COMPACT_NULLABLE_BYTES`.
    pub fn get_compact_nullable_bytes(&mut self) -> Result<Option<&'a [u8]>, DecodeError> {
        let n = self.get_uvarint()?;
        if n == 0 {
            return Ok(None);
        }
        self.get_slice((n - 1) as usize).map(Some)
    }

    fn check_count(&self, n: usize, min_elem_size: usize) -> Result<usize, DecodeError> {
        // Every element takes at least `min_elem_size` (>= 1) bytes, so a count
        // above remaining / min size can never be satisfied: reject it before
        // anyone calls Vec::with_capacity(n).
        if n > self.remaining() / min_elem_size.max(1) {
            return Err(DecodeError::Truncated);
        }
        Ok(n)
    }

    /// `ARRAY` length (i32, non-nullable). `min_elem_size` is the smallest
    /// possible encoded size of one element (at least 1 is assumed).
    pub fn get_array_len(&mut self, min_elem_size: usize) -> Result<usize, DecodeError> {
        self.get_nullable_array_len(min_elem_size)?
            .ok_or(DecodeError::Invalid("null in non-nullable array"))
    }

    /// Nullable `ARRAY` length (i32, -1 = null).
    pub fn get_nullable_array_len(
        &mut self,
        min_elem_size: usize,
    ) -> Result<Option<usize>, DecodeError> {
        let n = self.get_i32()?;
        match n {
            -1 => Ok(None),
            n if n < 0 => Err(DecodeError::Invalid("negative array length")),
            n => self.check_count(n as usize, min_elem_size).map(Some),
        }
    }

    /// `COMPACT_ARRAY` length (uvarint N+1, non-nullable).
    pub fn get_compact_array_len(&mut self, min_elem_size: usize) -> Result<usize, DecodeError> {
        self.get_compact_nullable_array_len(min_elem_size)?
            .ok_or(DecodeError::Invalid("null in non-nullable compact array"))
    }

    /// `COMPACT_NULLABLE_ARRAY` length (uvarint N+1, 0 = null).
    pub fn get_compact_nullable_array_len(
        &mut self,
        min_elem_size: usize,
    ) -> Result<Option<usize>, DecodeError> {
        let n = self.get_uvarint()?;
        if n == 0 {
            return Ok(None);
        }
        self.check_count((n - 1) as usize, min_elem_size).map(Some)
    }

    // ---- version-aware helpers (flexible = compact encodings) ----

    /// Non-nullable string, compact when `flexible`.
    #[inline]
    pub fn string(&mut self, flexible: bool) -> Result<String, DecodeError> {
        if flexible {
            self.get_compact_string()
        } else {
            self.get_string()
        }
    }

    /// Nullable string, compact when `flexible`.
    #[inline]
    pub fn nullable_string(&mut self, flexible: bool) -> Result<Option<String>, DecodeError> {
        if flexible {
            self.get_compact_nullable_string()
        } else {
            self.get_nullable_string()
        }
    }

    /// Non-nullable array length, compact when `flexible`.
    #[inline]
    pub fn array_len(
        &mut self,
        flexible: bool,
        min_elem_size: usize,
    ) -> Result<usize, DecodeError> {
        if flexible {
            self.get_compact_array_len(min_elem_size)
        } else {
            self.get_array_len(min_elem_size)
        }
    }

    /// Nullable array length, compact when `flexible`.
    #[inline]
    pub fn nullable_array_len(
        &mut self,
        flexible: bool,
        min_elem_size: usize,
    ) -> Result<Option<usize>, DecodeError> {
        if flexible {
            self.get_compact_nullable_array_len(min_elem_size)
        } else {
            self.get_nullable_array_len(min_elem_size)
        }
    }

    /// Nullable bytes, compact when `flexible`.
    #[inline]
    pub fn nullable_bytes(&mut self, flexible: bool) -> Result<Option<&'a [u8]>, DecodeError> {
        if flexible {
            self.get_compact_nullable_bytes()
        } else {
            self.get_nullable_bytes()
        }
    }

    /// Decode an array of `i32` (non-nullable).
    pub fn i32_array(&mut self, flexible: bool) -> Result<Vec<i32>, DecodeError> {
        let n = self.array_len(flexible, 4)?;
        let mut v = Vec::with_capacity(n);
        for _ in 0..n {
            v.push(self.get_i32()?);
        }
        Ok(v)
    }

    /// Decode a non-nullable array whose elements are read by `f`.
    /// `min_elem_size` must be a lower bound of one element's encoded size.
    pub fn array<T>(
        &mut self,
        flexible: bool,
        min_elem_size: usize,
        mut f: impl FnMut(&mut Self) -> Result<T, DecodeError>,
    ) -> Result<Vec<T>, DecodeError> {
        let n = self.array_len(flexible, min_elem_size)?;
        let mut v = Vec::with_capacity(n);
        for _ in 0..n {
            v.push(f(self)?);
        }
        Ok(v)
    }

    /// Skip a tagged-field section (uvarint count, then tag/size/data triples).
    pub fn skip_tagged_fields(&mut self) -> Result<(), DecodeError> {
        self.read_tagged_fields(|_, _| Ok(()))
    }

    /// Read a tagged-field section, calling `f(tag, field_reader)` for each
    /// field; `field_reader` spans exactly the field's bytes (unread bytes are
    /// skipped). Unknown tags can simply be ignored by `f`.
    pub fn read_tagged_fields(
        &mut self,
        mut f: impl FnMut(u32, &mut Reader<'a>) -> Result<(), DecodeError>,
    ) -> Result<(), DecodeError> {
        let n = self.get_uvarint()?;
        // each field takes at least 2 bytes (tag + size)
        let n = self.check_count(n as usize, 2)?;
        for _ in 0..n {
            let tag = self.get_uvarint()?;
            let size = self.get_uvarint()? as usize;
            let data = self.get_slice(size)?;
            let mut sub = Reader::new(data);
            f(tag, &mut sub)?;
        }
        Ok(())
    }

    /// Read the trailing tagged fields of a structure if `flexible`.
    #[inline]
    pub fn tagged_fields_if(&mut self, flexible: bool) -> Result<(), DecodeError> {
        if flexible {
            self.skip_tagged_fields()
        } else {
            Ok(())
        }
    }
}

// ---------------------------------------------------------------------------
// size helpers

/// Encoded size of an unsigned varint.
#[inline]
pub const fn uvarint_len(v: u32) -> usize {
    // 1 + floor((bits - 1) / 7) for v > 0
    let bits = 32 - (v | 1).leading_zeros() as usize;
    bits.div_ceil(7)
}

/// Encoded size of an unsigned varlong.
#[inline]
pub const fn uvarlong_len(v: u64) -> usize {
    let bits = 64 - (v | 1).leading_zeros() as usize;
    bits.div_ceil(7)
}

#[inline]
const fn zigzag32(v: i32) -> u32 {
    ((v << 1) ^ (v >> 31)) as u32
}

#[inline]
pub const fn zigzag64(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

/// Encoded size of a zig-zag varint.
#[inline]
pub const fn varint_len(v: i32) -> usize {
    uvarint_len(zigzag32(v))
}

/// Encoded size of a zig-zag varlong.
#[inline]
pub const fn varlong_len(v: i64) -> usize {
    uvarlong_len(zigzag64(v))
}

// ---------------------------------------------------------------------------
// writers

#[inline]
pub fn put_uvarint<B: BufMut + ?Sized>(out: &mut B, mut v: u32) {
    while v >= 0x80 {
        out.put_u8((v as u8) | 0x80);
        v >>= 7;
    }
    out.put_u8(v as u8);
}

#[inline]
pub fn put_uvarlong<B: BufMut + ?Sized>(out: &mut B, mut v: u64) {
    while v >= 0x80 {
        out.put_u8((v as u8) | 0x80);
        v >>= 7;
    }
    out.put_u8(v as u8);
}

#[inline]
#[cfg(test)]
pub fn put_varint<B: BufMut + ?Sized>(out: &mut B, v: i32) {
    put_uvarint(out, zigzag32(v))
}

#[inline]
#[cfg(test)]
pub fn put_varlong<B: BufMut + ?Sized>(out: &mut B, v: i64) {
    put_uvarlong(out, zigzag64(v))
}

#[inline]
pub fn put_bool<B: BufMut + ?Sized>(out: &mut B, v: bool) {
    out.put_u8(v as u8)
}

#[inline]
pub fn put_uuid<B: BufMut + ?Sized>(out: &mut B, v: &Uuid) {
    out.put_slice(v)
}

/// `STRING` (i16 length). Strings longer than `i16::MAX` bytes are not
/// representable; callers must validate (topic names are <= 249 bytes).
#[inline]
pub fn put_string<B: BufMut + ?Sized>(out: &mut B, s: &str) {
    debug_assert!(s.len() <= i16::MAX as usize);
    out.put_i16(s.len() as i16);
    out.put_slice(s.as_bytes());
}

#[inline]
pub fn put_nullable_string<B: BufMut + ?Sized>(out: &mut B, s: Option<&str>) {
    match s {
        None => out.put_i16(-1),
        Some(s) => put_string(out, s),
    }
}

#[inline]
pub fn put_compact_string<B: BufMut + ?Sized>(out: &mut B, s: &str) {
    put_uvarint(out, s.len() as u32 + 1);
    out.put_slice(s.as_bytes());
}

#[inline]
pub fn put_compact_nullable_string<B: BufMut + ?Sized>(out: &mut B, s: Option<&str>) {
    match s {
        None => put_uvarint(out, 0),
        Some(s) => put_compact_string(out, s),
    }
}

#[inline]
pub fn put_bytes<B: BufMut + ?Sized>(out: &mut B, b: &[u8]) {
    out.put_i32(b.len() as i32);
    out.put_slice(b);
}

#[inline]
#[cfg(test)]
pub fn put_nullable_bytes<B: BufMut + ?Sized>(out: &mut B, b: Option<&[u8]>) {
    match b {
        None => out.put_i32(-1),
        Some(b) => put_bytes(out, b),
    }
}

#[inline]
pub fn put_compact_bytes<B: BufMut + ?Sized>(out: &mut B, b: &[u8]) {
    put_uvarint(out, b.len() as u32 + 1);
    out.put_slice(b);
}

#[inline]
#[cfg(test)]
pub fn put_compact_nullable_bytes<B: BufMut + ?Sized>(out: &mut B, b: Option<&[u8]>) {
    match b {
        None => put_uvarint(out, 0),
        Some(b) => put_compact_bytes(out, b),
    }
}

#[inline]
pub fn put_array_len<B: BufMut + ?Sized>(out: &mut B, n: usize) {
    out.put_i32(n as i32)
}

#[inline]
pub fn put_nullable_array_len<B: BufMut + ?Sized>(out: &mut B, n: Option<usize>) {
    match n {
        None => out.put_i32(-1),
        Some(n) => put_array_len(out, n),
    }
}

#[inline]
pub fn put_compact_array_len<B: BufMut + ?Sized>(out: &mut B, n: usize) {
    put_uvarint(out, n as u32 + 1)
}

#[inline]
pub fn put_compact_nullable_array_len<B: BufMut + ?Sized>(out: &mut B, n: Option<usize>) {
    match n {
        None => put_uvarint(out, 0),
        Some(n) => put_compact_array_len(out, n),
    }
}

/// An empty tagged-field section (a single 0 byte).
#[inline]
pub fn put_empty_tagged_fields<B: BufMut + ?Sized>(out: &mut B) {
    out.put_u8(0)
}

// ---- version-aware writers ----

/// Non-nullable string, compact when `flexible`.
#[inline]
pub fn put_str<B: BufMut + ?Sized>(out: &mut B, s: &str, flexible: bool) {
    if flexible {
        put_compact_string(out, s)
    } else {
        put_string(out, s)
    }
}

/// Nullable string, compact when `flexible`.
#[inline]
pub fn put_nullable_str<B: BufMut + ?Sized>(out: &mut B, s: Option<&str>, flexible: bool) {
    if flexible {
        put_compact_nullable_string(out, s)
    } else {
        put_nullable_string(out, s)
    }
}

/// Non-nullable array length, compact when `flexible`.
#[inline]
pub fn put_arr_len<B: BufMut + ?Sized>(out: &mut B, n: usize, flexible: bool) {
    if flexible {
        put_compact_array_len(out, n)
    } else {
        put_array_len(out, n)
    }
}

/// Nullable array length, compact when `flexible`.
#[inline]
pub fn put_nullable_arr_len<B: BufMut + ?Sized>(out: &mut B, n: Option<usize>, flexible: bool) {
    if flexible {
        put_compact_nullable_array_len(out, n)
    } else {
        put_nullable_array_len(out, n)
    }
}

/// Array of i32, compact length when `flexible`.
#[inline]
pub fn put_i32_array<B: BufMut + ?Sized>(out: &mut B, v: &[i32], flexible: bool) {
    put_arr_len(out, v.len(), flexible);
    for x in v {
        out.put_i32(*x);
    }
}

/// Empty tagged-field section when `flexible`, nothing otherwise.
#[inline]
pub fn put_tagged_fields_if<B: BufMut + ?Sized>(out: &mut B, flexible: bool) {
    if flexible {
        put_empty_tagged_fields(out)
    }
}

/// One tagged field: uvarint tag, uvarint size, then `data`.
#[inline]
pub fn put_tagged_field<B: BufMut + ?Sized>(out: &mut B, tag: u32, data: &[u8]) {
    put_uvarint(out, tag);
    put_uvarint(out, data.len() as u32);
    out.put_slice(data);
}
