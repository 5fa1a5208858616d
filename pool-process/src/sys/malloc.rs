//! Allocator settings for worker processes (glibc).
//!
//! Mechanism: glibc's `malloc` serves every allocation above `M_MMAP_THRESHOLD` (128 KiB,
//! rising dynamically to at most 32 MiB) with a fresh `mmap` and gives it back with `munmap`
//! on `free`; it also returns free memory at the top of the heap to the kernel once more than
//! `M_TRIM_THRESHOLD` is free. A worker that decodes a 64 MiB argument into a new buffer for
//! every task therefore touches 16 384 fresh pages per task, and each first touch is a page
//! fault: measured here, ~100 ms of faults against ~6 ms of copying for 64 MiB. Raising both
//! thresholds with `mallopt` keeps such buffers in the heap, so the next task's allocation
//! reuses pages that are already mapped.
//!
//! Only worker processes do this (never the user's own process, whose allocator is the
//! user's business), at start, before any task runs. Allocations above [`MMAP_THRESHOLD`]
//! still get their own mapping, and at most [`TRIM_THRESHOLD`] of free heap is kept; a worker
//! that ran a big task therefore keeps up to that much resident memory while it lives (which
//! `max_memory_per_worker` sees). Other C libraries (musl) are left alone.

/// Allocations larger than this keep getting a mapping of their own.
pub(crate) const MMAP_THRESHOLD: usize = 256 << 20;
/// Free memory at the top of the heap is returned to the kernel beyond this.
pub(crate) const TRIM_THRESHOLD: usize = 512 << 20;

/// Applies the worker's allocator settings; `false` if the C library refused them (they only
/// cost speed).
pub(crate) fn tune_for_worker() -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: `mallopt` only changes allocator parameters; it takes the arena lock
        // itself, is safe to call at any time, and has no memory-safety preconditions.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD as libc::c_int) == 1
                && libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD as libc::c_int) == 1
        }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        false
    }
}

#[cfg(test)]
mod tests {
    #[test]
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[cfg_attr(pool_asan, ignore = "AddressSanitizer replaces glibc's allocator")]
    fn glibc_accepts_the_settings() {
        // Changing the test process's own allocator settings is harmless.
        assert!(super::tune_for_worker());
    }
}
