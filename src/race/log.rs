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

/// What happened during one connect, measured from its start: the attempts (always), and its
/// observer (the event hook, the report being written) when someone looks. Every entry is
/// given the instant it happened, so that the race's core never reads a clock.
#[derive(Debug)]
pub(crate) struct Log<'m> {
    began: Instant,
    records: Vec<Record>,
    /// A remembered winner to forget the moment it fails, not when the race ends, so that
    /// concurrent connects stop trying it first.
    remembered: Option<(&'m WinnerMemory, &'m HostKey, SocketAddr)>,
    observing: Observing<'m>,
}

/// The most attempts a log makes room for up front: eight records stay within the
/// allocator's per-thread cache (1,032 bytes).
const ROOM: usize = 8;

impl<'m> Log<'m> {
    /// The log of a connect that began at `began`, with `observing` told of each event.
    pub(crate) fn new(began: Instant, observing: Observing<'m>) -> Self {
        Self {
            began,
            records: Vec::new(),
            remembered: None,
            observing,
        }
    }

    /// Makes room for `attempts` (at most [`ROOM`]), so that a race of up to eight addresses
    /// grows its log once, and one of many does not allocate for attempts it may never start.
    pub(crate) fn make_room(&mut self, attempts: usize) {
        self.records.reserve_exact(attempts.min(ROOM));
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
        self.records.iter().any(|record| {
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
        let attempts = self.records.iter().map(|record| Started {
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
        let attempts = std::mem::take(&mut self.records).into_iter().map(|record| {
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

    /// Records an attempt to `addr` started at `now`; returns its index.
    #[inline]
    pub(crate) fn start(&mut self, addr: SocketAddr, now: Instant) -> usize {
        tracing::debug!(%addr, elapsed = ?now - self.began, "attempt started");
        self.tell(now, || EventKind::AttemptStarted { addr });
        self.records.push(Record {
            addr,
            started: now,
            failure: None,
        });
        self.records.len() - 1
    }

    /// The address and start of attempt `index`.
    pub(crate) fn attempt(&self, index: usize) -> (SocketAddr, Instant) {
        let record = &self.records[index];
        (record.addr, record.started)
    }

    /// Records that attempt `index` failed at `now`.
    pub(crate) fn fail(&mut self, index: usize, error: io::Error, now: Instant) {
        let record = &mut self.records[index];
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
            && addr == self.records[index].addr
        {
            memory.forget(key, addr);
        }
    }

    /// Notes that attempt `winner` won at `now`, and traces and tells the hook of the attempts
    /// still running: they are about to be dropped.
    #[inline]
    pub(crate) fn won(&mut self, winner: usize, now: Instant) {
        if let Some(recording) = self.recording() {
            recording.winner = Some(winner);
        }
        if !tracing::enabled!(tracing::Level::DEBUG) && self.observing.is_none() {
            return;
        }
        let record = &self.records[winner];
        let (addr, took) = (record.addr, now - record.started);
        tracing::debug!(%addr, elapsed = ?now - self.began, ?took, "attempt won");
        let fallback = winner > 0;
        self.tell(now, || EventKind::AttemptWon {
            addr,
            took,
            fallback,
        });
        let running = self.records.iter().enumerate();
        for (_, record) in running.filter(|&(i, r)| i != winner && r.failure.is_none()) {
            let (addr, took) = (record.addr, now - record.started);
            tracing::debug!(%addr, elapsed = ?now - self.began, ?took, "attempt cancelled");
            self.tell(now, || EventKind::AttemptCancelled { addr, took });
        }
    }
}
