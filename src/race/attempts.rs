//! The attempts of one connect, and how their failures rank.

use std::fmt;
use std::io::{self, ErrorKind};
use std::net::SocketAddr;
use std::time::Duration;

use crate::human::Human;

/// One connection attempt to one address that did not win.
#[derive(Debug)]
pub struct Attempt {
    addr: SocketAddr,
    error: io::Error,
    started: Duration,
    duration: Duration,
    /// Still running when the connect ended (timed out or cancelled): its error is ours, not
    /// the destination's.
    aborted: bool,
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
            aborted: false,
        }
    }

    /// This attempt, marked as still running when the connect ended.
    pub(crate) fn aborted(self) -> Self {
        Self {
            aborted: true,
            ..self
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
            "{} (started at {}, after {}): {}",
            self.addr,
            Human(self.started),
            Human(self.duration),
            self.error
        )
    }
}

/// The attempts of one connect, in start order.
///
/// Dereferences to a slice of [`Attempt`]. Its `Display` is the count and the address of the
/// most relevant failure (see [`most_relevant`](Self::most_relevant)): `2 attempts, most
/// relevant 10.0.0.7:5432`; the alternate form (`{:#}`) adds that attempt's error.
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

    /// The most relevant of the attempts that failed on their own, not aborted by the
    /// connect's end: the cause of a failed connect.
    pub(crate) fn most_relevant_failure(&self) -> Option<&Attempt> {
        let own = self.0.iter().rev().filter(|a| !a.aborted);
        own.max_by_key(|a| relevance(&a.error))
    }

    /// The kind of the most relevant failure (a stable one, see `stable_kind`); `Other`
    /// when there is no attempt.
    pub(crate) fn kind(&self) -> ErrorKind {
        self.most_relevant()
            .map_or(ErrorKind::Other, |a| stable_kind(&a.error))
    }

    /// ", N attempts" for a message, or nothing when there were none.
    pub(crate) fn count(&self) -> Count {
        Count(self.len())
    }
}

/// See [`Attempts::count`].
pub(crate) struct Count(usize);

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

/// How many attempts there were and the most relevant one's address (`1 attempt, to
/// 127.0.0.1:80`, `2 attempts, most relevant 127.0.0.1:80`); `{:#}` adds its error.
impl fmt::Display for Attempts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Some(a) = self.most_relevant() else {
            return f.write_str("no attempts");
        };
        match self.len() {
            1 => write!(f, "1 attempt, to {}", a.addr)?,
            n => write!(f, "{n} attempts, most relevant {}", a.addr)?,
        }
        if f.alternate() {
            write!(f, ": {}", a.error)?;
        }
        Ok(())
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
