//! The engine's pipelining (`Pipeline::max_in_flight` above 1), driven through a fake backend
//! whose "process" is a thread fed through a channel, as a process is fed through a pipe:
//! several tasks in flight per worker, and every policy still right.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use pool_core::*;

mod common;
use common::{bounded, cfg, eventually, sigkilled, sleep_unless_killed, submit};

#[derive(Clone, Debug)]
enum Job {
    Value(u64),
    /// Sleep this long unless killed.
    Sleep(Duration),
    /// The worker dies while running this.
    Die,
    /// Too big to pipeline (`can_pipeline` says no).
    Big(u64),
}

/// What the fake workers did, shared with the test.
#[derive(Default)]
struct Log {
    /// (worker, value) of every `Value`/`Big` task a worker actually ran.
    ran: Mutex<Vec<(u64, u64)>>,
    /// The most tasks ever in flight on one worker.
    max_in_flight: AtomicUsize,
    /// Workers killed through their killer.
    kills: AtomicUsize,
}

struct PipeWorker {
    id: WorkerId,
    tx: mpsc::Sender<Job>,
    rx: mpsc::Receiver<u64>,
    killed: Arc<AtomicBool>,
    dead: bool,
    in_flight: usize,
    log: Arc<Log>,
}

impl PipeWorker {
    fn died(&mut self, ctx: &RunContext) -> TaskError {
        self.dead = true;
        sigkilled(self.id, 7, ctx)
    }
}

/// The worker "process": runs requests one by one, in order, and answers each.
fn remote(
    id: u64,
    rx: mpsc::Receiver<Job>,
    tx: mpsc::Sender<u64>,
    killed: Arc<AtomicBool>,
    log: Arc<Log>,
) {
    while let Ok(job) = rx.recv() {
        if killed.load(Ordering::SeqCst) {
            return;
        }
        let out = match job {
            Job::Value(x) | Job::Big(x) => {
                log.ran.lock().unwrap().push((id, x));
                x
            }
            Job::Sleep(d) => {
                if !sleep_unless_killed(d, &killed) {
                    return;
                }
                0
            }
            Job::Die => return,
        };
        if killed.load(Ordering::SeqCst) || tx.send(out).is_err() {
            return;
        }
    }
}

impl Worker for PipeWorker {
    type Input = Job;
    type Output = u64;

    fn run(&mut self, input: Job, ctx: &RunContext) -> Result<u64, TaskError> {
        Pipeline::send(self, &input, ctx)?;
        Pipeline::recv(self, ctx)
    }

    fn killer(&self) -> Option<Killer> {
        let k = self.killed.clone();
        let log = self.log.clone();
        Some(Killer::new(move || {
            log.kills.fetch_add(1, Ordering::SeqCst);
            k.store(true, Ordering::SeqCst);
        }))
    }

    fn alive(&mut self) -> bool {
        !self.dead && !self.killed.load(Ordering::SeqCst)
    }

    fn stop(self, _deadline: Instant) -> Result<(), FinalizeError> {
        Ok(())
    }

    fn pipeline(&mut self) -> Option<&mut dyn Pipeline<Input = Job, Output = u64>> {
        Some(self)
    }
}

impl Pipeline for PipeWorker {
    type Input = Job;
    type Output = u64;

    fn max_in_flight(&self) -> usize {
        16
    }

    fn can_pipeline(&self, input: &Job) -> bool {
        !matches!(input, Job::Big(_))
    }

    fn send(&mut self, input: &Job, ctx: &RunContext) -> Result<(), TaskError> {
        if self.dead || self.tx.send(input.clone()).is_err() {
            return Err(self.died(ctx));
        }
        self.in_flight += 1;
        self.log
            .max_in_flight
            .fetch_max(self.in_flight, Ordering::SeqCst);
        Ok(())
    }

    fn recv(&mut self, ctx: &RunContext) -> Result<u64, TaskError> {
        self.in_flight -= 1;
        match self.rx.recv() {
            Ok(x) => Ok(x),
            Err(_) => Err(self.died(ctx)),
        }
    }
}

#[derive(Clone, Default)]
struct PipeBackend(Arc<Log>);

impl Backend for PipeBackend {
    type Input = Job;
    type Output = u64;
    type Worker = PipeWorker;

    fn start(&self, id: WorkerId) -> Result<PipeWorker, StartError> {
        let (req_tx, req_rx) = mpsc::channel();
        let (rep_tx, rep_rx) = mpsc::channel();
        let killed = Arc::new(AtomicBool::new(false));
        let (k, log) = (killed.clone(), self.0.clone());
        std::thread::spawn(move || remote(id.0, req_rx, rep_tx, k, log));
        Ok(PipeWorker {
            id,
            tx: req_tx,
            rx: rep_rx,
            killed,
            dead: false,
            in_flight: 0,
            log: self.0.clone(),
        })
    }
}

fn engine(cfg: EngineConfig) -> (Engine<PipeBackend>, Arc<Log>) {
    let b = PipeBackend::default();
    let log = b.0.clone();
    (Engine::new(b, cfg).unwrap(), log)
}

/// How many times each value was run, over all workers.
fn runs(log: &Log) -> HashMap<u64, usize> {
    let mut m = HashMap::new();
    for (_, v) in log.ran.lock().unwrap().iter() {
        *m.entry(*v).or_default() += 1;
    }
    m
}

#[test]
fn many_tasks_in_flight_and_results_in_order() {
    let (e, log) = engine(cfg(2));
    let futs: Vec<_> = (0..2000).map(|i| submit(&e, Job::Value(i))).collect();
    let got = bounded(20, move || collect(futs).unwrap());
    assert_eq!(got, (0..2000).collect::<Vec<_>>());
    assert!(
        log.max_in_flight.load(Ordering::SeqCst) > 1,
        "the engine never had two tasks in flight"
    );
    assert!(log.max_in_flight.load(Ordering::SeqCst) <= 16);
    let s = e.stats();
    assert_eq!((s.submitted, s.completed, s.pending), (2000, 2000, 0));
    assert!(runs(&log).values().all(|&n| n == 1));
}

#[test]
fn a_death_fails_only_the_running_task_and_the_ones_behind_it_run_once() {
    for round in 0..20 {
        let (e, log) = engine(cfg(1));
        // A stream of quick tasks, so the worker is pipelining when `Die` and the ones
        // behind it come.
        let before: Vec<_> = (0..6).map(|i| submit(&e, Job::Value(i))).collect();
        let dying = submit(&e, Job::Die);
        let after: Vec<_> = (100..120).map(|i| submit(&e, Job::Value(i))).collect();
        let r = bounded(20, move || {
            (collect(before), dying.result(), collect(after))
        });
        assert_eq!(r.0, Ok((0..6).collect::<Vec<_>>()), "round {round}");
        assert!(r.1.unwrap_err().is_worker_died(), "round {round}");
        assert_eq!(r.2, Ok((100..120).collect::<Vec<_>>()), "round {round}");
        // Nothing ran twice: the tasks behind the death had provably not started.
        assert!(runs(&log).values().all(|&n| n == 1), "round {round}");
        eventually(10, "death counted", || e.stats().died == 1);
        let s = e.stats();
        assert_eq!(
            (s.completed, s.failed, s.pending),
            (26, 1, 0),
            "round {round}: {s:?}"
        );
        assert_eq!(s.replaced, 1);
    }
}

#[test]
fn killing_the_running_task_spares_the_ones_behind_it() {
    let (e, log) = engine(cfg(1));
    // Quick tasks first (the worker pipelines after a quick one), then the long one and
    // some behind it.
    let quick: Vec<_> = (0..10).map(|i| submit(&e, Job::Value(i))).collect();
    let running = submit(&e, Job::Sleep(Duration::from_secs(30)));
    let behind: Vec<_> = (100..103).map(|i| submit(&e, Job::Value(i))).collect();
    assert_eq!(
        bounded(10, move || collect(quick)),
        Ok((0..10).collect::<Vec<_>>())
    );
    assert!(
        log.max_in_flight.load(Ordering::SeqCst) >= 2,
        "never pipelined"
    );
    // With the quick ones answered, the long one is what the worker runs.
    eventually(10, "running", || running.is_running());
    assert!(running.kill());
    assert_eq!(
        bounded(10, move || running.result()),
        Err(TaskError::Cancelled)
    );
    assert_eq!(
        bounded(10, move || collect(behind)),
        Ok(vec![100, 101, 102])
    );
    assert_eq!(log.kills.load(Ordering::SeqCst), 1);
    assert!(runs(&log).values().all(|&n| n == 1));
    eventually(10, "replaced", || e.stats().replaced == 1);
    assert_eq!(
        e.stats().died,
        0,
        "a kill the caller asked for is not a death"
    );
}

#[test]
fn killing_a_task_waiting_in_flight_kills_the_worker_when_its_turn_comes() {
    for _ in 0..5 {
        let (e, log) = engine(cfg(1));
        let quick: Vec<_> = (0..10).map(|i| submit(&e, Job::Value(i))).collect();
        let head = submit(&e, Job::Sleep(Duration::from_millis(100)));
        let waiting = submit(&e, Job::Sleep(Duration::from_secs(30)));
        let after = submit(&e, Job::Value(6));
        // Sent behind `head` when pipelined; else sent once `head` is answered.
        eventually(10, "sent", || waiting.is_running());
        assert!(waiting.kill());
        assert_eq!(
            bounded(10, move || waiting.result()),
            Err(TaskError::Cancelled)
        );
        // The task the worker was running is not disturbed...
        assert_eq!(
            bounded(10, move || (collect(quick), head.result())),
            (Ok((0..10).collect::<Vec<_>>()), Ok(0))
        );
        // ...the killed one never finishes: its worker is killed when its turn comes (at
        // once if it already came), and the task behind it runs on the replacement.
        assert_eq!(bounded(10, move || after.result()), Ok(6));
        assert_eq!(log.kills.load(Ordering::SeqCst), 1);
        eventually(10, "replaced", || e.stats().replaced == 1);
        let s = e.stats();
        assert_eq!((s.died, s.completed), (0, 12), "{s:?}");
        eventually(10, "cancel counted", || e.stats().cancelled == 1);
    }
}

#[test]
fn timeouts_are_not_pipelined_and_kill_only_their_worker() {
    let (e, log) = engine(cfg(1));
    let busy = submit(&e, Job::Sleep(Duration::from_millis(30)));
    let slow = e
        .submit(
            Job::Sleep(Duration::from_secs(30)),
            SubmitOptions::new().timeout(Duration::from_millis(60)),
            Ok,
        )
        .unwrap();
    let t0 = Instant::now();
    let later: Vec<_> = (0..10).map(|i| submit(&e, Job::Value(i))).collect();
    let r = bounded(20, move || (busy.result(), slow.result(), collect(later)));
    assert_eq!(r.0, Ok(0));
    match r.1 {
        Err(TaskError::TimedOut { after, .. }) => assert_eq!(after, Duration::from_millis(60)),
        other => panic!("expected TimedOut, got {other:?}"),
    }
    // Its clock started when it started, not while it waited behind `busy`.
    assert!(t0.elapsed() >= Duration::from_millis(60));
    assert_eq!(r.2, Ok((0..10).collect::<Vec<_>>()));
    assert_eq!(log.kills.load(Ordering::SeqCst), 1);
    assert!(runs(&log).values().all(|&n| n == 1));
    eventually(10, "counted", || e.stats().timed_out == 1);
}

#[test]
fn recycling_counts_tasks_in_flight() {
    let (e, log) = engine(EngineConfig {
        max_tasks_per_worker: Some(3),
        ..cfg(1)
    });
    let futs: Vec<_> = (0..30).map(|i| submit(&e, Job::Value(i))).collect();
    assert_eq!(
        bounded(20, move || collect(futs)),
        Ok((0..30).collect::<Vec<_>>())
    );
    let mut per_worker: HashMap<u64, usize> = HashMap::new();
    for (w, _) in log.ran.lock().unwrap().iter() {
        *per_worker.entry(*w).or_default() += 1;
    }
    assert!(per_worker.values().all(|&n| n <= 3), "{per_worker:?}");
    eventually(10, "recycled", || e.stats().recycled >= 9);
}

#[test]
fn big_inputs_wait_for_the_flights_and_run_alone() {
    let (e, log) = engine(cfg(1));
    let mut futs = Vec::new();
    for i in 0..200 {
        let j = if i % 7 == 0 {
            Job::Big(i)
        } else {
            Job::Value(i)
        };
        futs.push(submit(&e, j));
    }
    assert_eq!(
        bounded(20, move || collect(futs)),
        Ok((0..200).collect::<Vec<_>>())
    );
    assert!(runs(&log).values().all(|&n| n == 1));
}

#[test]
fn break_pool_fails_the_tasks_in_flight_behind_a_death() {
    let (e, _) = engine(EngineConfig {
        on_worker_death: OnWorkerDeath::BreakPool,
        ..cfg(1)
    });
    let quick: Vec<_> = (0..10).map(|i| submit(&e, Job::Value(i))).collect();
    let dying = submit(&e, Job::Die);
    let behind: Vec<_> = (0..5).map(|i| submit(&e, Job::Value(i))).collect();
    let r = bounded(10, move || {
        (
            collect(quick),
            dying.result(),
            behind.into_iter().map(|f| f.result()).collect::<Vec<_>>(),
        )
    });
    assert_eq!(r.0, Ok((0..10).collect::<Vec<_>>()));
    assert!(r.1.unwrap_err().is_worker_died());
    for x in r.2 {
        assert!(matches!(x, Err(TaskError::Broken(_))), "{x:?}");
    }
    assert!(e.is_broken().is_some());
}

#[test]
fn shutdown_kill_resolves_everything_in_flight() {
    let (e, _) = engine(cfg(2));
    let futs: Vec<_> = (0..8)
        .map(|_| submit(&e, Job::Sleep(Duration::from_secs(30))))
        .collect();
    eventually(10, "running", || {
        futs.iter().filter(|f| f.is_running()).count() >= 2
    });
    let e2 = e.clone();
    let report = bounded(10, move || {
        e2.shutdown(Shutdown::Kill, Some(Duration::from_secs(5)))
    });
    assert_eq!(report.unfinished_workers, 0);
    for f in futs {
        let r = bounded(10, move || f.result());
        assert!(matches!(r, Err(TaskError::Cancelled)), "{r:?}");
    }
}

#[test]
fn shutdown_wait_finishes_everything_in_flight() {
    let (e, _) = engine(cfg(2));
    let futs: Vec<_> = (0..500).map(|i| submit(&e, Job::Value(i))).collect();
    let e2 = e.clone();
    let report = bounded(10, move || {
        e2.shutdown(Shutdown::Wait, Some(Duration::from_secs(5)))
    });
    assert_eq!(report.unfinished_workers, 0);
    assert_eq!(
        bounded(10, move || collect(futs)),
        Ok((0..500).collect::<Vec<_>>())
    );
}
