use bytes::BytesMut;
use proptest::prelude::*;

use crate::protocol::wire::*;
use crate::protocol::DecodeError;

fn enc<F: FnOnce(&mut BytesMut)>(f: F) -> Vec<u8> {
    let mut b = BytesMut::new();
    f(&mut b);
    b.to_vec()
}

#[test]
fn varint_known_encodings() {
    assert_eq!(enc(|b| put_varint(b, 0)), [0x00]);
    assert_eq!(enc(|b| put_varint(b, -1)), [0x01]);
    assert_eq!(enc(|b| put_varint(b, 1)), [0x02]);
    assert_eq!(enc(|b| put_varint(b, 63)), [0x7e]);
    assert_eq!(enc(|b| put_varint(b, -64)), [0x7f]);
    assert_eq!(enc(|b| put_varint(b, 64)), [0x80, 0x01]);
    assert_eq!(enc(|b| put_varint(b, 300)), [0xd8, 0x04]);
    assert_eq!(enc(|b| put_varint(b, i32::MAX)), [0xfe, 0xff, 0xff, 0xff, 0x0f]);
    assert_eq!(enc(|b| put_varint(b, i32::MIN)), [0xff, 0xff, 0xff, 0xff, 0x0f]);
    assert_eq!(
        enc(|b| put_varlong(b, i64::MIN)),
        [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]
    );
    assert_eq!(enc(|b| put_uvarint(b, 0)), [0]);
    assert_eq!(enc(|b| put_uvarint(b, 128)), [0x80, 0x01]);
    assert_eq!(enc(|b| put_uvarint(b, u32::MAX)), [0xff, 0xff, 0xff, 0xff, 0x0f]);
    for v in [0, 1, -1, 63, 64, -64, -65, 8191, 8192, i32::MAX, i32::MIN] {
        assert_eq!(varint_len(v), enc(|b| put_varint(b, v)).len(), "{v}");
    }
    for v in [0i64, -1, i64::MAX, i64::MIN, 1 << 35, -(1 << 56)] {
        assert_eq!(varlong_len(v), enc(|b| put_varlong(b, v)).len(), "{v}");
    }
}

#[test]
fn overlong_varints_are_rejected() {
    let six = [0x80u8, 0x80, 0x80, 0x80, 0x80, 0x00];
    assert!(Reader::new(&six).get_uvarint().is_err());
    let eleven = [0x80u8; 11];
    assert!(Reader::new(&eleven).get_uvarlong().is_err());
    assert_eq!(Reader::new(&[0x80]).get_uvarint(), Err(DecodeError::Truncated));
}

#[test]
fn hostile_lengths_do_not_allocate() {
    // i32::MAX elements announced, 3 bytes present
    let mut b = BytesMut::new();
    put_array_len(&mut b, i32::MAX as usize);
    b.extend_from_slice(&[1, 2, 3]);
    assert_eq!(Reader::new(&b).get_array_len(1), Err(DecodeError::Truncated));
    assert!(Reader::new(&b).i32_array(false).is_err());
    // compact array of u32::MAX - 1 elements
    let b = enc(|b| put_uvarint(b, u32::MAX));
    assert!(Reader::new(&b).get_compact_array_len(1).is_err());
    // huge strings / bytes
    assert_eq!(Reader::new(&[0x7f, 0xff, b'a']).get_string(), Err(DecodeError::Truncated));
    assert_eq!(Reader::new(&[0x7f, 0xff, 0xff, 0xff, 0]).get_bytes(), Err(DecodeError::Truncated));
    assert!(Reader::new(&[0xff, 0xfe]).get_nullable_string().is_err());
    assert_eq!(Reader::new(&[0xff, 0xff]).get_nullable_string(), Ok(None));
    assert!(Reader::new(&[0xff, 0xff]).get_string().is_err());
    // tagged fields: many fields announced
    let b = enc(|b| put_uvarint(b, 1 << 30));
    assert!(Reader::new(&b).skip_tagged_fields().is_err());
    // array len must respect the element size bound
    let mut b = BytesMut::new();
    put_array_len(&mut b, 3);
    b.extend_from_slice(&[0; 8]); // room for 2 i32 only
    assert!(Reader::new(&b).i32_array(false).is_err());
}

#[test]
fn tagged_fields_are_delivered_and_skipped() {
    let mut b = BytesMut::new();
    put_uvarint(&mut b, 2);
    put_uvarint(&mut b, 0);
    put_uvarint(&mut b, 4);
    b.extend_from_slice(&7i32.to_be_bytes());
    put_uvarint(&mut b, 9);
    put_uvarint(&mut b, 3);
    b.extend_from_slice(&[1, 2, 3]);
    b.extend_from_slice(&[0xAA]);
    let mut r = Reader::new(&b);
    let mut seen = vec![];
    r.read_tagged_fields(|tag, f| {
        if tag == 0 {
            seen.push(f.get_i32()?);
        } else {
            seen.push(-(tag as i32));
        }
        Ok(())
    })
    .unwrap();
    assert_eq!(seen, vec![7, -9]);
    assert_eq!(r.get_u8().unwrap(), 0xAA);
    // a field whose size overruns the buffer
    let bad = [1u8, 0, 10, 1, 2];
    assert_eq!(Reader::new(&bad).skip_tagged_fields(), Err(DecodeError::Truncated));
}

proptest! {
    #[test]
    fn varint_roundtrip(v in any::<i32>()) {
        let b = enc(|b| put_varint(b, v));
        prop_assert_eq!(b.len(), varint_len(v));
        let mut r = Reader::new(&b);
        prop_assert_eq!(r.get_varint().unwrap(), v);
        prop_assert!(r.is_empty());
    }

    #[test]
    fn varlong_roundtrip(v in any::<i64>()) {
        let b = enc(|b| put_varlong(b, v));
        prop_assert_eq!(b.len(), varlong_len(v));
        let mut r = Reader::new(&b);
        prop_assert_eq!(r.get_varlong().unwrap(), v);
        prop_assert!(r.is_empty());
    }

    #[test]
    fn uvarint_roundtrip(v in any::<u32>(), w in any::<u64>()) {
        let b = enc(|b| { put_uvarint(b, v); put_uvarlong(b, w); });
        prop_assert_eq!(b.len(), uvarint_len(v) + uvarlong_len(w));
        let mut r = Reader::new(&b);
        prop_assert_eq!(r.get_uvarint().unwrap(), v);
        prop_assert_eq!(r.get_uvarlong().unwrap(), w);
        prop_assert!(r.is_empty());
    }

    #[test]
    fn fixed_and_string_roundtrip(
        a in any::<i8>(), b16 in any::<i16>(), c in any::<i32>(), d in any::<i64>(), u in any::<u32>(),
        s in ".{0,40}", ns in proptest::option::of(".{0,40}"),
        bytes in proptest::collection::vec(any::<u8>(), 0..64),
        nbytes in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..64)),
        uuid in any::<[u8; 16]>(), flag in any::<bool>(),
    ) {
        let buf = enc(|o| {
            use bytes::BufMut;
            o.put_i8(a); o.put_i16(b16); o.put_i32(c); o.put_i64(d); o.put_u32(u);
            put_string(o, &s); put_nullable_string(o, ns.as_deref());
            put_compact_string(o, &s); put_compact_nullable_string(o, ns.as_deref());
            put_bytes(o, &bytes); put_nullable_bytes(o, nbytes.as_deref());
            put_compact_bytes(o, &bytes); put_compact_nullable_bytes(o, nbytes.as_deref());
            put_uuid(o, &uuid); put_bool(o, flag);
            put_str(o, &s, flag); put_nullable_str(o, ns.as_deref(), flag);
            put_i32_array(o, &[c, 1, 2], flag);
            put_nullable_arr_len(o, None, flag);
            put_tagged_fields_if(o, flag);
        });
        let mut r = Reader::new(&buf);
        prop_assert_eq!(r.get_i8().unwrap(), a);
        prop_assert_eq!(r.get_i16().unwrap(), b16);
        prop_assert_eq!(r.get_i32().unwrap(), c);
        prop_assert_eq!(r.get_i64().unwrap(), d);
        prop_assert_eq!(r.get_u32().unwrap(), u);
        prop_assert_eq!(&r.get_string().unwrap(), &s);
        prop_assert_eq!(&r.get_nullable_string().unwrap(), &ns);
        prop_assert_eq!(&r.get_compact_string().unwrap(), &s);
        prop_assert_eq!(&r.get_compact_nullable_string().unwrap(), &ns);
        prop_assert_eq!(r.get_bytes().unwrap(), &bytes[..]);
        prop_assert_eq!(r.get_nullable_bytes().unwrap(), nbytes.as_deref());
        prop_assert_eq!(r.get_compact_bytes().unwrap(), &bytes[..]);
        prop_assert_eq!(r.get_compact_nullable_bytes().unwrap(), nbytes.as_deref());
        prop_assert_eq!(r.get_uuid().unwrap(), uuid);
        prop_assert_eq!(r.get_bool().unwrap(), flag);
        prop_assert_eq!(&r.string(flag).unwrap(), &s);
        prop_assert_eq!(&r.nullable_string(flag).unwrap(), &ns);
        prop_assert_eq!(r.i32_array(flag).unwrap(), vec![c, 1, 2]);
        prop_assert_eq!(r.nullable_array_len(flag, 1).unwrap(), None);
        r.tagged_fields_if(flag).unwrap();
        prop_assert!(r.is_empty());
    }

    #[test]
    fn reader_never_panics_on_random_bytes(data in proptest::collection::vec(any::<u8>(), 0..64)) {
        let mut r = Reader::new(&data);
        let _ = r.get_compact_string();
        let _ = r.get_nullable_string();
        let _ = r.get_varlong();
        let _ = r.get_compact_nullable_bytes();
        let _ = r.skip_tagged_fields();
        let _ = r.i32_array(true);
        let _ = r.get_array_len(1);
    }
}
