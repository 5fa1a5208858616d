//! Loom models of the engine's protocols: the queue, sleep/wake (no lost wake-up, with and
//! without a lingering poller) and lending (a borrower's news reaches a sleeping slot; the
//! slot takes its worker back only once it is returned). Run with:
//!
//! ```text
//! RUSTFLAGS="--cfg pool_loom" cargo test -p pool-core --release --lib --target-dir target/loom loom
//! ```

use std::sync::Arc;
use std::time::Duration;

use loom::sync::atomic::{AtomicBool, Ordering};
use loom::thread;

use super::queue::Queue;
use super::sleep::Sleep;
use super::slot::SlotShared;
use super::spot::Spot;
use crate::error::WorkerId;

const LONG: Duration = Duration::from_secs(3600);

/// A slot looking for work: pop, else sleep until woken; gives up when `done` is raised.
fn take_or_sleep(q: &Queue<u32>, sleep: &Sleep, done: &AtomicBool) -> Option<u32> {
    loop {
        if let Some(x) = q.pop() {
            return Some(x);
        }
        let raised = || done.load(Ordering::Acquire);
        if raised() {
            return None;
        }
        sleep.sleep(q, || true, raised, LONG);
    }
}

/// A submitter: push, and wake one sleeper if the queue says someone sleeps.
fn submit(q: &Queue<u32>, sleep: &Sleep, x: u32) {
    if q.push(x, |sleepers, _| sleepers) > 0 {
        sleep.wake_one();
    }
}

#[test]
fn loom_queue_producers_and_a_consumer() {
    loom::model(|| {
        let q = Arc::new(Queue::new());
        let q1 = q.clone();
        let t = thread::spawn(move || q1.push(1, |_, n| n));
        let queued = q.push(2, |_, n| n);
        assert!((1..=2).contains(&queued));
        let early = q.pop();
        t.join().unwrap();
        let mut got: Vec<u32> = early.into_iter().collect();
        while let Some(x) = q.pop() {
            got.push(x);
        }
        got.sort_unstable();
        assert_eq!(got, [1, 2], "every task is taken exactly once");
        assert!(q.is_empty());
    });
}

#[test]
fn loom_sleep_no_lost_wakeup() {
    loom::model(|| {
        let q = Arc::new(Queue::new());
        let sleep = Arc::new(Sleep::new());
        let done = Arc::new(AtomicBool::new(false));
        let (q1, s1, d1) = (q.clone(), sleep.clone(), done.clone());
        // A lost wake-up leaves the slot asleep forever: loom reports the deadlock.
        let slot = thread::spawn(move || take_or_sleep(&q1, &s1, &d1));
        submit(&q, &sleep, 7);
        assert_eq!(slot.join().unwrap(), Some(7));
    });
}

#[test]
fn loom_lingering_hands_over_to_a_sleeper() {
    loom::model(|| {
        let q = Arc::new(Queue::new());
        let sleep = Arc::new(Sleep::new());
        let done = Arc::new(AtomicBool::new(false));
        assert!(q.start_lingering());
        // The lingerer polls once, then gives the flag back (to sleep, in the engine).
        let (q1, s1, d1) = (q.clone(), sleep.clone(), done.clone());
        let lingerer = thread::spawn(move || {
            let got = q1.pop();
            if q1.stop_lingering() {
                s1.wake_one();
            }
            if got.is_some() {
                d1.store(true, Ordering::Release);
                s1.wake_all();
            }
            got
        });
        let (q2, s2, d2) = (q.clone(), sleep.clone(), done.clone());
        let sleeper = thread::spawn(move || {
            let got = take_or_sleep(&q2, &s2, &d2);
            if got.is_some() {
                d2.store(true, Ordering::Release);
            }
            got
        });
        // While someone lingers the push wakes nobody; the hand-over must.
        submit(&q, &sleep, 7);
        let a = lingerer.join().unwrap();
        let b = sleeper.join().unwrap();
        assert_eq!(a.or(b), Some(7));
        assert!(a.is_none() || b.is_none(), "taken once");
    });
}

fn spot() -> Arc<Spot<Box<u32>>> {
    Arc::new(Spot::new(Arc::new(SlotShared::new(WorkerId(1))), None))
}

#[test]
fn loom_lend_death_reaches_a_sleeping_slot() {
    loom::model(|| {
        let q: Arc<Queue<u32>> = Arc::new(Queue::new());
        let sleep = Arc::new(Sleep::new());
        let spot = spot();
        let stop = Arc::new(AtomicBool::new(false));
        let (q1, s1, sp1, st1) = (q.clone(), sleep.clone(), spot.clone(), stop.clone());
        let slot = thread::spawn(move || {
            sp1.park(Box::new(5));
            // `find_job` with news: returns on the borrower's news (or, here, `stop`).
            let raised = || sp1.news.load(Ordering::Acquire) || st1.load(Ordering::Acquire);
            while !raised() {
                s1.sleep(&q1, || true, raised, LONG);
            }
            sp1.unpark()
        });
        match spot.borrow() {
            // A lost news wake-up leaves the slot asleep forever: loom reports it.
            Some(w) => {
                if spot.give_back(w, Some("died".into())) {
                    sleep.wake_all();
                }
            }
            None => {
                stop.store(true, Ordering::Release);
                sleep.wake_all();
            }
        }
        let lent = !stop.load(Ordering::Acquire);
        let (w, death) = slot.join().unwrap();
        assert_eq!(*w, 5, "the slot gets its own worker back");
        assert_eq!(
            death.is_some(),
            lent,
            "the death seen while lent reaches the slot"
        );
    });
}

#[test]
fn loom_unpark_waits_for_a_lent_worker() {
    loom::model(|| {
        let spot = spot();
        let sp1 = spot.clone();
        let slot = thread::spawn(move || {
            sp1.park(Box::new(5));
            // Work found at once: take the worker back, waiting while a caller holds it.
            sp1.unpark()
        });
        if let Some(mut w) = spot.borrow() {
            *w += 1;
            assert!(!spot.give_back(w, None));
        }
        let (w, death) = slot.join().unwrap();
        assert!(
            *w == 5 || *w == 6,
            "one holder at a time: the borrower's change is kept"
        );
        assert!(death.is_none());
        assert!(spot.borrow().is_none(), "not parked any more");
    });
}
