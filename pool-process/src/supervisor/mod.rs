//! One worker process as the parent sees it: start and handshake, calls, death reports,
//! kill, clean stop. Independent of the engine's types; `backend.rs` adapts it.
//!
//! Layout: `launch.rs` starts the process, `handshake.rs` sets up its channel and runs the
//! handshake, `channel.rs` makes the calls and writes the death report, `child.rs` holds the
//! process for killing and reaping.

mod channel;
mod child;
mod handshake;
#[cfg(test)]
mod latency;
mod launch;
#[cfg(test)]
mod tests;

use std::ffi::OsString;
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::ExitStatus;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crate::protocol::Setup;
use crate::stderr_tail::StderrTail;
use crate::sys::{proc, signals};
use crate::transport::{Transport, TransportKind};

use child::ChildCell;
#[cfg(feature = "fuzzing")]
pub(crate) use handshake::describe_hook_failure;

/// How long a dead worker's stderr may take to reach end of file before it is quoted.
const STDERR_GRACE: Duration = Duration::from_millis(200);

/// Everything needed to start a worker; shared by all starts of one pool.
pub(crate) struct StartConfig {
    pub(crate) env: Vec<(OsString, Option<OsString>)>,
    pub(crate) transport: TransportKind,
    pub(crate) program: Option<PathBuf>,
    pub(crate) setup: Setup,
    pub(crate) codec_name: String,
    pub(crate) start_timeout: Duration,
    /// Spawn or fork server (ignored with `program`: always spawned).
    pub(crate) start_method: StartMethod,
    /// Named-tasks-only pool: the names it will use (checked at the handshake).
    pub(crate) named: Option<Vec<String>>,
}

/// How a worker process ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Exit {
    Code(i32),
    Signal(i32),
    Unknown,
}

impl Exit {
    fn of(status: Option<ExitStatus>) -> Self {
        match status {
            Some(s) => match (s.code(), s.signal()) {
                (Some(c), _) => Self::Code(c),
                (None, Some(sig)) => Self::Signal(sig),
                _ => Self::Unknown,
            },
            None => Self::Unknown,
        }
    }
}

impl std::fmt::Display for Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Code(c) => write!(f, "exit code {c}"),
            Self::Signal(s) => write!(f, "{} (signal {s})", signals::signal_name(*s)),
            Self::Unknown => f.write_str("unknown exit status"),
        }
    }
}

/// Why a start failed.
#[derive(Debug, Clone)]
pub(crate) enum StartFailure {
    Spawn(String),
    Handshake(String),
    Initializer(String),
}

/// What a dead worker left behind.
#[derive(Debug, Clone)]
pub(crate) struct Death {
    pub(crate) pid: u32,
    pub(crate) exit: Exit,
    pub(crate) stderr_tail: String,
}

/// Why a call produced no reply.
pub(crate) enum CallFailure {
    /// The deadline passed; the worker was killed and reaped.
    TimedOut(Death),
    /// The worker is gone (reaped).
    Died(Death),
}

/// How worker processes are started.
///
/// Pools whose workers are a different program
/// ([`worker_program`](crate::ProcessPoolBuilder::worker_program)) always spawn.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum StartMethod {
    /// Every worker is a fresh exec of this program (`posix_spawn`): it inherits the
    /// parent's state at that moment (environment, working directory, resource limits,
    /// umask, ...).
    Spawn,
    /// Workers are forked by the process's fork server: one single-threaded copy of this
    /// program, exec'd once (before `main`, by the worker hook) and shared by every pool of
    /// the process. No exec, dynamic loader or CPU feature detection per worker. The worker
    /// gets the parent's current environment (with the pool's `env`/`env_remove`), working
    /// directory and stdio, like a spawned one; other process state (resource limits, umask,
    /// credentials, address-space layout) is the server's, fixed when it started. If the
    /// server cannot run (another pre-`main` constructor started a thread, or it cannot be
    /// started), workers are spawned instead. The default. See the crate README, "Fork
    /// server".
    #[default]
    ForkServer,
}

/// A started worker process.
pub(crate) struct WorkerProcess {
    id: u64,
    cell: Arc<ChildCell>,
    transport: Box<dyn Transport>,
    stderr: Arc<StderrTail>,
    stderr_thread: Option<JoinHandle<()>>,
    dead: Option<Death>,
    /// For a named-tasks pool: the worker's registry index of each declared name.
    named_map: Vec<u32>,
    /// The sequence number of the next request (the first is 1).
    next_seq: u64,
    /// The sequence number of the oldest request not answered yet (replies come in request
    /// order); equal to `next_seq` when none is in flight.
    oldest: u64,
}

impl WorkerProcess {
    /// The worker's registry index of declared named task `declared`.
    pub(crate) fn named_index(&self, declared: u32) -> Option<u32> {
        self.named_map.get(declared as usize).copied()
    }

    /// How long a receive without deadline polls before it blocks (`Transport::set_spin`).
    pub(crate) fn set_spin(&mut self, spin: Duration) {
        self.transport.set_spin(spin);
    }

    pub(crate) fn pid(&self) -> u32 {
        self.cell.pid
    }

    /// A function that kills this worker's process tree from any thread.
    pub(crate) fn killer(&self) -> impl Fn() + Send + Sync + 'static {
        let cell = Arc::clone(&self.cell);
        move || cell.kill()
    }

    /// Whether the process still runs (reaps it if it exited).
    pub(crate) fn alive(&mut self) -> bool {
        self.dead.is_none() && self.cell.try_reap().is_none()
    }

    /// Resident memory of the worker process.
    pub(crate) fn memory_bytes(&self) -> Option<u64> {
        if self.dead.is_some() {
            return None;
        }
        proc::rss_bytes(self.cell.pid)
    }
}

impl Drop for WorkerProcess {
    fn drop(&mut self) {
        // Never leave a process behind: kill (tree) and reap.
        self.cell.reap();
        if let Some(h) = self.stderr_thread.take()
            && self.stderr.is_closed()
        {
            let _ = h.join();
        }
    }
}
