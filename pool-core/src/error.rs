//! Errors: why a task produced no value ([`TaskError`]), why a submit was refused
//! ([`SubmitError`]), and a serializable error chain ([`RemoteError`]).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Identifies one worker of one pool. Displays as `worker #3`.
///
/// # Examples
///
/// ```
/// assert_eq!(pool::WorkerId(3).to_string(), "worker #3");
/// ```
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize,
)]
pub struct WorkerId(pub u64);

impl fmt::Display for WorkerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "worker #{}", self.0)
    }
}

/// Identifies one submitted task, unique in the process. Displays as `task #17`.
///
/// # Examples
///
/// ```
/// let (_p, fut) = pool::backend::promise::<()>();
/// assert!(fut.id().to_string().starts_with("task #"));
/// ```
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize,
)]
pub struct TaskId(pub u64);

impl fmt::Display for TaskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "task #{}", self.0)
    }
}

/// A panic caught at the worker boundary.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PanicInfo {
    /// The panic message (`"<non-string panic payload>"` when it was not a string).
    pub message: String,
    /// `file:line:column` of the panic, when it could be captured.
    pub location: Option<String>,
    /// Backtrace text, when `RUST_BACKTRACE` enabled it in the worker.
    pub backtrace: Option<String>,
    /// In a `map`: the index, in the input, of the item whose call panicked (the other
    /// items of its chunk have their own results).
    #[serde(default)]
    pub item: Option<usize>,
}

impl fmt::Display for PanicInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.item {
            Some(i) => write!(f, "task panicked on item {i}: {}", self.message)?,
            None => write!(f, "task panicked: {}", self.message)?,
        }
        if let Some(loc) = &self.location {
            write!(f, " (at {loc})")?;
        }
        Ok(())
    }
}

/// How a worker process ended.
///
/// # Examples
///
/// ```
/// use pool::ExitReason;
/// let r = ExitReason::Signal { number: 11, name: "SIGSEGV".into() };
/// assert_eq!(r.to_string(), "SIGSEGV (signal 11)");
/// assert_eq!(ExitReason::Code(3).to_string(), "exit code 3");
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ExitReason {
    /// Exited with this status code.
    Code(i32),
    /// Killed by a signal.
    Signal {
        /// The signal number.
        number: i32,
        /// Its name, such as `SIGKILL`.
        name: String,
    },
    /// Gone, reason not known (a thread worker, or the status could not be read).
    Unknown,
}

impl fmt::Display for ExitReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExitReason::Code(c) => write!(f, "exit code {c}"),
            ExitReason::Signal { number, name } => write!(f, "{name} (signal {number})"),
            ExitReason::Unknown => f.write_str("unknown exit reason"),
        }
    }
}

/// A worker died while running a task.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkerDied {
    /// Which worker.
    pub worker: WorkerId,
    /// Its process id, for process workers.
    pub pid: Option<u32>,
    /// How it ended.
    pub exit: ExitReason,
    /// The task that was running (its label, or `task #N`).
    pub task: String,
    /// The last lines the worker wrote to stderr (may be empty).
    pub stderr_tail: String,
}

impl fmt::Display for WorkerDied {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.worker)?;
        if let Some(pid) = self.pid {
            write!(f, " (pid {pid})")?;
        }
        write!(f, " died with {} while running {}", self.exit, self.task)?;
        if !self.stderr_tail.is_empty() {
            write!(f, "; its stderr ended with:\n{}", self.stderr_tail)?;
        }
        Ok(())
    }
}

/// Which side of a process boundary a codec failure happened on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Side {
    /// In the parent (the submitting process).
    Parent,
    /// In the worker process.
    Worker,
}

impl fmt::Display for Side {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Side::Parent => "parent",
            Side::Worker => "worker",
        })
    }
}

/// A value could not be encoded or decoded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CodecFailure {
    /// Where it failed.
    pub side: Side,
    /// The Rust type being (de)serialized.
    pub type_name: String,
    /// The codec's name.
    pub codec: String,
    /// The codec's message.
    pub message: String,
}

impl fmt::Display for CodecFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} in the {} with codec {}: {}",
            self.type_name, self.side, self.codec, self.message
        )
    }
}

impl std::error::Error for CodecFailure {}

/// Why a pool is broken. Cheap to clone (shared).
///
/// # Examples
///
/// ```
/// let r = pool::BrokenReason::new("initializer failed: no config");
/// assert_eq!(r.to_string(), "initializer failed: no config");
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "String", into = "String")]
pub struct BrokenReason(Arc<str>);

impl From<String> for BrokenReason {
    fn from(reason: String) -> Self {
        BrokenReason::new(reason)
    }
}

impl From<BrokenReason> for String {
    fn from(r: BrokenReason) -> Self {
        r.0.to_string()
    }
}

impl BrokenReason {
    /// A reason with this text.
    pub fn new(reason: impl Into<String>) -> Self {
        BrokenReason(Arc::from(reason.into()))
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for BrokenReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Why a task produced no value.
///
/// Every error, with what it carries (the panic, the dead worker's exit and stderr tail, the
/// codec failure), is a serde type: whatever relays tasks on — another process, another
/// machine — can hand the caller the same error the pool would have.
///
/// # Examples
///
/// ```
/// use pool::TaskError;
/// let e = TaskError::Cancelled;
/// assert!(e.is_cancelled());
/// assert_eq!(e.to_string(), "the task was cancelled");
/// ```
///
/// Sent on and read back:
///
/// ```
/// use pool::codec::{Codec, MsgPack};
/// use pool::{ExitReason, TaskError, WorkerDied, WorkerId};
///
/// let died = TaskError::WorkerDied(WorkerDied {
///     worker: WorkerId(3),
///     pid: Some(4242),
///     exit: ExitReason::Signal { number: 11, name: "SIGSEGV".into() },
///     task: "render".into(),
///     stderr_tail: "segfault at 0".into(),
/// });
/// let mut wire = Vec::new();
/// MsgPack.encode(&died, &mut wire)?;
/// let back: TaskError = MsgPack.decode(&wire)?;
/// assert_eq!(back, died);
/// assert!(back.to_string().contains("SIGSEGV (signal 11) while running render"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum TaskError {
    /// The task panicked; the worker survived.
    Panicked(PanicInfo),
    /// The worker running the task died.
    WorkerDied(WorkerDied),
    /// The task ran past its time limit; its worker was killed when the backend can do that.
    TimedOut {
        /// The limit that was exceeded.
        after: Duration,
        /// The worker that ran it.
        worker: WorkerId,
        /// Its process id, for process workers.
        pid: Option<u32>,
        /// The task (its label, or `task #N`).
        task: String,
    },
    /// The task was cancelled (by `cancel`, `kill`, or a shutdown that cancels pending work).
    Cancelled,
    /// The task or its result could not be encoded.
    Encode(CodecFailure),
    /// The task or its result could not be decoded.
    Decode(CodecFailure),
    /// The pool is broken and runs nothing.
    Broken(BrokenReason),
    /// The pool shut down before the task ran.
    Shutdown,
    /// A task handed to workers again and again without an answer — each worker that took
    /// it died or stopped answering (a poison task) — and given up (remote pools).
    Poison {
        /// The task (its name and id).
        task: String,
        /// How many times it was handed to a worker.
        deliveries: u32,
    },
}

impl TaskError {
    /// Is this a panic?
    pub fn is_panic(&self) -> bool {
        matches!(self, TaskError::Panicked(_))
    }
    /// Did the worker die?
    pub fn is_worker_died(&self) -> bool {
        matches!(self, TaskError::WorkerDied(_))
    }
    /// Did the task time out?
    pub fn is_timed_out(&self) -> bool {
        matches!(self, TaskError::TimedOut { .. })
    }
    /// Was the task cancelled?
    pub fn is_cancelled(&self) -> bool {
        matches!(self, TaskError::Cancelled)
    }
    /// Is this an encode or decode failure?
    pub fn is_codec(&self) -> bool {
        matches!(self, TaskError::Encode(_) | TaskError::Decode(_))
    }
    /// Is the pool broken?
    pub fn is_broken(&self) -> bool {
        matches!(self, TaskError::Broken(_))
    }
    /// Did the pool shut down first?
    pub fn is_shutdown(&self) -> bool {
        matches!(self, TaskError::Shutdown)
    }
    /// Was the task given up as a poison task?
    pub fn is_poison(&self) -> bool {
        matches!(self, TaskError::Poison { .. })
    }
    /// The panic details, if this is a panic.
    pub fn panic_info(&self) -> Option<&PanicInfo> {
        match self {
            TaskError::Panicked(p) => Some(p),
            _ => None,
        }
    }
}

impl fmt::Display for TaskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TaskError::Panicked(p) => p.fmt(f),
            TaskError::WorkerDied(d) => d.fmt(f),
            TaskError::TimedOut {
                after,
                worker,
                pid,
                task,
            } => {
                write!(f, "{task} timed out after {after:?} on {worker}")?;
                if let Some(pid) = pid {
                    write!(f, " (pid {pid}), which was killed")?;
                }
                Ok(())
            }
            TaskError::Cancelled => f.write_str("the task was cancelled"),
            TaskError::Encode(c) => write!(f, "could not encode {c}"),
            TaskError::Decode(c) => write!(f, "could not decode {c}"),
            TaskError::Broken(r) => write!(f, "the pool is broken: {r}"),
            TaskError::Shutdown => f.write_str("the pool shut down before the task ran"),
            TaskError::Poison { task, deliveries } => write!(
                f,
                "{task} was given up after {deliveries} deliveries: every worker that took it \
                 died or stopped answering (a poison task)"
            ),
        }
    }
}

impl std::error::Error for TaskError {}

/// Why a submit was refused.
///
/// # Examples
///
/// ```
/// use pool::{CodecFailure, Side, SubmitErrorKind, TaskError};
/// let kind = SubmitErrorKind::Encode(CodecFailure {
///     side: Side::Parent,
///     type_name: "my::Config".into(),
///     codec: "msgpack".into(),
///     message: "map keys must be strings".into(),
/// });
/// assert_eq!(
///     kind.to_string(),
///     "could not encode my::Config in the parent with codec msgpack: map keys must be strings"
/// );
/// match &kind {
///     SubmitErrorKind::Encode(c) => assert_eq!(c.type_name, "my::Config"),
///     _ => unreachable!(),
/// }
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SubmitErrorKind {
    /// The pool is shut down (or shutting down).
    Shutdown,
    /// The pool is broken.
    Broken(BrokenReason),
    /// The bounded queue is full and the rejection policy is `Reject`.
    QueueFull,
    /// The task's argument could not be encoded (process pools): which type, which codec,
    /// and why.
    Encode(CodecFailure),
}

impl fmt::Display for SubmitErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SubmitErrorKind::Shutdown => f.write_str("the pool is shut down"),
            SubmitErrorKind::Broken(r) => write!(f, "the pool is broken: {r}"),
            SubmitErrorKind::QueueFull => {
                f.write_str("the task queue is full (raise queue_capacity or use Rejection::Block)")
            }
            SubmitErrorKind::Encode(c) => write!(f, "could not encode {c}"),
        }
    }
}

/// A refused submit. Hands the task back when it still exists.
///
/// # Examples
///
/// ```
/// use pool::{SubmitError, SubmitErrorKind};
/// let e = SubmitError::new(SubmitErrorKind::QueueFull, Some(5));
/// assert!(e.is_queue_full());
/// assert_eq!(e.into_task(), Some(5));
/// ```
pub struct SubmitError<T> {
    kind: SubmitErrorKind,
    task: Option<T>,
}

impl<T> SubmitError<T> {
    /// A refusal of this kind, with the task to hand back.
    pub fn new(kind: SubmitErrorKind, task: Option<T>) -> Self {
        SubmitError { kind, task }
    }
    /// Why it was refused.
    pub fn kind(&self) -> &SubmitErrorKind {
        &self.kind
    }
    /// The task, handed back.
    pub fn into_task(self) -> Option<T> {
        self.task
    }
    /// Is the pool shut down?
    pub fn is_shutdown(&self) -> bool {
        matches!(self.kind, SubmitErrorKind::Shutdown)
    }
    /// Is the pool broken?
    pub fn is_broken(&self) -> bool {
        matches!(self.kind, SubmitErrorKind::Broken(_))
    }
    /// Was the queue full?
    pub fn is_queue_full(&self) -> bool {
        matches!(self.kind, SubmitErrorKind::QueueFull)
    }
    /// Change the handed-back task (for wrappers that submit a different value).
    pub fn map_task<U>(self, f: impl FnOnce(T) -> U) -> SubmitError<U> {
        SubmitError {
            kind: self.kind,
            task: self.task.map(f),
        }
    }
    /// The same refusal as the error a future would carry.
    pub fn to_task_error(&self) -> TaskError {
        match &self.kind {
            SubmitErrorKind::Shutdown => TaskError::Shutdown,
            SubmitErrorKind::Broken(r) => TaskError::Broken(r.clone()),
            SubmitErrorKind::QueueFull => TaskError::Cancelled,
            SubmitErrorKind::Encode(c) => TaskError::Encode(c.clone()),
        }
    }
}

impl<T> fmt::Debug for SubmitError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SubmitError")
            .field("kind", &self.kind)
            .field("task", &self.task.as_ref().map(|_| ".."))
            .finish()
    }
}

impl<T> fmt::Display for SubmitError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "submit refused: {}", self.kind)
    }
}

impl<T> std::error::Error for SubmitError<T> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.kind {
            SubmitErrorKind::Encode(c) => Some(c),
            _ => None,
        }
    }
}

/// A serializable error chain: type name, message and each `source()` in turn, so a task can
/// return `Result<T, RemoteError>` and the caller walks the chain across a process boundary.
///
/// # Examples
///
/// ```
/// use pool::RemoteError;
/// let io = std::io::Error::new(std::io::ErrorKind::NotFound, "config.toml");
/// let e = RemoteError::from_error(&io);
/// assert_eq!(e.message(), "config.toml");
/// assert!(std::error::Error::source(&e).is_none());
/// ```
///
/// `?` works on the standard library's errors (each converts with its type name and its
/// `source()` chain), on `String`/`&str` messages and on boxed errors:
///
/// ```
/// use pool::RemoteError;
///
/// fn port(text: &str) -> Result<u16, RemoteError> {
///     let n: u16 = text.trim().parse()?;
///     if n == 0 {
///         return Err("port 0 is not a port".into());
///     }
///     Ok(n)
/// }
///
/// assert_eq!(port(" 8080 "), Ok(8080));
/// let e = port("http").unwrap_err();
/// assert_eq!(e.type_name(), "core::num::error::ParseIntError");
/// assert_eq!(e.message(), "invalid digit found in string");
/// assert_eq!(port("0").unwrap_err().message(), "port 0 is not a port");
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoteError {
    type_name: String,
    message: String,
    source: Option<Box<RemoteError>>,
}

impl RemoteError {
    /// An error with this type name and message and no source.
    pub fn new(type_name: impl Into<String>, message: impl Into<String>) -> Self {
        RemoteError {
            type_name: type_name.into(),
            message: message.into(),
            source: None,
        }
    }
    /// Attach a source (the cause of this error).
    pub fn with_source(mut self, source: RemoteError) -> Self {
        self.source = Some(Box::new(source));
        self
    }
    /// Capture an error and its whole `source()` chain. The type name of a `dyn Error` is not
    /// known at run time; it is recorded as `"dyn Error"` (use [`RemoteError::from_typed`] to
    /// keep the outermost type's name).
    pub fn from_error(e: &(dyn std::error::Error + 'static)) -> Self {
        let mut chain = vec![e];
        let mut cur = e.source();
        while let Some(s) = cur {
            chain.push(s);
            cur = s.source();
        }
        let mut out: Option<RemoteError> = None;
        for e in chain.into_iter().rev() {
            let mut r = RemoteError::new("dyn Error", e.to_string());
            r.source = out.map(Box::new);
            out = Some(r);
        }
        out.expect("chain has at least one error")
    }
    /// Like [`RemoteError::from_error`], recording `E`'s type name for the outermost error.
    pub fn from_typed<E: std::error::Error + 'static>(e: &E) -> Self {
        let mut r = Self::from_error(e);
        r.type_name = std::any::type_name::<E>().to_string();
        r
    }
    /// The type name recorded for this error.
    pub fn type_name(&self) -> &str {
        &self.type_name
    }
    /// The message (`Display`) of this error.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for RemoteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for RemoteError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|s| s as &(dyn std::error::Error + 'static))
    }
}

// `?` on the standard library's errors: each converts with its type name and `source()` chain.
macro_rules! remote_error_from {
    ($($t:ty),* $(,)?) => {$(
        impl From<$t> for RemoteError {
            fn from(e: $t) -> Self {
                RemoteError::from_typed(&e)
            }
        }
    )*};
}

remote_error_from!(
    std::io::Error,
    std::fmt::Error,
    std::num::ParseIntError,
    std::num::ParseFloatError,
    std::num::TryFromIntError,
    std::str::ParseBoolError,
    std::str::Utf8Error,
    std::string::FromUtf8Error,
    std::char::ParseCharError,
    std::net::AddrParseError,
    std::time::SystemTimeError,
    std::env::VarError,
);

/// A message as an error (`Err("…".into())`, or `?` on a `Result<_, String>`).
impl From<String> for RemoteError {
    fn from(message: String) -> Self {
        RemoteError::new("message", message)
    }
}

/// A message as an error.
impl From<&str> for RemoteError {
    fn from(message: &str) -> Self {
        RemoteError::new("message", message)
    }
}

/// Any boxed error (what `anyhow`/`eyre` errors and `Box<dyn Error>` code convert into), with
/// its `source()` chain; its type is not known, so it is recorded as `"dyn Error"`.
impl From<Box<dyn std::error::Error + Send + Sync>> for RemoteError {
    fn from(e: Box<dyn std::error::Error + Send + Sync>) -> Self {
        RemoteError::from_error(&*e)
    }
}

/// As for `Box<dyn Error + Send + Sync>`.
impl From<Box<dyn std::error::Error>> for RemoteError {
    fn from(e: Box<dyn std::error::Error>) -> Self {
        RemoteError::from_error(&*e)
    }
}

/// A pool configuration that cannot work.
///
/// # Examples
///
/// ```
/// let e = pool::backend::ConfigError::new("max_workers must be at least 1");
/// assert_eq!(e.to_string(), "invalid pool configuration: max_workers must be at least 1");
/// ```
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid pool configuration: {0}")]
pub struct ConfigError(String);

impl ConfigError {
    /// An error with this explanation.
    pub fn new(msg: impl Into<String>) -> Self {
        ConfigError(msg.into())
    }
    /// The explanation.
    pub fn message(&self) -> &str {
        &self.0
    }
}
