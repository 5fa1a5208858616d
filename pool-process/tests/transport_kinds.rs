//! Every built-in transport carries the same pool behaviour: values, big payloads, panics and
//! crashes, with no worker left afterwards.

mod support;

use std::time::Duration;

use pool_core::{Executor, ExitReason, Shutdown, TaskError};
use serde_bytes::ByteBuf;

fn checksum(b: ByteBuf) -> (usize, u64) {
    (b.len(), b.iter().map(|&x| u64::from(x)).sum())
}

fn echo_big(n: usize) -> ByteBuf {
    ByteBuf::from(vec![3u8; n])
}

fn boom(_: ()) -> u8 {
    panic!("boom over the wire")
}

fn abort(_: ()) -> u8 {
    std::process::abort()
}

#[test]
fn every_transport_carries_values_payloads_panics_and_crashes() {
    let guard = support::start("transports", Duration::from_secs(120));
    let mut pids = Vec::new();
    for kind in support::TRANSPORTS {
        let pool = support::pool_over(kind, 2);
        assert_eq!(
            pool.submit(|x: u64| x * 3, 14).unwrap().result().unwrap(),
            42,
            "{kind:?}"
        );
        let big = ByteBuf::from((0..(3 << 20)).map(|i| (i % 251) as u8).collect::<Vec<u8>>());
        let want: u64 = big.iter().map(|&x| u64::from(x)).sum();
        assert_eq!(
            pool.submit(checksum, big).unwrap().result().unwrap(),
            (3 << 20, want),
            "{kind:?}"
        );
        assert_eq!(
            pool.submit(echo_big, 5 << 20)
                .unwrap()
                .result()
                .unwrap()
                .len(),
            5 << 20
        );
        match pool.submit(boom, ()).unwrap().result() {
            Err(TaskError::Panicked(p)) => assert_eq!(p.message, "boom over the wire"),
            other => panic!("{kind:?}: {other:?}"),
        }
        match pool.submit(abort, ()).unwrap().result() {
            Err(TaskError::WorkerDied(d)) => {
                assert_eq!(
                    d.exit,
                    ExitReason::Signal {
                        number: 6,
                        name: "SIGABRT".into()
                    }
                );
                pids.extend(d.pid);
            }
            other => panic!("{kind:?}: {other:?}"),
        }
        let out: Vec<u64> = pool
            .map(|x: u64| x + 1, 0..1000u64)
            .map(Result::unwrap)
            .collect();
        assert_eq!(out, (1..=1000u64).collect::<Vec<_>>(), "{kind:?}");
        pids.extend(
            pool.map(support::worker_pid, vec![(); 4])
                .map(Result::unwrap),
        );
        pool.shutdown(Shutdown::Wait);
        drop(pool);
    }
    guard.finish(&pids);
}
