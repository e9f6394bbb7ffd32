//! Threads of the crate's own for blocking lookups, so that no lookup waits behind one
//! runtime's busy blocking pool, and one shared by several runtimes belongs to none of them.

use std::collections::VecDeque;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Condvar, Mutex, OnceLock};
use std::time::Duration;

use crate::sync::lock;

/// How long an idle thread waits for work before it exits (tokio's blocking pool waits 10 s).
const KEEP_ALIVE: Duration = Duration::from_secs(10);

type Job = Box<dyn FnOnce() + Send>;

/// A pool that grows a thread whenever every thread is busy; its callers bound how many jobs
/// they give it at once.
struct Pool {
    state: Mutex<PoolState>,
    work: Condvar,
}

#[derive(Default)]
struct PoolState {
    jobs: VecDeque<Job>,
    idle: usize,
}

/// Runs `job` on a thread of the process-wide pool. A job that panics ends alone; its thread
/// goes on. When no thread can be started, `job` is dropped unrun, so whatever it owns must
/// answer its waiters on drop.
pub(crate) fn run(job: impl FnOnce() + Send + 'static) {
    static POOL: OnceLock<Pool> = OnceLock::new();
    let pool = POOL.get_or_init(|| Pool {
        state: Mutex::default(),
        work: Condvar::new(),
    });
    pool.run(Box::new(job));
}

impl Pool {
    fn run(&'static self, job: Job) {
        let mut state = lock(&self.state);
        state.jobs.push_back(job);
        if state.jobs.len() <= state.idle {
            self.work.notify_one();
            return;
        }
        let started = std::thread::Builder::new()
            .name("connect-any-lookup".into())
            .spawn(|| self.work_until_idle());
        if started.is_err() {
            // Not run: dropped here, after the lock is released.
            let unrun = state.jobs.pop_back();
            drop(state);
            drop(unrun);
        }
    }

    fn work_until_idle(&self) {
        let mut state = lock(&self.state);
        loop {
            if let Some(job) = state.jobs.pop_front() {
                drop(state);
                let _ended_alone = catch_unwind(AssertUnwindSafe(job));
                state = lock(&self.state);
                continue;
            }
            state.idle += 1;
            let (woken, waited) = self
                .work
                .wait_timeout(state, KEEP_ALIVE)
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            state = woken;
            state.idle -= 1;
            if waited.timed_out() && state.jobs.is_empty() {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;

    use super::*;

    #[test]
    fn jobs_run_at_once_even_while_others_block() {
        let (done, finished) = mpsc::channel();
        let (release, blocked) = mpsc::channel::<()>();
        run(move || {
            let _released = blocked.recv();
        });
        for n in 0..4 {
            let done = done.clone();
            run(move || done.send(n).unwrap());
        }
        let mut got: Vec<i32> = (0..4)
            .map(|_| finished.recv_timeout(Duration::from_secs(5)).unwrap())
            .collect();
        got.sort_unstable();
        assert_eq!(got, [0, 1, 2, 3]);
        release.send(()).unwrap();
    }

    #[test]
    fn a_job_that_panics_ends_alone() {
        run(|| panic!("a lookup bug"));
        let (done, finished) = mpsc::channel();
        run(move || done.send(()).unwrap());
        finished.recv_timeout(Duration::from_secs(5)).unwrap();
    }
}
