//! The processes the demonstration starts on this machine — a `nats-server` and the worker
//! processes — each behind a guard that stops it when dropped, whatever path `main` takes;
//! and, should this program be killed, a parent-death signal that takes them with it.

use std::error::Error;
use std::io;
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// A `nats-server` of our own on a free loopback port, with JetStream and a temporary store.
pub(crate) struct NatsServer {
    child: Child,
    store: PathBuf,
    port: u16,
}

impl NatsServer {
    /// Starts `$NATS_SERVER`, or `nats-server` from `PATH`, and waits until it listens.
    /// `Ok(None)`: there is no such program.
    pub(crate) fn start() -> Result<Option<NatsServer>, Box<dyn Error>> {
        let program = std::env::var_os("NATS_SERVER").unwrap_or_else(|| "nats-server".into());
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let store =
            std::env::temp_dir().join(format!("pool-cluster-{}-{port}", std::process::id()));
        let mut command = Command::new(&program);
        command
            .args(["-js", "-a", "127.0.0.1", "-p", &port.to_string(), "-sd"])
            .arg(&store)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        // SIGTERM: the server shuts down cleanly if we die.
        die_with_parent(&mut command, libc::SIGTERM);
        let child = match command.spawn() {
            Ok(child) => child,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(format!("cannot start {}: {e}", program.display()).into()),
        };
        let mut server = NatsServer { child, store, port };
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Some(status) = server.child.try_wait()? {
                return Err(format!(
                    "{} stopped at once ({status}); it must be 2.10 or later, with JetStream",
                    program.display()
                )
                .into());
            }
            if Instant::now() > deadline {
                return Err(format!("{} did not listen within 10 s", program.display()).into());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(Some(server))
    }

    pub(crate) fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.store);
    }
}

/// Worker processes: this program again, with the arguments `worker <url>`.
pub(crate) struct Workers {
    children: Vec<Option<Child>>,
    pids: Vec<u32>,
}

impl Workers {
    pub(crate) fn start(count: usize, url: &str) -> Result<Workers, Box<dyn Error>> {
        let program = std::env::current_exe()?;
        let mut workers = Workers {
            children: Vec::new(),
            pids: Vec::new(),
        };
        for _ in 0..count {
            let mut command = Command::new(&program);
            command
                .args(["worker", url])
                .stdin(Stdio::null())
                .stdout(Stdio::null()); // its errors, on stderr, still show
            die_with_parent(&mut command, libc::SIGKILL);
            let child = command
                .spawn()
                .map_err(|e| format!("cannot start a worker process: {e}"))?;
            workers.pids.push(child.id());
            workers.children.push(Some(child));
        }
        Ok(workers)
    }

    /// The workers' process ids, in order (a killed one's too).
    pub(crate) fn pids(&self) -> &[u32] {
        &self.pids
    }

    /// SIGKILLs worker `i` and reaps it.
    pub(crate) fn kill(&mut self, i: usize) -> io::Result<()> {
        if let Some(mut child) = self.children[i].take() {
            child.kill()?;
            child.wait()?;
        }
        Ok(())
    }

    /// Asks every worker still running to stop (SIGTERM: it finishes the tasks in hand and
    /// shuts its local pool down), waits up to `grace`, then SIGKILLs what is left.
    /// The exit status of each, in order (`None` for one killed before).
    pub(crate) fn stop(&mut self, grace: Duration) -> Vec<Option<ExitStatus>> {
        for child in self.children.iter().flatten() {
            // SAFETY: kill(2) has no memory-safety preconditions; the pid is our child's,
            // not reaped yet, so it cannot name another process.
            unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
        }
        let deadline = Instant::now() + grace;
        let mut statuses = Vec::new();
        for slot in &mut self.children {
            let Some(mut child) = slot.take() else {
                statuses.push(None);
                continue;
            };
            let status = loop {
                match child.try_wait() {
                    Ok(Some(status)) => break Some(status),
                    Ok(None) if Instant::now() < deadline => {
                        std::thread::sleep(Duration::from_millis(20));
                    }
                    _ => {
                        let _ = child.kill();
                        break child.wait().ok();
                    }
                }
            };
            statuses.push(status);
        }
        statuses
    }
}

impl Drop for Workers {
    fn drop(&mut self) {
        self.stop(Duration::from_secs(10));
    }
}

/// Makes the kernel send `signal` to the child when this process dies, even by SIGKILL.
/// (Strictly, when the thread that spawns it ends: here, the main thread.)
fn die_with_parent(command: &mut Command, signal: libc::c_int) {
    let parent = std::process::id() as libc::pid_t;
    // SAFETY: the closure runs in the child between fork and exec, where only
    // async-signal-safe calls are allowed: prctl and getppid are system calls, and neither
    // error path allocates.
    unsafe {
        command.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, signal) != 0 {
                return Err(io::Error::last_os_error());
            }
            // The parent may have died before the prctl.
            if libc::getppid() != parent {
                return Err(io::Error::from_raw_os_error(libc::ESRCH));
            }
            Ok(())
        });
    }
}

/// `pid` and every process below it (read from `/proc`).
pub(crate) fn family(pid: u32) -> Vec<u32> {
    let parents: Vec<(u32, u32)> = std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let child: u32 = entry.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(entry.path().join("stat")).ok()?;
            // "pid (comm) state ppid ...": comm may hold spaces and parentheses.
            let ppid = stat.rsplit_once(") ")?.1.split(' ').nth(1)?.parse().ok()?;
            Some((child, ppid))
        })
        .collect();
    let mut family = vec![pid];
    let mut i = 0;
    while i < family.len() {
        let parent = family[i];
        family.extend(parents.iter().filter(|p| p.1 == parent).map(|p| p.0));
        i += 1;
    }
    family
}

/// Whether a process is still there (a zombie, dead and waiting to be reaped, is not).
pub(crate) fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            let state = stat.rsplit_once(") ")?.1.chars().next()?;
            Some(state != 'Z' && state != 'X')
        })
        .unwrap_or(false)
}

/// Waits up to `within` for all of `pids` to be gone; those still alive then.
pub(crate) fn wait_gone(pids: &[u32], within: Duration) -> Vec<u32> {
    let deadline = Instant::now() + within;
    loop {
        let left: Vec<u32> = pids.iter().copied().filter(|&p| alive(p)).collect();
        if left.is_empty() || Instant::now() > deadline {
            return left;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
