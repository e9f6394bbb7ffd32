//! What happened on the way to a connection: the [`ConnectReport`] of one connect, and the
//! [`ConnectEvent`]s a connector's hook sees as they happen.

pub(crate) mod event;
pub(crate) mod observer;
pub(crate) mod recording;

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::human::Human;
use crate::resolve::answers::{Family, copy_error};
use crate::resolve::service::record::ServiceRecord;

/// Where a connect's addresses came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum AddressSource {
    /// The target itself: an IP literal or a pre-resolved list; nothing was resolved.
    Target,
    /// A [`resolve_override`](crate::Connector::resolve_override).
    Override,
    /// The connector's resolver.
    Resolver,
    /// The connector's [answer cache](crate::Connector::answer_cache), within the answers'
    /// time to live: the resolver was not asked.
    Cache,
    /// An expired answer from the answer cache, raced at once while the resolver was asked
    /// again; the refreshed answers joined the race as they came.
    StaleCache,
}

/// One answer from the resolver: one family's part, or the whole answer at once.
#[derive(Debug)]
pub struct AnswerRecord {
    pub(crate) family: Option<Family>,
    pub(crate) at: Duration,
    pub(crate) addresses: usize,
    pub(crate) error: Option<io::Error>,
}

impl Clone for AnswerRecord {
    fn clone(&self) -> Self {
        Self {
            error: self.error.as_ref().map(copy_error),
            ..*self
        }
    }
}

impl AnswerRecord {
    /// The family answered (AAAA: [`Family::Ipv6`], A: [`Family::Ipv4`]), or `None` for an
    /// answer with every family at once.
    pub fn family(&self) -> Option<Family> {
        self.family
    }

    /// When it arrived, from the start of the connect.
    pub fn at(&self) -> Duration {
        self.at
    }

    /// How many addresses it held (0 for a negative answer or a failure), before the family
    /// filter, the address policy and de-duplication.
    pub fn addresses(&self) -> usize {
        self.addresses
    }

    /// The query's error, if it failed.
    pub fn error(&self) -> Option<&io::Error> {
        self.error.as_ref()
    }
}

/// How one address of a connect fared.
#[derive(Debug)]
#[non_exhaustive]
pub enum AttemptOutcome {
    /// It connected and won.
    Connected,
    /// It failed with this error (an attempt timeout is [`TimedOut`](Self::TimedOut)).
    Failed(io::Error),
    /// It ran for the whole [attempt timeout](crate::Connector::attempt_timeout).
    TimedOut,
    /// It was still running when another attempt won, and was dropped (its socket closed).
    Cancelled,
    /// It was still running when the connect ended: the overall timeout ran out or a token
    /// was cancelled.
    Aborted,
    /// It was never started: the connect ended first (a winner, the deadline, a token).
    NotStarted,
}

impl Clone for AttemptOutcome {
    fn clone(&self) -> Self {
        match self {
            AttemptOutcome::Connected => AttemptOutcome::Connected,
            AttemptOutcome::Failed(error) => AttemptOutcome::Failed(copy_error(error)),
            AttemptOutcome::TimedOut => AttemptOutcome::TimedOut,
            AttemptOutcome::Cancelled => AttemptOutcome::Cancelled,
            AttemptOutcome::Aborted => AttemptOutcome::Aborted,
            AttemptOutcome::NotStarted => AttemptOutcome::NotStarted,
        }
    }
}

/// One address of a connect: the attempt made to it, or the lack of one.
#[derive(Clone, Debug)]
pub struct AttemptRecord {
    pub(crate) addr: SocketAddr,
    pub(crate) started: Option<Duration>,
    pub(crate) duration: Duration,
    pub(crate) outcome: AttemptOutcome,
    pub(crate) record: Option<Arc<ServiceRecord>>,
}

impl AttemptRecord {
    /// The address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// When the attempt started, from the start of the connect; `None` if it never did.
    pub fn started(&self) -> Option<Duration> {
        self.started
    }

    /// How long it ran until it connected, failed, or was dropped (zero if never started).
    pub fn duration(&self) -> Duration {
        self.duration
    }

    /// How it ended.
    pub fn outcome(&self) -> &AttemptOutcome {
        &self.outcome
    }

    /// The HTTPS record the address came from, for a [service](crate::Service) target's
    /// endpoint that came from one.
    pub fn record(&self) -> Option<&ServiceRecord> {
        self.record.as_deref()
    }
}

/// What happened on the way to a connection, success or failure: where the addresses came
/// from and when each answer arrived, every attempt in start order with its outcome, the
/// winner, and the total time.
///
/// Returned by [`Connector::connect_reported`](crate::Connector::connect_reported) and
/// [`connect_with_reported`](crate::Connector::connect_with_reported) with the stream, and
/// carried by the [`ConnectError`](crate::ConnectError) of such a call
/// ([`ConnectError::report`](crate::ConnectError::report)).
///
/// `Display` prints one line (`localhost:7007: connected to 127.0.0.1:7007 in 251 ms, attempt
/// 2 of 2 (a fallback)`); the alternate form (`{:#}`) prints a table of every answer and
/// attempt, like curl's verbose summary.
///
/// A clone copies the errors it holds as their kind and message (`io::Error` is not `Clone`).
#[derive(Clone, Debug)]
pub struct ConnectReport {
    pub(crate) target: String,
    pub(crate) source: AddressSource,
    pub(crate) answers: Vec<AnswerRecord>,
    pub(crate) resolution_delay: Option<Duration>,
    pub(crate) attempts: Vec<AttemptRecord>,
    pub(crate) winner: Option<SocketAddr>,
    pub(crate) remembered: Option<SocketAddr>,
    pub(crate) adaptive_delay: bool,
    pub(crate) total: Duration,
}

impl ConnectReport {
    /// The target, as given.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// Where the addresses came from.
    pub fn source(&self) -> AddressSource {
        self.source
    }

    /// The answers in arrival order: the resolver's, or the answer cache's (at 0 ms) and, for
    /// [`AddressSource::StaleCache`], the refresh's after them. None for the target's own
    /// addresses or an override.
    pub fn answers(&self) -> &[AnswerRecord] {
        &self.answers
    }

    /// How long the race waited for the IPv6 answer after an IPv4 address came first (RFC
    /// 8305's Resolution Delay), if it did.
    pub fn resolution_delay(&self) -> Option<Duration> {
        self.resolution_delay
    }

    /// Every attempt in start order, then the addresses never started.
    pub fn attempts(&self) -> &[AttemptRecord] {
        &self.attempts
    }

    /// The address that connected, if one did.
    pub fn winner(&self) -> Option<SocketAddr> {
        self.winner
    }

    /// Whether the winner was not the first address tried: the ones before it failed or were
    /// slower, as a black-holed IPv6 path is.
    pub fn is_fallback(&self) -> bool {
        let first = self.attempts.first().map(|a| a.addr);
        self.winner.is_some() && first != self.winner
    }

    /// The address the [winner memory](crate::Connector::winner_memory) put first, if it did.
    pub fn remembered_first(&self) -> Option<SocketAddr> {
        self.remembered
    }

    /// Whether the [adaptive delay](crate::Connector::adaptive_delay) paced the attempts.
    pub fn adaptive_delay(&self) -> bool {
        self.adaptive_delay
    }

    /// From the start of the connect to its end.
    pub fn total(&self) -> Duration {
        self.total
    }

    fn started(&self) -> usize {
        self.attempts.iter().filter(|a| a.started.is_some()).count()
    }
}

impl fmt::Display for ConnectReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if f.alternate() {
            return self.table(f);
        }
        let (total, started) = (Human(self.total), self.started());
        match self.winner {
            Some(winner) => {
                let place = self.attempts.iter().position(|a| a.addr == winner);
                let place = place.map_or(0, |p| p + 1);
                write!(
                    f,
                    "{}: connected to {winner} in {total}, attempt {place} of {started}",
                    self.target
                )?;
                if self.is_fallback() {
                    f.write_str(" (a fallback)")?;
                }
                Ok(())
            }
            None => write!(
                f,
                "{}: no connection after {total}, {started} attempts",
                self.target
            ),
        }
    }
}

impl ConnectReport {
    fn table(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{self}")?;
        let source = match self.source {
            AddressSource::Target => "the target",
            AddressSource::Override => "an override",
            AddressSource::Resolver => "the resolver",
            AddressSource::Cache => "the answer cache",
            AddressSource::StaleCache => "the answer cache (stale, refreshed in the race)",
        };
        writeln!(f, "  addresses from {source}")?;
        for answer in &self.answers {
            let family = match answer.family {
                Some(Family::Ipv6) => "AAAA",
                Some(Family::Ipv4) => "A",
                None => "all",
            };
            write!(
                f,
                "  answer {family:<4} at {:>8}",
                Human(answer.at).to_string()
            )?;
            match &answer.error {
                Some(error) => writeln!(f, "  failed: {error}")?,
                None => writeln!(f, "  {} addresses", answer.addresses)?,
            }
        }
        if let Some(waited) = self.resolution_delay {
            writeln!(f, "  waited {} for AAAA (resolution delay)", Human(waited))?;
        }
        if let Some(remembered) = self.remembered {
            writeln!(f, "  winner memory put {remembered} first")?;
        }
        if self.adaptive_delay {
            writeln!(f, "  attempts paced by the adaptive delay")?;
        }
        for (n, attempt) in self.attempts.iter().enumerate() {
            write!(f, "  {:>2}. {:<24}", n + 1, attempt.addr.to_string())?;
            if let Some(record) = &attempt.record {
                let (priority, target) = (record.priority(), record.target_name());
                write!(f, " (HTTPS record {priority} {target})")?;
            }
            if let Some(started) = attempt.started {
                let started = Human(started).to_string();
                let ran = Human(attempt.duration).to_string();
                write!(f, " started {started:>8}, ran {ran:<8}")?;
            }
            match &attempt.outcome {
                AttemptOutcome::Connected => writeln!(f, " connected")?,
                AttemptOutcome::Failed(error) => writeln!(f, " failed: {error}")?,
                AttemptOutcome::TimedOut => writeln!(f, " timed out")?,
                AttemptOutcome::Cancelled => writeln!(f, " cancelled: another won")?,
                AttemptOutcome::Aborted => writeln!(f, " aborted: the connect ended")?,
                AttemptOutcome::NotStarted => writeln!(f, " never started")?,
            }
        }
        write!(f, "  total {}", Human(self.total))
    }
}
