//! A connect's report as it is written: what the attempt log does not already hold.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::report::{AddressSource, AnswerRecord, AttemptOutcome, AttemptRecord, ConnectReport};
use crate::resolve::answers::{Family, copy_error};
use crate::resolve::service::endpoint::Endpoints;

/// Everything a report needs besides the attempts (which the log keeps for every connect);
/// made only for a connect that asked for a report.
#[derive(Debug)]
pub(crate) struct Recording {
    pub(crate) source: AddressSource,
    pub(crate) answers: Vec<AnswerRecord>,
    pub(crate) resolution_delay: Option<Duration>,
    pub(crate) not_started: Vec<SocketAddr>,
    pub(crate) winner: Option<usize>,
    pub(crate) remembered: Option<SocketAddr>,
    pub(crate) adaptive_delay: bool,
    /// A service connect's endpoints, so that each attempt names its record.
    pub(crate) endpoints: Option<Arc<Endpoints>>,
}

impl Default for Recording {
    fn default() -> Self {
        Self {
            source: AddressSource::Target,
            answers: Vec::new(),
            resolution_delay: None,
            not_started: Vec::new(),
            winner: None,
            remembered: None,
            adaptive_delay: false,
            endpoints: None,
        }
    }
}

/// One started attempt as the log holds it, from the start of the connect.
pub(crate) struct Started<'a> {
    pub(crate) addr: SocketAddr,
    pub(crate) started: Duration,
    pub(crate) failure: Option<(&'a io::Error, Duration)>,
}

impl Recording {
    pub(crate) fn answer(
        &mut self,
        family: Option<Family>,
        addrs: Result<usize, &io::Error>,
        at: Duration,
    ) {
        self.answers.push(AnswerRecord {
            family,
            at,
            addresses: addrs.unwrap_or(0),
            error: addrs.err().map(copy_error),
        });
    }

    /// The report, at `ended` from the start of the connect, of `attempts` in start order.
    pub(crate) fn report<'a>(
        self,
        target: String,
        attempts: impl Iterator<Item = Started<'a>>,
        ended: Duration,
    ) -> ConnectReport {
        let winner = self.winner;
        let mut winner_addr = None;
        let endpoints = self.endpoints;
        let record_of = |addr| endpoints.as_ref().and_then(|e| e.record(addr));
        let mut records: Vec<AttemptRecord> = attempts
            .enumerate()
            .map(|(index, attempt)| {
                let (outcome, end) = match attempt.failure {
                    Some((error, at)) if is_attempt_timeout(error) => {
                        (AttemptOutcome::TimedOut, at)
                    }
                    Some((error, at)) => (AttemptOutcome::Failed(copy_error(error)), at),
                    None if winner == Some(index) => {
                        winner_addr = Some(attempt.addr);
                        (AttemptOutcome::Connected, ended)
                    }
                    None if winner.is_some() => (AttemptOutcome::Cancelled, ended),
                    None => (AttemptOutcome::Aborted, ended),
                };
                AttemptRecord {
                    addr: attempt.addr,
                    started: Some(attempt.started),
                    duration: end.saturating_sub(attempt.started),
                    outcome,
                    record: record_of(attempt.addr),
                }
            })
            .collect();
        records.extend(self.not_started.into_iter().map(|addr| AttemptRecord {
            addr,
            started: None,
            duration: Duration::ZERO,
            outcome: AttemptOutcome::NotStarted,
            record: record_of(addr),
        }));
        ConnectReport {
            target,
            source: self.source,
            answers: self.answers,
            resolution_delay: self.resolution_delay,
            attempts: records,
            winner: winner_addr,
            remembered: self.remembered,
            adaptive_delay: self.adaptive_delay,
            total: ended,
        }
    }
}

/// Whether `error` is an attempt's own timeout (see `race::running::timed_out`), not an
/// operating system's `ETIMEDOUT`.
fn is_attempt_timeout(error: &io::Error) -> bool {
    error.kind() == io::ErrorKind::TimedOut && error.raw_os_error().is_none()
}
