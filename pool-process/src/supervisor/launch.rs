//! Starting the worker's process: `posix_spawn` from the spawner thread, or a fork by the
//! fork server, with the descriptors each transport needs.

use std::ffi::OsString;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{ChildStdin, ChildStdout, Command, Stdio};
use std::sync::Arc;
use std::time::Instant;

use crate::forkserver;
use crate::protocol::{WORKER_ENV, WorkerSpec};
use crate::sys::exe::SelfExe;
use crate::sys::spawn;

use super::child::*;
use super::*;

/// A started process, before the transport is set up.
pub(super) struct Launched {
    pub(super) cell: Arc<ChildCell>,
    /// Pipe transport: the parent's ends of the worker's stdin and stdout.
    pub(super) pipes: Option<(ChildStdin, ChildStdout)>,
    pub(super) stderr: Option<OwnedFd>,
}

/// What the worker's fds 0/1 are.
pub(super) enum Stdio01 {
    /// Pipes for the pipe transport.
    Pipes,
    /// The shared-memory file on 0, the parent's stdout on 1.
    Shm(OwnedFd),
    /// `/dev/null` on 0, the parent's stdout on 1 (local socket).
    Null,
}

/// Starts the worker process with `posix_spawn` from the spawner thread.
pub(super) fn launch_spawn(
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
pub(super) fn log_unavailable(why: &forkserver::Unavailable) {
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
pub(super) fn worker_env(cfg: &StartConfig) -> Vec<(OsString, OsString)> {
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
pub(super) fn launch_forked(
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
