//! The worker's process as the supervisor holds it, shared with killers: killing and
//! reaping under one lock, so a kill never reaches a recycled pid.

use std::process::{Child, ExitStatus};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::forkserver;
use crate::sys::pidfd::ProcessWatch;
use crate::sys::proc;

/// How long a kill waits to see the worker and the rest of its process group dead. SIGKILL
/// cannot be caught, so this is only reached by a process stuck in the kernel (an
/// uninterruptible wait on a dead network file system, say); the kill is then logged and
/// the caller goes on.
const KILL_WAIT: Duration = Duration::from_secs(5);

/// A worker process as the supervisor holds it.
pub(super) enum Proc {
    /// Started by `posix_spawn`: our child.
    Spawned(Child),
    /// Forked by the fork server: its child, killed and reaped through it.
    Forked(Arc<forkserver::Forked>),
}

/// The child process, shared with killers. Reaping and killing both happen under the lock,
/// so a kill never reaches a recycled pid (a forked worker is killed and reaped by the fork
/// server, which keeps it unreaped until [`forkserver::Forked::release`]).
pub(super) struct ChildCell {
    pub(super) pid: u32,
    pub(super) child: Mutex<(Proc, Option<ExitStatus>)>,
    /// The worker's pidfd, opened while it could not have been reaped: tells a killer when
    /// the worker is dead without reaping it (the supervisor reaps).
    pub(super) watch: Option<ProcessWatch>,
}

impl ChildCell {
    pub(super) fn new(pid: u32, proc: Proc) -> Self {
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
    pub(super) fn kill(&self) {
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
    pub(super) fn reap(&self) -> Option<ExitStatus> {
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
    pub(super) fn try_reap(&self) -> Option<ExitStatus> {
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
    pub(super) fn server_died(&self) -> bool {
        let st = self.child.lock().unwrap_or_else(PoisonError::into_inner);
        matches!(&st.0, Proc::Forked(f) if f.server_died())
    }
}
