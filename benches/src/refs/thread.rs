//! Thread-pool references: rayon (`spawn` + oneshot, `scope.spawn`, `par_iter`), the
//! `threadpool` crate and the plain crossbeam pool, each with [`WORKERS`] threads; the helper
//! that drives a pool from several submitting threads ([`from_submitters`]).

use super::crossbeam_pool::CrossbeamPool;
use super::{Made, WORKERS};
use crate::measure::timed;
use crate::work::{burn, check_burned, check_doubled, double, noop, work_iters};
use crossbeam_channel::{bounded, unbounded};
use rayon::prelude::*;
use std::hint::black_box;
use std::ops::Range;
use std::sync::Barrier;
use std::time::Duration;

fn rayon_pool() -> Result<rayon::ThreadPool, String> {
    rayon::ThreadPoolBuilder::new()
        .num_threads(WORKERS)
        .build()
        .map_err(|e| format!("rayon pool: {e}"))
}

fn check_one(got: Result<u64, impl std::fmt::Display>, want: u64) -> Result<(), String> {
    match got {
        Ok(v) if v == want => Ok(()),
        Ok(v) => Err(format!("got {v}, expected {want}")),
        Err(e) => Err(e.to_string()),
    }
}

/// `thread.roundtrip`: `rayon::ThreadPool::spawn` of a no-op that answers on a fresh
/// `bounded(1)` channel (a oneshot), awaited before the next.
///
/// # Errors
///
/// The pool could not be built.
pub fn rayon_spawn_roundtrip() -> Made {
    let pool = rayon_pool()?;
    let mut i = 0u64;
    Ok(Box::new(move || {
        i += 1;
        let x = i;
        let (d, got) = timed(|| {
            let (tx, rx) = bounded(1);
            pool.spawn(move || {
                let _ = tx.send(noop(black_box(x)));
            });
            rx.recv()
        });
        check_one(got, x).map(|()| d)
    }))
}

/// `thread.roundtrip`: `threadpool::ThreadPool::execute` + a fresh `bounded(1)` channel.
///
/// # Errors
///
/// Never; the signature matches the other references.
pub fn threadpool_roundtrip() -> Made {
    let pool = threadpool::ThreadPool::new(WORKERS);
    let mut i = 0u64;
    Ok(Box::new(move || {
        i += 1;
        let x = i;
        let (d, got) = timed(|| {
            let (tx, rx) = bounded(1);
            pool.execute(move || {
                let _ = tx.send(noop(black_box(x)));
            });
            rx.recv()
        });
        check_one(got, x).map(|()| d)
    }))
}

/// `thread.roundtrip`: the plain crossbeam pool + a fresh `bounded(1)` channel.
///
/// # Errors
///
/// Never; the signature matches the other references.
pub fn crossbeam_roundtrip() -> Made {
    let pool = CrossbeamPool::new(WORKERS);
    let mut i = 0u64;
    Ok(Box::new(move || {
        i += 1;
        let x = i;
        let (d, got) = timed(|| {
            let (tx, rx) = bounded(1);
            pool.execute(move || {
                let _ = tx.send(noop(black_box(x)));
            });
            rx.recv()
        });
        check_one(got, x).map(|()| d)
    }))
}

/// `thread.tasks_*`: `n` tasks through `rayon::ThreadPool::scope`, each `s.spawn` writing its
/// result into its own slot of a preallocated vector.
///
/// # Errors
///
/// The pool could not be built.
pub fn rayon_scope_tasks(n: usize) -> Made {
    let pool = rayon_pool()?;
    Ok(Box::new(move || {
        let (d, out) = timed(|| {
            let mut out = vec![0u64; n];
            pool.scope(|s| {
                for (i, slot) in out.iter_mut().enumerate() {
                    s.spawn(move |_| *slot = double(black_box(i as u64)));
                }
            });
            out
        });
        check_doubled(&out, n as u64).map(|()| d)
    }))
}

/// Collects `n` `(index, value)` answers from `rx` into a vector in index order.
fn collect_indexed(
    rx: &crossbeam_channel::Receiver<(usize, u64)>,
    n: usize,
) -> Result<Vec<u64>, String> {
    let mut out = vec![0u64; n];
    for _ in 0..n {
        let (i, v) = rx
            .recv_timeout(Duration::from_secs(60))
            .map_err(|e| format!("collecting results: {e}"))?;
        out[i] = v;
    }
    Ok(out)
}

/// `thread.tasks_*`: `n` `threadpool` jobs, each sending `(index, result)` on one shared
/// channel; all `n` are collected in index order.
///
/// # Errors
///
/// Never; the signature matches the other references.
pub fn threadpool_tasks(n: usize) -> Made {
    let pool = threadpool::ThreadPool::new(WORKERS);
    Ok(Box::new(move || {
        let (d, out) = timed(|| {
            let (tx, rx) = unbounded();
            for i in 0..n {
                let tx = tx.clone();
                pool.execute(move || {
                    let _ = tx.send((i, double(black_box(i as u64))));
                });
            }
            collect_indexed(&rx, n)
        });
        check_doubled(&out?, n as u64).map(|()| d)
    }))
}

/// `thread.tasks_*`: the plain crossbeam pool, `n` boxed jobs each sending `(index, result)`
/// on one shared channel.
///
/// # Errors
///
/// Never; the signature matches the other references.
pub fn crossbeam_tasks(n: usize) -> Made {
    let pool = CrossbeamPool::new(WORKERS);
    Ok(Box::new(move || {
        let (d, out) = timed(|| {
            let (tx, rx) = unbounded();
            for i in 0..n {
                let tx = tx.clone();
                pool.execute(move || {
                    let _ = tx.send((i, double(black_box(i as u64))));
                });
            }
            collect_indexed(&rx, n)
        });
        check_doubled(&out?, n as u64).map(|()| d)
    }))
}

/// `thread.map_*`: `items.par_iter().map(double).collect::<Vec<u64>>()` inside a rayon pool of
/// [`WORKERS`] threads.
///
/// # Errors
///
/// The pool could not be built.
pub fn rayon_par_iter_map(n: usize) -> Made {
    let pool = rayon_pool()?;
    let items: Vec<u64> = (0..n as u64).collect();
    Ok(Box::new(move || {
        let (d, out) =
            timed(|| pool.install(|| items.par_iter().map(|&x| double(x)).collect::<Vec<u64>>()));
        check_doubled(&out, n as u64).map(|()| d)
    }))
}

/// Runs `submit` on `submitters` scoped threads at once (they wait on a barrier before the
/// first submission), thread `t` given the indices `t * per..(t + 1) * per`, and concatenates
/// their results in thread order. Every subject of `thread.submit_*x*` goes through it, so the
/// threads' start and join cost the same for all.
///
/// # Errors
///
/// The first submitter's error, in thread order; a panicking submitter is an error too.
pub fn from_submitters(
    submitters: usize,
    per: usize,
    submit: impl Fn(Range<u64>) -> Result<Vec<u64>, String> + Sync,
) -> Result<Vec<u64>, String> {
    let start = Barrier::new(submitters);
    let (start, submit) = (&start, &submit);
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..submitters)
            .map(|t| {
                scope.spawn(move || {
                    start.wait();
                    let first = (t * per) as u64;
                    submit(first..first + per as u64)
                })
            })
            .collect();
        let mut out = Vec::with_capacity(submitters * per);
        for h in handles {
            let part = h.join().map_err(|_| "a submitter panicked".to_string())??;
            out.extend(part);
        }
        Ok(out)
    })
}

/// One submitter's `range` of tasks on `execute`: one job per index, each sending
/// `(index - range.start, double(index))` on the submitter's own channel; collected in order.
fn channel_submitter(
    range: Range<u64>,
    execute: impl Fn(Box<dyn FnOnce() + Send>),
) -> Result<Vec<u64>, String> {
    let (tx, rx) = unbounded();
    let first = range.start;
    let len = (range.end - range.start) as usize;
    for i in range {
        let tx = tx.clone();
        execute(Box::new(move || {
            let _ = tx.send(((i - first) as usize, double(black_box(i))));
        }));
    }
    collect_indexed(&rx, len)
}

/// `thread.submit_*x*`: the plain crossbeam pool, shared by `submitters` threads, each
/// submitting its `per` jobs and collecting `(index, result)` from its own channel.
///
/// # Errors
///
/// Never; the signature matches the other references.
pub fn crossbeam_submit_many(submitters: usize, per: usize) -> Made {
    let pool = CrossbeamPool::new(WORKERS);
    Ok(Box::new(move || {
        let (d, out) = timed(|| {
            from_submitters(submitters, per, |range| {
                channel_submitter(range, |job| pool.execute(job))
            })
        });
        check_doubled(&out?, (submitters * per) as u64).map(|()| d)
    }))
}

/// `thread.submit_*x*`: `rayon::ThreadPool::spawn` from `submitters` threads (rayon's
/// injector queue), each collecting `(index, result)` from its own channel.
///
/// # Errors
///
/// The pool could not be built.
pub fn rayon_spawn_submit_many(submitters: usize, per: usize) -> Made {
    let pool = rayon_pool()?;
    Ok(Box::new(move || {
        let (d, out) = timed(|| {
            from_submitters(submitters, per, |range| {
                channel_submitter(range, |job| pool.spawn(job))
            })
        });
        check_doubled(&out?, (submitters * per) as u64).map(|()| d)
    }))
}

/// `thread.submit_*x*`: each of `submitters` threads calls `rayon::ThreadPool::scope` with one
/// `s.spawn` per task writing its slot of the submitter's preallocated vector. The scope's body
/// runs on a pool thread, so the spawns are pushed onto that worker's own deque rather than
/// through the injector: rayon's cheapest way, not the same path as the 8 callers' own.
///
/// # Errors
///
/// The pool could not be built.
pub fn rayon_scope_submit_many(submitters: usize, per: usize) -> Made {
    let pool = rayon_pool()?;
    Ok(Box::new(move || {
        let (d, out) = timed(|| {
            from_submitters(submitters, per, |range| {
                let first = range.start;
                let mut out = vec![0u64; per];
                pool.scope(|s| {
                    for (k, slot) in out.iter_mut().enumerate() {
                        s.spawn(move |_| *slot = double(black_box(first + k as u64)));
                    }
                });
                Ok(out)
            })
        });
        check_doubled(&out?, (submitters * per) as u64).map(|()| d)
    }))
}

/// `process.work_*`, `rayon` (threads, not processes): `items.par_iter().map(burn)` over the
/// same `n` calls `burn((i, iters))` in a rayon pool of [`WORKERS`] threads, collected in
/// order.
///
/// # Errors
///
/// The pool could not be built.
pub fn rayon_par_iter_work(n: usize, per_task: Duration) -> Made {
    let iters = work_iters(per_task);
    let pool = rayon_pool()?;
    let items: Vec<u64> = (0..n as u64).collect();
    Ok(Box::new(move || {
        let (d, out) = timed(|| {
            pool.install(|| {
                items
                    .par_iter()
                    .map(|&i| burn((i, iters)))
                    .collect::<Vec<u64>>()
            })
        });
        check_burned(&out, n as u64, iters).map(|()| d)
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn submitters_cover_their_ranges_in_order() {
        let out = from_submitters(8, 5, |range| Ok(range.collect())).expect("no error");
        assert_eq!(out, (0..40).collect::<Vec<u64>>());
        let err = from_submitters(3, 2, |range| {
            if range.start == 2 {
                Err("second".to_string())
            } else {
                Ok(range.collect())
            }
        });
        assert_eq!(err, Err("second".to_string()));
    }
}
