//! The race: staggered connection attempts over an ordered address list (RFC 8305 §5), driven
//! inside the caller's future so that nothing outlives it.
//!
//! Ties are decided in one fixed order on every wake: cancellation first, then attempts that
//! finished, then the clock. Attempts that finished in the same poll are taken together: a
//! connection beats a failure, the earliest-started connection wins, and each failure starts
//! one attempt. So a stream that connected at the very instant the deadline passed is
//! returned, not dropped; no attempt starts at or after the deadline; an attempt that connects
//! at the instant its own timeout runs out has connected; and nothing new starts at the
//! instant of a win. `tests/model/mod.rs` states these rules as an executable model.

use std::collections::VecDeque;
use std::future::{Future, poll_fn};
use std::io;
use std::net::SocketAddr;
use std::pin::{Pin, pin};
use std::task::Poll;
use std::time::Duration;

use tokio::time::Instant;

use crate::answers::{Family, merge};
use crate::attempts::{Attempt, Attempts};
use crate::gather::Later;
use crate::history::{AdaptivePace, HostKey, WinnerMemory};
use crate::limits::{Cancel, Timer, earliest, is_past};
use crate::resolve::promote;
use crate::running::{Dialing, Running};

/// How long to wait after one start before the next.
#[derive(Debug)]
pub(crate) enum Stagger<'a> {
    /// Only a failure starts the next attempt (the sequential strategy).
    Never,
    /// A fixed Connection Attempt Delay.
    Fixed(Duration),
    /// A delay learnt from connect times.
    Adaptive(AdaptivePace<'a>),
}

impl Stagger<'_> {
    fn after(&mut self, addr: &SocketAddr) -> Option<Duration> {
        match self {
            Stagger::Never => None,
            Stagger::Fixed(delay) => Some(*delay),
            Stagger::Adaptive(pace) => Some(pace.delay_after(addr)),
        }
    }
}

/// How attempts are paced and bounded.
#[derive(Debug)]
pub(crate) struct Pace<'a> {
    pub(crate) stagger: Stagger<'a>,
    /// Abort an attempt that has run this long; `None` or a duration too large to add: never.
    pub(crate) attempt_timeout: Option<Duration>,
    /// No attempt starts at or after this instant, and the race ends there.
    pub(crate) deadline: Option<Instant>,
    pub(crate) cancel: Cancel<'a>,
}

/// One started attempt, kept for the error report.
#[derive(Debug)]
struct Record {
    addr: SocketAddr,
    started: Instant,
    failure: Option<(io::Error, Instant)>,
}

/// The attempts of one connect, measured from the connect's start.
#[derive(Debug)]
pub(crate) struct Log<'m> {
    began: Instant,
    records: Vec<Record>,
    /// A remembered winner to forget the moment it fails, not when the race ends, so that
    /// concurrent connects stop trying it first.
    remembered: Option<(&'m WinnerMemory, &'m HostKey, SocketAddr)>,
}

impl<'m> Log<'m> {
    pub(crate) fn new(began: Instant) -> Self {
        Self {
            began,
            records: Vec::new(),
            remembered: None,
        }
    }

    /// When the connect began.
    pub(crate) fn began(&self) -> Instant {
        self.began
    }

    /// Forgets `addr` as `key`'s winner in `memory` if its attempt fails.
    pub(crate) fn forget_on_failure(
        &mut self,
        memory: &'m WinnerMemory,
        key: &'m HostKey,
        addr: SocketAddr,
    ) {
        self.remembered = Some((memory, key, addr));
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

    pub(crate) fn start(&mut self, addr: SocketAddr, now: Instant) -> usize {
        tracing::debug!(%addr, elapsed = ?now - self.began, "attempt started");
        self.records.push(Record {
            addr,
            started: now,
            failure: None,
        });
        self.records.len() - 1
    }

    pub(crate) fn fail(&mut self, index: usize, error: io::Error) {
        let record = &mut self.records[index];
        tracing::debug!(
            addr = %record.addr,
            elapsed = ?self.began.elapsed(),
            took = ?record.started.elapsed(),
            %error,
            "attempt failed"
        );
        record.failure = Some((error, Instant::now()));
        if let Some((memory, key, addr)) = self.remembered {
            if addr == record.addr {
                memory.forget(key, addr);
            }
        }
    }

    /// Traces the attempts still running when `winner` won; they are about to be dropped.
    fn trace_cancelled(&self, winner: usize) {
        if !tracing::enabled!(tracing::Level::DEBUG) {
            return;
        }
        let running = self.records.iter().enumerate();
        for (_, record) in running.filter(|&(i, r)| i != winner && r.failure.is_none()) {
            tracing::debug!(
                addr = %record.addr,
                elapsed = ?self.began.elapsed(),
                took = ?record.started.elapsed(),
                "attempt cancelled"
            );
        }
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

/// How a race ended; the attempts are in the log.
#[derive(Debug)]
pub(crate) enum Outcome<S> {
    Won(Won<S>),
    /// Every address was tried and every attempt failed.
    Exhausted,
    TimedOut,
    Cancelled,
}

enum Event<S> {
    Finished(usize, io::Result<S>),
    /// New addresses from a late answer, or `None` when no more answers will come.
    Answered(Option<Vec<SocketAddr>>),
    TimerFired,
    Cancelled,
}

/// Dials `addrs` in order and returns the first stream to connect.
///
/// Attempt 1 starts at once; each next one when the stagger has passed since the last start
/// or at once when an attempt fails. Starting an attempt never disturbs a running one. When one
/// connects, every other running attempt is dropped (closing its socket) before this returns,
/// and no further attempt starts. Only attempts whose waker fired are polled.
pub(crate) async fn race<S, D, Fut>(
    addrs: &[SocketAddr],
    mut later: Option<Later<'_>>,
    pace: Pace<'_>,
    dial: &mut D,
    log: &mut Log<'_>,
) -> Outcome<S>
where
    D: FnMut(SocketAddr) -> Fut,
    Fut: Future<Output = io::Result<S>>,
{
    if pace.cancel.is_cancelled() {
        return Outcome::Cancelled;
    }
    let deadline = pace.deadline;
    let mut cancelled = pace.cancel.watch();
    let interleave = matches!(pace.stagger, Stagger::Fixed(_) | Stagger::Adaptive(_));
    let mut starter = Starter {
        pending: addrs.iter().copied().collect(),
        stagger: pace.stagger,
        attempt_timeout: pace.attempt_timeout,
        deadline,
        last: None,
    };
    let mut running = pin!(Running::default());
    // Starts the next attempt, if one may start, and says when the stagger starts another.
    let mut start_next = |starter: &mut Starter<'_>,
                          now: Instant,
                          running: Pin<&mut Running<_>>,
                          log: &mut Log<'_>| {
        let (addr, index) = starter.next(now, log)?;
        let attempt = Dialing::new(index, dial(addr), now, starter.attempt_timeout);
        running.push(attempt);
        starter.next_start(now, &addr)
    };
    let mut next_start = start_next(&mut starter, Instant::now(), running.as_mut(), log);
    let mut timer = Timer::default();
    // The I/O driver runs once before the first timer is set (a yielded task is woken only
    // after it): a connect on loopback or a LAN has often finished by then, and setting a
    // tokio timer while the other workers sleep wakes one of them. The timer's due instant
    // does not move.
    let mut before_first_timer = pin!(Some(tokio::task::yield_now()));
    loop {
        if running.is_empty() {
            // Nothing runs, and nothing could start: all failed, or time is up. With answers
            // still to come, wait for them.
            let now = Instant::now();
            match (starter.pending.is_empty(), &later) {
                (true, None) => return Outcome::Exhausted,
                (true, Some(_)) if !is_past(deadline, now) => {}
                _ => return Outcome::TimedOut,
            }
        }
        let stagger_due =
            next_start.filter(|start| deadline.is_none_or(|deadline| *start < deadline));
        let answers_due = later.as_ref().and_then(|later| later.until);
        let due = earliest(earliest(stagger_due, answers_due), deadline);
        let event = poll_fn(|cx| {
            if let Some(cancelled) = &mut cancelled {
                if cancelled.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(Event::Cancelled);
                }
            }
            if let Poll::Ready((index, result)) = running.as_mut().poll_next(cx) {
                return Poll::Ready(Event::Finished(index, result));
            }
            if let Some(later) = &mut later {
                if let Poll::Ready(answer) = later.poll_answer(cx) {
                    return Poll::Ready(Event::Answered(answer));
                }
            }
            let Some(due) = due else {
                return Poll::Pending;
            };
            if let Some(yielded) = before_first_timer.as_mut().as_pin_mut() {
                if yielded.poll(cx).is_pending() {
                    return Poll::Pending;
                }
                before_first_timer.set(None);
            }
            timer.poll_until(due, cx).map(|()| Event::TimerFired)
        })
        .await;
        let now = Instant::now();
        match event {
            Event::Cancelled => return Outcome::Cancelled,
            Event::Finished(index, result) => {
                let (winner, failures) = settle_ready(running.as_mut(), index, result, log).await;
                if let Some((index, stream)) = winner {
                    log.trace_cancelled(index);
                    let record = &log.records[index];
                    let took = now - record.started;
                    tracing::debug!(addr = %record.addr, elapsed = ?now - log.began, ?took, "attempt won");
                    // Returning drops `running`, and with it every loser.
                    return Outcome::Won(Won {
                        stream,
                        addr: record.addr,
                        took,
                    });
                }
                // Each failure starts the next attempt at once.
                for _ in 0..failures {
                    next_start = start_next(&mut starter, now, running.as_mut(), log);
                }
            }
            Event::Answered(None) => later = None,
            Event::Answered(Some(added)) => {
                if added.is_empty() {
                    continue;
                }
                let last = starter.last.map(|(_, addr)| Family::of(&addr));
                merge(&mut starter.pending, &added, last, interleave);
                if let Some(remembered) = later.as_ref().and_then(|later| later.remembered) {
                    promote(starter.pending.make_contiguous(), remembered);
                }
                // At once if nothing runs or the stagger has already passed; else at its tick.
                let tick = starter.last.and_then(|(tick, _)| tick);
                if running.is_empty() || tick.is_some_and(|tick| tick <= now) {
                    next_start = start_next(&mut starter, now, running.as_mut(), log);
                } else {
                    next_start = tick;
                }
            }
            Event::TimerFired if is_past(deadline, now) => return Outcome::TimedOut,
            Event::TimerFired => {
                if later
                    .as_ref()
                    .is_some_and(|later| is_past(later.until, now))
                {
                    later = None;
                }
                if next_start.is_some_and(|at| at <= now) {
                    next_start = start_next(&mut starter, now, running.as_mut(), log);
                }
            }
        }
    }
}

/// Takes `first` and every other attempt finished in the same poll together, so that their
/// wake order decides nothing: a connection beats a failure, and of several connections the
/// earliest started wins (later ones are dropped). Logs the failures and returns the winner,
/// if any, and how many failed.
async fn settle_ready<S, F: Future<Output = io::Result<S>>>(
    mut running: Pin<&mut Running<F>>,
    index: usize,
    first: io::Result<S>,
    log: &mut Log<'_>,
) -> (Option<(usize, S)>, usize) {
    let mut winner: Option<(usize, S)> = None;
    let mut failures = 0;
    let mut settle = |index: usize, result: io::Result<S>| match result {
        Ok(stream) if winner.as_ref().is_none_or(|(best, _)| index < *best) => {
            winner = Some((index, stream));
        }
        Ok(_later) => {}
        Err(error) => {
            log.fail(index, error);
            failures += 1;
        }
    };
    settle(index, first);
    poll_fn(|cx| {
        while let Poll::Ready((index, result)) = running.as_mut().poll_next(cx) {
            settle(index, result);
        }
        Poll::Ready(())
    })
    .await;
    (winner, failures)
}

/// Starts attempts in list order.
struct Starter<'p> {
    pending: VecDeque<SocketAddr>,
    stagger: Stagger<'p>,
    attempt_timeout: Option<Duration>,
    deadline: Option<Instant>,
    /// The last attempt started: when the stagger allows the next one, and its address.
    last: Option<(Option<Instant>, SocketAddr)>,
}

impl Starter<'_> {
    /// The next address and its index in the log, unless none is left or the deadline has
    /// come.
    fn next(&mut self, now: Instant, log: &mut Log<'_>) -> Option<(SocketAddr, usize)> {
        if is_past(self.deadline, now) {
            return None;
        }
        let addr = self.pending.pop_front()?;
        Some((addr, log.start(addr, now)))
    }

    /// When the stagger starts the attempt after the one just started to `addr`, if one is
    /// waiting; the tick is kept for addresses that arrive later.
    fn next_start(&mut self, now: Instant, addr: &SocketAddr) -> Option<Instant> {
        let tick = self
            .stagger
            .after(addr)
            .and_then(|delay| now.checked_add(delay));
        self.last = Some((tick, *addr));
        tick.filter(|_| !self.pending.is_empty())
    }
}
