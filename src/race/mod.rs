//! The race: staggered connection attempts over an ordered address list (RFC 8305 §5), driven
//! inside the caller's future so that nothing outlives it.
//!
//! Ties between kinds of event are decided by [`poll_in_order`], the crate's one tie order
//! (cancellation, finished attempts, late answers, the clock). Within finished attempts, those
//! that finished in the same poll are taken together: a connection beats a failure, the
//! earliest-started connection wins, and each failure starts one attempt. So no attempt starts
//! at or after the deadline, and nothing new starts at the instant of a win.

pub(crate) mod attempts;
pub(crate) mod running;

use std::collections::VecDeque;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use pin_project_lite::pin_project;

use tokio::time::Instant;

use crate::order::interleave::merge;

use crate::connector::history::{AdaptivePace, HostKey, WinnerMemory};
use crate::limits::{Cancel, Fired, Timer, Woke, earliest, is_past, poll_in_order};
use crate::order::interleave::promote;
use crate::race::attempts::{Attempt, Attempts};
use crate::race::running::{Dialing, Running};
use crate::resolve::answers::Family;
use crate::resolve::gather::Later;

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
    #[inline]
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
            let aborted = record.failure.is_none();
            let (error, ended) = record.failure.unwrap_or_else(|| (unfinished(), now));
            let attempt = Attempt::new(
                record.addr,
                error,
                record.started - self.began,
                ended - self.began,
            );
            if aborted { attempt.aborted() } else { attempt }
        });
        Attempts::new(attempts.collect())
    }

    #[inline]
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
        if let Some((memory, key, addr)) = self.remembered
            && addr == record.addr
        {
            memory.forget(key, addr);
        }
    }

    /// Traces the attempts still running when `winner` won; they are about to be dropped.
    #[inline]
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
    AllFailed,
    TimedOut,
    Cancelled,
}

pin_project! {
    /// The race's state; see [`race`]. A hand-written future rather than an `async fn`: its
    /// size is its fields, without the second copies of arguments and the nested futures an
    /// `async fn` keeps, which keeps a connect's boxed future under 1 KiB, in the allocator's
    /// fast path for small blocks.
    struct Race<'r, 'm, D, Fut, Y> {
        starter: Starter<'r>,
        later: Option<Later<'r>>,
        cancel: Cancel<'r>,
        cancelled: Option<Pin<Box<Fired<'r>>>>,
        // Whether late answers are merged by alternating families (Happy Eyeballs).
        interleave: bool,
        // When the stagger starts the next attempt.
        next_start: Option<Instant>,
        timer: Timer,
        #[pin]
        before_first_timer: Option<Y>,
        #[pin]
        running: Running<Fut>,
        dial: &'r mut D,
        log: &'r mut Log<'m>,
        begun: bool,
    }
}

/// Dials `addrs` in order and returns the first stream to connect.
///
/// Attempt 1 starts when first polled; each next one when the stagger has passed since the
/// last start or at once when an attempt fails. Starting an attempt never disturbs a running
/// one. When one connects, every other running attempt is dropped (closing its socket) before
/// the race completes, and no further attempt starts. Only attempts whose waker fired are
/// polled.
pub(crate) fn race<'r, 'm, S, D, Fut>(
    addrs: Vec<SocketAddr>,
    later: Option<Later<'r>>,
    pace: Pace<'r>,
    dial: &'r mut D,
    log: &'r mut Log<'m>,
) -> impl Future<Output = Outcome<S>>
where
    'm: 'r,
    D: FnMut(SocketAddr) -> Fut,
    Fut: Future<Output = io::Result<S>>,
{
    Race {
        interleave: matches!(pace.stagger, Stagger::Fixed(_) | Stagger::Adaptive(_)),
        starter: Starter {
            pending: addrs.into(),
            stagger: pace.stagger,
            attempt_timeout: pace.attempt_timeout,
            deadline: pace.deadline,
            last: None,
        },
        later,
        cancel: pace.cancel,
        cancelled: None,
        next_start: None,
        timer: Timer::default(),
        // The I/O driver runs once before the first timer is set (a yielded task is woken
        // only after it): a connect on loopback or a LAN has often finished by then, and
        // setting a tokio timer while the other workers sleep wakes one of them. The timer's
        // due instant does not move.
        before_first_timer: Some(tokio::task::yield_now()),
        running: Running::default(),
        dial,
        log,
        begun: false,
    }
}

impl<S, D, Fut, Y> Future for Race<'_, '_, D, Fut, Y>
where
    D: FnMut(SocketAddr) -> Fut,
    Fut: Future<Output = io::Result<S>>,
    Y: Future<Output = ()>,
{
    type Output = Outcome<S>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Outcome<S>> {
        let mut this = self.project();
        if !*this.begun {
            *this.begun = true;
            if this.cancel.is_cancelled() {
                return Poll::Ready(Outcome::Cancelled);
            }
            *this.cancelled = this.cancel.watch();
            let now = Instant::now();
            *this.next_start =
                this.starter
                    .start_next(now, this.running.as_mut(), *this.dial, this.log);
        }
        let deadline = this.starter.deadline;
        loop {
            if this.running.is_empty() {
                // Nothing runs, and nothing could start: all failed, or time is up. With
                // answers still to come, wait for them.
                match (this.starter.pending.is_empty(), &*this.later) {
                    (true, None) => return Poll::Ready(Outcome::AllFailed),
                    (true, Some(_)) if !is_past(deadline, Instant::now()) => {}
                    _ => return Poll::Ready(Outcome::TimedOut),
                }
            }
            let stagger_due = this
                .next_start
                .filter(|start| deadline.is_none_or(|deadline| *start < deadline));
            let answers_due = this.later.as_ref().and_then(|later| later.until);
            let due = earliest(earliest(stagger_due, answers_due), deadline);
            let (running, later) = (&mut this.running, &mut *this.later);
            let (yielded, timer) = (&mut this.before_first_timer, &mut *this.timer);
            let woke = ready!(poll_in_order(
                cx,
                this.cancelled.as_mut(),
                |cx| running.as_mut().poll_next(cx),
                |cx| match later {
                    Some(later) => later.poll_answer(cx),
                    None => Poll::Pending,
                },
                |cx| {
                    let Some(due) = due else {
                        return Poll::Pending;
                    };
                    if let Some(yielding) = yielded.as_mut().as_pin_mut() {
                        ready!(yielding.poll(cx));
                        yielded.set(None);
                    }
                    timer.poll_until(due, cx)
                },
            ));
            match woke {
                Woke::Cancelled => {
                    this.running.set(Running::default());
                    return Poll::Ready(Outcome::Cancelled);
                }
                Woke::Finished(first) => {
                    let now = Instant::now();
                    let (winner, failures) =
                        settle_ready(this.running.as_mut(), cx, first, this.log);
                    if let Some((index, stream)) = winner {
                        this.log.trace_cancelled(index);
                        // Every loser is dropped here, before the race completes.
                        this.running.set(Running::default());
                        let record = &this.log.records[index];
                        let took = now - record.started;
                        tracing::debug!(addr = %record.addr, elapsed = ?now - this.log.began, ?took, "attempt won");
                        return Poll::Ready(Outcome::Won(Won {
                            stream,
                            addr: record.addr,
                            took,
                        }));
                    }
                    // Each failure starts the next attempt at once.
                    for _ in 0..failures {
                        *this.next_start = this.starter.start_next(
                            now,
                            this.running.as_mut(),
                            *this.dial,
                            this.log,
                        );
                    }
                    continue;
                }
                Woke::Arrived(None) => {
                    *this.later = None;
                    continue;
                }
                Woke::Arrived(Some(added)) if added.is_empty() => continue,
                Woke::Arrived(Some(added)) => {
                    let remembered = this.later.as_ref().and_then(|later| later.remembered);
                    let starter = &mut *this.starter;
                    let last = starter.last.map(|(_, addr)| Family::of(&addr));
                    merge(&mut starter.pending, &added, last, *this.interleave);
                    if let Some(remembered) = remembered {
                        promote(starter.pending.make_contiguous(), remembered);
                    }
                    // At once if nothing runs or the stagger has already passed; else at
                    // its tick.
                    let now = Instant::now();
                    let tick = starter.last.and_then(|(tick, _)| tick);
                    *this.next_start =
                        if this.running.is_empty() || tick.is_some_and(|tick| tick <= now) {
                            starter.start_next(now, this.running.as_mut(), *this.dial, this.log)
                        } else {
                            tick
                        };
                    continue;
                }
                Woke::Due => {}
            }
            let now = Instant::now();
            if is_past(deadline, now) {
                this.running.set(Running::default());
                return Poll::Ready(Outcome::TimedOut);
            }
            if this
                .later
                .as_ref()
                .is_some_and(|later| is_past(later.until, now))
            {
                *this.later = None;
            }
            if this.next_start.is_some_and(|at| at <= now) {
                *this.next_start =
                    this.starter
                        .start_next(now, this.running.as_mut(), *this.dial, this.log);
            }
        }
    }
}

/// Takes `first` and every other attempt finished in the same poll together, so that their
/// wake order decides nothing: a connection beats a failure, and of several connections the
/// earliest started wins (later ones are dropped). Logs the failures and returns the winner,
/// if any, and how many failed.
fn settle_ready<S, F: Future<Output = io::Result<S>>>(
    mut running: Pin<&mut Running<F>>,
    cx: &mut Context<'_>,
    first: (usize, io::Result<S>),
    log: &mut Log<'_>,
) -> (Option<(usize, S)>, usize) {
    let mut winner: Option<(usize, S)> = None;
    let mut failures = 0;
    let mut finished = Some(first);
    while let Some((index, result)) = finished {
        match result {
            Ok(stream) if winner.as_ref().is_none_or(|(best, _)| index < *best) => {
                winner = Some((index, stream));
            }
            Ok(_later) => {}
            Err(error) => {
                log.fail(index, error);
                failures += 1;
            }
        }
        finished = match running.as_mut().poll_next(cx) {
            Poll::Ready(next) => Some(next),
            Poll::Pending => None,
        };
    }
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
    /// Starts the next attempt, if one may start, and says when the stagger starts another.
    fn start_next<S, D, Fut>(
        &mut self,
        now: Instant,
        running: Pin<&mut Running<Fut>>,
        dial: &mut D,
        log: &mut Log<'_>,
    ) -> Option<Instant>
    where
        D: FnMut(SocketAddr) -> Fut,
        Fut: Future<Output = io::Result<S>>,
    {
        let (addr, index) = self.next(now, log)?;
        running.push(Dialing::new(index, dial(addr), now, self.attempt_timeout));
        self.next_start(now, &addr)
    }

    /// The next address and its index in the log, unless none is left or the deadline has
    /// come.
    #[inline]
    fn next(&mut self, now: Instant, log: &mut Log<'_>) -> Option<(SocketAddr, usize)> {
        if is_past(self.deadline, now) {
            return None;
        }
        let addr = self.pending.pop_front()?;
        Some((addr, log.start(addr, now)))
    }

    /// When the stagger starts the attempt after the one just started to `addr`, if one is
    /// waiting; the tick is kept for addresses that arrive later.
    #[inline]
    fn next_start(&mut self, now: Instant, addr: &SocketAddr) -> Option<Instant> {
        let tick = self
            .stagger
            .after(addr)
            .and_then(|delay| now.checked_add(delay));
        self.last = Some((tick, *addr));
        tick.filter(|_| !self.pending.is_empty())
    }
}
