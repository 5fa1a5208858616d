//! `map_slice`: helper tasks submitted once the borrowed input is known.

use std::mem::ManuallyDrop;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use pool_core::TaskError;

use super::coord::{Coord, DONE};
use super::ptrs::RefPtrs;
use super::{Helpers, chunk_size, outcome};

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
fn launch<P, H, T>(pool: &P, n: usize, mut body: H) -> (Arc<Coord>, Option<TaskError>)
where
    P: Helpers,
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
        if let Err(e) = pool.submit_helper(move || h.run()) {
            // Dropping the refused helper abandoned the map.
            return (coord, Some(e));
        }
    }
    (coord, None)
}

/// `map_slice`: like [`map_iter`](super::map_iter) over borrowed inputs.
pub(crate) fn map_slice<P, F, A, R>(pool: &P, f: F, input: &[A]) -> Result<Vec<R>, TaskError>
where
    P: Helpers,
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
