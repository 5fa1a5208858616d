//! What can be submitted: [`Task`], the function-plus-argument shape [`Call`], and
//! [`ChunkFn`], which turns a per-item function into a per-chunk one for `map`.

use serde::{Deserialize, Serialize};

use crate::error::PanicInfo;
use crate::panic::catch_panic;

/// A unit of work with an `Output`.
///
/// Closures `FnOnce() -> R` are tasks (for in-process backends), and so is every
/// [`Call`] whose function is a [`CallFn`].
pub trait Task: Send + 'static {
    /// What the task produces.
    type Output: Send + 'static;
}

impl<F, R> Task for F
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
{
    type Output = R;
}

/// A function of one argument that a [`Call`] can run: every `FnOnce(A) -> R`, and
/// [`ChunkFn`] over a `Vec<A>`.
///
/// For the process backend the function type must be zero-sized (a `fn` item or a closure that
/// captures nothing), so the worker can rebuild it from its type alone.
pub trait CallFn<A>: Send + 'static {
    /// What the call returns.
    type Output: Send + 'static;
    /// Run it.
    fn call(self, arg: A) -> Self::Output;
}

impl<F, A, R> CallFn<A> for F
where
    F: FnOnce(A) -> R + Send + 'static,
    R: Send + 'static,
{
    type Output = R;
    #[inline]
    fn call(self, arg: A) -> R {
        self(arg)
    }
}

/// A function plus its argument: the one task shape every backend accepts, which is what lets
/// `map` be written once.
///
/// # Examples
///
/// ```
/// use pool::Call;
/// use pool::backend::CallFn;
/// let c = Call { f: |x: u32| x + 1, arg: 41 };
/// assert_eq!(c.run(), 42);
/// ```
#[derive(Clone, Copy, Debug)]
pub struct Call<F, A> {
    /// The function.
    pub f: F,
    /// Its argument.
    pub arg: A,
}

impl<F: CallFn<A>, A> Call<F, A> {
    /// Run the call here.
    #[inline]
    pub fn run(self) -> F::Output {
        self.f.call(self.arg)
    }
}

impl<F, A> Task for Call<F, A>
where
    F: CallFn<A>,
    A: Send + 'static,
{
    type Output = F::Output;
}

/// Runs a per-item function over a chunk: `ChunkFn(f)` called with `Vec<A>` returns the
/// [`ChunkResults`] of its items. A panicking item fails only itself: the others run. Zero-sized
/// when `F` is, so a chunk of a process pool's `map` is itself a [`Call`].
///
/// # Examples
///
/// ```
/// use pool::backend::{CallFn, ChunkFn};
/// let out = ChunkFn(|x: u32| x * 2).call(vec![1, 2, 3]);
/// assert_eq!(out.values, vec![2, 4, 6]);
/// assert!(out.panics.is_empty());
///
/// let out = ChunkFn(|x: u32| if x == 2 { panic!("two") } else { x }).call(vec![1, 2, 3]);
/// assert_eq!(out.values, vec![1, 3]);
/// assert_eq!(out.panics[0].0, 1);
/// assert_eq!(out.panics[0].1.message, "two");
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct ChunkFn<F>(pub F);

/// What a chunk of `map` produced: the values of the items that returned, in order, and the
/// items that panicked (their index within the chunk, and the panic).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ChunkResults<R> {
    /// The values of the items that did not panic, in input order.
    pub values: Vec<R>,
    /// `(index within the chunk, panic)` of each item that panicked, in input order.
    pub panics: Vec<(usize, PanicInfo)>,
}

impl<F, A, R> CallFn<Vec<A>> for ChunkFn<F>
where
    F: Fn(A) -> R + Send + 'static,
    A: 'static,
    R: Send + 'static,
{
    type Output = ChunkResults<R>;
    #[inline]
    fn call(self, arg: Vec<A>) -> ChunkResults<R> {
        let mut values = Vec::with_capacity(arg.len());
        let mut panics = Vec::new();
        let mut items = arg.into_iter();
        // The index of the item running now. Counted by hand: `Enumerate` does not advance
        // its count when the closure it feeds panics, so it would repeat an index.
        let mut next = 0;
        // One catch for the whole chunk; after a panic, the rest of the chunk runs on.
        loop {
            let mut at = 0;
            let ran = catch_panic(|| {
                values.extend(items.by_ref().map(|a| {
                    at = next;
                    next += 1;
                    (self.0)(a)
                }));
            });
            match ran {
                Ok(()) => break,
                Err(p) => panics.push((at, p)),
            }
        }
        ChunkResults { values, panics }
    }
}
