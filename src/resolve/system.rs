//! The default resolver: `getaddrinfo` on tokio's blocking pool, through the shared and
//! bounded lookups.

use std::future::Future;
use std::pin::Pin;
use std::sync::OnceLock;
use std::task::{Context, Poll, ready};

use futures_util::Stream;

use crate::resolve::answers::{Answer, Answering};
use crate::resolve::getaddrinfo;
use crate::resolve::lookups::{Lookup, Lookups};
use crate::resolve::{Resolve, Resolving};

/// How many `getaddrinfo` calls may run at once, process-wide. tokio's blocking pool has 512
/// threads by default; stuck lookups must never take them all, or `tokio::fs` and every other
/// blocking task stall behind a DNS outage.
const MAX_LOOKUPS_IN_FLIGHT: usize = 32;
/// How many calls whose waiters all gave up may run on without a slot; so at most 128 blocking
/// threads (of tokio's 512 by default) block in `getaddrinfo` at once, whatever the names.
const MAX_ABANDONED_LOOKUPS: usize = 96;

/// The default resolver: the system's `getaddrinfo`, so it honours `/etc/hosts`, nsswitch and
/// the system's RFC 6724 order, run on the caller's runtime's blocking pool (`spawn_blocking`).
///
/// A lookup asked for inside a runtime starts at once, not at its first poll, so that the
/// call runs while the connect gets ready to wait for it (one asked outside a runtime starts
/// when first polled). Lookups are shared and bounded, process-wide:
/// - concurrent lookups of one name on one runtime share one `getaddrinfo` call (as Go's
///   resolver does); names that differ only in ASCII case are one name (a trailing dot is not
///   ignored: it turns off the search domains). Another runtime makes its own call, on its own
///   pool, so that no runtime waits behind another's busy pool;
/// - at most 32 calls that someone waits for run at once (a *lookup slot* each); a lookup
///   waits for a free slot, and that wait counts against the connect's resolve timeout and
///   overall timeout;
/// - a lookup whose every waiter has gone (timed out, cancelled, dropped) while it waits for a
///   slot is abandoned without a call;
/// - a call whose every waiter has gone while it runs gives its slot back to other names and
///   runs on to its end; up to 96 such calls at once, beyond which an abandoned call keeps its
///   slot. So at most 128 threads block in `getaddrinfo`, and names whose lookups hang hold up
///   other names only when more than 96 of them hang at once.
///
/// What a timeout or a drop cannot stop: a `getaddrinfo` call that has started runs to its end
/// on its blocking thread (glibc gives up after its own timeout, 5 s per try by default, 2
/// tries), and a runtime that shuts down waits for it, as it waits for any `spawn_blocking`
/// task. Nothing else of the connect outlives it but the refresh of a stale cached answer (see
/// [`Connector::answer_cache`](crate::Connector::answer_cache)).
///
/// `getaddrinfo` tells no TTL, so the connector's answer cache keeps its answers for the
/// cache's default TTL (30 s unless set).
///
/// `getaddrinfo` cannot ask for HTTPS records (RFC 9460), so a target given a
/// [`Service`](crate::Service) connects through it as without one: its own addresses, at its
/// port. [`HickoryResolver`](crate::HickoryResolver) asks for them.
///
/// Errors carry kinds callers can match: `NotFound` for a name that does not exist,
/// `TimedOut` for a temporary failure, and the system's text as the message.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemResolver;

impl Resolve for SystemResolver {
    fn resolve<'a>(&'a self, host: &'a str, port: u16) -> Resolving<'a> {
        Box::pin(lookups().lookup(host, port))
    }

    /// One part: `getaddrinfo` answers both families at once. (One allocation where the
    /// default's would make two.)
    fn resolve_in_parts<'a>(&'a self, host: &'a str, port: u16) -> Answering<'a> {
        Box::pin(OnePart(Some(lookups().lookup(host, port))))
    }
}

/// A lookup's answer as the one part of a resolver's answers, both families at once.
struct OnePart<'a>(Option<Lookup<'a>>);

impl Stream for OnePart<'_> {
    type Item = Answer;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Answer>> {
        let Some(lookup) = &mut self.0 else {
            return Poll::Ready(None);
        };
        let addrs = ready!(Pin::new(lookup).poll(cx));
        self.0 = None;
        Poll::Ready(Some(Answer::all(addrs)))
    }
}

/// The process-wide lookups of [`SystemResolver`].
fn lookups() -> &'static Lookups {
    static LOOKUPS: OnceLock<Lookups> = OnceLock::new();
    LOOKUPS.get_or_init(|| {
        Lookups::new(
            MAX_LOOKUPS_IN_FLIGHT,
            MAX_ABANDONED_LOOKUPS,
            getaddrinfo::lookup,
        )
    })
}
