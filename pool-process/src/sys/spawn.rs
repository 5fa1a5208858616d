//! Starting worker processes.
//!
//! Mechanism: `std::process::Command` with no `pre_exec` hook, which keeps std's
//! `posix_spawn` (vfork + exec) fast path; everything a worker must set up for itself
//! (parent-death signal, session, SIGPIPE) happens inside the worker instead. The control
//! pipes are std's `Stdio::piped()` pipes: created close-on-exec in the parent and `dup2`-ed
//! onto the child's fds 0/1/2 by `posix_spawn`'s file actions, so a worker spawned at the same
//! moment on another thread never inherits a sibling's pipe end (which would break
//! end-of-file detection).
//!
//! `PR_SET_PDEATHSIG` fires when the parent *thread* that created the child exits, not the
//! parent process. Engine threads come and go, so every spawn is done by one long-lived
//! spawner thread that never exits while the process lives. Only the `posix_spawn` call itself
//! (a fraction of a millisecond) is serialized there; loading the worker and the handshake run
//! in parallel for workers started from several threads at once.

use std::io;
use std::process::{Child, Command};
use std::sync::OnceLock;

use crossbeam_channel::{Sender, bounded, unbounded};

type Job = (Command, Sender<io::Result<Child>>);

fn spawner() -> Option<&'static Sender<Job>> {
    static SPAWNER: OnceLock<Option<Sender<Job>>> = OnceLock::new();
    SPAWNER
        .get_or_init(|| {
            let (tx, rx) = unbounded::<Job>();
            std::thread::Builder::new()
                .name("pool-process-spawner".into())
                .spawn(move || {
                    for (mut cmd, reply) in rx {
                        let _ = reply.send(cmd.spawn());
                    }
                })
                .ok()
                .map(|_| tx)
        })
        .as_ref()
}

/// Spawns `cmd` from the long-lived spawner thread (or in place if that thread could not be
/// created, in which case the parent-death signal is tied to the calling thread).
pub(crate) fn spawn(mut cmd: Command) -> io::Result<Child> {
    let Some(tx) = spawner() else {
        return cmd.spawn();
    };
    let (reply_tx, reply_rx) = bounded(1);
    if let Err(err) = tx.send((cmd, reply_tx)) {
        let (mut cmd, _) = err.into_inner();
        return cmd.spawn();
    }
    reply_rx
        .recv()
        .unwrap_or_else(|_| Err(io::Error::other("the spawner thread is gone")))
}
