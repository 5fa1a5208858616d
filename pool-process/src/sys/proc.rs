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

/// Waits until no live process (zombies do not count) is left in process group `pgid`, or
/// `until` passes; true if none is left. Used after a kill, since SIGKILL takes effect only
/// when each process next runs. One `kill(-pgid, 0)` answers when the group is empty; while
/// it is not (the worker's own unreaped zombie keeps it), `/proc` tells live members from
/// zombies.
pub(crate) fn wait_group_gone(pgid: u32, until: std::time::Instant) -> bool {
    let Some(group) = to_pid(pgid) else {
        return true;
    };
    loop {
        let empty = rustix::process::test_kill_process_group(group).is_err();
        if empty || !group_has_live_member(pgid) {
            return true;
        }
        if std::time::Instant::now() >= until {
            return false;
        }
        std::thread::sleep(std::time::Duration::from_micros(200));
    }
}

/// Whether any process of group `pgid` is alive (not a zombie), from `/proc/<pid>/stat`.
fn group_has_live_member(pgid: u32) -> bool {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return false;
    };
    dir.filter_map(Result::ok)
        .filter(|e| {
            e.file_name()
                .as_encoded_bytes()
                .iter()
                .all(u8::is_ascii_digit)
        })
        .filter_map(|e| std::fs::read_to_string(e.path().join("stat")).ok())
        .any(|stat| {
            // After the command name's closing parenthesis: state, ppid, pgrp, ...
            let Some(rest) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
                return false;
            };
            let mut fields = rest.split_whitespace();
            let state = fields.next().unwrap_or("Z");
            let group = fields.nth(1).and_then(|g| g.parse::<u32>().ok());
            group == Some(pgid) && !matches!(state, "Z" | "X" | "x")
        })
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
    fn a_killed_group_is_waited_for() {
        use std::os::unix::process::CommandExt;
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .process_group(0)
            .spawn()
            .unwrap();
        let pid = child.id();
        let soon = std::time::Instant::now() + std::time::Duration::from_millis(50);
        assert!(!super::wait_group_gone(pid, soon), "the group is alive");
        super::kill_tree(pid);
        let until = std::time::Instant::now() + std::time::Duration::from_secs(5);
        // Dead though not reaped yet: its zombie does not count.
        assert!(super::wait_group_gone(pid, until));
        child.wait().unwrap();
        assert!(super::wait_group_gone(pid, until));
    }

    #[test]
    fn rss_of_self_is_positive() {
        assert!(super::rss_bytes(super::own_pid()).unwrap() > 0);
        assert_eq!(super::rss_bytes(u32::MAX), None);
    }
}
