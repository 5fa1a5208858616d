//! The future state machine: one shared cell per task, completed once, read by its owner.
//!
//! This is the only module of the future with `unsafe`: the result slot is an `UnsafeCell`
//! whose access is serialized by the `state` word. The protocol (see also `README.md`):
//!
//! ```text
//! state = STATE (3 bits) | NOTIFY (1 bit)
//!
//!   PENDING ──start──▶ RUNNING
//!      │                 │
//!      └──claim──┐  ┌────┘ claim (complete / cancel / kill / timeout: exactly one wins)
//!                ▼  ▼
//!             COMPLETING  (the winner alone writes `result`, runs queued callbacks)
//!                 │ publish (Release)
//!                 ▼
//!        DONE | FAILED | CANCELLED   (terminal: `result` is immutable until the owner takes it)
//! ```
//!
//! - `start` (engine thread): CAS `PENDING → RUNNING`. Fails if the task was claimed first
//!   (cancelled), and the engine then skips it.
//! - `claim` (any completer): CAS from an allowed non-terminal state to `COMPLETING`. The
//!   thread whose CAS succeeds is the *unique* writer of `result`; every other completer
//!   (late results, a second cancel) loses and drops its value.
//! - `publish` (the claimer): if `NOTIFY` is clear, a single CAS `COMPLETING → terminal`
//!   (Release) finishes — no lock on the fast path. If `NOTIFY` is set, it takes the `slow`
//!   mutex, runs the callbacks queued there (with `&result`, still as sole accessor), and only
//!   when the callback list is empty stores the terminal state *while holding the mutex*, then
//!   wakes the condvar and the stored `Waker`.
//! - registrants (blocking waiters, `on_done`, `poll`, `kill`) take the `slow` mutex, then
//!   `fetch_or(NOTIFY)` (AcqRel). That RMW and the publisher's terminal store are ordered on
//!   the one atomic: either the registrant sees the terminal state (and reads `result`, which
//!   the Release/Acquire pair made visible) or the publisher sees `NOTIFY` and, needing the
//!   mutex the registrant holds until it is parked or has queued its callback, cannot miss it.
//! - the owner (`Future`, through `&mut`/by value) takes `result` only after an Acquire load
//!   saw a terminal state. `&Future` callers only ever *read* it, and only once terminal.

use std::sync::atomic::{AtomicU64 as StdAtomicU64, Ordering as StdOrdering};
use std::task::Waker;
use std::time::{Duration, Instant};

use crate::engine::Killer;
use crate::error::{TaskError, TaskId};
use crate::loom::{AtomicUsize, Condvar, Mutex, Ordering, UnsafeCell, lock};
use crate::panic::run_callback;

pub(crate) const PENDING: usize = 0;
pub(crate) const RUNNING: usize = 1;
pub(crate) const COMPLETING: usize = 2;
pub(crate) const DONE: usize = 3;
pub(crate) const FAILED: usize = 4;
pub(crate) const CANCELLED: usize = 5;
const MASK: usize = 0b111;
const NOTIFY: usize = 0b1000;

/// Bit set of source states for [`Core::claim`].
pub(crate) const FROM_PENDING: u8 = 1;
/// See [`FROM_PENDING`].
pub(crate) const FROM_RUNNING: u8 = 2;

/// How long a waiter keeps polling (yielding) before it sleeps on the condvar.
#[cfg(not(pool_loom))]
const WAIT_YIELD: Duration = Duration::from_micros(50);

#[inline]
fn is_terminal(s: usize) -> bool {
    (s & MASK) >= DONE
}

/// An `on_done` callback: gets the result by reference.
pub(crate) type Callback<T> = Box<dyn FnOnce(Result<&T, &TaskError>) + Send>;

/// How a finished result is stored: the error boxed, so the cell stays small (a million
/// queued tasks are a million cells).
type Stored<T> = Result<T, Box<TaskError>>;

#[inline]
fn view<T>(r: &Stored<T>) -> Result<&T, &TaskError> {
    r.as_ref().map_err(|e| &**e)
}

/// What the `slow` mutex guards: everything that is only touched by registrants and by a
/// publisher that saw `NOTIFY`.
struct Slow<T> {
    callbacks: Vec<Callback<T>>,
    waker: Option<Waker>,
    killer: Option<Killer>,
}

impl<T> Slow<T> {
    fn new() -> Box<Self> {
        Box::new(Slow {
            callbacks: Vec::new(),
            waker: None,
            killer: None,
        })
    }
}

/// The shared part of one task: state, result, waiters, timing.
pub(crate) struct Core<T> {
    state: AtomicUsize,
    result: UnsafeCell<Option<Stored<T>>>,
    /// Boxed on first registration: most tasks never need it, and a small cell keeps a
    /// million queued tasks cheap.
    slow: Mutex<Option<Box<Slow<T>>>>,
    cond: Condvar,
    id: TaskId,
    /// Present when timing is recorded for this task.
    times: Option<Box<Times>>,
}

/// Timestamps: nanoseconds since `epoch()` plus one (0 = not recorded). Relaxed: they are
/// reports, not part of the protocol (and not modelled under loom).
struct Times {
    queued: StdAtomicU64,
    started: StdAtomicU64,
    finished: StdAtomicU64,
}

// SAFETY: `result` is written only by the unique claimer (state COMPLETING) and read or taken
// only after a terminal state was observed with Acquire (see the protocol above); callbacks
// get `&T` on the publishing thread before publication, and `&Future` readers get `&T` only
// when `Future<T>: Sync`, which requires `T: Sync`. Everything else is atomics or the mutex.
unsafe impl<T: Send> Sync for Core<T> {}
// SAFETY: owning a `Core<T>` owns a `T` at most, which may move between threads if `T: Send`.
unsafe impl<T: Send> Send for Core<T> {}

fn epoch() -> Instant {
    static EPOCH: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

#[inline]
fn stamp() -> u64 {
    epoch().elapsed().as_nanos() as u64 + 1
}

#[inline]
fn unstamp(v: u64) -> Option<Instant> {
    (v != 0).then(|| epoch() + Duration::from_nanos(v - 1))
}

impl<T> Core<T> {
    pub(crate) fn new(id: TaskId, timed: bool) -> Self {
        Core {
            state: AtomicUsize::new(PENDING),
            result: UnsafeCell::new(None),
            slow: Mutex::new(None),
            cond: Condvar::new(),
            id,
            times: timed.then(|| {
                Box::new(Times {
                    queued: StdAtomicU64::new(stamp()),
                    started: StdAtomicU64::new(0),
                    finished: StdAtomicU64::new(0),
                })
            }),
        }
    }

    #[inline]
    pub(crate) fn id(&self) -> TaskId {
        self.id
    }

    /// The state without the flag bit (Acquire).
    #[inline]
    pub(crate) fn state(&self) -> usize {
        self.state.load(Ordering::Acquire) & MASK
    }

    /// Claimed, result not published yet (callbacks running).
    #[inline]
    pub(crate) fn is_completing(&self) -> bool {
        self.state() == COMPLETING
    }

    #[inline]
    pub(crate) fn is_terminal(&self) -> bool {
        is_terminal(self.state.load(Ordering::Acquire))
    }

    pub(crate) fn times(&self) -> (Option<Instant>, Option<Instant>, Option<Instant>) {
        match &self.times {
            None => (None, None, None),
            Some(t) => (
                unstamp(t.queued.load(StdOrdering::Relaxed)),
                unstamp(t.started.load(StdOrdering::Relaxed)),
                unstamp(t.finished.load(StdOrdering::Relaxed)),
            ),
        }
    }

    /// `PENDING → RUNNING`. False if the task was already claimed (cancelled, failed).
    #[inline]
    pub(crate) fn start(&self) -> bool {
        if let Some(t) = &self.times {
            t.started.store(stamp(), StdOrdering::Relaxed);
        }
        let mut s = self.state.load(Ordering::Relaxed);
        loop {
            if s & MASK != PENDING {
                return false;
            }
            match self.state.compare_exchange_weak(
                s,
                (s & !MASK) | RUNNING,
                Ordering::AcqRel,
                Ordering::Relaxed,
            ) {
                Ok(_) => return true,
                Err(now) => s = now,
            }
        }
    }

    /// Claim the right to complete: CAS from one of `from` to `COMPLETING`.
    #[inline]
    fn claim(&self, from: u8) -> bool {
        let mut s = self.state.load(Ordering::Relaxed);
        loop {
            let ok = match s & MASK {
                PENDING => from & FROM_PENDING != 0,
                RUNNING => from & FROM_RUNNING != 0,
                _ => false,
            };
            if !ok {
                return false;
            }
            match self.state.compare_exchange_weak(
                s,
                (s & !MASK) | COMPLETING,
                Ordering::Acquire,
                Ordering::Relaxed,
            ) {
                Ok(_) => return true,
                Err(now) => s = now,
            }
        }
    }

    /// Complete with `r` if the state is one of `from`; returns `Err(r)` when another
    /// completer won.
    pub(crate) fn complete(
        &self,
        r: Result<T, TaskError>,
        from: u8,
    ) -> Result<(), Result<T, TaskError>> {
        if !self.claim(from) {
            return Err(r);
        }
        self.store_claimed(r);
        Ok(())
    }

    /// Like [`Core::complete`], calling `count` after winning the claim and before
    /// publishing, so statistics are up to date when a waiter wakes. True if it won.
    #[inline]
    pub(crate) fn complete_counted(
        &self,
        r: Result<T, TaskError>,
        from: u8,
        count: impl FnOnce(),
    ) -> bool {
        if !self.claim(from) {
            return false;
        }
        count();
        self.store_claimed(r);
        true
    }

    /// Stores the result and publishes the terminal state. Only the thread that won
    /// [`Core::claim`] may call it, once.
    #[inline]
    fn store_claimed(&self, r: Result<T, TaskError>) {
        let terminal = match &r {
            Ok(_) => DONE,
            Err(TaskError::Cancelled) => CANCELLED,
            Err(_) => FAILED,
        };
        if let Some(t) = &self.times {
            t.finished.store(stamp(), StdOrdering::Relaxed);
        }
        // SAFETY: we won `claim`, so we are the only thread touching `result` until publish.
        self.result
            .with_mut(|p| unsafe { *p = Some(r.map_err(Box::new)) });
        self.publish(terminal);
    }

    fn publish(&self, terminal: usize) {
        let s = self.state.load(Ordering::Relaxed);
        if s & NOTIFY == 0
            && self
                .state
                .compare_exchange(s, terminal, Ordering::Release, Ordering::Relaxed)
                .is_ok()
        {
            return;
        }
        loop {
            let mut g = lock(&self.slow);
            let slow = g.get_or_insert_with(Slow::new);
            if slow.callbacks.is_empty() {
                self.state.store(terminal | NOTIFY, Ordering::Release);
                let waker = slow.waker.take();
                slow.killer = None;
                drop(g);
                self.cond.notify_all();
                if let Some(w) = waker {
                    w.wake();
                }
                return;
            }
            let cbs = std::mem::take(&mut slow.callbacks);
            drop(g);
            for cb in cbs {
                self.result.with(|p| {
                    // SAFETY: still COMPLETING and we are the claimer: nobody else accesses
                    // `result`.
                    let r = unsafe { (*p).as_ref() }.expect("result written before publish");
                    run_callback(|| cb(view(r)));
                });
            }
        }
    }

    /// Take the mutex and set `NOTIFY`; returns the guard and whether the state was already
    /// terminal.
    fn register(&self) -> (crate::loom::MutexGuard<'_, Option<Box<Slow<T>>>>, bool) {
        let g = lock(&self.slow);
        let s = self.state.fetch_or(NOTIFY, Ordering::AcqRel);
        (g, is_terminal(s))
    }

    /// Block until terminal or `deadline`. True if terminal.
    pub(crate) fn wait(&self, deadline: Option<Instant>) -> bool {
        if self.is_terminal() {
            return true;
        }
        // Most tasks a caller waits on finish within microseconds: spin (then yield) a
        // little before registering, so neither side pays a futex sleep and wake-up.
        #[cfg(not(pool_loom))]
        {
            let backoff = crossbeam_utils::Backoff::new();
            while !backoff.is_completed() && deadline.is_none_or(|d| Instant::now() < d) {
                backoff.snooze();
                if self.is_terminal() {
                    return true;
                }
            }
            // A process round trip takes a few tens of microseconds: keep yielding the CPU
            // that long, so the result is seen without a futex sleep and wake-up.
            let until = Instant::now() + WAIT_YIELD;
            loop {
                let now = Instant::now();
                if now >= until || deadline.is_some_and(|d| now >= d) {
                    break;
                }
                std::thread::yield_now();
                if self.is_terminal() {
                    return true;
                }
            }
        }
        let (mut g, done) = self.register();
        if done {
            return true;
        }
        loop {
            match deadline {
                None => {
                    g = match self.cond.wait(g) {
                        Ok(g) => g,
                        Err(p) => p.into_inner(),
                    };
                }
                Some(d) => {
                    let now = Instant::now();
                    if now >= d {
                        return false;
                    }
                    g = wait_timeout(&self.cond, g, d - now);
                }
            }
            if self.is_terminal() {
                return true;
            }
        }
    }

    /// Run `cb` when terminal: now (on this thread) if already terminal, else on the completer.
    /// `read` is how to get at the result once terminal; it is called only from `&self` and
    /// only after terminal.
    pub(crate) fn on_done(&self, cb: Callback<T>) {
        let (mut g, done) = self.register();
        if done {
            drop(g);
            // SAFETY: terminal (Acquire in `register`): `result` is immutable until the owner
            // takes it, and the owner cannot while `&self` is borrowed here.
            self.result.with(|p| {
                // SAFETY: as above.
                if let Some(r) = unsafe { (*p).as_ref() } {
                    run_callback(|| cb(view(r)));
                }
            });
        } else {
            g.get_or_insert_with(Slow::new).callbacks.push(cb);
        }
    }

    /// Take the result if terminal. The caller must be the unique owner of the consuming side
    /// (the `Future` through `&mut` or by value).
    pub(crate) fn take(&self) -> Option<Result<T, TaskError>> {
        if !self.is_terminal() {
            return None;
        }
        // SAFETY: terminal was observed with Acquire; the caller is the unique owner (has
        // `&mut Future`), so no `&self` reader is live.
        self.result
            .with_mut(|p| unsafe { (*p).take() })
            .map(|r| r.map_err(|e| *e))
    }

    /// Read the result if terminal (not taken).
    pub(crate) fn peek<R>(&self, f: impl FnOnce(Option<Result<&T, &TaskError>>) -> R) -> R {
        if !self.is_terminal() {
            return f(None);
        }
        // SAFETY: terminal observed with Acquire; only the `&mut` owner may take, and it is
        // not active while `&self` is borrowed.
        self.result.with(|p| f(unsafe { (*p).as_ref() }.map(view)))
    }

    /// Poll support: `Ready(Some(result))` if terminal, `Ready(None)` if terminal and the
    /// result was already taken, else store `waker` and `Pending`.
    pub(crate) fn poll_take(&self, waker: &Waker) -> std::task::Poll<Option<Result<T, TaskError>>> {
        use std::task::Poll;
        if self.is_terminal() {
            return Poll::Ready(self.take());
        }
        let (mut g, done) = self.register();
        if done {
            drop(g);
            return Poll::Ready(self.take());
        }
        let slow = g.get_or_insert_with(Slow::new);
        match &slow.waker {
            Some(w) if w.will_wake(waker) => {}
            _ => slow.waker = Some(waker.clone()),
        }
        Poll::Pending
    }

    pub(crate) fn set_killer(&self, k: Killer) {
        let (mut g, done) = self.register();
        if !done {
            g.get_or_insert_with(Slow::new).killer = Some(k);
        }
    }

    /// Kill a running task through its killer: claims the right to resolve, kills (a
    /// backend's killer returns once the worker is dead), then publishes `Cancelled`.
    pub(crate) fn kill(&self) -> bool {
        let killer = {
            let (mut g, done) = self.register();
            if done || self.state() != RUNNING {
                return false;
            }
            match g.as_mut().and_then(|s| s.killer.take()) {
                Some(k) => k,
                None => return false,
            }
        };
        self.complete_counted(Err(TaskError::Cancelled), FROM_RUNNING, || killer.kill())
    }
}

#[cfg(not(pool_loom))]
fn wait_timeout<'a, T>(
    c: &Condvar,
    g: crate::loom::MutexGuard<'a, T>,
    d: Duration,
) -> crate::loom::MutexGuard<'a, T> {
    match c.wait_timeout(g, d) {
        Ok((g, _)) => g,
        Err(p) => p.into_inner().0,
    }
}

#[cfg(pool_loom)]
fn wait_timeout<'a, T>(
    c: &Condvar,
    g: crate::loom::MutexGuard<'a, T>,
    _d: Duration,
) -> crate::loom::MutexGuard<'a, T> {
    // loom has no time: a timed wait is modelled as an untimed one.
    match c.wait(g) {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}

/// Type-erased access to a task's [`Core`], so one `Future<T>` type covers cells that also
/// carry different payloads (closure, encoded input) in the same allocation.
pub(crate) trait HasCore<T>: Send + Sync {
    fn core(&self) -> &Core<T>;
}

/// A cell without payload (`promise()`).
pub(crate) struct Bare<T>(pub(crate) Core<T>);

impl<T: Send> HasCore<T> for Bare<T> {
    #[inline]
    fn core(&self) -> &Core<T> {
        &self.0
    }
}

/// A core plus a payload, in one allocation. The payload is taken exactly once, by whoever
/// owns the queue entry for the task (the engine thread that dequeued it, or the submitter
/// when the task never made it into the queue).
pub(crate) struct WithPayload<T, P> {
    pub(crate) core: Core<T>,
    payload: UnsafeCell<Option<P>>,
}

// SAFETY: `payload` is accessed only by the unique holder of the queue entry (see
// `take_payload`); `P: Send` lets it move to that thread. `core` is Sync by itself.
unsafe impl<T: Send, P: Send> Sync for WithPayload<T, P> {}

impl<T, P> WithPayload<T, P> {
    pub(crate) fn new(core: Core<T>, payload: P) -> Self {
        WithPayload {
            core,
            payload: UnsafeCell::new(Some(payload)),
        }
    }

    /// Take the payload.
    ///
    /// # Safety
    ///
    /// Only the unique holder of this task's queue entry may call this (the queue hands each
    /// entry to exactly one thread), so no two calls can race.
    pub(crate) unsafe fn take_payload(&self) -> Option<P> {
        // SAFETY: exclusive per the caller's contract.
        self.payload.with_mut(|p| unsafe { (*p).take() })
    }

    /// Look at the payload without taking it.
    ///
    /// # Safety
    ///
    /// As [`WithPayload::take_payload`]: only the unique holder of this task's queue entry
    /// may call this, and it must not take the payload while the reference lives.
    pub(crate) unsafe fn payload(&self) -> Option<&P> {
        // SAFETY: exclusive per the caller's contract; no `take_payload` while borrowed.
        self.payload.with(|p| unsafe { (*p).as_ref() })
    }
}

impl<T: Send, P: Send> HasCore<T> for WithPayload<T, P> {
    #[inline]
    fn core(&self) -> &Core<T> {
        &self.core
    }
}

impl Killer {
    #[inline]
    pub(crate) fn kill(&self) {
        (self.0)()
    }
}
