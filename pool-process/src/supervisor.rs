//! One worker process as the parent sees it: start and handshake, calls, death reports,
//! kill, clean stop. Independent of the engine's types; `backend.rs` adapts it.

use std::ffi::OsString;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::forkserver;
use crate::protocol::{
    HELLO, Hello, MAX_REQUEST_HEADER, PROTOCOL_VERSION, READY, REPLY, REPLY_HEADER, STOP, STOPPED,
    Setup, WORKER_ENV, WorkerSpec, seq_of, stamp_seq,
};
use crate::stderr_tail::StderrTail;
use crate::sys::exe::{SelfExe, self_exe};
use crate::sys::pidfd::ProcessWatch;
use crate::sys::{proc, signals, spawn};
use crate::transfer::{self, Outcome};
use crate::transport::shm::{ShmOptions, ShmTransport};
use crate::transport::{self, SocketListener, Transport, TransportKind};
use crate::wire::Reader;
use crate::worker::panics::PanicRecord;

/// How long a dead worker's stderr may take to reach end of file before it is quoted.
const STDERR_GRACE: Duration = Duration::from_millis(200);

/// How long a kill waits to see the worker and the rest of its process group dead. SIGKILL
/// cannot be caught, so this is only reached by a process stuck in the kernel (an
/// uninterruptible wait on a dead network file system, say); the kill is then logged and
/// the caller goes on.
const KILL_WAIT: Duration = Duration::from_secs(5);

/// Everything needed to start a worker; shared by all starts of one pool.
pub(crate) struct StartConfig {
    pub(crate) env: Vec<(OsString, Option<OsString>)>,
    pub(crate) transport: TransportKind,
    pub(crate) program: Option<PathBuf>,
    pub(crate) setup: Setup,
    pub(crate) codec_name: &'static str,
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

/// A worker process as the supervisor holds it.
enum Proc {
    /// Started by `posix_spawn`: our child.
    Spawned(Child),
    /// Forked by the fork server: its child, killed and reaped through it.
    Forked(Arc<forkserver::Forked>),
}

/// The child process, shared with killers. Reaping and killing both happen under the lock,
/// so a kill never reaches a recycled pid (a forked worker is killed and reaped by the fork
/// server, which keeps it unreaped until [`forkserver::Forked::release`]).
struct ChildCell {
    pid: u32,
    child: Mutex<(Proc, Option<ExitStatus>)>,
    /// The worker's pidfd, opened while it could not have been reaped: tells a killer when
    /// the worker is dead without reaping it (the supervisor reaps).
    watch: Option<ProcessWatch>,
}

impl ChildCell {
    fn new(pid: u32, proc: Proc) -> Self {
        Self {
            pid,
            // Unreaped (our child, or kept by the fork server until released): the pid
            // cannot name another process yet.
            watch: ProcessWatch::open(pid).ok(),
            child: Mutex::new((proc, None)),
        }
    }

    /// Kills the worker's process tree and returns once the worker and every other member
    /// of its process group are dead (bounded by [`KILL_WAIT`]), so whoever resolves a
    /// future after a kill knows the task no longer runs.
    fn kill(&self) {
        {
            let st = self.child.lock().unwrap_or_else(PoisonError::into_inner);
            if st.1.is_some() {
                return; // reaped: `reap` waited for the tree already
            }
            match &st.0 {
                Proc::Spawned(_) => proc::kill_tree(self.pid),
                Proc::Forked(f) => f.kill(),
            }
        }
        let until = Instant::now() + KILL_WAIT;
        let dead = self.watch.as_ref().is_none_or(|w| w.wait_exit(until))
            && proc::wait_group_gone(self.pid, until);
        if !dead {
            tracing::warn!(target: "pool", pid = self.pid, waited = ?KILL_WAIT,
                "a killed worker (or a process of its group) is still not dead");
        }
    }

    /// Kills the tree (grandchildren included) and reaps; idempotent.
    fn reap(&self) -> Option<ExitStatus> {
        let mut st = self.child.lock().unwrap_or_else(PoisonError::into_inner);
        if st.1.is_none() {
            st.1 = match &mut st.0 {
                Proc::Spawned(child) => {
                    proc::kill_tree(self.pid);
                    child.wait().ok()
                }
                Proc::Forked(f) => {
                    f.kill();
                    let status = f.wait();
                    f.release();
                    Some(status)
                }
            };
            // SIGKILL is not instant: wait (boundedly) until the rest of its group — forked
            // grandchildren — is dead too, so a death report never precedes their end.
            if !proc::wait_group_gone(self.pid, Instant::now() + KILL_WAIT) {
                tracing::warn!(target: "pool", pid = self.pid, waited = ?KILL_WAIT,
                    "a process of a dead worker's group is still not dead");
            }
        }
        st.1
    }

    /// Reaps only if the child already exited.
    fn try_reap(&self) -> Option<ExitStatus> {
        let mut st = self.child.lock().unwrap_or_else(PoisonError::into_inner);
        if st.1.is_none() {
            st.1 = match &mut st.0 {
                Proc::Spawned(child) => match child.try_wait() {
                    Ok(Some(status)) => {
                        // Its group may still hold grandchildren.
                        proc::kill_tree(self.pid);
                        Some(status)
                    }
                    _ => None,
                },
                Proc::Forked(f) => f.try_status().inspect(|_| f.release()),
            };
        }
        st.1
    }

    /// Did this worker die because the fork server died?
    fn server_died(&self) -> bool {
        let st = self.child.lock().unwrap_or_else(PoisonError::into_inner);
        matches!(&st.0, Proc::Forked(f) if f.server_died())
    }
}

/// A started process, before the transport is set up.
struct Launched {
    cell: Arc<ChildCell>,
    /// Pipe transport: the parent's ends of the worker's stdin and stdout.
    pipes: Option<(ChildStdin, ChildStdout)>,
    stderr: Option<OwnedFd>,
}

/// What the worker's fds 0/1 are.
enum Stdio01 {
    /// Pipes for the pipe transport.
    Pipes,
    /// The shared-memory file on 0, the parent's stdout on 1.
    Shm(OwnedFd),
    /// `/dev/null` on 0, the parent's stdout on 1 (local socket).
    Null,
}

/// Starts the worker process with `posix_spawn` from the spawner thread.
fn launch_spawn(
    cfg: &StartConfig,
    exe: &SelfExe,
    spec: &WorkerSpec,
    stdio: Stdio01,
) -> Result<Launched, String> {
    let mut cmd = match &cfg.program {
        Some(p) => Command::new(p),
        None => {
            let mut c = Command::new(&exe.exec_path);
            c.arg0(&exe.arg0);
            c
        }
    };
    for (k, v) in &cfg.env {
        match v {
            Some(v) => cmd.env(k, v),
            None => cmd.env_remove(k),
        };
    }
    cmd.env(WORKER_ENV, spec.encode()).stderr(Stdio::piped());
    // The shared-memory file goes to the worker as its stdin: posix_spawn's dup2 puts it
    // on fd 0 in the child only; the parent's descriptor stays close-on-exec.
    match stdio {
        Stdio01::Shm(file) => cmd.stdin(Stdio::from(file)).stdout(Stdio::inherit()),
        Stdio01::Null => cmd.stdin(Stdio::null()).stdout(Stdio::inherit()),
        Stdio01::Pipes => cmd.stdin(Stdio::piped()).stdout(Stdio::piped()),
    };
    let mut child = spawn::spawn(cmd).map_err(|e| format!("cannot start a worker process: {e}"))?;
    let pid = child.id();
    let pipes = child.stdin.take().zip(child.stdout.take());
    let stderr = child.stderr.take().map(OwnedFd::from);
    Ok(Launched {
        cell: Arc::new(ChildCell::new(pid, Proc::Spawned(child))),
        pipes,
        stderr,
    })
}

/// Logs why the fork server cannot be used: a refusal (permanent for this program) once,
/// a failure to start every time.
fn log_unavailable(why: &forkserver::Unavailable) {
    static REFUSAL_LOGGED: std::sync::atomic::AtomicBool =
        std::sync::atomic::AtomicBool::new(false);
    match why {
        forkserver::Unavailable::Refused(_)
            if REFUSAL_LOGGED.swap(true, std::sync::atomic::Ordering::Relaxed) => {}
        _ => {
            tracing::warn!(target: "pool", reason = %why, "fork server unavailable; spawning workers")
        }
    }
}

/// The environment a spawned worker would see: ours now, with the pool's changes.
fn worker_env(cfg: &StartConfig) -> Vec<(OsString, OsString)> {
    let mut env: Vec<(OsString, OsString)> = std::env::vars_os().collect();
    for (k, v) in &cfg.env {
        env.retain(|(key, _)| key != k);
        if let Some(v) = v {
            env.push((k.clone(), v.clone()));
        }
    }
    env
}

/// Asks the fork server for the worker process. `Err(stdio)` gives the stdio back when the
/// worker should be spawned instead (the reason is logged).
fn launch_forked(
    cfg: &StartConfig,
    server: &Arc<forkserver::Server>,
    spec: &WorkerSpec,
    stdio: Stdio01,
    deadline: Instant,
) -> Result<Launched, Stdio01> {
    let fallback = |stdio: Stdio01, why: &dyn std::fmt::Display| {
        tracing::warn!(target: "pool", reason = %why, "fork server failed; spawning the worker");
        Err(stdio)
    };
    let cwd = match std::env::current_dir() {
        Ok(d) => d.into_os_string(),
        Err(e) => return fallback(stdio, &format!("no current directory: {e}")),
    };
    let pipe = || rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC);
    let null = || {
        rustix::fs::open(
            "/dev/null",
            rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::CLOEXEC,
            rustix::fs::Mode::empty(),
        )
    };
    let (err_r, err_w) = match pipe() {
        Ok(p) => p,
        Err(e) => return fallback(stdio, &format!("pipe: {e}")),
    };
    let stdout = std::io::stdout();
    let env = worker_env(cfg);
    let spec = spec.encode();
    let (result, pipes) = match &stdio {
        Stdio01::Pipes => {
            let (Ok((in_r, in_w)), Ok((out_r, out_w))) = (pipe(), pipe()) else {
                return fallback(stdio, &"pipe failed");
            };
            let r = server.fork(
                &spec,
                &env,
                &cwd,
                [in_r.as_fd(), out_w.as_fd(), err_w.as_fd()],
                deadline,
            );
            (r, Some((ChildStdin::from(in_w), ChildStdout::from(out_r))))
        }
        Stdio01::Shm(file) => {
            let r = server.fork(
                &spec,
                &env,
                &cwd,
                [file.as_fd(), stdout.as_fd(), err_w.as_fd()],
                deadline,
            );
            (r, None)
        }
        Stdio01::Null => {
            let Ok(null) = null() else {
                return fallback(stdio, &"cannot open /dev/null");
            };
            let r = server.fork(
                &spec,
                &env,
                &cwd,
                [null.as_fd(), stdout.as_fd(), err_w.as_fd()],
                deadline,
            );
            (r, None)
        }
    };
    // The child's ends are closed here (the server closed its copies after forking), so
    // end of file on our ends means the worker is gone.
    drop(err_w);
    match result {
        Ok(forked) => Ok(Launched {
            cell: Arc::new(ChildCell::new(forked.pid(), Proc::Forked(forked))),
            pipes,
            stderr: Some(err_r),
        }),
        Err(why) => fallback(stdio, &why),
    }
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

/// Finds each wanted name (with the pool's codec) in the worker's registry.
fn map_named(
    wanted: &[String],
    offered: &[(String, String)],
    codec: &str,
) -> Result<Vec<u32>, String> {
    let mut map = Vec::with_capacity(wanted.len());
    let mut missing = Vec::new();
    for name in wanted {
        match offered.iter().position(|(n, _)| n == name) {
            Some(i) if offered[i].1 == codec => map.push(i as u32),
            Some(i) => missing.push(format!(
                "{name:?} (registered with codec {:?}, the pool uses {codec:?})",
                offered[i].1
            )),
            None => missing.push(format!("{name:?}")),
        }
    }
    if missing.is_empty() {
        Ok(map)
    } else {
        let available: Vec<String> = offered
            .iter()
            .map(|(n, c)| format!("{n:?} ({c})"))
            .collect();
        Err(format!(
            "the worker binary does not serve the named task(s) {}; it registers: {}",
            missing.join(", "),
            if available.is_empty() {
                "none".to_owned()
            } else {
                available.join(", ")
            }
        ))
    }
}

fn describe_panic(detail: &[u8]) -> String {
    match PanicRecord::read(detail) {
        Some(p) => match p.location {
            Some(loc) => format!("panicked at {loc}: {}", p.message),
            None => format!("panicked: {}", p.message),
        },
        None => "panicked".to_owned(),
    }
}

/// A hook's failure (outcome byte + detail) in words.
pub(crate) fn describe_hook_failure(outcome: Outcome, detail: &[u8]) -> String {
    match outcome {
        Outcome::Ok => "succeeded".to_owned(),
        Outcome::Panicked => describe_panic(detail),
        Outcome::Failed => Reader(detail).str().unwrap_or_else(|| "failed".to_owned()),
        Outcome::DecodeFailed | Outcome::EncodeFailed => {
            let mut r = Reader(detail);
            let (ty, codec, msg) = (r.str(), r.str(), r.str());
            let what = if outcome == Outcome::DecodeFailed {
                "decode its argument"
            } else {
                "encode its result"
            };
            format!(
                "could not {what} of type {} with codec {}: {}",
                ty.unwrap_or_default(),
                codec.unwrap_or_default(),
                msg.unwrap_or_default()
            )
        }
    }
}

/// The start failure of a worker that sent a frame its transport refused (a header
/// announcing more than the maximum, a corrupt shared-memory ring): kills and reaps it, and
/// says what it sent (`fail` adds worker id, pid, exit and stderr tail).
fn corrupt_frame(
    w: &WorkerProcess,
    fail: &impl Fn(&ChildCell, &StderrTail, &str) -> String,
    e: &io::Error,
) -> String {
    fail(
        &w.cell,
        &w.stderr,
        &format!("broke the protocol during the handshake: {e}; it was killed"),
    )
}

impl WorkerProcess {
    /// Spawns worker `id` and runs the handshake (and the initializer) to completion.
    pub(crate) fn start(cfg: &StartConfig, id: u64) -> Result<Self, StartFailure> {
        let deadline = Instant::now() + cfg.start_timeout;
        let exe = self_exe().map_err(StartFailure::Spawn)?;
        let listener = match cfg.transport {
            TransportKind::LocalSocket => Some(SocketListener::bind().map_err(|e| {
                StartFailure::Spawn(format!("cannot bind a local socket for the worker: {e}"))
            })?),
            _ => None,
        };
        let shm = match cfg.transport {
            TransportKind::Shm => Some(ShmTransport::create(&ShmOptions::new()).map_err(|e| {
                StartFailure::Spawn(format!("cannot create a shared-memory channel: {e}"))
            })?),
            _ => None,
        };
        let transport_spec = match (&listener, &shm) {
            (Some(l), _) => l.worker_spec(),
            (None, Some(_)) => "shm".to_owned(),
            (None, None) => "pipe".to_owned(),
        };
        let mut spec = WorkerSpec {
            version: PROTOCOL_VERSION,
            parent: proc::own_pid(),
            ppid: proc::own_pid(),
            identity: exe.identity,
            anchor_delta: transfer::anchor_delta(),
            worker_id: id,
            named_only: cfg.named.is_some(),
            transport: transport_spec,
        };
        let (shm_side, shm_file) = match shm {
            Some((side, file)) => (Some(side), Some(file)),
            None => (None, None),
        };
        let stdio = match shm_file {
            Some(file) => Stdio01::Shm(file),
            None if listener.is_some() => Stdio01::Null,
            None => Stdio01::Pipes,
        };
        let forked = if cfg.start_method == StartMethod::ForkServer && cfg.program.is_none() {
            match forkserver::server(deadline) {
                Ok(server) => {
                    spec.ppid = server.pid();
                    let launched = launch_forked(cfg, &server, &spec, stdio, deadline);
                    spec.ppid = spec.parent;
                    launched
                }
                Err(why) => {
                    log_unavailable(&why);
                    Err(stdio)
                }
            }
        } else {
            Err(stdio)
        };
        let Launched {
            cell,
            pipes,
            stderr: stderr_pipe,
        } = match forked {
            Ok(l) => l,
            Err(stdio) => launch_spawn(cfg, exe, &spec, stdio).map_err(StartFailure::Spawn)?,
        };
        let pid = cell.pid;
        let (stdin, stdout) = match pipes {
            Some((i, o)) => (Some(i), Some(o)),
            None => (None, None),
        };
        let (stderr, stderr_thread) =
            match stderr_pipe.map(|s| StderrTail::spawn(std::fs::File::from(s), id, true)) {
                Some(Ok((t, h))) => (t, Some(h)),
                _ => (Arc::new(StderrTail::default()), None),
            };
        let fail = |cell: &ChildCell, stderr: &StderrTail, what: &str| {
            let exit = Exit::of(cell.reap());
            let tail = stderr.tail(STDERR_GRACE);
            let tail = if tail.is_empty() {
                String::new()
            } else {
                format!("; its stderr ends with:\n{tail}")
            };
            format!("worker #{id} (pid {pid}) {what} ({exit}){tail}")
        };
        let transport: Box<dyn Transport> = match (listener, stdin, stdout) {
            _ if shm_side.is_some() => {
                let mut side = shm_side.expect("checked");
                if let Err(e) = side.watch_process(pid) {
                    return Err(StartFailure::Spawn(fail(
                        &cell,
                        &stderr,
                        &format!("cannot be watched (pidfd): {e}"),
                    )));
                }
                Box::new(side)
            }
            (Some(l), _, _) => {
                let gone = || {
                    cell.try_reap()
                        .map(|s| format!("worker exited: {}", Exit::of(Some(s))))
                };
                match l.accept(deadline, gone).and_then(|mut t| {
                    t.watch_process(pid)?;
                    Ok(t)
                }) {
                    Ok(t) => Box::new(t),
                    Err(e) => {
                        return Err(StartFailure::Spawn(fail(
                            &cell,
                            &stderr,
                            &format!("never connected its local socket: {e}"),
                        )));
                    }
                }
            }
            (None, Some(i), Some(o)) => {
                let mut t = transport::pipe_parent_side(i, o);
                if let Err(e) = t.watch_process(pid) {
                    return Err(StartFailure::Spawn(fail(
                        &cell,
                        &stderr,
                        &format!("cannot be watched (pidfd): {e}"),
                    )));
                }
                Box::new(t)
            }
            _ => {
                return Err(StartFailure::Spawn(fail(&cell, &stderr, "has no pipes")));
            }
        };
        let mut w = Self {
            id,
            cell,
            transport,
            stderr,
            stderr_thread,
            dead: None,
            named_map: Vec::new(),
            next_seq: 1,
            oldest: 1,
        };

        // SETUP goes out at once, without waiting for HELLO (one round trip less at start):
        // the worker reads it only after its own identity checks, so nothing is resolved
        // early, and a refusing worker never reads it.
        let setup_sent = w.transport.send(&[&cfg.setup.encode()]).is_ok();

        // HELLO. An answer found only after the deadline (the parent was slow to look) is late
        // all the same: the start timeout holds whatever the machine's load.
        let received = match w.transport.recv(Some(deadline)) {
            Ok(_) if Instant::now() > deadline => Err(io::ErrorKind::TimedOut.into()),
            r => r,
        };
        let hello = match received {
            Ok(frame) if frame.first() == Some(&HELLO) => Hello::decode(frame),
            Ok(_) => None,
            Err(e) if e.kind() == io::ErrorKind::InvalidData => {
                return Err(StartFailure::Handshake(corrupt_frame(&w, &fail, &e)));
            }
            Err(e) => {
                let what = if e.kind() == io::ErrorKind::TimedOut {
                    "did not answer the handshake in time"
                } else {
                    "exited before the handshake"
                };
                return Err(StartFailure::Spawn(fail(&w.cell, &w.stderr, what)));
            }
        };
        let hello = hello.ok_or_else(|| {
            StartFailure::Handshake(fail(&w.cell, &w.stderr, "sent a malformed HELLO"))
        })?;
        let named_only = cfg.named.is_some();
        let mismatch = if let Some(why) = &hello.refusal {
            Some(why.clone())
        } else if hello.version != PROTOCOL_VERSION {
            Some(format!(
                "protocol version {} (worker) vs {PROTOCOL_VERSION} (parent)",
                hello.version
            ))
        } else if named_only {
            None
        } else if hello.identity != exe.identity.to_string() {
            Some(format!(
                "the worker runs a different executable ({}) than the parent ({})",
                hello.identity, exe.identity
            ))
        } else if hello.anchor_delta != transfer::anchor_delta() {
            Some("the worker's code layout differs from the parent's".to_owned())
        } else {
            None
        };
        let named_map = match &cfg.named {
            Some(wanted) => match map_named(wanted, &hello.tasks, cfg.codec_name) {
                Ok(map) => map,
                Err(why) => {
                    let msg = fail(&w.cell, &w.stderr, "lacks named tasks");
                    return Err(StartFailure::Handshake(format!("{why}; {msg}")));
                }
            },
            None => Vec::new(),
        };
        w.named_map = named_map;
        if let Some(why) = mismatch {
            let msg = fail(&w.cell, &w.stderr, "is not the same build as the parent");
            return Err(StartFailure::Handshake(format!(
                "{why}. Functions can only be sent to the identical build of the program \
                 (did the executable change, or is `worker_program` a different binary?). \
                 Details: {msg}"
            )));
        }

        // READY
        if !setup_sent {
            return Err(StartFailure::Spawn(fail(
                &w.cell,
                &w.stderr,
                "exited during the handshake",
            )));
        }
        let has_init = cfg.setup.init.is_some();
        let ready = match w.transport.recv(Some(deadline)) {
            Ok(frame) if frame.first() == Some(&READY) => {
                let mut r = Reader(&frame[1..]);
                let codec = r.str();
                let outcome = r.u8().and_then(Outcome::from_u8);
                let detail = r.rest().to_vec();
                codec.zip(outcome).map(|(c, o)| (c, o, detail))
            }
            Ok(_) => None,
            Err(e) if e.kind() == io::ErrorKind::InvalidData => {
                return Err(StartFailure::Handshake(corrupt_frame(&w, &fail, &e)));
            }
            Err(e) => {
                let what = match (e.kind() == io::ErrorKind::TimedOut, has_init) {
                    (true, true) => "did not finish its initializer in time",
                    (true, false) => "did not finish the handshake in time",
                    (false, true) => "died in its initializer",
                    (false, false) => "exited during the handshake",
                };
                let msg = fail(&w.cell, &w.stderr, what);
                return Err(if has_init {
                    StartFailure::Initializer(msg)
                } else {
                    StartFailure::Spawn(msg)
                });
            }
        };
        let (codec, outcome, detail) = ready.ok_or_else(|| {
            StartFailure::Handshake(fail(&w.cell, &w.stderr, "sent a malformed READY"))
        })?;
        if !named_only && codec != cfg.codec_name {
            let msg = fail(&w.cell, &w.stderr, "disagrees on the codec");
            return Err(StartFailure::Handshake(format!(
                "codec mismatch: the parent uses {:?}, the worker {codec:?}; {msg}",
                cfg.codec_name
            )));
        }
        if outcome != Outcome::Ok {
            let why = describe_hook_failure(outcome, &detail);
            let _ = fail(&w.cell, &w.stderr, "stopped");
            return Err(StartFailure::Initializer(format!(
                "the initializer failed in worker #{id} (pid {pid}): {why}"
            )));
        }
        Ok(w)
    }

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

    /// Sends one request (`parts` concatenated), waits for its reply and hands the reply's
    /// outcome and payload to `on_reply`.
    pub(crate) fn call<T>(
        &mut self,
        parts: &[&[u8]],
        deadline: Option<Instant>,
        on_reply: impl FnOnce(Outcome, &[u8]) -> T,
    ) -> Result<T, CallFailure> {
        if let Some(d) = &self.dead {
            return Err(CallFailure::Died(d.clone()));
        }
        if self.send_request(parts).is_err() {
            return Err(CallFailure::Died(self.bury()));
        }
        self.recv_reply(deadline, on_reply)
    }

    /// Sends one request (`parts` concatenated; `parts[0]` is a request header from
    /// `protocol::task_header` or `named_header`) without waiting for its reply. The header
    /// goes out with this worker's next sequence number. A failure means the worker is gone;
    /// it is not buried here, so the replies it sent before dying can still be read with
    /// `recv_reply`.
    pub(crate) fn send_request(&mut self, parts: &[&[u8]]) -> io::Result<()> {
        if self.dead.is_some() {
            return Err(io::ErrorKind::BrokenPipe.into());
        }
        let mut buf = [0u8; MAX_REQUEST_HEADER];
        let (header, body) = match parts {
            [header, body] => (*header, *body),
            [header] => (*header, &[][..]),
            _ => return Err(io::ErrorKind::InvalidInput.into()),
        };
        let header =
            stamp_seq(header, self.next_seq, &mut buf).ok_or(io::ErrorKind::InvalidInput)?;
        if self.oldest == self.next_seq {
            // The worker is idle and starts this task at once.
            self.stderr.mark_task_start();
        }
        self.transport.send(&[header, body])?;
        self.next_seq += 1;
        Ok(())
    }

    /// Waits for the next reply (replies come in request order) and hands its outcome and
    /// payload to `on_reply`. A reply whose sequence number is not the oldest request's is a
    /// protocol violation: the worker is killed and the call fails (with a note saying so
    /// in the death's stderr tail); the reply is never delivered.
    pub(crate) fn recv_reply<T>(
        &mut self,
        deadline: Option<Instant>,
        on_reply: impl FnOnce(Outcome, &[u8]) -> T,
    ) -> Result<T, CallFailure> {
        if let Some(d) = &self.dead {
            return Err(CallFailure::Died(d.clone()));
        }
        let expected = (self.oldest < self.next_seq).then_some(self.oldest);
        /// What came instead of the reply.
        enum Wrong {
            Violation(String),
            Io(io::Error),
        }
        let got = match self.transport.recv(deadline) {
            Ok(frame) => match (
                frame.first(),
                frame
                    .get(REPLY_HEADER - 1)
                    .copied()
                    .and_then(Outcome::from_u8),
            ) {
                (Some(&REPLY), Some(o)) if Some(seq_of(frame)) == expected => {
                    Ok(on_reply(o, &frame[REPLY_HEADER..]))
                }
                (Some(&REPLY), Some(_)) => Err(Wrong::Violation(format!(
                    "replied with sequence number {} while {}; the reply was discarded",
                    seq_of(frame),
                    match expected {
                        Some(e) => format!("the oldest task in flight has {e}"),
                        None => "no task was in flight".to_owned(),
                    }
                ))),
                (Some(&REPLY), None) => Err(Wrong::Violation("sent a malformed reply".to_owned())),
                (kind, _) => Err(Wrong::Violation(format!(
                    "sent {} where a task's reply was expected",
                    match kind {
                        Some(k) => format!("a message of kind {k:#04x}"),
                        None => "an empty message".to_owned(),
                    }
                ))),
            },
            Err(e) => Err(Wrong::Io(e)),
        };
        match got {
            Ok(value) => {
                // A next request in flight keeps the current mark (see `stderr_tail`).
                self.oldest += 1;
                Ok(value)
            }
            Err(Wrong::Violation(v)) => Err(CallFailure::Died(self.bury_for(Some(&v)))),
            Err(Wrong::Io(e)) if e.kind() == io::ErrorKind::TimedOut => {
                Err(CallFailure::TimedOut(self.bury()))
            }
            Err(Wrong::Io(e)) if e.kind() == io::ErrorKind::InvalidData => {
                let v = format!("sent a corrupt frame: {e}");
                Err(CallFailure::Died(self.bury_for(Some(&v))))
            }
            Err(Wrong::Io(_)) => Err(CallFailure::Died(self.bury())),
        }
    }

    /// Kills, reaps, and records the death (idempotent).
    pub(crate) fn bury(&mut self) -> Death {
        self.bury_for(None)
    }

    /// Like [`bury`](Self::bury); `violation` (what the worker did wrong, if that is why it
    /// is killed) becomes the last line of the death's stderr tail, with worker id and pid.
    fn bury_for(&mut self, violation: Option<&str>) -> Death {
        if let Some(d) = &self.dead {
            return d.clone();
        }
        let exit = Exit::of(self.cell.reap());
        let mut stderr_tail = self.stderr.tail(STDERR_GRACE);
        let mut note = |line: &str| {
            if !stderr_tail.is_empty() && !stderr_tail.ends_with('\n') {
                stderr_tail.push('\n');
            }
            stderr_tail.push_str(line);
        };
        if self.cell.server_died() {
            note("pool-process: the fork server died; its workers were killed with it");
        }
        if let Some(v) = violation {
            note(&format!(
                "pool-process: protocol violation: worker #{} (pid {}) {v}; it was killed",
                self.id, self.cell.pid
            ));
        }
        let death = Death {
            pid: self.cell.pid,
            exit,
            stderr_tail,
        };
        self.dead = Some(death.clone());
        death
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

    /// Asks for a clean exit (the finalizer runs), waits until `deadline`, then kills.
    /// Returns the finalizer's failure, if any.
    pub(crate) fn stop(mut self, deadline: Instant) -> Result<(), String> {
        if self.dead.is_some() {
            return Ok(());
        }
        let mut result = Ok(());
        self.stderr.mark_task_start();
        if self.transport.send(&[&[STOP]]).is_ok() {
            match self.transport.recv(Some(deadline)) {
                Ok(frame) if frame.first() == Some(&STOPPED) => {
                    let outcome = frame.get(1).copied().and_then(Outcome::from_u8);
                    if let Some(o) = outcome
                        && o != Outcome::Ok
                    {
                        result = Err(format!(
                            "the finalizer failed in worker #{} (pid {}): {}",
                            self.id,
                            self.cell.pid,
                            describe_hook_failure(o, &frame[2..])
                        ));
                    }
                }
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::TimedOut => {
                    result = Err(format!(
                        "worker #{} (pid {}) did not finish its finalizer in time and was killed",
                        self.id, self.cell.pid
                    ));
                }
                Err(_) => {
                    let death = self.bury();
                    result = Err(format!(
                        "worker #{} (pid {}) died while stopping ({})",
                        self.id, self.cell.pid, death.exit
                    ));
                }
            }
        }
        // Give it until the deadline to exit by itself.
        while self.cell.try_reap().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
        self.bury();
        result
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::task_header;
    use pool_codec::{Codec, DefaultCodec};

    fn double(x: u64) -> u64 {
        x * 2
    }

    fn config_with(transport: TransportKind, start_method: StartMethod) -> StartConfig {
        StartConfig {
            env: Vec::new(),
            transport,
            program: None,
            setup: Setup {
                probe: transfer::probe_ref::<DefaultCodec>(),
                init: None,
                fin: None,
            },
            codec_name: DefaultCodec::default().name(),
            start_timeout: Duration::from_secs(20),
            start_method,
            named: None,
        }
    }

    fn call_u64(w: &mut WorkerProcess, f: transfer::FnRef, x: u64) -> Result<u64, String> {
        let codec = DefaultCodec::default();
        let mut arg = Vec::new();
        codec.encode(&x, &mut arg).unwrap();
        let reply = w.call(
            &[&task_header(f), &arg],
            Some(Instant::now() + Duration::from_secs(20)),
            |o, bytes| (o, bytes.to_vec()),
        );
        match reply {
            Ok((Outcome::Ok, bytes)) => Ok(codec.decode(&bytes).unwrap()),
            Ok((Outcome::Panicked, bytes)) => Err(describe_panic(&bytes)),
            Ok((o, _)) => Err(format!("{o:?}")),
            Err(CallFailure::Died(d) | CallFailure::TimedOut(d)) => Err(d.exit.to_string()),
        }
    }

    #[test]
    fn start_call_and_stop_over_both_transports() {
        for (kind, method) in [
            TransportKind::Pipe,
            TransportKind::LocalSocket,
            TransportKind::Shm,
        ]
        .into_iter()
        .flat_map(|k| [(k, StartMethod::Spawn), (k, StartMethod::ForkServer)])
        {
            let mut w = WorkerProcess::start(&config_with(kind, method), 1)
                .unwrap_or_else(|e| panic!("{kind:?} {method:?}: {e:?}"));
            let pid = w.pid();
            let f = transfer::task_ref::<_, u64, u64, DefaultCodec>(&double);
            for i in 0..100 {
                assert_eq!(call_u64(&mut w, f, i), Ok(i * 2));
            }
            let boom = |x: u64| -> u64 { if x > 0 { panic!("boom {x}") } else { 0 } };
            let pf = transfer::task_ref::<_, u64, u64, DefaultCodec>(&boom);
            let err = call_u64(&mut w, pf, 7).unwrap_err();
            assert!(
                err.contains("boom 7") && err.contains("supervisor.rs"),
                "{err}"
            );
            assert!(w.alive());
            assert!(w.memory_bytes().unwrap() > 0);
            w.stop(Instant::now() + Duration::from_secs(5)).unwrap();
            assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists());
        }
    }

    #[test]
    fn pipelined_requests_are_numbered_and_answered_in_order() {
        let mut w =
            WorkerProcess::start(&config_with(TransportKind::Pipe, StartMethod::Spawn), 4).unwrap();
        let f = transfer::task_ref::<_, u64, u64, DefaultCodec>(&double);
        let codec = DefaultCodec::default();
        let deadline = Some(Instant::now() + Duration::from_secs(20));
        for round in 0..3u64 {
            for i in 0..5u64 {
                let mut arg = Vec::new();
                codec.encode(&(round * 10 + i), &mut arg).unwrap();
                w.send_request(&[&task_header(f), &arg]).unwrap();
            }
            assert_eq!((w.oldest, w.next_seq), (round * 5 + 1, round * 5 + 6));
            for i in 0..5u64 {
                let got = w.recv_reply(deadline, |o, bytes| (o, codec.decode::<u64>(bytes)));
                let Ok((Outcome::Ok, Ok(v))) = got else {
                    panic!("round {round} task {i}: no reply");
                };
                assert_eq!(v, 2 * (round * 10 + i));
            }
            assert_eq!(w.oldest, w.next_seq);
        }
        // Not a request header: refused, nothing sent.
        assert_eq!(
            w.send_request(&[&[STOP]]).unwrap_err().kind(),
            io::ErrorKind::InvalidInput
        );
        assert_eq!(w.next_seq, 16);
        w.stop(Instant::now() + Duration::from_secs(5)).unwrap();
    }

    #[test]
    fn a_pipelined_task_dying_before_its_turn_is_read_keeps_its_stderr_lines() {
        // The worker answers the first task and runs the second at once: its line is drained
        // before the parent reads the first answer. The quote must still hold it.
        let mut w =
            WorkerProcess::start(&config_with(TransportKind::Pipe, StartMethod::Spawn), 5).unwrap();
        let f = transfer::task_ref::<_, u64, u64, DefaultCodec>(&double);
        let dies = transfer::task_ref::<_, u64, u64, DefaultCodec>(&|_x: u64| -> u64 {
            eprintln!("about to abort, pipelined");
            std::process::abort()
        });
        let codec = DefaultCodec::default();
        let mut arg = Vec::new();
        codec.encode(&1u64, &mut arg).unwrap();
        w.send_request(&[&task_header(f), &arg]).unwrap();
        w.send_request(&[&task_header(dies), &arg]).unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while !w.stderr.is_closed() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        let first = w.recv_reply(Some(deadline), |o, bytes| (o, codec.decode::<u64>(bytes)));
        assert!(matches!(first, Ok((Outcome::Ok, Ok(2)))), "first reply");
        let second = w.recv_reply(Some(deadline), |o, _| o);
        let Err(CallFailure::Died(death)) = second else {
            panic!("the second task must die");
        };
        assert!(
            death.stderr_tail.contains("about to abort, pipelined"),
            "{:?}",
            death.stderr_tail
        );
    }

    #[test]
    fn a_refused_fork_server_falls_back_to_spawn() {
        forkserver::testing::set_refused(Some("test: pretend another thread runs"));
        let started = WorkerProcess::start(
            &config_with(TransportKind::Pipe, StartMethod::ForkServer),
            3,
        );
        forkserver::testing::set_refused(None);
        let mut w = started.unwrap();
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", w.pid())).unwrap();
        let ppid: u32 = stat[stat.rfind(')').unwrap() + 1..]
            .split_whitespace()
            .nth(1)
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(ppid, proc::own_pid(), "the worker must be spawned by us");
        let f = transfer::task_ref::<_, u64, u64, DefaultCodec>(&double);
        assert_eq!(call_u64(&mut w, f, 21), Ok(42));
        w.stop(Instant::now() + Duration::from_secs(5)).unwrap();
    }

    #[test]
    fn abort_is_reported_by_signal_name() {
        for method in [StartMethod::Spawn, StartMethod::ForkServer] {
            let mut w = WorkerProcess::start(&config_with(TransportKind::Pipe, method), 2).unwrap();
            let f = transfer::task_ref::<_, u64, u64, DefaultCodec>(&|_x: u64| -> u64 {
                eprintln!("about to abort");
                std::process::abort()
            });
            let err = call_u64(&mut w, f, 1).unwrap_err();
            assert_eq!(err, "SIGABRT (signal 6)", "{method:?}");
            assert!(w.bury().stderr_tail.contains("about to abort"));
            assert!(!w.alive());
        }
    }
}

#[cfg(test)]
mod latency {
    use super::*;
    use crate::protocol::task_header;
    use pool_codec::{Codec, DefaultCodec};

    /// Not a test of speed (nothing is asserted on time): prints the bare call latency,
    /// without the engine, for profiling. Run with `--ignored --nocapture` in release mode.
    #[test]
    #[ignore = "measurement, run by hand"]
    fn bare_call_latency() {
        let cfg = StartConfig {
            env: Vec::new(),
            transport: TransportKind::Pipe,
            program: None,
            setup: Setup {
                probe: transfer::probe_ref::<DefaultCodec>(),
                init: None,
                fin: None,
            },
            codec_name: DefaultCodec::default().name(),
            start_timeout: Duration::from_secs(20),
            start_method: StartMethod::Spawn,
            named: None,
        };
        let mut w = WorkerProcess::start(&cfg, 9).unwrap();
        let f = transfer::task_ref::<_, u64, u64, DefaultCodec>(&|x: u64| x + 1);
        let codec = DefaultCodec::default();
        let mut arg = Vec::new();
        codec.encode(&5u64, &mut arg).unwrap();
        let header = task_header(f);
        let mut times = Vec::new();
        for _ in 0..20_000 {
            let t = Instant::now();
            let o = w.call(&[&header, &arg], None, |o, _| o).ok().unwrap();
            times.push(t.elapsed());
            assert_eq!(o, Outcome::Ok);
        }
        times.sort();
        println!(
            "bare call: median {:?}, p10 {:?}",
            times[times.len() / 2],
            times[times.len() / 10]
        );
        // Floor: 8-byte ping-pong with `cat` over std pipes.
        use std::io::{Read, Write};
        let mut cat = Command::new("cat")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut i = cat.stdin.take().unwrap();
        let mut o = cat.stdout.take().unwrap();
        let mut times = Vec::new();
        let mut b = [0u8; 8];
        for _ in 0..20_000 {
            let t = Instant::now();
            i.write_all(&b).unwrap();
            o.read_exact(&mut b).unwrap();
            times.push(t.elapsed());
        }
        times.sort();
        println!(
            "cat ping-pong: median {:?}, p10 {:?}",
            times[times.len() / 2],
            times[times.len() / 10]
        );
        drop(i);
        cat.wait().unwrap();
    }
}
