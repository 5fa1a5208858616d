//! The NATS server of the `nats.*` rows, and what our subjects and the floor share about it.
//!
//! With `NATS_URL` set, that server is used as it is (and the streams the rows create are
//! deleted again when each subject is dropped). Otherwise `nats-server` (`$NATS_SERVER`, or
//! `nats-server` on `PATH`) is started with JetStream on a free loopback port and a temporary
//! store directory; it is killed, reaped and its directory removed when the last subject
//! holding it drops — so one server serves all subjects of a scenario, and a scenario that
//! ends (or panics) takes it down. Killed without unwinding, this process takes the server
//! with it (its parent-death signal); only the store directory is then left in the
//! temporary directory.

use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::{Duration, Instant};

/// The named task of `nats.roundtrip` ([`crate::work::noop`]); the `compare` binary
/// registers it with `pool_process::named_task!`.
pub const NOOP_TASK: &str = "bench-noop";
/// The named task of `nats.tasks_*` ([`crate::work::double`]), registered the same way.
pub const DOUBLE_TASK: &str = "bench-double";

/// How many tasks our NATS worker asks for ahead of its free slots (`NatsWorker::prefetch`,
/// pool-nats' default), set explicitly so the floor's pull depth follows it.
pub const AHEAD: usize = 1;

/// How long the server has to start listening.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// A NATS server with JetStream: one this process started, or the one `NATS_URL` names.
#[derive(Debug)]
pub struct NatsServer {
    url: String,
    /// The server we started and its store; `None` for `NATS_URL`'s.
    own: Option<(Child, PathBuf)>,
}

impl NatsServer {
    /// The client URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Whether the server is someone else's (`NATS_URL`): what the rows create there must
    /// be removed again.
    pub fn is_external(&self) -> bool {
        self.own.is_none()
    }

    fn start() -> Result<Self, String> {
        if let Some(url) = std::env::var_os("NATS_URL") {
            let url = url
                .into_string()
                .map_err(|u| format!("NATS_URL is not UTF-8: {u:?}"))?;
            return Ok(NatsServer { url, own: None });
        }
        let bin = std::env::var_os("NATS_SERVER").unwrap_or_else(|| "nats-server".into());
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| format!("no free loopback port for nats-server: {e}"))?
            .port();
        let store =
            std::env::temp_dir().join(format!("pool-bench-nats-{}-{port}", std::process::id()));
        let mut command = Command::new(&bin);
        command
            .args(["-js", "-a", "127.0.0.1", "-p", &port.to_string(), "-sd"])
            .arg(&store)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        // Should this process be killed without unwinding (SIGKILL, a CI timeout), the kernel
        // kills the server too: the parent-death signal, which fires when the thread that
        // spawned it exits — here the thread building the subjects, `compare`'s main thread.
        let parent = rustix::process::getpid();
        // SAFETY: the hook runs in the forked child before exec and only makes two system
        // calls through rustix (no allocation, no lock), which is async-signal-safe.
        unsafe {
            command.pre_exec(move || {
                rustix::process::set_parent_process_death_signal(Some(
                    rustix::process::Signal::KILL,
                ))?;
                // The parent may have died before the signal was armed.
                if rustix::process::getppid() != Some(parent) {
                    return Err(std::io::Error::other("the parent process is gone"));
                }
                Ok(())
            });
        }
        let child = command.spawn().map_err(|e| {
            format!("no NATS server: NATS_URL unset and {bin:?} does not start ({e})")
        })?;
        // From here on the handle owns the child: an early return kills and reaps it.
        let mut server = NatsServer {
            url: format!("nats://127.0.0.1:{port}"),
            own: Some((child, store)),
        };
        let deadline = Instant::now() + START_TIMEOUT;
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Some((child, _)) = server.own.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                return Err(format!("nats-server ({bin:?}) exited at start: {status}"));
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "nats-server ({bin:?}) did not listen on port {port} within {START_TIMEOUT:?}"
                ));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        Ok(server)
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        if let Some((mut child, store)) = self.own.take() {
            let _ = child.kill();
            let _ = child.wait();
            let _ = std::fs::remove_dir_all(store);
        }
    }
}

/// The server every live subject shares, started (or looked up in `NATS_URL`) if none is.
///
/// # Errors
///
/// No server: `NATS_URL` unset and `nats-server` cannot be started; the message says so in
/// one line.
pub fn server() -> Result<Arc<NatsServer>, String> {
    static SHARED: Mutex<Weak<NatsServer>> = Mutex::new(Weak::new());
    let mut shared = SHARED.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(s) = shared.upgrade() {
        return Ok(s);
    }
    let s = Arc::new(NatsServer::start()?);
    *shared = Arc::downgrade(&s);
    Ok(s)
}

/// A prefix of subjects and streams unique to this process and call: `<role>-<pid>-<n>`.
pub fn unique_prefix(role: &str) -> String {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    format!(
        "{role}-{}-{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    )
}

/// The task stream of `prefix`, as pool-nats names it (`<PREFIX>_TASKS`).
pub fn tasks_stream(prefix: &str) -> String {
    format!("{}_TASKS", prefix.to_uppercase())
}

/// The results stream of `prefix` (`<PREFIX>_RESULTS`).
pub fn results_stream(prefix: &str) -> String {
    format!("{}_RESULTS", prefix.to_uppercase())
}

/// Deletes the two streams of `prefix` on `server` if it is an external one (a server we
/// started dies with its store). Best effort, bounded by a few seconds.
pub fn remove_streams(server: &NatsServer, prefix: &str) {
    if !server.is_external() {
        return;
    }
    let Ok(rt) = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    else {
        return;
    };
    rt.block_on(async {
        let work = async {
            let client = async_nats::connect(server.url()).await.ok()?;
            let js = async_nats::jetstream::new(client);
            for stream in [tasks_stream(prefix), results_stream(prefix)] {
                let _ = js.delete_stream(stream).await;
            }
            Some(())
        };
        let _ = tokio::time::timeout(Duration::from_secs(5), work).await;
    });
}
