//! `map_all` (`map_iter`): helper tasks submitted before the items are collected, started on
//! the chunks once the caller publishes them.

use std::mem::ManuallyDrop;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};

use pool_core::TaskError;

use super::coord::{Coord, DONE, UNTOUCHED};
use super::ptrs::Ptrs;
use super::{Helpers, chunk_size, outcome};

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
pub(crate) fn map_iter<P, F, A, R, I>(pool: &P, f: F, items: I) -> Result<Vec<R>, TaskError>
where
    P: Helpers,
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
        if let Err(e) = pool.submit_helper(move || h.run()) {
            refused = Some(e);
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
