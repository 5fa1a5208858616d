//! Criterion benches of the thread pools: round trip, many tasks, map; ours beside rayon.
//!
//! `cargo bench -p benches --bench thread`

use benches::criterion_glue::total;
use benches::ours;
use benches::refs::{Made, thread as rt};
use criterion::{Criterion, criterion_group, criterion_main};
use std::time::Duration;

/// Tasks per iteration of the `tasks` group (smaller than `compare`'s 1 M to keep criterion's
/// many samples affordable).
const TASKS: usize = 100_000;
/// Items per iteration of the `map` group.
const ITEMS: usize = 1_000_000;

fn group(c: &mut Criterion, name: &str, subjects: Vec<(&str, Made)>) {
    let mut g = c.benchmark_group(name);
    g.sample_size(20).measurement_time(Duration::from_secs(3));
    for (id, made) in subjects {
        let mut subject = made.unwrap_or_else(|e| panic!("{name}/{id}: {e}"));
        g.bench_function(id, |b| {
            b.iter_custom(|iters| total(subject.as_mut(), iters))
        });
    }
    g.finish();
}

fn roundtrip(c: &mut Criterion) {
    group(
        c,
        "thread.roundtrip",
        vec![
            ("ours", ours::thread_roundtrip()),
            ("rayon-spawn", rt::rayon_spawn_roundtrip()),
        ],
    );
}

fn tasks(c: &mut Criterion) {
    group(
        c,
        "thread.tasks_100k",
        vec![
            ("ours", ours::thread_tasks(TASKS)),
            ("rayon-scope", rt::rayon_scope_tasks(TASKS)),
        ],
    );
}

fn map(c: &mut Criterion) {
    group(
        c,
        "thread.map_1m",
        vec![
            ("ours", ours::thread_map(ITEMS)),
            ("rayon-par-iter", rt::rayon_par_iter_map(ITEMS)),
        ],
    );
}

criterion_group!(thread_benches, roundtrip, tasks, map);
criterion_main!(thread_benches);
