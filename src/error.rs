//! What went wrong: [`ConnectError`].

use std::fmt;
use std::io::{self, ErrorKind};
use std::net::SocketAddr;
use std::time::Duration;

use crate::human::Human;
use crate::race::attempts::{Attempt, Attempts, stable_kind};
use crate::report::ConnectReport;
use crate::target::error::TargetError;

/// Why a connect failed.
///
/// # Printing
///
/// Each level of the error says one thing. `Display` (`{}`) is one line that names the target
/// and says what happened, without the cause's own text; the cause is
/// [`source`](std::error::Error::source): for failed attempts the most informative attempt's
/// `io::Error` (see [`most_relevant`](Self::most_relevant)), for a failed lookup the
/// resolver's, for an invalid target the [`TargetError`]. So retry code that walks `source()`
/// finds the `io::Error`, and a reporter that prints the chain (anyhow's `{:#}`,
/// `std::error::Report`, tracing's error fields) shows each cause once:
///
/// `could not connect to db.internal:5432 (2 attempts, most relevant 10.0.0.7:5432): Connection refused (os error 111)`
///
/// The alternate form (`{:#}`) prints that same line, the cause included, for a log line of
/// its own. The per-address details are in [`attempts`](Self::attempts).
///
/// # Examples
///
/// ```no_run
/// use std::io::ErrorKind;
/// use connect_any::{ConnectError, Connector};
///
/// # async fn run() {
/// match Connector::new().connect("db.internal:5432").await {
///     Ok(stream) => drop(stream),
///     Err(ConnectError::Resolve { cause, .. }) if cause.kind() == ErrorKind::NotFound => {
///         eprintln!("no such host");
///     }
///     Err(error) => {
///         eprintln!("{error:#}");
///         for attempt in error.attempts() {
///             eprintln!("  {attempt}");
///         }
///     }
/// }
/// # }
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum ConnectError {
    /// The target could not be parsed; nothing was resolved or dialed.
    #[non_exhaustive]
    InvalidTarget {
        /// The target as given (empty where the input was not text).
        input: String,
        /// What is wrong with it; also the [`source`](std::error::Error::source).
        cause: TargetError,
    },

    /// The resolver failed.
    #[non_exhaustive]
    Resolve {
        /// The name and port that were looked up.
        host: String,
        /// The resolver's error (also the [`source`](std::error::Error::source)); for
        /// [`SystemResolver`](crate::SystemResolver), `NotFound` for a name that does not
        /// exist.
        cause: io::Error,
        /// What happened on the way, for a call that asked for a report
        /// ([`connect_reported`](crate::Connector::connect_reported)); see
        /// [`report`](ConnectError::report).
        report: Option<Box<ConnectReport>>,
    },

    /// Resolution succeeded but left no address to dial (none returned, or none of an allowed
    /// family).
    #[non_exhaustive]
    NoAddresses {
        /// The target.
        host: String,
        /// How many addresses the [family filter](crate::Connector::ip_families) removed.
        filtered_by_family: usize,
        /// What happened on the way, for a call that asked for a report
        /// ([`connect_reported`](crate::Connector::connect_reported)); see
        /// [`report`](ConnectError::report).
        report: Option<Box<ConnectReport>>,
    },

    /// Every address was tried and every attempt failed.
    #[non_exhaustive]
    AllAttemptsFailed {
        /// The target.
        host: String,
        /// Every attempt, in start order; never empty.
        attempts: Attempts,
        /// What happened on the way, for a call that asked for a report
        /// ([`connect_reported`](crate::Connector::connect_reported)); see
        /// [`report`](ConnectError::report).
        report: Option<Box<ConnectReport>>,
    },

    /// The overall timeout or the resolve timeout ran out.
    #[non_exhaustive]
    TimedOut {
        /// The target.
        host: String,
        /// What the connect was doing when time ran out.
        stage: Stage,
        /// Time from the start of the connect to the timeout.
        elapsed: Duration,
        /// The attempts made before time ran out, in start order; those still running were
        /// aborted and carry an [`ErrorKind::TimedOut`] error.
        attempts: Attempts,
        /// What happened on the way, for a call that asked for a report
        /// ([`connect_reported`](crate::Connector::connect_reported)); see
        /// [`report`](ConnectError::report).
        report: Option<Box<ConnectReport>>,
    },

    /// The address policy refused every address; none was dialed.
    #[non_exhaustive]
    Denied {
        /// The target.
        host: String,
        /// The addresses refused, in the order they would have been tried.
        refused: Vec<SocketAddr>,
        /// What happened on the way, for a call that asked for a report
        /// ([`connect_reported`](crate::Connector::connect_reported)); see
        /// [`report`](ConnectError::report).
        report: Option<Box<ConnectReport>>,
    },

    /// The tokio runtime has no time driver (it was built without `enable_time` or
    /// `enable_all`), and this connect may need a timer: nothing was resolved or dialed. A
    /// connect to one IP literal with no timeout needs none, and works on such a runtime.
    #[non_exhaustive]
    NoTimeDriver {
        /// The target.
        host: String,
    },

    /// The connector's or the call's cancellation token was cancelled.
    #[non_exhaustive]
    Cancelled {
        /// The target.
        host: String,
        /// The attempts made before cancellation, in start order; those still running were
        /// aborted and carry an [`ErrorKind::Interrupted`] error.
        attempts: Attempts,
        /// What happened on the way, for a call that asked for a report
        /// ([`connect_reported`](crate::Connector::connect_reported)); see
        /// [`report`](ConnectError::report).
        report: Option<Box<ConnectReport>>,
    },
}

impl fmt::Display for ConnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConnectError::InvalidTarget { input, .. } if input.is_empty() => {
                f.write_str("invalid target")?
            }
            ConnectError::InvalidTarget { input, .. } => write!(f, "invalid target {input:?}")?,
            ConnectError::Resolve { host, .. } => write!(f, "failed to resolve {host}")?,
            ConnectError::NoAddresses {
                host,
                filtered_by_family: 0,
                ..
            } => write!(f, "no addresses for {host}")?,
            ConnectError::NoAddresses {
                host,
                filtered_by_family,
                ..
            } => write!(
                f,
                "no addresses for {host}: the family filter removed {filtered_by_family}"
            )?,
            ConnectError::AllAttemptsFailed { host, attempts, .. } => {
                write!(f, "could not connect to {host} ({attempts})")?
            }
            ConnectError::TimedOut {
                host,
                stage,
                elapsed,
                attempts,
                ..
            } => write!(
                f,
                "timed out {stage} {host} after {}{}",
                Human(*elapsed),
                attempts.count()
            )?,
            ConnectError::Denied { host, .. } => {
                write!(f, "every address of {host} is denied by the address policy")?
            }
            ConnectError::NoTimeDriver { host } => write!(
                f,
                "connect to {host} needs tokio's timers: build the runtime with enable_all() or enable_time()"
            )?,
            ConnectError::Cancelled { host, attempts, .. } => {
                write!(f, "connect to {host} cancelled{}", attempts.count())?
            }
        }
        match (f.alternate(), std::error::Error::source(self)) {
            (true, Some(cause)) => write!(f, ": {cause}"),
            _ => Ok(()),
        }
    }
}

impl std::error::Error for ConnectError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ConnectError::InvalidTarget { cause, .. } => Some(cause),
            ConnectError::Resolve { cause, .. } => Some(cause),
            ConnectError::AllAttemptsFailed { attempts, .. }
            | ConnectError::TimedOut { attempts, .. }
            | ConnectError::Cancelled { attempts, .. } => attempts
                .most_relevant_failure()
                .map(|attempt| attempt.error() as &(dyn std::error::Error + 'static)),
            ConnectError::NoAddresses { .. }
            | ConnectError::Denied { .. }
            | ConnectError::NoTimeDriver { .. } => None,
        }
    }
}

/// The stage a connect was in when its time ran out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Stage {
    /// Resolving the host name.
    Resolve,
    /// Dialing the addresses.
    Connect,
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Stage::Resolve => "resolving",
            Stage::Connect => "connecting to",
        })
    }
}

impl ConnectError {
    /// What happened on the way to this failure, when the call asked for a report
    /// ([`connect_reported`](crate::Connector::connect_reported),
    /// [`connect_with_reported`](crate::Connector::connect_with_reported)); `None` otherwise,
    /// and for an invalid target or a runtime without timers.
    pub fn report(&self) -> Option<&ConnectReport> {
        match self {
            ConnectError::Resolve { report, .. }
            | ConnectError::NoAddresses { report, .. }
            | ConnectError::AllAttemptsFailed { report, .. }
            | ConnectError::TimedOut { report, .. }
            | ConnectError::Denied { report, .. }
            | ConnectError::Cancelled { report, .. } => report.as_deref(),
            ConnectError::InvalidTarget { .. } | ConnectError::NoTimeDriver { .. } => None,
        }
    }

    /// This error, carrying `report`.
    pub(crate) fn with_report(mut self, report: ConnectReport) -> Self {
        match &mut self {
            ConnectError::Resolve { report: slot, .. }
            | ConnectError::NoAddresses { report: slot, .. }
            | ConnectError::AllAttemptsFailed { report: slot, .. }
            | ConnectError::TimedOut { report: slot, .. }
            | ConnectError::Denied { report: slot, .. }
            | ConnectError::Cancelled { report: slot, .. } => *slot = Some(Box::new(report)),
            ConnectError::InvalidTarget { .. } | ConnectError::NoTimeDriver { .. } => {}
        }
        self
    }

    /// The attempts made, in start order; empty for errors before any dialing.
    pub fn attempts(&self) -> &[Attempt] {
        match self {
            ConnectError::AllAttemptsFailed { attempts, .. }
            | ConnectError::TimedOut { attempts, .. }
            | ConnectError::Cancelled { attempts, .. } => attempts,
            ConnectError::InvalidTarget { .. }
            | ConnectError::Resolve { .. }
            | ConnectError::NoAddresses { .. }
            | ConnectError::NoTimeDriver { .. }
            | ConnectError::Denied { .. } => &[],
        }
    }

    /// The target as written in the message, or `None` for an invalid target.
    pub fn host(&self) -> Option<&str> {
        match self {
            ConnectError::InvalidTarget { .. } => None,
            ConnectError::Resolve { host, .. }
            | ConnectError::NoAddresses { host, .. }
            | ConnectError::NoTimeDriver { host }
            | ConnectError::Denied { host, .. }
            | ConnectError::AllAttemptsFailed { host, .. }
            | ConnectError::TimedOut { host, .. }
            | ConnectError::Cancelled { host, .. } => Some(host),
        }
    }

    /// The `io::ErrorKind` that fits this error, as used by `From<ConnectError> for io::Error`:
    /// `InvalidInput` for a bad target, the resolver's kind for a resolution failure,
    /// `NotFound` when no address is left, `PermissionDenied` when the address policy refused
    /// them all, `TimedOut`, `Unsupported` for a runtime without timers, `Other` for a cancelled connect (not `Interrupted`, which callers
    /// retry), and for failed attempts the kind of the [most relevant](Self::most_relevant) one.
    /// It is always one of the kinds stable Rust can name: never `Uncategorized`, which the
    /// standard library uses for some OS errors and every resolver failure.
    pub fn kind(&self) -> ErrorKind {
        match self {
            ConnectError::InvalidTarget { .. } => ErrorKind::InvalidInput,
            ConnectError::Resolve { cause, .. } => stable_kind(cause),
            ConnectError::NoAddresses { .. } => ErrorKind::NotFound,
            ConnectError::Denied { .. } => ErrorKind::PermissionDenied,
            ConnectError::TimedOut { .. } => ErrorKind::TimedOut,
            ConnectError::Cancelled { .. } => ErrorKind::Other,
            ConnectError::NoTimeDriver { .. } => ErrorKind::Unsupported,
            ConnectError::AllAttemptsFailed { attempts, .. } => attempts.kind(),
        }
    }

    /// The most informative failed attempt; see [`Attempts::most_relevant`].
    pub fn most_relevant(&self) -> Option<&Attempt> {
        match self {
            ConnectError::AllAttemptsFailed { attempts, .. }
            | ConnectError::TimedOut { attempts, .. }
            | ConnectError::Cancelled { attempts, .. } => attempts.most_relevant(),
            _ => None,
        }
    }
}

impl From<TargetError> for ConnectError {
    /// An invalid target whose input is not known.
    fn from(cause: TargetError) -> Self {
        ConnectError::InvalidTarget {
            input: String::new(),
            cause,
        }
    }
}

impl From<ConnectError> for io::Error {
    /// Keeps the `ConnectError` as the inner error, under [`ConnectError::kind`].
    fn from(error: ConnectError) -> Self {
        io::Error::new(error.kind(), error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attempt(port: u16, kind: ErrorKind) -> Attempt {
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        Attempt::new(addr, io::Error::from(kind), Duration::ZERO, Duration::ZERO)
    }

    fn failed(attempts: Vec<Attempt>) -> ConnectError {
        ConnectError::AllAttemptsFailed {
            host: "example.com:80".into(),
            attempts: Attempts::new(attempts),
            report: None,
        }
    }

    #[test]
    fn a_late_unavailable_address_does_not_hide_a_refusal() {
        let error = failed(vec![
            attempt(1, ErrorKind::ConnectionRefused),
            attempt(2, ErrorKind::AddrNotAvailable),
        ]);
        assert_eq!(error.most_relevant().unwrap().addr().port(), 1);
        assert_eq!(io::Error::from(error).kind(), ErrorKind::ConnectionRefused);
    }

    #[test]
    fn ties_go_to_the_earliest_attempt() {
        let error = failed(vec![
            attempt(1, ErrorKind::NetworkUnreachable),
            attempt(2, ErrorKind::TimedOut),
            attempt(3, ErrorKind::TimedOut),
        ]);
        assert_eq!(error.most_relevant().unwrap().addr().port(), 2);
    }

    #[test]
    fn an_error_past_the_handshake_ranks_first() {
        let error = failed(vec![
            attempt(1, ErrorKind::ConnectionRefused),
            attempt(2, ErrorKind::InvalidData),
        ]);
        assert_eq!(error.most_relevant().unwrap().addr().port(), 2);
    }

    #[test]
    fn io_error_kinds() {
        let kind = |e: ConnectError| io::Error::from(e).kind();
        assert_eq!(
            kind(TargetError::MissingPort.into()),
            ErrorKind::InvalidInput
        );
        let host = String::from("h:1");
        assert_eq!(
            kind(ConnectError::NoAddresses {
                host: host.clone(),
                filtered_by_family: 0,
                report: None,
            }),
            ErrorKind::NotFound
        );
        let timed_out = ConnectError::TimedOut {
            host: host.clone(),
            stage: Stage::Connect,
            elapsed: Duration::from_secs(1),
            attempts: Attempts::default(),
            report: None,
        };
        assert_eq!(kind(timed_out), ErrorKind::TimedOut);
        let denied = ConnectError::Denied {
            host: host.clone(),
            refused: vec![SocketAddr::from(([127, 0, 0, 1], 1))],
            report: None,
        };
        assert_eq!(kind(denied), ErrorKind::PermissionDenied);
        let cancelled = ConnectError::Cancelled {
            host,
            attempts: Attempts::default(),
            report: None,
        };
        assert_eq!(kind(cancelled), ErrorKind::Other);
    }

    /// The chain as a reporter prints it (anyhow's `{:#}`): each level's `Display`, joined.
    fn chain(error: &dyn std::error::Error) -> String {
        let mut printed = error.to_string();
        let mut source = error.source();
        while let Some(cause) = source {
            printed = format!("{printed}: {cause}");
            source = cause.source();
        }
        printed
    }

    #[test]
    fn each_level_says_one_thing_and_the_chain_says_it_once() {
        let refused = failed(vec![attempt(1, ErrorKind::ConnectionRefused)]);
        assert_eq!(
            refused.to_string(),
            "could not connect to example.com:80 (1 attempt, to 127.0.0.1:1)"
        );
        let cause = std::error::Error::source(&refused).unwrap();
        let io = cause.downcast_ref::<io::Error>().unwrap();
        assert_eq!(
            io.kind(),
            ErrorKind::ConnectionRefused,
            "retry code finds it"
        );
        assert_eq!(
            chain(&refused),
            "could not connect to example.com:80 (1 attempt, to 127.0.0.1:1): connection refused"
        );
        assert_eq!(
            format!("{refused:#}"),
            chain(&refused),
            "alone, with the cause"
        );

        let dialer_says = Attempt::new(
            SocketAddr::from(([127, 0, 0, 1], 1)),
            io::Error::new(ErrorKind::InvalidData, "tls: bad certificate"),
            Duration::ZERO,
            Duration::ZERO,
        );
        let two = failed(vec![attempt(2, ErrorKind::TimedOut), dialer_says]);
        assert_eq!(
            chain(&two),
            "could not connect to example.com:80 (2 attempts, most relevant 127.0.0.1:1): tls: bad certificate"
        );
        assert_eq!(format!("{two:#}"), chain(&two));

        let timed_out = ConnectError::TimedOut {
            host: "h:1".into(),
            stage: Stage::Connect,
            elapsed: Duration::from_micros(500_317),
            attempts: Attempts::new(vec![attempt(1, ErrorKind::TimedOut).aborted()]),
            report: None,
        };
        assert_eq!(
            timed_out.to_string(),
            "timed out connecting to h:1 after 500 ms (1 attempt)"
        );
        assert!(
            std::error::Error::source(&timed_out).is_none(),
            "an attempt the timeout aborted is not a cause"
        );
        assert_eq!(format!("{timed_out:#}"), timed_out.to_string());

        let unresolved = ConnectError::Resolve {
            host: "h:1".into(),
            cause: io::Error::new(ErrorKind::NotFound, "no such host"),
            report: None,
        };
        assert_eq!(unresolved.to_string(), "failed to resolve h:1");
        assert_eq!(chain(&unresolved), "failed to resolve h:1: no such host");
        assert_eq!(
            format!("{unresolved:#}"),
            "failed to resolve h:1: no such host"
        );
        assert_eq!(unresolved.kind(), ErrorKind::NotFound);

        let invalid = ConnectError::InvalidTarget {
            input: "example.com".into(),
            cause: TargetError::MissingPort,
        };
        assert_eq!(
            chain(&invalid),
            "invalid target \"example.com\": missing port"
        );
        let through_io = io::Error::from(invalid);
        assert_eq!(
            chain(&through_io),
            "invalid target \"example.com\": missing port",
            "through io::Error, once too"
        );
    }

    fn os(port: u16, code: i32) -> Attempt {
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let error = io::Error::from_raw_os_error(code);
        Attempt::new(addr, error, Duration::ZERO, Duration::ZERO)
    }

    /// Real errno values, as `connect(2)` returns them, in every order: the expected winner
    /// and the kind `kind()` reports.
    #[cfg(target_os = "linux")]
    #[test]
    fn os_errors_rank_by_errno() {
        use libc::*;
        let table: &[(&[i32], i32, ErrorKind)] = &[
            (
                &[EAFNOSUPPORT, ECONNREFUSED],
                ECONNREFUSED,
                ErrorKind::ConnectionRefused,
            ),
            (
                &[EINVAL, ECONNREFUSED],
                ECONNREFUSED,
                ErrorKind::ConnectionRefused,
            ),
            (&[EINVAL, ETIMEDOUT], ETIMEDOUT, ErrorKind::TimedOut),
            (
                &[EADDRNOTAVAIL, ENETUNREACH],
                ENETUNREACH,
                ErrorKind::NetworkUnreachable,
            ),
            (&[EHOSTUNREACH, ETIMEDOUT], ETIMEDOUT, ErrorKind::TimedOut),
            (
                &[ECONNREFUSED, ECONNRESET],
                ECONNRESET,
                ErrorKind::ConnectionReset,
            ),
            (&[ECONNREFUSED, EMFILE], EMFILE, ErrorKind::Other),
            (&[EAFNOSUPPORT], EAFNOSUPPORT, ErrorKind::Unsupported),
            (
                &[EPROTONOSUPPORT, EHOSTUNREACH],
                EHOSTUNREACH,
                ErrorKind::HostUnreachable,
            ),
            (&[EINVAL], EINVAL, ErrorKind::InvalidInput),
        ];
        for &(codes, winner, kind) in table {
            for reversed in [false, true] {
                let mut attempts: Vec<_> = codes.iter().map(|&c| os(c as u16, c)).collect();
                if reversed {
                    attempts.reverse();
                }
                let error = failed(attempts);
                let best = error.most_relevant().unwrap();
                assert_eq!(best.error().raw_os_error(), Some(winner), "{codes:?}");
                assert_eq!(error.kind(), kind, "{codes:?}");
                assert_eq!(io::Error::from(error).kind(), kind);
            }
        }
    }

    #[test]
    fn kinds_are_always_stable() {
        let lookup = io::Error::other("x");
        assert_eq!(stable_kind(&lookup), ErrorKind::Other);
        // Rust files EMFILE under an unstable kind; callers get `Other`.
        let emfile = io::Error::from_raw_os_error(24);
        assert_eq!(stable_kind(&emfile), ErrorKind::Other);
    }
}
