//! The fork server: one single-threaded, already-loaded copy of this program per parent
//! process, which forks ready workers on request (no exec, no dynamic loader, no `cpuid`).
//!
//! Mechanism. The first pool that wants a forked worker starts the server: an exec of the held
//! executable (`sys/exe.rs`) from the long-lived spawner thread (`sys/spawn.rs`), with
//! [`FORKSERVER_ENV`] set to the parent's pid and one end of a
//! `socketpair(AF_UNIX, SOCK_SEQPACKET)` as its stdin. The pre-`main` hook sees the variable
//! and runs [`serve_forever`], which never returns to `main`. All pools of the process share
//! that server; when it has died, the next start launches a new one.
//!
//! Messages and their sequence: `README.md` in this folder.
//!
//! The server watches its socket and a pidfd per child with `poll`. When a child exits it
//! learns the status with `waitid(WEXITED | WNOWAIT)` — the zombie is kept — and sends
//! `EXITED`. It reaps the child only on `RELEASE`, which the parent sends after its last kill.
//! `KILL` and `RELEASE` kill the child's process group and the child *in the server*, the
//! child's own parent, where the pid is provably still the child's (unreaped). So the
//! invariant of `sys/proc.rs` — a group id is never reused while the pool may still kill it —
//! holds for forked workers too. When the server is gone, its workers are gone with it (their
//! parent-death signal) and their pids are never signalled again.
//!
//! No orphans: the server arms `PR_SET_PDEATHSIG(SIGKILL)` against the spawner thread (which
//! never exits) and re-checks its parent; it exits when its socket reaches end of file; a
//! forked worker arms its own parent-death signal against the server (`worker/serve.rs`). Parent
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
//! fork server lives in this folder.

mod client;
mod fdpass;
mod messages;
mod server;

use rustix::process::Pid;

#[cfg(test)]
pub(crate) use client::testing;
pub(crate) use client::{Forked, Server, Unavailable, footprint, server};
#[cfg(feature = "fuzzing")]
pub(crate) use messages::{Answer, ForkRequest, Request};
pub(crate) use server::{serve_forever, server_parent_is};

/// The environment variable that puts a process in fork-server mode; its value is the pid
/// of the parent that started it.
pub(crate) const FORKSERVER_ENV: &str = "POOL_PROCESS_FORKSERVER";

/// The server's process name (`comm`), distinct from the workers' `pool-w<N>`.
pub(crate) const SERVER_NAME: &str = "pool-fs";

/// Largest request datagram (the environment dominates).
const MAX_MESSAGE: usize = 1 << 20;
/// Exit code of a server that refused to serve or lost its parent.
const EXIT_REFUSED: i32 = 78;

fn to_pid(pid: u32) -> Option<Pid> {
    Pid::from_raw(i32::try_from(pid).ok()?)
}

#[cfg(test)]
mod tests {
    use super::messages::*;
    use super::server::thread_count;
    use super::*;
    use crate::sys::proc;
    use std::ffi::{OsStr, OsString};
    use std::os::unix::process::ExitStatusExt;
    use std::process::ExitStatus;

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
