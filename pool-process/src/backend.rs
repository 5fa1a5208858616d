//! The process backend for the pool-core engine: [`ProcessBackend`] starts worker processes,
//! [`ProcessWorker`] feeds one of them and turns its replies and deaths into `TaskError`s.

use std::collections::VecDeque;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::{Duration, Instant};

use pool_codec::Codec;
use pool_core::{
    Backend, CodecFailure, ExitReason, FinalizeError, Killer, PanicInfo, Pipeline, RunContext,
    Side, StartError, TaskError, Worker, WorkerDied, WorkerId,
};

use crate::buffers::BufPool;
use crate::protocol::{
    CodecFailureRecord, Detail, Outcome, RequestHeader, named_header, task_header,
};
use crate::supervisor::{CallFailure, Death, Exit, StartConfig, StartFailure, WorkerProcess};
use crate::sys::signals::signal_name;
use crate::transfer::FnRef;
use crate::transport;

/// An encoded task: which function to run and its encoded argument.
pub(crate) struct EncodedTask {
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
pub(crate) struct EncodedReply {
    pub(crate) bytes: Vec<u8>,
}

/// Starts worker processes for a `pool_core::Engine`; generic over the codec `C`.
pub(crate) struct ProcessBackend<C: Codec> {
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
                in_flight: VecDeque::with_capacity(MAX_IN_FLIGHT),
                lent: false,
            }),
            Err(StartFailure::Spawn(m)) => Err(StartError::Spawn(m)),
            Err(StartFailure::Handshake(m)) => Err(StartError::Handshake(m)),
            Err(StartFailure::Initializer(m)) => Err(StartError::Initializer(m)),
        }
    }
}

/// Tasks a worker may have been sent before the oldest one's reply is read (the engine's
/// pipelining). The worker reads requests one by one and answers in order, so a task queued
/// in its channel starts only after the ones before it.
const MAX_IN_FLIGHT: usize = 8;

/// The largest argument sent behind other tasks. With at most `MAX_IN_FLIGHT - 1` such
/// requests unread in the channel (under 4 KiB, the smallest a pipe gets), a pipelined send
/// never blocks, so the parent can never be stuck writing while the worker is stuck writing
/// a large reply.
const PIPELINE_MAX_ARG: usize = 256;

/// How long after a task's deadline the transport gives up by itself, if the engine's
/// watchdog (which kills the worker at the deadline) has not acted.
const DEADLINE_GRACE: Duration = Duration::from_millis(50);

/// One worker process, driven by one engine thread.
pub(crate) struct ProcessWorker {
    process: WorkerProcess,
    bufs: Arc<BufPool>,
    /// Tasks sent and not yet answered, oldest first: name and send time.
    in_flight: VecDeque<(&'static str, Instant)>,
    /// Lent to a caller thread (`Pipeline::lent`): its requests carry `protocol::POLL`.
    lent: bool,
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

fn codec_failure(side: Side, record: CodecFailureRecord) -> CodecFailure {
    CodecFailure {
        side,
        type_name: record.type_name,
        codec: record.codec,
        message: record.message,
    }
}

/// How errors name the task: its label if it has one, else its function.
fn task_name(ctx: &RunContext, name: &str) -> String {
    match ctx.label {
        Some(_) => ctx.task_name(),
        None => format!("{name} ({})", ctx.task),
    }
}

/// What the worker's reply frame means for the task.
fn read_reply(
    bufs: &BufPool,
    outcome: Outcome,
    payload: &[u8],
) -> Result<Result<EncodedReply, TaskError>, ()> {
    match Detail::read(outcome, payload) {
        Detail::Value(value) => {
            let mut bytes = bufs.take();
            bytes.extend_from_slice(value);
            Ok(Ok(EncodedReply { bytes }))
        }
        Detail::Panicked(record) => {
            let p = record.unwrap_or_default();
            Ok(Err(TaskError::Panicked(PanicInfo {
                message: p.message,
                location: p.location,
                backtrace: p.backtrace,
                item: None,
            })))
        }
        Detail::DecodeFailed(f) => Ok(Err(TaskError::Decode(codec_failure(Side::Worker, f)))),
        Detail::EncodeFailed(f) => Ok(Err(TaskError::Encode(codec_failure(Side::Worker, f)))),
        // Not a task reply: the worker is out of step.
        Detail::Failed(_) => Err(()),
    }
}

impl ProcessWorker {
    /// The request header for `target`, or `None` if the worker lacks the named task.
    fn header(&self, target: Target) -> Option<RequestHeader> {
        match target {
            Target::Fn(f) => Some(task_header(f)),
            Target::Named(declared) => self.process.named_index(declared).map(named_header),
        }
    }

    /// The task's failure for a call that produced no reply.
    fn failed(
        &mut self,
        f: CallFailure,
        ctx: &RunContext,
        name: &str,
        started: Instant,
    ) -> TaskError {
        match f {
            CallFailure::Died(death) => self.died(death, ctx, name),
            CallFailure::TimedOut(death) => TaskError::TimedOut {
                // The limit itself, as the engine's watchdog reports it (the deadline was
                // set from it a moment before `started`).
                after: ctx.time_limit.unwrap_or_else(|| started.elapsed()),
                worker: ctx.worker,
                pid: Some(death.pid),
                task: task_name(ctx, name),
            },
        }
    }

    /// The worker is gone: reap it and report its death as this task's error.
    fn bury(&mut self, ctx: &RunContext, name: &str) -> TaskError {
        let death = self.process.bury();
        self.died(death, ctx, name)
    }

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
        let Some(header) = self.header(input.target) else {
            self.bufs.put(input.arg);
            return Err(self.bury(ctx, input.name));
        };
        let header = if self.lent { header.polled() } else { header };
        let bufs = &self.bufs;
        // The engine's watchdog enforces the deadline (and reports the limit exactly); the
        // transport's own deadline, a little later, is only a safety net.
        let deadline = ctx.deadline.map(|d| d + DEADLINE_GRACE);
        let reply = self
            .process
            .call(&[&header, &input.arg], deadline, |outcome, payload| {
                read_reply(bufs, outcome, payload)
            });
        let result = match reply {
            Ok(Ok(r)) => r,
            Ok(Err(())) => Err(self.bury(ctx, input.name)),
            Err(f) => Err(self.failed(f, ctx, input.name, started)),
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

    fn pipeline(
        &mut self,
    ) -> Option<&mut dyn Pipeline<Input = EncodedTask, Output = EncodedReply>> {
        Some(self)
    }
}

impl Pipeline for ProcessWorker {
    type Input = EncodedTask;
    type Output = EncodedReply;

    fn lent(&mut self, lent: bool) {
        // The borrowing caller polls for the reply, and its requests ask the worker to poll
        // for the next one (`protocol::POLL`): neither side sleeps in a loop of calls.
        self.lent = lent;
        let spin = if lent {
            transport::WORKER_SPIN
        } else {
            Duration::ZERO
        };
        self.process.set_spin(spin);
    }

    fn max_in_flight(&self) -> usize {
        MAX_IN_FLIGHT
    }

    fn can_pipeline(&self, input: &EncodedTask) -> bool {
        input.arg.len() <= PIPELINE_MAX_ARG
    }

    fn send(&mut self, input: &EncodedTask, ctx: &RunContext) -> Result<(), TaskError> {
        let started = Instant::now();
        let Some(header) = self.header(input.target) else {
            return Err(self.bury(ctx, input.name));
        };
        if self.process.send_request(&[&header, &input.arg]).is_ok() {
            self.in_flight.push_back((input.name, started));
            return Ok(());
        }
        if self.in_flight.is_empty() {
            return Err(self.bury(ctx, input.name));
        }
        // Gone, but the replies it wrote before dying are still to be read (`recv` buries
        // it at the end of them); the engine runs this task elsewhere.
        Err(TaskError::WorkerDied(WorkerDied {
            worker: ctx.worker,
            pid: Some(self.process.pid()),
            exit: ExitReason::Unknown,
            task: task_name(ctx, input.name),
            stderr_tail: String::new(),
        }))
    }

    fn recv(&mut self, ctx: &RunContext) -> Result<EncodedReply, TaskError> {
        let (name, started) = self
            .in_flight
            .pop_front()
            .unwrap_or(("task", Instant::now()));
        let bufs = &self.bufs;
        match self.process.recv_reply(ctx.deadline, |outcome, payload| {
            read_reply(bufs, outcome, payload)
        }) {
            Ok(Ok(r)) => r,
            Ok(Err(())) => Err(self.bury(ctx, name)),
            Err(f) => Err(self.failed(f, ctx, name, started)),
        }
    }

    fn recycle(&mut self, input: EncodedTask) {
        self.bufs.put(input.arg);
    }
}
