//! The frame limit (1 GiB unless `max_frame_size` says otherwise): an argument too large for
//! one frame is refused at submit with an error naming its size and the limit; a result too
//! large is the task's encode failure and the worker lives on.

mod support;

use std::time::Duration;

use pool_codec::DEFAULT_MAX_FRAME;
use pool_core::{Executor, Shutdown, Side, SubmitErrorKind, TaskError};
use pool_process::ProcessPool;
use serde::{Deserialize, Serialize};

/// Serialized as one byte string: encoding it is one copy.
#[derive(Serialize, Deserialize)]
struct Blob(#[serde(with = "serde_bytes")] Vec<u8>);

fn blob_len(b: Blob) -> usize {
    b.0.len()
}

fn raw_len(b: Vec<u8>) -> usize {
    b.len()
}

fn huge_result(n: usize) -> Vec<u8> {
    vec![7u8; n]
}

fn refused_for_size(kind: &SubmitErrorKind) -> String {
    match kind {
        SubmitErrorKind::Encode(c) => {
            assert_eq!(c.side, Side::Parent);
            c.message.clone()
        }
        other => panic!("expected an encode refusal, got {other}"),
    }
}

#[test]
fn too_large_arguments_are_refused_at_submit_and_results_fail_only_their_task() {
    let guard = support::start("frame_limit", Duration::from_secs(120));
    let pool = ProcessPool::builder().max_workers(1).build().unwrap();
    let pid = pool
        .submit(support::worker_pid, ())
        .unwrap()
        .result()
        .unwrap();
    let limit = DEFAULT_MAX_FRAME.to_string();

    // The bytes fast path: the caller's vector comes back with the refusal.
    let raw = vec![0u8; DEFAULT_MAX_FRAME];
    let e = pool.submit(raw_len, raw).unwrap_err();
    let msg = refused_for_size(e.kind());
    assert!(msg.contains(&limit) && msg.contains("frame limit"), "{msg}");
    assert_eq!(
        e.into_task().expect("handed back").arg.len(),
        DEFAULT_MAX_FRAME
    );

    // Through the codec.
    let e = pool
        .submit(blob_len, Blob(vec![0u8; DEFAULT_MAX_FRAME]))
        .unwrap_err();
    let msg = refused_for_size(e.kind());
    assert!(msg.contains(&limit), "{msg}");
    assert!(e.to_string().contains("Blob"), "names the type: {e}");

    // Just under the limit still runs.
    let ok = pool.submit(raw_len, vec![1u8; 1 << 20]).unwrap();
    assert_eq!(ok.result(), Ok(1 << 20));

    // A result too large fails its task, naming size and limit; the worker lives on.
    let big = pool.submit(huge_result, DEFAULT_MAX_FRAME).unwrap();
    match big.result() {
        Err(TaskError::Encode(c)) => {
            assert_eq!(c.side, Side::Worker);
            assert!(
                c.message.contains(&limit) && c.message.contains("frame limit"),
                "{c}"
            );
        }
        other => panic!("expected the result's encode failure, got {other:?}"),
    }
    let again = pool
        .submit(support::worker_pid, ())
        .unwrap()
        .result()
        .unwrap();
    assert_eq!(again, pid, "the worker did not die for it");
    pool.shutdown(Shutdown::Wait);
    guard.finish(&[pid]);
}

#[test]
fn the_frame_limit_is_the_builders_on_both_sides_and_on_every_transport() {
    let guard = support::start("frame_limit_configured", Duration::from_secs(120));
    const MIB: usize = 1 << 20;
    let limit = MIB.to_string();
    let mut pids = Vec::new();
    for transport in [
        pool_process::TransportKind::Pipe,
        pool_process::TransportKind::LocalSocket,
        pool_process::TransportKind::Shm,
    ] {
        let pool = ProcessPool::builder()
            .max_workers(1)
            .transport(transport)
            .max_frame_size(MIB)
            .build()
            .unwrap();
        let pid = pool
            .submit(support::worker_pid, ())
            .unwrap()
            .result()
            .unwrap();
        pids.push(pid);
        // Arguments: raw and through the codec, refused at submit.
        let e = pool.submit(raw_len, vec![0u8; MIB]).unwrap_err();
        let msg = refused_for_size(e.kind());
        assert!(msg.contains(&limit), "{transport:?}: {msg}");
        let e = pool.submit(blob_len, Blob(vec![0u8; MIB])).unwrap_err();
        assert!(refused_for_size(e.kind()).contains(&limit), "{transport:?}");
        // Under it: runs.
        assert_eq!(pool.apply(raw_len, vec![1u8; MIB / 2]), Ok(MIB / 2));
        // A result over it: the task's encode failure in the worker, which lives on.
        match pool.apply(huge_result, MIB) {
            Err(TaskError::Encode(c)) => {
                assert_eq!(c.side, Side::Worker, "{transport:?}");
                assert!(c.message.contains(&limit), "{transport:?}: {c}");
            }
            other => panic!("{transport:?}: expected the result's encode failure, got {other:?}"),
        }
        assert_eq!(
            pool.apply(huge_result, MIB / 2).map(|v| v.len()),
            Ok(MIB / 2)
        );
        assert_eq!(
            pool.apply(support::worker_pid, ()),
            Ok(pid),
            "{transport:?}"
        );
        pool.shutdown(Shutdown::Wait);
    }
    // Raised above the default: a 1 GiB + 1 KiB argument crosses (raw, one copy each way).
    let big = DEFAULT_MAX_FRAME + 1024;
    let pool = ProcessPool::builder()
        .max_workers(1)
        .max_frame_size(DEFAULT_MAX_FRAME + MIB)
        .build()
        .unwrap();
    assert_eq!(pool.apply(raw_len, vec![3u8; big]), Ok(big));
    pids.push(pool.apply(support::worker_pid, ()).unwrap());
    pool.shutdown(Shutdown::Wait);
    // Out of range: refused at build, naming the range.
    for bad in [16, (2 << 30) + 1] {
        let e = ProcessPool::builder()
            .max_frame_size(bad)
            .build()
            .unwrap_err();
        assert!(e.to_string().contains("max_frame_size"), "{e}");
    }
    guard.finish(&pids);
}
