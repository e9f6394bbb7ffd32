//! What went wrong: [`ConnectError`] and the per-address [`Attempt`] records it carries.

use std::fmt;
use std::io::{self, ErrorKind};
use std::net::SocketAddr;
use std::time::Duration;

use crate::target::TargetError;

/// Why a connect failed.
///
/// `Display` is one line that names the target and shows the cause (for failed attempts, the
/// most informative of them: see [`most_relevant`](Self::most_relevant)); since the message
/// already shows it, [`source`](std::error::Error::source) is `None`, so that a reporter that
/// walks the chain prints each cause once. The per-address details are in
/// [`attempts`](Self::attempts).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectError {
    /// The target could not be parsed; nothing was resolved or dialed.
    #[error("invalid target: {0}")]
    InvalidTarget(TargetError),

    /// The resolver failed.
    #[error("failed to resolve {host}: {cause}")]
    #[non_exhaustive]
    Resolve {
        /// The name and port that were looked up.
        host: String,
        /// The resolver's error; for [`SystemResolver`](crate::SystemResolver), `NotFound`
        /// for a name that does not exist.
        cause: io::Error,
    },

    /// Resolution succeeded but left no address to dial (none returned, or none of an allowed
    /// family).
    #[error("no addresses for {host}")]
    #[non_exhaustive]
    NoAddresses {
        /// The target.
        host: String,
    },

    /// Every address was tried and every attempt failed.
    #[error("could not connect to {host} ({attempts})")]
    #[non_exhaustive]
    AllAttemptsFailed {
        /// The target.
        host: String,
        /// Every attempt, in start order; never empty.
        attempts: Attempts,
    },

    /// The overall timeout or the resolve timeout ran out.
    #[error("timed out {stage} {host} after {elapsed:?}{}", attempts.count())]
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
    },

    /// The address policy refused every address; none was dialed.
    #[error("every address of {host} is denied by the address policy")]
    #[non_exhaustive]
    Denied {
        /// The target.
        host: String,
        /// The addresses refused, in the order they would have been tried.
        refused: Vec<SocketAddr>,
    },

    /// The connector's or the call's cancellation token was cancelled.
    #[error("connect to {host} cancelled{}", attempts.count())]
    #[non_exhaustive]
    Cancelled {
        /// The target.
        host: String,
        /// The attempts made before cancellation, in start order; those still running were
        /// aborted and carry an [`ErrorKind::Interrupted`] error.
        attempts: Attempts,
    },
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

/// One connection attempt to one address that did not win.
#[derive(Debug)]
pub struct Attempt {
    addr: SocketAddr,
    error: io::Error,
    started: Duration,
    duration: Duration,
}

impl Attempt {
    pub(crate) fn new(
        addr: SocketAddr,
        error: io::Error,
        started: Duration,
        ended: Duration,
    ) -> Self {
        Self {
            addr,
            error,
            started,
            duration: ended.saturating_sub(started),
        }
    }

    /// The address dialed.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Why it failed.
    pub fn error(&self) -> &io::Error {
        &self.error
    }

    /// When it started, measured from the start of the connect (resolution included).
    pub fn started(&self) -> Duration {
        self.started
    }

    /// How long it ran before it failed or was aborted.
    pub fn duration(&self) -> Duration {
        self.duration
    }
}

impl fmt::Display for Attempt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} (started at {:?}, after {:?}): {}",
            self.addr, self.started, self.duration, self.error
        )
    }
}

/// The attempts of one connect, in start order.
///
/// Dereferences to a slice of [`Attempt`]. As an error it stands for the most relevant
/// failure (see [`most_relevant`](Self::most_relevant)), whose `io::Error` is its source.
#[derive(Debug, Default)]
pub struct Attempts(Vec<Attempt>);

impl Attempts {
    pub(crate) fn new(attempts: Vec<Attempt>) -> Self {
        Self(attempts)
    }

    /// The most informative failed attempt, or `None` when there is none.
    ///
    /// Failures rank by how far they got: an error from past the TCP handshake (a TLS
    /// failure from a [`connect_with`](crate::Connector::connect_with) dialer, a reset, a
    /// descriptor limit) first; then a refusal or a denial; then a timeout; then an unreachable
    /// host or network; last, errors that only say this machine cannot use that address
    /// (`EADDRNOTAVAIL`, `EAFNOSUPPORT` on a host without IPv6, `EINVAL` for a link-local
    /// address without a zone). An operating-system error ranks by its error number, anything
    /// else by its kind. Among equals the earliest attempt wins, so a final IPv6 "address not
    /// available" never hides the IPv4 refusal before it.
    pub fn most_relevant(&self) -> Option<&Attempt> {
        // `max_by_key` keeps the last maximum; iterating in reverse keeps the earliest.
        self.0.iter().rev().max_by_key(|a| relevance(&a.error))
    }

    /// The kind of the most relevant failure (a stable one, see `stable_kind`); `Other`
    /// when there is no attempt.
    fn kind(&self) -> ErrorKind {
        self.most_relevant()
            .map_or(ErrorKind::Other, |a| stable_kind(&a.error))
    }

    /// ", N attempts" for a message, or nothing when there were none.
    fn count(&self) -> Count {
        Count(self.len())
    }
}

/// See [`Attempts::count`].
struct Count(usize);

impl fmt::Display for Count {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            0 => Ok(()),
            1 => f.write_str(" (1 attempt)"),
            n => write!(f, " ({n} attempts)"),
        }
    }
}

impl std::ops::Deref for Attempts {
    type Target = [Attempt];

    fn deref(&self) -> &[Attempt] {
        &self.0
    }
}

impl IntoIterator for Attempts {
    type Item = Attempt;
    type IntoIter = std::vec::IntoIter<Attempt>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

/// The most relevant failure and how many attempts there were:
/// `127.0.0.1:80: connection refused, 1 of 2 attempts`.
impl fmt::Display for Attempts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.most_relevant() {
            None => f.write_str("no attempts"),
            Some(a) if self.len() == 1 => write!(f, "{}: {}", a.addr, a.error),
            Some(a) => write!(f, "{}: {}, 1 of {} attempts", a.addr, a.error, self.len()),
        }
    }
}

impl ConnectError {
    /// The attempts made, in start order; empty for errors before any dialing.
    pub fn attempts(&self) -> &[Attempt] {
        match self {
            ConnectError::AllAttemptsFailed { attempts, .. }
            | ConnectError::TimedOut { attempts, .. }
            | ConnectError::Cancelled { attempts, .. } => attempts,
            ConnectError::InvalidTarget(_)
            | ConnectError::Resolve { .. }
            | ConnectError::NoAddresses { .. }
            | ConnectError::Denied { .. } => &[],
        }
    }

    /// The target as written in the message, or `None` for an invalid target.
    pub fn host(&self) -> Option<&str> {
        match self {
            ConnectError::InvalidTarget(_) => None,
            ConnectError::Resolve { host, .. }
            | ConnectError::NoAddresses { host }
            | ConnectError::Denied { host, .. }
            | ConnectError::AllAttemptsFailed { host, .. }
            | ConnectError::TimedOut { host, .. }
            | ConnectError::Cancelled { host, .. } => Some(host),
        }
    }

    /// The `io::ErrorKind` that fits this error, as used by `From<ConnectError> for io::Error`:
    /// `InvalidInput` for a bad target, the resolver's kind for a resolution failure,
    /// `NotFound` when no address is left, `PermissionDenied` when the address policy refused
    /// them all, `TimedOut`, `Other` for a cancelled connect (not `Interrupted`, which callers
    /// retry), and for failed attempts the kind of the [most relevant](Self::most_relevant) one.
    /// It is always one of the kinds stable Rust can name: never `Uncategorized`, which the
    /// standard library uses for some OS errors and every resolver failure.
    pub fn kind(&self) -> ErrorKind {
        match self {
            ConnectError::InvalidTarget(_) => ErrorKind::InvalidInput,
            ConnectError::Resolve { cause, .. } => stable_kind(cause),
            ConnectError::NoAddresses { .. } => ErrorKind::NotFound,
            ConnectError::Denied { .. } => ErrorKind::PermissionDenied,
            ConnectError::TimedOut { .. } => ErrorKind::TimedOut,
            ConnectError::Cancelled { .. } => ErrorKind::Other,
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

/// Higher is more informative; see [`Attempts::most_relevant`].
fn relevance(error: &io::Error) -> u8 {
    error
        .raw_os_error()
        .and_then(os_relevance)
        .unwrap_or_else(|| kind_relevance(error.kind()))
}

#[cfg(unix)]
fn os_relevance(code: i32) -> Option<u8> {
    Some(match code {
        libc::EADDRNOTAVAIL
        | libc::EADDRINUSE
        | libc::EAFNOSUPPORT
        | libc::EPFNOSUPPORT
        | libc::EPROTONOSUPPORT
        | libc::EINVAL => 0,
        libc::ENETUNREACH | libc::EHOSTUNREACH | libc::ENETDOWN | libc::EHOSTDOWN => 1,
        libc::ETIMEDOUT | libc::EINTR => 2,
        libc::ECONNREFUSED | libc::EACCES | libc::EPERM => 3,
        _ => return None,
    })
}

#[cfg(not(unix))]
fn os_relevance(_code: i32) -> Option<u8> {
    None
}

fn kind_relevance(kind: ErrorKind) -> u8 {
    match kind {
        ErrorKind::AddrNotAvailable | ErrorKind::AddrInUse | ErrorKind::Unsupported => 0,
        ErrorKind::NetworkUnreachable | ErrorKind::HostUnreachable | ErrorKind::NetworkDown => 1,
        ErrorKind::TimedOut | ErrorKind::Interrupted => 2,
        ErrorKind::ConnectionRefused | ErrorKind::PermissionDenied => 3,
        _ => 4,
    }
}

/// `error`'s kind if stable Rust can name it (callers can match it), else the closest one
/// that it can: the standard library files some OS errors (`EAFNOSUPPORT`, `EMFILE`) and
/// resolver failures under an unstable kind that no caller can match.
pub(crate) fn stable_kind(error: &io::Error) -> ErrorKind {
    use ErrorKind::*;
    match error.kind() {
        kind @ (NotFound | PermissionDenied | ConnectionRefused | ConnectionReset
        | HostUnreachable | NetworkUnreachable | ConnectionAborted | NotConnected
        | AddrInUse | AddrNotAvailable | NetworkDown | BrokenPipe | AlreadyExists
        | WouldBlock | InvalidInput | InvalidData | TimedOut | WriteZero | Interrupted
        | Unsupported | UnexpectedEof | OutOfMemory | Other) => kind,
        _ if is_unsupported_family(error) => Unsupported,
        _ => Other,
    }
}

#[cfg(unix)]
fn is_unsupported_family(error: &io::Error) -> bool {
    matches!(
        error.raw_os_error(),
        Some(libc::EAFNOSUPPORT | libc::EPFNOSUPPORT | libc::EPROTONOSUPPORT)
    )
}

#[cfg(not(unix))]
fn is_unsupported_family(_error: &io::Error) -> bool {
    false
}

impl From<TargetError> for ConnectError {
    fn from(error: TargetError) -> Self {
        ConnectError::InvalidTarget(error)
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
            kind(ConnectError::NoAddresses { host: host.clone() }),
            ErrorKind::NotFound
        );
        let timed_out = ConnectError::TimedOut {
            host: host.clone(),
            stage: Stage::Connect,
            elapsed: Duration::from_secs(1),
            attempts: Attempts::default(),
        };
        assert_eq!(kind(timed_out), ErrorKind::TimedOut);
        let denied = ConnectError::Denied {
            host: host.clone(),
            refused: vec![SocketAddr::from(([127, 0, 0, 1], 1))],
        };
        assert_eq!(kind(denied), ErrorKind::PermissionDenied);
        let cancelled = ConnectError::Cancelled {
            host,
            attempts: Attempts::default(),
        };
        assert_eq!(kind(cancelled), ErrorKind::Other);
    }

    #[test]
    fn display_shows_the_cause_once() {
        let refused = failed(vec![attempt(1, ErrorKind::ConnectionRefused)]);
        assert_eq!(
            refused.to_string(),
            "could not connect to example.com:80 (127.0.0.1:1: connection refused)"
        );
        assert!(std::error::Error::source(&refused).is_none());
        let dialer_says = Attempt::new(
            SocketAddr::from(([127, 0, 0, 1], 1)),
            io::Error::new(ErrorKind::InvalidData, "tls: bad certificate"),
            Duration::ZERO,
            Duration::ZERO,
        );
        let two = failed(vec![attempt(2, ErrorKind::TimedOut), dialer_says]);
        assert_eq!(
            two.to_string(),
            "could not connect to example.com:80 (127.0.0.1:1: tls: bad certificate, 1 of 2 attempts)"
        );
        let timed_out = ConnectError::TimedOut {
            host: "h:1".into(),
            stage: Stage::Connect,
            elapsed: Duration::from_millis(500),
            attempts: Attempts::new(vec![attempt(1, ErrorKind::TimedOut)]),
        };
        assert_eq!(
            timed_out.to_string(),
            "timed out connecting to h:1 after 500ms (1 attempt)"
        );
        let unresolved = ConnectError::Resolve {
            host: "h:1".into(),
            cause: io::Error::new(ErrorKind::NotFound, "no such host"),
        };
        assert_eq!(
            unresolved.to_string(),
            "failed to resolve h:1: no such host"
        );
        assert!(std::error::Error::source(&unresolved).is_none());
        assert_eq!(unresolved.kind(), ErrorKind::NotFound);
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
