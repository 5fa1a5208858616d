//! The custom-codec example's `Deflated<C>`: a wrapping codec with configuration, used by a
//! process pool — its level reaches the workers, byte vectors go through it, a corrupt or
//! bomb-like message is an error, and a wrong configuration is refused at build.

#[path = "../examples/custom_codec/deflated.rs"]
mod deflated;

use std::time::Duration;

use deflated::Deflated;
use pool::codec::{Codec, Json, MsgPack};
use pool::{Executor, ProcessPool, Shutdown, TaskError};
use pool_testkit::harness;

fn shout(s: String) -> String {
    s.to_uppercase()
}

fn total(v: Vec<u8>) -> u64 {
    v.iter().map(|&b| u64::from(b)).sum()
}

fn zeros(n: usize) -> Vec<u8> {
    vec![0; n]
}

#[test]
fn the_codec_round_trips_and_names_itself_after_the_inner_one() {
    for level in 0..=9 {
        let c = Deflated::new(level, Json);
        assert_eq!(c.name(), "deflate+json");
        let mut out = b"header".to_vec();
        c.encode(&("text", 42u32), &mut out).unwrap();
        assert_eq!(&out[..6], b"header");
        let back: (String, u32) = c.decode(&out[6..]).unwrap();
        assert_eq!(back, ("text".to_string(), 42));
        let again = Deflated::<Json>::configured(&c.configuration()).unwrap();
        assert_eq!(again, c);
    }
    assert!(Deflated::<MsgPack>::configured(&[10]).is_err());
    assert!(Deflated::<MsgPack>::configured(&[]).is_err());
    let c = Deflated::<MsgPack>::default();
    assert!(c.decode::<String>(b"not zlib").unwrap_err().is_decode());
    // A bomb: 64 MiB of zeros deflate ~1 029 to 1, past the codec's 1 024 bound, so the
    // decoder stops instead of allocating them.
    let mut bomb = Vec::new();
    Deflated::new(9, MsgPack)
        .encode(&serde_bytes::ByteBuf::from(vec![0u8; 64 << 20]), &mut bomb)
        .unwrap();
    let err = c.decode::<serde_bytes::ByteBuf>(&bomb).unwrap_err();
    assert!(err.message().contains("more than 1024 times"), "{err}");
    assert!(err.is_decode(), "{err}");
}

#[test]
fn a_pool_with_the_codec_runs_tasks_maps_and_bytes_through_it() {
    let guard = harness::start("custom_codec_pool", Duration::from_secs(60));
    let pool = ProcessPool::builder()
        .max_workers(2)
        .codec(Deflated::new(9, MsgPack))
        .build()
        .unwrap();
    assert_eq!(pool.codec().level(), 9);
    assert_eq!(
        pool.submit(shout, "quiet".into())
            .unwrap()
            .result()
            .unwrap(),
        "QUIET"
    );
    let words: Vec<String> = (0..500).map(|i| format!("word {i}")).collect();
    let loud = pool.map_all(shout, words).unwrap();
    assert_eq!(loud[499], "WORD 499");
    assert_eq!(pool.apply(total, vec![2u8; 100_000]).unwrap(), 200_000);
    assert_eq!(pool.apply(zeros, 1 << 20).unwrap().len(), 1 << 20);
    // A task's failure still arrives through the codec.
    let r = pool.apply(|s: String| -> usize { panic!("no {s}") }, "way".into());
    assert!(matches!(r, Err(TaskError::Panicked(p)) if p.message == "no way"));
    pool.shutdown(Shutdown::Wait);
    drop(pool);
    guard.finish();
}
