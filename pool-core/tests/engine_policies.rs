//! The engine's policies, driven through a fake backend whose workers can be killed, die on
//! request, fail to start, and report memory: what a process backend relies on.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use pool_core::*;

mod common;
use common::{bounded, cfg, eventually, sigkilled, sleep_unless_killed, submit};

#[derive(Debug)]
enum Job {
    Value(u64),
    /// Sleep this long unless killed.
    Sleep(Duration),
    /// The worker dies while running this.
    Die,
}

#[derive(Default)]
struct Fake {
    start_script: Mutex<VecDeque<StartError>>,
    memory: AtomicU64,
    starts: AtomicU64,
    finalizer_fails: AtomicBool,
}

struct FakeWorker {
    id: WorkerId,
    killed: Arc<AtomicBool>,
    dead: bool,
    backend: Arc<Fake>,
}

impl Worker for FakeWorker {
    type Input = Job;
    type Output = u64;

    fn run(&mut self, input: Job, ctx: &RunContext) -> Result<u64, TaskError> {
        let died = |w: &Self| sigkilled(w.id, 4242, ctx);
        match input {
            Job::Value(x) => Ok(x),
            Job::Sleep(d) => {
                if !sleep_unless_killed(d, &self.killed) {
                    self.dead = true;
                    return Err(died(self));
                }
                Ok(0)
            }
            Job::Die => {
                self.dead = true;
                Err(died(self))
            }
        }
    }

    fn killer(&self) -> Option<Killer> {
        let k = self.killed.clone();
        Some(Killer::new(move || k.store(true, Ordering::SeqCst)))
    }

    fn alive(&mut self) -> bool {
        !self.dead && !self.killed.load(Ordering::SeqCst)
    }

    fn pid(&self) -> Option<u32> {
        Some(4242)
    }

    fn memory_bytes(&mut self) -> Option<u64> {
        Some(self.backend.memory.load(Ordering::SeqCst))
    }

    fn stop(self, _deadline: Instant) -> Result<(), FinalizeError> {
        if self.backend.finalizer_fails.load(Ordering::SeqCst) {
            Err(FinalizeError("finalizer says no".into()))
        } else {
            Ok(())
        }
    }
}

#[derive(Clone, Default)]
struct FakeBackend(Arc<Fake>);

impl Backend for FakeBackend {
    type Input = Job;
    type Output = u64;
    type Worker = FakeWorker;

    fn start(&self, id: WorkerId) -> Result<FakeWorker, StartError> {
        self.0.starts.fetch_add(1, Ordering::SeqCst);
        if let Some(e) = self.0.start_script.lock().unwrap().pop_front() {
            return Err(e);
        }
        Ok(FakeWorker {
            id,
            killed: Arc::new(AtomicBool::new(false)),
            dead: false,
            backend: self.0.clone(),
        })
    }
}

fn engine(cfg: EngineConfig) -> (Engine<FakeBackend>, Arc<Fake>) {
    let b = FakeBackend::default();
    let fake = b.0.clone();
    (Engine::new(b, cfg).unwrap(), fake)
}

/// Submit where the pool may break meanwhile: a refused submit becomes a resolved future
/// carrying the refusal, as a pending task of the broken pool would.
fn submit_or_refused(e: &Engine<FakeBackend>, j: Job) -> Future<u64> {
    match e.submit(j, SubmitOptions::default(), Ok) {
        Ok(f) => f,
        Err(err) => {
            let (p, f) = promise();
            p.complete(Err(err.to_task_error()));
            f
        }
    }
}

#[test]
fn results_come_back() {
    let (e, _) = engine(cfg(2));
    let futs: Vec<_> = (0..100).map(|i| submit(&e, Job::Value(i))).collect();
    let got = bounded(10, move || collect(futs).unwrap());
    assert_eq!(got, (0..100).collect::<Vec<_>>());
    let s = e.stats();
    assert_eq!(s.submitted, 100);
    assert_eq!(s.completed, 100);
}

#[test]
fn timeout_kills_the_worker_and_the_pool_carries_on() {
    let (e, _) = engine(EngineConfig {
        task_timeout: Some(Duration::from_millis(50)),
        ..cfg(1)
    });
    let f = submit(&e, Job::Sleep(Duration::from_secs(30)));
    let r = bounded(10, move || f.result());
    match r {
        Err(TaskError::TimedOut { after, pid, .. }) => {
            assert_eq!(after, Duration::from_millis(50));
            assert_eq!(pid, Some(4242));
        }
        other => panic!("expected TimedOut, got {other:?}"),
    }
    let f = submit(&e, Job::Value(7));
    assert_eq!(bounded(10, move || f.result()), Ok(7));
    let s = e.stats();
    assert_eq!(s.timed_out, 1);
    assert_eq!(s.replaced, 1);
    assert_eq!(s.died, 0);
}

#[test]
fn per_submit_timeout_overrides_and_labels_the_error() {
    let (e, _) = engine(cfg(1));
    let f = e
        .submit(
            Job::Sleep(Duration::from_secs(30)),
            SubmitOptions::new()
                .timeout(Duration::from_millis(30))
                .label("slow-one"),
            Ok,
        )
        .unwrap();
    let err = bounded(10, move || f.result()).unwrap_err();
    assert!(err.is_timed_out());
    assert!(err.to_string().contains("slow-one"), "{err}");
}

#[test]
fn kill_cancels_a_running_task() {
    let (e, _) = engine(cfg(1));
    let f = submit(&e, Job::Sleep(Duration::from_secs(30)));
    eventually(10, "task running", || f.is_running());
    assert!(f.kill());
    assert_eq!(bounded(10, move || f.result()), Err(TaskError::Cancelled));
    let f = submit(&e, Job::Value(1));
    assert_eq!(bounded(10, move || f.result()), Ok(1));
    eventually(10, "cancel counted", || e.stats().cancelled == 1);
}

#[test]
fn worker_death_fails_only_its_task_and_is_replaced() {
    let (e, _) = engine(cfg(1));
    let f = submit(&e, Job::Die);
    let err = bounded(10, move || f.result()).unwrap_err();
    assert!(err.is_worker_died());
    assert!(err.to_string().contains("SIGKILL (signal 9)"), "{err}");
    let f = submit(&e, Job::Value(5));
    assert_eq!(bounded(10, move || f.result()), Ok(5));
    let s = e.stats();
    assert_eq!((s.died, s.replaced), (1, 1));
    assert!(e.is_broken().is_none());
}

#[test]
fn break_pool_policy_fails_pending_and_later_tasks() {
    let (e, _) = engine(EngineConfig {
        on_worker_death: OnWorkerDeath::BreakPool,
        ..cfg(1)
    });
    let dying = submit(&e, Job::Die);
    let pending: Vec<_> = (0..5)
        .map(|i| submit_or_refused(&e, Job::Value(i)))
        .collect();
    assert!(
        bounded(10, move || dying.result())
            .unwrap_err()
            .is_worker_died()
    );
    for f in pending {
        let r = bounded(10, move || f.result());
        assert!(matches!(r, Err(TaskError::Broken(_)) | Ok(_)), "{r:?}");
    }
    eventually(10, "broken", || e.is_broken().is_some());
    let err = e
        .submit(Job::Value(1), SubmitOptions::default(), Ok)
        .unwrap_err();
    assert!(err.is_broken());
    assert!(err.to_string().contains("BreakPool"), "{err}");
    assert!(matches!(err.into_task(), Some(Job::Value(1))));
}

#[test]
fn failing_initializer_breaks_the_pool_with_its_cause() {
    let b = FakeBackend::default();
    b.0.start_script
        .lock()
        .unwrap()
        .push_back(StartError::Initializer("no config file".into()));
    let e = Engine::new(b, cfg(1)).unwrap();
    let futs: Vec<_> = (0..3)
        .map(|i| submit_or_refused(&e, Job::Value(i)))
        .collect();
    for f in futs {
        match bounded(10, move || f.result()) {
            Err(TaskError::Broken(r)) => assert!(r.as_str().contains("no config file"), "{r}"),
            other => panic!("expected Broken, got {other:?}"),
        }
    }
    let err = e
        .submit(Job::Value(9), SubmitOptions::default(), Ok)
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("initializer failed: no config file"),
        "{err}"
    );
}

#[test]
fn repeated_start_failures_break_the_pool() {
    let b = FakeBackend::default();
    for _ in 0..10 {
        b.0.start_script
            .lock()
            .unwrap()
            .push_back(StartError::Spawn("fork failed".into()));
    }
    let fake = b.0.clone();
    let e = Engine::new(
        b,
        EngineConfig {
            max_start_failures: 3,
            ..cfg(1)
        },
    )
    .unwrap();
    let f = submit(&e, Job::Value(1));
    match bounded(10, move || f.result()) {
        Err(TaskError::Broken(r)) => assert!(r.as_str().contains("3 worker starts failed"), "{r}"),
        other => panic!("expected Broken, got {other:?}"),
    }
    assert_eq!(fake.starts.load(Ordering::SeqCst), 3);
    assert_eq!(e.stats().start_failures, 3);
}

#[test]
fn memory_limit_recycles_after_the_task() {
    let (e, fake) = engine(EngineConfig {
        max_memory_per_worker: Some(1000),
        ..cfg(1)
    });
    fake.memory.store(5000, Ordering::SeqCst);
    let f = submit(&e, Job::Value(3));
    assert_eq!(bounded(10, move || f.result()), Ok(3));
    eventually(10, "recycled", || e.stats().recycled >= 1);
    fake.memory.store(10, Ordering::SeqCst);
    let f = submit(&e, Job::Value(4));
    assert_eq!(bounded(10, move || f.result()), Ok(4));
}

#[test]
fn shutdown_kill_kills_running_tasks() {
    let (e, _) = engine(cfg(2));
    let running: Vec<_> = (0..2)
        .map(|_| submit(&e, Job::Sleep(Duration::from_secs(30))))
        .collect();
    let queued = submit(&e, Job::Value(1));
    for f in &running {
        eventually(10, "running", || f.is_running());
    }
    let e2 = e.clone();
    let report = bounded(10, move || {
        e2.shutdown(Shutdown::Kill, Some(Duration::from_secs(5)))
    });
    assert_eq!(report.killed, 2);
    assert_eq!(report.cancelled, 1);
    assert_eq!(report.unfinished_workers, 0);
    for f in running {
        assert_eq!(bounded(10, move || f.result()), Err(TaskError::Cancelled));
    }
    assert_eq!(
        bounded(10, move || queued.result()),
        Err(TaskError::Cancelled)
    );
    assert!(
        e.submit(Job::Value(1), SubmitOptions::default(), Ok)
            .unwrap_err()
            .is_shutdown()
    );
}

#[test]
fn shutdown_wait_runs_the_queue_and_reports_finalizer_errors() {
    let (e, fake) = engine(cfg(1));
    fake.finalizer_fails.store(true, Ordering::SeqCst);
    let futs: Vec<_> = (0..20).map(|i| submit(&e, Job::Value(i))).collect();
    let e2 = e.clone();
    let report = bounded(10, move || {
        e2.shutdown(Shutdown::Wait, Some(Duration::from_secs(5)))
    });
    assert_eq!(report.cancelled, 0);
    assert_eq!(report.finalizer_errors.len(), 1, "{report:?}");
    assert!(report.finalizer_errors[0].contains("finalizer says no"));
    assert_eq!(collect(futs).unwrap().len(), 20);
    // Idempotent.
    assert_eq!(e.shutdown(Shutdown::Wait, None), ShutdownReport::default());
}

#[test]
fn dropping_the_engine_does_not_wait_for_running_tasks() {
    let (e, _) = engine(cfg(1));
    let f = submit(&e, Job::Sleep(Duration::from_millis(300)));
    let queued = submit(&e, Job::Value(1));
    eventually(10, "running", || f.is_running());
    let t = Instant::now();
    bounded(10, move || drop(e));
    assert!(t.elapsed() < Duration::from_secs(5));
    assert_eq!(
        bounded(10, move || queued.result()),
        Err(TaskError::Cancelled)
    );
    assert_eq!(bounded(10, move || f.result()), Ok(0));
}

#[test]
fn workers_start_on_demand_up_to_max_and_resize() {
    let (e, _) = engine(cfg(3));
    assert_eq!(e.stats().workers, 0);
    let futs: Vec<_> = (0..3)
        .map(|_| submit(&e, Job::Sleep(Duration::from_millis(200))))
        .collect();
    eventually(10, "three workers", || e.stats().workers == 3);
    assert!(e.stats().workers <= 3);
    collect(futs).unwrap();
    e.resize(1);
    eventually(10, "shrunk to one", || e.stats().workers <= 1);
    e.spawn_workers(5);
    assert!(e.stats().workers <= 1);
}

#[test]
fn invalid_configuration_is_refused() {
    let err = Engine::new(FakeBackend::default(), cfg(0)).unwrap_err();
    assert!(err.to_string().contains("max_workers"));
    let err = Engine::new(
        FakeBackend::default(),
        EngineConfig {
            min_workers: 5,
            ..cfg(2)
        },
    )
    .unwrap_err();
    assert!(err.to_string().contains("min_workers"));
}

/// One `tracing` event as the test subscriber saw it: its target and its fields by name.
#[derive(Clone, Debug)]
struct Seen {
    target: String,
    fields: std::collections::HashMap<String, String>,
}

impl Seen {
    fn field(&self, name: &str) -> Option<&str> {
        self.fields.get(name).map(String::as_str)
    }
}

/// A minimal `tracing::Subscriber` that keeps every event in memory.
struct Collector(Arc<Mutex<Vec<Seen>>>);

struct Fields<'a>(&'a mut std::collections::HashMap<String, String>);

impl tracing::field::Visit for Fields<'_> {
    fn record_debug(&mut self, f: &tracing::field::Field, v: &dyn std::fmt::Debug) {
        self.0.insert(f.name().to_owned(), format!("{v:?}"));
    }
    fn record_str(&mut self, f: &tracing::field::Field, v: &str) {
        self.0.insert(f.name().to_owned(), v.to_owned());
    }
}

impl tracing::Subscriber for Collector {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, e: &tracing::Event<'_>) {
        let mut fields = std::collections::HashMap::new();
        e.record(&mut Fields(&mut fields));
        self.0.lock().unwrap().push(Seen {
            target: e.metadata().target().to_owned(),
            fields,
        });
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

/// The events of pool `name` seen so far (the subscriber is global: engine threads log).
fn events_of(name: &str) -> Vec<Seen> {
    static SEEN: std::sync::OnceLock<Arc<Mutex<Vec<Seen>>>> = std::sync::OnceLock::new();
    let seen = SEEN.get_or_init(|| {
        let seen = Arc::new(Mutex::new(Vec::new()));
        tracing::subscriber::set_global_default(Collector(seen.clone()))
            .expect("no other global subscriber in this test binary");
        seen
    });
    seen.lock()
        .unwrap()
        .iter()
        .filter(|s| s.field("pool") == Some(name))
        .cloned()
        .collect()
}

fn count(name: &str, message: &str) -> usize {
    events_of(name)
        .iter()
        .filter(|s| s.field("message") == Some(message))
        .count()
}

#[test]
fn tracing_events_for_spawn_death_recycle_timeout_resize_shutdown() {
    const NAME: &str = "traced";
    events_of(NAME); // install the subscriber before the engine starts
    let (e, fake) = engine(EngineConfig {
        name: NAME.into(),
        max_tasks_per_worker: Some(3),
        max_memory_per_worker: Some(1000),
        ..cfg(1)
    });
    // Spawn.
    let f = submit(&e, Job::Value(1));
    assert_eq!(bounded(10, move || f.result()), Ok(1));
    eventually(10, "spawn event", || count(NAME, "worker spawned") == 1);
    let spawned = events_of(NAME)
        .into_iter()
        .find(|s| s.field("message") == Some("worker spawned"))
        .unwrap();
    assert_eq!(spawned.target, "pool");
    assert_eq!(spawned.field("pid"), Some("4242"));
    assert!(spawned.field("worker").is_some(), "{spawned:?}");

    // Death, with the reason.
    let f = submit(&e, Job::Die);
    assert!(
        bounded(10, move || f.result())
            .unwrap_err()
            .is_worker_died()
    );
    eventually(10, "death event", || count(NAME, "worker died") == 1);
    let died = events_of(NAME)
        .into_iter()
        .find(|s| s.field("message") == Some("worker died"))
        .unwrap();
    assert!(died.field("why").unwrap().contains("SIGKILL"), "{died:?}");

    // Timeout: the task, the worker and the limit.
    let f = e
        .submit(
            Job::Sleep(Duration::from_secs(30)),
            SubmitOptions::new()
                .timeout(Duration::from_millis(40))
                .label("sleepy"),
            Ok,
        )
        .unwrap();
    assert!(bounded(10, move || f.result()).unwrap_err().is_timed_out());
    eventually(10, "timeout event", || count(NAME, "task timed out") == 1);
    let t = events_of(NAME)
        .into_iter()
        .find(|s| s.field("message") == Some("task timed out"))
        .unwrap();
    assert!(t.field("task").unwrap().contains("sleepy"), "{t:?}");
    assert_eq!(t.field("after"), Some("40ms"));
    assert!(t.field("worker").is_some());

    // Recycling by task count: three tasks on one fresh worker.
    eventually(10, "replacement up", || e.stats().workers == 1);
    let before = count(NAME, "worker recycled");
    for i in 0..3 {
        let f = submit(&e, Job::Value(i));
        assert_eq!(bounded(10, move || f.result()), Ok(i));
    }
    eventually(10, "recycle event (tasks)", || {
        events_of(NAME).iter().any(|s| {
            s.field("message") == Some("worker recycled")
                && s.field("reason") == Some("max_tasks_per_worker")
        })
    });
    // Recycling by memory.
    fake.memory.store(5000, Ordering::SeqCst);
    let f = submit(&e, Job::Value(9));
    assert_eq!(bounded(10, move || f.result()), Ok(9));
    eventually(10, "recycle event (memory)", || {
        events_of(NAME).iter().any(|s| {
            s.field("message") == Some("worker recycled")
                && s.field("reason") == Some("max_memory_per_worker")
                && s.field("memory_bytes") == Some("5000")
        })
    });
    fake.memory.store(0, Ordering::SeqCst);
    assert!(count(NAME, "worker recycled") >= before + 2);

    // Resize and shutdown.
    e.resize(2);
    assert_eq!(count(NAME, "pool resized"), 1);
    let report = bounded(10, move || {
        let r = e.shutdown(Shutdown::Wait, Some(Duration::from_secs(5)));
        (r, e.stats())
    });
    assert_eq!(report.0.unfinished_workers, 0);
    assert_eq!(count(NAME, "shutdown begun"), 1);
    assert_eq!(count(NAME, "shutdown finished"), 1);

    // The stats count the same events.
    let s = report.1;
    assert_eq!(s.spawned as usize, count(NAME, "worker spawned"));
    assert_eq!(s.died as usize, count(NAME, "worker died"));
    assert_eq!(s.recycled as usize, count(NAME, "worker recycled"));
    assert_eq!(s.timed_out as usize, count(NAME, "task timed out"));
}
