//! Writes the seed corpora of the fuzz targets, `corpus/<target>/seed-<name>`, from the real
//! encoders: `cargo +nightly run --manifest-path fuzz/Cargo.toml --example seeds`.
//!
//! Every seed is small (a few hundred bytes at most) and the set is deterministic, so running
//! this again changes no committed file unless an encoder changed.

use std::fs;
use std::path::PathBuf;

use std::collections::BTreeMap;

use pool_codec::{Bincode, Codec, Json, MsgPack, Postcard, encode_frame, write_frame};
use pool_core::RemoteError;
use pool_process::fuzzing;
use pool_testkit::conformance::tasks::{Payload, Shape};

fn corpus(target: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("corpus")
        .join(target);
    fs::create_dir_all(&dir).expect("create the corpus directory");
    dir
}

fn seed(target: &str, name: &str, bytes: &[u8]) {
    let path = corpus(target).join(format!("seed-{name}"));
    fs::write(&path, bytes).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}

/// `frame_decoder`: `flags, max_lo, max_hi, chunk_seed`, then a stream of frames.
fn frame_decoder() {
    let with = |flags: u8, max: u16, chunk: u8, stream: &[u8]| {
        let mut s = vec![flags];
        s.extend_from_slice(&max.to_le_bytes());
        s.push(chunk);
        s.extend_from_slice(stream);
        s
    };
    let mut three = Vec::new();
    for payload in [&b"hello"[..], b"", b"world, a longer payload"] {
        write_frame(&mut three, payload).unwrap();
    }
    let mut values = Vec::new();
    encode_frame(&MsgPack, &("task", 42u32), &mut values).unwrap();
    encode_frame(&Postcard, &vec![1u64, 2, 3], &mut values).unwrap();
    encode_frame(&Json, &Some("x"), &mut values).unwrap();
    seed("frame_decoder", "three", &with(0, 64, 1, &three));
    seed("frame_decoder", "three-default-max", &with(1, 0, 7, &three));
    seed("frame_decoder", "would-block", &with(2 | 4, 100, 3, &three));
    seed("frame_decoder", "values", &with(1, 0, 0x5a, &values));
    seed("frame_decoder", "too-large", &with(0, 4, 9, &three));
    seed("frame_decoder", "cut-header", &with(0, 64, 2, &three[..7]));
    seed("frame_decoder", "cut-body", &with(0, 64, 2, &three[..12]));
    seed(
        "frame_decoder",
        "huge-claim",
        &with(1, 0, 1, &[0xff, 0xff, 0xff, 0x3f, 1]),
    );
    seed("frame_decoder", "empty-stream", &with(0, 0, 0, &[]));
}

/// `handshake`: a selector byte (which parser), then a real message.
fn handshake() {
    let with = |selector: u8, body: &[u8]| {
        let mut s = vec![selector];
        s.extend_from_slice(body);
        s
    };
    for (name, bytes) in fuzzing::handshake_samples() {
        let selector = match name {
            n if n.starts_with("hello") => 0,
            n if n.starts_with("setup") => 1,
            n if n.starts_with("ready") => 2,
            n if n.starts_with("spec") => 3,
            _ => 4,
        };
        seed("handshake", name, &with(selector, &bytes));
        if name == "panic-record" {
            // The same detail as a hook's failure: panicked (1), failed (4).
            seed(
                "handshake",
                "hook-panicked",
                &with(5, &[&[1][..], &bytes].concat()),
            );
        }
    }
    let mut failed = vec![4u8];
    failed.extend_from_slice(&(5u32).to_le_bytes());
    failed.extend_from_slice(b"no db");
    seed("handshake", "hook-failed", &with(5, &failed));
    let mut codec = vec![2u8];
    for s in ["alloc::string::String", "msgpack", "invalid type"] {
        codec.extend_from_slice(&(s.len() as u32).to_le_bytes());
        codec.extend_from_slice(s.as_bytes());
    }
    seed("handshake", "hook-decode-failed", &with(5, &codec));
    let [task, named, reply] = fuzzing::headers(-4096, 3, 0, 0);
    let seq = 77u64.to_le_bytes();
    seed(
        "handshake",
        "stamp-task",
        &with(6, &[&seq[..], &task].concat()),
    );
    seed(
        "handshake",
        "stamp-named",
        &with(6, &[&seq[..], &named].concat()),
    );
    let mut polled = named.clone();
    polled[0] |= 0x40;
    seed(
        "handshake",
        "stamp-named-poll",
        &with(6, &[&seq[..], &polled].concat()),
    );
    let [_, _, reply7] = fuzzing::headers(0, 0, 7, 1);
    seed("handshake", "seq-reply", &with(7, &reply7));
    seed("handshake", "seq-short", &with(7, &reply[..5]));
}

/// `codecs`: a codec byte, a type byte (see the target), then a real encoding.
fn codecs() {
    fn all<T: serde::Serialize>(ty: u8, name: &str, value: &T) {
        fn one<C: Codec, T: serde::Serialize>(c: &C, index: u8, ty: u8, name: &str, value: &T) {
            let mut s = vec![index, ty];
            c.encode(value, &mut s).expect("encode a seed");
            seed("codecs", &format!("{}-{name}", c.name()), &s);
        }
        one(&MsgPack, 0, ty, name, value);
        one(&Postcard, 1, ty, name, value);
        one(&Bincode::default(), 2, ty, name, value);
        one(&Json, 3, ty, name, value);
    }
    let chain = RemoteError::new("std::io::Error", "config.toml: not found")
        .with_source(RemoteError::new("dyn Error", "permission denied"));
    all(0, "remote-error", &chain);
    all(1, "result-ok", &Ok::<u64, RemoteError>(42));
    all(2, "result-err", &Err::<Vec<String>, _>(chain.clone()));
    all(3, "bytes", &vec![0u8, 1, 2, 255]);
    all(5, "string", &"hé, worker".to_owned());
    let payload = Payload {
        name: "conformance".into(),
        bytes: vec![9, 8, 7],
        maybe: Some(-3),
        shape: Shape::Rect { w: 3, h: 4 },
        nested: vec![(1, "one".into()), (2, "two".into())],
    };
    all(11, "payload", &payload);
    all(13, "shape", &Shape::Circle(1.5));
    let map: BTreeMap<String, Vec<u64>> = [("a".to_owned(), vec![1, u64::MAX])].into();
    all(14, "map", &map);
}

/// `forkserver`: a selector byte (even: request, odd: answer), then a real message.
fn forkserver() {
    for (name, bytes) in fuzzing::forkserver_samples() {
        let selector = u8::from(!matches!(name, "fork" | "kill" | "release"));
        let mut s = vec![selector];
        s.extend_from_slice(&bytes);
        seed("forkserver", name, &s);
    }
}

/// `shm_ring`: scripts of a hostile peer's steps.
fn shm_ring() {
    for (name, script) in fuzzing::shm_samples() {
        seed("shm_ring", name, &script);
    }
}

fn main() {
    frame_decoder();
    handshake();
    codecs();
    forkserver();
    shm_ring();
}
