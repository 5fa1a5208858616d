//! A third-party executor from `Backend` + `Worker` alone, put through the conformance suite:
//! `cargo run -p pool-testkit --example third_party_backend`.
//!
//! The backend ("mailbox"): each worker is a dedicated thread that receives calls through a
//! channel and answers through another; the engine thread that drives the worker blocks on
//! the answer. Everything else — sizing, spawn on demand, idle shrink, recycling, timeouts,
//! cancellation, shutdown modes, statistics, `submit`, `map`, `Parallel` — comes from
//! `pool_core::BackendPool` for free.

use std::any::Any;
use std::sync::mpsc;
use std::time::Instant;

use pool_core::{
    Backend, BackendPool, EngineConfig, Erased, FinalizeError, RunContext, StartError, TaskError,
    Worker, WorkerId,
};

type Reply = Result<Box<dyn Any + Send>, TaskError>;

/// Starts mailbox workers.
pub(crate) struct MailboxBackend;

/// One mailbox worker: a thread, a call channel, a reply channel.
pub(crate) struct MailboxWorker {
    jobs: Option<mpsc::Sender<Erased>>,
    replies: mpsc::Receiver<Reply>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Backend for MailboxBackend {
    type Input = Erased;
    type Output = Box<dyn Any + Send>;
    type Worker = MailboxWorker;

    fn start(&self, id: WorkerId) -> Result<MailboxWorker, StartError> {
        let (job_tx, job_rx) = mpsc::channel::<Erased>();
        let (reply_tx, reply_rx) = mpsc::channel::<Reply>();
        let thread = std::thread::Builder::new()
            .name(format!("mailbox-{}", id.0))
            .spawn(move || {
                for call in job_rx {
                    // Panics are data: caught here, with message and location.
                    let r = pool_core::catch_panic(|| call.run()).map_err(TaskError::Panicked);
                    if reply_tx.send(r).is_err() {
                        return;
                    }
                }
            })
            .map_err(|e| StartError::Spawn(e.to_string()))?;
        Ok(MailboxWorker {
            jobs: Some(job_tx),
            replies: reply_rx,
            thread: Some(thread),
        })
    }
}

impl Worker for MailboxWorker {
    type Input = Erased;
    type Output = Box<dyn Any + Send>;

    fn run(&mut self, input: Erased, ctx: &RunContext) -> Result<Self::Output, TaskError> {
        let gone = || {
            TaskError::WorkerDied(pool_core::WorkerDied {
                worker: ctx.worker,
                pid: None,
                exit: pool_core::ExitReason::Unknown,
                task: ctx.task_name(),
                stderr_tail: String::new(),
            })
        };
        let jobs = self.jobs.as_ref().ok_or_else(gone)?;
        jobs.send(input).map_err(|_| gone())?;
        self.replies.recv().map_err(|_| gone())?
    }

    fn alive(&mut self) -> bool {
        self.thread.as_ref().is_some_and(|t| !t.is_finished())
    }

    fn stop(mut self, _deadline: Instant) -> Result<(), FinalizeError> {
        // Closing the job channel ends the thread after its current job.
        self.jobs = None;
        if let Some(t) = self.thread.take() {
            t.join()
                .map_err(|_| FinalizeError("the mailbox thread panicked".into()))?;
        }
        Ok(())
    }
}

/// The executor: the engine's pool policy over mailbox workers.
pub(crate) type MailboxPool = BackendPool<MailboxBackend>;

/// A pool of at most `max_workers` mailbox threads.
///
/// # Panics
///
/// If `max_workers` is 0.
pub(crate) fn mailbox_pool(max_workers: usize) -> MailboxPool {
    let config = EngineConfig {
        name: "mailbox".into(),
        max_workers,
        ..EngineConfig::default()
    };
    BackendPool::new(MailboxBackend, config).expect("a valid configuration")
}

/// Runs the whole conformance suite on the mailbox pool.
pub(crate) fn conformance() -> pool_testkit::conformance::Report {
    pool_testkit::conformance::run(
        "MailboxPool (third-party backend)",
        pool_testkit::conformance::Options::new()
            .workers(2)
            .bound(std::time::Duration::from_secs(10)),
        mailbox_pool,
    )
}

#[allow(dead_code)]
fn main() {
    let report = conformance();
    println!("{report}");
    report.assert_passed();
}
