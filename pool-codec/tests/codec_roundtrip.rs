//! Every built-in codec gives back exactly what it was given (proptest).

use std::collections::BTreeMap;

use pool_codec::{Bincode, Codec, Json, MsgPack, Postcard};
use proptest::prelude::*;
use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
enum Kind {
    Unit,
    Newtype(i64),
    Tuple(u8, String),
    Struct { a: Option<u32>, b: Vec<i16> },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Message {
    id: u64,
    small: i8,
    big: i128,
    flag: bool,
    ch: char,
    label: String,
    ints: Vec<u64>,
    maybe: Option<String>,
    kind: Kind,
    #[serde(with = "serde_bytes")]
    payload: Vec<u8>,
    map: BTreeMap<String, u32>,
    unit: (),
}

fn kind() -> impl Strategy<Value = Kind> {
    prop_oneof![
        Just(Kind::Unit),
        any::<i64>().prop_map(Kind::Newtype),
        (any::<u8>(), ".*").prop_map(|(a, b)| Kind::Tuple(a, b)),
        (
            any::<Option<u32>>(),
            prop::collection::vec(any::<i16>(), 0..8)
        )
            .prop_map(|(a, b)| Kind::Struct { a, b }),
    ]
}

prop_compose! {
    fn message()(
        id in any::<u64>(), small in any::<i8>(), big in any::<i128>(), flag in any::<bool>(),
        ch in any::<char>(), label in ".*", ints in prop::collection::vec(any::<u64>(), 0..64),
        maybe in proptest::option::of(".*"), kind in kind(),
        payload in prop::collection::vec(any::<u8>(), 0..300),
        map in prop::collection::btree_map(".*", any::<u32>(), 0..5),
    ) -> Message {
        Message { id, small, big, flag, ch, label, ints, maybe, kind, payload, map, unit: () }
    }
}

fn round_trip<C: Codec, T>(codec: &C, value: &T) -> Result<(), TestCaseError>
where
    T: Serialize + for<'de> Deserialize<'de> + PartialEq + std::fmt::Debug,
{
    // Encode behind a prefix: encode must append, not overwrite.
    let mut buf = b"xyz".to_vec();
    codec
        .encode(value, &mut buf)
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert_eq!(&buf[..3], b"xyz");
    let back: T = codec
        .decode(&buf[3..])
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert_eq!(&back, value, "codec {}", codec.name());
    Ok(())
}

fn all_codecs<T>(value: &T) -> Result<(), TestCaseError>
where
    T: Serialize + for<'de> Deserialize<'de> + PartialEq + std::fmt::Debug,
{
    round_trip(&Postcard, value)?;
    round_trip(&MsgPack, value)?;
    round_trip(&Bincode::default(), value)?;
    round_trip(&Json, value)?;
    round_trip(&pool_codec::DefaultCodec::default(), value)
}

proptest! {
    #[test]
    fn messages_round_trip(m in message()) {
        all_codecs(&m)?;
    }

    #[test]
    fn byte_bufs_round_trip(b in prop::collection::vec(any::<u8>(), 0..4096)) {
        all_codecs(&ByteBuf::from(b))?;
    }

    #[test]
    fn integer_vectors_round_trip(v in prop::collection::vec(any::<u64>(), 0..1000)) {
        all_codecs(&v)?;
    }
}

#[test]
fn names_are_distinct() {
    let names = [
        Postcard.name(),
        MsgPack.name(),
        Bincode::default().name(),
        Json.name(),
    ];
    for (i, a) in names.iter().enumerate() {
        for b in &names[i + 1..] {
            assert_ne!(a, b);
        }
    }
}

/// The default codec is self-describing, so serde features that need `deserialize_any`
/// (untagged and internally tagged enums, `flatten`, `serde_json::Value`) work with it.
/// postcard and bincode cannot decode these; that is one reason the default is MsgPack.
#[test]
fn default_codec_handles_self_describing_types() {
    #[derive(Serialize, Deserialize, PartialEq, Debug)]
    #[serde(untagged)]
    enum Arg {
        Num(i64),
        Text(String),
    }
    #[derive(Serialize, Deserialize, PartialEq, Debug)]
    #[serde(tag = "kind")]
    enum Tagged {
        A { x: u8 },
        B,
    }
    let codec = pool_codec::DefaultCodec::default();
    let v = (
        vec![Arg::Num(-3), Arg::Text("x".into())],
        Tagged::A { x: 1 },
        Tagged::B,
    );
    let mut buf = Vec::new();
    codec.encode(&v, &mut buf).unwrap();
    let back: (Vec<Arg>, Tagged, Tagged) = codec.decode(&buf).unwrap();
    assert_eq!(back, v);
    let json: serde_json::Value = serde_json::json!({"a": [1, "two", null]});
    buf.clear();
    codec.encode(&json, &mut buf).unwrap();
    assert_eq!(codec.decode::<serde_json::Value>(&buf).unwrap(), json);

    // postcard cannot: it is not self-describing.
    buf.clear();
    Postcard.encode(&v, &mut buf).unwrap();
    assert!(Postcard.decode::<(Vec<Arg>, Tagged, Tagged)>(&buf).is_err());
}

/// Found by the `codecs` fuzz target: JSON parsed some long decimals to a neighbouring
/// `f64`, so a float could change value between caller and worker.
#[test]
fn json_floats_survive_exactly() {
    use pool_codec::{Codec, Json};
    for text in [
        "5.5555555255555555e48",
        "0.30000000000000004",
        "2.2250738585072014e-308",
    ] {
        let x: f64 = text.parse().unwrap();
        let mut wire = Vec::new();
        Json.encode(&x, &mut wire).unwrap();
        let back: f64 = Json.decode(&wire).unwrap();
        assert_eq!(back.to_bits(), x.to_bits(), "{text}");
        let from_text: f64 = Json.decode(text.as_bytes()).unwrap();
        assert_eq!(from_text.to_bits(), x.to_bits(), "{text} as written");
    }
}
