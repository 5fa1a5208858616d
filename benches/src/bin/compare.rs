//! `compare`: our pools against rayon, threadpool, a plain crossbeam pool, procspawn and the
//! raw pipe, spawn and NATS floors, all measured in one run on this machine.
//!
//! ```text
//! cargo run --release -p benches --bin compare -- [--quick] [--csv] [--only <prefix> [--exact]]
//! ```
//!
//! With `--csv`, stdout carries exactly one line per comparison,
//! `scenario,ours_us,reference_name,reference_us,ratio`, and the human table goes to stderr;
//! without it the table goes to stdout. The exit status is 1 if any subject failed.

use benches::measure::measure_interleaved;
use benches::report::{Row, table};
use benches::scenarios::scenarios;
use benches::{Subject, floor};
use std::io::Write;
use std::process::ExitCode;
use std::time::{Duration, Instant};

// The named tasks of the `nats.*` rows: the NATS worker's local process pool runs them in
// workers that are this binary.
pool_process::named_task!("bench-noop", benches::work::noop);
pool_process::named_task!("bench-double", benches::work::double);

struct Args {
    quick: bool,
    csv: bool,
    only: Option<String>,
    subject: Option<String>,
    list: bool,
    plan: bool,
    exact: bool,
}

const USAGE: &str =
    "usage: compare [--quick] [--csv] [--only <scenario prefix> [--exact]] [--list | --plan]
       compare [--quick] [--only <scenario prefix> [--exact]] --subject <ours|reference name>
  --exact makes --only match the whole scenario id
  --list prints the scenarios; --plan prints `id warm-up reps per-round` for each
  --subject runs one subject alone (for profilers) and prints its medians to stderr";

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        quick: false,
        csv: false,
        only: None,
        subject: None,
        list: false,
        plan: false,
        exact: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--quick" => args.quick = true,
            "--csv" => args.csv = true,
            "--list" => args.list = true,
            "--plan" => args.plan = true,
            "--exact" => args.exact = true,
            "--only" => args.only = Some(it.next().ok_or("--only needs a scenario prefix")?),
            "--subject" => args.subject = Some(it.next().ok_or("--subject needs a name")?),
            "-h" | "--help" => return Err(USAGE.to_string()),
            // `cargo bench` passes `--bench` to every bench target; ignore it.
            "--bench" => {}
            other => return Err(format!("unknown argument {other:?}\n{USAGE}")),
        }
    }
    Ok(args)
}

fn main() -> ExitCode {
    // A floor child serves and exits here; procspawn's children run their task in `init`.
    floor::run_child_if_requested();
    benches::ours::run_first_pool_child_if_requested();
    procspawn::init();

    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let selected: Vec<_> = scenarios()
        .into_iter()
        .filter(|s| {
            args.only.as_ref().is_none_or(|p| {
                if args.exact {
                    s.id == *p
                } else {
                    s.id.starts_with(p.as_str())
                }
            })
        })
        .collect();
    if args.list {
        for s in &selected {
            let refs: Vec<_> = s.refs.iter().map(|r| r.name).collect();
            println!("{:<22} {}  [vs {}]", s.id, s.what, refs.join(", "));
        }
        return ExitCode::SUCCESS;
    }
    if args.plan {
        for s in &selected {
            let p = if args.quick { s.quick } else { s.full };
            println!("{} {} {} {}", s.id, p.warmup, p.reps, p.per_round);
        }
        return ExitCode::SUCCESS;
    }
    if selected.is_empty() {
        eprintln!("no scenario matches {:?}", args.only.unwrap_or_default());
        return ExitCode::from(2);
    }

    if let Some(name) = &args.subject {
        return run_one_subject(&selected, name, args.quick);
    }

    let started = Instant::now();
    let mut rows: Vec<Row> = Vec::new();
    let mut failed = false;
    for s in &selected {
        let plan = if args.quick { s.quick } else { s.full };
        let t0 = Instant::now();
        eprint!("{:<24}", s.id);
        let _ = std::io::stderr().flush();
        // Build every subject first (pools, children, warm-up), then measure them in turns.
        let mut ours = (s.ours)();
        let mut theirs: Vec<_> = s.refs.iter().map(|r| (r.make)()).collect();
        let mut live: Vec<&mut dyn Subject> = Vec::new();
        if let Ok(o) = ours.as_mut() {
            live.push(o.as_mut());
        }
        for t in theirs.iter_mut().flatten() {
            live.push(t.as_mut());
        }
        let mut medians = measure_interleaved(&mut live, plan).into_iter();
        drop(live);
        let ours_median: Result<Duration, String> = match &ours {
            Ok(_) => medians.next().expect("one median per subject"),
            Err(e) => Err(e.clone()),
        };
        let mut new_rows = Vec::new();
        for (r, t) in s.refs.iter().zip(&theirs) {
            let theirs_median = match t {
                Ok(_) => medians.next().expect("one median per subject"),
                Err(e) => Err(e.clone()),
            };
            new_rows.push(Row {
                scenario: s.id.clone(),
                ours: ours_median.clone(),
                reference: r.name.to_string(),
                theirs: theirs_median,
                bytes: s.bytes,
            });
        }
        // Tear down (pools, children) before the next scenario starts.
        drop(ours);
        drop(theirs);
        eprintln!("{:>6.1} s", t0.elapsed().as_secs_f64());
        if let Err(e) = &ours_median {
            eprintln!("  ours failed: {e}");
        }
        for r in &new_rows {
            if let Err(e) = &r.theirs {
                eprintln!("  {} failed: {e}", r.reference);
            }
            failed |= !r.is_complete();
            if args.csv {
                println!("{}", r.csv());
            }
        }
        let _ = std::io::stdout().flush();
        rows.extend(new_rows);
    }
    let t = table(&rows);
    let mode = if args.quick { "--quick" } else { "full" };
    let footer = format!(
        "{} scenarios, {} comparisons, {mode} run in {:.1} s",
        selected.len(),
        rows.len(),
        started.elapsed().as_secs_f64()
    );
    if args.csv {
        eprint!("\n{t}");
        eprintln!("{footer}");
    } else {
        print!("\n{t}");
        println!("{footer}");
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// `--subject`: measures only the named subject of each selected scenario (the ones that have
/// it), printing each median to stderr; for profilers, which should see nothing else.
fn run_one_subject(selected: &[benches::Scenario], name: &str, quick: bool) -> ExitCode {
    let mut failed = false;
    let mut any = false;
    for s in selected {
        let make = if name == "ours" {
            Some(&s.ours)
        } else {
            s.refs.iter().find(|r| r.name == name).map(|r| &r.make)
        };
        let Some(make) = make else { continue };
        any = true;
        let plan = if quick { s.quick } else { s.full };
        let median = make().and_then(|mut subject| {
            measure_interleaved(&mut [subject.as_mut()], plan)
                .pop()
                .expect("one median for one subject")
        });
        match median {
            Ok(d) => eprintln!("{:<24}{name}: {:.3} µs", s.id, d.as_secs_f64() * 1e6),
            Err(e) => {
                failed = true;
                eprintln!("{:<24}{name} failed: {e}", s.id);
            }
        }
    }
    if !any {
        eprintln!("no selected scenario has a subject named {name:?}");
        return ExitCode::from(2);
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
