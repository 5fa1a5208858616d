//! The `compare` binary's output contract: with `--csv`, stdout holds exactly one
//! `scenario,ours_us,reference_name,reference_us,ratio` line per comparison and nothing else.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Runs `compare` with `args`, failing the test if it runs longer than 120 s.
fn compare(args: &[&str]) -> (bool, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_compare"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start compare");
    let mut out = child.stdout.take().expect("stdout");
    let mut err = child.stderr.take().expect("stderr");
    let out_reader = std::thread::spawn(move || {
        let mut s = String::new();
        out.read_to_string(&mut s).map(|_| s)
    });
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        err.read_to_string(&mut s).map(|_| s)
    });
    let deadline = Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for compare") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("compare {args:?} ran longer than 120 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let out = out_reader.join().expect("reader").expect("read stdout");
    let err = err_reader.join().expect("reader").expect("read stderr");
    (status.success(), out, err)
}

fn check_csv(out: &str, scenario: &str, references: &[&str]) {
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines.len(),
        references.len(),
        "one line per comparison:\n{out}"
    );
    for (line, reference) in lines.iter().zip(references) {
        let f: Vec<&str> = line.split(',').collect();
        assert_eq!(f.len(), 5, "five fields: {line}");
        assert_eq!(f[0], scenario);
        assert_eq!(f[2], *reference);
        let ours: f64 = f[1].parse().expect("ours_us is a number");
        let theirs: f64 = f[3].parse().expect("reference_us is a number");
        let ratio: f64 = f[4].parse().expect("ratio is a number");
        assert!(ours > 0.0 && theirs > 0.0, "{line}");
        assert_eq!(
            f[4].split('.').nth(1).map(str::len),
            Some(3),
            "3 decimals: {line}"
        );
        assert!(
            (ratio - ours / theirs).abs() <= 0.0005 + 1e-9 * ratio,
            "{line}"
        );
    }
}

#[test]
fn thread_roundtrip_csv_is_three_rows_and_nothing_else() {
    let (ok, out, err) = compare(&["--quick", "--csv", "--only", "thread.roundtrip"]);
    assert!(ok, "compare failed:\n{err}");
    check_csv(
        &out,
        "thread.roundtrip",
        &["rayon-spawn", "threadpool", "crossbeam-pool"],
    );
    assert!(
        err.contains("ours/ref"),
        "the human table goes to stderr:\n{err}"
    );
}

#[test]
fn process_roundtrip_csv_compares_with_the_floor_and_procspawn() {
    let (ok, out, err) = compare(&["--quick", "--csv", "--only", "process.roundtrip", "--exact"]);
    assert!(ok, "compare failed:\n{err}");
    check_csv(&out, "process.roundtrip", &["pipe-floor", "procspawn"]);
}

#[test]
fn unknown_arguments_and_empty_selections_are_errors() {
    let (ok, out, _) = compare(&["--bogus"]);
    assert!(!ok && out.is_empty());
    let (ok, out, _) = compare(&["--only", "no.such.scenario"]);
    assert!(!ok && out.is_empty());
}
