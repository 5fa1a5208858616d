//! The fork server itself: the loop that runs before `main` in its own process, forks
//! workers on request and reports their exits.

use std::ffi::{OsStr, OsString};
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;

use rustix::event::{PollFd, PollFlags};
use rustix::process::{PidfdFlags, WaitId, WaitIdOptions, WaitOptions};

use super::fdpass::*;
use super::messages::*;
use super::*;
use crate::sys::proc;

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
pub(super) fn thread_count() -> Option<u32> {
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
    crate::sys::signals::ignore_sigpipe();
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
