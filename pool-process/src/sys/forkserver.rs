//! The fork server: one single-threaded, already-loaded copy of this program per parent
//! process, which forks ready workers on request (no exec, no dynamic loader, no `cpuid`).
//!
//! Mechanism. The first pool that wants a forked worker starts the server: an exec of the held
//! executable (`exe.rs`) from the long-lived spawner thread (`spawn.rs`), with
//! [`FORKSERVER_ENV`] set to the parent's pid and one end of a
//! `socketpair(AF_UNIX, SOCK_SEQPACKET)` as its stdin. The pre-`main` hook sees the variable
//! and runs [`serve_forever`], which never returns to `main`. All pools of the process share
//! that server; when it has died, the next start launches a new one.
//!
//! Messages (one datagram each; integers little-endian, see `crate::wire`):
//!
//! - parent → server: `FORK(request id, worker spec, environment, cwd)` with the child's fds
//!   0/1/2 attached (`SCM_RIGHTS`); `KILL(pid)`; `RELEASE(pid)`.
//! - server → parent: `READY(pid, refusal)` once; `FORKED(request id, pid)` or
//!   `FORK_FAILED(request id, why)`; `EXITED(pid, wait status)`; `REAPED(pid)`.
//!
//! The server watches its socket and a pidfd per child with `poll`. When a child exits it
//! learns the status with `waitid(WEXITED | WNOWAIT)` — the zombie is kept — and sends
//! `EXITED`. It reaps the child only on `RELEASE`, which the parent sends after its last kill.
//! `KILL` and `RELEASE` kill the child's process group and the child *in the server*, the
//! child's own parent, where the pid is provably still the child's (unreaped). So the
//! invariant of `proc.rs` — a group id is never reused while the pool may still kill it —
//! holds for forked workers too. When the server is gone, its workers are gone with it (their
//! parent-death signal) and their pids are never signalled again.
//!
//! No orphans: the server arms `PR_SET_PDEATHSIG(SIGKILL)` against the spawner thread (which
//! never exits) and re-checks its parent; it exits when its socket reaches end of file; a
//! forked worker arms its own parent-death signal against the server (`serve.rs`). Parent
//! killed → server killed → workers killed, each with its whole process group.
//!
//! # Safety invariant
//!
//! `fork()` in a multi-threaded process leaves the child with only the forking thread while
//! locks held by other threads (malloc's, the environment lock, stdio's) stay locked forever;
//! only async-signal-safe calls would be allowed there. The server therefore runs before
//! `main` in a process that was just exec'd, and *checks* that it is single-threaded
//! (`/proc/self/status`, `Threads: 1`) before it serves; it starts no thread afterwards. A
//! process with a thread started by some other pre-`main` constructor refuses to serve, and
//! its pools fall back to spawning. Under this invariant the forked child is an ordinary
//! single-threaded process in which every call (allocation, environment edits, stdio) is
//! sound, exactly like the worker hook after a fresh exec. Every `unsafe` block of the
//! fork-server lives in this file.

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::io::{self, IoSlice, IoSliceMut};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

use crossbeam_channel::{Sender, bounded};
use rustix::event::{PollFd, PollFlags, Timespec};
use rustix::net::{
    AddressFamily, RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, ReturnFlags,
    SendAncillaryBuffer, SendAncillaryMessage, SendFlags, SocketFlags, SocketType,
};
use rustix::process::{Pid, PidfdFlags, WaitId, WaitIdOptions, WaitOptions};

use super::exe::self_exe;
use super::{proc, spawn};
use crate::wire::{Put, Reader};

/// The environment variable that puts a process in fork-server mode; its value is the pid
/// of the parent that started it.
pub(crate) const FORKSERVER_ENV: &str = "POOL_PROCESS_FORKSERVER";

/// The server's process name (`comm`), distinct from the workers' `pool-w<N>`.
pub(crate) const SERVER_NAME: &str = "pool-fs";

/// Largest request datagram (the environment dominates).
const MAX_MESSAGE: usize = 1 << 20;
/// Exit code of a server that refused to serve or lost its parent.
const EXIT_REFUSED: i32 = 78;

const FORK: u8 = 1;
const KILL: u8 = 2;
const RELEASE: u8 = 3;
const READY: u8 = 0x81;
const FORKED: u8 = 0x82;
const FORK_FAILED: u8 = 0x83;
const EXITED: u8 = 0x84;
const REAPED: u8 = 0x85;

// ---------------------------------------------------------------------------------------
// Datagrams with descriptors.

fn send_msg(sock: BorrowedFd<'_>, body: &[u8], fds: &[BorrowedFd<'_>]) -> io::Result<()> {
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(3))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    if !fds.is_empty() && !control.push(SendAncillaryMessage::ScmRights(fds)) {
        return Err(io::Error::other("too many descriptors for one message"));
    }
    loop {
        match rustix::net::sendmsg(
            sock,
            &[IoSlice::new(body)],
            &mut control,
            SendFlags::NOSIGNAL,
        ) {
            Ok(n) if n == body.len() => return Ok(()),
            Ok(_) => return Err(io::ErrorKind::WriteZero.into()),
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

/// Receives one datagram into `buf` and its descriptors into `fds` (close-on-exec).
/// `Ok(0)` is end of file (no empty datagram is ever sent).
fn recv_msg(sock: BorrowedFd<'_>, buf: &mut [u8], fds: &mut Vec<OwnedFd>) -> io::Result<usize> {
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(3))];
    let mut control = RecvAncillaryBuffer::new(&mut space);
    let got = loop {
        match rustix::net::recvmsg(
            sock,
            &mut [IoSliceMut::new(buf)],
            &mut control,
            RecvFlags::CMSG_CLOEXEC,
        ) {
            Err(rustix::io::Errno::INTR) => continue,
            other => break other?,
        }
    };
    for m in control.drain() {
        if let RecvAncillaryMessage::ScmRights(received) = m {
            fds.extend(received);
        }
    }
    if got
        .flags
        .intersects(ReturnFlags::TRUNC | ReturnFlags::CTRUNC)
    {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "truncated fork-server message",
        ));
    }
    Ok(got.bytes)
}

/// Waits until `fd` is readable or `deadline` passes.
fn wait_readable(fd: BorrowedFd<'_>, deadline: Instant) -> io::Result<()> {
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::ErrorKind::TimedOut.into());
        }
        let timeout = Timespec {
            tv_sec: left.as_secs() as i64,
            tv_nsec: i64::from(left.subsec_nanos()),
        };
        let mut fds = [PollFd::from_borrowed_fd(fd, PollFlags::IN)];
        match rustix::event::poll(&mut fds, Some(&timeout)) {
            Ok(0) | Err(rustix::io::Errno::INTR) => continue,
            Ok(_) => return Ok(()),
            Err(e) => return Err(e.into()),
        }
    }
}

fn to_pid(pid: u32) -> Option<Pid> {
    Pid::from_raw(i32::try_from(pid).ok()?)
}

// ---------------------------------------------------------------------------------------
// Messages: parsing and building, without I/O (the fuzz target `forkserver` runs them).

/// What a FORK request asks for: the worker's spec, its whole environment, its working
/// directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ForkRequest {
    pub(crate) spec: String,
    pub(crate) env: Vec<(OsString, OsString)>,
    pub(crate) cwd: OsString,
}

impl ForkRequest {
    /// Reads the fields after the request id; `None` if they are truncated or malformed.
    fn read(r: &mut Reader<'_>) -> Option<Self> {
        let spec = r.str()?;
        let n = r.u32()?;
        let mut env = Vec::new();
        for _ in 0..n {
            let k = OsString::from_vec(r.bytes()?.to_vec());
            let v = OsString::from_vec(r.bytes()?.to_vec());
            env.push((k, v));
        }
        let cwd = OsString::from_vec(r.bytes()?.to_vec());
        Some(Self { spec, env, cwd })
    }
}

/// The FORK message for request `request`.
fn fork_message(request: i64, spec: &str, env: &[(OsString, OsString)], cwd: &OsStr) -> Vec<u8> {
    let mut body = vec![FORK];
    body.put_i64(request);
    body.put_str(spec);
    body.put_u32(env.len() as u32);
    for (k, v) in env {
        body.put_bytes(k.as_bytes());
        body.put_bytes(v.as_bytes());
    }
    body.put_bytes(cwd.as_bytes());
    body
}

/// A message from the parent, as the server reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Request {
    /// FORK: the request id (0 if missing) and what to fork (`None`: malformed, answered with
    /// FORK_FAILED).
    Fork(i64, Option<ForkRequest>),
    /// KILL of a pid (0 if missing: matches no child).
    Kill(u32),
    /// RELEASE of a pid (0 if missing).
    Release(u32),
    /// Empty, or of a kind the server does not know: ignored.
    Other,
}

impl Request {
    pub(crate) fn decode(msg: &[u8]) -> Self {
        let mut r = Reader(msg);
        match r.u8() {
            Some(FORK) => {
                let request = r.i64().unwrap_or(0);
                Self::Fork(request, ForkRequest::read(&mut r))
            }
            Some(KILL) => Self::Kill(r.u32().unwrap_or(0)),
            Some(RELEASE) => Self::Release(r.u32().unwrap_or(0)),
            _ => Self::Other,
        }
    }

    /// The message the parent sends for this request (`None`: no parent sends it).
    #[cfg(any(test, feature = "fuzzing"))]
    pub(crate) fn encode(&self) -> Option<Vec<u8>> {
        match self {
            Self::Fork(request, Some(f)) => Some(fork_message(*request, &f.spec, &f.env, &f.cwd)),
            Self::Kill(pid) => Some(pid_message(KILL, *pid).to_vec()),
            Self::Release(pid) => Some(pid_message(RELEASE, *pid).to_vec()),
            Self::Fork(_, None) | Self::Other => None,
        }
    }
}

/// A message from the server, as the parent reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Answer {
    /// The server's pid, and why it refuses to serve, if it does.
    Ready {
        pid: u32,
        refusal: Option<String>,
    },
    Forked {
        request: i64,
        pid: u32,
    },
    ForkFailed {
        request: i64,
        why: String,
    },
    /// A child exited: its classic wait status.
    Exited {
        pid: u32,
        status: i64,
    },
    Reaped {
        pid: u32,
    },
}

impl Answer {
    pub(crate) fn encode(&self) -> Vec<u8> {
        match self {
            Self::Ready { pid, refusal } => {
                let mut m = vec![READY];
                m.put_u32(*pid);
                m.put_opt_str(refusal.as_deref());
                m
            }
            Self::Forked { request, pid } => {
                let mut m = vec![FORKED];
                m.put_i64(*request);
                m.put_u32(*pid);
                m
            }
            Self::ForkFailed { request, why } => {
                let mut m = vec![FORK_FAILED];
                m.put_i64(*request);
                m.put_str(why);
                m
            }
            Self::Exited { pid, status } => {
                let mut m = vec![EXITED];
                m.put_u32(*pid);
                m.put_i64(*status);
                m
            }
            Self::Reaped { pid } => pid_message(REAPED, *pid).to_vec(),
        }
    }

    /// `None` for a message of another kind, or truncated.
    pub(crate) fn decode(msg: &[u8]) -> Option<Self> {
        let mut r = Reader(msg);
        Some(match r.u8()? {
            READY => Self::Ready {
                pid: r.u32()?,
                refusal: r.opt_str()?,
            },
            FORKED => Self::Forked {
                request: r.i64()?,
                pid: r.u32()?,
            },
            FORK_FAILED => Self::ForkFailed {
                request: r.i64()?,
                why: r.str()?,
            },
            EXITED => Self::Exited {
                pid: r.u32()?,
                status: r.i64()?,
            },
            REAPED => Self::Reaped { pid: r.u32()? },
            _ => return None,
        })
    }
}

// ---------------------------------------------------------------------------------------
// Parent side.

/// How a forked worker stands, as the parent knows it.
enum Status {
    Running,
    Exited(ExitStatus),
    /// The server died; the worker died with it (its parent-death signal).
    ServerDied,
}

struct State {
    dead: bool,
    next_request: i64,
    pending: HashMap<i64, Sender<Result<Arc<Forked>, String>>>,
    /// Forked workers the server has not reaped yet.
    children: HashMap<u32, Arc<Forked>>,
}

/// A running fork server, as the parent sees it.
pub(crate) struct Server {
    sock: OwnedFd,
    pid: u32,
    /// The process that started it: a copy of this object in a forked child of the parent
    /// (which inherited the socket) must never talk to the parent's server.
    owner: u32,
    state: Mutex<State>,
}

/// A worker forked by the server: its pid stays valid (unreaped) until [`Forked::release`].
pub(crate) struct Forked {
    pid: u32,
    server: Arc<Server>,
    status: Mutex<(Status, bool)>,
    changed: Condvar,
    released: AtomicBool,
}

/// How long [`Forked::release`] waits for the server to confirm the reaping.
const REAP_WAIT: Duration = Duration::from_secs(5);

impl Forked {
    /// The worker's pid.
    pub(crate) fn pid(&self) -> u32 {
        self.pid
    }

    fn set(&self, status: Status, reaped: bool) {
        let mut st = self.status.lock().unwrap_or_else(PoisonError::into_inner);
        if matches!(st.0, Status::Running) {
            st.0 = status;
        }
        st.1 |= reaped;
        self.changed.notify_all();
    }

    fn mark_reaped(&self) {
        self.status.lock().unwrap_or_else(PoisonError::into_inner).1 = true;
        self.changed.notify_all();
    }

    fn settled(st: &Status) -> Option<ExitStatus> {
        match st {
            Status::Running => None,
            Status::Exited(s) => Some(*s),
            // It was killed by SIGKILL from its parent-death handler.
            Status::ServerDied => Some(ExitStatus::from_raw(libc::SIGKILL)),
        }
    }

    /// Kills the worker's process group and the worker (done by the server, which holds the
    /// unreaped child). Nothing to do once it has exited or the server is gone.
    ///
    /// The message is sent without holding the status lock (the reader thread takes it), and
    /// may cross the child's exit: the server acts only on a child it has not reaped.
    pub(crate) fn kill(&self) {
        let running = matches!(
            self.status.lock().unwrap_or_else(PoisonError::into_inner).0,
            Status::Running
        );
        if running {
            let _ = self.server.send(&pid_message(KILL, self.pid), &[]);
        }
    }

    /// The exit status, once known.
    pub(crate) fn try_status(&self) -> Option<ExitStatus> {
        Self::settled(&self.status.lock().unwrap_or_else(PoisonError::into_inner).0)
    }

    /// Waits for the exit status (the caller has killed the worker, or it is exiting).
    pub(crate) fn wait(&self) -> ExitStatus {
        let mut st = self.status.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            if let Some(s) = Self::settled(&st.0) {
                return s;
            }
            st = self
                .changed
                .wait(st)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }

    /// Did the worker die because the fork server died?
    pub(crate) fn server_died(&self) -> bool {
        matches!(
            self.status.lock().unwrap_or_else(PoisonError::into_inner).0,
            Status::ServerDied
        )
    }

    /// Lets the server kill the worker's group one last time and reap it, without waiting;
    /// the pid must not be used afterwards. Idempotent.
    fn release_async(&self) -> bool {
        !self.released.swap(true, Ordering::SeqCst)
            && !self.server_died()
            && self
                .server
                .send(&pid_message(RELEASE, self.pid), &[])
                .is_ok()
    }

    /// Like `release_async`, then waits (boundedly) until the server has reaped the worker,
    /// so no zombie outlives the caller's reaping. Idempotent.
    pub(crate) fn release(&self) {
        if !self.release_async() {
            return;
        }
        let until = Instant::now() + REAP_WAIT;
        let mut st = self.status.lock().unwrap_or_else(PoisonError::into_inner);
        while !st.1 {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            st = self
                .changed
                .wait_timeout(st, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }
}

fn pid_message(kind: u8, pid: u32) -> [u8; 5] {
    let mut m = [kind, 0, 0, 0, 0];
    m[1..].copy_from_slice(&pid.to_le_bytes());
    m
}

/// Why the server is not available.
#[derive(Debug, Clone)]
pub(crate) enum Unavailable {
    /// It cannot serve in this program (not single-threaded before `main`): do not retry.
    Refused(String),
    /// It could not be started this time.
    Failed(String),
}

impl std::fmt::Display for Unavailable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Refused(m) | Self::Failed(m) => f.write_str(m),
        }
    }
}

enum Slot {
    Empty,
    Running(Arc<Server>),
    Refused(String),
}

static CURRENT: Mutex<Slot> = Mutex::new(Slot::Empty);

/// The process's fork server, started (or restarted after its death) if needed.
pub(crate) fn server(deadline: Instant) -> Result<Arc<Server>, Unavailable> {
    let mut slot = CURRENT.lock().unwrap_or_else(PoisonError::into_inner);
    match &*slot {
        Slot::Running(s) if !s.is_dead() && s.owner == proc::own_pid() => {
            return Ok(Arc::clone(s));
        }
        Slot::Refused(why) => return Err(Unavailable::Refused(why.clone())),
        _ => {}
    }
    match Server::start(deadline) {
        Ok(s) => {
            *slot = Slot::Running(Arc::clone(&s));
            reap_at_exit();
            Ok(s)
        }
        Err(Unavailable::Refused(why)) => {
            *slot = Slot::Refused(why.clone());
            Err(Unavailable::Refused(why))
        }
        Err(e) => {
            *slot = Slot::Empty;
            Err(e)
        }
    }
}

/// Makes the process's exit take its fork server down and reap it (once per process).
///
/// The server dies with the process anyway (its parent-death signal), but then it is
/// re-parented and left to `init` to reap: a `pool-fs` zombie of `init` can be seen for a
/// moment after the program ended (1.8 s on this machine's init). Killed and reaped by the
/// exiting process itself, nothing of it is left when the program is gone.
fn reap_at_exit() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // SAFETY: `atexit` registers a plain `extern "C"` function without arguments; it runs
        // at most once, at `exit`, on the exiting thread, and neither panics nor unwinds.
        let _ = unsafe { libc::atexit(kill_and_reap_server) };
    });
}

/// The `atexit` hook of [`reap_at_exit`]: kill the server this process started and wait for
/// it. No blocking lock (another thread may hold it at exit), no allocation, no panic.
extern "C" fn kill_and_reap_server() {
    let pid = match CURRENT.try_lock() {
        Ok(slot) => match &*slot {
            Slot::Running(s) if s.owner == proc::own_pid() => s.pid,
            _ => return,
        },
        Err(_) => return,
    };
    let Some(pid) = Pid::from_raw(pid as i32) else {
        return;
    };
    // The server's parent is this process (it reaps it here, or its reader thread already
    // did: then the pid is no longer ours and `waitpid` says so, harmlessly). Its workers,
    // if any pool was left running, die by their own parent-death signal.
    let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
    let _ = rustix::process::waitpid(Some(pid), WaitOptions::empty());
}

/// The running server's pid and the descriptor of the parent's end of its socket.
pub(crate) fn footprint() -> Option<(u32, i32)> {
    use std::os::fd::AsRawFd;
    match &*CURRENT.lock().unwrap_or_else(PoisonError::into_inner) {
        Slot::Running(s) if !s.is_dead() && s.owner == proc::own_pid() => {
            Some((s.pid, s.sock.as_raw_fd()))
        }
        _ => None,
    }
}

impl Server {
    fn start(deadline: Instant) -> Result<Arc<Self>, Unavailable> {
        let failed = |what: &str, e: &dyn std::fmt::Display| {
            Unavailable::Failed(format!("cannot start the fork server: {what}: {e}"))
        };
        let exe = self_exe().map_err(|e| failed("executable", &e))?;
        let (mine, theirs) = rustix::net::socketpair(
            AddressFamily::UNIX,
            SocketType::SEQPACKET,
            SocketFlags::CLOEXEC,
            None,
        )
        .map_err(|e| failed("socketpair", &e))?;
        let mut cmd = Command::new(&exe.exec_path);
        cmd.arg0(&exe.arg0)
            .env(FORKSERVER_ENV, proc::own_pid().to_string())
            .stdin(Stdio::from(theirs))
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        let mut child = spawn::spawn(cmd).map_err(|e| failed("spawn", &e))?;
        let mut buf = vec![0u8; 4096];
        let ready = wait_readable(mine.as_fd(), deadline)
            .and_then(|()| recv_msg(mine.as_fd(), &mut buf, &mut Vec::new()));
        let reply = match ready {
            Ok(n) if n > 0 => match Answer::decode(&buf[..n]) {
                Some(Answer::Ready { pid, refusal }) => Some((pid, refusal)),
                _ => None,
            },
            _ => None,
        };
        let fail_and_reap = |child: &mut Child, e: Unavailable| {
            let _ = child.kill();
            let _ = child.wait();
            e
        };
        let pid = match reply {
            Some((pid, None)) if pid == child.id() => pid,
            Some((_, Some(refusal))) => {
                return Err(fail_and_reap(&mut child, Unavailable::Refused(refusal)));
            }
            _ => {
                let e = failed("no READY message", &"the server exited or did not answer");
                return Err(fail_and_reap(&mut child, e));
            }
        };
        let server = Arc::new(Self {
            sock: mine,
            pid,
            owner: proc::own_pid(),
            state: Mutex::new(State {
                dead: false,
                next_request: 1,
                pending: HashMap::new(),
                children: HashMap::new(),
            }),
        });
        let reader = Arc::clone(&server);
        let handed = Arc::new(Mutex::new(Some(child)));
        let to_reader = Arc::clone(&handed);
        let spawned = std::thread::Builder::new()
            .name("pool-process-forkserver".into())
            .spawn(move || {
                let child = to_reader
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .take();
                if let Some(child) = child {
                    reader.read_loop(child);
                }
            });
        if let Err(e) = spawned {
            // No reader: take the server down and reap it here.
            let child = handed.lock().unwrap_or_else(PoisonError::into_inner).take();
            if let Some(mut child) = child {
                return Err(fail_and_reap(&mut child, failed("reader thread", &e)));
            }
            return Err(failed("reader thread", &e));
        }
        Ok(server)
    }

    /// The server's pid.
    pub(crate) fn pid(&self) -> u32 {
        self.pid
    }

    fn is_dead(&self) -> bool {
        self.state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .dead
    }

    fn send(&self, body: &[u8], fds: &[BorrowedFd<'_>]) -> io::Result<()> {
        if self.owner != proc::own_pid() {
            return Err(io::Error::other(
                "the fork server belongs to the parent process",
            ));
        }
        send_msg(self.sock.as_fd(), body, fds)
    }

    /// Asks for a worker: `spec` is what the worker hook receives, `env` the worker's whole
    /// environment, `cwd` its working directory, `stdio` its fds 0/1/2.
    pub(crate) fn fork(
        self: &Arc<Self>,
        spec: &str,
        env: &[(OsString, OsString)],
        cwd: &OsStr,
        stdio: [BorrowedFd<'_>; 3],
        deadline: Instant,
    ) -> Result<Arc<Forked>, String> {
        let (tx, rx) = bounded(1);
        let request = {
            let mut st = self.state.lock().unwrap_or_else(PoisonError::into_inner);
            if st.dead {
                return Err("the fork server is gone".to_owned());
            }
            let r = st.next_request;
            st.next_request += 1;
            st.pending.insert(r, tx);
            r
        };
        let body = fork_message(request, spec, env, cwd);
        let forget = || {
            self.state
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .pending
                .remove(&request);
        };
        if let Err(e) = self.send(&body, &stdio) {
            forget();
            return Err(format!("cannot send the fork request: {e}"));
        }
        match rx.recv_deadline(deadline) {
            Ok(result) => result,
            Err(_) => {
                // A later FORKED finds no waiter and lets the worker go; one that came in
                // between is let go here.
                forget();
                if let Ok(Ok(late)) = rx.try_recv() {
                    late.kill();
                    late.release_async();
                }
                Err("the fork server did not answer in time".to_owned())
            }
        }
    }

    fn read_loop(self: Arc<Self>, mut child: Child) {
        let mut buf = vec![0u8; 4096];
        let mut fds = Vec::new();
        loop {
            fds.clear();
            let n = match recv_msg(self.sock.as_fd(), &mut buf, &mut fds) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            match Answer::decode(&buf[..n]) {
                Some(Answer::Forked { request, pid }) => {
                    let forked = Arc::new(Forked {
                        pid,
                        server: Arc::clone(&self),
                        status: Mutex::new((Status::Running, false)),
                        changed: Condvar::new(),
                        released: AtomicBool::new(false),
                    });
                    let waiter = {
                        let mut st = self.state.lock().unwrap_or_else(PoisonError::into_inner);
                        st.children.insert(pid, Arc::clone(&forked));
                        st.pending.remove(&request)
                    };
                    let unwanted = match waiter {
                        Some(tx) => tx.send(Ok(Arc::clone(&forked))).is_err(),
                        None => true,
                    };
                    if unwanted {
                        // Nobody waits any more (the request timed out): let it go.
                        forked.kill();
                        forked.release_async();
                    }
                }
                Some(Answer::ForkFailed { request, why }) => {
                    let waiter = self
                        .state
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .pending
                        .remove(&request);
                    if let Some(tx) = waiter {
                        let _ = tx.send(Err(format!("the fork server could not fork: {why}")));
                    }
                }
                Some(Answer::Exited { pid, status: raw }) => {
                    let forked = self
                        .state
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .children
                        .get(&pid)
                        .cloned();
                    if let Some(f) = forked {
                        f.set(Status::Exited(ExitStatus::from_raw(raw as i32)), false);
                    }
                }
                Some(Answer::Reaped { pid }) => {
                    let forked = self
                        .state
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .children
                        .remove(&pid);
                    if let Some(f) = forked {
                        f.mark_reaped();
                    }
                }
                // READY again, an unknown kind or a truncated message.
                Some(Answer::Ready { .. }) | None => break,
            }
        }
        // The server is gone (or spoke nonsense: then it is killed). Its workers die with it.
        let _ = child.kill();
        {
            let mut slot = CURRENT.lock().unwrap_or_else(PoisonError::into_inner);
            if matches!(&*slot, Slot::Running(s) if Arc::ptr_eq(s, &self)) {
                // The socket closes once the last of its workers is buried.
                *slot = Slot::Empty;
            }
        }
        let (children, pending) = {
            let mut st = self.state.lock().unwrap_or_else(PoisonError::into_inner);
            st.dead = true;
            (
                std::mem::take(&mut st.children),
                std::mem::take(&mut st.pending),
            )
        };
        for f in children.into_values() {
            f.set(Status::ServerDied, true);
        }
        for tx in pending.into_values() {
            let _ = tx.send(Err("the fork server died".to_owned()));
        }
        let _ = child.wait();
    }
}

// ---------------------------------------------------------------------------------------
// Server side.

/// One child of the server.
struct ChildEntry {
    pid: u32,
    /// Readable once the child exited; dropped after its status went to the parent.
    pidfd: Option<OwnedFd>,
    exited: bool,
    released: bool,
    reaped: bool,
}

/// The number of threads of this process, from `/proc/self/status`.
fn thread_count() -> Option<u32> {
    let text = std::fs::read_to_string("/proc/self/status").ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .and_then(|n| n.trim().parse().ok())
}

/// `waitid`'s answer as a classic wait status (what `ExitStatus::from_raw` takes).
fn raw_wait_status(st: &rustix::process::WaitIdStatus) -> i32 {
    if let Some(code) = st.exit_status() {
        (code & 0xff) << 8
    } else if let Some(sig) = st.terminating_signal() {
        sig | if st.dumped() { 0x80 } else { 0 }
    } else {
        0
    }
}

fn reap(c: &mut ChildEntry, sock: Option<&OwnedFd>) {
    if let Some(pid) = to_pid(c.pid) {
        while let Err(rustix::io::Errno::INTR) =
            rustix::process::waitpid(Some(pid), WaitOptions::empty())
        {}
    }
    c.reaped = true;
    if let Some(sock) = sock {
        let _ = send_msg(sock.as_fd(), &Answer::Reaped { pid: c.pid }.encode(), &[]);
    }
}

/// Runs the fork server (called by the pre-`main` hook when [`FORKSERVER_ENV`] is set);
/// never returns. A forked child leaves through `on_child(worker spec)`.
pub(crate) fn serve_forever(expected_parent: &OsStr, on_child: fn(OsString) -> !) -> ! {
    // Fds 0/1/2 stay occupied for the server's whole life, so every descriptor it receives
    // lands at 3 or above (the child's dup2 onto 0/1/2 below relies on it).
    let sock = match take_socket() {
        Ok(s) => s,
        Err(_) => std::process::exit(EXIT_REFUSED),
    };
    let refusal = check_server(expected_parent);
    let ready = Answer::Ready {
        pid: proc::own_pid(),
        refusal: refusal.clone(),
    }
    .encode();
    if send_msg(sock.as_fd(), &ready, &[]).is_err() || refusal.is_some() {
        std::process::exit(EXIT_REFUSED);
    }
    let mut children: Vec<ChildEntry> = Vec::new();
    let mut buf = vec![0u8; MAX_MESSAGE];
    let mut fds = Vec::new();
    loop {
        let (sock_ready, exited) = {
            let mut pfds = Vec::with_capacity(children.len() + 1);
            pfds.push(PollFd::new(&sock, PollFlags::IN));
            let watched: Vec<usize> = (0..children.len())
                .filter(|&i| children[i].pidfd.is_some())
                .collect();
            for &i in &watched {
                if let Some(fd) = &children[i].pidfd {
                    pfds.push(PollFd::new(fd, PollFlags::IN));
                }
            }
            match rustix::event::poll(&mut pfds, None) {
                Ok(_) => {}
                Err(rustix::io::Errno::INTR) => continue,
                Err(_) => shut_down(&mut children),
            }
            let exited: Vec<usize> = watched
                .iter()
                .zip(&pfds[1..])
                .filter(|(_, p)| !p.revents().is_empty())
                .map(|(&i, _)| i)
                .collect();
            (!pfds[0].revents().is_empty(), exited)
        };
        for i in exited {
            let c = &mut children[i];
            let status = c.pidfd.as_ref().and_then(|fd| {
                rustix::process::waitid(
                    WaitId::PidFd(fd.as_fd()),
                    WaitIdOptions::EXITED | WaitIdOptions::NOWAIT | WaitIdOptions::NOHANG,
                )
                .ok()
                .flatten()
            });
            if let Some(st) = status {
                // The worker is gone but its zombie is kept (`WNOWAIT`), so its group id
                // cannot have been reused: take down whatever it left in its group (a forked
                // grandchild holding its pipes open would otherwise outlive it).
                proc::kill_tree(c.pid);
                c.pidfd = None;
                c.exited = true;
                let m = Answer::Exited {
                    pid: c.pid,
                    status: i64::from(raw_wait_status(&st)),
                };
                let _ = send_msg(sock.as_fd(), &m.encode(), &[]);
                if c.released {
                    reap(c, Some(&sock));
                }
            }
        }
        if sock_ready {
            fds.clear();
            let n = match recv_msg(sock.as_fd(), &mut buf, &mut fds) {
                Ok(0) => shut_down(&mut children),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::InvalidData => 0,
                Err(_) => shut_down(&mut children),
            };
            match Request::decode(&buf[..n]) {
                Request::Fork(request, fork) => {
                    let stdio = std::mem::take(&mut fds);
                    let answer = match fork_child(fork, stdio, on_child) {
                        Ok(entry) => {
                            let pid = entry.pid;
                            children.push(entry);
                            Answer::Forked { request, pid }
                        }
                        Err(why) => Answer::ForkFailed { request, why },
                    };
                    let _ = send_msg(sock.as_fd(), &answer.encode(), &[]);
                }
                request @ (Request::Kill(pid) | Request::Release(pid)) => {
                    if let Some(c) = children.iter_mut().find(|c| c.pid == pid && !c.reaped) {
                        // An unreaped child of ours: neither its pid nor its group id can
                        // have been reused.
                        proc::kill_tree(c.pid);
                        if matches!(request, Request::Release(_)) {
                            c.released = true;
                            if c.exited {
                                reap(c, Some(&sock));
                            }
                        }
                    }
                }
                Request::Other => {
                    // A request the server does not understand, or a truncated one with
                    // its descriptors (dropped): the parent's waiter times out.
                }
            }
        }
        children.retain(|c| !c.reaped);
    }
}

/// The parent is gone (or the socket broke): take every child's tree down, then exit.
fn shut_down(children: &mut [ChildEntry]) -> ! {
    for c in children.iter().filter(|c| !c.reaped) {
        proc::kill_tree(c.pid);
    }
    std::process::exit(0)
}

/// Moves the socket off fd 0 (to a close-on-exec descriptor) and makes sure 0/1/2 are open.
fn take_socket() -> io::Result<OwnedFd> {
    // SAFETY: fd 0 is the socket the parent placed there; it is borrowed only for this call.
    let stdin = unsafe { BorrowedFd::borrow_raw(0) };
    let sock = rustix::io::fcntl_dupfd_cloexec(stdin, 3)?;
    let null = rustix::fs::open(
        "/dev/null",
        rustix::fs::OFlags::RDWR | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )?;
    rustix::stdio::dup2_stdin(&null)?;
    for fd in 1..3 {
        // SAFETY: only queried; a closed descriptor gives EBADF.
        let probe = unsafe { BorrowedFd::borrow_raw(fd) };
        if rustix::io::fcntl_getfd(probe).is_err() {
            if fd == 1 {
                rustix::stdio::dup2_stdout(&null)?;
            } else {
                rustix::stdio::dup2_stderr(&null)?;
            }
        }
    }
    Ok(sock)
}

/// The server's own checks and set-up; `Some(reason)` refuses.
fn check_server(expected_parent: &OsStr) -> Option<String> {
    super::signals::ignore_sigpipe();
    // SAFETY: restoring the default disposition installs no handler. An inherited SIG_IGN
    // would make the kernel reap children at once, breaking the zombie-keeping invariant.
    unsafe {
        libc::signal(libc::SIGCHLD, libc::SIG_DFL);
    }
    // Its own session, like the workers: a terminal's Ctrl-C / Ctrl-Z / hang-up aimed at the
    // parent's foreground group must not take the server (and with it every worker) down.
    proc::become_group_leader();
    // Hold no directory busy; each child changes to the directory its request names.
    let _ = rustix::process::chdir("/");
    if let Err(e) =
        rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL))
    {
        return Some(format!("prctl(PR_SET_PDEATHSIG) failed: {e}"));
    }
    let expected: Option<u32> = expected_parent.to_str().and_then(|s| s.parse().ok());
    if expected != Some(proc::parent_pid()) {
        // The parent died before the signal was armed; nobody will read a refusal.
        std::process::exit(EXIT_REFUSED);
    }
    match thread_count() {
        Some(1) => {}
        Some(n) => {
            return Some(format!(
                "the fork server is not single-threaded before main ({n} threads: another \
                 constructor started a thread), so forking is unsafe"
            ));
        }
        None => return Some("cannot read /proc/self/status to count threads".to_owned()),
    }
    // SAFETY: the process is single-threaded (checked just above), so nothing else reads
    // the environment concurrently.
    unsafe { std::env::remove_var(FORKSERVER_ENV) };
    if let Ok(name) = std::ffi::CString::new(SERVER_NAME) {
        let _ = rustix::thread::set_name(&name);
    }
    None
}

/// Forks for a parsed FORK request (`None`: it was malformed); the parent side returns the
/// child's entry.
fn fork_child(
    fork: Option<ForkRequest>,
    stdio: Vec<OwnedFd>,
    on_child: fn(OsString) -> !,
) -> Result<ChildEntry, String> {
    let ForkRequest { spec, env, cwd } = fork.ok_or("malformed fork request")?;
    if stdio.len() != 3 {
        return Err(format!("expected 3 descriptors, got {}", stdio.len()));
    }
    // SAFETY: the server is single-threaded (checked in `check_server`, and it never starts
    // a thread), so the child is a complete copy of the process — see the module invariant.
    let pid = unsafe { libc::fork() };
    match pid {
        -1 => Err(format!("fork failed: {}", io::Error::last_os_error())),
        0 => child_after_fork(stdio, env, &cwd, OsString::from(spec), on_child),
        pid => {
            drop(stdio);
            let pid = pid as u32;
            // An unreaped child: its pid cannot have been reused.
            match to_pid(pid).map(|p| rustix::process::pidfd_open(p, PidfdFlags::empty())) {
                Some(Ok(fd)) => Ok(ChildEntry {
                    pid,
                    pidfd: Some(fd),
                    exited: false,
                    released: false,
                    reaped: false,
                }),
                other => {
                    proc::kill_tree(pid);
                    let mut c = ChildEntry {
                        pid,
                        pidfd: None,
                        exited: true,
                        released: true,
                        reaped: false,
                    };
                    reap(&mut c, None);
                    let why = match other {
                        Some(Err(e)) => e.to_string(),
                        _ => "invalid pid".to_owned(),
                    };
                    Err(format!(
                        "cannot watch the forked worker (pidfd_open): {why}"
                    ))
                }
            }
        }
    }
}

/// The forked child: takes its fds 0/1/2, drops every server descriptor, takes the parent's
/// environment and working directory, and becomes a worker.
fn child_after_fork(
    stdio: Vec<OwnedFd>,
    env: Vec<(OsString, OsString)>,
    cwd: &OsStr,
    spec: OsString,
    on_child: fn(OsString) -> !,
) -> ! {
    // The received descriptors are all >= 3 (0/1/2 are kept open in the server).
    let moved = rustix::stdio::dup2_stdin(&stdio[0])
        .and_then(|()| rustix::stdio::dup2_stdout(&stdio[1]))
        .and_then(|()| rustix::stdio::dup2_stderr(&stdio[2]));
    // Every descriptor from 3 up belongs to the server (its socket, its children's pidfds,
    // the received originals): they must not live on in the worker. Their owners in this
    // copy of the server are forgotten, never dropped (this function never returns).
    std::mem::forget(stdio);
    // SAFETY: close_range only closes descriptors; every Rust owner of one of them in this
    // process is leaked (the server loop's frame is never resumed in the child).
    let closed = unsafe { libc::close_range(3, libc::c_uint::MAX, 0) };
    if moved.is_err() || closed != 0 {
        eprintln!("pool-process: a forked worker could not set up its descriptors");
        // SAFETY: _exit ends the process without running anything else.
        unsafe { libc::_exit(EXIT_REFUSED) };
    }
    let old: Vec<OsString> = std::env::vars_os().map(|(k, _)| k).collect();
    for k in old {
        // SAFETY: the child is single-threaded (module invariant).
        unsafe { std::env::remove_var(&k) };
    }
    for (k, v) in env {
        let valid = !k.is_empty()
            && !k.as_bytes().contains(&b'=')
            && !k.as_bytes().contains(&0)
            && !v.as_bytes().contains(&0);
        if valid {
            // SAFETY: as above.
            unsafe { std::env::set_var(&k, &v) };
        }
    }
    if !cwd.is_empty()
        && let Err(e) = rustix::process::chdir(cwd)
    {
        eprintln!(
            "pool-process: a forked worker cannot change to the parent's working directory \
             {cwd:?}: {e}"
        );
        // SAFETY: as above.
        unsafe { libc::_exit(EXIT_REFUSED) };
    }
    on_child(spec)
}

/// Worker side of a forked worker: is `pool` still the parent of `server` (so a pidfd opened
/// on `pool` before this call refers to the pool, not to a reused pid)?
pub(crate) fn server_parent_is(server: u32, pool: u32) -> bool {
    let Ok(text) = std::fs::read_to_string(format!("/proc/{server}/stat")) else {
        return false;
    };
    let Some(close) = text.rfind(')') else {
        return false;
    };
    text[close + 1..]
        .split_ascii_whitespace()
        .nth(1)
        .and_then(|p| p.parse::<u32>().ok())
        == Some(pool)
}

#[cfg(test)]
pub(crate) mod testing {
    use super::{CURRENT, PoisonError, Slot};

    /// Makes the process's fork server "refused" (as if another constructor had started a
    /// thread), or forgets that again.
    pub(crate) fn set_refused(why: Option<&str>) {
        *CURRENT.lock().unwrap_or_else(PoisonError::into_inner) = match why {
            Some(w) => Slot::Refused(w.to_owned()),
            None => Slot::Empty,
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn threads_are_counted() {
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let t = std::thread::spawn(move || rx.recv());
        assert!(
            thread_count().is_some_and(|n| n >= 2),
            "{:?}",
            thread_count()
        );
        drop(tx);
        let _ = t.join();
    }

    #[test]
    fn messages_round_trip_and_truncations_are_refused() {
        let env = vec![(OsString::from("PATH"), OsString::from("/bin"))];
        let fork = fork_message(7, "spec;x", &env, OsStr::new("/tmp"));
        let parsed = Request::decode(&fork);
        let expected = ForkRequest {
            spec: "spec;x".into(),
            env,
            cwd: "/tmp".into(),
        };
        assert_eq!(parsed, Request::Fork(7, Some(expected)));
        assert_eq!(parsed.encode(), Some(fork.clone()));
        // Every cut keeps the kind and fails the details (answered with FORK_FAILED).
        for cut in 1..fork.len() {
            let request = if cut >= 9 { 7 } else { 0 };
            assert_eq!(
                Request::decode(&fork[..cut]),
                Request::Fork(request, None),
                "{cut}"
            );
        }
        assert_eq!(Request::decode(&pid_message(KILL, 42)), Request::Kill(42));
        assert_eq!(Request::decode(&[RELEASE, 1]), Request::Release(0));
        assert_eq!(Request::decode(&[]), Request::Other);
        assert_eq!(Request::decode(&[READY, 1, 2, 3, 4]), Request::Other);

        let answers = [
            Answer::Ready {
                pid: 5,
                refusal: Some("threads".into()),
            },
            Answer::Ready {
                pid: 5,
                refusal: None,
            },
            Answer::Forked {
                request: -1,
                pid: 9,
            },
            Answer::ForkFailed {
                request: 3,
                why: "EAGAIN".into(),
            },
            Answer::Exited {
                pid: 9,
                status: 0x8b,
            },
            Answer::Reaped { pid: 9 },
        ];
        for a in answers {
            let wire = a.encode();
            assert_eq!(Answer::decode(&wire), Some(a.clone()));
            for cut in 0..wire.len() {
                assert_eq!(Answer::decode(&wire[..cut]), None, "{a:?} cut at {cut}");
            }
        }
        assert_eq!(Answer::decode(&[FORK, 0, 0, 0, 0, 0, 0, 0, 0]), None);
    }

    #[test]
    fn wait_statuses_convert() {
        assert_eq!(ExitStatus::from_raw(3 << 8).code(), Some(3));
        assert_eq!(ExitStatus::from_raw(libc::SIGKILL).signal(), Some(9));
        assert!(!server_parent_is(u32::MAX, 1));
        assert!(server_parent_is(proc::own_pid(), proc::parent_pid()));
    }
}
