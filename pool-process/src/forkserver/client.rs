//! The parent's side of the fork server: starting it, asking it to fork, and following each
//! forked worker's status until the server reaped it.

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

use crossbeam_channel::{Sender, bounded};
use rustix::net::{AddressFamily, SocketFlags, SocketType};
use rustix::process::{Pid, WaitOptions};

use super::fdpass::*;
use super::messages::*;
use super::*;
use crate::sys::exe::self_exe;
use crate::sys::{proc, spawn};

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

#[cfg(test)]
pub(crate) mod testing {
    use super::{CURRENT, Slot};
    use std::sync::PoisonError;

    /// Makes the process's fork server "refused" (as if another constructor had started a
    /// thread), or forgets that again.
    pub(crate) fn set_refused(why: Option<&str>) {
        *CURRENT.lock().unwrap_or_else(PoisonError::into_inner) = match why {
            Some(w) => Slot::Refused(w.to_owned()),
            None => Slot::Empty,
        };
    }
}
