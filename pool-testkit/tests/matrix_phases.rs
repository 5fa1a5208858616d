//! The phases × faults matrix on `ProcessPool` (default policy: a dead worker is replaced).
//!
//! One test per fault kind; each runs the fault in every phase where it can happen, on one
//! pool, and asserts for each: the faulty future resolves with the matching `TaskError`
//! within a bound, bystanders queued before and after it succeed, the pool serves the next
//! task; at the end, no descendant process and no descriptor outlives the pool.

use std::time::Duration;

use pool_core::{Executor, Side, SubmitErrorKind, SubmitOptions};
use pool_process::{ProcessPool, TransportKind};
use pool_testkit::faults::{self, Fault, Faulty, Phase};
use pool_testkit::harness;
use pool_testkit::matrix::{expect_for, settle_bystanders, submit_bystanders};

/// How long a faulty future may take to resolve (a crash is seen at once; a hang waits for
/// its timeout).
const BOUND: Duration = Duration::from_secs(20);
/// The per-task timeout used where the fault is a hang.
const HANG_TIMEOUT: Duration = Duration::from_millis(400);

fn pool(transport: TransportKind) -> ProcessPool {
    ProcessPool::builder()
        .max_workers(2)
        .transport(transport)
        .build()
        .expect("valid pool")
}

fn opts(fault: Fault) -> SubmitOptions {
    let o = SubmitOptions::new().label(format!("faulty {}", fault.name()));
    if fault == Fault::Hang {
        o.timeout(HANG_TIMEOUT)
    } else {
        o
    }
}

/// A worker-side codec phase: the faulty value rides through `pass_through`.
fn worker_phase(pool: &ProcessPool, fault: Fault, phase: Phase) {
    let what = format!("{} in {}", fault.name(), phase.name());
    let before = submit_bystanders(pool, 0);
    let fut = pool_core::Submit::submit_with(
        pool,
        pool_core::Call {
            f: faults::pass_through,
            arg: Faulty::new(fault, phase, 7),
        },
        opts(fault),
    )
    .unwrap_or_else(|e| panic!("{what}: submit refused: {e}"));
    let after = submit_bystanders(pool, 100);
    let got = fut
        .result_timeout(BOUND)
        .unwrap_or_else(|f| panic!("{what}: not resolved within {BOUND:?}: {:?}", f.state()));
    let got = got.map(|v| v.payload);
    expect_for(fault, Some(phase)).check(&what, &got);
    settle_bystanders(&what, before, BOUND);
    settle_bystanders(&what, after, BOUND);
}

/// The task itself commits the fault.
fn run_phase(pool: &ProcessPool, fault: Fault) {
    let what = format!("{} in the task", fault.name());
    let before = submit_bystanders(pool, 0);
    let fut = pool_core::Submit::submit_with(
        pool,
        pool_core::Call {
            f: faults::run_fault,
            arg: fault,
        },
        opts(fault),
    )
    .unwrap_or_else(|e| panic!("{what}: submit refused: {e}"));
    let after = submit_bystanders(pool, 100);
    let got = fut
        .result_timeout(BOUND)
        .unwrap_or_else(|f| panic!("{what}: not resolved within {BOUND:?}: {:?}", f.state()));
    match (fault, &got) {
        (Fault::Error, Ok(Err(e))) => {
            assert!(e.message().contains("injected error"), "{what}: {e:?}");
            let src = std::error::Error::source(e).expect("the chain kept its source");
            assert!(
                src.to_string().contains(faults::INNER_ERROR),
                "{what}: {src}"
            );
        }
        (Fault::Error, other) => panic!("{what}: expected Ok(Err(RemoteError)), got {other:?}"),
        _ => expect_for(fault, None).check(&what, &got.clone().map(|_| 0)),
    }
    settle_bystanders(&what, before, BOUND);
    settle_bystanders(&what, after, BOUND);
}

/// Parent-side codec phases: only errors and panics (a crash there is the caller's own).
fn parent_phases(pool: &ProcessPool, fault: Fault) {
    // The parent cannot encode the argument: `submit` reports it, no worker is involved.
    let what = format!("{} in parent_encode", fault.name());
    let arg = Faulty::new(fault, Phase::ParentEncode, 1);
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        pool.submit(faults::pass_through, arg)
    }));
    match (fault, r) {
        // An error or a panic in Serialize alike: an encode refusal, the task handed back.
        (Fault::Error | Fault::Panic, Ok(Err(e))) => match e.kind() {
            SubmitErrorKind::Encode(c) => {
                let injected = format!("injected {}", fault.name());
                assert_eq!(c.side, Side::Parent, "{what}: {c}");
                assert!(c.message.contains(&injected), "{what}: {c}");
                assert!(c.type_name.contains("Faulty"), "{what}: {c}");
                assert!(!c.codec.is_empty(), "{what}: no codec named in {c}");
                assert!(
                    e.into_task().is_some(),
                    "{what}: the task was not handed back"
                );
            }
            other => panic!("{what}: expected an encode refusal, got {other:?}"),
        },
        (_, Ok(Ok(f))) => panic!("{what}: submit accepted the task ({:?})", f.state()),
        (_, Ok(Err(e))) => panic!("{what}: unexpected refusal {e}"),
        (_, Err(_)) => panic!("{what}: submit panicked"),
    }
    // The parent cannot decode the result.
    let what = format!("{} in parent_decode", fault.name());
    let fut = pool
        .submit(
            faults::pass_through,
            Faulty::new(fault, Phase::ParentDecode, 2),
        )
        .unwrap_or_else(|e| panic!("{what}: submit refused: {e}"));
    let got = fut
        .result_timeout(BOUND)
        .unwrap_or_else(|f| panic!("{what}: not resolved within {BOUND:?}: {:?}", f.state()));
    expect_for(fault, Some(Phase::ParentDecode)).check(&what, &got.map(|v| v.payload));
}

fn run_matrix_row(fault: Fault) {
    run_matrix_row_over(fault, TransportKind::Pipe);
}

fn run_matrix_row_over(fault: Fault, transport: TransportKind) {
    let guard = harness::start(
        &format!("matrix_phases::{}::{transport:?}", fault.name()),
        Duration::from_secs(90),
    );
    let pool = pool(transport);
    let first = pool
        .submit(faults::worker_pid, ())
        .expect("submit")
        .result()
        .expect("a first task runs");
    if !fault.ends_process() {
        parent_phases(&pool, fault);
    }
    worker_phase(&pool, fault, Phase::WorkerDecode);
    run_phase(&pool, fault);
    worker_phase(&pool, fault, Phase::WorkerEncode);
    // The pool still serves, and (for faults that do not end a worker) with the same worker.
    let s = pool.stats();
    let again = pool
        .submit(faults::ok, 42)
        .expect("submit after the faults")
        .result_timeout(BOUND)
        .expect("resolves")
        .expect("the pool serves after the faults");
    assert_eq!(again, 42);
    if !fault.ends_process() {
        assert_eq!(s.died, 0, "{fault:?} killed a worker: {s:?}");
        let _ = first;
    } else if fault != Fault::Hang {
        // The counters are updated just after the futures resolve: poll.
        let mut s = s;
        let until = std::time::Instant::now() + BOUND;
        while s.died < 3 && std::time::Instant::now() < until {
            std::thread::sleep(Duration::from_millis(2));
            s = pool.stats();
        }
        assert!(
            s.died >= 3,
            "{fault:?}: three worker deaths expected, stats {s:?}"
        );
    }
    let report = pool.shutdown(pool_core::Shutdown::Wait);
    assert_eq!(report.unfinished_workers, 0, "{report:?}");
    drop(pool);
    guard.finish();
}

#[test]
fn error() {
    run_matrix_row(Fault::Error);
}

#[test]
fn panic() {
    run_matrix_row(Fault::Panic);
}

#[test]
fn abort() {
    run_matrix_row(Fault::Abort);
}

#[test]
fn segfault() {
    run_matrix_row(Fault::Segfault);
}

#[test]
fn exit3() {
    run_matrix_row(Fault::Exit(3));
}

#[test]
fn sigkill() {
    run_matrix_row(Fault::KillSelf);
}

#[test]
fn hang() {
    run_matrix_row(Fault::Hang);
}

#[test]
fn oom() {
    run_matrix_row(Fault::MemoryBlowUp);
}

/// The same rows over the other transports: a crash must look the same whatever carries
/// the bytes.
mod over {
    use super::{Fault, TransportKind, run_matrix_row_over};

    macro_rules! rows {
        ($($name:ident: $fault:expr, $transport:expr;)*) => {
            $(
                #[test]
                fn $name() {
                    run_matrix_row_over($fault, $transport);
                }
            )*
        };
    }

    rows! {
        local_socket_error: Fault::Error, TransportKind::LocalSocket;
        local_socket_panic: Fault::Panic, TransportKind::LocalSocket;
        local_socket_abort: Fault::Abort, TransportKind::LocalSocket;
        local_socket_segfault: Fault::Segfault, TransportKind::LocalSocket;
        local_socket_exit3: Fault::Exit(3), TransportKind::LocalSocket;
        local_socket_sigkill: Fault::KillSelf, TransportKind::LocalSocket;
        local_socket_hang: Fault::Hang, TransportKind::LocalSocket;
        local_socket_oom: Fault::MemoryBlowUp, TransportKind::LocalSocket;
        shm_error: Fault::Error, TransportKind::Shm;
        shm_panic: Fault::Panic, TransportKind::Shm;
        shm_abort: Fault::Abort, TransportKind::Shm;
        shm_segfault: Fault::Segfault, TransportKind::Shm;
        shm_exit3: Fault::Exit(3), TransportKind::Shm;
        shm_sigkill: Fault::KillSelf, TransportKind::Shm;
        shm_hang: Fault::Hang, TransportKind::Shm;
        shm_oom: Fault::MemoryBlowUp, TransportKind::Shm;
    }
}
