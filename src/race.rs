//! The race: staggered connection attempts over an ordered address list (RFC 8305 §5), driven
//! inside the caller's future so that nothing outlives it.

use std::future::{Future, poll_fn};
use std::io;
use std::net::SocketAddr;
use std::pin::{Pin, pin};
use std::task::Poll;
use std::time::Duration;

use tokio::time::{Instant, Sleep, sleep_until};

use crate::error::{Attempt, Attempts};

/// How attempts are paced.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Pace {
    /// Start the next attempt this long after the last start; `None` waits for a failure
    /// (the sequential strategy).
    pub(crate) stagger: Option<Duration>,
    /// Abort an attempt that has run this long.
    pub(crate) attempt_timeout: Option<Duration>,
}

/// One started attempt, kept for the error report.
#[derive(Debug)]
pub(crate) struct Record {
    addr: SocketAddr,
    started: Instant,
    failure: Option<(io::Error, Instant)>,
}

/// The attempts of one connect, measured from the connect's start.
#[derive(Debug)]
pub(crate) struct Log {
    began: Instant,
    records: Vec<Record>,
}

impl Log {
    pub(crate) fn new(began: Instant) -> Self {
        Self {
            began,
            records: Vec::new(),
        }
    }

    /// Closes the log: attempts still running when the connect ended get `unfinished` errors.
    pub(crate) fn finish(self, unfinished: impl Fn() -> io::Error) -> Attempts {
        let now = Instant::now();
        let attempts = self.records.into_iter().map(|record| {
            let (error, ended) = record.failure.unwrap_or_else(|| (unfinished(), now));
            Attempt::new(
                record.addr,
                error,
                record.started - self.began,
                ended - self.began,
            )
        });
        Attempts::new(attempts.collect())
    }

    fn start(&mut self, addr: SocketAddr) -> usize {
        self.records.push(Record {
            addr,
            started: Instant::now(),
            failure: None,
        });
        self.records.len() - 1
    }

    fn fail(&mut self, index: usize, error: io::Error) {
        let record = &mut self.records[index];
        tracing::debug!(
            addr = %record.addr,
            elapsed = ?self.began.elapsed(),
            took = ?record.started.elapsed(),
            %error,
            "attempt failed"
        );
        record.failure = Some((error, Instant::now()));
    }
}

/// The winner of a race.
#[derive(Debug)]
pub(crate) struct Won<S> {
    pub(crate) stream: S,
    pub(crate) addr: SocketAddr,
    /// How long the winning attempt took to connect.
    pub(crate) took: Duration,
}

enum Event<S> {
    Finished(usize, io::Result<S>),
    TimerFired,
}

/// Dials `addrs` in order and returns the first stream to connect, or `None` once every
/// attempt failed (the reasons are in `log`).
///
/// Attempt 1 starts at once; each next one when `pace.stagger` has passed since the last start
/// or at once when an attempt fails. Starting an attempt never disturbs a running one. When one
/// connects, every other running attempt is dropped (closing its socket) before this returns,
/// and no further attempt starts.
pub(crate) async fn race<S, D, Fut>(
    addrs: &[SocketAddr],
    pace: Pace,
    dial: &mut D,
    log: &mut Log,
) -> Option<Won<S>>
where
    D: FnMut(SocketAddr) -> Fut,
    Fut: Future<Output = io::Result<S>>,
{
    let mut race = Race {
        pending: addrs.iter(),
        running: Vec::new(),
        next_start: None,
        pace,
        dial,
        log,
    };
    // One timer serves both the stagger and the attempt timeout. It is created only when
    // needed, so a single-address connect without attempt timeout never touches the timer wheel.
    let mut timer: Pin<&mut Option<Sleep>> = pin!(None);
    race.start_next();
    while !race.running.is_empty() {
        let event = poll_fn(|cx| {
            for (position, (_, attempt)) in race.running.iter_mut().enumerate() {
                if let Poll::Ready(result) = attempt.as_mut().poll(cx) {
                    return Poll::Ready(Event::Finished(position, result));
                }
            }
            let Some(due) = race.next_due() else {
                return Poll::Pending;
            };
            match timer.as_mut().as_pin_mut() {
                Some(sleep) if sleep.deadline() == due => {}
                Some(sleep) => sleep.reset(due),
                None => timer.set(Some(sleep_until(due))),
            }
            match timer.as_mut().as_pin_mut().map(|sleep| sleep.poll(cx)) {
                Some(Poll::Ready(())) => Poll::Ready(Event::TimerFired),
                _ => Poll::Pending,
            }
        })
        .await;
        match event {
            Event::Finished(position, Ok(stream)) => return Some(race.win(position, stream)),
            Event::Finished(position, Err(error)) => {
                let (index, _) = race.running.remove(position);
                race.log.fail(index, error);
                race.start_next();
            }
            Event::TimerFired => race.on_timer(),
        }
    }
    None
}

struct Race<'a, D, Fut> {
    pending: std::slice::Iter<'a, SocketAddr>,
    /// Running attempts in start order: (index into the log, the dial future).
    running: Vec<(usize, Pin<Box<Fut>>)>,
    /// When the stagger starts the next attempt, if one is left to start.
    next_start: Option<Instant>,
    pace: Pace,
    dial: &'a mut D,
    log: &'a mut Log,
}

impl<S, D, Fut> Race<'_, D, Fut>
where
    D: FnMut(SocketAddr) -> Fut,
    Fut: Future<Output = io::Result<S>>,
{
    fn start_next(&mut self) {
        let Some(&addr) = self.pending.next() else {
            self.next_start = None;
            return;
        };
        let index = self.log.start(addr);
        tracing::debug!(%addr, elapsed = ?self.log.began.elapsed(), "attempt started");
        self.running.push((index, Box::pin((self.dial)(addr))));
        let more = !self.pending.as_slice().is_empty();
        self.next_start = match self.pace.stagger {
            Some(delay) if more => Some(self.log.records[index].started + delay),
            _ => None,
        };
    }

    /// When the oldest running attempt runs out of time, if attempts have a limit.
    fn oldest_deadline(&self) -> Option<Instant> {
        let limit = self.pace.attempt_timeout?;
        let &(oldest, _) = self.running.first()?;
        Some(self.log.records[oldest].started + limit)
    }

    /// The next moment the timer must wake the race.
    fn next_due(&self) -> Option<Instant> {
        match (self.next_start, self.oldest_deadline()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Times out the oldest attempt if its time is up (which starts the next one at once), or
    /// else starts the next attempt because the stagger has passed.
    fn on_timer(&mut self) {
        let now = Instant::now();
        if self
            .oldest_deadline()
            .is_some_and(|deadline| deadline <= now)
        {
            let (index, _) = self.running.remove(0);
            let limit = self.pace.attempt_timeout.unwrap_or_default();
            let message = format!("attempt timed out after {limit:?}");
            self.log
                .fail(index, io::Error::new(io::ErrorKind::TimedOut, message));
            self.start_next();
        } else if self.next_start.is_some_and(|at| at <= now) {
            self.start_next();
        }
    }

    /// Takes the winner out and drops every other running attempt, closing its socket.
    fn win(&mut self, position: usize, stream: S) -> Won<S> {
        let (index, _) = self.running.remove(position);
        let record = &self.log.records[index];
        let took = record.started.elapsed();
        tracing::debug!(addr = %record.addr, elapsed = ?self.log.began.elapsed(), ?took, "attempt won");
        for (loser, attempt) in self.running.drain(..) {
            drop(attempt);
            let record = &self.log.records[loser];
            tracing::debug!(
                addr = %record.addr,
                elapsed = ?self.log.began.elapsed(),
                took = ?record.started.elapsed(),
                "attempt cancelled"
            );
        }
        Won {
            stream,
            addr: record.addr,
            took,
        }
    }
}
