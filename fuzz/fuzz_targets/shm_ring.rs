//! The shared-memory channel against a hostile peer: a script of steps in which the peer
//! sends and receives by the rules, or writes what a broken or malicious process could write
//! into the shared file (the head and the data of the ring it produces into, the tail and the
//! large-payload release count of the ring it consumes from, its closed flag), while the side
//! under test sends and receives.
//!
//! Input: the script (see `pool-process/src/transport/shm/hostile.rs` for the step encoding).
//!
//! Invariants (checked inside the script runner): nothing panics, reads or writes outside the
//! mapping, or hangs; a receive returns a message or `TimedOut`, `UnexpectedEof` or
//! `InvalidData`; a direction the peer has not tampered with delivers exactly the messages
//! sent, in order.

#![no_main]

use libfuzzer_sys::fuzz_target;
use pool_process::fuzzing;

fuzz_target!(|script: &[u8]| {
    fuzzing::shm_script(script);
});
