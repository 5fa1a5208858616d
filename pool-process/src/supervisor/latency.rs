use std::process::{Command, Stdio};
use std::time::Instant;

use crate::protocol::Outcome;
use crate::transfer;
use crate::transport::TransportKind;

use super::tests::config_with;
use super::*;
use crate::protocol::task_header;
use pool_codec::{Codec, DefaultCodec};

/// Not a test of speed (nothing is asserted on time): prints the bare call latency,
/// without the engine, for profiling. Run with `--ignored --nocapture` in release mode.
#[test]
#[ignore = "measurement, run by hand"]
fn bare_call_latency() {
    let cfg = config_with(TransportKind::Pipe, StartMethod::Spawn);
    let mut w = WorkerProcess::start(&cfg, 9).unwrap();
    let f = transfer::task_ref::<_, u64, u64, DefaultCodec>(&|x: u64| x + 1, true);
    let codec = DefaultCodec::default();
    let mut arg = Vec::new();
    codec.encode(&5u64, &mut arg).unwrap();
    let header = task_header(f);
    let mut times = Vec::new();
    for _ in 0..20_000 {
        let t = Instant::now();
        let o = w.call(&[&header, &arg], None, |o, _| o).ok().unwrap();
        times.push(t.elapsed());
        assert_eq!(o, Outcome::Ok);
    }
    times.sort();
    println!(
        "bare call: median {:?}, p10 {:?}",
        times[times.len() / 2],
        times[times.len() / 10]
    );
    // Floor: 8-byte ping-pong with `cat` over std pipes.
    use std::io::{Read, Write};
    let mut cat = Command::new("cat")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut i = cat.stdin.take().unwrap();
    let mut o = cat.stdout.take().unwrap();
    let mut times = Vec::new();
    let mut b = [0u8; 8];
    for _ in 0..20_000 {
        let t = Instant::now();
        i.write_all(&b).unwrap();
        o.read_exact(&mut b).unwrap();
        times.push(t.elapsed());
    }
    times.sort();
    println!(
        "cat ping-pong: median {:?}, p10 {:?}",
        times[times.len() / 2],
        times[times.len() / 10]
    );
    drop(i);
    cat.wait().unwrap();
}
