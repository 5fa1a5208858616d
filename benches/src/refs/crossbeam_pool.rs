//! The plainest thread pool: N threads taking boxed closures off one crossbeam channel. The
//! reference for what a pool costs with no futures, no policy and no bookkeeping.

use crossbeam_channel::{Sender, unbounded};
use std::thread::JoinHandle;

type Job = Box<dyn FnOnce() + Send + 'static>;

/// N threads on a crossbeam channel; dropping the pool closes the channel and joins them.
#[derive(Debug)]
pub struct CrossbeamPool {
    jobs: Option<Sender<Job>>,
    threads: Vec<JoinHandle<()>>,
}

impl CrossbeamPool {
    /// Starts `threads` worker threads.
    ///
    /// # Panics
    ///
    /// If the OS refuses to start a thread.
    pub fn new(threads: usize) -> Self {
        let (tx, rx) = unbounded::<Job>();
        let threads = (0..threads)
            .map(|i| {
                let rx = rx.clone();
                std::thread::Builder::new()
                    .name(format!("cb-pool-{i}"))
                    .spawn(move || {
                        for job in rx {
                            job();
                        }
                    })
                    .expect("spawn a crossbeam-pool thread")
            })
            .collect();
        CrossbeamPool {
            jobs: Some(tx),
            threads,
        }
    }

    /// Queues `job` for one of the threads.
    pub fn execute(&self, job: impl FnOnce() + Send + 'static) {
        if let Some(jobs) = &self.jobs {
            // The receivers live as long as the threads, which outlive `self.jobs`.
            jobs.send(Box::new(job))
                .expect("crossbeam-pool threads are alive");
        }
    }
}

impl Drop for CrossbeamPool {
    fn drop(&mut self) {
        drop(self.jobs.take());
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_every_job_and_joins_on_drop() {
        let (tx, rx) = unbounded();
        let pool = CrossbeamPool::new(2);
        for i in 0..100u64 {
            let tx = tx.clone();
            pool.execute(move || tx.send(i).expect("receiver alive"));
        }
        drop(pool);
        drop(tx);
        let mut got: Vec<u64> = rx.iter().collect();
        got.sort_unstable();
        assert_eq!(got, (0..100).collect::<Vec<_>>());
    }
}
