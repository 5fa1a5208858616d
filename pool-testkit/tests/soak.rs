//! Soak: `POOL_SOAK_TASKS` tasks (default 5 000) on one `ProcessPool`, about 1 % of them
//! carrying a random fault of a random kind in a random phase. Every outcome is checked
//! against what DESIGN §8 promises; afterwards descriptors and child processes are back to
//! where they started and the parent's resident memory did not grow past a margin.
//!
//! `POOL_SOAK_SEED` replays a run (the seed is printed).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use pool_core::{Executor, Future, RemoteError, Shutdown, SubmitOptions};
use pool_process::ProcessPool;
use pool_testkit::faults::{self, Fault, Faulty, Phase};
use pool_testkit::harness;
use pool_testkit::leaks;
use pool_testkit::matrix::expect_for;
use pool_testkit::rng::Rng;

const BOUND: Duration = Duration::from_secs(30);
const WINDOW: usize = 64;
/// Growth of the parent's RSS, after warm-up, that counts as a leak.
const RSS_MARGIN: u64 = 48 << 20;

enum Pending {
    Plain(u64, Future<u64>),
    Codec(Fault, Phase, Future<Faulty>),
    Task(Fault, Future<Result<u64, RemoteError>>),
}

#[derive(Default, Debug)]
struct Tally {
    ok: u64,
    faults: u64,
    by_kind: std::collections::BTreeMap<String, u64>,
}

fn settle(p: Pending, tally: &mut Tally) {
    match p {
        Pending::Plain(x, f) => match f.result_timeout(BOUND) {
            Ok(Ok(v)) if v == x => tally.ok += 1,
            Ok(other) => panic!("plain task {x} resolved as {other:?}"),
            Err(f) => panic!("plain task {x} unresolved after {BOUND:?}: {:?}", f.state()),
        },
        Pending::Codec(fault, phase, f) => {
            let what = format!("{} in {}", fault.name(), phase.name());
            let r = f
                .result_timeout(BOUND)
                .unwrap_or_else(|f| panic!("{what}: unresolved after {BOUND:?}: {:?}", f.state()));
            expect_for(fault, Some(phase)).check(&what, &r.map(|v| v.payload));
            tally.faults += 1;
            *tally
                .by_kind
                .entry(kind_place(fault, phase.name()))
                .or_default() += 1;
        }
        Pending::Task(fault, f) => {
            let what = format!("{} in the task", fault.name());
            let r = f
                .result_timeout(BOUND)
                .unwrap_or_else(|f| panic!("{what}: unresolved after {BOUND:?}: {:?}", f.state()));
            match (fault, r) {
                (Fault::Error, Ok(Err(e))) => assert!(e.message().contains("injected"), "{e}"),
                (Fault::Error, other) => panic!("{what}: {other:?}"),
                (_, r) => expect_for(fault, None).check(&what, &r.map(|_| 0)),
            }
            tally.faults += 1;
            *tally
                .by_kind
                .entry(kind_place(fault, "the task"))
                .or_default() += 1;
        }
    }
}

/// `"<kind> in <place>"`, with every exit code counted as one kind.
fn kind_place(fault: Fault, place: &str) -> String {
    let kind = match fault {
        Fault::Exit(_) => "exit(n)".to_owned(),
        f => f.name(),
    };
    format!("{kind} in {place}")
}

fn opts(fault: Fault) -> SubmitOptions {
    if fault == Fault::Hang {
        SubmitOptions::new().timeout(Duration::from_millis(300))
    } else {
        SubmitOptions::new()
    }
}

/// A random fault and where to put it: `None` = in the task itself.
fn pick(rng: &mut Rng) -> (Fault, Option<Phase>) {
    let mut fault = Fault::ALL[rng.below(Fault::ALL.len() as u64) as usize];
    if let Fault::Exit(_) = fault {
        fault = Fault::Exit(1 + rng.below(100) as i32);
    }
    let places: Vec<Option<Phase>> = if fault.ends_process() {
        vec![None, Some(Phase::WorkerDecode), Some(Phase::WorkerEncode)]
    } else {
        vec![
            None,
            Some(Phase::ParentEncode),
            Some(Phase::WorkerDecode),
            Some(Phase::WorkerEncode),
            Some(Phase::ParentDecode),
        ]
    };
    (fault, places[rng.below(places.len() as u64) as usize])
}

#[test]
fn soak_with_one_percent_faults() {
    let n: u64 = std::env::var("POOL_SOAK_TASKS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5_000);
    let seed = pool_testkit::rng::seed_from_env("POOL_SOAK_SEED");
    eprintln!("soak: {n} tasks, seed {seed} (POOL_SOAK_SEED={seed} replays it)");
    let limit = Duration::from_secs(120) + Duration::from_millis(n);
    let guard = harness::start("soak", limit);
    let mut rng = Rng::new(seed);
    let pool = ProcessPool::builder()
        .max_workers(2)
        .build()
        .expect("valid pool");
    let started = Instant::now();
    let mut window: VecDeque<Pending> = VecDeque::new();
    let mut tally = Tally::default();
    let mut parent_refusals = 0u64;
    let warm = (n / 20).max(200).min(n);
    let mut rss_warm = None;
    for i in 0..n {
        if i == warm {
            while let Some(p) = window.pop_front() {
                settle(p, &mut tally);
            }
            // A panic in the parent (parent-side faults) symbolizes a backtrace when
            // RUST_BACKTRACE is set, which loads this binary's debug info once (~75 MiB in a
            // debug build): do it now, so it is part of the baseline and not a "leak".
            let _ = std::backtrace::Backtrace::force_capture().to_string();
            rss_warm = leaks::rss_bytes();
        }
        if i > 0 && i % (n / 10).max(1) == 0 {
            eprintln!(
                "soak: {i}/{n} after {:?}, parent RSS {:?}, {} descendants",
                started.elapsed(),
                leaks::rss_bytes(),
                leaks::descendants().len()
            );
        }
        if window.len() >= WINDOW {
            let p = window.pop_front().expect("non-empty");
            settle(p, &mut tally);
        }
        if rng.below(100) != 0 {
            let f = pool.submit(faults::ok, i).expect("plain submit");
            window.push_back(Pending::Plain(i, f));
            continue;
        }
        let (fault, place) = pick(&mut rng);
        match place {
            None => {
                let f = pool
                    .submit_with(faults::run_fault, fault, opts(fault))
                    .expect("submit");
                window.push_back(Pending::Task(fault, f));
            }
            Some(Phase::ParentEncode) => {
                let arg = Faulty::new(fault, Phase::ParentEncode, i);
                let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    pool.submit(faults::pass_through, arg)
                }));
                match (fault, r) {
                    // An error or a panic in Serialize alike: refused at submit.
                    (Fault::Error | Fault::Panic, Ok(Err(e))) => {
                        assert!(e.to_string().contains("injected"), "{e}")
                    }
                    (_, Ok(Ok(f))) => panic!("parent encode {fault:?} accepted: {:?}", f.state()),
                    (_, Ok(Err(e))) => panic!("parent encode {fault:?} refused oddly: {e}"),
                    (_, Err(_)) => panic!("parent encode {fault:?} panicked"),
                }
                parent_refusals += 1;
            }
            Some(phase) => {
                let f = pool
                    .submit_with(
                        faults::pass_through,
                        Faulty::new(fault, phase, i),
                        opts(fault),
                    )
                    .expect("submit");
                window.push_back(Pending::Codec(fault, phase, f));
            }
        }
    }
    while let Some(p) = window.pop_front() {
        settle(p, &mut tally);
    }
    let elapsed = started.elapsed();
    let rss_end = leaks::rss_bytes();
    let stats = pool.stats();
    eprintln!(
        "soak: {} ok, {} faults checked, {parent_refusals} refused in the parent, {:?} ({:.0} tasks/s); stats {stats:?}",
        tally.ok,
        tally.faults,
        elapsed,
        n as f64 / elapsed.as_secs_f64()
    );
    eprintln!("soak: faults by kind and place: {:?}", tally.by_kind);
    eprintln!("soak: parent RSS after warm-up {rss_warm:?}, at the end {rss_end:?}");
    assert_eq!(
        tally.ok + tally.faults + parent_refusals,
        n,
        "every task accounted for"
    );
    if let (Some(w), Some(e)) = (rss_warm, rss_end) {
        assert!(
            e <= w + RSS_MARGIN,
            "parent RSS grew from {w} to {e} bytes over the soak"
        );
    }
    let report = pool.shutdown(Shutdown::Wait);
    assert_eq!(report.unfinished_workers, 0, "{report:?}");
    drop(pool);
    guard.finish();
}
