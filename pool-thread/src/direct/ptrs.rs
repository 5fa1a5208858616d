//! The caller's buffers as raw pointers that helper threads may use for the chunks they
//! claimed (see the invariant in `direct.rs`).

/// Raw buffer pointers that may cross to helper threads (see the module invariant).
pub(super) struct Ptrs<A, R> {
    pub(super) input: *mut A,
    pub(super) output: *mut R,
}

impl<A, R> Clone for Ptrs<A, R> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<A, R> Copy for Ptrs<A, R> {}

// SAFETY: the pointers are only dereferenced for claimed, disjoint chunks while the owning
// frame waits (module invariant); moving `A` in and `R` out across threads needs `Send`.
unsafe impl<A: Send, R: Send> Send for Ptrs<A, R> {}

impl<A, R> Ptrs<A, R> {
    /// Apply `f` to the inputs `lo..hi`, moving each out and writing its result.
    ///
    /// # Safety
    ///
    /// `lo..hi` is a chunk this thread claimed, within both buffers' lengths.
    pub(super) unsafe fn run<F: Fn(A) -> R>(self, f: &F, lo: usize, hi: usize) {
        for i in lo..hi {
            // SAFETY: claimed chunk: nobody else reads input `i` or writes output `i`, and
            // input `i` is read exactly once.
            unsafe {
                let a = self.input.add(i).read();
                self.output.add(i).write(f(a));
            }
        }
    }
}

/// Like [`Ptrs`] for a borrowed input slice: elements are shared, not moved.
pub(super) struct RefPtrs<A, R> {
    pub(super) input: *const A,
    pub(super) output: *mut R,
}

impl<A, R> Clone for RefPtrs<A, R> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<A, R> Copy for RefPtrs<A, R> {}

// SAFETY: as for `Ptrs`; the inputs are only read through `&A` from several threads, which
// needs `A: Sync`.
unsafe impl<A: Sync, R: Send> Send for RefPtrs<A, R> {}

impl<A: Sync, R> RefPtrs<A, R> {
    /// Apply `f` to `&input[lo..hi]`, writing the results.
    ///
    /// # Safety
    ///
    /// As [`Ptrs::run`]; the inputs are only borrowed (the caller keeps them).
    pub(super) unsafe fn run_ref<F: Fn(&A) -> R>(self, f: &F, lo: usize, hi: usize) {
        for i in lo..hi {
            // SAFETY: claimed chunk: nobody else writes output `i`; inputs are shared reads
            // of a slice the caller keeps borrowed until every chunk finished (`A: Sync`).
            unsafe {
                self.output.add(i).write(f(&*self.input.add(i)));
            }
        }
    }
}
