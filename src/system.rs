//! The default resolver: `getaddrinfo` on tokio's blocking pool, through the shared and
//! bounded lookups.

use std::sync::OnceLock;

use futures_util::FutureExt;

use crate::answers::{Answer, Answering};
use crate::getaddrinfo;
use crate::lookups::Lookups;
use crate::resolve::{Resolve, Resolving};

/// How many `getaddrinfo` calls may run at once, process-wide. tokio's blocking pool has 512
/// threads by default; stuck lookups must never take them all, or `tokio::fs` and every other
/// blocking task stall behind a DNS outage.
const MAX_LOOKUPS_IN_FLIGHT: usize = 32;

/// The default resolver: the system's `getaddrinfo`, run on tokio's blocking thread pool
/// (`spawn_blocking`), so it honours `/etc/hosts`, nsswitch and the system's RFC 6724 order.
///
/// Lookups are shared and bounded, process-wide:
/// - concurrent lookups of one name share one `getaddrinfo` call (as Go's resolver does);
/// - at most 32 calls run at once; a lookup waits for a free slot, and that wait counts
///   against the connect's resolve timeout and overall timeout;
/// - a lookup whose every waiter has gone (timed out, cancelled, dropped) and that is still
///   waiting for a slot is abandoned without a call.
///
/// What a timeout or a drop cannot stop: a `getaddrinfo` call that has started runs to its end
/// on its blocking thread (glibc gives up after its own timeout, 5 s per try by default, 2
/// tries), holding its slot until then. Nothing else of the connect outlives it.
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
        let lookup = lookups().lookup(host, port);
        Box::pin(futures_util::stream::once(lookup.map(Answer::all)))
    }
}

/// The process-wide lookups of [`SystemResolver`].
fn lookups() -> &'static Lookups {
    static LOOKUPS: OnceLock<Lookups> = OnceLock::new();
    LOOKUPS.get_or_init(|| Lookups::new(MAX_LOOKUPS_IN_FLIGHT, getaddrinfo::lookup))
}
