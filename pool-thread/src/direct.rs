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
//!
//! The mechanism, by file: `coord.rs` claims chunks and keeps their outcome and the latch;
//! `ptrs.rs` holds the buffers as raw pointers for the helper threads; `slice.rs` is
//! `map_slice` and `iter.rs` is `map_all`. The pool they run on is anything that offers
//! [`Helpers`] (the [`ThreadPool`](crate::ThreadPool)).

mod coord;
mod iter;
mod ptrs;
mod slice;

use pool_core::TaskError;

use coord::Coord;
pub(crate) use iter::map_iter;
pub(crate) use slice::map_slice;

/// What a direct map needs from the pool it runs on.
pub(crate) trait Helpers {
    /// How many helper tasks to submit: the pool's `max_workers`.
    fn max_workers(&self) -> usize;

    /// May the calling thread claim chunks too?
    fn caller_may_help(&self) -> bool;

    /// Submit one helper task.
    ///
    /// # Errors
    ///
    /// The pool refused it (shut down, broken, bounded queue full); `task` was dropped.
    fn submit_helper<T: FnOnce() + Send + 'static>(&self, task: T) -> Result<(), TaskError>;
}

/// Chunk size: several chunks per thread so claiming balances uneven work, but not so many
/// that claiming costs show.
fn chunk_size(n: usize, threads: usize) -> usize {
    (n / (8 * threads)).clamp(n.clamp(1, 256), 1 << 16)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ThreadPool;
    use std::sync::atomic::{AtomicUsize, Ordering};

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
