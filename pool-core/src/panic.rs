//! Panics are data: catch a panic at the worker boundary and turn it into
//! [`PanicInfo`] with its message and source location.
//!
//! The location is not part of the payload `catch_unwind` returns, so a panic hook (installed
//! once, chained onto the hook that was there before, which keeps printing as usual) records
//! the location and backtrace of the latest panic in a thread-local slot that [`catch`] reads.

use std::any::Any;
use std::cell::RefCell;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Once;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::PanicInfo;

thread_local! {
    static LAST: RefCell<Option<(String, Option<String>)>> = const { RefCell::new(None) };
    static CALLBACK_COUNTER: RefCell<Option<std::sync::Arc<AtomicU64>>> = const { RefCell::new(None) };
}

static HOOK: Once = Once::new();
static CALLBACK_PANICS: AtomicU64 = AtomicU64::new(0);

/// Install the location-recording panic hook (once per process). The previous hook still
/// runs, so panics are printed as before.
pub(crate) fn install_hook() {
    HOOK.call_once(|| {
        let prev = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let loc = info
                .location()
                .map(|l| format!("{}:{}:{}", l.file(), l.line(), l.column()));
            let bt = match std::env::var_os("RUST_BACKTRACE") {
                Some(v) if v != "0" => Some(std::backtrace::Backtrace::force_capture().to_string()),
                _ => None,
            };
            if let Some(loc) = loc {
                let _ = LAST.try_with(|l| {
                    if let Ok(mut l) = l.try_borrow_mut() {
                        *l = Some((loc, bt));
                    }
                });
            }
            prev(info);
        }));
    });
}

/// The message of a panic payload.
pub(crate) fn payload_message(p: &(dyn Any + Send)) -> String {
    if let Some(s) = p.downcast_ref::<&'static str>() {
        (*s).to_string()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "<non-string panic payload>".to_string()
    }
}

/// Build [`PanicInfo`] from a caught payload, with the location the hook recorded.
pub(crate) fn panic_info(p: Box<dyn Any + Send>) -> PanicInfo {
    let message = payload_message(&*p);
    let (location, backtrace) = LAST
        .try_with(|l| l.borrow_mut().take())
        .ok()
        .flatten()
        .map(|(l, b)| (Some(l), b))
        .unwrap_or((None, None));
    // Drop the payload here; a payload whose Drop panics would abort, which is what std does.
    drop(p);
    PanicInfo {
        message,
        location,
        backtrace,
        item: None,
    }
}

/// Run `f`, turning a panic into [`PanicInfo`].
#[inline]
pub(crate) fn catch<R>(f: impl FnOnce() -> R) -> Result<R, PanicInfo> {
    catch_unwind(AssertUnwindSafe(f)).map_err(panic_info)
}

/// Report a panic of user code that the pool contained: the thread it ran on (a pool
/// thread, or a caller inside a pool call) carried on. `what` says which code it was.
#[cold]
#[inline(never)]
pub(crate) fn report_contained(what: &str, p: &PanicInfo) {
    let thread = std::thread::current();
    tracing::warn!(target: "pool", thread = thread.name().unwrap_or("<unnamed>"), what,
        panic = %p.message, location = p.location.as_deref().unwrap_or("<unknown>"),
        "user code panicked; contained");
}

/// Drop `v`, containing (and reporting) a panic of its `Drop`: for values of user types the
/// pool drops on its own threads (a cancelled task, a result nobody takes).
#[inline]
pub(crate) fn drop_contained<T>(what: &str, v: T) {
    if std::mem::needs_drop::<T>()
        && let Err(p) = catch(move || drop(v))
    {
        report_contained(what, &p);
    }
}

/// Run a user callback; a panic is contained, counted and reported.
pub(crate) fn run_callback(f: impl FnOnce()) {
    if let Err(p) = catch_unwind(AssertUnwindSafe(f)) {
        report_contained("an on_done callback", &panic_info(p));
        CALLBACK_PANICS.fetch_add(1, Ordering::Relaxed);
        let _ = CALLBACK_COUNTER.try_with(|c| {
            if let Some(c) = &*c.borrow() {
                c.fetch_add(1, Ordering::Relaxed);
            }
        });
    }
}

/// Route callback-panic counts of this thread to a pool's counter (engine worker threads).
pub(crate) fn set_callback_counter(c: std::sync::Arc<AtomicU64>) {
    CALLBACK_COUNTER.with(|s| *s.borrow_mut() = Some(c));
}

/// How many `on_done` callbacks panicked in this process so far. Each panic was contained
/// (the thread that ran the callback carried on) and printed by the panic hook.
///
/// # Examples
///
/// ```
/// let before = pool::callback_panics();
/// let (p, f) = pool::backend::promise::<u8>();
/// f.on_done(|_| panic!("callback bug"));
/// p.complete(Ok(1));
/// assert_eq!(pool::callback_panics(), before + 1);
/// assert_eq!(f.result().unwrap(), 1);
/// ```
pub fn callback_panics() -> u64 {
    CALLBACK_PANICS.load(Ordering::Relaxed)
}

/// Run `f`, turning a panic into [`PanicInfo`] (message, location, and backtrace text when
/// `RUST_BACKTRACE` is set). For backends that run user code outside the engine (such as a
/// thread pool's direct `map`). The panic is still printed by the panic hook.
///
/// # Errors
///
/// The panic, as data.
///
/// # Examples
///
/// ```
/// let r = pool::backend::catch_panic(|| -> u8 { panic!("boom") });
/// let info = r.unwrap_err();
/// assert_eq!(info.message, "boom");
/// assert!(info.location.unwrap().contains(".rs:"));
/// ```
pub fn catch_panic<R>(f: impl FnOnce() -> R) -> Result<R, PanicInfo> {
    install_hook();
    catch(f)
}
