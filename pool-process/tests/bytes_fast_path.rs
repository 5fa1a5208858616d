//! The bytes fast path: `Vec<u8>` and `ByteBuf` arguments and results cross raw, in every
//! combination with codec-encoded types, over every transport; a refused submission hands
//! the bytes back; panics and byte results of other shapes still go through the codec.

mod support;

use std::time::Duration;

use pool_core::{Executor, Shutdown, Submit, SubmitErrorKind, TaskError};
use serde_bytes::ByteBuf;

fn pattern(n: usize, seed: u8) -> Vec<u8> {
    (0..n).map(|i| (i as u8).wrapping_mul(31) ^ seed).collect()
}

fn reversed(mut v: Vec<u8>) -> Vec<u8> {
    v.reverse();
    v
}

fn sum_buf(b: ByteBuf) -> (u64, usize) {
    (b.iter().map(|&x| u64::from(x)).sum(), b.len())
}

fn make_buf(n: usize) -> ByteBuf {
    ByteBuf::from(pattern(n, 7))
}

fn nested(v: Vec<Vec<u8>>) -> Vec<Vec<u8>> {
    v.into_iter().rev().collect()
}

fn bytes_then_panic(v: Vec<u8>) -> Vec<u8> {
    if v.first() == Some(&0xEE) {
        panic!("bad first byte {}", v.len());
    }
    v
}

#[test]
fn byte_arguments_and_results_cross_unchanged() {
    let guard = support::start("bytes_fast_path", Duration::from_secs(120));
    let mut pids = Vec::new();
    for kind in support::TRANSPORTS {
        let pool = support::pool_over(kind, 1);
        pids.push(
            pool.submit(support::worker_pid, ())
                .unwrap()
                .result()
                .unwrap(),
        );
        // Sizes around the pipe buffer, the shm inline limit, and empty.
        for n in [0usize, 1, 7, 4096, 256 << 10, (1 << 20) + 3, 5 << 20] {
            let v = pattern(n, 1);
            let mut want = v.clone();
            want.reverse();
            assert_eq!(
                pool.submit(reversed, v).unwrap().result().unwrap(),
                want,
                "{kind:?} Vec<u8> -> Vec<u8>, {n} bytes"
            );
            let b = ByteBuf::from(pattern(n, 2));
            let want = (b.iter().map(|&x| u64::from(x)).sum(), n);
            assert_eq!(
                pool.submit(sum_buf, b).unwrap().result().unwrap(),
                want,
                "{kind:?} ByteBuf -> codec, {n} bytes"
            );
            assert_eq!(
                pool.submit(make_buf, n)
                    .unwrap()
                    .result()
                    .unwrap()
                    .into_vec(),
                pattern(n, 7),
                "{kind:?} codec -> ByteBuf, {n} bytes"
            );
        }
        // Byte vectors inside other types still use the codec.
        let v = vec![vec![1u8, 2], vec![], vec![3]];
        assert_eq!(
            pool.submit(nested, v).unwrap().result().unwrap(),
            vec![vec![3u8], vec![], vec![1, 2]]
        );
        // A panic with a raw argument is a panic, and the worker carries on.
        match pool
            .submit(bytes_then_panic, vec![0xEE; 10])
            .unwrap()
            .result()
        {
            Err(TaskError::Panicked(p)) => assert!(p.message.contains("bad first byte 10")),
            other => panic!("expected a panic, got {other:?}"),
        }
        assert_eq!(
            pool.submit(bytes_then_panic, vec![1, 2])
                .unwrap()
                .result()
                .unwrap(),
            [1, 2]
        );
        // A refused submission hands the bytes back untouched.
        pool.shutdown(Shutdown::Wait);
        let err = Submit::submit(
            &pool,
            pool_core::Call {
                f: reversed,
                arg: vec![5u8, 6, 7],
            },
        )
        .unwrap_err();
        assert!(matches!(err.kind(), SubmitErrorKind::Shutdown), "{err}");
        assert_eq!(err.into_task().unwrap().arg, [5, 6, 7]);
    }
    guard.finish(&pids);
}
