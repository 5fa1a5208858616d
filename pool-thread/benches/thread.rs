//! Quick self-check benches: ThreadPool against rayon on the three comparison scenarios.
//! The side-by-side table comes from the `compare` binary in the `benches` package.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use pool_core::Executor;
use pool_thread::ThreadPool;

fn roundtrip(c: &mut Criterion) {
    let pool = ThreadPool::builder().build().unwrap();
    let rp = rayon::ThreadPoolBuilder::new().build().unwrap();
    let mut g = c.benchmark_group("thread.roundtrip");
    g.bench_function("pool", |b| {
        b.iter(|| pool.submit(|| black_box(1u64)).unwrap().result().unwrap())
    });
    g.bench_function("rayon_spawn_oneshot", |b| {
        b.iter(|| {
            let (tx, rx) = std::sync::mpsc::sync_channel(1);
            rp.spawn(move || {
                let _ = tx.send(black_box(1u64));
            });
            rx.recv().unwrap()
        })
    });
    g.finish();
}

fn tasks(c: &mut Criterion) {
    const N: u64 = 100_000;
    let pool = ThreadPool::builder().build().unwrap();
    let rp = rayon::ThreadPoolBuilder::new().build().unwrap();
    let mut g = c.benchmark_group("thread.tasks_100k");
    g.sample_size(10);
    g.bench_function("pool", |b| {
        b.iter(|| {
            let futs: Vec<_> = (0..N)
                .map(|i| pool.submit(move || i ^ 1).unwrap())
                .collect();
            futs.into_iter().map(|f| f.result().unwrap()).sum::<u64>()
        })
    });
    g.bench_function("rayon_scope_spawn", |b| {
        b.iter(|| {
            let mut out = vec![0u64; N as usize];
            rp.scope(|s| {
                for (i, o) in out.iter_mut().enumerate() {
                    s.spawn(move |_| *o = i as u64 ^ 1);
                }
            });
            out.iter().sum::<u64>()
        })
    });
    g.finish();
}

fn map(c: &mut Criterion) {
    use rayon::prelude::*;
    const N: u64 = 1_000_000;
    let pool = ThreadPool::builder().build().unwrap();
    let rp = rayon::ThreadPoolBuilder::new().build().unwrap();
    let mut g = c.benchmark_group("thread.map_1m");
    g.sample_size(20);
    g.bench_function("pool_map_collect", |b| {
        b.iter(|| {
            pool.map(|x: u64| x.wrapping_mul(3), 0..N)
                .collect::<Result<Vec<_>, _>>()
                .unwrap()
        })
    });
    g.bench_function("pool_map_all", |b| {
        b.iter(|| pool.map_all(|x: u64| x.wrapping_mul(3), 0..N).unwrap())
    });
    g.bench_function("rayon_par_iter", |b| {
        b.iter(|| {
            rp.install(|| {
                (0..N)
                    .into_par_iter()
                    .map(|x| x.wrapping_mul(3))
                    .collect::<Vec<_>>()
            })
        })
    });
    g.finish();
}

criterion_group!(benches, roundtrip, tasks, map);
criterion_main!(benches);
