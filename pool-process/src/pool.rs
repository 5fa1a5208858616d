//! [`ProcessPool`], its builder, and its `Executor`/`Submit` implementations.

use std::any::type_name;
use std::ffi::OsString;
use std::marker::PhantomData;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use pool_codec::{Codec, DefaultCodec};
use pool_core::{
    BrokenReason, Call, ChunkFn, CodecFailure, ConfigError, Engine, EngineConfig, Executor, Future,
    MapIter, OnWorkerDeath, Shutdown, ShutdownReport, Side, Stats, Submit, SubmitError,
    SubmitErrorKind, SubmitOptions, TaskError,
};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::backend::{EncodedReply, EncodedTask, ProcessBackend, Target};
use crate::buffers::BufPool;
use crate::bytes;
use crate::protocol::{HookCall, Setup};
use crate::supervisor::{StartConfig, StartMethod};
use crate::transfer::{self, HookResult};
use crate::transport::TransportKind;

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
/// use pool_process::ProcessPool;
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

/// Builds a [`ProcessPool`]; every setter documents its default. By value: chain the setters,
/// then [`build`](Self::build), which validates everything and returns an error instead of
/// panicking.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use pool_core::OnWorkerDeath;
/// use pool_process::{ProcessPool, TransportKind};
///
/// fn warm_up(cache_mib: u32) -> Result<(), String> {
///     if cache_mib > 1024 { Err(format!("{cache_mib} MiB is too much")) } else { Ok(()) }
/// }
///
/// let pool = ProcessPool::builder()
///     .max_workers(2)
///     .min_workers(1)
///     .idle_timeout(Some(Duration::from_secs(30)))
///     .max_tasks_per_worker(10_000)
///     .max_memory_per_worker(512 << 20)
///     .task_timeout(Duration::from_secs(60))
///     .env("OMP_NUM_THREADS", "1")
///     .transport(TransportKind::Pipe)
///     .on_worker_death(OnWorkerDeath::Replace)
///     .initializer(warm_up, 64)
///     .name("doc-pool")
///     .build()?;
/// assert_eq!(pool.submit(|x: u8| x.count_ones(), 0b1011)?.result()?, 3);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// Invalid settings are an error from `build`:
///
/// ```
/// let err = pool_process::ProcessPool::builder().max_workers(0).build().unwrap_err();
/// assert!(err.to_string().contains("max_workers"));
/// ```
#[must_use]
pub struct ProcessPoolBuilder<C: Codec = DefaultCodec> {
    engine: EngineConfig,
    env: Vec<(OsString, Option<OsString>)>,
    transport: TransportKind,
    codec: C,
    init: Option<HookCall>,
    fin: Option<HookCall>,
    start_timeout: Duration,
    program: Option<PathBuf>,
    start_method: StartMethod,
    named: Option<Vec<String>>,
    problems: Vec<String>,
}

impl ProcessPool<DefaultCodec> {
    /// A builder with the defaults (see each setter).
    pub fn builder() -> ProcessPoolBuilder<DefaultCodec> {
        ProcessPoolBuilder {
            engine: EngineConfig {
                name: "pool-process".to_owned(),
                ..default_engine_config()
            },
            env: Vec::new(),
            transport: TransportKind::default(),
            codec: DefaultCodec::default(),
            init: None,
            fin: None,
            start_timeout: Duration::from_secs(60),
            program: None,
            start_method: StartMethod::default(),
            named: None,
            problems: Vec::new(),
        }
    }
}

/// `EngineConfig::default()`, computed once per process. Its `max_workers` asks the OS for
/// the CPUs this process may use (`available_parallelism` reads the affinity mask and the
/// cgroup quota files: 25–75 µs here, 2–4 % of a cold start), which is worth doing once rather
/// than for every pool built. The count is that of the first pool built in the process.
fn default_engine_config() -> EngineConfig {
    static DEFAULT: OnceLock<EngineConfig> = OnceLock::new();
    DEFAULT.get_or_init(EngineConfig::default).clone()
}

fn encode_hook<F, A, H, C>(codec: &C, f: &F, arg: &A) -> Result<HookCall, String>
where
    F: Fn(A) -> H + Copy + Send + Sync + 'static,
    A: Serialize + DeserializeOwned,
    H: HookResult,
    C: Codec,
{
    let mut bytes = Vec::new();
    encode_caught(codec, arg, &mut bytes).map_err(|message| {
        format!(
            "cannot encode the hook argument of type {} with codec {}: {message}",
            type_name::<A>(),
            codec.name(),
        )
    })?;
    Ok(HookCall {
        f: transfer::hook_ref::<F, A, H, C>(f),
        arg: bytes,
    })
}

impl<C: Codec> ProcessPoolBuilder<C> {
    /// Most workers at once. Default: the CPUs this process may use
    /// (`std::thread::available_parallelism`, which honours affinity and cgroup quotas), as
    /// counted when the process built its first pool.
    pub fn max_workers(mut self, n: usize) -> Self {
        self.engine.max_workers = n;
        self
    }

    /// Workers kept even when idle. Default 0.
    pub fn min_workers(mut self, n: usize) -> Self {
        self.engine.min_workers = n;
        self
    }

    /// An idle worker above `min_workers` exits after this long; `None` keeps it. Default 60 s.
    pub fn idle_timeout(mut self, d: Option<Duration>) -> Self {
        self.engine.idle_timeout = d;
        self
    }

    /// Replace a worker after it ran this many tasks. Default: never.
    pub fn max_tasks_per_worker(mut self, n: u64) -> Self {
        self.engine.max_tasks_per_worker = Some(n);
        self
    }

    /// Replace a worker whose resident memory exceeds this many bytes after a task.
    /// Default: no limit.
    pub fn max_memory_per_worker(mut self, bytes: u64) -> Self {
        self.engine.max_memory_per_worker = Some(bytes);
        self
    }

    /// Time limit per task; past it the worker's process tree is killed and the task fails
    /// with `TaskError::TimedOut`. Default: none.
    pub fn task_timeout(mut self, d: Duration) -> Self {
        self.engine.task_timeout = Some(d);
        self
    }

    /// What a worker death does. Default `OnWorkerDeath::Replace`.
    pub fn on_worker_death(mut self, policy: OnWorkerDeath) -> Self {
        self.engine.on_worker_death = policy;
        self
    }

    /// Consecutive start failures that break the pool. Default 3.
    pub fn max_start_failures(mut self, n: u32) -> Self {
        self.engine.max_start_failures = n;
        self
    }

    /// Bound the queue of pending tasks. Default: unbounded.
    pub fn queue_capacity(mut self, n: usize) -> Self {
        self.engine.queue_capacity = Some(n);
        self
    }

    /// Pool name (engine thread names). Default `"pool-process"`.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.engine.name = name.into();
        self
    }

    /// How long one worker may take to start, handshake and run its initializer.
    /// Default 60 s.
    pub fn start_timeout(mut self, d: Duration) -> Self {
        self.start_timeout = d;
        self
    }

    /// Set an environment variable in every worker (before it starts). Default: the parent's
    /// environment unchanged.
    pub fn env(mut self, key: impl Into<OsString>, value: impl Into<OsString>) -> Self {
        self.env.push((key.into(), Some(value.into())));
        self
    }

    /// Remove an environment variable in every worker.
    pub fn env_remove(mut self, key: impl Into<OsString>) -> Self {
        self.env.push((key.into(), None));
        self
    }

    /// The transport between parent and workers. Default [`TransportKind::Pipe`].
    pub fn transport(mut self, kind: TransportKind) -> Self {
        self.transport = kind;
        self
    }

    /// Run a different executable as the worker (it must be the identical build, checked at
    /// the handshake; useful with [`crate::worker_main`]). Default: this program itself, via
    /// a descriptor held on it.
    pub fn worker_program(mut self, path: impl Into<PathBuf>) -> Self {
        self.program = Some(path.into());
        self
    }

    /// How workers are started: [`StartMethod::Spawn`] (an exec of this program per worker)
    /// or [`StartMethod::ForkServer`] (forked by the process's fork server, which is exec'd
    /// once and shared by all pools). Ignored with
    /// [`worker_program`](Self::worker_program), which always spawns. Default
    /// [`StartMethod::ForkServer`].
    pub fn start_method(mut self, method: StartMethod) -> Self {
        self.start_method = method;
        self
    }

    /// Make this a named-tasks pool: its workers run only tasks registered with
    /// [`named_task!`](crate::named_task) under these names, submitted with
    /// [`ProcessPool::submit_named`]. The worker may then be a different binary
    /// ([`worker_program`](Self::worker_program)) — every name must be registered there with
    /// this pool's codec, checked at the handshake. Closures cannot be submitted to such a
    /// pool, and initializers/finalizers are not supported. Default: not a named pool.
    pub fn named_tasks<I, S>(mut self, names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.named = Some(names.into_iter().map(Into::into).collect());
        self
    }

    /// Use codec `codec` for arguments and results. Default [`DefaultCodec`]. Set it before
    /// `initializer`/`finalizer` (their arguments are encoded with the codec in force).
    pub fn codec<C2: Codec>(self, codec: C2) -> ProcessPoolBuilder<C2> {
        let mut problems = self.problems;
        if self.init.is_some() || self.fin.is_some() {
            problems.push("set the codec before the initializer and the finalizer".to_owned());
        }
        ProcessPoolBuilder {
            engine: self.engine,
            env: self.env,
            transport: self.transport,
            codec,
            init: None,
            fin: None,
            start_timeout: self.start_timeout,
            program: self.program,
            start_method: self.start_method,
            named: self.named,
            problems,
        }
    }

    /// Encodes a hook call with the pool's codec; a failure is kept for `build()` to report.
    fn hook<F, A, H>(&mut self, f: F, arg: A) -> Option<HookCall>
    where
        F: Fn(A) -> H + Copy + Send + Sync + 'static,
        A: Serialize + DeserializeOwned,
        H: HookResult,
    {
        encode_hook(&self.codec, &f, &arg)
            .map_err(|e| self.problems.push(e))
            .ok()
    }

    /// Run `f(arg)` once in every worker before its first task. `f` returns `()` or
    /// `Result<(), E: Display>`; an error, a panic or a crash breaks the pool with that cause.
    /// Default: none.
    pub fn initializer<F, A, H>(mut self, f: F, arg: A) -> Self
    where
        F: Fn(A) -> H + Copy + Send + Sync + 'static,
        A: Serialize + DeserializeOwned,
        H: HookResult,
    {
        self.init = self.hook(f, arg);
        self
    }

    /// Run `f(arg)` once in every worker before a clean exit; a failure is reported in the
    /// shutdown report and never hangs shutdown. Default: none.
    pub fn finalizer<F, A, H>(mut self, f: F, arg: A) -> Self
    where
        F: Fn(A) -> H + Copy + Send + Sync + 'static,
        A: Serialize + DeserializeOwned,
        H: HookResult,
    {
        self.fin = self.hook(f, arg);
        self
    }

    /// Everything that defines the pool except `max_workers`, as text: two builders with the
    /// same fingerprint make interchangeable pools (used by [`crate::reusable`]).
    pub(crate) fn fingerprint(&self) -> String {
        let mut engine = self.engine.clone();
        engine.max_workers = 0;
        format!(
            "{engine:?}|{:?}|{:?}|{}|{}|{:?}|{:?}|{:?}|{:?}|{:?}|{:?}|{:?}",
            self.env,
            self.transport,
            std::any::type_name::<C>(),
            self.codec.name(),
            self.init,
            self.fin,
            self.start_timeout,
            self.program,
            self.start_method,
            self.named,
            self.problems
        )
    }

    /// The `max_workers` this builder asks for.
    pub(crate) fn requested_max_workers(&self) -> usize {
        self.engine.max_workers
    }

    /// Checks the settings and creates the pool. Workers start on demand (or `min_workers`
    /// of them at once).
    ///
    /// # Errors
    ///
    /// Invalid settings (`max_workers` 0, `min_workers > max_workers`, ...), a hook argument
    /// that cannot be encoded, or the running executable cannot be opened.
    pub fn build(self) -> Result<ProcessPool<C>, ConfigError> {
        if let Some(p) = self.problems.first() {
            return Err(ConfigError::new(p.clone()));
        }
        if self.named.is_some() && (self.init.is_some() || self.fin.is_some()) {
            return Err(ConfigError::new(
                "a named-tasks pool cannot have an initializer or a finalizer",
            ));
        }
        if self.program.is_none() {
            crate::sys::exe::self_exe().map_err(ConfigError::new)?;
        }
        let bufs = Arc::new(BufPool::default());
        let config = StartConfig {
            env: self.env,
            transport: self.transport,
            program: self.program,
            setup: Setup {
                probe: transfer::probe_ref::<C>(),
                init: self.init,
                fin: self.fin,
            },
            codec_name: self.codec.name(),
            start_timeout: self.start_timeout,
            start_method: self.start_method,
            named: self.named.clone(),
        };
        let backend = ProcessBackend::<C> {
            config: Arc::new(config),
            bufs: Arc::clone(&bufs),
            _codec: PhantomData,
        };
        let has_timeout = self.engine.task_timeout.is_some();
        let engine = Engine::new(backend, self.engine)?;
        Ok(ProcessPool {
            inner: Arc::new(Inner {
                id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
                shut_down: AtomicBool::new(false),
                engine,
                has_timeout,
                named: self.named,
                bufs,
                codec: self.codec,
            }),
        })
    }
}

impl<C: Codec> ProcessPool<C> {
    /// Runs `f(arg)` in a worker process.
    ///
    /// A `Vec<u8>` or `serde_bytes::ByteBuf` argument or result crosses as raw bytes, not
    /// through the codec: the argument's own buffer is written to the worker (no encoding
    /// copy), and a byte result arrives as the vector the parent received.
    ///
    /// `f` must be zero-sized: a fn item or a closure that captures nothing. Anything else
    /// is refused when the program is built, with a message that says so:
    ///
    /// ```compile_fail
    /// let pool = pool_process::ProcessPool::builder().build().unwrap();
    /// let offset = 10u64;
    /// // Captures `offset`: not zero-sized, cannot be sent to another process.
    /// let _ = pool.submit(move |x: u64| x + offset, 1);
    /// ```
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = pool_process::ProcessPool::builder().max_workers(1).build()?;
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
    /// let pool = pool_process::ProcessPool::builder().max_workers(1).build()?;
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
            bytes::is_raw::<R>(),
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
        let target = Target::Fn(transfer::task_ref::<F, A, R, C>(f));
        match bytes::take(arg) {
            Some(raw) => Ok((target, raw, true)),
            None => Ok((target, self.encode(arg)?, false)),
        }
    }

    /// Applies `f` to every item in worker processes, in order, lazily, in automatically
    /// sized chunks (see `pool_core::Executor::map_with` for options).
    pub fn map<'a, F, A, R, I>(&'a self, f: F, items: I) -> MapIter<'a, R>
    where
        F: Fn(A) -> R + Copy + Send + Sync + 'static,
        A: Serialize + DeserializeOwned + Send + 'static,
        R: Serialize + DeserializeOwned + Send + 'static,
        I: IntoIterator<Item = A>,
        I::IntoIter: 'a,
    {
        Executor::map(self, f, items)
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
    /// The pool must have been built with [`ProcessPoolBuilder::named_tasks`] listing `name`.
    ///
    /// # Errors
    ///
    /// As [`ProcessPool::submit`]; a name the pool did not declare is refused here
    /// (`SubmitErrorKind::Encode`, naming the declared ones).
    ///
    /// # Examples
    ///
    /// ```
    /// fn cube(x: i64) -> i64 {
    ///     x * x * x
    /// }
    /// pool_process::named_task!("doc-cube", cube);
    ///
    /// let pool = pool_process::ProcessPool::builder()
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
        let declared = self
            .inner
            .named
            .as_ref()
            .and_then(|names| names.iter().position(|n| n == name));
        let Some(index) = declared else {
            let declared = self.inner.named.as_deref().unwrap_or_default().join(", ");
            let err = self.refusal(
                type_name::<A>(),
                format!(
                    "no named task {name:?} in this pool (declared with named_tasks: [{declared}])"
                ),
            );
            return Err(SubmitError::new(err, Some(arg)));
        };
        match self.send(
            Target::Named(index as u32),
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

    fn refusal(&self, type_name: &str, message: String) -> SubmitErrorKind {
        SubmitErrorKind::Encode(TaskError::Encode(CodecFailure {
            side: Side::Parent,
            type_name: type_name.to_owned(),
            codec: self.inner.codec.name().to_owned(),
            message,
        }))
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
            Ok(()) => Ok(bytes),
            Err(message) => {
                inner.bufs.put(bytes);
                Err(SubmitErrorKind::Encode(TaskError::Encode(CodecFailure {
                    side: Side::Parent,
                    type_name: type_name::<T>().to_owned(),
                    codec: inner.codec.name().to_owned(),
                    message,
                })))
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
            move |reply: EncodedReply| {
                if raw_result {
                    let mut bytes = reply.bytes;
                    // The reply buffer came from the free list: do not hand the caller
                    // far more capacity than the result needs.
                    if bytes.capacity() > 2 * bytes.len() + 4096 {
                        bytes.shrink_to_fit();
                    }
                    if let Some(value) = bytes::make::<R>(bytes) {
                        return Ok(value);
                    }
                    return Err(TaskError::Decode(CodecFailure {
                        side: Side::Parent,
                        type_name: type_name::<R>().to_owned(),
                        codec: "raw bytes".to_owned(),
                        message: "not a byte type".to_owned(),
                    }));
                }
                // On the pool's thread (or a caller's, for `apply`): a `Deserialize` that
                // panics fails this task with a decode error, like one that fails.
                let decoded = match pool_core::catch_panic(|| codec.decode::<R>(&reply.bytes)) {
                    Ok(r) => r.map_err(|e| e.message().to_owned()),
                    Err(p) => Err(transfer::panicked_in(
                        "Deserialize",
                        &p.message,
                        p.location.as_deref(),
                    )),
                };
                let value = decoded.map_err(|message| {
                    TaskError::Decode(CodecFailure {
                        side: Side::Parent,
                        type_name: type_name::<R>().to_owned(),
                        codec: codec.name().to_owned(),
                        message,
                    })
                });
                bufs.put(reply.bytes);
                value
            },
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
        match self.dispatch(target, short_name::<F>(), body, opts, bytes::is_raw::<R>()) {
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
    ) -> Result<Future<Vec<R>>, SubmitError<Call<ChunkFn<F>, Vec<A>>>> {
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

/// Encodes `value` into `out` with `codec`. A `Serialize` that panics is one more encode
/// failure: the panic is caught (it never unwinds into the caller), `out` is put back to its
/// length, and the message names the panic. `Err` is the failure's message.
fn encode_caught<C: Codec, T: Serialize + ?Sized>(
    codec: &C,
    value: &T,
    out: &mut Vec<u8>,
) -> Result<(), String> {
    let start = out.len();
    match pool_core::catch_panic(|| codec.encode(value, out)) {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(e.message().to_owned()),
        Err(p) => {
            out.truncate(start);
            Err(transfer::panicked_in(
                "Serialize",
                &p.message,
                p.location.as_deref(),
            ))
        }
    }
}

/// Drops a task's argument once it is encoded (or its task refused without handing it
/// back). Its `Drop` is user code: a panic there is reported through `tracing` and
/// contained, so it never unwinds out of a call that has already queued the task (the
/// caller would lose the future of a task that runs anyway).
fn drop_argument<T>(arg: T) {
    if std::mem::needs_drop::<T>()
        && let Err(p) = pool_core::catch_panic(move || drop(arg))
    {
        let thread = std::thread::current();
        // The same event as the engine's for user code it contains on its threads.
        tracing::warn!(target: "pool", thread = thread.name().unwrap_or("<unnamed>"),
            what = "dropping a task's argument after encoding it", panic = %p.message,
            location = p.location.as_deref().unwrap_or("<unknown>"),
            "user code panicked; contained");
    }
}

const CLOSURES_IN_NAMED_POOL: &str = "this pool runs named tasks only (built with named_tasks): \
     use submit_named, or a pool without named_tasks for functions and closures";

/// `F`'s type name without its leading crate path: `tour::crash` for a fn item,
/// `tests::main::{{closure}}` for a closure. A slice of a static string: no allocation.
fn short_name<F>() -> &'static str {
    let full = type_name::<F>();
    let keep = if full.ends_with("{{closure}}") { 3 } else { 2 };
    let mut cut = full.len();
    for _ in 0..keep {
        match full[..cut].rfind("::") {
            Some(i) => cut = i,
            None => return full,
        }
    }
    &full[cut + 2..]
}

#[cfg(test)]
mod tests {
    fn plain(x: u32) -> u32 {
        x
    }

    #[test]
    fn short_names() {
        fn name_of<F>(_: &F) -> &'static str {
            super::short_name::<F>()
        }
        assert_eq!(name_of(&plain), "tests::plain");
        let c = |x: u32| x;
        assert_eq!(name_of(&c), "tests::short_names::{{closure}}");
        assert_eq!(super::short_name::<u32>(), "u32");
    }
}
