//! Process control: process groups, tree kill, reaping helpers, resident memory.
//!
//! Mechanism: a worker makes itself the leader of a new session (`setsid`), so its process
//! group id equals its pid and every process it starts joins that group unless it opts out.
//! `kill(-pgid, SIGKILL)` then takes the whole tree. The group id cannot be reused while any
//! member — including the worker's own zombie, which the parent has not reaped yet — exists,
//! so killing the group before `waitpid` is free of pid-reuse races. Resident memory comes from
//! the second field of `/proc/<pid>/statm` (pages).

use rustix::process::{Pid, Signal};

/// Makes the calling process a session and process-group leader (worker side).
pub(crate) fn become_group_leader() {
    // EPERM means we already lead a group (e.g. started by a test harness as a leader);
    // either way the worker's group id is then its own pid or it stays where it was.
    let _ = rustix::process::setsid();
}

/// Kills the process group led by `pid` and the process itself with SIGKILL. Errors (the
/// group or the process no longer exists) are ignored: the goal state is reached either way.
pub(crate) fn kill_tree(pid: u32) {
    let Some(pid) = to_pid(pid) else { return };
    let _ = rustix::process::kill_process_group(pid, Signal::KILL);
    let _ = rustix::process::kill_process(pid, Signal::KILL);
}

/// The caller's parent pid (0 when it has none).
pub(crate) fn parent_pid() -> u32 {
    rustix::process::getppid().map_or(0, |p| p.as_raw_nonzero().get() as u32)
}

/// The caller's pid.
pub(crate) fn own_pid() -> u32 {
    rustix::process::getpid().as_raw_nonzero().get() as u32
}

/// Resident set size of `pid` in bytes, from `/proc/<pid>/statm`.
pub(crate) fn rss_bytes(pid: u32) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/statm")).ok()?;
    let pages: u64 = text.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * rustix::param::page_size() as u64)
}

fn to_pid(pid: u32) -> Option<Pid> {
    Pid::from_raw(i32::try_from(pid).ok()?)
}

#[cfg(test)]
mod tests {
    #[test]
    fn rss_of_self_is_positive() {
        assert!(super::rss_bytes(super::own_pid()).unwrap() > 0);
        assert_eq!(super::rss_bytes(u32::MAX), None);
    }
}
