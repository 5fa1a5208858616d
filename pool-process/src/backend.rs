//! The process backend for the pool-core engine: [`ProcessBackend`] starts worker processes,
//! [`ProcessWorker`] feeds one of them and turns its replies and deaths into `TaskError`s.

use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Instant;

use pool_codec::Codec;
use pool_core::{
    Backend, CodecFailure, ExitReason, FinalizeError, Killer, PanicInfo, RunContext, Side,
    StartError, TaskError, Worker, WorkerDied, WorkerId,
};

use crate::buffers::BufPool;
use crate::supervisor::{CallFailure, Death, Exit, StartConfig, StartFailure, WorkerProcess};
use crate::sys::signals::signal_name;
use crate::transfer::{FnRef, Outcome};
use crate::wire::Reader;
use crate::worker::panics::PanicRecord;
use crate::worker::protocol::{named_header, task_header};

/// An encoded task: which function to run and its encoded argument.
pub struct EncodedTask {
    pub(crate) target: Target,
    /// The function's short type name, for error messages.
    pub(crate) name: &'static str,
    pub(crate) arg: Vec<u8>,
}

/// What a task runs.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Target {
    /// A function of this very build, by offset.
    Fn(FnRef),
    /// The n-th name the pool declared with `named_tasks`.
    Named(u32),
}

/// A task's encoded result, as the worker sent it.
pub struct EncodedReply {
    pub(crate) bytes: Vec<u8>,
}

/// Starts worker processes for a `pool_core::Engine`; generic over the codec `C`.
pub struct ProcessBackend<C: Codec> {
    pub(crate) config: Arc<StartConfig>,
    pub(crate) bufs: Arc<BufPool>,
    pub(crate) _codec: PhantomData<fn() -> C>,
}

impl<C: Codec> Backend for ProcessBackend<C> {
    type Input = EncodedTask;
    type Output = EncodedReply;
    type Worker = ProcessWorker;

    fn start(&self, id: WorkerId) -> Result<ProcessWorker, StartError> {
        match WorkerProcess::start(&self.config, id.0) {
            Ok(process) => Ok(ProcessWorker {
                process,
                bufs: Arc::clone(&self.bufs),
            }),
            Err(StartFailure::Spawn(m)) => Err(StartError::Spawn(m)),
            Err(StartFailure::Handshake(m)) => Err(StartError::Handshake(m)),
            Err(StartFailure::Initializer(m)) => Err(StartError::Initializer(m)),
        }
    }
}

/// One worker process, driven by one engine thread.
pub struct ProcessWorker {
    process: WorkerProcess,
    bufs: Arc<BufPool>,
}

fn exit_reason(exit: &Exit) -> ExitReason {
    match exit {
        Exit::Code(c) => ExitReason::Code(*c),
        Exit::Signal(s) => ExitReason::Signal {
            number: *s,
            name: signal_name(*s),
        },
        Exit::Unknown => ExitReason::Unknown,
    }
}

fn codec_failure(side: Side, detail: &[u8]) -> CodecFailure {
    let mut r = Reader(detail);
    CodecFailure {
        side,
        type_name: r.str().unwrap_or_default(),
        codec: r.str().unwrap_or_default(),
        message: r.str().unwrap_or_default(),
    }
}

/// How errors name the task: its label if it has one, else its function.
fn task_name(ctx: &RunContext, name: &str) -> String {
    match ctx.label {
        Some(_) => ctx.task_name(),
        None => format!("{name} ({})", ctx.task),
    }
}

impl ProcessWorker {
    fn died(&self, death: Death, ctx: &RunContext, name: &str) -> TaskError {
        TaskError::WorkerDied(WorkerDied {
            worker: ctx.worker,
            pid: Some(death.pid),
            exit: exit_reason(&death.exit),
            task: task_name(ctx, name),
            stderr_tail: death.stderr_tail,
        })
    }
}

impl Worker for ProcessWorker {
    type Input = EncodedTask;
    type Output = EncodedReply;

    fn run(&mut self, input: EncodedTask, ctx: &RunContext) -> Result<EncodedReply, TaskError> {
        let started = Instant::now();
        let task_h;
        let named_h;
        let header: &[u8] = match input.target {
            Target::Fn(f) => {
                task_h = task_header(f);
                &task_h
            }
            Target::Named(declared) => match self.process.named_index(declared) {
                Some(i) => {
                    named_h = named_header(i);
                    &named_h
                }
                None => {
                    self.bufs.put(input.arg);
                    let death = self.process.bury();
                    return Err(self.died(death, ctx, input.name));
                }
            },
        };
        let bufs = &self.bufs;
        let reply = self
            .process
            .call(&[header, &input.arg], ctx.deadline, |outcome, payload| {
                match outcome {
                    Outcome::Ok => {
                        let mut bytes = bufs.take();
                        bytes.extend_from_slice(payload);
                        Ok(Ok(EncodedReply { bytes }))
                    }
                    Outcome::Panicked => {
                        let p = PanicRecord::read(payload).unwrap_or_default();
                        Ok(Err(TaskError::Panicked(PanicInfo {
                            message: p.message,
                            location: p.location,
                            backtrace: p.backtrace,
                        })))
                    }
                    Outcome::DecodeFailed => {
                        Ok(Err(TaskError::Decode(codec_failure(Side::Worker, payload))))
                    }
                    Outcome::EncodeFailed => {
                        Ok(Err(TaskError::Encode(codec_failure(Side::Worker, payload))))
                    }
                    // Not a task reply: the worker is out of step.
                    Outcome::Failed => Err(()),
                }
            });
        let result = match reply {
            Ok(Ok(r)) => r,
            Ok(Err(())) => {
                let death = self.process.bury();
                Err(self.died(death, ctx, input.name))
            }
            Err(CallFailure::Died(death)) => Err(self.died(death, ctx, input.name)),
            Err(CallFailure::TimedOut(death)) => Err(TaskError::TimedOut {
                after: ctx
                    .deadline
                    .map_or(started.elapsed(), |d| d.saturating_duration_since(started)),
                worker: ctx.worker,
                pid: Some(death.pid),
                task: task_name(ctx, input.name),
            }),
        };
        self.bufs.put(input.arg);
        result
    }

    fn killer(&self) -> Option<Killer> {
        Some(Killer::new(self.process.killer()))
    }

    fn alive(&mut self) -> bool {
        self.process.alive()
    }

    fn pid(&self) -> Option<u32> {
        Some(self.process.pid())
    }

    fn memory_bytes(&mut self) -> Option<u64> {
        self.process.memory_bytes()
    }

    fn stop(self, deadline: Instant) -> Result<(), FinalizeError> {
        self.process.stop(deadline).map_err(FinalizeError)
    }
}
