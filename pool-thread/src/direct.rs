//! Direct map for the thread pool: workers read their inputs and write their results straight
//! into the caller's buffers, so the caller does O(chunks) work, not O(items).
//!
//! This is the crate's only `unsafe` module. The invariant everything rests on:
//!
//! **The buffers (`input`, `output`) belong to the calling frame, which does not return (nor
//! unwind) before every chunk index `< nchunks` has been claimed exactly once and finished.**
//!
//! - A chunk is claimed with `next.fetch_add(1)`: each index is handed out once, so the
//!   ranges threads touch are disjoint.
//! - A thread touches the buffers only for a chunk it claimed, and marks it finished
//!   (`finished.fetch_add`, AcqRel) after its last access, also when `f` panics (the panic is
//!   caught inside the chunk loop, never unwinds past it).
//! - The caller claims chunks too (unless the pool has an initializer, whose thread-local
//!   setup `f` may need, and the caller is not one of the pool's threads), so claiming ends
//!   even if no helper task ever runs (a map nested in a task of a busy pool); then it waits on
//!   the latch until `finished == nchunks`. The last finisher's RMW acquires every earlier
//!   finisher's writes and releases them through the latch mutex to the caller.
//! - Helper tasks that start after that find `next >= nchunks` and return without touching
//!   the buffers; they own only an `Arc` of the coordinator (atomics, a mutex) and a clone of
//!   `f` (`'static`).
//!
//! After a panic, the chunk's consumed inputs and written outputs are leaked (never dropped
//! twice); untouched chunks' inputs are dropped and finished chunks' outputs dropped.

use std::mem::ManuallyDrop;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};

use pool_core::{TaskError, catch_panic};

use crate::pool::ThreadPool;

const UNTOUCHED: u8 = 0;
const DONE: u8 = 1;
const FAILED: u8 = 2;

/// Claims, per-chunk outcome, first error, and the latch the caller waits on.
struct Coord {
    n: usize,
    chunk: usize,
    nchunks: usize,
    next: AtomicUsize,
    states: Box<[AtomicU8]>,
    finished: AtomicUsize,
    stop: AtomicBool,
    error: Mutex<Option<(usize, TaskError)>>,
    done: Mutex<bool>,
    done_cv: Condvar,
}

impl Coord {
    fn new(n: usize, chunk: usize) -> Self {
        let nchunks = n.div_ceil(chunk);
        Coord {
            n,
            chunk,
            nchunks,
            next: AtomicUsize::new(0),
            states: (0..nchunks).map(|_| AtomicU8::new(UNTOUCHED)).collect(),
            finished: AtomicUsize::new(0),
            stop: AtomicBool::new(false),
            error: Mutex::new(None),
            done: Mutex::new(false),
            done_cv: Condvar::new(),
        }
    }

    fn range(&self, c: usize) -> (usize, usize) {
        let lo = c * self.chunk;
        (lo, (lo + self.chunk).min(self.n))
    }

    /// Claim and run chunks until none is left.
    fn work(&self, run: &dyn Fn(usize, usize)) {
        loop {
            let c = self.next.fetch_add(1, Ordering::Relaxed);
            if c >= self.nchunks {
                return;
            }
            if !self.stop.load(Ordering::Relaxed) {
                let (lo, hi) = self.range(c);
                match catch_panic(|| run(lo, hi)) {
                    Ok(()) => self.states[c].store(DONE, Ordering::Relaxed),
                    Err(p) => {
                        self.states[c].store(FAILED, Ordering::Relaxed);
                        self.stop.store(true, Ordering::Relaxed);
                        let mut e = self.error.lock().unwrap_or_else(|p| p.into_inner());
                        if e.as_ref().is_none_or(|(i, _)| c < *i) {
                            *e = Some((c, TaskError::Panicked(p)));
                        }
                    }
                }
            }
            if self.finished.fetch_add(1, Ordering::AcqRel) + 1 == self.nchunks {
                *self.done.lock().unwrap_or_else(|p| p.into_inner()) = true;
                self.done_cv.notify_all();
            }
        }
    }

    /// A helper task was dropped without running (the pool refused or cancelled it): stop
    /// the map and mark every unclaimed chunk finished without touching the buffers.
    fn abandon(&self) {
        {
            let mut e = self.error.lock().unwrap_or_else(|p| p.into_inner());
            if e.is_none() {
                *e = Some((usize::MAX, TaskError::Cancelled));
            }
        }
        self.stop.store(true, Ordering::Relaxed);
        self.work(&|_, _| unreachable!("stopped: no chunk runs"));
    }

    fn wait(&self) {
        let mut g = self.done.lock().unwrap_or_else(|p| p.into_inner());
        while !*g {
            g = self.done_cv.wait(g).unwrap_or_else(|p| p.into_inner());
        }
    }
}

/// Raw buffer pointers that may cross to helper threads (see the module invariant).
struct Ptrs<A, R> {
    input: *mut A,
    output: *mut R,
}

impl<A, R> Clone for Ptrs<A, R> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<A, R> Copy for Ptrs<A, R> {}

// SAFETY: the pointers are only dereferenced for claimed, disjoint chunks while the owning
// frame waits (module invariant); moving `A` in and `R` out across threads needs `Send`.
unsafe impl<A: Send, R: Send> Send for Ptrs<A, R> {}

impl<A, R> Ptrs<A, R> {
    /// Apply `f` to the inputs `lo..hi`, moving each out and writing its result.
    ///
    /// # Safety
    ///
    /// `lo..hi` is a chunk this thread claimed, within both buffers' lengths.
    unsafe fn run<F: Fn(A) -> R>(self, f: &F, lo: usize, hi: usize) {
        for i in lo..hi {
            // SAFETY: claimed chunk: nobody else reads input `i` or writes output `i`, and
            // input `i` is read exactly once.
            unsafe {
                let a = self.input.add(i).read();
                self.output.add(i).write(f(a));
            }
        }
    }
}

/// Like [`Ptrs`] for a borrowed input slice: elements are shared, not moved.
struct RefPtrs<A, R> {
    input: *const A,
    output: *mut R,
}

impl<A, R> Clone for RefPtrs<A, R> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<A, R> Copy for RefPtrs<A, R> {}

// SAFETY: as for `Ptrs`; the inputs are only read through `&A` from several threads, which
// needs `A: Sync`.
unsafe impl<A: Sync, R: Send> Send for RefPtrs<A, R> {}

impl<A: Sync, R> RefPtrs<A, R> {
    /// Apply `f` to `&input[lo..hi]`, writing the results.
    ///
    /// # Safety
    ///
    /// As [`Ptrs::run`]; the inputs are only borrowed (the caller keeps them).
    unsafe fn run_ref<F: Fn(&A) -> R>(self, f: &F, lo: usize, hi: usize) {
        for i in lo..hi {
            // SAFETY: claimed chunk: nobody else writes output `i`; inputs are shared reads
            // of a slice the caller keeps borrowed until every chunk finished (`A: Sync`).
            unsafe {
                self.output.add(i).write(f(&*self.input.add(i)));
            }
        }
    }
}

/// Chunk size: several chunks per thread so claiming balances uneven work, but not so many
/// that claiming costs show.
fn chunk_size(n: usize, threads: usize) -> usize {
    (n / (8 * threads)).clamp(n.clamp(1, 256), 1 << 16)
}

/// One helper task: runs `body` (the chunk loop); dropped unrun, it abandons the map so the
/// caller never waits for chunks nobody will run.
struct Helper<T> {
    coord: Arc<Coord>,
    body: Option<T>,
}

impl<T: FnOnce()> Helper<T> {
    fn run(mut self) {
        if let Some(b) = self.body.take() {
            b();
        }
    }
}

impl<T> Drop for Helper<T> {
    fn drop(&mut self) {
        if self.body.is_some() {
            self.coord.abandon();
        }
    }
}

/// Create the coordinator and submit one helper task per worker; `body(coord)` builds a
/// helper's chunk loop. If the pool refuses a helper, the map is abandoned (the error is
/// `Cancelled`, or the pool's refusal when nothing ran).
fn launch<H, T>(pool: &ThreadPool, n: usize, mut body: H) -> (Arc<Coord>, Option<TaskError>)
where
    H: FnMut(Arc<Coord>) -> T,
    T: FnOnce() + Send + 'static,
{
    let workers = pool.max_workers();
    let threads = workers + usize::from(pool.caller_may_help());
    let coord = Arc::new(Coord::new(n, chunk_size(n, threads)));
    for _ in 0..workers.min(coord.nchunks) {
        let h = Helper {
            coord: coord.clone(),
            body: Some(body(coord.clone())),
        };
        if let Err(e) = pool.submit(move || h.run()) {
            // Dropping the refused helper abandoned the map.
            return (coord, Some(e.to_task_error()));
        }
    }
    (coord, None)
}

/// After every chunk finished: the first error in chunk order, preferring the pool's
/// refusal over the `Cancelled` of an abandoned map.
fn outcome(coord: &Coord, refused: Option<TaskError>) -> Option<TaskError> {
    let e = coord.error.lock().unwrap_or_else(|p| p.into_inner()).take();
    match (e, refused) {
        (None, _) => None,
        (Some((usize::MAX, _)), Some(r)) => Some(r),
        (Some((_, e)), _) => Some(e),
    }
}

/// `map_slice`: like [`map_iter`] over borrowed inputs.
pub(crate) fn map_slice<F, A, R>(pool: &ThreadPool, f: F, input: &[A]) -> Result<Vec<R>, TaskError>
where
    F: Fn(&A) -> R + Clone + Send + 'static,
    A: Sync + 'static,
    R: Send + 'static,
{
    let n = input.len();
    if n == 0 {
        return Ok(Vec::new());
    }
    let mut output = ManuallyDrop::new(Vec::<R>::with_capacity(n));
    let ptrs = RefPtrs {
        input: input.as_ptr(),
        output: output.as_mut_ptr(),
    };
    let (coord, refused) = launch(pool, n, |c| {
        let f = f.clone();
        // SAFETY: `work` hands `run_ref` only claimed chunks (module invariant).
        move || c.work(&|lo, hi| unsafe { ptrs.run_ref(&f, lo, hi) })
    });
    if pool.caller_may_help() {
        // SAFETY: as in the helpers.
        coord.work(&|lo, hi| unsafe { ptrs.run_ref(&f, lo, hi) });
    }
    coord.wait();
    // Every chunk is finished: the output buffer is ours alone again.
    match outcome(&coord, refused) {
        None => {
            // SAFETY: every output slot `0..n` was written.
            unsafe {
                output.set_len(n);
                Ok(ManuallyDrop::into_inner(output))
            }
        }
        Some(e) => {
            for c in 0..coord.nchunks {
                let (lo, hi) = coord.range(c);
                if coord.states[c].load(Ordering::Relaxed) == DONE {
                    // SAFETY: a finished chunk's outputs are initialized and owned by us.
                    unsafe {
                        std::ptr::slice_from_raw_parts_mut(ptrs.output.add(lo), hi - lo)
                            .drop_in_place()
                    }
                }
            }
            // SAFETY: outputs were dropped or leaked above; this frees the buffer only.
            unsafe { ManuallyDrop::drop(&mut output) };
            Err(e)
        }
    }
}

/// Helpers submitted before the input is collected, so the pool's threads wake up while
/// the caller pulls the items; they start on the chunks as soon as the caller publishes them.
struct Early<A, R> {
    state: Mutex<EarlyState<A, R>>,
    ready: AtomicBool,
    cv: Condvar,
}

enum EarlyState<A, R> {
    /// The caller is still collecting; `lost` if a helper was dropped unrun meanwhile.
    Waiting {
        lost: bool,
    },
    Running(Arc<Coord>, Ptrs<A, R>),
    /// Nothing to do (empty input, or the caller unwound while collecting).
    Aborted,
}

impl<A, R> Early<A, R> {
    fn set(&self, s: EarlyState<A, R>) -> bool {
        let mut g = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let lost = matches!(*g, EarlyState::Waiting { lost: true });
        *g = s;
        self.ready.store(true, Ordering::Release);
        drop(g);
        self.cv.notify_all();
        lost
    }

    /// Wait (yield for up to 5 ms, then block) until the caller launched.
    fn launched(&self) -> Option<(Arc<Coord>, Ptrs<A, R>)> {
        let start = std::time::Instant::now();
        while !self.ready.load(Ordering::Acquire)
            && start.elapsed() < std::time::Duration::from_millis(5)
        {
            std::thread::yield_now();
        }
        let mut g = self.state.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            match &*g {
                EarlyState::Waiting { .. } => {
                    g = self.cv.wait(g).unwrap_or_else(|p| p.into_inner());
                }
                EarlyState::Running(c, p) => return Some((c.clone(), *p)),
                EarlyState::Aborted => return None,
            }
        }
    }
}

/// One early helper task; dropped unrun (refused or cancelled by the pool), it abandons the
/// map so the caller never waits for chunks nobody will run.
struct EarlyHelper<A, R, F> {
    early: Arc<Early<A, R>>,
    f: Option<F>,
}

impl<A, R, F: Fn(A) -> R> EarlyHelper<A, R, F> {
    fn run(mut self) {
        let f = self.f.take().expect("runs once");
        if let Some((coord, ptrs)) = self.early.launched() {
            // SAFETY: `work` hands `run` only claimed chunks (module invariant).
            coord.work(&|lo, hi| unsafe { ptrs.run(&f, lo, hi) });
        }
    }
}

impl<A, R, F> Drop for EarlyHelper<A, R, F> {
    fn drop(&mut self) {
        if self.f.is_none() {
            return;
        }
        let coord = {
            let mut g = self.early.state.lock().unwrap_or_else(|p| p.into_inner());
            match &mut *g {
                EarlyState::Waiting { lost } => {
                    *lost = true;
                    None
                }
                EarlyState::Running(c, _) => Some(c.clone()),
                EarlyState::Aborted => None,
            }
        };
        if let Some(c) = coord {
            c.abandon();
        }
    }
}

/// Marks the early helpers' launch aborted if the caller unwinds (its iterator panicked)
/// before launching.
struct AbortIfUnlaunched<'a, A, R>(&'a Early<A, R>, bool);

impl<A, R> Drop for AbortIfUnlaunched<'_, A, R> {
    fn drop(&mut self) {
        if !self.1 {
            self.0.set(EarlyState::Aborted);
        }
    }
}

/// `map_all` with direct buffer access: helpers are submitted first, the items collected
/// while the pool's threads wake up, then everyone claims chunks.
pub(crate) fn map_iter<F, A, R, I>(pool: &ThreadPool, f: F, items: I) -> Result<Vec<R>, TaskError>
where
    F: Fn(A) -> R + Clone + Send + 'static,
    A: Send + 'static,
    R: Send + 'static,
    I: Iterator<Item = A>,
{
    let early = Arc::new(Early {
        state: Mutex::new(EarlyState::Waiting { lost: false }),
        ready: AtomicBool::new(false),
        cv: Condvar::new(),
    });
    let mut refused = None;
    let mut guard = AbortIfUnlaunched(&early, false);
    for _ in 0..pool.max_workers() {
        let h = EarlyHelper {
            early: early.clone(),
            f: Some(f.clone()),
        };
        if let Err(e) = pool.submit(move || h.run()) {
            refused = Some(e.to_task_error());
            break;
        }
    }
    if let Some(e) = refused {
        // The pool refuses work (shut down, broken): report it; helpers already queued see
        // the launch aborted and touch nothing.
        guard.1 = true;
        early.set(EarlyState::Aborted);
        return Err(e);
    }
    let input: Vec<A> = items.collect();
    let n = input.len();
    if n == 0 {
        guard.1 = true;
        early.set(EarlyState::Aborted);
        return Ok(Vec::new());
    }
    let mut input = ManuallyDrop::new(input);
    let mut output = ManuallyDrop::new(Vec::<R>::with_capacity(n));
    let ptrs = Ptrs {
        input: input.as_mut_ptr(),
        output: output.as_mut_ptr(),
    };
    let threads = pool.max_workers() + usize::from(pool.caller_may_help());
    let coord = Arc::new(Coord::new(n, chunk_size(n, threads)));
    guard.1 = true;
    if early.set(EarlyState::Running(coord.clone(), ptrs)) {
        // A helper was dropped unrun while we collected: nobody may be left to run chunks.
        coord.abandon();
    }
    if pool.caller_may_help() {
        // SAFETY: `work` hands `run` only claimed chunks (module invariant).
        coord.work(&|lo, hi| unsafe { ptrs.run(&f, lo, hi) });
    }
    coord.wait();
    // Every chunk is finished: the buffers are ours alone again.
    match outcome(&coord, None) {
        None => {
            // SAFETY: every output slot `0..n` was written; every input was moved out, so
            // the input buffer is freed without dropping elements.
            unsafe {
                input.set_len(0);
                ManuallyDrop::drop(&mut input);
                output.set_len(n);
                Ok(ManuallyDrop::into_inner(output))
            }
        }
        Some(e) => {
            for c in 0..coord.nchunks {
                let (lo, hi) = coord.range(c);
                match coord.states[c].load(Ordering::Relaxed) {
                    // SAFETY: a finished chunk's outputs are initialized and owned by us.
                    DONE => unsafe {
                        std::ptr::slice_from_raw_parts_mut(ptrs.output.add(lo), hi - lo)
                            .drop_in_place()
                    },
                    // SAFETY: an untouched chunk's inputs were never moved out.
                    UNTOUCHED => unsafe {
                        std::ptr::slice_from_raw_parts_mut(ptrs.input.add(lo), hi - lo)
                            .drop_in_place()
                    },
                    // A failed chunk is partly consumed: leak it.
                    _ => {}
                }
            }
            // SAFETY: all elements were dropped, moved or leaked above; free the buffers.
            unsafe {
                input.set_len(0);
                ManuallyDrop::drop(&mut input);
                ManuallyDrop::drop(&mut output);
            }
            Err(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    static DROPS: AtomicUsize = AtomicUsize::new(0);

    struct Counted(u32);
    impl Drop for Counted {
        fn drop(&mut self) {
            DROPS.fetch_add(1, Ordering::Relaxed);
        }
    }

    #[test]
    fn chunk_sizes_cover_input() {
        for n in [1, 2, 255, 256, 1000, 1_000_000] {
            for t in [1, 2, 3, 9] {
                let c = chunk_size(n, t);
                assert!(c >= 1 && c <= n.max(1));
            }
        }
    }

    #[test]
    fn results_in_order_and_inputs_dropped_once() {
        let pool = ThreadPool::builder().max_workers(2).build().unwrap();
        DROPS.store(0, Ordering::Relaxed);
        let input: Vec<Counted> = (0..10_000).map(Counted).collect();
        let out = map_iter(&pool, |c: Counted| c.0 * 2, input.into_iter()).unwrap();
        assert_eq!(out.len(), 10_000);
        assert!(out.iter().enumerate().all(|(i, &v)| v == i as u32 * 2));
        assert_eq!(DROPS.load(Ordering::Relaxed), 10_000);
    }

    #[test]
    fn a_map_nested_in_a_task_of_a_full_pool_completes() {
        let pool = ThreadPool::builder()
            .max_workers(1)
            .initializer(|| Ok::<_, String>(()))
            .build()
            .unwrap();
        let p = pool.clone();
        let f = pool
            .submit(move || {
                let v: Vec<u32> = (0..10_000).collect();
                map_slice(&p, |x: &u32| x + 1, &v).map(|o| o.len())
            })
            .unwrap();
        let r = f
            .result_timeout(std::time::Duration::from_secs(10))
            .expect("nested map hung");
        assert_eq!(r, Ok(Ok(10_000)));
    }

    #[test]
    fn map_slice_borrows_its_input() {
        let pool = ThreadPool::builder().max_workers(2).build().unwrap();
        let v: Vec<String> = (0..5000).map(|i| i.to_string()).collect();
        let out = map_slice(&pool, |s: &String| s.len(), &v).unwrap();
        assert_eq!(out.len(), 5000);
        assert_eq!(out[1234], 4);
        assert_eq!(v[4999], "4999", "input still ours");
    }

    #[test]
    fn a_refusing_pool_fails_the_map_and_drops_inputs_once() {
        let pool = ThreadPool::builder().max_workers(2).build().unwrap();
        pool_core::Executor::shutdown(&pool, pool_core::Shutdown::Wait);
        DROPS.store(0, Ordering::Relaxed);
        let input: Vec<Counted> = (0..1000).map(Counted).collect();
        let r = map_iter(&pool, |c: Counted| c.0, input.into_iter());
        assert_eq!(r, Err(TaskError::Shutdown));
        assert_eq!(DROPS.load(Ordering::Relaxed), 1000);
        // With an initializer the caller cannot help: still no hang, same error.
        let pool = ThreadPool::builder()
            .initializer(|| Ok::<_, String>(()))
            .build()
            .unwrap();
        pool_core::Executor::shutdown(&pool, pool_core::Shutdown::Wait);
        let r = map_slice(&pool, |x: &u32| *x, &[1, 2, 3]);
        assert_eq!(r, Err(TaskError::Shutdown));
    }

    #[test]
    fn a_panic_is_reported_with_its_location() {
        let pool = ThreadPool::builder().max_workers(2).build().unwrap();
        let r = map_iter(
            &pool,
            |x: u32| {
                if x == 5_000 {
                    panic!("bad item {x}");
                }
                x
            },
            0..10_000u32,
        );
        let e = r.unwrap_err();
        let p = e.panic_info().expect("a panic");
        assert_eq!(p.message, "bad item 5000");
        assert!(p.location.as_deref().unwrap().contains("direct.rs"));
        // The pool is still usable.
        assert_eq!(pool.submit(|| 3).unwrap().result(), Ok(3));
    }
}
