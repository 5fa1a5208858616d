//! pool-process's worker protocol fed hostile bytes: HELLO, SETUP and READY frames, the
//! worker's start-up spec, panic records, hook failure details, request and reply headers.
//!
//! Input: a selector byte (which parser, modulo 8), then the bytes for it.
//!
//! Invariants: no parser panics; what parses encodes to bytes that parse to the same
//! encoding again (a fixed point after one round); messages without text that a lossy UTF-8
//! conversion could change re-encode to exactly the bytes they were parsed from; a stamped
//! request header keeps its kind and body and carries the new sequence number.

#![no_main]

use libfuzzer_sys::fuzz_target;
use pool_process::fuzzing;

/// Checks that `again` is a fixed point of `parse_and_encode`.
fn fixed_point<T: PartialEq + std::fmt::Debug + Clone>(
    again: Option<T>,
    parse_and_encode: impl Fn(&T) -> Option<T>,
) -> Option<T> {
    let first = again?;
    let second = parse_and_encode(&first);
    assert_eq!(
        second.as_ref(),
        Some(&first),
        "not stable after one round trip"
    );
    Some(first)
}

fuzz_target!(|data: &[u8]| {
    let [selector, body @ ..] = data else {
        return;
    };
    // When the whole input is valid UTF-8, so is every string in it: nothing is replaced.
    // ASCII only: a body valid as UTF-8 as a whole can still have a field boundary inside a
    // multi-byte character, which the lossy conversion of that field then replaces.
    let text = body.is_ascii();
    match selector % 8 {
        0 => {
            let e = fixed_point(fuzzing::hello(body), |e| fuzzing::hello(e));
            if let Some(e) = e.filter(|_| text) {
                assert!(
                    body.starts_with(&e),
                    "HELLO does not re-encode to its bytes"
                );
            }
        }
        1 => {
            if let Some(e) = fixed_point(fuzzing::setup(body), |e| fuzzing::setup(e)) {
                assert!(
                    body.starts_with(&e),
                    "SETUP does not re-encode to its bytes"
                );
            }
        }
        2 => {
            let e = fixed_point(fuzzing::ready(body), |e| fuzzing::ready(e));
            if let Some(e) = e.filter(|_| text) {
                assert_eq!(e, body, "READY does not re-encode to its bytes");
            }
        }
        3 => {
            let spec = String::from_utf8_lossy(body);
            fixed_point(fuzzing::worker_spec(&spec), |e| fuzzing::worker_spec(e));
        }
        4 => {
            let e = fixed_point(fuzzing::panic_record(body), |e| fuzzing::panic_record(e));
            if let Some(e) = e.filter(|_| text) {
                assert!(
                    body.starts_with(&e),
                    "a panic record does not re-encode to its bytes"
                );
            }
        }
        5 => {
            let [outcome, detail @ ..] = body else {
                return;
            };
            let described = fuzzing::hook_failure(*outcome, detail);
            assert_eq!(described.is_some(), *outcome <= 4, "outcome byte {outcome}");
        }
        6 => {
            if body.len() < 8 {
                return;
            }
            let (seq, header) = body.split_at(8);
            let seq = u64::from_le_bytes(seq.try_into().unwrap());
            match fuzzing::stamp_seq(header, seq) {
                Some(stamped) => {
                    let (kind, _) = fuzzing::request_kind(header[0]);
                    let len = match kind {
                        2 => 17,
                        4 => 13,
                        other => panic!("kind {other} was stamped"),
                    };
                    assert_eq!(stamped.len(), len);
                    assert_eq!(header.len(), len);
                    assert_eq!(stamped[0], header[0]);
                    assert_eq!(stamped[9..], header[9..]);
                    assert_eq!(fuzzing::seq_of(&stamped), seq);
                }
                None => {
                    let kind = header.first().map(|&k| fuzzing::request_kind(k).0);
                    let len = match kind {
                        Some(2) => Some(17),
                        Some(4) => Some(13),
                        _ => None,
                    };
                    assert!(len != Some(header.len()), "a request header was refused");
                }
            }
        }
        _ => {
            let seq = fuzzing::seq_of(body);
            let expected = body
                .get(1..9)
                .map_or(0, |b| u64::from_le_bytes(b.try_into().unwrap()));
            assert_eq!(seq, expected);
            if let Some(&k) = body.first() {
                let (kind, poll) = fuzzing::request_kind(k);
                assert_eq!(kind | if poll { 0x40 } else { 0 }, k);
                assert_eq!(kind & 0x40, 0);
            }
        }
    }
});
