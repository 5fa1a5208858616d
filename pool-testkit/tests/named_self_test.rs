//! The named suite fails an executor that breaks the contract, and says what it saw: a
//! `ProcessPool` behind a wrapper that commits one fault, each against the check that must
//! catch it.

use std::time::Duration;

use pool_core::{Executor, Future, Shutdown, ShutdownReport, Stats, SubmitError};
use pool_process::ProcessPool;
use pool_testkit::conformance::{Options, Outcome, named};
use pool_testkit::{NamedTarget, Value, harness};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fault {
    /// `shutdown(CancelPending)` runs the queued tasks.
    WaitsOnCancelPending,
    /// `shutdown(Wait)` cancels the queued tasks.
    CancelsOnWait,
    /// `stats()` counts failed tasks as completed.
    CountsFailuresAsCompleted,
    /// A refusal does not hand the argument back.
    ForgetsArgument,
    /// The aborting task's name runs the square instead.
    AbortRunsSquare,
    /// An unknown name runs the square instead.
    UnknownRunsSquare,
    /// The caller's future is a copy of the pool's, completed from it: cancelling it does
    /// not reach the pool, and it never says Running (what a relay that does not report
    /// starts or forward cancellations does).
    Detached,
}

struct Faulty {
    pool: ProcessPool,
    fault: Fault,
}

impl Executor for Faulty {
    fn shutdown(&self, mode: Shutdown) -> ShutdownReport {
        let mode = match (self.fault, mode) {
            (Fault::WaitsOnCancelPending, Shutdown::CancelPending) => Shutdown::Wait,
            (Fault::CancelsOnWait, Shutdown::Wait) => Shutdown::CancelPending,
            _ => mode,
        };
        self.pool.shutdown(mode)
    }

    fn stats(&self) -> Stats {
        let mut s = self.pool.stats();
        if self.fault == Fault::CountsFailuresAsCompleted {
            s.completed += std::mem::take(&mut s.failed);
        }
        s
    }
}

impl NamedTarget for Faulty {
    fn submit_named<A: Value, R: Value>(
        &self,
        name: &str,
        arg: A,
    ) -> Result<Future<R>, SubmitError<A>> {
        let name = match (self.fault, name) {
            (Fault::AbortRunsSquare, named::ABORT) | (Fault::UnknownRunsSquare, named::UNKNOWN) => {
                named::SQUARE
            }
            _ => name,
        };
        match (self.fault, self.pool.submit_named(name, arg)) {
            (Fault::ForgetsArgument, Err(e)) => Err(SubmitError::new(e.kind().clone(), None)),
            (Fault::Detached, Ok(real)) => {
                let (promise, copy) = pool_core::promise();
                std::thread::spawn(move || promise.complete(real.result()));
                Ok(copy)
            }
            (_, submitted) => submitted,
        }
    }
}

/// Runs `check` on a pool with `fault`; it must fail, saying `saw`.
fn caught(fault: Fault, check: &str, saw: &str) {
    let report = named::run_named(
        &format!("ProcessPool with the fault {fault:?}"),
        Options::new()
            .workers(2)
            .bound(Duration::from_secs(3))
            .filter(check),
        move |workers| Faulty {
            pool: ProcessPool::builder()
                .max_workers(workers)
                .named_tasks(named::TASKS)
                .build()
                .expect("a named process pool"),
            fault,
        },
    );
    println!("{report}");
    let result = report
        .results
        .iter()
        .find(|r| r.name == check)
        .unwrap_or_else(|| panic!("{check} did not run: {report}"));
    match &result.outcome {
        Outcome::Failed(what) => assert!(
            what.contains(saw),
            "{check} failed on {fault:?} without saying {saw:?}: {what}"
        ),
        other => panic!("{check} did not catch {fault:?}: {other:?}"),
    }
}

#[test]
fn the_named_suite_catches_faulty_executors() {
    let guard = harness::start("named suite self-test", Duration::from_secs(300));
    let cases = [
        (
            Fault::WaitsOnCancelPending,
            "named_shutdown_cancel_pending",
            "queued mark 1000 did not resolve",
        ),
        (
            Fault::CancelsOnWait,
            "named_shutdown_wait",
            "shutdown(Wait)",
        ),
        (
            Fault::CountsFailuresAsCompleted,
            "named_stats_counts",
            "(expected 13, 10, 3)",
        ),
        (
            Fault::ForgetsArgument,
            "named_unencodable_argument",
            "handed back None",
        ),
        (
            Fault::ForgetsArgument,
            "named_submit_after_shutdown",
            "handed back None",
        ),
        (
            Fault::AbortRunsSquare,
            "named_abort_is_worker_died",
            "an aborting task resolved as Ok(1)",
        ),
        (
            Fault::UnknownRunsSquare,
            "named_unknown_name",
            "a task of an unknown name returned 25",
        ),
        (Fault::Detached, "named_cancel_pending", "ran anyway"),
        (
            Fault::Detached,
            "named_running_task_not_cancellable",
            "still says Pending",
        ),
    ];
    for (fault, check, saw) in cases {
        caught(fault, check, saw);
    }
    guard.finish();
}
