//! Arbitrary, corrupt, truncated and padded input never panics any codec: it is an error
//! value (proptest).

use std::collections::BTreeMap;

use pool_codec::{Bincode, Codec, Direction, Json, MsgPack, Postcard};
use proptest::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
enum Shape {
    A,
    B(u32),
    C { s: String, v: Vec<u16> },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Task {
    id: u64,
    name: String,
    args: Vec<i32>,
    shape: Shape,
    #[serde(with = "serde_bytes")]
    blob: Vec<u8>,
    opt: Option<BTreeMap<String, u8>>,
}

fn task() -> impl Strategy<Value = Task> {
    (
        any::<u64>(),
        ".{0,20}",
        prop::collection::vec(any::<i32>(), 0..10),
        prop_oneof![
            Just(Shape::A),
            any::<u32>().prop_map(Shape::B),
            (".{0,5}", prop::collection::vec(any::<u16>(), 0..5))
                .prop_map(|(s, v)| Shape::C { s, v }),
        ],
        prop::collection::vec(any::<u8>(), 0..50),
        proptest::option::of(prop::collection::btree_map(".{0,4}", any::<u8>(), 0..3)),
    )
        .prop_map(|(id, name, args, shape, blob, opt)| Task {
            id,
            name,
            args,
            shape,
            blob,
            opt,
        })
}

/// Decodes `bytes` as several types; each must return (not panic), and every error must
/// name the codec and the decode direction.
fn decode_anything<C: Codec>(codec: &C, bytes: &[u8]) -> Result<(), TestCaseError> {
    fn one<C: Codec, T: for<'de> Deserialize<'de>>(
        codec: &C,
        bytes: &[u8],
    ) -> Result<(), TestCaseError> {
        if let Err(e) = codec.decode::<T>(bytes) {
            prop_assert_eq!(e.codec(), codec.name());
            prop_assert_eq!(e.direction(), Direction::Decode);
            prop_assert_eq!(e.type_name(), Some(std::any::type_name::<T>()));
        }
        Ok(())
    }
    one::<C, Task>(codec, bytes)?;
    one::<C, String>(codec, bytes)?;
    one::<C, Vec<String>>(codec, bytes)?;
    one::<C, Vec<u64>>(codec, bytes)?;
    one::<C, serde_bytes::ByteBuf>(codec, bytes)?;
    one::<C, BTreeMap<u32, Vec<u8>>>(codec, bytes)?;
    one::<C, (u8, char, bool, Option<i64>)>(codec, bytes)?;
    one::<C, Shape>(codec, bytes)
}

fn every_codec(bytes: &[u8]) -> Result<(), TestCaseError> {
    decode_anything(&Postcard, bytes)?;
    decode_anything(&MsgPack, bytes)?;
    decode_anything(&Bincode::default(), bytes)?;
    decode_anything(&pool_codec::BincodeLimited::<1024>, bytes)?;
    decode_anything(&Json, bytes)
}

fn encoded<C: Codec>(codec: &C, t: &Task) -> Vec<u8> {
    let mut buf = Vec::new();
    codec.encode(t, &mut buf).expect("encode");
    buf
}

/// A strict prefix of a struct's encoding is never a complete struct.
fn truncated_is_error<C: Codec>(
    codec: &C,
    t: &Task,
    cut: prop::sample::Index,
) -> Result<(), TestCaseError> {
    let buf = encoded(codec, t);
    let cut = cut.index(buf.len());
    let err = codec.decode::<Task>(&buf[..cut]);
    prop_assert!(
        err.is_err(),
        "{} accepted {} of {} bytes",
        codec.name(),
        cut,
        buf.len()
    );
    Ok(())
}

fn corrupt_never_panics<C: Codec>(
    codec: &C,
    t: &Task,
    flips: &[(prop::sample::Index, u8)],
) -> Result<(), TestCaseError> {
    let mut buf = encoded(codec, t);
    for (at, x) in flips {
        let i = at.index(buf.len());
        buf[i] ^= x | 1;
    }
    decode_anything(codec, &buf)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        every_codec(&bytes)?;
    }

    #[test]
    fn corrupted_encodings_never_panic(
        t in task(),
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
    ) {
        corrupt_never_panics(&Postcard, &t, &flips)?;
        corrupt_never_panics(&MsgPack, &t, &flips)?;
        corrupt_never_panics(&Bincode::default(), &t, &flips)?;
        corrupt_never_panics(&Json, &t, &flips)?;
    }

    #[test]
    fn truncated_encodings_are_errors(t in task(), cut in any::<prop::sample::Index>()) {
        truncated_is_error(&Postcard, &t, cut)?;
        truncated_is_error(&MsgPack, &t, cut)?;
        truncated_is_error(&Bincode::default(), &t, cut)?;
        truncated_is_error(&Json, &t, cut)?;
    }

    #[test]
    fn trailing_bytes_are_errors(t in task(), extra in prop::collection::vec(any::<u8>(), 1..8)) {
        // MsgPack cannot tell (documented); the others must refuse.
        for_each_strict(&t, &extra)?;
    }
}

fn for_each_strict(t: &Task, extra: &[u8]) -> Result<(), TestCaseError> {
    fn check<C: Codec>(codec: &C, t: &Task, extra: &[u8]) -> Result<(), TestCaseError> {
        let mut buf = encoded(codec, t);
        // JSON ignores trailing whitespace, so pad with a letter.
        buf.extend_from_slice(if codec.name() == "json" { b"x" } else { extra });
        prop_assert!(
            codec.decode::<Task>(&buf).is_err(),
            "{} ignored trailing bytes",
            codec.name()
        );
        Ok(())
    }
    check(&Postcard, t, extra)?;
    check(&Bincode::default(), t, extra)?;
    check(&Json, t, extra)
}

#[test]
fn encode_failure_names_codec_type_and_leaves_buffer() {
    // JSON maps need string keys; a map keyed by a tuple fails to encode.
    let mut m = BTreeMap::new();
    m.insert((1u8, 2u8), 3u8);
    let mut buf = b"keep".to_vec();
    let err = Json.encode(&m, &mut buf).unwrap_err();
    assert_eq!(buf, b"keep");
    assert!(err.is_encode());
    assert_eq!(err.codec(), "json");
    assert!(err.type_name().unwrap().contains("BTreeMap"), "{err}");
    assert!(err.to_string().contains("json could not encode"), "{err}");

    // A Serialize impl that fails, through every codec.
    struct Refuses;
    impl Serialize for Refuses {
        fn serialize<S: serde::Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
            Err(serde::ser::Error::custom("refused on purpose"))
        }
    }
    fn check<C: Codec>(codec: C) {
        let mut buf = b"keep".to_vec();
        let err = codec.encode(&(1u32, Refuses), &mut buf).unwrap_err();
        assert_eq!(buf, b"keep", "{} left partial output", codec.name());
        // postcard's error type carries no custom message (documented); the others do.
        if codec.name() != "postcard" {
            assert!(err.message().contains("refused on purpose"), "{err}");
        }
        assert!(!err.message().is_empty());
        assert!(err.is_encode());
    }
    check(Postcard);
    check(MsgPack);
    check(Bincode::default());
    check(Json);
}

#[test]
fn bincode_limit_refuses_lying_lengths() {
    // A String claiming 2^40 bytes, followed by 3 bytes.
    let mut bytes = (1u64 << 40).to_le_bytes().to_vec();
    bytes.extend_from_slice(b"abc");
    let err = Bincode::default().decode::<String>(&bytes).unwrap_err();
    assert!(err.message().to_lowercase().contains("limit"), "{err}");
}
