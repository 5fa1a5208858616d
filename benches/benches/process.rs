//! Criterion benches of the process pool: round trip (every transport) and map, ours beside
//! the raw pipe floor. The bench binary itself is the worker: pool-process's pre-main hook turns it into
//! one, and the floor's child mode is checked first thing in `main`.
//!
//! `cargo bench -p benches --bench process`

use benches::criterion_glue::total;
use benches::ours::{self, PROCESS_VARIANTS, RoundTrip};
use benches::refs::{Made, process as rp};
use criterion::Criterion;
use std::time::Duration;

/// Items per iteration of the `map` group.
const ITEMS: usize = 100_000;

fn group(c: &mut Criterion, name: &str, subjects: Vec<(String, Made)>) {
    let mut g = c.benchmark_group(name);
    g.sample_size(20).measurement_time(Duration::from_secs(3));
    for (id, made) in subjects {
        let mut subject = made.unwrap_or_else(|e| panic!("{name}/{id}: {e}"));
        g.bench_function(&id, |b| {
            b.iter_custom(|iters| total(subject.as_mut(), iters))
        });
    }
    g.finish();
}

fn main() {
    // A floor child serves and exits here.
    benches::floor::run_child_if_requested();
    let mut c = Criterion::default().configure_from_args();
    let pipes = &PROCESS_VARIANTS[0];
    let mut roundtrips = Vec::new();
    for v in PROCESS_VARIANTS {
        let name = v.suffix.map_or("ours".to_string(), |s| format!("ours-{s}"));
        for (how, tag) in [(RoundTrip::Apply, ""), (RoundTrip::Submit, "-submit")] {
            roundtrips.push((format!("{name}{tag}"), ours::process_roundtrip(v, how)));
        }
    }
    roundtrips.push(("pipe-floor".to_string(), rp::pipe_roundtrip()));
    group(&mut c, "process.roundtrip", roundtrips);
    group(
        &mut c,
        "process.map_100k",
        vec![
            ("ours".to_string(), ours::process_map(pipes, ITEMS)),
            ("pipe-floor".to_string(), rp::frame_floor_map(ITEMS)),
        ],
    );
    c.final_summary();
}
