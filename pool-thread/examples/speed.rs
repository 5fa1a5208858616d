//! Quick speed check of the three comparison scenarios against rayon (medians of a few runs).
//! `cargo run --release -p pool-thread --example speed`

use std::hint::black_box;
use std::time::{Duration, Instant};

use pool_core::Executor;
use pool_thread::ThreadPool;
use rayon::prelude::*;

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn time<R>(runs: usize, mut f: impl FnMut() -> R) -> Duration {
    median(
        (0..runs)
            .map(|_| {
                let t = Instant::now();
                black_box(f());
                t.elapsed()
            })
            .collect(),
    )
}

fn main() {
    let pool = ThreadPool::builder().build().unwrap();
    let rp = rayon::ThreadPoolBuilder::new().build().unwrap();
    // roundtrip
    let n = 20_000;
    let a = time(5, || {
        for _ in 0..n {
            pool.submit(|| black_box(1u64)).unwrap().result().unwrap();
        }
    }) / n;
    let b = time(5, || {
        for _ in 0..n {
            let (tx, rx) = std::sync::mpsc::sync_channel(1);
            rp.spawn(move || {
                let _ = tx.send(black_box(1u64));
            });
            rx.recv().unwrap();
        }
    }) / n;
    println!(
        "roundtrip pool {a:?} rayon {b:?} ratio {:.2}",
        a.as_secs_f64() / b.as_secs_f64()
    );
    // tasks_1m: alternate the two, pair them, report the median of paired ratios (the host
    // is shared, its speed drifts).
    const M: u64 = 1_000_000;
    let mut ratios = Vec::new();
    let (mut ta, mut tb) = (Vec::new(), Vec::new());
    for _ in 0..7 {
        let a = time(1, || {
            let futs: Vec<_> = (0..M)
                .map(|i| pool.submit(move || i ^ 1).unwrap())
                .collect();
            futs.into_iter().map(|f| f.result().unwrap()).sum::<u64>()
        });
        let b = time(1, || {
            let mut out = vec![0u64; M as usize];
            rp.scope(|s| {
                for (i, o) in out.iter_mut().enumerate() {
                    s.spawn(move |_| *o = i as u64 ^ 1);
                }
            });
            out.iter().sum::<u64>()
        });
        ratios.push(a.as_secs_f64() / b.as_secs_f64());
        ta.push(a);
        tb.push(b);
    }
    ratios.sort_by(|x, y| x.partial_cmp(y).unwrap());
    println!(
        "tasks_1m pool {:?} rayon {:?} paired ratio median {:.2} (min {:.2})",
        median(ta),
        median(tb),
        ratios[ratios.len() / 2],
        ratios[0]
    );
    // map_1m
    let items: Vec<u64> = (0..M).collect();
    let a = time(15, || {
        pool.map(|x: u64| x.wrapping_mul(3), 0..M)
            .collect::<Result<Vec<_>, _>>()
            .unwrap()
    });
    let a2 = time(15, || {
        pool.map_all(|x: u64| x.wrapping_mul(3), 0..M).unwrap()
    });
    let a3 = time(15, || {
        pool.map_slice(|&x: &u64| x.wrapping_mul(3), &items)
            .unwrap()
    });
    let a4 = time(15, || {
        pool.map_all(|x: u64| x.wrapping_mul(3), items.clone())
            .unwrap()
    });
    let b = time(15, || {
        rp.install(|| {
            items
                .par_iter()
                .map(|&x| x.wrapping_mul(3))
                .collect::<Vec<_>>()
        })
    });
    let r = |a: Duration| a.as_secs_f64() / b.as_secs_f64();
    println!(
        "map_1m rayon par_iter {b:?}; map(range) {a:?} ({:.2}) map_all(range) {a2:?} ({:.2}) \
         map_slice {a3:?} ({:.2}) map_all(vec.clone()) {a4:?} ({:.2})",
        r(a),
        r(a2),
        r(a3),
        r(a4)
    );
}
