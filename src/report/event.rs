//! The events a connector's hook sees as a connect goes (Go's `httptrace.ClientTrace`).

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::time::Duration;

use crate::error::ConnectError;
use crate::resolve::answers::Family;
use crate::target::Target;

/// A connector's event hook; see [`Connector::on_event`](crate::Connector::on_event).
#[derive(Clone)]
pub(crate) struct Hook(pub(crate) Arc<dyn Fn(&ConnectEvent<'_>) + Send + Sync>);

impl fmt::Debug for Hook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Hook")
    }
}

/// One step of one connect, handed to the connector's
/// [event hook](crate::Connector::on_event) the moment it happens.
#[derive(Debug)]
pub struct ConnectEvent<'a> {
    pub(crate) target: &'a Target,
    pub(crate) elapsed: Duration,
    pub(crate) kind: EventKind<'a>,
}

impl<'a> ConnectEvent<'a> {
    /// The connect's target.
    pub fn target(&self) -> &'a Target {
        self.target
    }

    /// When it happened, from the start of the connect.
    pub fn elapsed(&self) -> Duration {
        self.elapsed
    }

    /// What happened.
    pub fn kind(&self) -> &EventKind<'a> {
        &self.kind
    }
}

/// What a [`ConnectEvent`] says happened.
#[derive(Debug)]
#[non_exhaustive]
pub enum EventKind<'a> {
    /// The resolver answered: one family's part, or everything at once (`family: None`).
    #[non_exhaustive]
    AnswerArrived {
        /// The family answered, if the answer was one family's.
        family: Option<Family>,
        /// How many addresses it held, before filtering.
        addresses: usize,
        /// The query's error, if it failed.
        error: Option<&'a io::Error>,
    },
    /// An attempt to `addr` started.
    #[non_exhaustive]
    AttemptStarted {
        /// The address dialed.
        addr: SocketAddr,
    },
    /// The attempt to `addr` failed (or ran for its whole attempt timeout).
    #[non_exhaustive]
    AttemptFailed {
        /// The address dialed.
        addr: SocketAddr,
        /// How long it ran.
        took: Duration,
        /// Why it failed.
        error: &'a io::Error,
    },
    /// The attempt to `addr` connected and won; the attempts still running are cancelled next.
    #[non_exhaustive]
    AttemptWon {
        /// The address that connected.
        addr: SocketAddr,
        /// How long its attempt took.
        took: Duration,
        /// Whether it was not the first address tried.
        fallback: bool,
    },
    /// A loser still running when another attempt won was dropped, its socket closed.
    #[non_exhaustive]
    AttemptCancelled {
        /// The address it dialed.
        addr: SocketAddr,
        /// How long it had run.
        took: Duration,
    },
    /// The connect ended: the winner's address, or the error it returns.
    #[non_exhaustive]
    Finished {
        /// The result.
        result: Result<SocketAddr, &'a ConnectError>,
    },
}

/// Hands `event` to `hook`. A panic in the hook is caught (the panic hook has printed it) and
/// the connect goes on, so that a faulty metrics callback cannot break connecting.
pub(crate) fn emit(hook: &Hook, target: &Target, elapsed: Duration, kind: EventKind<'_>) {
    let event = ConnectEvent {
        target,
        elapsed,
        kind,
    };
    if catch_unwind(AssertUnwindSafe(|| (hook.0)(&event))).is_err() {
        tracing::debug!("the event hook panicked; the connect goes on");
    }
}
