//! A codec defined outside pool-codec (here, in this test crate) plugs in through the
//! `Codec` trait and works with the framing helpers like any built-in codec.

use std::borrow::Cow;

use pool_codec::{Codec, CodecError, Direction, FrameDecoder, FrameReader, encode_frame};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// JSON, hex-encoded: every byte of the JSON text becomes two lowercase hex digits.
/// Decoding needs the JSON text back in memory, in a buffer of its own: a wrapping codec.
#[derive(Clone, Copy, Debug, Default)]
struct HexJson;

fn hex_val(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    }
}

impl Codec for HexJson {
    fn name(&self) -> Cow<'static, str> {
        Cow::Borrowed("hex-json")
    }

    fn encode<T: Serialize + ?Sized>(
        &self,
        value: &T,
        out: &mut Vec<u8>,
    ) -> Result<(), CodecError> {
        let json =
            serde_json::to_vec(value).map_err(|e| CodecError::encode::<T>(self.name(), e))?;
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        out.reserve(json.len() * 2);
        for b in json {
            out.push(DIGITS[usize::from(b >> 4)]);
            out.push(DIGITS[usize::from(b & 15)]);
        }
        Ok(())
    }

    fn decode<T: DeserializeOwned>(&self, bytes: &[u8]) -> Result<T, CodecError> {
        if !bytes.len().is_multiple_of(2) {
            return Err(CodecError::decode::<T>(
                self.name(),
                "odd number of hex digits",
            ));
        }
        let mut json = Vec::with_capacity(bytes.len() / 2);
        for pair in bytes.chunks_exact(2) {
            match (hex_val(pair[0]), hex_val(pair[1])) {
                (Some(h), Some(l)) => json.push(h << 4 | l),
                _ => return Err(CodecError::decode::<T>(self.name(), "not a hex digit")),
            }
        }
        // The JSON text is a temporary; values are owned, so they decode from it directly
        // (no detour through `serde_json::Value`, no leak).
        serde_json::from_slice(&json).map_err(|e| CodecError::decode::<T>(self.name(), e))
    }
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Job {
    id: u32,
    words: Vec<String>,
}

/// Generic code that only knows `C: Codec`, like the process pool.
fn send_and_receive<C: Codec>(codec: C, jobs: &[Job]) -> Vec<Job> {
    let codec_in_worker = C::default(); // how a worker builds its codec
    assert_eq!(codec_in_worker.name(), codec.name()); // the handshake's check
    let mut wire = Vec::new();
    for j in jobs {
        encode_frame(&codec, j, &mut wire).unwrap();
    }
    let mut r = FrameReader::new(&wire[..]);
    let mut out = Vec::new();
    while let Some(job) = r.read_value::<C, Job>(&codec_in_worker).unwrap() {
        out.push(job);
    }
    out
}

#[test]
fn user_codec_round_trips_through_frames() {
    let jobs = vec![
        Job {
            id: 1,
            words: vec!["a".into(), "b".into()],
        },
        Job {
            id: 2,
            words: vec![],
        },
    ];
    assert_eq!(send_and_receive(HexJson, &jobs), jobs);
    // The same generic code with a built-in codec, for comparison.
    assert_eq!(
        send_and_receive(pool_codec::DefaultCodec::default(), &jobs),
        jobs
    );
}

#[test]
fn user_codec_bytes_are_what_it_says() {
    let mut buf = Vec::new();
    HexJson.encode(&[1, 2], &mut buf).unwrap();
    assert_eq!(buf, b"5b312c325d"); // "[1,2]"
    let mut d = FrameDecoder::new();
    let mut wire = Vec::new();
    encode_frame(&HexJson, &"hi", &mut wire).unwrap();
    d.feed(&wire);
    assert_eq!(
        d.next_value::<_, String>(&HexJson).unwrap().as_deref(),
        Some("hi")
    );
}

#[test]
fn user_codec_errors_name_it() {
    let err = HexJson.decode::<Job>(b"zz").unwrap_err();
    assert_eq!(err.codec(), "hex-json");
    assert_eq!(err.direction(), Direction::Decode);
    assert!(err.type_name().unwrap().ends_with("Job"));
    assert!(
        err.to_string().starts_with("hex-json could not decode"),
        "{err}"
    );
    assert!(HexJson.decode::<Job>(b"abc").is_err());
}
