//! Workers keep big buffers in their heap (`sys/malloc.rs`): a second 64 MiB buffer reuses the
//! pages of the first instead of faulting in fresh ones. Counted in page faults, not time.

mod support;

use std::time::Duration;

use pool_core::{Executor, Shutdown};
use pool_process::ProcessPool;

/// Minor page faults of this process so far (`/proc/self/stat`, field 10).
fn minor_faults() -> u64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // The command name (field 2) may contain spaces; count fields after its closing ')'.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    rest.split_whitespace()
        .nth(7)
        .and_then(|f| f.parse().ok())
        .unwrap_or(0)
}

/// Allocates and touches a buffer of `mib` MiB twice; the faults of the second round.
fn faults_of_second_buffer(mib: usize) -> u64 {
    let round = || {
        let mut v = vec![1u8; mib << 20];
        for i in (0..v.len()).step_by(4096) {
            v[i] = v[i].wrapping_add(1);
        }
        std::hint::black_box(&v);
    };
    round();
    let before = minor_faults();
    round();
    minor_faults() - before
}

#[test]
#[cfg_attr(pool_asan, ignore = "AddressSanitizer replaces glibc's allocator")]
fn a_second_big_buffer_reuses_the_first_ones_pages() {
    let guard = support::start("worker_heap", Duration::from_secs(60));
    let pool = ProcessPool::builder().max_workers(1).build().unwrap();
    let pid = pool
        .submit(support::worker_pid, ())
        .unwrap()
        .result()
        .unwrap();
    let faults = pool
        .submit(faults_of_second_buffer, 64)
        .unwrap()
        .result()
        .unwrap();
    // 64 MiB of fresh pages would be 16 384 faults; reused heap pages need (almost) none.
    assert!(
        faults < 1024,
        "the second 64 MiB buffer faulted {faults} times in the worker"
    );
    pool.shutdown(Shutdown::Wait);
    guard.finish(&[pid]);
}
