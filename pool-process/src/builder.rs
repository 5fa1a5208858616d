//! [`ProcessPoolBuilder`]: every setting of a process pool, validated by `build`.

use std::any::type_name;
use std::ffi::OsString;
use std::marker::PhantomData;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use pool_codec::{Codec, DefaultCodec};
use pool_core::{BuildError, ConfigError, Engine, EngineConfig, engine_defaults};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::backend::ProcessBackend;
use crate::buffers::BufPool;
use crate::protocol::{HookCall, Setup};
use crate::supervisor::{StartConfig, StartMethod};
use crate::transfer::{self, HookResult};
use crate::transport::TransportKind;

use crate::pool::ProcessPool;
use crate::values::{codec_reaches_workers, encode_caught};

/// Builds a [`ProcessPool`]; every setter documents its default. By value: chain the setters,
/// then [`build`](Self::build), which validates everything and returns an error instead of
/// panicking.
///
/// # Examples
///
/// ```
/// # mod pool { pub use pool_core::*; pub use pool_process::*; pub mod codec { pub use pool_codec::*; } pub mod prelude { pub use pool_core::{Executor, MapOptions, Parallel, Shutdown, Submit, SubmitOptions, TaskError}; pub use pool_process::ProcessPool; } } // what `pool` re-exports
/// use std::time::Duration;
/// use pool::OnWorkerDeath;
/// use pool::{ProcessPool, TransportKind};
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
/// # mod pool { pub use pool_core::*; pub use pool_process::*; pub mod codec { pub use pool_codec::*; } pub mod prelude { pub use pool_core::{Executor, MapOptions, Parallel, Shutdown, Submit, SubmitOptions, TaskError}; pub use pool_process::ProcessPool; } } // what `pool` re-exports
/// let err = pool::ProcessPool::builder().max_workers(0).build().unwrap_err();
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
    max_frame: usize,
    problems: Vec<String>,
}

/// The smallest frame limit a pool may set: room for any request and reply header.
const MIN_FRAME: usize = 4096;
/// The largest: what every transport carries in one message (the shared-memory transport's
/// region for large payloads is 2 GiB).
const MAX_FRAME_SIZE: usize = 2 << 30;

impl ProcessPool<DefaultCodec> {
    /// A builder with the defaults (see each setter).
    pub fn builder() -> ProcessPoolBuilder<DefaultCodec> {
        ProcessPoolBuilder {
            engine: engine_defaults("pool-process"),
            env: Vec::new(),
            transport: TransportKind::default(),
            codec: DefaultCodec::default(),
            init: None,
            fin: None,
            start_timeout: Duration::from_secs(60),
            program: None,
            start_method: StartMethod::default(),
            named: None,
            max_frame: pool_codec::DEFAULT_MAX_FRAME,
            problems: Vec::new(),
        }
    }
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
    pool_core::engine_setters!(engine, "pool-process");

    /// The largest message between the pool and a worker, in bytes: an encoded argument
    /// (with its request header) or result. Default 1 GiB, at most 2 GiB, at least 4 KiB.
    /// An argument over it is refused at `submit` and a result over it fails its task in the
    /// worker, which lives on; both errors name the size and this limit.
    ///
    /// # Examples
    ///
    /// ```
    /// # mod pool { pub use pool_core::*; pub use pool_process::*; pub mod codec { pub use pool_codec::*; } pub mod prelude { pub use pool_core::{Executor, MapOptions, Parallel, Shutdown, Submit, SubmitOptions, TaskError}; pub use pool_process::ProcessPool; } } // what `pool` re-exports
    /// let pool = pool::ProcessPool::builder()
    ///     .max_workers(1)
    ///     .max_frame_size(1 << 20)
    ///     .build()?;
    /// let err = pool.submit(|v: Vec<u8>| v.len(), vec![0u8; 2 << 20]).unwrap_err();
    /// assert!(err.to_string().contains("over the 1048576-byte frame limit"), "{err}");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn max_frame_size(mut self, bytes: usize) -> Self {
        if (MIN_FRAME..=MAX_FRAME_SIZE).contains(&bytes) {
            self.max_frame = bytes;
        } else {
            self.problems.push(format!(
                "max_frame_size must be between {MIN_FRAME} and {MAX_FRAME_SIZE} bytes, not \
                 {bytes}"
            ));
        }
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
    ///
    /// Each worker rebuilds the codec from [`Codec::configuration`] with
    /// [`Codec::configured`] (by default: `C2::default()`). A codec whose settings would not
    /// survive that (a key or a level it does not send) is refused by
    /// [`build`](Self::build), which compares the two on a sample value, rather than failing
    /// every task in the workers.
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
            max_frame: self.max_frame,
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
            "{engine:?}|{:?}|{:?}|{}|{}|{:?}|{}|{:?}|{:?}|{:?}|{:?}|{:?}|{:?}|{:?}",
            self.env,
            self.transport,
            std::any::type_name::<C>(),
            self.codec.name(),
            self.codec.configuration(),
            self.max_frame,
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
    /// A [`BuildError`] naming the pool: invalid settings (`max_workers` 0,
    /// `min_workers > max_workers`, ...), a hook argument that cannot be encoded, or the
    /// running executable cannot be opened.
    pub fn build(self) -> Result<ProcessPool<C>, BuildError> {
        let name = self.engine.name.clone();
        self.build_checked()
            .map_err(|source| BuildError::new("process", name, source))
    }

    fn build_checked(self) -> Result<ProcessPool<C>, ConfigError> {
        if let Some(p) = self.problems.first() {
            return Err(ConfigError::new(p.clone()));
        }
        codec_reaches_workers(&self.codec).map_err(ConfigError::new)?;
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
                codec_config: self.codec.configuration(),
                codec_name: self.codec.name().into_owned(),
                max_frame: self.max_frame,
                init: self.init,
                fin: self.fin,
            },
            codec_name: self.codec.name().into_owned(),
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
        Ok(ProcessPool::from_parts(
            engine,
            has_timeout,
            self.named,
            bufs,
            self.codec,
        ))
    }
}
