//! [`ProcessPool`] and its `Executor`/`Submit` implementations (the builder: `builder.rs`).

use std::any::type_name;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use pool_codec::{Codec, DefaultCodec};
use pool_core::{
    BrokenReason, Call, ChunkFn, ChunkResults, CodecFailure, Engine, Executor, Future, MapIter,
    MapOptions, Parallel, Shutdown, ShutdownReport, Side, Stats, Submit, SubmitError,
    SubmitErrorKind, SubmitOptions, TaskError,
};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::backend::{EncodedReply, EncodedTask, ProcessBackend, Target};
use crate::buffers::BufPool;
use crate::bytes;
use crate::protocol::MAX_REQUEST_HEADER;
use crate::transfer;
use crate::values::encode_caught;
use crate::values::{decode_reply, drop_argument, short_name};

/// A pool of worker processes running zero-sized functions (fn items and capture-free
/// closures) on serde arguments. Cheap to clone: clones share the pool.
///
/// Workers are this very program, re-executed; a hook that runs before `main` makes them
/// workers, so no setup call is needed. A worker that crashes fails only the task it ran
/// (`TaskError::WorkerDied`, with the signal by name and its stderr's last lines) and is
/// replaced. Dropping the last handle shuts the pool down without waiting for running tasks.
///
/// # Examples
///
/// ```
/// # mod pool { pub use pool_core::*; pub use pool_process::*; pub mod prelude { pub use pool_core::{Executor, MapOptions, Parallel, Shutdown, Submit, SubmitOptions, TaskError}; pub use pool_process::ProcessPool; } } // what `pool` re-exports
/// use pool::prelude::*;
///
/// fn square(x: u64) -> u64 {
///     x * x
/// }
///
/// let pool = ProcessPool::builder().max_workers(2).build()?;
/// assert_eq!(pool.submit(square, 7)?.result()?, 49);
/// let all: Vec<u64> = pool.map(|x: u64| x + 1, 0..5).collect::<Result<_, _>>()?;
/// assert_eq!(all, [1, 2, 3, 4, 5]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct ProcessPool<C: Codec = DefaultCodec> {
    inner: Arc<Inner<C>>,
}

/// Identifies pools created by this process, in creation order (first is 1).
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

struct Inner<C: Codec> {
    id: u64,
    shut_down: AtomicBool,
    engine: Engine<ProcessBackend<C>>,
    has_timeout: bool,
    named: Option<Vec<String>>,
    bufs: Arc<BufPool>,
    codec: C,
}

/// How long dropping the last handle waits for the pool's workers to stop.
const DROP_GRACE: Duration = Duration::from_millis(200);

/// The last handle is gone. Queued tasks are cancelled and idle workers are asked to stop;
/// the drop waits up to [`DROP_GRACE`] for every worker to be stopped and reaped, so a
/// program that exits right after dropping its pool leaves no worker behind. It never waits
/// longer: a worker still running a task is left to finish it (its future still resolves),
/// then stops — as without this wait; `shutdown(Shutdown::Kill)` is the way to kill it. A
/// pool already shut down returns at once.
impl<C: Codec> Drop for Inner<C> {
    fn drop(&mut self) {
        self.shut_down.store(true, Ordering::SeqCst);
        self.engine
            .shutdown(Shutdown::CancelPending, Some(DROP_GRACE));
    }
}

impl<C: Codec> Clone for ProcessPool<C> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<C: Codec> std::fmt::Debug for ProcessPool<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProcessPool")
            .field("codec", &self.inner.codec.name())
            .field("stats", &self.inner.engine.stats())
            .finish()
    }
}

impl<C: Codec> ProcessPool<C> {
    /// The pool around a started engine (the builder's last step).
    pub(crate) fn from_parts(
        engine: Engine<ProcessBackend<C>>,
        has_timeout: bool,
        named: Option<Vec<String>>,
        bufs: Arc<BufPool>,
        codec: C,
    ) -> Self {
        ProcessPool {
            inner: Arc::new(Inner {
                id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
                shut_down: AtomicBool::new(false),
                engine,
                has_timeout,
                named,
                bufs,
                codec,
            }),
        }
    }
}

impl<C: Codec> ProcessPool<C> {
    /// Runs `f(arg)` in a worker process.
    ///
    /// A `Vec<u8>` or `serde_bytes::ByteBuf` argument or result crosses as raw bytes, not
    /// through the codec: the argument's own buffer is written to the worker (no encoding
    /// copy), and a byte result arrives as the vector the parent received.
    ///
    /// `f` must be a fn item or a closure that captures nothing: the worker runs the same
    /// binary, so the function's type says all there is to send. Whatever `f` needs goes
    /// into `arg` (a tuple for several values):
    ///
    /// ```
    /// # mod pool { pub use pool_core::*; pub use pool_process::*; pub mod prelude { pub use pool_core::{Executor, MapOptions, Parallel, Shutdown, Submit, SubmitOptions, TaskError}; pub use pool_process::ProcessPool; } } // what `pool` re-exports
    /// let pool = pool::ProcessPool::builder().max_workers(1).build()?;
    /// let greeting = String::from("hello");
    /// let text = pool.apply(|(g, name): (String, String)| format!("{g}, {name}"),
    ///                       (greeting, "you".to_string()))?;
    /// assert_eq!(text, "hello, you");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// A closure that captures a value which is not `Copy` (a `String`, a `Vec`, an `Arc`)
    /// or borrows one is refused by `cargo check` and the IDE, as a missing trait bound
    /// (`Copy` or `'static`):
    ///
    /// ```compile_fail,E0277
    /// # mod pool { pub use pool_core::*; pub use pool_process::*; pub mod prelude { pub use pool_core::{Executor, MapOptions, Parallel, Shutdown, Submit, SubmitOptions, TaskError}; pub use pool_process::ProcessPool; } } // what `pool` re-exports
    /// let pool = pool::ProcessPool::builder().build().unwrap();
    /// let greeting = String::from("hello");
    /// let _ = pool.submit(move |name: String| format!("{greeting}, {name}"), "you".to_string());
    /// ```
    ///
    /// A closure that captures only `Copy` values, and a fn pointer, have the right traits
    /// but carry data (Rust has no bound for "zero-sized"): they are refused when the program
    /// is built, by a compile-time assertion whose message says what to do:
    ///
    /// ```compile_fail,E0080
    /// # mod pool { pub use pool_core::*; pub use pool_process::*; pub mod prelude { pub use pool_core::{Executor, MapOptions, Parallel, Shutdown, Submit, SubmitOptions, TaskError}; pub use pool_process::ProcessPool; } } // what `pool` re-exports
    /// let pool = pool::ProcessPool::builder().build().unwrap();
    /// let offset = 10u64;
    /// let _ = pool.submit(move |x: u64| x + offset, 1);
    /// ```
    ///
    /// # Examples
    ///
    /// ```
    /// # mod pool { pub use pool_core::*; pub use pool_process::*; pub mod prelude { pub use pool_core::{Executor, MapOptions, Parallel, Shutdown, Submit, SubmitOptions, TaskError}; pub use pool_process::ProcessPool; } } // what `pool` re-exports
    /// let pool = pool::ProcessPool::builder().max_workers(1).build()?;
    /// let len = pool.submit(|s: String| s.len(), "four".to_string())?.result()?;
    /// assert_eq!(len, 4);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// The pool is shut down or broken, its bounded queue is full, or `arg` cannot be
    /// encoded (`SubmitErrorKind::Encode`); the task is handed back.
    pub fn submit<F, A, R>(&self, f: F, arg: A) -> Result<Future<R>, SubmitError<Call<F, A>>>
    where
        F: Fn(A) -> R + Copy + Send + Sync + 'static,
        A: Serialize + DeserializeOwned + Send + 'static,
        R: Serialize + DeserializeOwned + Send + 'static,
    {
        Submit::submit(self, Call { f, arg })
    }

    /// Runs `f(arg)` in a worker process with options (timeout, label, timing), as
    /// `ThreadPool::submit_with` does for a closure.
    ///
    /// # Examples
    ///
    /// ```
    /// # mod pool { pub use pool_core::*; pub use pool_process::*; pub mod prelude { pub use pool_core::{Executor, MapOptions, Parallel, Shutdown, Submit, SubmitOptions, TaskError}; pub use pool_process::ProcessPool; } } // what `pool` re-exports
    /// use std::time::Duration;
    /// use pool::{SubmitOptions, TaskError};
    ///
    /// let pool = pool::ProcessPool::builder().max_workers(1).build()?;
    /// let opts = SubmitOptions::default()
    ///     .timeout(Duration::from_millis(100))
    ///     .label("nap");
    /// let nap = pool.submit_with(|ms: u64| std::thread::sleep(Duration::from_millis(ms)), 5_000, opts)?;
    /// assert!(matches!(nap.result(), Err(TaskError::TimedOut { .. })));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As [`ProcessPool::submit`].
    pub fn submit_with<F, A, R>(
        &self,
        f: F,
        arg: A,
        opts: SubmitOptions,
    ) -> Result<Future<R>, SubmitError<Call<F, A>>>
    where
        F: Fn(A) -> R + Copy + Send + Sync + 'static,
        A: Serialize + DeserializeOwned + Send + 'static,
        R: Serialize + DeserializeOwned + Send + 'static,
    {
        Submit::submit_with(self, Call { f, arg }, opts)
    }

    /// Runs `f(arg)` in a worker process and waits for its value — `submit(f, arg)` and
    /// `result()` in one call, like `multiprocessing.Pool.apply`. When a worker is idle,
    /// the calling thread borrows it and exchanges the request and reply with it directly,
    /// without the pool's engine thread in between (one hand-off each way instead of two);
    /// otherwise the task is queued as by `submit`. Timeouts, crash reports, panics and
    /// statistics are the same either way.
    ///
    /// # Examples
    ///
    /// ```
    /// # mod pool { pub use pool_core::*; pub use pool_process::*; pub mod prelude { pub use pool_core::{Executor, MapOptions, Parallel, Shutdown, Submit, SubmitOptions, TaskError}; pub use pool_process::ProcessPool; } } // what `pool` re-exports
    /// let pool = pool::ProcessPool::builder().max_workers(1).build()?;
    /// assert_eq!(pool.apply(|x: u64| x + 1, 41)?, 42);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// The task's failure; a refused submit (shut down, broken, full queue, an argument
    /// that cannot be encoded) as the error its future would have carried.
    pub fn apply<F, A, R>(&self, f: F, arg: A) -> Result<R, TaskError>
    where
        F: Fn(A) -> R + Copy + Send + Sync + 'static,
        A: Serialize + DeserializeOwned + Send + 'static,
        R: Serialize + DeserializeOwned + Send + 'static,
    {
        let mut arg = arg;
        let request = self.call_request::<F, A, R>(&f, &mut arg);
        // Encoded (or refused, and then not handed back): the argument is done with.
        drop_argument(arg);
        let (target, body, _) =
            request.map_err(|kind| SubmitError::<()>::new(kind, None).to_task_error())?;
        let (task, opts, convert) = self.prepare::<R>(
            target,
            short_name::<F>(),
            body,
            SubmitOptions::default(),
            self.raw_result::<R>(),
        );
        self.inner.engine.call(task, opts, convert)
    }

    /// The request for `f(arg)`: its target, its body, and whether the body is the caller's
    /// own bytes (the bytes fast path: `arg` was taken, `bytes::restore` puts it back) rather
    /// than the encoded argument (a buffer of the free list). `Err` when the pool refuses
    /// functions (named tasks only) or `arg` cannot be encoded; `arg` is then untouched.
    fn call_request<F, A, R>(
        &self,
        f: &F,
        arg: &mut A,
    ) -> Result<(Target, Vec<u8>, bool), SubmitErrorKind>
    where
        F: Fn(A) -> R + Copy + Send + Sync + 'static,
        A: Serialize + DeserializeOwned + Send + 'static,
        R: Serialize + DeserializeOwned + Send + 'static,
    {
        if self.inner.named.is_some() {
            return Err(self.refusal(type_name::<F>(), CLOSURES_IN_NAMED_POOL.to_owned()));
        }
        let raw_bytes = self.inner.codec.raw_bytes();
        let target = Target::Fn(transfer::task_ref::<F, A, R, C>(f, raw_bytes));
        if !raw_bytes {
            return Ok((target, self.encode(arg)?, false));
        }
        if let Some(raw) = bytes::as_slice(arg) {
            self.fits::<A>(raw.len())?;
        }
        match bytes::take(arg) {
            Some(raw) => Ok((target, raw, true)),
            None => Ok((target, self.encode(arg)?, false)),
        }
    }

    /// Does the worker answer `R` as raw bytes (a byte type, and the codec allows the bytes
    /// fast path)?
    fn raw_result<R: 'static>(&self) -> bool {
        bytes::is_raw::<R>() && self.inner.codec.raw_bytes()
    }

    /// Refuses an argument of `len` encoded bytes whose request would not fit in one frame,
    /// naming its size and the limit (the worker would otherwise never receive it).
    fn fits<T: ?Sized>(&self, len: usize) -> Result<(), SubmitErrorKind> {
        let size = len.saturating_add(MAX_REQUEST_HEADER);
        let max = self.inner.engine.backend().config.setup.max_frame;
        if size <= max {
            return Ok(());
        }
        Err(SubmitErrorKind::Encode(CodecFailure {
            side: Side::Parent,
            type_name: type_name::<T>().to_owned(),
            codec: self.inner.codec.name().into_owned(),
            message: format!("the request would be {size} bytes, over the {max}-byte frame limit"),
        }))
    }

    /// Shut down, waiting for running tasks (and, with `Shutdown::Wait`, the queue) at most
    /// `d`; workers still running then are reported in `ShutdownReport::unfinished_workers`
    /// and die with the pool's handle or the parent. As `ThreadPool::shutdown_timeout`.
    ///
    /// # Examples
    ///
    /// ```
    /// # mod pool { pub use pool_core::*; pub use pool_process::*; pub mod prelude { pub use pool_core::{Executor, MapOptions, Parallel, Shutdown, Submit, SubmitOptions, TaskError}; pub use pool_process::ProcessPool; } } // what `pool` re-exports
    /// use std::time::Duration;
    /// use pool::Shutdown;
    ///
    /// let pool = pool::ProcessPool::builder().max_workers(1).build()?;
    /// let _nap = pool.submit(|ms: u64| std::thread::sleep(Duration::from_millis(ms)), 5_000)?;
    /// let report = pool.shutdown_timeout(Shutdown::Kill, Duration::from_secs(5));
    /// assert_eq!(report.unfinished_workers, 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn shutdown_timeout(&self, mode: Shutdown, d: Duration) -> ShutdownReport {
        self.inner.shut_down.store(true, Ordering::SeqCst);
        self.inner.engine.shutdown(mode, Some(d))
    }

    /// Starts `n` workers now (bounded by `max_workers`) instead of on first use.
    pub fn spawn_workers(&self, n: usize) {
        self.inner.engine.spawn_workers(n);
    }

    /// The codec in use.
    pub fn codec(&self) -> &C {
        &self.inner.codec
    }

    /// Changes `max_workers` (at least 1). Shrinking lets running tasks finish: extra
    /// workers exit after their current task.
    pub fn resize(&self, max_workers: usize) {
        self.inner.engine.resize(max_workers);
    }

    /// Why the pool is broken (an initializer failed, workers die at start again and again,
    /// or a death under `OnWorkerDeath::BreakPool`), if it is.
    pub fn is_broken(&self) -> Option<BrokenReason> {
        self.inner.engine.is_broken()
    }

    /// Whether `shutdown` was called on the pool (through any handle).
    pub fn is_shut_down(&self) -> bool {
        self.inner.shut_down.load(Ordering::SeqCst)
    }

    /// `max_workers` as configured or last resized.
    pub fn max_workers(&self) -> usize {
        self.inner.engine.config().max_workers
    }

    /// Runs the task registered as `name` (see [`named_task!`](crate::named_task)) on `arg`.
    /// The pool must have been built with
    /// [`ProcessPoolBuilder::named_tasks`](crate::ProcessPoolBuilder::named_tasks) listing
    /// `name`.
    ///
    /// # Errors
    ///
    /// As [`ProcessPool::submit`]; a name the pool did not declare is refused here
    /// (`SubmitErrorKind::Encode`, naming the declared ones).
    ///
    /// # Examples
    ///
    /// ```
    /// # mod pool { pub use pool_core::*; pub use pool_process::*; pub mod prelude { pub use pool_core::{Executor, MapOptions, Parallel, Shutdown, Submit, SubmitOptions, TaskError}; pub use pool_process::ProcessPool; } } // what `pool` re-exports
    /// fn cube(x: i64) -> i64 {
    ///     x * x * x
    /// }
    /// pool::named_task!("doc-cube", cube);
    ///
    /// let pool = pool::ProcessPool::builder()
    ///     .max_workers(1)
    ///     .named_tasks(["doc-cube"])
    ///     .build()?;
    /// assert_eq!(pool.submit_named::<i64, i64>("doc-cube", -3)?.result()?, -27);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn submit_named<A, R>(&self, name: &str, arg: A) -> Result<Future<R>, SubmitError<A>>
    where
        A: Serialize + Send + 'static,
        R: DeserializeOwned + Send + 'static,
    {
        let index = match self.named_index::<A>(name) {
            Ok(i) => i,
            Err(kind) => return Err(SubmitError::new(kind, Some(arg))),
        };
        match self.send(
            Target::Named(index),
            "named task",
            &arg,
            SubmitOptions::default().label(name),
        ) {
            Ok(future) => {
                drop_argument(arg);
                Ok(future)
            }
            Err(kind) => Err(SubmitError::new(kind, Some(arg))),
        }
    }

    /// Runs the named task `name` on an argument already encoded with this pool's codec, and
    /// resolves with its result as the codec's bytes: for code that relays tasks without
    /// knowing their types (a worker that takes them from a queue and answers over the
    /// network). Errors are the same as [`ProcessPool::submit_named`]'s.
    ///
    /// # Examples
    ///
    /// ```
    /// # mod pool { pub use pool_core::*; pub use pool_process::*; pub mod codec { pub use pool_codec::*; } } // what `pool` re-exports
    /// use pool::codec::{Codec, MsgPack};
    ///
    /// fn triple(x: u64) -> u64 {
    ///     x * 3
    /// }
    /// pool::named_task!("triple", triple, pool::codec::MsgPack);
    ///
    /// let pool = pool::ProcessPool::builder()
    ///     .codec(MsgPack)
    ///     .named_tasks(["triple"])
    ///     .build()?;
    /// let mut arg = Vec::new();
    /// MsgPack.encode(&14u64, &mut arg)?;
    /// let bytes = pool.submit_named_encoded("triple", arg)?.result()?;
    /// assert_eq!(MsgPack.decode::<u64>(&bytes)?, 42);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// `name` is not one of the pool's named tasks, or the pool is shut down, broken or its
    /// queue full; the argument is handed back.
    pub fn submit_named_encoded(
        &self,
        name: &str,
        arg: Vec<u8>,
    ) -> Result<Future<Vec<u8>>, SubmitError<Vec<u8>>> {
        self.submit_named_encoded_with(name, arg, SubmitOptions::default())
    }

    /// [`ProcessPool::submit_named_encoded`] with per-task options (a time limit that kills,
    /// a label; the label defaults to the task's name).
    ///
    /// # Errors
    ///
    /// As [`ProcessPool::submit_named_encoded`].
    pub fn submit_named_encoded_with(
        &self,
        name: &str,
        arg: Vec<u8>,
        mut opts: SubmitOptions,
    ) -> Result<Future<Vec<u8>>, SubmitError<Vec<u8>>> {
        if opts.label.is_none() {
            opts.label = Some(name.to_owned());
        }
        let index = match self.named_index::<Vec<u8>>(name) {
            Ok(i) => i,
            Err(kind) => return Err(SubmitError::new(kind, Some(arg))),
        };
        if let Err(kind) = self.fits::<Vec<u8>>(arg.len()) {
            return Err(SubmitError::new(kind, Some(arg)));
        }
        self.dispatch::<Vec<u8>>(Target::Named(index), "named task", arg, opts, true)
            .map_err(|(kind, arg)| SubmitError::new(kind, Some(arg)))
    }

    /// The registry index of the named task `name` this pool declared.
    fn named_index<A>(&self, name: &str) -> Result<u32, SubmitErrorKind> {
        let declared = self
            .inner
            .named
            .as_ref()
            .and_then(|names| names.iter().position(|n| n == name));
        match declared {
            Some(index) => Ok(index as u32),
            None => {
                let declared = self.inner.named.as_deref().unwrap_or_default().join(", ");
                Err(self.refusal(
                    type_name::<A>(),
                    format!(
                        "no named task {name:?} in this pool (declared with named_tasks: \
                         [{declared}])"
                    ),
                ))
            }
        }
    }

    fn refusal(&self, type_name: &str, message: String) -> SubmitErrorKind {
        SubmitErrorKind::Encode(CodecFailure {
            side: Side::Parent,
            type_name: type_name.to_owned(),
            codec: self.inner.codec.name().into_owned(),
            message,
        })
    }

    fn send<T, R>(
        &self,
        target: Target,
        name: &'static str,
        arg: &T,
        opts: SubmitOptions,
    ) -> Result<Future<R>, SubmitErrorKind>
    where
        T: Serialize + ?Sized,
        R: DeserializeOwned + Send + 'static,
    {
        let bytes = self.encode(arg)?;
        self.dispatch::<R>(target, name, bytes, opts, false)
            .map_err(|(kind, bytes)| {
                self.inner.bufs.put(bytes);
                kind
            })
    }

    /// Encodes an argument into a buffer from the free list. A `Serialize` that panics is
    /// refused like one that fails.
    fn encode<T: Serialize + ?Sized>(&self, arg: &T) -> Result<Vec<u8>, SubmitErrorKind> {
        let inner = &self.inner;
        let mut bytes = inner.bufs.take();
        match encode_caught(&inner.codec, arg, &mut bytes) {
            // A refused buffer is not put back in the free list: too large to keep.
            Ok(()) => self.fits::<T>(bytes.len()).map(|()| bytes),
            Err(message) => {
                inner.bufs.put(bytes);
                Err(SubmitErrorKind::Encode(CodecFailure {
                    side: Side::Parent,
                    type_name: type_name::<T>().to_owned(),
                    codec: inner.codec.name().into_owned(),
                    message,
                }))
            }
        }
    }

    /// Queues an encoded request. `raw_result`: the worker answers `R` as raw bytes (the
    /// bytes fast path, functions sent by offset only). A refusal hands the bytes back.
    fn dispatch<R>(
        &self,
        target: Target,
        name: &'static str,
        arg: Vec<u8>,
        opts: SubmitOptions,
        raw_result: bool,
    ) -> Result<Future<R>, (SubmitErrorKind, Vec<u8>)>
    where
        R: DeserializeOwned + Send + 'static,
    {
        let (task, opts, convert) = self.prepare::<R>(target, name, arg, opts, raw_result);
        self.inner.engine.submit(task, opts, convert).map_err(|e| {
            let kind = e.kind().clone();
            (kind, e.into_task().map(|t| t.arg).unwrap_or_default())
        })
    }

    /// The engine's input for an encoded request, its options (labelled for timeouts) and
    /// the conversion of the worker's reply into `R`.
    fn prepare<R>(
        &self,
        target: Target,
        name: &'static str,
        arg: Vec<u8>,
        mut opts: SubmitOptions,
        raw_result: bool,
    ) -> (
        EncodedTask,
        SubmitOptions,
        impl FnOnce(EncodedReply) -> Result<R, TaskError> + Send + 'static,
    )
    where
        R: DeserializeOwned + Send + 'static,
    {
        let inner = &self.inner;
        // Name the task after its function where the engine reports it (timeouts); the
        // backend names it in death reports itself, without a per-task allocation.
        if opts.label.is_none() && (opts.timeout.is_some() || inner.has_timeout) {
            opts.label = Some(name.to_owned());
        }
        let codec = inner.codec.clone();
        let bufs = Arc::clone(&inner.bufs);
        (
            EncodedTask { target, name, arg },
            opts,
            move |reply: EncodedReply| decode_reply(&codec, &bufs, raw_result, reply),
        )
    }
}

impl<C: Codec> Executor for ProcessPool<C> {
    fn shutdown(&self, mode: Shutdown) -> ShutdownReport {
        self.inner.shut_down.store(true, Ordering::SeqCst);
        self.inner.engine.shutdown(mode, None)
    }

    fn stats(&self) -> Stats {
        let mut s = self.inner.engine.stats();
        s.executor_id = self.inner.id;
        s
    }

    fn executor_id(&self) -> u64 {
        self.inner.id
    }
}

impl<C, F, A, R> Submit<Call<F, A>> for ProcessPool<C>
where
    C: Codec,
    F: Fn(A) -> R + Copy + Send + Sync + 'static,
    A: Serialize + DeserializeOwned + Send + 'static,
    R: Serialize + DeserializeOwned + Send + 'static,
{
    /// [`ProcessPool::apply`]: on a borrowed idle worker when there is one.
    fn apply(&self, task: Call<F, A>) -> Result<R, TaskError> {
        ProcessPool::apply(self, task.f, task.arg)
    }

    fn submit_with(
        &self,
        task: Call<F, A>,
        opts: SubmitOptions,
    ) -> Result<Future<R>, SubmitError<Call<F, A>>> {
        let mut task = task;
        let (target, body, callers_bytes) =
            match self.call_request::<F, A, R>(&task.f, &mut task.arg) {
                Ok(request) => request,
                Err(kind) => return Err(SubmitError::new(kind, Some(task))),
            };
        match self.dispatch(
            target,
            short_name::<F>(),
            body,
            opts,
            self.raw_result::<R>(),
        ) {
            Ok(future) => {
                drop_argument(task);
                Ok(future)
            }
            Err((kind, body)) => {
                // Refused: the caller's bytes go back into the task, a buffer to the list.
                if callers_bytes {
                    bytes::restore(&mut task.arg, body);
                } else {
                    self.inner.bufs.put(body);
                }
                Err(SubmitError::new(kind, Some(task)))
            }
        }
    }
}

impl<C, F, A, R> Submit<Call<ChunkFn<F>, Vec<A>>> for ProcessPool<C>
where
    C: Codec,
    F: Fn(A) -> R + Copy + Send + Sync + 'static,
    A: Serialize + DeserializeOwned + Send + 'static,
    R: Serialize + DeserializeOwned + Send + 'static,
{
    fn submit_with(
        &self,
        task: Call<ChunkFn<F>, Vec<A>>,
        opts: SubmitOptions,
    ) -> Result<Future<ChunkResults<R>>, SubmitError<Call<ChunkFn<F>, Vec<A>>>> {
        if self.inner.named.is_some() {
            let kind = self.refusal(type_name::<F>(), CLOSURES_IN_NAMED_POOL.to_owned());
            return Err(SubmitError::new(kind, Some(task)));
        }
        let f = Target::Fn(transfer::chunk_ref::<F, A, R, C>(&task.f.0));
        match self.send(f, short_name::<F>(), &task.arg, opts) {
            Ok(future) => {
                drop_argument(task);
                Ok(future)
            }
            Err(kind) => Err(SubmitError::new(kind, Some(task))),
        }
    }
}

const CLOSURES_IN_NAMED_POOL: &str = "this pool runs named tasks only (built with named_tasks): \
     use submit_named, or a pool without named_tasks for functions and closures";

/// Generic code over any pool ([`Parallel`]): the same calls as [`ProcessPool::submit_with`]
/// and [`Executor::map_with`].
impl<C: Codec> Parallel for ProcessPool<C> {
    fn submit_fn_with<F, A, R>(
        &self,
        f: F,
        arg: A,
        opts: SubmitOptions,
    ) -> Result<Future<R>, SubmitError<Call<F, A>>>
    where
        F: Fn(A) -> R + Copy + Send + Sync + 'static,
        A: Serialize + DeserializeOwned + Send + 'static,
        R: Serialize + DeserializeOwned + Send + 'static,
    {
        ProcessPool::submit_with(self, f, arg, opts)
    }

    fn map_fn_with<'a, F, A, R, I>(&'a self, f: F, items: I, opts: MapOptions) -> MapIter<'a, R>
    where
        F: Fn(A) -> R + Copy + Send + Sync + 'static,
        A: Serialize + DeserializeOwned + Send + 'static,
        R: Serialize + DeserializeOwned + Send + 'static,
        I: IntoIterator<Item = A>,
        I::IntoIter: 'a,
    {
        Executor::map_with(self, f, items, opts)
    }
}
