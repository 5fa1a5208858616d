//! Loom models of the future state machine (`cell.rs`). Run with:
//!
//! ```text
//! RUSTFLAGS="--cfg pool_loom" cargo test -p pool-core --release --lib --target-dir target/loom loom
//! ```

use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

use loom::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use loom::thread;

use super::cell::{Bare, Core, FROM_PENDING, FROM_RUNNING, HasCore};
use super::{Future, Promise, State};
use crate::engine::Killer;
use crate::error::{TaskError, TaskId};

fn pair() -> (Promise<u32>, Future<u32>) {
    let cell: Arc<dyn HasCore<u32>> = Arc::new(Bare(Core::new(TaskId(1), false)));
    (Promise::from_cell(cell.clone()), Future::from_cell(cell))
}

#[test]
fn loom_complete_vs_cancel() {
    loom::model(|| {
        let (p, f) = pair();
        let f = Arc::new(f);
        let f2 = f.clone();
        let t = thread::spawn(move || f2.cancel());
        let started = p.start();
        if started {
            p.complete(Ok(7));
        } else {
            drop(p);
        }
        let cancelled = t.join().unwrap();
        let f = Arc::try_unwrap(f).expect("sole owner");
        // Exactly one of them decided the outcome.
        assert_eq!(cancelled, !started);
        match f.result() {
            Ok(v) => {
                assert!(!cancelled);
                assert_eq!(v, 7);
            }
            Err(e) => {
                assert!(cancelled);
                assert!(e.is_cancelled());
            }
        }
    });
}

#[test]
fn loom_complete_vs_blocking_wait() {
    loom::model(|| {
        let (p, f) = pair();
        let t = thread::spawn(move || {
            assert!(p.start());
            p.complete(Ok(3));
        });
        assert_eq!(f.result(), Ok(3));
        t.join().unwrap();
    });
}

#[test]
fn loom_on_done_vs_complete() {
    loom::model(|| {
        let (p, f) = pair();
        let seen = Arc::new(AtomicUsize::new(0));
        let s2 = seen.clone();
        let t = thread::spawn(move || {
            p.complete(Ok(5));
        });
        f.on_done(move |r| {
            assert_eq!(r, Ok(&5));
            s2.fetch_add(1, Ordering::SeqCst);
        });
        t.join().unwrap();
        // Ran exactly once, whichever side ran it, and before the result could be taken.
        assert_eq!(seen.load(Ordering::SeqCst), 1);
        assert_eq!(f.result(), Ok(5));
    });
}

#[test]
fn loom_kill_vs_complete() {
    loom::model(|| {
        let (p, f) = pair();
        assert!(p.start());
        let killed = Arc::new(AtomicUsize::new(0));
        let k2 = killed.clone();
        p.set_killer(Killer::new(move || {
            k2.fetch_add(1, Ordering::SeqCst);
        }));
        let f = Arc::new(f);
        let f2 = f.clone();
        let t = thread::spawn(move || f2.kill());
        p.complete(Ok(1));
        let won = t.join().unwrap();
        let f = Arc::try_unwrap(f).expect("sole owner");
        let r = f.result();
        if won {
            assert_eq!(killed.load(Ordering::SeqCst), 1);
            assert_eq!(r, Err(TaskError::Cancelled));
        } else {
            assert_eq!(killed.load(Ordering::SeqCst), 0);
            assert_eq!(r, Ok(1));
        }
    });
}

struct Flag(AtomicBool);

impl Wake for Flag {
    fn wake(self: Arc<Self>) {
        self.0.store(true, Ordering::SeqCst);
    }
}

#[test]
fn loom_waker_vs_complete() {
    loom::model(|| {
        let (p, mut f) = pair();
        let flag = Arc::new(Flag(AtomicBool::new(false)));
        let waker = Waker::from(flag.clone());
        let t = thread::spawn(move || {
            p.complete(Ok(9));
        });
        let mut cx = Context::from_waker(&waker);
        let first = std::pin::Pin::new(&mut f).poll(&mut cx);
        t.join().unwrap();
        match first {
            Poll::Ready(r) => assert_eq!(r, Ok(9)),
            Poll::Pending => {
                // The completion must have woken us, and the value is there now.
                assert!(flag.0.load(Ordering::SeqCst));
                assert_eq!(std::pin::Pin::new(&mut f).poll(&mut cx), Poll::Ready(Ok(9)));
            }
        }
    });
}

#[test]
fn loom_two_completers_one_wins() {
    loom::model(|| {
        let core = Arc::new(Bare(Core::<u32>::new(TaskId(2), false)));
        assert!(core.0.start());
        let c2 = core.clone();
        let t = thread::spawn(move || {
            c2.0.complete(Err(TaskError::Shutdown), FROM_RUNNING)
                .is_ok()
        });
        let mine = core.0.complete(Ok(4), FROM_PENDING | FROM_RUNNING).is_ok();
        let theirs = t.join().unwrap();
        assert!(mine ^ theirs);
        let r = core.0.take().expect("terminal");
        assert_eq!(r.is_ok(), mine);
        let f = Future::from_cell(core as Arc<dyn HasCore<u32>>);
        assert_eq!(f.state(), if mine { State::Done } else { State::Failed });
    });
}

#[test]
fn loom_cancel_vs_run_with_a_blocked_waiter() {
    loom::model(|| {
        let (p, f) = pair();
        let f = Arc::new(f);
        let f2 = f.clone();
        let canceller = thread::spawn(move || f2.cancel());
        let runner = thread::spawn(move || {
            if p.start() {
                p.complete(Ok(11));
                true
            } else {
                false
            }
        });
        // Wait (blocking) while the two race.
        f.wait();
        let cancelled = canceller.join().unwrap();
        let ran = runner.join().unwrap();
        assert!(cancelled ^ ran, "exactly one of cancel and run wins");
        let f = Arc::try_unwrap(f).expect("sole owner");
        assert_eq!(f.result().is_ok(), ran);
    });
}
