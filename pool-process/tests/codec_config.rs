//! A codec's configuration: workers build `C::default()`, so a configured codec that encodes
//! differently is refused by `build()` with the reason, and one whose configuration is its
//! default works.

mod support;

use std::time::Duration;

use pool_codec::{Codec, CodecError, Json};
use pool_core::{Executor, Shutdown};
use pool_process::ProcessPool;
use serde::{Deserialize, Serialize};

/// JSON with every byte XORed with `key`.
#[derive(Clone, Copy, Debug, Default)]
struct Scrambled {
    key: u8,
}

impl Codec for Scrambled {
    fn name(&self) -> &'static str {
        "scrambled-json"
    }

    fn encode<T: Serialize + ?Sized>(
        &self,
        value: &T,
        out: &mut Vec<u8>,
    ) -> Result<(), CodecError> {
        let start = out.len();
        Json.encode(value, out)?;
        for b in &mut out[start..] {
            *b ^= self.key;
        }
        Ok(())
    }

    fn decode<'de, T: Deserialize<'de>>(&self, bytes: &'de [u8]) -> Result<T, CodecError> {
        let plain: Vec<u8> = bytes.iter().map(|b| b ^ self.key).collect();
        let value: serde_json::Value =
            serde_json::from_slice(&plain).map_err(|e| CodecError::decode::<T>(self.name(), e))?;
        T::deserialize(value).map_err(|e| CodecError::decode::<T>(self.name(), e))
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
