//! Worker side: catching a task's panic with its message, location and backtrace.
//!
//! A panic hook installed once in the worker records the panic of the *current thread* into a
//! thread-local slot while a task runs on it; the hook runs synchronously in the panicking
//! thread before unwinding starts, so when `catch_unwind` returns the record is already there
//! — nothing can race it. If user code replaced the hook, the payload's message is still
//! used. Outside tasks (threads a task spawned, say) the previous hook runs as usual, so such
//! panics still reach stderr.

use std::any::Any;
use std::backtrace::{Backtrace, BacktraceStatus};
use std::cell::{Cell, RefCell};
use std::panic::{self, AssertUnwindSafe};
use std::sync::Once;

use crate::protocol::reply::PanicRecord;

thread_local! {
    static IN_TASK: Cell<bool> = const { Cell::new(false) };
    static LAST: RefCell<Option<PanicRecord>> = const { RefCell::new(None) };
}

/// Installs the recording hook (once per process).
pub(crate) fn install_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            if !IN_TASK.with(Cell::get) {
                previous(info);
                return;
            }
            let message = payload_message(info.payload());
            let location = info
                .location()
                .map(|l| format!("{}:{}:{}", l.file(), l.line(), l.column()));
            let bt = Backtrace::capture();
            let backtrace = (bt.status() == BacktraceStatus::Captured).then(|| bt.to_string());
            let _ = LAST.try_with(|slot| {
                if let Ok(mut slot) = slot.try_borrow_mut() {
                    *slot = Some(PanicRecord {
                        message,
                        location,
                        backtrace,
                    });
                }
            });
        }));
    });
}

fn payload_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "Box<dyn Any>".to_owned()
    }
}

/// Runs `f` as task code: a panic comes back as a record instead of unwinding further.
pub(crate) fn catch<T>(f: impl FnOnce() -> T) -> Result<T, PanicRecord> {
    let was = IN_TASK.with(|t| t.replace(true));
    let result = panic::catch_unwind(AssertUnwindSafe(f));
    IN_TASK.with(|t| t.set(was));
    result.map_err(|payload| {
        let recorded = LAST.with(|slot| slot.borrow_mut().take());
        let record = recorded.unwrap_or_else(|| PanicRecord {
            message: payload_message(&*payload),
            location: None,
            backtrace: None,
        });
        // Dropping a payload can itself panic; contain that too.
        let _ = panic::catch_unwind(AssertUnwindSafe(move || drop(payload)));
        record
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_message_and_location() {
        install_hook();
        let err = catch(|| -> u32 { panic!("boom {}", 42) }).unwrap_err();
        assert_eq!(err.message, "boom 42");
        assert!(err.location.unwrap().contains("panics.rs"));
        let mut buf = Vec::new();
        let rec = PanicRecord {
            message: "m".into(),
            location: Some("l".into()),
            backtrace: None,
        };
        rec.write(&mut buf);
        assert_eq!(PanicRecord::read(&buf), Some(rec));
        assert_eq!(catch(|| 5).unwrap(), 5);
    }
}
