//! The fork server's messages fed hostile bytes, on both sides: the requests the server reads
//! (FORK with spec, environment and working directory, KILL, RELEASE) and the answers the
//! parent reads (READY, FORKED, FORK_FAILED, EXITED, REAPED). Only the parsing and building
//! of messages runs; nothing forks.
//!
//! Input: a selector byte (even: a request, odd: an answer), then one datagram.
//!
//! Invariants: no parser panics; what parses encodes to bytes that parse to the same encoding
//! again; when the message is ASCII (no text a lossy UTF-8 conversion could replace) and
//! every field was present, the encoding is exactly the bytes it was parsed from.

#![no_main]

use libfuzzer_sys::fuzz_target;
use pool_process::fuzzing;

fuzz_target!(|data: &[u8]| {
    let [selector, msg @ ..] = data else {
        return;
    };
    let parse = if selector % 2 == 0 {
        fuzzing::forkserver_request
    } else {
        fuzzing::forkserver_answer
    };
    let Some(first) = parse(msg) else {
        return;
    };
    assert_eq!(
        parse(&first).as_ref(),
        Some(&first),
        "not stable after one round trip"
    );
    // A KILL or RELEASE without its pid reads as pid 0 and encodes longer than it came.
    if msg.is_ascii() && first.len() <= msg.len() {
        assert!(
            msg.starts_with(&first),
            "does not re-encode to its own bytes"
        );
    }
});
