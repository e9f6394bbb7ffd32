//! The attempts of one connect as they happen, kept for the error report; and the winner
//! memory's entry to forget the moment its attempt fails.

use std::io;
use std::net::SocketAddr;

use tokio::time::Instant;

use crate::connector::history::{HostKey, WinnerMemory};
use crate::race::attempts::{Attempt, Attempts};

/// One started attempt.
#[derive(Debug)]
struct Record {
    addr: SocketAddr,
    started: Instant,
    failure: Option<(io::Error, Instant)>,
}

/// The attempts of one connect, measured from the connect's start. Every entry is given the
/// instant it happened, so that the race's core never reads a clock.
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

    /// Closes the log at `now`: attempts still running then get `unfinished` errors.
    pub(crate) fn finish(self, now: Instant, unfinished: impl Fn() -> io::Error) -> Attempts {
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

    /// Records an attempt to `addr` started at `now`; returns its index.
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
        record.failure = Some((error, now));
        if let Some((memory, key, addr)) = self.remembered
            && addr == record.addr
        {
            memory.forget(key, addr);
        }
    }

    /// Traces the attempts still running when `winner` won at `now`; they are about to be
    /// dropped.
    #[inline]
    pub(crate) fn trace_won(&self, winner: usize, now: Instant) {
        if !tracing::enabled!(tracing::Level::DEBUG) {
            return;
        }
        let running = self.records.iter().enumerate();
        for (_, record) in running.filter(|&(i, r)| i != winner && r.failure.is_none()) {
            tracing::debug!(
                addr = %record.addr,
                elapsed = ?now - self.began,
                took = ?now - record.started,
                "attempt cancelled"
            );
        }
        let record = &self.records[winner];
        tracing::debug!(
            addr = %record.addr,
            elapsed = ?now - self.began,
            took = ?now - record.started,
            "attempt won"
        );
    }
}
