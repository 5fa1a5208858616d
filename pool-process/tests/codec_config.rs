//! A codec's configuration: each worker rebuilds the codec from `Codec::configuration` with
//! `Codec::configured`, so a configured codec works when it implements the two; one that
//! does not (workers would use `C::default()`) or that refuses its own configuration is
//! refused by `build()` with the reason; one whose configuration is its default works.

mod support;
#[path = "fixtures/xor_codec.rs"]
mod xor_codec;

use std::borrow::Cow;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use pool_codec::{Codec, CodecError};
use pool_core::{Executor, Shutdown};
use pool_process::ProcessPool;
use serde::Serialize;
use serde::de::DeserializeOwned;
use xor_codec::XorJson;

/// Values `Scrambled` encoded in this process (the parent: the arguments it sent).
static ENCODED: AtomicUsize = AtomicUsize::new(0);

/// `XorJson` (the named-worker fixture's codec: JSON with every byte XORed with `key`) that
/// counts what it encodes and does not send its key to the workers.
#[derive(Clone, Copy, Debug, Default)]
struct Scrambled {
    key: u8,
}

impl Codec for Scrambled {
    fn name(&self) -> Cow<'static, str> {
        Cow::Borrowed("scrambled-json")
    }

    fn encode<T: Serialize + ?Sized>(
        &self,
        value: &T,
        out: &mut Vec<u8>,
    ) -> Result<(), CodecError> {
        ENCODED.fetch_add(1, Ordering::SeqCst);
        XorJson { key: self.key }.encode(value, out)
    }

    fn decode<T: DeserializeOwned>(&self, bytes: &[u8]) -> Result<T, CodecError> {
        XorJson { key: self.key }.decode(bytes)
    }
}

/// `Scrambled`, with its key sent to the workers.
#[derive(Clone, Copy, Debug, Default)]
struct Keyed(Scrambled);

impl Codec for Keyed {
    fn name(&self) -> Cow<'static, str> {
        Cow::Borrowed("keyed-json")
    }
    fn encode<T: Serialize + ?Sized>(
        &self,
        value: &T,
        out: &mut Vec<u8>,
    ) -> Result<(), CodecError> {
        self.0.encode(value, out)
    }
    fn decode<T: DeserializeOwned>(&self, bytes: &[u8]) -> Result<T, CodecError> {
        self.0.decode(bytes)
    }
    fn configuration(&self) -> Vec<u8> {
        vec![self.0.key]
    }
    fn configured(configuration: &[u8]) -> Result<Self, CodecError> {
        match configuration {
            [key] if *key != 0xff => Ok(Keyed(Scrambled { key: *key })),
            other => Err(CodecError::decode::<Self>(
                "keyed-json",
                format!("a key is one byte other than 0xff, not {other:?}"),
            )),
        }
    }
}

/// `Keyed`, which must see every byte: no bytes fast path.
#[derive(Clone, Copy, Debug, Default)]
struct Sealed(Keyed);

impl Codec for Sealed {
    fn name(&self) -> Cow<'static, str> {
        Cow::Owned(format!("sealed+{}", self.0.name()))
    }
    fn encode<T: Serialize + ?Sized>(
        &self,
        value: &T,
        out: &mut Vec<u8>,
    ) -> Result<(), CodecError> {
        self.0.encode(value, out)
    }
    fn decode<T: DeserializeOwned>(&self, bytes: &[u8]) -> Result<T, CodecError> {
        self.0.decode(bytes)
    }
    fn configuration(&self) -> Vec<u8> {
        self.0.configuration()
    }
    fn configured(configuration: &[u8]) -> Result<Self, CodecError> {
        Keyed::configured(configuration).map(Sealed)
    }
    fn raw_bytes(&self) -> bool {
        false
    }
}

fn shout(s: String) -> String {
    s.to_uppercase()
}

#[test]
fn a_configuration_that_would_not_reach_the_workers_is_refused_at_build() {
    let guard = support::start("codec_config_refused", Duration::from_secs(60));
    let e = ProcessPool::builder()
        .codec(Scrambled { key: 0x5a })
        .build()
        .expect_err("refused");
    let msg = e.to_string();
    assert!(msg.contains("would not reach the workers"), "{msg}");
    assert!(msg.contains("Scrambled::default()"), "{msg}");
    assert!(msg.contains("Codec::configuration"), "{msg}");
    guard.finish(&[]);
}

#[test]
fn a_configuration_the_codec_sends_reaches_every_worker() {
    let guard = support::start("codec_config_sent", Duration::from_secs(60));
    let pool = ProcessPool::builder()
        .max_workers(2)
        .codec(Keyed(Scrambled { key: 0x5a }))
        .build()
        .unwrap();
    // Both directions go through the configured codec in the workers: a worker with the
    // default key would fail to decode the argument.
    assert_eq!(
        pool.submit(shout, "quiet".to_string())
            .unwrap()
            .result()
            .unwrap(),
        "QUIET"
    );
    let words: Vec<String> = (0..200).map(|i| format!("w{i}")).collect();
    let loud = pool.map_all(shout, words).unwrap();
    assert_eq!(loud[199], "W199");
    // Bytes cross raw (the codec did not opt out): the codec never sees them.
    let before = ENCODED.load(Ordering::SeqCst);
    assert_eq!(
        pool.apply(|v: Vec<u8>| v.len(), vec![1u8; 1000]).unwrap(),
        1000
    );
    assert_eq!(pool.apply(|n: usize| vec![7u8; n], 5).unwrap(), [7; 5]);
    assert_eq!(ENCODED.load(Ordering::SeqCst), before + 1); // the `5` only
    let mut pids = Vec::new();
    for _ in 0..2 {
        pids.push(
            pool.submit(support::worker_pid, ())
                .unwrap()
                .result()
                .unwrap(),
        );
    }
    pool.shutdown(Shutdown::Wait);
    guard.finish(&pids);
}

#[test]
fn a_codec_that_refuses_its_own_configuration_is_refused_at_build() {
    let guard = support::start("codec_config_bad", Duration::from_secs(60));
    let e = ProcessPool::builder()
        .codec(Keyed(Scrambled { key: 0xff }))
        .build()
        .expect_err("refused");
    let msg = e.to_string();
    assert!(msg.contains("refuses its own configuration"), "{msg}");
    assert!(msg.contains("other than 0xff"), "{msg}");
    guard.finish(&[]);
}

#[test]
fn a_codec_whose_configuration_is_its_default_works() {
    let guard = support::start("codec_config_default", Duration::from_secs(60));
    let pool = ProcessPool::builder()
        .max_workers(1)
        .codec(Scrambled::default())
        .build()
        .unwrap();
    assert_eq!(
        pool.submit(shout, "quiet".to_string())
            .unwrap()
            .result()
            .unwrap(),
        "QUIET"
    );
    let pid = pool
        .submit(support::worker_pid, ())
        .unwrap()
        .result()
        .unwrap();
    pool.shutdown(Shutdown::Wait);
    guard.finish(&[pid]);
}

#[test]
fn a_codec_that_opts_out_of_the_bytes_fast_path_sees_every_byte() {
    let guard = support::start("codec_config_sealed", Duration::from_secs(60));
    let pool = ProcessPool::builder()
        .max_workers(1)
        .codec(Sealed(Keyed(Scrambled { key: 0x21 })))
        .build()
        .unwrap();
    let before = ENCODED.load(Ordering::SeqCst);
    assert_eq!(
        pool.apply(
            |v: Vec<u8>| v.iter().map(|&b| u64::from(b)).sum::<u64>(),
            vec![3u8; 10]
        )
        .unwrap(),
        30
    );
    assert_eq!(
        ENCODED.load(Ordering::SeqCst),
        before + 1,
        "the codec saw the bytes"
    );
    assert_eq!(
        pool.submit(|n: usize| vec![9u8; n], 4)
            .unwrap()
            .result()
            .unwrap(),
        [9; 4]
    );
    let pid = pool
        .submit(support::worker_pid, ())
        .unwrap()
        .result()
        .unwrap();
    pool.shutdown(Shutdown::Wait);
    guard.finish(&[pid]);
}
