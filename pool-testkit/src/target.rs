//! [`Target`]: what an executor must offer to be put through the conformance suite and the
//! fault matrix — submitting and mapping plain `fn` items with serde-friendly values.
//!
//! Fn items have types that cannot be written down, so a suite generic over the executor
//! cannot name `Submit<Call<{fn square}, u64>>` in a bound. `Target` states the same thing
//! once, generically over every `F: Fn(A) -> R + Copy`: an executor whose `Submit` impl
//! covers those calls (ThreadPool, ProcessPool, a third-party backend) implements it by
//! forwarding, which [`impl_target!`](crate::impl_target) writes for you.

use pool_core::{Call, Executor, MapIter, MapOptions, SubmitError};
use pool_core::{Future, SubmitOptions, TaskError};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// A value that can cross any executor's boundary: serde both ways, `Send`, owned.
pub trait Value: Serialize + DeserializeOwned + Send + 'static {}
impl<T: Serialize + DeserializeOwned + Send + 'static> Value for T {}

/// A function that can be shipped to any executor: zero-sized in practice (a fn item or a
/// capture-free closure), `Copy`, shareable.
pub trait TaskFn<A, R>: Fn(A) -> R + Copy + Send + Sync + 'static {}
impl<A, R, F: Fn(A) -> R + Copy + Send + Sync + 'static> TaskFn<A, R> for F {}

/// An executor the suite can drive: `Executor` plus submit/map of any [`TaskFn`] over
/// [`Value`]s. Implement it with [`impl_target!`](crate::impl_target).
pub trait Target: Executor + Sized + 'static {
    /// Submit `f(arg)` (forwards to `Submit<Call<F, A>>::submit_with`).
    ///
    /// # Errors
    ///
    /// The executor refused the task (shut down, broken, queue full, argument not encodable).
    fn submit_fn<F, A, R>(
        &self,
        f: F,
        arg: A,
        opts: SubmitOptions,
    ) -> Result<Future<R>, SubmitError<Call<F, A>>>
    where
        F: TaskFn<A, R>,
        A: Value,
        R: Value;

    /// `Executor::map_with` for a [`TaskFn`].
    fn map_fn<'a, F, A, R, I>(&'a self, f: F, items: I, opts: MapOptions) -> MapIter<'a, R>
    where
        F: TaskFn<A, R>,
        A: Value,
        R: Value,
        I: IntoIterator<Item = A>,
        I::IntoIter: 'a;

    /// `Executor::map_all` for a [`TaskFn`].
    ///
    /// # Errors
    ///
    /// The first item's failure, in input order.
    fn map_all_fn<F, A, R, I>(&self, f: F, items: I) -> Result<Vec<R>, TaskError>
    where
        F: TaskFn<A, R>,
        A: Value,
        R: Value,
        I: IntoIterator<Item = A>;

    /// Submit with default options.
    ///
    /// # Errors
    ///
    /// As [`Target::submit_fn`].
    fn call<F, A, R>(&self, f: F, arg: A) -> Result<Future<R>, SubmitError<Call<F, A>>>
    where
        F: TaskFn<A, R>,
        A: Value,
        R: Value,
    {
        self.submit_fn(f, arg, SubmitOptions::default())
    }
}

/// Implements [`Target`] for an executor type whose `Submit<Call<F, A>>` and
/// `Submit<Call<ChunkFn<F>, Vec<A>>>` impls cover every `F: Fn(A) -> R + Copy + Send + Sync`
/// with serde `A`, `R` — by forwarding. `impl_target!(MyPool);` or, for a generic type,
/// `impl_target!([C: MyCodec] MyPool<C>);`.
///
/// # Examples
///
/// ```
/// // pool_testkit implements Target for ThreadPool this way:
/// // pool_testkit::impl_target!(pool_thread::ThreadPool);
/// use pool_testkit::Target;
/// let pool = pool_thread::ThreadPool::builder().max_workers(1).build().unwrap();
/// fn double(x: u32) -> u32 { 2 * x }
/// assert_eq!(pool.call(double, 21).unwrap().result().unwrap(), 42);
/// ```
#[macro_export]
macro_rules! impl_target {
    (impl [$($g:tt)*] for $t:ty) => {
        impl <$($g)*> $crate::Target for $t {
            fn submit_fn<F, A, R>(
                &self,
                f: F,
                arg: A,
                opts: $crate::__rt::SubmitOptions,
            ) -> ::std::result::Result<
                $crate::__rt::Future<R>,
                $crate::__rt::SubmitError<$crate::__rt::Call<F, A>>,
            >
            where
                F: $crate::TaskFn<A, R>,
                A: $crate::Value,
                R: $crate::Value,
            {
                <Self as $crate::__rt::Submit<$crate::__rt::Call<F, A>>>::submit_with(
                    self,
                    $crate::__rt::Call { f, arg },
                    opts,
                )
            }

            fn map_fn<'a, F, A, R, I>(
                &'a self,
                f: F,
                items: I,
                opts: $crate::__rt::MapOptions,
            ) -> $crate::__rt::MapIter<'a, R>
            where
                F: $crate::TaskFn<A, R>,
                A: $crate::Value,
                R: $crate::Value,
                I: ::std::iter::IntoIterator<Item = A>,
                I::IntoIter: 'a,
            {
                $crate::__rt::Executor::map_with(self, f, items, opts)
            }

            fn map_all_fn<F, A, R, I>(
                &self,
                f: F,
                items: I,
            ) -> ::std::result::Result<::std::vec::Vec<R>, $crate::__rt::TaskError>
            where
                F: $crate::TaskFn<A, R>,
                A: $crate::Value,
                R: $crate::Value,
                I: ::std::iter::IntoIterator<Item = A>,
            {
                $crate::__rt::Executor::map_all(self, f, items)
            }
        }
    };
    ($t:ty) => {
        $crate::impl_target!(impl [] for $t);
    };
}

/// Re-exports for [`impl_target!`]; not public API.
#[doc(hidden)]
pub mod __rt {
    pub use pool_core::{
        Call, ChunkFn, Executor, Future, MapIter, MapOptions, Submit, SubmitError, SubmitOptions,
        TaskError,
    };
}

crate::impl_target!(pool_thread::ThreadPool);
crate::impl_target!(impl [C: pool_codec::Codec] for pool_process::ProcessPool<C>);
