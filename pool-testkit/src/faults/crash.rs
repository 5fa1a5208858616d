//! The process-ending faults: abort, a real segmentation fault, exit, SIGKILL to oneself,
//! memory exhaustion under a lowered address-space limit. This is the crate's only module
//! with `unsafe` (the segfault), and everything here ends the calling process on purpose.

use std::time::Duration;

use rustix::process::{Resource, Rlimit, Signal, getpid, kill_process, setrlimit};

/// No core files: a crash fixture must not write hundreds of MiB to disk.
pub(crate) fn no_core_dumps() {
    let _ = setrlimit(
        Resource::Core,
        Rlimit {
            current: Some(0),
            maximum: None,
        },
    );
}

/// `abort()`: SIGABRT.
pub(crate) fn abort() -> ! {
    no_core_dumps();
    std::process::abort()
}

/// A genuine invalid memory access (a write into a page mapped with no access), which the
/// kernel answers with SIGSEGV. Handlers installed by the runtime see a real fault; when they
/// return, the write faults again with the default action and the process dies.
pub(crate) fn segfault() -> ! {
    no_core_dumps();
    // SAFETY: an anonymous private mapping of one page with no access rights: no existing
    // memory is affected; the pointer is non-null and page aligned.
    let page = unsafe {
        rustix::mm::mmap_anonymous(
            std::ptr::null_mut(),
            4096,
            rustix::mm::ProtFlags::empty(),
            rustix::mm::MapFlags::PRIVATE,
        )
    };
    let page = page
        .unwrap_or_else(|_| kill_self(Signal::SEGV))
        .cast::<u8>();
    // SAFETY: deliberately not safe: this write is meant to fault (SIGSEGV) and end the
    // process. The page belongs to no Rust object, so nothing observable in the program
    // depends on it; the volatile write cannot be elided.
    unsafe { std::ptr::write_volatile(page, 1) };
    // Unreachable in practice; make sure of the outcome anyway.
    kill_self(Signal::SEGV)
}

/// `exit(code)`.
pub(crate) fn exit(code: i32) -> ! {
    std::process::exit(code)
}

/// Send `sig` to this process; if it is not fatal right away, wait for it to be.
pub(crate) fn kill_self(sig: Signal) -> ! {
    no_core_dumps();
    let _ = kill_process(getpid(), sig);
    loop {
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// SIGKILL to this process.
pub(crate) fn sigkill_self() -> ! {
    kill_self(Signal::KILL)
}

/// Allocate (and touch) memory without bound. To keep a shared machine safe the address
/// space is first limited to about `headroom` bytes more than in use now, so the blow-up ends
/// in an allocation failure (`handle_alloc_error`: abort, SIGABRT) after at most that much.
pub(crate) fn exhaust_memory(headroom: u64) -> ! {
    no_core_dumps();
    let in_use = std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|t| t.split_ascii_whitespace().next()?.parse::<u64>().ok())
        .map(|pages| pages * rustix::param::page_size() as u64)
        .unwrap_or(1 << 30);
    let _ = setrlimit(
        Resource::As,
        Rlimit {
            current: Some(in_use + headroom),
            maximum: None,
        },
    );
    let mut hoard: Vec<Vec<u8>> = Vec::new();
    loop {
        let mut block = vec![0u8; 8 << 20];
        // Touch every page so the memory is resident, not just reserved.
        for i in (0..block.len()).step_by(4096) {
            block[i] = 1;
        }
        hoard.push(std::hint::black_box(block));
    }
}
