//! The attempts of one connect as they happen, kept for the error report; and the winner
//! memory's entry to forget the moment its attempt fails.

use std::io;
use std::net::SocketAddr;

use tokio::time::Instant;

use crate::connector::history::{HostKey, WinnerMemory};
use crate::error::ConnectError;
use crate::race::attempts::{Attempt, Attempts};
use crate::report::ConnectReport;
use crate::report::event::EventKind;
use crate::report::observer::Observing;
use crate::report::recording::{Recording, Started};
use crate::resolve::answers::Family;
use crate::resolve::nat64::is_no_route;

/// One started attempt.
#[derive(Debug)]
struct Record {
    addr: SocketAddr,
    started: Instant,
    failure: Option<(io::Error, Instant)>,
}

/// The attempts a log makes room for when it lists its first: eight records (576 bytes) stay
/// within the allocator's per-thread cache.
const ROOM: usize = 8;

/// The attempts started.
#[derive(Debug)]
enum Records {
    /// The first attempt while it is the only one, begun with the connect, and has not
    /// failed: its address alone, so that a race over literals whose first attempt wins
    /// allocates nothing for its log. (The address fits where the list would be; a whole
    /// record would take the general path's boxed future past the allocator's 1 KiB fast
    /// path.)
    First(SocketAddr),
    Listed(Vec<Record>),
}

impl Records {
    /// The list, the first attempt moved into it if it was kept alone.
    #[inline]
    fn listed(&mut self, began: Instant) -> &mut Vec<Record> {
        if let Self::First(addr) = *self {
            let mut listed = Vec::with_capacity(ROOM);
            listed.push(Record::started(addr, began));
            *self = Self::Listed(listed);
        }
        match self {
            Self::Listed(listed) => listed,
            Self::First(_) => unreachable!("listed just above"),
        }
    }

    /// The records listed; none while the first attempt is kept alone (it has not failed,
    /// and nothing else runs).
    fn as_listed(&self) -> &[Record] {
        match self {
            Self::First(_) => &[],
            Self::Listed(listed) => listed,
        }
    }
}

impl Record {
    fn started(addr: SocketAddr, started: Instant) -> Self {
        Self {
            addr,
            started,
            failure: None,
        }
    }
}

/// What happened during one connect, measured from its start: the attempts (always), and its
/// observer (the event hook, the report being written) when someone looks. Every entry is
/// given the instant it happened, so that the race's core never reads a clock.
#[derive(Debug)]
pub(crate) struct Log<'m> {
    began: Instant,
    records: Records,
    /// A remembered winner to forget the moment it fails, not when the race ends, so that
    /// concurrent connects stop trying it first.
    remembered: Option<(&'m WinnerMemory, &'m HostKey, SocketAddr)>,
    observing: Observing<'m>,
}

impl<'m> Log<'m> {
    /// The log of a connect that began at `began`, with `observing` told of each event.
    pub(crate) fn new(began: Instant, observing: Observing<'m>) -> Self {
        Self {
            began,
            records: Records::Listed(Vec::new()),
            remembered: None,
            observing,
        }
    }

    /// Whether anyone looks at this connect's events: a hook, or a report.
    pub(crate) fn is_observed(&self) -> bool {
        self.observing.is_some()
    }

    #[inline]
    fn tell<'e>(&self, now: Instant, kind: impl FnOnce() -> EventKind<'e>) {
        if let Some(observer) = &self.observing {
            observer.tell(now, kind);
        }
    }

    fn recording(&mut self) -> Option<&mut Recording> {
        self.observing.as_mut()?.recording.as_mut()
    }

    /// A late answer of the resolver arrived at `now`, holding `addrs` addresses.
    pub(crate) fn answer(
        &mut self,
        family: Option<Family>,
        addrs: Result<usize, &io::Error>,
        now: Instant,
    ) {
        if let Some(observer) = &mut self.observing {
            observer.answer(family, addrs, now);
        }
    }

    /// Whether an attempt to an IPv4 address failed for want of a route.
    pub(crate) fn failed_for_want_of_a_route(&self) -> bool {
        self.records.as_listed().iter().any(|record| {
            let no_route = record.failure.as_ref().is_some_and(|(e, _)| is_no_route(e));
            record.addr.is_ipv4() && no_route
        })
    }

    /// Notes the addresses left unstarted when the race ended.
    pub(crate) fn not_started<'a>(&mut self, addrs: impl IntoIterator<Item = &'a SocketAddr>) {
        if let Some(recording) = self.recording() {
            recording.not_started.extend(addrs);
        }
    }

    /// The report of a connect that ended at `now`, if one is written.
    pub(crate) fn report(&mut self, now: Instant) -> Option<ConnectReport> {
        let observer = self.observing.as_mut()?;
        let target = observer.target().to_string();
        let recording = observer.recording.take()?;
        let began = self.began;
        let attempts = self.records.listed(began).iter().map(|record| Started {
            addr: record.addr,
            started: record.started - began,
            failure: record.failure.as_ref().map(|(e, at)| (e, *at - began)),
        });
        Some(recording.report(target, attempts, now - began))
    }

    /// Tells the hook how the connect ended, at `now`.
    pub(crate) fn finished(&self, result: Result<SocketAddr, &ConnectError>, now: Instant) {
        if let Some(observer) = &self.observing {
            observer.finished(result, now);
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

    /// Closes the log at `now`: attempts still running then get `unfinished` errors.
    pub(crate) fn finish(&mut self, now: Instant, unfinished: impl Fn() -> io::Error) -> Attempts {
        let attempts = std::mem::take(self.records.listed(self.began))
            .into_iter()
            .map(|record| {
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

    /// Records an attempt to `addr` started at `now`; returns its index. By reference, so that
    /// the address is copied once, from where it is kept.
    #[inline]
    pub(crate) fn start(&mut self, addr: &SocketAddr, now: Instant) -> usize {
        tracing::debug!(%addr, elapsed = ?now - self.began, "attempt started");
        self.tell(now, || EventKind::AttemptStarted { addr: *addr });
        if let Records::Listed(listed) = &self.records
            && listed.is_empty()
            && now == self.began
        {
            self.records = Records::First(*addr);
            return 0;
        }
        let listed = self.records.listed(self.began);
        if listed.capacity() == 0 {
            listed.reserve_exact(ROOM);
        }
        listed.push(Record::started(*addr, now));
        listed.len() - 1
    }

    /// The address and start of attempt `index`.
    pub(crate) fn attempt(&self, index: usize) -> (SocketAddr, Instant) {
        match &self.records {
            Records::First(addr) => (*addr, self.began),
            Records::Listed(listed) => (listed[index].addr, listed[index].started),
        }
    }

    /// Records that attempt `index` failed at `now`.
    pub(crate) fn fail(&mut self, index: usize, error: io::Error, now: Instant) {
        let record = &mut self.records.listed(self.began)[index];
        tracing::debug!(
            addr = %record.addr,
            elapsed = ?now - self.began,
            took = ?now - record.started,
            %error,
            "attempt failed"
        );
        let (addr, started) = (record.addr, record.started);
        let error = &record.failure.insert((error, now)).0;
        if let Some(observer) = &self.observing {
            let took = now - started;
            observer.tell(now, || EventKind::AttemptFailed { addr, took, error });
        }
        if let Some((memory, key, addr)) = self.remembered
            && addr == self.records.as_listed()[index].addr
        {
            memory.forget(key, addr);
        }
    }

    /// Notes that attempt `winner` won at the instant `now` reads, and traces and tells the
    /// hook of the attempts still running: they are about to be dropped. The instant is read
    /// only if someone looks.
    #[inline]
    pub(crate) fn won(&mut self, winner: usize, now: impl FnOnce() -> Instant) {
        if let Some(recording) = self.recording() {
            recording.winner = Some(winner);
        }
        if !tracing::enabled!(tracing::Level::DEBUG) && self.observing.is_none() {
            return;
        }
        let now = now();
        let (addr, started) = self.attempt(winner);
        let took = now - started;
        tracing::debug!(%addr, elapsed = ?now - self.began, ?took, "attempt won");
        let fallback = winner > 0;
        self.tell(now, || EventKind::AttemptWon {
            addr,
            took,
            fallback,
        });
        let running = self.records.as_listed().iter().enumerate();
        for (_, record) in running.filter(|&(i, r)| i != winner && r.failure.is_none()) {
            let (addr, took) = (record.addr, now - record.started);
            tracing::debug!(%addr, elapsed = ?now - self.began, ?took, "attempt cancelled");
            self.tell(now, || EventKind::AttemptCancelled { addr, took });
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn refused() -> io::Error {
        io::ErrorKind::ConnectionRefused.into()
    }

    fn aborted() -> io::Error {
        io::ErrorKind::TimedOut.into()
    }

    #[test]
    fn a_first_attempt_begun_with_the_connect_is_kept_inline_until_it_ends() {
        let began = Instant::now();
        let addr: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let mut log = Log::new(began, None);
        assert_eq!(log.start(&addr, began), 0);
        assert!(matches!(log.records, Records::First(kept) if kept == addr));
        assert_eq!(log.attempt(0), (addr, began));
        let attempts = log.finish(began + Duration::from_millis(7), aborted);
        assert_eq!(attempts.len(), 1);
        assert_eq!(attempts[0].addr(), addr);
        assert_eq!(attempts[0].started(), Duration::ZERO);
        assert_eq!(attempts[0].duration(), Duration::from_millis(7));
        assert_eq!(attempts[0].error().kind(), io::ErrorKind::TimedOut);
    }

    #[test]
    fn a_failure_or_a_second_attempt_lists_the_first_in_its_place() {
        let began = Instant::now();
        let (first, second): (SocketAddr, SocketAddr) =
            ("127.0.0.1:1".parse().unwrap(), "[::1]:2".parse().unwrap());
        let mut log = Log::new(began, None);
        log.start(&first, began);
        log.fail(0, refused(), began + Duration::from_millis(3));
        assert!(matches!(&log.records, Records::Listed(listed) if listed.capacity() >= ROOM));
        assert!(!log.failed_for_want_of_a_route());
        let later = began + Duration::from_millis(3);
        assert_eq!(log.start(&second, later), 1);
        assert_eq!(log.attempt(1), (second, later));
        let attempts = log.finish(began + Duration::from_millis(10), aborted);
        let seen: Vec<_> = attempts
            .iter()
            .map(|a| (a.addr(), a.started(), a.error().kind()))
            .collect();
        let ms = Duration::from_millis;
        assert_eq!(
            seen,
            [
                (first, ms(0), io::ErrorKind::ConnectionRefused),
                (second, ms(3), io::ErrorKind::TimedOut),
            ]
        );

        // Two attempts at the connect's very instant: both listed, in order.
        let mut log = Log::new(began, None);
        log.start(&first, began);
        assert_eq!(log.start(&second, began), 1);
        assert_eq!(
            (log.attempt(0), log.attempt(1)),
            ((first, began), (second, began))
        );
    }

    #[test]
    fn an_attempt_begun_after_the_connect_is_listed_at_once() {
        let began = Instant::now();
        let addr: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let mut log = Log::new(began, None);
        let later = began + Duration::from_millis(1);
        assert_eq!(log.start(&addr, later), 0);
        assert!(matches!(&log.records, Records::Listed(listed) if listed.len() == 1));
        assert_eq!(log.attempt(0), (addr, later));
    }
}
