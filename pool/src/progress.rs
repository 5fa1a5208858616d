//! An `indicatif` progress bar for `map` (cargo feature `progress`, on by default).

use indicatif::{ProgressBar, ProgressStyle};
use pool_core::Progress;

/// A terminal progress bar and the [`Progress`] callback that drives it.
///
/// Give the callback to [`MapOptions::progress`](pool_core::MapOptions::progress); the bar
/// shows items done, the total when the input's length is known (`total`, or the length the
/// map reports), the rate, and how many items failed so far. The bar draws on stderr and
/// hides itself when stderr is not a terminal.
///
/// # Examples
///
/// ```
/// use pool::{Executor, MapOptions, ThreadPool};
///
/// let pool = ThreadPool::builder().max_workers(2).build()?;
/// let (progress, bar) = pool::progress_bar(Some(1000));
/// let opts = MapOptions::default().progress(progress);
/// let sum: u64 = pool.map_with(|x: u64| x * 2, 0..1000, opts).map(Result::unwrap).sum();
/// bar.finish();
/// assert_eq!(sum, 999_000);
/// assert_eq!(bar.position(), 1000);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn progress_bar(total: Option<u64>) -> (Progress, ProgressBar) {
    let bar = match total {
        Some(n) => ProgressBar::new(n),
        None => ProgressBar::no_length(),
    };
    let style = ProgressStyle::with_template(
        "{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} ({per_sec}) {msg}",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    let handle = bar.clone();
    let progress = Progress::new(move |done, total, failed| {
        if let Some(t) = total {
            handle.set_length(t as u64);
        }
        handle.set_position(done as u64);
        if failed > 0 {
            handle.set_message(format!("{failed} failed"));
        }
    });
    (progress, bar)
}
