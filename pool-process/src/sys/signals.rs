//! Signals: SIGPIPE, the parent-death signal, and signal names.
//!
//! Mechanism: a worker starts before `main`, where Rust's runtime has not yet set SIGPIPE to
//! "ignore", so the worker does that itself (a write to a vanished parent then fails with
//! `EPIPE` instead of killing the worker silently). `prctl(PR_SET_PDEATHSIG)` asks the kernel
//! to send a signal when the parent *thread* that spawned us exits — the parent spawns from
//! one long-lived thread (see `spawn.rs`) so that means "when the parent process exits",
//! SIGKILL included. The signal chosen is a real-time one nobody else uses; its handler does
//! `kill(0, SIGKILL)` (async-signal-safe), taking the worker *and its whole process group*,
//! so grandchildren started by a task die too. Because the parent may already have died
//! before `prctl` ran, the worker re-checks `getppid()` afterwards.

use std::sync::atomic::{AtomicBool, Ordering};

/// Ignores SIGPIPE in the calling process.
pub(crate) fn ignore_sigpipe() {
    // SAFETY: setting a disposition to SIG_IGN installs no handler code, and is done once
    // during worker start-up.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
    }
}

/// The signal the kernel sends the worker when its parent exits.
fn parent_death_signal() -> libc::c_int {
    libc::SIGRTMAX() - 3
}

extern "C" fn on_parent_death(_signal: libc::c_int) {
    // SAFETY: kill and _exit are async-signal-safe; kill(0, ..) targets the caller's own
    // process group, which the worker leads.
    unsafe {
        libc::kill(0, libc::SIGKILL);
        libc::_exit(70);
    }
}

/// Arms the parent-death signal and checks that the parent is still `expected_parent`.
///
/// # Errors
/// A message when the parent already changed (it died before we armed the signal) or the
/// kernel refused.
pub(crate) fn die_with_parent(expected_parent: u32) -> Result<(), String> {
    static ARMED: AtomicBool = AtomicBool::new(false);
    let sig = parent_death_signal();
    if !ARMED.swap(true, Ordering::SeqCst) {
        // SAFETY: a zeroed sigaction is a valid "no flags, empty mask" value; the handler is
        // an `extern "C" fn(c_int)` that only calls async-signal-safe functions.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_parent_death as *const () as usize;
            libc::sigemptyset(&mut action.sa_mask);
            if libc::sigaction(sig, &action, std::ptr::null_mut()) != 0 {
                return Err(format!(
                    "sigaction for the parent-death signal failed: {}",
                    std::io::Error::last_os_error()
                ));
            }
        }
    }
    // SAFETY: `sig` is a valid real-time signal number on Linux (between SIGRTMIN and SIGRTMAX).
    let signal = unsafe { rustix::process::Signal::from_raw_unchecked(sig) };
    rustix::process::set_parent_process_death_signal(Some(signal))
        .map_err(|e| format!("prctl(PR_SET_PDEATHSIG) failed: {e}"))?;
    let now = super::proc::parent_pid();
    if now != expected_parent {
        return Err(format!(
            "the parent process {expected_parent} is gone (parent is now {now})"
        ));
    }
    Ok(())
}

/// The conventional name of a signal number (`SIGSEGV`), or `SIG<n>` for unnamed ones.
pub(crate) fn signal_name(number: i32) -> String {
    let name = match number {
        libc::SIGHUP => "SIGHUP",
        libc::SIGINT => "SIGINT",
        libc::SIGQUIT => "SIGQUIT",
        libc::SIGILL => "SIGILL",
        libc::SIGTRAP => "SIGTRAP",
        libc::SIGABRT => "SIGABRT",
        libc::SIGBUS => "SIGBUS",
        libc::SIGFPE => "SIGFPE",
        libc::SIGKILL => "SIGKILL",
        libc::SIGUSR1 => "SIGUSR1",
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGUSR2 => "SIGUSR2",
        libc::SIGPIPE => "SIGPIPE",
        libc::SIGALRM => "SIGALRM",
        libc::SIGTERM => "SIGTERM",
        libc::SIGSTKFLT => "SIGSTKFLT",
        libc::SIGCHLD => "SIGCHLD",
        libc::SIGCONT => "SIGCONT",
        libc::SIGSTOP => "SIGSTOP",
        libc::SIGTSTP => "SIGTSTP",
        libc::SIGTTIN => "SIGTTIN",
        libc::SIGTTOU => "SIGTTOU",
        libc::SIGURG => "SIGURG",
        libc::SIGXCPU => "SIGXCPU",
        libc::SIGXFSZ => "SIGXFSZ",
        libc::SIGVTALRM => "SIGVTALRM",
        libc::SIGPROF => "SIGPROF",
        libc::SIGWINCH => "SIGWINCH",
        libc::SIGIO => "SIGIO",
        libc::SIGPWR => "SIGPWR",
        libc::SIGSYS => "SIGSYS",
        n if (libc::SIGRTMIN()..=libc::SIGRTMAX()).contains(&n) => {
            return format!("SIGRTMIN+{}", n - libc::SIGRTMIN());
        }
        n => return format!("SIG{n}"),
    };
    name.to_owned()
}

#[cfg(test)]
mod tests {
    #[test]
    fn names() {
        assert_eq!(super::signal_name(11), "SIGSEGV");
        assert_eq!(super::signal_name(9), "SIGKILL");
        assert_eq!(super::signal_name(6), "SIGABRT");
        assert_eq!(super::signal_name(200), "SIG200");
    }
}
