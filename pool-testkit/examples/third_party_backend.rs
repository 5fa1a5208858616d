//! A third-party executor built only on pool-core's public traits, then put through the
//! conformance suite: `cargo run -p pool-testkit --example third_party_backend`.
//!
//! The backend ("mailbox"): each worker is a dedicated thread that receives jobs through a
//! channel and answers through another; the engine thread that drives the worker blocks on
//! the answer. Everything else — sizing, spawn on demand, idle shrink, recycling, timeouts,
//! cancellation, shutdown modes, statistics, `map` — comes from `pool_core::Engine` for free.

use std::any::Any;
use std::sync::mpsc;
use std::time::Instant;

use pool_core::{
    Backend, Call, CallFn, Engine, EngineConfig, Executor, FinalizeError, Future, RunContext,
    Shutdown, ShutdownReport, StartError, Stats, Submit, SubmitError, SubmitOptions, TaskError,
    Worker, WorkerId,
};

/// A type-erased job and its type-erased result.
type Job = Box<dyn FnOnce() -> Box<dyn Any + Send> + Send>;
type Reply = Result<Box<dyn Any + Send>, TaskError>;

/// Starts mailbox workers.
pub(crate) struct MailboxBackend;

/// One mailbox worker: a thread, a job channel, a reply channel.
pub(crate) struct MailboxWorker {
    jobs: Option<mpsc::Sender<Job>>,
    replies: mpsc::Receiver<Reply>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Backend for MailboxBackend {
    type Input = Job;
    type Output = Box<dyn Any + Send>;
    type Worker = MailboxWorker;

    fn start(&self, id: WorkerId) -> Result<MailboxWorker, StartError> {
        let (job_tx, job_rx) = mpsc::channel::<Job>();
        let (reply_tx, reply_rx) = mpsc::channel::<Reply>();
        let thread = std::thread::Builder::new()
            .name(format!("mailbox-{}", id.0))
            .spawn(move || {
                for job in job_rx {
                    // Panics are data: caught here, with message and location.
                    let r = pool_core::catch_panic(job).map_err(TaskError::Panicked);
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
    type Input = Job;
    type Output = Box<dyn Any + Send>;

    fn run(&mut self, input: Job, ctx: &RunContext) -> Result<Self::Output, TaskError> {
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

/// The executor: the engine plus the two traits.
#[derive(Clone)]
pub(crate) struct MailboxPool {
    engine: Engine<MailboxBackend>,
}

impl MailboxPool {
    /// A pool of at most `max_workers` mailbox threads.
    ///
    /// # Panics
    ///
    /// If `max_workers` is 0.
    pub(crate) fn new(max_workers: usize) -> Self {
        let config = EngineConfig {
            name: "mailbox".into(),
            max_workers,
            ..EngineConfig::default()
        };
        MailboxPool {
            engine: Engine::new(MailboxBackend, config).expect("a valid configuration"),
        }
    }
}

impl Executor for MailboxPool {
    fn shutdown(&self, mode: Shutdown) -> ShutdownReport {
        self.engine.shutdown(mode, None)
    }

    fn stats(&self) -> Stats {
        self.engine.stats()
    }
}

impl<F, A> Submit<Call<F, A>> for MailboxPool
where
    F: CallFn<A>,
    A: Send + 'static,
{
    fn submit_with(
        &self,
        task: Call<F, A>,
        opts: SubmitOptions,
    ) -> Result<Future<F::Output>, SubmitError<Call<F, A>>> {
        // The task travels inside an `Option` so a refusal can hand it back.
        let slot = std::sync::Arc::new(std::sync::Mutex::new(Some(task)));
        let job_slot = std::sync::Arc::clone(&slot);
        let job: Job = Box::new(move || {
            let task = job_slot
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .take()
                .expect("a job runs once");
            Box::new(task.run()) as Box<dyn Any + Send>
        });
        self.engine
            .submit(job, opts, |out: Box<dyn Any + Send>| {
                out.downcast::<F::Output>().map(|b| *b).map_err(|_| {
                    TaskError::Broken(pool_core::BrokenReason::new("wrong result type"))
                })
            })
            .map_err(|e| {
                let task = slot.lock().unwrap_or_else(|p| p.into_inner()).take();
                SubmitError::new(e.kind().clone(), task)
            })
    }
}

// One line makes it a conformance target.
pool_testkit::impl_target!(MailboxPool);

/// Runs the whole conformance suite on the mailbox pool.
pub(crate) fn conformance() -> pool_testkit::conformance::Report {
    pool_testkit::conformance::run(
        "MailboxPool (third-party backend)",
        pool_testkit::conformance::Options::new()
            .workers(2)
            .bound(std::time::Duration::from_secs(10))
            .known_bug(
                "spawn_with_idle_worker",
                "pool-core spawn-on-demand races with a worker leaving idle",
            ),
        MailboxPool::new,
    )
}

#[allow(dead_code)]
fn main() {
    let report = conformance();
    println!("{report}");
    report.assert_passed();
}
