//! The race's decisions, with no I/O, no clock and no runtime.
//!
//! The core is fed each event with the instant it happened (the race began, attempts finished,
//! answers arrived, time passed, a token fired) and answers with what to do: it starts
//! attempts through its [`Driver`] and says when it wants to be woken ([`Core::wake_at`]) and
//! how the race ended. Two drivers feed it alike: the tokio future in `driver.rs`, and the
//! model check's simulated clock (`simulation.rs`), which checks these rules against the
//! executable model in `tests/model` without a runtime.
//!
//! The rules, each written here once:
//! - Attempt 1 starts when the race begins; the next one when the stagger has passed since
//!   the last start, or at once when an attempt fails (one start per failure).
//! - Of the attempts that finished at one instant, a connection beats a failure and the
//!   earliest started connection wins; nothing starts at the instant of a win.
//! - No attempt starts at or after the deadline, and the race ends there.
//! - A late answer's new addresses join the ones not yet started (alternating families again
//!   for Happy Eyeballs, the remembered winner first); they start at once if nothing runs or
//!   the stagger has passed, else at its tick.
//! - A service lookup's late answer withdraws the endpoints it replaced (hints), and what has
//!   not started is ordered by rank (record priority) again, each rank interleaved.
//! - A refresh of a stale answer withdraws the stale addresses it no longer lists (those not
//!   yet started are never started), and its new addresses go first, the first at once.
//! - The race fails only when nothing runs, nothing is left and no answer is awaited.
//!
//! Which of several events of one instant is decided first is [`poll_in_order`]'s to say
//! (cancellation, finished attempts, answers, the clock); both drivers poll through it.
//!
//! [`poll_in_order`]: crate::limits::poll_in_order

use std::borrow::Cow;
use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::time::Instant;

use crate::connector::history::AdaptivePace;
use crate::limits::{Woke, earliest, is_past};
use crate::order::admission::not_in;
use crate::order::interleave::{by_rank, merge, promote};
use crate::race::log::Log;
use crate::race::pending::Pending;
use crate::report::ConnectReport;
use crate::resolve::answers::Family;
use crate::resolve::gather::{Arrival, Ranked};

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

    /// Whether late answers are merged by alternating families (Happy Eyeballs).
    fn interleaves(&self) -> bool {
        !matches!(self, Stagger::Never)
    }
}

/// The winner of a race.
#[derive(Debug)]
pub(crate) struct Won<S> {
    pub(crate) stream: S,
    pub(crate) addr: SocketAddr,
    /// How long the winning attempt took to connect, when it was measured: for the adaptive
    /// delay only.
    pub(crate) took: Option<Duration>,
    /// The connect's report, if one was asked for (set when the connect settles).
    pub(crate) report: Option<Box<ConnectReport>>,
}

impl<S> Won<S> {
    /// A winner without a report, which the connect adds when it settles.
    pub(crate) fn new(stream: S, addr: SocketAddr, took: Option<Duration>) -> Self {
        let report = None;
        Self {
            stream,
            addr,
            took,
            report,
        }
    }
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

/// What the core asks of whatever runs its attempts.
pub(crate) trait Driver<S> {
    /// Starts attempt `index` (its place in the log) to `addr` at `now`; `addr` where the
    /// core keeps it, so that the dialer's copy is read from there.
    fn start(&mut self, index: usize, addr: &SocketAddr, now: Instant);

    /// Another attempt that finished at the instant being decided, if there is one.
    fn also_finished(&mut self) -> Option<(usize, io::Result<S>)>;
}

/// What the race waits for besides its attempts.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Awaited {
    /// Answers are awaited until this instant (`None`: as long as they come).
    pub(crate) until: Option<Instant>,
    /// The remembered winner, to go first when an answer brings it.
    pub(crate) remembered: Option<SocketAddr>,
}

/// The state of one race; see the module's documentation.
#[derive(Debug)]
pub(crate) struct Core<'p, 'l, 'm> {
    pending: Pending<'p>,
    stagger: Stagger<'p>,
    deadline: Option<Instant>,
    /// `Some` while answers are still to come.
    awaited: Option<Awaited>,
    /// When the stagger starts the next attempt.
    next_start: Option<Instant>,
    /// The last attempt started: when the stagger allows the next one, and its address's
    /// family (what interleaving late answers needs).
    last: Option<(Option<Instant>, Family)>,
    /// How many attempts run; a `u32`, so that the flag below fits beside it and the
    /// connect's boxed future stays within 1,024 bytes.
    running: u32,
    /// Whether the winner's connect time is measured (for the adaptive delay).
    times_winner: bool,
    log: &'l mut Log<'m>,
}

impl<'p, 'l, 'm> Core<'p, 'l, 'm> {
    pub(crate) fn new(
        addrs: Cow<'p, [SocketAddr]>,
        awaited: Option<Awaited>,
        stagger: Stagger<'p>,
        deadline: Option<Instant>,
        times_winner: bool,
        log: &'l mut Log<'m>,
    ) -> Self {
        Self {
            pending: addrs.into(),
            stagger,
            deadline,
            awaited,
            next_start: None,
            last: None,
            running: 0,
            times_winner,
            log,
        }
    }

    /// The race begins at `now`: unless a token has already fired, attempt 1 starts.
    #[inline]
    pub(crate) fn begin<S>(
        &mut self,
        now: Instant,
        cancelled: bool,
        driver: &mut impl Driver<S>,
    ) -> Option<Outcome<S>> {
        if cancelled {
            self.log.not_started(self.pending.iter());
            return Some(Outcome::Cancelled);
        }
        self.start_next(now, driver);
        self.ended(now)
    }

    /// When the connect that runs this race began.
    #[inline]
    pub(crate) fn connect_began(&self) -> Instant {
        self.log.began()
    }

    /// When the core must be told that time passed: the stagger's tick, the end of the wait
    /// for answers, or the deadline, whichever is first.
    #[inline]
    pub(crate) fn wake_at(&self) -> Option<Instant> {
        let deadline = self.deadline;
        let tick = self
            .next_start
            .filter(|tick| deadline.is_none_or(|deadline| *tick < deadline));
        let answers_end = self.awaited.and_then(|awaited| awaited.until);
        earliest(earliest(tick, answers_end), deadline)
    }

    /// Whether answers are still awaited; once not, the driver may drop their stream.
    #[inline]
    pub(crate) fn awaits_answers(&self) -> bool {
        self.awaited.is_some()
    }

    /// Decides what `woke` means at the instant `clock` reads; `Some` when the race has ended
    /// (the driver then drops every attempt still running). The clock is read at most once,
    /// and not at all for a win that nobody times or watches.
    #[inline(always)]
    pub(crate) fn decide<S>(
        &mut self,
        woke: Woke<(usize, io::Result<S>), Option<Arrival>>,
        clock: impl Fn() -> Instant,
        driver: &mut impl Driver<S>,
    ) -> Option<Outcome<S>> {
        let mut read = None;
        let now = || *read.get_or_insert_with(&clock);
        let ended = self.next(woke, now, driver);
        if ended.is_some() && self.log.is_observed() {
            self.log.not_started(self.pending.iter());
        }
        ended
    }

    #[inline(always)]
    fn next<S>(
        &mut self,
        woke: Woke<(usize, io::Result<S>), Option<Arrival>>,
        mut now: impl FnMut() -> Instant,
        driver: &mut impl Driver<S>,
    ) -> Option<Outcome<S>> {
        match woke {
            Woke::Cancelled => return Some(Outcome::Cancelled),
            Woke::Finished(first) => {
                let (winner, failures) = self.settle(first, &mut now, driver);
                if let Some((index, stream)) = winner {
                    self.log.won(index, &mut now);
                    let (addr, started) = self.log.attempt(index);
                    let took = self.times_winner.then(|| now() - started);
                    return Some(Outcome::Won(Won::new(stream, addr, took)));
                }
                let now = now();
                for _ in 0..failures {
                    self.start_next(now, driver);
                }
            }
            Woke::Arrived(None) => self.awaited = None,
            Woke::Arrived(Some(arrival)) => {
                let now = now();
                let heard = arrival.heard.as_ref().map(|count| *count);
                if arrival.ranked.as_ref().is_none_or(|ranked| ranked.own) {
                    self.log.answer(arrival.family, heard, now);
                }
                match (&arrival.refresh, &arrival.ranked) {
                    (Some(withdrawn), _) => {
                        withdraw(self.pending.to_mut(), withdrawn);
                        self.join_first(&arrival.added, now, driver);
                    }
                    (None, Some(ranked)) => self.join_ranked(&arrival.added, ranked, now, driver),
                    (None, None) => self.join(&arrival.added, now, driver),
                }
            }
            Woke::Due => {
                let now = now();
                if is_past(self.deadline, now) {
                    return Some(Outcome::TimedOut);
                }
                if self
                    .awaited
                    .is_some_and(|awaited| is_past(awaited.until, now))
                {
                    self.awaited = None;
                }
                if self.next_start.is_some_and(|at| at <= now) {
                    self.start_next(now, driver);
                }
            }
        }
        self.ended(now())
    }

    /// How the race ends when nothing runs: every attempt failed, or time is up. With
    /// answers still to come before the deadline, it goes on.
    #[inline]
    fn ended<S>(&self, now: Instant) -> Option<Outcome<S>> {
        if self.running > 0 {
            return None;
        }
        match (self.pending.is_empty(), self.awaited) {
            (true, None) => Some(Outcome::AllFailed),
            (true, Some(_)) if !is_past(self.deadline, now) => None,
            _ => Some(Outcome::TimedOut),
        }
    }

    /// Takes `first` and every other attempt finished at the same instant together, so that
    /// the order they are seen in decides nothing. Logs the failures; returns the winner, if
    /// any, and how many failed.
    #[inline(always)]
    fn settle<S>(
        &mut self,
        first: (usize, io::Result<S>),
        now: &mut impl FnMut() -> Instant,
        driver: &mut impl Driver<S>,
    ) -> (Option<(usize, S)>, usize) {
        let mut winner: Option<(usize, S)> = None;
        let mut failures = 0;
        let mut finished = Some(first);
        while let Some((index, result)) = finished {
            self.running -= 1;
            match result {
                Ok(stream) if winner.as_ref().is_none_or(|(best, _)| index < *best) => {
                    winner = Some((index, stream));
                }
                Ok(_later) => {}
                Err(error) => {
                    self.log.fail(index, error, now());
                    failures += 1;
                }
            }
            // With none left running, none else can have finished.
            finished = match self.running {
                0 => None,
                _ => driver.also_finished(),
            };
        }
        (winner, failures)
    }

    /// A late answer's new addresses join the ones not yet started.
    fn join<S>(&mut self, added: &[SocketAddr], now: Instant, driver: &mut impl Driver<S>) {
        if added.is_empty() {
            return;
        }
        let last = self.last.map(|(_, family)| family);
        merge(
            self.pending.to_mut(),
            added,
            last,
            self.stagger.interleaves(),
        );
        self.promote_remembered();
        self.start_or_tick(now, driver);
    }

    /// A service lookup's late answer: the endpoints it withdrew go, its new ones join, and
    /// what has not started is ordered by rank again (a record's priority may now cover an
    /// address that came without one).
    fn join_ranked<S>(
        &mut self,
        added: &[SocketAddr],
        ranked: &Ranked,
        now: Instant,
        driver: &mut impl Driver<S>,
    ) {
        let pending = self.pending.to_mut();
        withdraw(pending, &ranked.withdrawn);
        let last = self.last.map(|(_, family)| family);
        merge(pending, added, last, self.stagger.interleaves());
        let mut reordered: Vec<SocketAddr> = std::mem::take(pending).into();
        let interleave = self.stagger.interleaves().then_some(1);
        by_rank(&mut reordered, interleave, |addr| {
            ranked.endpoints.rank(addr)
        });
        *pending = reordered.into();
        self.promote_remembered();
        if !added.is_empty() {
            self.start_or_tick(now, driver);
        }
    }

    fn promote_remembered(&mut self) {
        if let Some(remembered) = self.awaited.and_then(|awaited| awaited.remembered) {
            promote(self.pending.to_mut().make_contiguous(), remembered);
        }
    }

    /// After addresses joined: the next starts at once if nothing runs or the stagger has
    /// passed, else at the stagger's tick.
    fn start_or_tick<S>(&mut self, now: Instant, driver: &mut impl Driver<S>) {
        let tick = self.last.and_then(|(tick, _)| tick);
        if self.running == 0 || tick.is_some_and(|tick| tick <= now) {
            self.start_next(now, driver);
        } else {
            self.next_start = tick;
        }
    }

    /// A refresh's new addresses go before the stale ones not yet started (those are
    /// suspect), and the first of them starts at once.
    fn join_first<S>(&mut self, added: &[SocketAddr], now: Instant, driver: &mut impl Driver<S>) {
        if added.is_empty() {
            return;
        }
        let pending = self.pending.to_mut();
        for addr in added.iter().rev() {
            pending.push_front(*addr);
        }
        self.start_next(now, driver);
    }

    /// Starts the next attempt, unless none is left or the deadline has come, and notes when
    /// the stagger starts another.
    #[inline]
    fn start_next<S>(&mut self, now: Instant, driver: &mut impl Driver<S>) {
        self.next_start = None;
        if is_past(self.deadline, now) {
            return;
        }
        let Some(addr) = self.pending.front() else {
            return;
        };
        let index = self.log.start(addr, now);
        self.running += 1;
        driver.start(index, addr, now);
        let tick = self
            .stagger
            .after(addr)
            .and_then(|delay| now.checked_add(delay));
        self.last = Some((tick, Family::of(addr)));
        self.pending.drop_front();
        self.next_start = tick.filter(|_| !self.pending.is_empty());
    }
}

/// Removes from `pending` the addresses in `withdrawn`; linear in both.
fn withdraw(pending: &mut VecDeque<SocketAddr>, withdrawn: &[SocketAddr]) {
    if !withdrawn.is_empty() {
        pending.retain(not_in(withdrawn));
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;
    use std::time::Duration;

    use super::*;

    /// Starts nothing of its own: the test hands the core what finished.
    struct Quiet;

    impl Driver<()> for Quiet {
        fn start(&mut self, _index: usize, _addr: &SocketAddr, _now: Instant) {}

        fn also_finished(&mut self) -> Option<(usize, io::Result<()>)> {
            None
        }
    }

    /// A race over two literals whose first attempt ends as `first` did: how many times the
    /// core read the clock to decide it.
    fn clock_readings(first: io::Result<()>, times_winner: bool) -> usize {
        let began = Instant::now();
        let addrs = [
            "127.0.0.1:1".parse().unwrap(),
            "127.0.0.1:2".parse().unwrap(),
        ];
        let mut log = Log::new(began, None);
        let stagger = Stagger::Fixed(Duration::from_millis(250));
        let mut core = Core::new(
            Cow::Borrowed(&addrs[..]),
            None,
            stagger,
            None,
            times_winner,
            &mut log,
        );
        assert!(core.begin(began, false, &mut Quiet).is_none());
        let readings = Cell::new(0);
        let clock = || {
            readings.set(readings.get() + 1);
            began + Duration::from_millis(5)
        };
        core.decide(Woke::Finished((0, first)), clock, &mut Quiet);
        readings.get()
    }

    #[test]
    fn a_plain_win_reads_no_clock_and_a_failure_reads_it_once() {
        assert_eq!(clock_readings(Ok(()), false), 0);
        assert_eq!(clock_readings(Ok(()), true), 1, "the winner is timed");
        let refused = io::ErrorKind::ConnectionRefused.into();
        assert_eq!(
            clock_readings(Err(refused), false),
            1,
            "read once, used thrice"
        );
    }
}
