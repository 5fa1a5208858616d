//! Protocol-level bad input from a worker (the `misbehaving_worker` fixture binary, started
//! through `ProcessPool::worker_program`) never panics the parent, never allocates the
//! length a header claims, never hangs a caller, and fails only that worker: the pool gives
//! up after its start-failure limit with a `Broken` error that says why.

use std::time::Duration;

use pool_core::{Executor, Shutdown, TaskError};
use pool_process::ProcessPool;
use pool_process::transport::MAX_FRAME;
use pool_testkit::faults;
use pool_testkit::harness;
use pool_testkit::leaks;

const BOUND: Duration = Duration::from_secs(30);

fn pool(mode: &str) -> ProcessPool {
    ProcessPool::builder()
        .max_workers(1)
        .max_start_failures(2)
        .start_timeout(Duration::from_secs(1))
        .worker_program(env!("CARGO_BIN_EXE_misbehaving_worker"))
        .env("POOL_TESTKIT_MISBEHAVE", mode)
        .build()
        .expect("valid pool")
}

/// A worker that never completes a correct handshake: the submitted task fails with
/// `Broken` (repeated start failures), whose text mentions `expect`.
fn refused_at_start(mode: &str, expect: &[&str]) {
    let text = broken_reason(mode);
    assert!(
        expect.iter().any(|e| text.contains(e)),
        "{mode}: the reason does not say what went wrong (wanted one of {expect:?}): {text}"
    );
}

/// Runs a task on a pool of `mode` workers, which never complete a correct handshake: the
/// task fails with `Broken` (repeated start failures); returns the reason's text.
fn broken_reason(mode: &str) -> String {
    let guard = harness::start(&format!("protocol::{mode}"), Duration::from_secs(90));
    let rss_before = leaks::rss_bytes().unwrap_or(0);
    let pool = pool(mode);
    let fut = pool
        .submit(faults::ok, 1)
        .expect("accepted before any start failed");
    let r = fut
        .result_timeout(BOUND)
        .unwrap_or_else(|f| panic!("{mode}: not resolved within {BOUND:?}: {:?}", f.state()));
    let text = match &r {
        Err(TaskError::Broken(why)) => why.to_string(),
        other => panic!("{mode}: expected Broken after repeated start failures, got {other:?}"),
    };
    let rss_after = leaks::rss_bytes().unwrap_or(0);
    assert!(
        rss_after < rss_before + (256 << 20),
        "{mode}: the parent grew from {rss_before} to {rss_after} bytes (a claimed length was allocated?)"
    );
    let s = pool.stats();
    assert!(s.start_failures >= 2, "{mode}: {s:?}");
    pool.shutdown(Shutdown::Kill);
    drop(pool);
    guard.finish();
    text
}

#[test]
fn garbage_bytes() {
    refused_at_start(
        "garbage",
        &["malformed", "frame", "handshake", "too large", "exceed"],
    );
}

/// The parent refuses an oversized frame header without allocating, and says so: the
/// announced length, the maximum, and which worker (id and pid) sent it.
fn refused_for_announcing(mode: &str, announced: u64) {
    let text = broken_reason(mode);
    let what = format!(
        " broke the protocol during the handshake: a frame header announced {announced} bytes, \
         over the maximum of {MAX_FRAME} bytes"
    );
    let Some(at) = text.find(&what) else {
        panic!("{mode}: wanted {what:?} in: {text}");
    };
    // `worker #<id> (pid <pid>)` right before it.
    let who = &text[..at];
    let who = &who[who
        .rfind("worker #")
        .unwrap_or_else(|| panic!("{mode}: no worker id: {text}"))..];
    let ok = who
        .strip_prefix("worker #")
        .and_then(|r| r.split_once(" (pid "))
        .and_then(|(id, r)| Some((id, r.strip_suffix(')')?)))
        .is_some_and(|(id, pid)| id.parse::<u64>().is_ok() && pid.parse::<u32>().is_ok());
    assert!(
        ok,
        "{mode}: not `worker #<id> (pid <pid>)`: {who:?} in: {text}"
    );
}

#[test]
fn header_claiming_u32_max() {
    refused_for_announcing("huge_header", u64::from(u32::MAX));
}

#[test]
fn header_past_the_frame_limit() {
    refused_for_announcing("over_max", (1 << 30) + 1);
}

#[test]
fn frame_cut_in_the_middle_then_exit() {
    refused_at_start("cut_frame", &["exited", "handshake"]);
}

#[test]
fn frame_cut_in_the_middle_then_silence() {
    refused_at_start("cut_frame_hang", &["in time", "handshake"]);
}

#[test]
fn handshake_never_comes() {
    refused_at_start("silent", &["in time"]);
}

#[test]
fn malformed_hello() {
    refused_at_start("malformed_hello", &["malformed HELLO"]);
}

#[test]
fn wrong_protocol_version() {
    refused_at_start("wrong_version", &["protocol version 999"]);
}

#[test]
fn result_for_a_task_never_sent_instead_of_hello() {
    refused_at_start("reply_first", &["malformed HELLO", "handshake"]);
}

#[test]
fn wrong_codec_name() {
    refused_at_start("wrong_codec", &["codec mismatch", "bogus-codec"]);
}

/// After a correct handshake the worker answers each task, then sends one more reply.
/// That reply must never be taken for the next task's result: its sequence number is not
/// the next task's, so the parent kills the worker and fails the next task with an error
/// naming the worker, its pid and both sequence numbers. The pool then carries on with a
/// new worker.
fn extra_reply_is_a_protocol_violation(mode: &str, stray_seq: u64) {
    let guard = harness::start(&format!("protocol::{mode}"), Duration::from_secs(90));
    let pool = pool(mode);
    let first = pool
        .submit(faults::ok, 5)
        .expect("submit")
        .result_timeout(BOUND);
    assert!(matches!(first, Ok(Ok(5))), "{mode}: {first:?}");
    let second = pool
        .submit(faults::ok, 6)
        .expect("submit")
        .result_timeout(BOUND);
    match second {
        Ok(Err(TaskError::WorkerDied(d))) => {
            let text = d.to_string();
            let pid = d.pid.expect("a process worker has a pid");
            let wanted = format!(
                "protocol violation: {} (pid {pid}) replied with sequence number {stray_seq} \
                 while the oldest task in flight has 2",
                d.worker
            );
            assert!(
                text.contains(&wanted),
                "{mode}: wanted {wanted:?} in: {text}"
            );
            assert!(
                !leaks::alive(pid),
                "{mode}: the violating worker {pid} still runs"
            );
        }
        Ok(Ok(777)) => {
            panic!("{mode}: the unsolicited reply (777) was taken as the result of ok(6)")
        }
        Ok(other) => panic!("{mode}: expected WorkerDied for a protocol violation, got {other:?}"),
        Err(f) => panic!("{mode}: ok(6) unresolved: {:?}", f.state()),
    }
    // A new worker serves the next task (it misbehaves only after answering).
    let third = pool
        .submit(faults::ok, 7)
        .expect("submit")
        .result_timeout(BOUND);
    assert!(matches!(third, Ok(Ok(7))), "{mode}: {third:?}");
    pool.shutdown(Shutdown::Kill);
    drop(pool);
    guard.finish();
}

/// A result for a task never sent (sequence 0, which no request has), after the handshake.
#[test]
fn result_for_a_task_never_sent_after_the_handshake() {
    extra_reply_is_a_protocol_violation("stray_reply", 0);
}

/// The same reply twice (sequence 1 again, where the second task has 2).
#[test]
fn duplicated_reply_after_the_handshake() {
    extra_reply_is_a_protocol_violation("double_reply", 1);
}

/// After a correct handshake the worker answers a task with a frame header claiming
/// `u32::MAX` bytes: the task fails with `WorkerDied` saying what the worker sent (no
/// allocation of the claimed length), and the pool carries on with a new worker.
#[test]
fn oversized_reply_frame() {
    let guard = harness::start("protocol::huge_reply", Duration::from_secs(90));
    let rss_before = leaks::rss_bytes().unwrap_or(0);
    let pool = pool("huge_reply");
    for x in [5, 6] {
        let r = pool
            .submit(faults::ok, x)
            .expect("submit")
            .result_timeout(BOUND);
        match r {
            Ok(Err(TaskError::WorkerDied(d))) => {
                let text = d.to_string();
                let pid = d.pid.expect("a process worker has a pid");
                let wanted = format!(
                    "protocol violation: {} (pid {pid}) sent a corrupt frame: a frame header \
                     announced {} bytes, over the maximum of {MAX_FRAME} bytes",
                    d.worker,
                    u32::MAX
                );
                assert!(text.contains(&wanted), "wanted {wanted:?} in: {text}");
                assert!(!leaks::alive(pid), "the violating worker {pid} still runs");
            }
            other => panic!("ok({x}): expected WorkerDied for an oversized reply, got {other:?}"),
        }
    }
    let rss_after = leaks::rss_bytes().unwrap_or(0);
    assert!(
        rss_after < rss_before + (256 << 20),
        "the parent grew from {rss_before} to {rss_after} bytes (a claimed length was allocated?)"
    );
    pool.shutdown(Shutdown::Kill);
    drop(pool);
    guard.finish();
}
