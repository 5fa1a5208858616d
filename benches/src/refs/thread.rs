//! Thread-pool references: rayon (`spawn` + oneshot, `scope.spawn`, `par_iter`), the
//! `threadpool` crate and the plain crossbeam pool, each with [`WORKERS`] threads.

use super::crossbeam_pool::CrossbeamPool;
use super::{Made, WORKERS};
use crate::measure::timed;
use crate::work::{check_doubled, double, noop};
use crossbeam_channel::{bounded, unbounded};
use rayon::prelude::*;
use std::hint::black_box;
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
