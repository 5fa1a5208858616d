//! Randomized-mutation fuzzing on stable: pool-codec's `FrameDecoder` and `FrameReader`
//! against a reference model, and every codec's `decode` on mutated inputs.
//!
//! Inputs start as valid streams (frames of codec-encoded values) and are mutated: bytes
//! flipped, inserted, deleted, headers overwritten with huge lengths (`u32::MAX`, one past
//! the limit, 2^30), streams cut short; they are fed in random chunk sizes with interruptions.
//! Invariants: no panic; the same frames or the same error as the model; memory bounded by
//! what arrived, never by what a header claims.
//!
//! `POOL_FUZZ_SECONDS` (default 3 per target) sets the budget; `POOL_FUZZ_SEED` replays.
//! The long runs for the README used `POOL_FUZZ_SECONDS=600`, under `nice -n 19`.

use std::collections::BTreeMap;
use std::io::Read;
use std::time::{Duration, Instant};

use pool_codec::{
    Bincode, Codec, FrameDecoder, FrameError, FrameReader, HEADER_LEN, Json, MsgPack, Postcard,
};
use pool_core::RemoteError;
use pool_testkit::conformance::tasks::{Payload, Shape};
use pool_testkit::rng::Rng;

fn budget() -> Duration {
    Duration::from_secs(
        std::env::var("POOL_FUZZ_SECONDS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(3),
    )
}

fn seed() -> u64 {
    pool_testkit::rng::seed_from_env("POOL_FUZZ_SEED")
}

fn payload(rng: &mut Rng) -> Payload {
    Payload {
        name: String::from_utf8_lossy(&rng.bytes_upto(12)).into_owned(),
        bytes: rng.bytes_upto(40),
        maybe: (rng.below(2) == 0).then(|| rng.next() as i64),
        shape: match rng.below(3) {
            0 => Shape::Empty,
            1 => Shape::Circle(rng.below(1000) as f64 / 7.0),
            _ => Shape::Rect {
                w: rng.next() as u32,
                h: rng.next() as u32,
            },
        },
        nested: (0..rng.below(4))
            .map(|i| (i as u16, "n".repeat(i as usize)))
            .collect(),
    }
}

/// A frame payload: a codec-encoded value or raw bytes.
fn frame_payload(rng: &mut Rng) -> Vec<u8> {
    let mut out = Vec::new();
    let p = payload(rng);
    match rng.below(5) {
        0 => MsgPack.encode(&p, &mut out).expect("encode"),
        1 => Postcard.encode(&p, &mut out).expect("encode"),
        2 => Bincode::default().encode(&p, &mut out).expect("encode"),
        3 => Json.encode(&p, &mut out).expect("encode"),
        _ => out = rng.bytes_upto(300),
    }
    out
}

fn valid_stream(rng: &mut Rng) -> Vec<u8> {
    let mut s = Vec::new();
    for _ in 0..rng.below(6) {
        pool_codec::write_frame(&mut s, &frame_payload(rng)).expect("write to a Vec");
    }
    s
}

fn mutate(rng: &mut Rng, s: &mut Vec<u8>, max: usize) {
    for _ in 0..=rng.below(4) {
        match rng.below(7) {
            0 if !s.is_empty() => {
                let i = rng.below(s.len() as u64) as usize;
                s[i] ^= 1 << rng.below(8);
            }
            1 => {
                let i = rng.below(s.len() as u64 + 1) as usize;
                let mut junk = rng.bytes_upto(16);
                junk.push(rng.next() as u8);
                s.splice(i..i, junk);
            }
            2 if !s.is_empty() => {
                let i = rng.below(s.len() as u64) as usize;
                let n = (rng.below(16) as usize + 1).min(s.len() - i);
                s.drain(i..i + n);
            }
            3 => {
                // A header claiming a huge length, somewhere.
                let claim: u32 = match rng.below(4) {
                    0 => u32::MAX,
                    1 => (max as u32).saturating_add(1),
                    2 => 1 << 30,
                    _ => rng.next() as u32,
                };
                let i = rng.below(s.len() as u64 + 1) as usize;
                s.splice(i..i, claim.to_le_bytes());
            }
            4 if !s.is_empty() => {
                let keep = rng.below(s.len() as u64) as usize;
                s.truncate(keep);
            }
            5 => s.extend(rng.bytes_upto(8)),
            _ => {}
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Step {
    Frame(Vec<u8>),
    TooLarge(usize),
    Truncated,
    End,
}

/// What a correct reader yields for `s` read to its end.
fn model(s: &[u8], max: usize) -> Vec<Step> {
    let mut out = Vec::new();
    let mut at = 0;
    loop {
        let rest = &s[at..];
        if rest.is_empty() {
            out.push(Step::End);
            return out;
        }
        if rest.len() < HEADER_LEN {
            out.push(Step::Truncated);
            return out;
        }
        let len = u32::from_le_bytes(rest[..4].try_into().expect("4 bytes")) as usize;
        if len > max {
            out.push(Step::TooLarge(len));
            return out;
        }
        if rest.len() < HEADER_LEN + len {
            out.push(Step::Truncated);
            return out;
        }
        out.push(Step::Frame(rest[4..4 + len].to_vec()));
        at += HEADER_LEN + len;
    }
}

fn step_of(r: Result<Option<&[u8]>, FrameError>) -> Option<Step> {
    match r {
        Ok(Some(f)) => Some(Step::Frame(f.to_vec())),
        Ok(None) => None,
        Err(FrameError::TooLarge { claimed, .. }) => Some(Step::TooLarge(claimed)),
        Err(FrameError::Truncated { .. }) => Some(Step::Truncated),
        Err(e) => panic!("unexpected frame error {e:?}"),
    }
}

fn run_decoder(rng: &mut Rng, s: &[u8], max: usize) -> Vec<Step> {
    let mut d = FrameDecoder::with_max_frame(max);
    let mut out = Vec::new();
    let mut fed = 0;
    let mut at = 0;
    while at < s.len() {
        let n = (rng.below(64) as usize + 1).min(s.len() - at);
        d.feed(&s[at..at + n]);
        fed += n;
        at += n;
        assert!(
            d.buffered() <= fed,
            "decoder buffers {} after {fed} fed",
            d.buffered()
        );
        loop {
            match step_of(d.next_frame()) {
                None => break,
                Some(Step::Frame(f)) => out.push(Step::Frame(f)),
                Some(other) => {
                    out.push(other);
                    return out;
                }
            }
        }
    }
    match d.finish() {
        Ok(()) => out.push(Step::End),
        Err(FrameError::Truncated { .. }) => out.push(Step::Truncated),
        Err(FrameError::TooLarge { claimed, .. }) => out.push(Step::TooLarge(claimed)),
        Err(e) => panic!("unexpected finish error {e:?}"),
    }
    out
}

/// Hands out a stream in random short reads, with `Interrupted` now and then.
struct Dribble<'a> {
    s: &'a [u8],
    rng: Rng,
    given: usize,
}

impl Read for Dribble<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.rng.below(10) == 0 {
            return Err(std::io::ErrorKind::Interrupted.into());
        }
        let n = (self.rng.below(64) as usize + 1)
            .min(buf.len())
            .min(self.s.len());
        buf[..n].copy_from_slice(&self.s[..n]);
        self.s = &self.s[n..];
        self.given += n;
        Ok(n)
    }
}

fn run_reader(rng: &mut Rng, s: &[u8], max: usize) -> Vec<Step> {
    let mut r = FrameReader::with_max_frame(
        Dribble {
            s,
            rng: Rng::new(rng.next() | 1),
            given: 0,
        },
        max,
    );
    let mut out = Vec::new();
    loop {
        let step = step_of(r.read_frame()).unwrap_or(Step::End);
        let given = r.get_ref().given;
        assert!(
            r.buffer_capacity() <= (64 << 10).max(2 * given),
            "reader holds {} bytes after receiving {given}",
            r.buffer_capacity()
        );
        let last = !matches!(step, Step::Frame(_));
        out.push(step);
        if last {
            return out;
        }
    }
}

#[test]
fn fuzz_frame_decoder_and_reader() {
    let seed = seed();
    let budget = budget();
    eprintln!("fuzz frames: seed {seed}, budget {budget:?}");
    let mut rng = Rng::new(seed);
    let started = Instant::now();
    let mut runs = 0u64;
    let mut outcomes: BTreeMap<&str, u64> = BTreeMap::new();
    while started.elapsed() < budget {
        let max = [64usize, 1 << 10, 1 << 20, pool_codec::DEFAULT_MAX_FRAME][rng.below(4) as usize];
        let mut s = valid_stream(&mut rng);
        if rng.below(8) != 0 {
            mutate(&mut rng, &mut s, max);
        }
        let want = model(&s, max);
        let got = run_decoder(&mut rng, &s, max);
        assert_eq!(got, want, "FrameDecoder on {s:?} (max {max}, seed {seed})");
        let got = run_reader(&mut rng, &s, max);
        assert_eq!(got, want, "FrameReader on {s:?} (max {max}, seed {seed})");
        let key = match want.last() {
            Some(Step::End) => "clean end",
            Some(Step::Truncated) => "truncated",
            Some(Step::TooLarge(_)) => "too large",
            _ => "other",
        };
        *outcomes.entry(key).or_default() += 1;
        runs += 1;
    }
    eprintln!(
        "fuzz frames: {runs} streams in {:?}: {outcomes:?}",
        started.elapsed()
    );
    assert!(runs > 0);
}

fn decode_all<C: Codec>(c: &C, b: &[u8]) {
    // Errors are fine; panics and unbounded allocation are not.
    let _ = c.decode::<Payload>(b);
    let _ = c.decode::<Vec<u64>>(b);
    let _ = c.decode::<Vec<String>>(b);
    let _ = c.decode::<(u32, Vec<u8>, Option<i64>)>(b);
    let _ = c.decode::<BTreeMap<String, Vec<i64>>>(b);
    let _ = c.decode::<RemoteError>(b);
    let _ = c.decode::<Result<u64, RemoteError>>(b);
}

#[test]
fn fuzz_codec_decode() {
    let seed = seed();
    let budget = budget();
    eprintln!("fuzz codecs: seed {seed}, budget {budget:?}");
    let mut rng = Rng::new(seed ^ 0x9e37_79b9_7f4a_7c15);
    let started = Instant::now();
    let mut runs = 0u64;
    let rss_before = pool_testkit::leaks::rss_bytes().unwrap_or(0);
    let mut rss_peak = rss_before;
    while started.elapsed() < budget {
        let mut b = frame_payload(&mut rng);
        if rng.below(8) != 0 {
            mutate(&mut rng, &mut b, 1 << 20);
        }
        decode_all(&MsgPack, &b);
        decode_all(&Postcard, &b);
        decode_all(&Bincode::default(), &b);
        decode_all(&Json, &b);
        runs += 1;
        if runs.is_multiple_of(1024) {
            rss_peak = rss_peak.max(pool_testkit::leaks::rss_bytes().unwrap_or(0));
        }
    }
    eprintln!(
        "fuzz codecs: {runs} inputs × 4 codecs × 7 types in {:?}; RSS {rss_before} -> peak {rss_peak}",
        started.elapsed()
    );
    // A length prefix must never be trusted for allocation: the inputs are at most a few
    // hundred bytes, so the process must not have grown by hundreds of MiB.
    assert!(
        rss_peak < rss_before + (256 << 20),
        "decoding small inputs grew RSS from {rss_before} to {rss_peak}"
    );
}
