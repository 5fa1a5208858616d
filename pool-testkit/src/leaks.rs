//! Leak checks: snapshot this process's open descriptors and its descendant processes, then
//! assert (polling, with a deadline) that both are back to the snapshot.
//!
//! Descendants are found by walking `/proc/*/stat`: every process whose parent chain leads
//! to us, plus every process in a process group led by one of our descendants (a worker that
//! made its own group and whose grandchildren were re-parented to init when it died is
//! still found through the group). Linux only.
//!
//! # Examples
//!
//! ```
//! use std::time::Duration;
//! let snap = pool_testkit::leaks::Snapshot::take();
//! let f = std::fs::File::open("/proc/self/stat").unwrap();
//! assert!(snap.check().is_err()); // one more descriptor
//! drop(f);
//! snap.assert_no_leaks_within(Duration::from_secs(2));
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// One process as seen in `/proc/<pid>/stat`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProcInfo {
    /// Its pid.
    pub pid: u32,
    /// Its parent's pid.
    pub ppid: u32,
    /// Its process group.
    pub pgrp: u32,
    /// Its session.
    pub session: u32,
    /// Its state letter (`R`, `S`, `Z`, ...).
    pub state: char,
    /// Its command name (`comm`).
    pub comm: String,
}

impl fmt::Display for ProcInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "pid {} ({}) state {} ppid {} pgrp {}",
            self.pid, self.comm, self.state, self.ppid, self.pgrp
        )
    }
}

/// Parse `/proc/<pid>/stat` text. `comm` may contain spaces and parentheses: it runs from the
/// first `(` to the last `)`.
pub fn parse_stat(text: &str) -> Option<ProcInfo> {
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    let pid = text[..open].trim().parse().ok()?;
    let comm = text.get(open + 1..close)?.to_owned();
    let mut rest = text.get(close + 1..)?.split_ascii_whitespace();
    let state = rest.next()?.chars().next()?;
    let ppid = rest.next()?.parse().ok()?;
    let pgrp = rest.next()?.parse().ok()?;
    let session = rest.next()?.parse().ok()?;
    Some(ProcInfo {
        pid,
        ppid,
        pgrp,
        session,
        state,
        comm,
    })
}

/// Every process currently visible in `/proc`.
pub fn all_processes() -> Vec<ProcInfo> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(Result::ok)
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .bytes()
                .all(|b| b.is_ascii_digit())
        })
        .filter_map(|e| std::fs::read_to_string(e.path().join("stat")).ok())
        .filter_map(|t| parse_stat(&t))
        .collect()
}

/// The descendants of `root` (children, grandchildren, ...) plus every process in a process
/// group led by `root`'s descendants; `root` itself excluded. Zombies included (a zombie
/// child that nobody reaps is a leak too).
pub fn descendants_of(root: u32) -> Vec<ProcInfo> {
    let all = all_processes();
    let mut children: BTreeMap<u32, Vec<u32>> = BTreeMap::new();
    for p in &all {
        children.entry(p.ppid).or_default().push(p.pid);
    }
    let mut found = BTreeSet::new();
    let mut stack = vec![root];
    while let Some(p) = stack.pop() {
        for &c in children.get(&p).into_iter().flatten() {
            if found.insert(c) {
                stack.push(c);
            }
        }
    }
    // Process groups led by a descendant (or by the root's own workers that set their own
    // group): members re-parented elsewhere still count.
    let groups: BTreeSet<u32> = found.iter().copied().collect();
    for p in &all {
        if p.pid != root && groups.contains(&p.pgrp) {
            found.insert(p.pid);
        }
    }
    all.into_iter().filter(|p| found.contains(&p.pid)).collect()
}

/// The descendants of this process (see [`descendants_of`]), except this process's pool
/// fork server (`pool-fs`), which lives as long as the process by design; the workers it
/// forks are descendants and are counted.
pub fn descendants() -> Vec<ProcInfo> {
    let server = pool_process::__private::fork_server().map(|(pid, _)| pid);
    descendants_of(std::process::id())
        .into_iter()
        .filter(|p| Some(p.pid) != server)
        .collect()
}

/// Is a process with this pid alive (and not a zombie)?
pub fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(t) => parse_stat(&t).is_some_and(|p| p.state != 'Z' && p.state != 'X'),
        Err(_) => false,
    }
}

/// One open descriptor of this process.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Fd {
    /// The descriptor number.
    pub fd: i32,
    /// What it points to (`readlink /proc/self/fd/N`).
    pub target: String,
}

/// The open descriptors of this process, as `/proc/self/fd` lists them (the descriptor the
/// listing itself uses is excluded, and so is this process's end of the pool fork server's
/// socket, which lives as long as the process by design).
pub fn open_fds() -> Vec<Fd> {
    let mut out = Vec::new();
    let server_fd = pool_process::__private::fork_server().map(|(_, fd)| fd);
    let Ok(dir) = std::fs::read_dir("/proc/self/fd") else {
        return out;
    };
    let own_fd_dir = format!("/proc/{}/fd", std::process::id());
    for e in dir.filter_map(Result::ok) {
        let Ok(fd) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        if Some(fd) == server_fd {
            continue;
        }
        let target = std::fs::read_link(e.path())
            .map(|p: PathBuf| p.to_string_lossy().into_owned())
            .unwrap_or_default();
        // The directory being read shows up as `/proc/<pid>/fd` (or, already closed, as an
        // unreadable link): not a leak.
        if target.is_empty() || target == own_fd_dir {
            continue;
        }
        out.push(Fd { fd, target });
    }
    out.sort();
    out
}

/// A leak found by [`Snapshot::check`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Leaks {
    /// Descriptors open now that were not at the snapshot.
    pub fds: Vec<Fd>,
    /// Descendant processes now that were not at the snapshot.
    pub processes: Vec<ProcInfo>,
}

impl Leaks {
    /// Nothing leaked.
    pub fn is_empty(&self) -> bool {
        self.fds.is_empty() && self.processes.is_empty()
    }
}

impl fmt::Display for Leaks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.fds.is_empty() {
            writeln!(f, "{} descriptor(s) leaked:", self.fds.len())?;
            for d in &self.fds {
                writeln!(f, "  fd {} -> {}", d.fd, d.target)?;
            }
        }
        if !self.processes.is_empty() {
            writeln!(
                f,
                "{} process(es) outlived the check:",
                self.processes.len()
            )?;
            for p in &self.processes {
                writeln!(f, "  {p}")?;
            }
        }
        Ok(())
    }
}

/// Open descriptors and descendant processes at one moment.
#[derive(Clone, Debug)]
pub struct Snapshot {
    fds: BTreeSet<(i32, String)>,
    pids: BTreeSet<u32>,
    ignore_fd_targets: Vec<String>,
}

impl Snapshot {
    /// Take a snapshot now. Descriptors on this process's own executable are ignored by
    /// default (a process pool holds one for its whole life, by design, to exec workers).
    pub fn take() -> Self {
        let exe = std::fs::read_link("/proc/self/exe")
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default();
        Snapshot {
            fds: open_fds().into_iter().map(|f| (f.fd, f.target)).collect(),
            pids: descendants().into_iter().map(|p| p.pid).collect(),
            ignore_fd_targets: vec![exe],
        }
    }

    /// Also ignore descriptors whose target starts with `prefix` (for example a log file the
    /// test opens on purpose).
    pub fn ignore_fds_to(mut self, prefix: impl Into<String>) -> Self {
        self.ignore_fd_targets.push(prefix.into());
        self
    }

    /// The descendant pids at the snapshot.
    pub fn pids(&self) -> &BTreeSet<u32> {
        &self.pids
    }

    /// What leaked since the snapshot, right now.
    ///
    /// # Errors
    ///
    /// The leaked descriptors and processes.
    pub fn check(&self) -> Result<(), Leaks> {
        let fds: Vec<Fd> = open_fds()
            .into_iter()
            .filter(|f| !self.fds.contains(&(f.fd, f.target.clone())))
            .filter(|f| {
                !self
                    .ignore_fd_targets
                    .iter()
                    .any(|p| !p.is_empty() && f.target.starts_with(p.as_str()))
            })
            .collect();
        let processes: Vec<ProcInfo> = descendants()
            .into_iter()
            .filter(|p| !self.pids.contains(&p.pid))
            .collect();
        let leaks = Leaks { fds, processes };
        if leaks.is_empty() { Ok(()) } else { Err(leaks) }
    }

    /// Poll until nothing leaked, at most `within`.
    ///
    /// # Errors
    ///
    /// What still leaked at the deadline.
    pub fn wait_clean(&self, within: Duration) -> Result<(), Leaks> {
        let until = Instant::now() + within;
        let mut pause = Duration::from_millis(1);
        loop {
            match self.check() {
                Ok(()) => return Ok(()),
                Err(l) if Instant::now() >= until => return Err(l),
                Err(_) => {}
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(20));
        }
    }

    /// Assert that descriptors and descendants are back to the snapshot within `within`.
    ///
    /// # Panics
    ///
    /// Something leaked; the message lists it.
    pub fn assert_no_leaks_within(&self, within: Duration) {
        if let Err(l) = self.wait_clean(within) {
            panic!("leak check failed after waiting {within:?}:\n{l}");
        }
    }
}

/// Wait until none of `pids` is alive (zombies count as gone), at most `within`.
///
/// # Errors
///
/// The pids still alive at the deadline.
pub fn wait_gone(pids: &[u32], within: Duration) -> Result<(), Vec<u32>> {
    let until = Instant::now() + within;
    loop {
        let left: Vec<u32> = pids.iter().copied().filter(|&p| alive(p)).collect();
        if left.is_empty() {
            return Ok(());
        }
        if Instant::now() >= until {
            return Err(left);
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Resident set size of this process in bytes (from `/proc/self/statm`).
pub fn rss_bytes() -> Option<u64> {
    let t = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = t.split_ascii_whitespace().nth(1)?.parse().ok()?;
    Some(pages * rustix::param::page_size() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// The tests here look at process-wide state: one at a time.
    static SERIAL: Mutex<()> = Mutex::new(());

    #[test]
    fn parses_comm_with_spaces_and_parens() {
        let p = parse_stat("42 (a (b) c) S 1 42 42 0 -1").expect("parses");
        assert_eq!(p.pid, 42);
        assert_eq!(p.comm, "a (b) c");
        assert_eq!(p.state, 'S');
        assert_eq!((p.ppid, p.pgrp, p.session), (1, 42, 42));
        assert!(parse_stat("garbage").is_none());
    }

    #[test]
    fn finds_a_child_and_a_grandchild() {
        let _g = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
        let snap = Snapshot::take();
        let mut child = std::process::Command::new("sh")
            .args(["-c", "sleep 30 & wait"])
            .spawn()
            .expect("spawn sh");
        // Wait (bounded) until the grandchild `sleep` shows up.
        let until = Instant::now() + Duration::from_secs(10);
        let mut seen = Vec::new();
        while Instant::now() < until {
            seen = descendants();
            if seen.iter().any(|p| p.ppid == child.id()) {
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(
            seen.iter().any(|p| p.pid == child.id()),
            "child not found: {seen:?}"
        );
        let grandchild = seen
            .iter()
            .find(|p| p.ppid == child.id())
            .map(|p| p.pid)
            .expect("grandchild found");
        let err = snap.check().expect_err("two new descendants");
        assert!(err.processes.iter().any(|p| p.pid == grandchild));
        rustix::process::kill_process(
            rustix::process::Pid::from_raw(grandchild as i32).expect("pid"),
            rustix::process::Signal::KILL,
        )
        .expect("kill the grandchild");
        child.wait().expect("reap sh");
        wait_gone(&[grandchild], Duration::from_secs(5)).expect("grandchild gone");
        snap.assert_no_leaks_within(Duration::from_secs(5));
    }

    #[test]
    fn sees_a_leaked_descriptor() {
        let _g = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
        let snap = Snapshot::take();
        let (r, w) = std::io::pipe().expect("pipe");
        let leaks = snap.check().expect_err("two new descriptors");
        assert!(leaks.fds.len() >= 2, "{leaks}");
        assert!(leaks.to_string().contains("pipe:"), "{leaks}");
        drop((r, w));
        snap.assert_no_leaks_within(Duration::from_secs(2));
    }

    #[test]
    fn rss_is_known() {
        assert!(rss_bytes().is_some_and(|b| b > 0));
    }
}
