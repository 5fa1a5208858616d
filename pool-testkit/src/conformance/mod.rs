//! The conformance suite: checks that any [`Target`] executor behaves as pool-core's
//! contract says — results, `map` ordering and laziness, unordered completeness, `map_all`,
//! cancellation, `on_done` callbacks (a panicking one contained), per-call timeouts, panics,
//! shutdown modes, statistics, `wait` / `as_completed`, `.await`.
//!
//! Each check gets a fresh executor from the caller's factory, runs on its own thread under
//! a watchdog, and reports its name and what it saw. A check never relies on timing: tasks
//! that must be "running" are held at a file-system gate (see [`tasks::gate`]) that the check
//! opens, and every wait is bounded.
//!
//! [`named`] is the suite for executors of named tasks (`named_task!`), such as a pool whose
//! workers are on other machines: the checks that apply to a task known by its name only.
//!
//! # Examples
//!
//! ```no_run
//! use pool_testkit::conformance::{self, Options};
//! let report = conformance::run("ThreadPool", Options::new(), |workers| {
//!     pool_thread::ThreadPool::builder().max_workers(workers).build().unwrap()
//! });
//! report.assert_passed();
//! ```

mod checks;
pub mod named;
pub mod tasks;

pub use named::run_named;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use pool_core::{Executor, Future, Shutdown, State, TaskError};

use crate::target::{NamedTarget, Target};
use tasks::GateArg;

/// How to run the suite.
#[derive(Clone, Debug)]
pub struct Options {
    /// The `max_workers` the factory is asked for. Default 2.
    pub workers: usize,
    /// How long one check may take before it is declared hung. Default 60 s.
    pub watchdog: Duration,
    /// How long any single future may take to resolve once it should. Default 20 s.
    pub bound: Duration,
    /// The executor can kill a running task (`Future::kill`, `Shutdown::Kill`, timeouts that
    /// stop the task). Default false.
    pub kill: bool,
    /// Run only the checks whose name contains this. Default: the `POOL_CONFORMANCE`
    /// environment variable, if set.
    pub filter: Option<String>,
    /// Checks known to fail because of a reported bug: `(check name, bug note)`. Their
    /// outcome is reported as [`Outcome::KnownBug`] and does not fail
    /// [`Report::assert_passed`]. Default: none.
    pub known_bugs: Vec<(&'static str, &'static str)>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            workers: 2,
            watchdog: Duration::from_secs(60),
            bound: Duration::from_secs(20),
            kill: false,
            filter: std::env::var("POOL_CONFORMANCE").ok(),
            known_bugs: Vec::new(),
        }
    }
}

impl Options {
    /// The defaults.
    pub fn new() -> Self {
        Self::default()
    }
    /// Set [`Options::workers`] (at least 1).
    pub fn workers(mut self, n: usize) -> Self {
        self.workers = n.max(1);
        self
    }
    /// Set [`Options::watchdog`].
    pub fn watchdog(mut self, d: Duration) -> Self {
        self.watchdog = d;
        self
    }
    /// Set [`Options::bound`].
    pub fn bound(mut self, d: Duration) -> Self {
        self.bound = d;
        self
    }
    /// Set [`Options::kill`].
    pub fn kill(mut self, on: bool) -> Self {
        self.kill = on;
        self
    }
    /// Add a known bug (see [`Options::known_bugs`]).
    pub fn known_bug(mut self, check: &'static str, note: &'static str) -> Self {
        self.known_bugs.push((check, note));
        self
    }
    /// Set [`Options::filter`].
    pub fn filter(mut self, f: impl Into<String>) -> Self {
        self.filter = Some(f.into());
        self
    }
}

/// How one check ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// It passed.
    Passed,
    /// It failed; what it saw.
    Failed(String),
    /// Not applicable to this executor (why).
    Skipped(&'static str),
    /// Listed in [`Options::known_bugs`]: the bug note, and what the check saw (`None` if it
    /// passed this time).
    KnownBug {
        /// The bug note given in the options.
        note: &'static str,
        /// The failure seen this run, if any.
        saw: Option<String>,
    },
}

/// One check's result.
#[derive(Clone, Debug)]
pub struct CheckResult {
    /// The check's name.
    pub name: &'static str,
    /// How it ended.
    pub outcome: Outcome,
    /// How long it took (informational).
    pub elapsed: Duration,
}

/// The suite's results for one executor.
#[derive(Clone, Debug)]
pub struct Report {
    /// The executor's name, as given to [`run`] or [`run_named`].
    pub executor: String,
    /// One entry per check, in run order.
    pub results: Vec<CheckResult>,
}

impl Report {
    /// The failed checks.
    pub fn failures(&self) -> Vec<&CheckResult> {
        self.results
            .iter()
            .filter(|r| matches!(r.outcome, Outcome::Failed(_)))
            .collect()
    }

    /// How many checks passed.
    pub fn passed(&self) -> usize {
        self.results
            .iter()
            .filter(|r| r.outcome == Outcome::Passed)
            .count()
    }

    /// Panic with every failure if any check failed (and if nothing ran at all).
    ///
    /// # Panics
    ///
    /// A check failed, or no check ran.
    pub fn assert_passed(&self) {
        assert!(
            self.failures().is_empty() && self.passed() > 0,
            "conformance failed:\n{self}"
        );
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "conformance of {}: {} passed, {} failed, {} other (skipped or known bugs)",
            self.executor,
            self.passed(),
            self.failures().len(),
            self.results.len() - self.passed() - self.failures().len()
        )?;
        for r in &self.results {
            match &r.outcome {
                Outcome::Passed => writeln!(f, "  ok    {} ({:?})", r.name, r.elapsed)?,
                Outcome::Skipped(why) => writeln!(f, "  skip  {}: {why}", r.name)?,
                Outcome::Failed(what) => writeln!(f, "  FAIL  {}: {what}", r.name)?,
                Outcome::KnownBug { note, saw } => writeln!(
                    f,
                    "  known {}: {note}; this run: {}",
                    r.name,
                    saw.as_deref().unwrap_or("passed")
                )?,
            }
        }
        Ok(())
    }
}

/// The names of every check, in run order.
pub fn check_names() -> Vec<&'static str> {
    checks::all::<pool_thread::ThreadPool>()
        .iter()
        .map(|c| c.name)
        .collect()
}

/// What a check needs from the executor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Need {
    Nothing,
    Kill,
}

pub(crate) struct Check<E> {
    pub(crate) name: &'static str,
    pub(crate) need: Need,
    pub(crate) run: fn(&Ctx<E>) -> Result<(), String>,
}

pub(crate) type Factory<E> = Arc<dyn Fn(usize) -> E + Send + Sync>;

/// What a check works with: a fresh executor, a gate directory, the options.
pub(crate) struct Ctx<E> {
    pub(crate) exec: Arc<E>,
    pub(crate) make: Factory<E>,
    pub(crate) dir: PathBuf,
    pub(crate) opts: Options,
    step: Arc<Mutex<String>>,
}

static DIRS: AtomicU64 = AtomicU64::new(0);

fn fresh_dir(check: &str) -> PathBuf {
    let n = DIRS.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!(
        "pool-conformance-{}-{n}-{check}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create a gate directory in the temp dir");
    dir
}

impl<E: Executor> Ctx<E> {
    /// Record what the check is doing (shown if it hangs or fails).
    pub(crate) fn step(&self, s: impl Into<String>) {
        *self.step.lock().unwrap_or_else(|p| p.into_inner()) = s.into();
    }

    pub(crate) fn workers(&self) -> usize {
        self.opts.workers
    }

    pub(crate) fn gate_arg(&self, id: u32) -> GateArg {
        (self.dir.to_string_lossy().into_owned(), id)
    }

    pub(crate) fn release_all(&self) {
        let _ = std::fs::write(self.dir.join("release"), b"");
    }

    pub(crate) fn release(&self, id: u32) {
        let _ = std::fs::write(self.dir.join(format!("release-{id}")), b"");
    }

    pub(crate) fn has(&self, what: &str, id: u32) -> bool {
        self.dir.join(format!("{what}-{id}")).exists()
    }

    /// Wait (bounded) until every gate task in `ids` has started.
    pub(crate) fn wait_started(&self, ids: impl IntoIterator<Item = u32>) -> Result<(), String> {
        let ids: Vec<u32> = ids.into_iter().collect();
        poll_until(self.opts.bound, || {
            ids.iter().all(|&i| self.has("started", i))
        })
        .map_err(|_| {
            let missing: Vec<u32> = ids
                .iter()
                .copied()
                .filter(|&i| !self.has("started", i))
                .collect();
            format!(
                "gate tasks {missing:?} did not start within {:?} (stats: {:?})",
                self.opts.bound,
                self.exec.stats()
            )
        })
    }

    /// The future's result, or an error if it does not resolve within the bound.
    pub(crate) fn resolve<T>(
        &self,
        fut: Future<T>,
        what: &str,
    ) -> Result<Result<T, TaskError>, String> {
        match fut.result_timeout(self.opts.bound) {
            Ok(r) => Ok(r),
            Err(f) => Err(format!(
                "{what}: future did not resolve within {:?} (state {:?}, stats {:?})",
                self.opts.bound,
                f.state(),
                self.exec.stats()
            )),
        }
    }

    /// The future's value; any failure or hang is a check failure.
    pub(crate) fn value<T>(&self, fut: Future<T>, what: &str) -> Result<T, String> {
        self.resolve(fut, what)?
            .map_err(|e| format!("{what}: expected a value, got the error {e:?}"))
    }

    /// A fresh executor from the factory (for checks that drop or break theirs).
    pub(crate) fn fresh(&self) -> E {
        (self.make)(self.opts.workers)
    }
}

impl<E: Target> Ctx<E> {
    /// Submit `f(arg)`; a refusal becomes the check's failure text.
    pub(crate) fn sub<F, A, R>(&self, f: F, arg: A) -> Result<Future<R>, String>
    where
        F: crate::TaskFn<A, R>,
        A: crate::Value,
        R: crate::Value,
    {
        self.exec
            .call(f, arg)
            .map_err(|e| format!("submit refused: {e}"))
    }
}

impl<E: NamedTarget> Ctx<E> {
    /// Submit the named task `name` on `arg`; a refusal becomes the check's failure text.
    pub(crate) fn named<A, R>(&self, name: &str, arg: A) -> Result<Future<R>, String>
    where
        A: crate::Value,
        R: crate::Value,
    {
        self.exec
            .submit_named(name, arg)
            .map_err(|e| format!("submit_named({name:?}) refused: {e}"))
    }
}

/// Poll `cond` every millisecond or so until it holds; `Err(())` after `bound`.
pub(crate) fn poll_until(bound: Duration, mut cond: impl FnMut() -> bool) -> Result<(), ()> {
    let until = Instant::now() + bound;
    let mut pause = Duration::from_micros(200);
    loop {
        if cond() {
            return Ok(());
        }
        if Instant::now() >= until {
            return Err(());
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(10));
    }
}

pub(crate) fn state_of<T>(f: &Future<T>) -> State {
    f.state()
}

/// Run every check (or those matching [`Options::filter`]) on executors built by `make`,
/// which is called with [`Options::workers`] and must build a pool with exactly that many
/// `max_workers`. Never panics on a failed check: see [`Report::assert_passed`].
pub fn run<E, M>(executor: &str, opts: Options, make: M) -> Report
where
    E: Target,
    M: Fn(usize) -> E + Send + Sync + 'static,
{
    run_checks(executor, opts, Arc::new(make), checks::all::<E>())
}

/// Run `checks` (those matching [`Options::filter`]), each on a fresh executor from `make`.
pub(crate) fn run_checks<E: Executor + 'static>(
    executor: &str,
    opts: Options,
    make: Factory<E>,
    checks: Vec<Check<E>>,
) -> Report {
    let mut results = Vec::new();
    for check in checks {
        if let Some(f) = &opts.filter
            && !check.name.contains(f.as_str())
        {
            continue;
        }
        let started = Instant::now();
        let outcome = if check.need == Need::Kill && !opts.kill {
            Outcome::Skipped("the executor cannot kill a running task")
        } else {
            run_one(&check, &make, &opts)
        };
        let outcome = match opts.known_bugs.iter().find(|(n, _)| *n == check.name) {
            Some((_, note)) => Outcome::KnownBug {
                note,
                saw: match outcome {
                    Outcome::Failed(w) => Some(w),
                    _ => None,
                },
            },
            None => outcome,
        };
        results.push(CheckResult {
            name: check.name,
            outcome,
            elapsed: started.elapsed(),
        });
    }
    Report {
        executor: executor.to_owned(),
        results,
    }
}

fn panic_text(p: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "<non-string panic>".to_owned()
    }
}

fn run_one<E: Executor + 'static>(check: &Check<E>, make: &Factory<E>, opts: &Options) -> Outcome {
    let dir = fresh_dir(check.name);
    let step = Arc::new(Mutex::new(String::from("building the executor")));
    let cx = Arc::new(Ctx {
        exec: Arc::new(make(opts.workers)),
        make: Arc::clone(make),
        dir: dir.clone(),
        opts: opts.clone(),
        step: Arc::clone(&step),
    });
    let (tx, rx) = mpsc::channel();
    let body = check.run;
    let thread_cx = Arc::clone(&cx);
    let spawned = std::thread::Builder::new()
        .name(format!("conformance-{}", check.name))
        .spawn(move || {
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| body(&thread_cx)));
            let _ = tx.send(
                r.unwrap_or_else(|p| Err(format!("the check panicked: {}", panic_text(&*p)))),
            );
        });
    let thread = match spawned {
        Ok(t) => t,
        Err(e) => return Outcome::Failed(format!("cannot spawn the check thread: {e}")),
    };
    let got = rx.recv_timeout(opts.watchdog);
    if got.is_ok() {
        // It has sent its outcome and is ending: once joined, its handle on the executor is
        // gone, so the executor is dropped here, before the next check, and not later on
        // that thread.
        let _ = thread.join();
    }
    // Whatever happened, open every gate so no task stays blocked.
    cx.release_all();
    let last_step = step.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let mut outcome = match got {
        Ok(Ok(())) => Outcome::Passed,
        Ok(Err(what)) => Outcome::Failed(format!("{what} [during: {last_step}]")),
        Err(_) => Outcome::Failed(format!(
            "hung: did not finish within {:?} [during: {last_step}]",
            opts.watchdog
        )),
    };
    // The executor must shut down within the bound after any check.
    let exec = Arc::clone(&cx.exec);
    let mode = if opts.kill {
        Shutdown::Kill
    } else {
        Shutdown::CancelPending
    };
    let (done_tx, done_rx) = mpsc::channel();
    let stopper = std::thread::spawn(move || {
        exec.shutdown(mode);
        drop(exec);
        let _ = done_tx.send(());
    });
    let stopped = done_rx.recv_timeout(opts.bound).is_ok();
    if stopped {
        let _ = stopper.join();
    }
    if !stopped && outcome == Outcome::Passed {
        outcome = Outcome::Failed(format!(
            "shutdown({mode:?}) after the check did not return within {:?}",
            opts.bound
        ));
    }
    drop(cx);
    remove_dir(&dir);
    outcome
}

fn remove_dir(dir: &Path) {
    let _ = std::fs::remove_dir_all(dir);
}
