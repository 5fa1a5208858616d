//! Putting a process in worker mode before `main`, or from `worker_main`.
//!
//! A constructor (`ctor`, placed in `.init_array`) runs in every binary that links
//! pool-process — the user's program and test binaries alike — before `main`. It reads one
//! environment variable; when absent (every normal start) it returns at once. When present it
//! removes the variable (so processes a task starts are not workers), serves as a worker and
//! exits the process: it never returns to the user's `main`. Nothing escapes it: a panic
//! becomes exit code 101.
//!
//! A second variable (`forkserver::FORKSERVER_ENV`) makes the process the pool's fork
//! server instead: it stays single-threaded before `main` and forks workers on request; each
//! forked child continues in [`run`] exactly like a freshly exec'd worker.

use std::ffi::OsString;

use super::serve::{End, serve};
use crate::forkserver::{self, FORKSERVER_ENV};
use crate::protocol::WORKER_ENV;

/// Exit code of a worker that failed to start or refused the handshake.
pub(crate) const EXIT_START_FAILED: i32 = 78;

#[ctor::ctor(unsafe)]
fn pool_process_worker_hook() {
    if let Some(value) = std::env::var_os(WORKER_ENV) {
        run(value);
    }
    if let Some(parent) = std::env::var_os(FORKSERVER_ENV) {
        forkserver::serve_forever(&parent, run);
    }
}

fn run(value: OsString) -> ! {
    // SAFETY: called before `main` (from the constructor), at the top of `worker_main`
    // before the worker starts any thread, or in a child of the single-threaded fork server,
    // so no other thread reads the environment.
    unsafe { std::env::remove_var(WORKER_ENV) };
    let code = match std::panic::catch_unwind(|| serve(&value.to_string_lossy())) {
        Ok(End::Clean) => 0,
        Ok(End::ChannelClosed) => {
            // Take what the tasks started with us. The parent-death signal does the same,
            // but the channel's end of file can arrive first (the dead parent's descriptors
            // close before the kernel signals its children, and a forked worker's signal
            // waits for the fork server's death), and a worker exiting cleanly here would
            // leave its process group behind. Only when it leads its own group (`setsid`).
            if rustix::process::getpgrp() == rustix::process::getpid() {
                let _ = rustix::process::kill_current_process_group(rustix::process::Signal::KILL);
            }
            0
        }
        Ok(End::Failed(message)) => {
            eprintln!("pool-process worker {}: {message}", std::process::id());
            EXIT_START_FAILED
        }
        Err(_) => 101,
    };
    std::process::exit(code)
}

/// Serves as a pool worker, for a separately built worker binary; never returns.
///
/// Any binary that links `pool-process` already becomes a worker before `main` when a pool
/// starts it, so this is only needed where that hook cannot run (a platform without
/// constructors, or a binary that strips them). Call it first thing in `main`. Started by
/// hand (not by a pool), it prints why and exits with status 2.
///
/// # Examples
///
/// ```no_run
/// # mod pool { pub use pool_core::*; pub use pool_process::*; pub mod codec { pub use pool_codec::*; } pub mod prelude { pub use pool_core::{Executor, MapOptions, Parallel, Shutdown, Submit, SubmitOptions, TaskError}; pub use pool_process::ProcessPool; } } // what `pool` re-exports
/// // First line of the worker binary's `main`:
/// pool::worker_main();
/// ```
pub fn worker_main() -> ! {
    match std::env::var_os(WORKER_ENV) {
        Some(value) => run(value),
        None => {
            eprintln!(
                "this program is a pool-process worker; it is started by a ProcessPool \
                 ({WORKER_ENV} is not set)"
            );
            std::process::exit(2)
        }
    }
}
