//! The table of scenarios: for each, what one operation is, how often to repeat it, how to
//! build our subject and each reference's.
//!
//! Process scenarios are built per transport variant ([`PROCESS_VARIANTS`]): the default
//! transport gives the plain ids (`process.roundtrip`), every further entry adds rows with the
//! transport's name as a suffix (`process.roundtrip.shm`).

use crate::measure::Plan;
use crate::ours;
use crate::refs::{Made, nats as rn, process as rp, thread as rt};
use pool_process::StartMethod;
use std::time::Duration;

/// Builds one subject.
pub type Factory = Box<dyn Fn() -> Made>;

/// A reference of a scenario.
pub struct Reference {
    /// Its name in the CSV, e.g. `rayon-spawn`.
    pub name: &'static str,
    /// Builds its subject.
    pub make: Factory,
}

/// One scenario of the comparison.
pub struct Scenario {
    /// The id in the CSV, e.g. `thread.roundtrip`.
    pub id: String,
    /// What one operation is, in a sentence.
    pub what: &'static str,
    /// Repetitions with `--quick`.
    pub quick: Plan,
    /// Repetitions without `--quick`.
    pub full: Plan,
    /// Bytes moved by one operation, when the table should show a throughput.
    pub bytes: Option<u64>,
    /// Builds our subject.
    pub ours: Factory,
    /// The references, in output order.
    pub refs: Vec<Reference>,
}

impl std::fmt::Debug for Scenario {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scenario")
            .field("id", &self.id)
            .field(
                "refs",
                &self.refs.iter().map(|r| r.name).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

/// Tasks in `thread.tasks_1m` and items in `thread.map_1m`.
pub const THREAD_N: usize = 1_000_000;
/// Tasks in `process.tasks_100k` and items in `process.map_100k`.
pub const PROCESS_N: usize = 100_000;
/// Payload of `process.bytes_64m`.
pub const BYTES_LEN: usize = 64 << 20;
/// Tasks in `process.work_10k_100us`.
pub const WORK_N: usize = 10_000;
/// Tasks in `process.work_1k_1ms` (a tenth of [`WORK_N`], so that one batch is as long).
pub const WORK_1MS_N: usize = 1_000;
/// Submitting threads in `thread.submit_8x100k`.
pub const SUBMITTERS: usize = 8;
/// Tasks each submitter of `thread.submit_8x100k` submits (100 000 in all).
pub const SUBMIT_PER: usize = 12_500;
/// Tasks in `nats.tasks_10k`.
pub const NATS_N: usize = 10_000;

fn reference(name: &'static str, make: impl Fn() -> Made + 'static) -> Reference {
    Reference {
        name,
        make: Box::new(make),
    }
}

/// The process-pool variants measured: the default transport (no suffix), then one entry per
/// further transport, each a suffix for the scenario id and a way to configure our pool.
pub const PROCESS_VARIANTS: &[ours::ProcessVariant] = ours::PROCESS_VARIANTS;

fn thread_scenarios() -> Vec<Scenario> {
    vec![
        Scenario {
            id: "thread.roundtrip".into(),
            what: "one no-op task submitted and its result awaited, one after the other",
            quick: Plan::new(200, 5_000, 500),
            full: Plan::new(1_000, 50_000, 1_000),
            bytes: None,
            ours: Box::new(ours::thread_roundtrip),
            refs: vec![
                reference("rayon-spawn", rt::rayon_spawn_roundtrip),
                reference("threadpool", rt::threadpool_roundtrip),
                reference("crossbeam-pool", rt::crossbeam_roundtrip),
            ],
        },
        Scenario {
            id: "thread.tasks_1m".into(),
            what: "1 M tiny tasks, each with its own result, all collected",
            quick: Plan::new(1, 3, 1),
            full: Plan::new(2, 11, 1),
            bytes: None,
            ours: Box::new(|| ours::thread_tasks(THREAD_N)),
            refs: vec![
                reference("rayon-scope", || rt::rayon_scope_tasks(THREAD_N)),
                reference("threadpool", || rt::threadpool_tasks(THREAD_N)),
                reference("crossbeam-pool", || rt::crossbeam_tasks(THREAD_N)),
            ],
        },
        Scenario {
            id: "thread.map_1m".into(),
            what: "map_all of x*2 over a Vec of 1 M u64 handed by value, collected into a Vec in order",
            quick: Plan::new(5, 31, 5),
            full: Plan::new(10, 201, 10),
            bytes: None,
            ours: Box::new(|| ours::thread_map(THREAD_N)),
            refs: vec![reference("rayon-par-iter", || {
                rt::rayon_par_iter_map(THREAD_N)
            })],
        },
        Scenario {
            id: "thread.map_iter_1m".into(),
            what: "map_all of x*2 over a borrowing iterator of 1 M u64 (the caller copies the input first)",
            quick: Plan::new(5, 31, 5),
            full: Plan::new(10, 201, 10),
            bytes: None,
            ours: Box::new(|| ours::thread_map_iter(THREAD_N)),
            refs: vec![reference("rayon-par-iter", || {
                rt::rayon_par_iter_map(THREAD_N)
            })],
        },
        Scenario {
            id: "thread.map_slice_1m".into(),
            what: "ThreadPool::map_slice of x*2 over a borrowed slice of 1 M u64, into a Vec",
            quick: Plan::new(5, 31, 5),
            full: Plan::new(10, 201, 10),
            bytes: None,
            ours: Box::new(|| ours::thread_map_slice(THREAD_N)),
            refs: vec![reference("rayon-par-iter", || {
                rt::rayon_par_iter_map(THREAD_N)
            })],
        },
        Scenario {
            id: "thread.submit_8x100k".into(),
            what: "8 threads at once submitting 12 500 tiny tasks each (100 k in all), each \
                   task its own future, all collected",
            quick: Plan::new(2, 15, 3),
            full: Plan::new(5, 101, 5),
            bytes: None,
            ours: Box::new(|| ours::thread_submit_many(SUBMITTERS, SUBMIT_PER)),
            refs: vec![
                reference("crossbeam-pool", || {
                    rt::crossbeam_submit_many(SUBMITTERS, SUBMIT_PER)
                }),
                reference("rayon-spawn", || {
                    rt::rayon_spawn_submit_many(SUBMITTERS, SUBMIT_PER)
                }),
                reference("rayon-scope", || {
                    rt::rayon_scope_submit_many(SUBMITTERS, SUBMIT_PER)
                }),
            ],
        },
    ]
}

fn process_scenarios(v: &'static ours::ProcessVariant) -> Vec<Scenario> {
    let id = |base: &str| match v.suffix {
        Some(s) => format!("{base}.{s}"),
        None => base.to_string(),
    };
    let mut out = vec![
        Scenario {
            id: id("process.roundtrip"),
            what: "one no-op task (u64 in, u64 out) run and awaited, one after the other: \
                   `pool.apply(noop, x)`",
            quick: Plan::new(100, 2_000, 250),
            full: Plan::new(500, 20_000, 1_000),
            bytes: None,
            ours: Box::new(move || ours::process_roundtrip(v, ours::RoundTrip::Apply)),
            refs: vec![
                reference("pipe-floor", rp::pipe_roundtrip),
                reference("procspawn", rp::procspawn_roundtrip),
            ],
        },
        Scenario {
            id: format!("{}.submit", id("process.roundtrip")),
            what: "the same round trip as `pool.submit(noop, x)?.result()`, through the \
                   pool's engine thread",
            quick: Plan::new(100, 2_000, 250),
            full: Plan::new(500, 20_000, 1_000),
            bytes: None,
            ours: Box::new(move || ours::process_roundtrip(v, ours::RoundTrip::Submit)),
            refs: vec![
                reference("pipe-floor", rp::pipe_roundtrip),
                reference("procspawn", rp::procspawn_roundtrip),
            ],
        },
        Scenario {
            id: id("process.tasks_100k"),
            what: "100 k tiny tasks submitted one by one, each its own future, all collected",
            // procspawn needs 2-6 s per batch here: in --quick a subject stops after ~3 s.
            quick: Plan::new(0, 3, 1).with_budget(Duration::from_secs(3)),
            full: Plan::new(1, 9, 1).with_budget(Duration::from_secs(30)),
            bytes: None,
            ours: Box::new(move || ours::process_tasks(v, PROCESS_N)),
            refs: vec![
                reference("pipe-floor", || rp::frame_floor_tasks(PROCESS_N)),
                reference("sequential-pingpong", || {
                    rp::sequential_pingpong_tasks(PROCESS_N)
                }),
                reference("procspawn", || rp::procspawn_tasks(PROCESS_N)),
            ],
        },
        Scenario {
            id: id("process.map_100k"),
            what: "map of x*2 over 100 k u64 (chunked), collected into a Vec in order",
            quick: Plan::new(3, 21, 3),
            full: Plan::new(10, 201, 10),
            bytes: None,
            ours: Box::new(move || ours::process_map(v, PROCESS_N)),
            refs: vec![
                reference("pipe-floor", || rp::frame_floor_map(PROCESS_N)),
                reference("raw-chunks", || rp::raw_chunks_map(PROCESS_N)),
                reference("procspawn", || rp::procspawn_map(PROCESS_N)),
            ],
        },
        Scenario {
            id: id("process.bytes_64m"),
            what: "a 64 MiB byte vector sent to a worker, which returns its length",
            quick: Plan::new(1, 5, 1),
            full: Plan::new(2, 21, 1),
            bytes: Some(BYTES_LEN as u64),
            ours: Box::new(move || ours::process_bytes(v, BYTES_LEN)),
            refs: vec![
                reference("pipe-floor", || rp::pipe_bytes(BYTES_LEN)),
                reference("procspawn", || rp::procspawn_bytes(BYTES_LEN)),
            ],
        },
    ];
    // A cold start does not depend on how tasks travel once the pool is up, except for the
    // transport's own set-up, so every variant gets it.
    out.push(Scenario {
        id: id("process.cold_start"),
        what: "build a pool of 2 workers and get the first result",
        quick: Plan::new(2, 15, 3),
        full: Plan::new(5, 101, 5),
        bytes: None,
        ours: Box::new(move || ours::process_cold_start(v, StartMethod::default())),
        refs: vec![
            reference("spawn-floor", rp::spawn_floor_cold_start),
            reference("procspawn", rp::procspawn_cold_start),
        ],
    });
    if v.suffix.is_none() {
        // The default start method reuses the process's fork server: the same figure with
        // every worker exec'd, and the first pool of a process (the server's exec included).
        out.push(Scenario {
            id: "process.cold_start.spawn".to_string(),
            what: "as process.cold_start, every worker exec'd (StartMethod::Spawn)",
            quick: Plan::new(2, 15, 3),
            full: Plan::new(5, 101, 5),
            bytes: None,
            ours: Box::new(move || ours::process_cold_start(v, StartMethod::Spawn)),
            refs: vec![
                reference("spawn-floor", rp::spawn_floor_cold_start),
                reference("procspawn", rp::procspawn_cold_start),
            ],
        });
        out.push(Scenario {
            id: "process.cold_start.first".to_string(),
            what: "as process.cold_start, for the first pool of a fresh process (fork server started)",
            quick: Plan::new(1, 9, 1),
            full: Plan::new(2, 41, 1),
            bytes: None,
            ours: Box::new(ours::process_cold_start_first),
            refs: vec![
                reference("spawn-floor", rp::spawn_floor_cold_start),
                reference("procspawn", rp::procspawn_cold_start),
            ],
        });
    }
    if v.suffix.is_none() {
        // CPU-bound work: the pool's overhead against real work, on the default transport.
        for (id, n, per_task, what) in [
            (
                "process.work_10k_100us",
                WORK_N,
                Duration::from_micros(100),
                "10 k tasks of ~100 µs of CPU each (calibrated busy loop), submitted one by one, \
                 all collected",
            ),
            (
                "process.work_1k_1ms",
                WORK_1MS_N,
                Duration::from_millis(1),
                "1 k tasks of ~1 ms of CPU each (calibrated busy loop), submitted one by one, \
                 all collected",
            ),
        ] {
            out.push(Scenario {
                id: id.to_string(),
                what,
                // One batch is ~0.5 s of two busy cores per subject.
                quick: Plan::new(0, 3, 1),
                full: Plan::new(1, 11, 1),
                bytes: None,
                ours: Box::new(move || ours::process_work(v, n, per_task)),
                refs: vec![
                    reference("ideal", move || rp::ideal_work(n, per_task)),
                    reference("procspawn", move || rp::procspawn_work(n, per_task)),
                    reference("rayon", move || rt::rayon_par_iter_work(n, per_task)),
                ],
            });
        }
    }
    if v.suffix.is_some() {
        // Further transports are compared with the floors; procspawn once, on the default.
        for s in &mut out {
            s.refs.retain(|r| r.name.ends_with("-floor"));
        }
    }
    out
}

/// Named tasks through a NATS server (pool-nats), our worker in this process.
fn nats_scenarios() -> Vec<Scenario> {
    vec![
        Scenario {
            id: "nats.roundtrip".into(),
            what: "one named task (u64 in, u64 out) through a NATS server to a worker in this \
                   process and back, awaited, one after the other",
            quick: Plan::new(20, 300, 50),
            full: Plan::new(100, 3_000, 250),
            bytes: None,
            ours: Box::new(ours::nats_roundtrip),
            refs: vec![
                reference("process-pool", rn::process_named_roundtrip),
                reference("nats-floor", rn::floor_roundtrip),
            ],
        },
        Scenario {
            id: "nats.tasks_10k".into(),
            what: "10 k tiny named tasks submitted one by one through a NATS server, each its \
                   own future, all collected",
            // In --quick each NATS subject runs one batch (the local pool three, quickly).
            quick: Plan::new(0, 3, 1).with_budget(Duration::from_millis(500)),
            full: Plan::new(1, 9, 1).with_budget(Duration::from_secs(30)),
            bytes: None,
            ours: Box::new(|| ours::nats_tasks(NATS_N)),
            refs: vec![
                reference("process-pool", || rn::process_named_tasks(NATS_N)),
                reference("nats-floor", || rn::floor_tasks(NATS_N)),
            ],
        },
    ]
}

/// Every scenario: thread ones first, then the process ones per variant, then the NATS ones.
pub fn scenarios() -> Vec<Scenario> {
    let mut out = thread_scenarios();
    for v in PROCESS_VARIANTS {
        out.extend(process_scenarios(v));
    }
    out.extend(nats_scenarios());
    debug_assert!(out.iter().all(|s| !s.refs.is_empty()));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_and_every_scenario_has_references() {
        let all = scenarios();
        let mut ids: Vec<_> = all.iter().map(|s| s.id.clone()).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), all.len());
        for id in [
            "thread.roundtrip",
            "thread.tasks_1m",
            "thread.map_1m",
            "thread.submit_8x100k",
            "process.roundtrip",
            "process.tasks_100k",
            "process.map_100k",
            "process.bytes_64m",
            "process.cold_start",
            "process.work_10k_100us",
            "process.work_1k_1ms",
            "nats.roundtrip",
            "nats.tasks_10k",
        ] {
            assert!(ids.iter().any(|i| i == id), "{id} missing");
        }
    }
}
