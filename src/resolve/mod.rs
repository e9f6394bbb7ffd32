//! Resolution: the `Resolve` trait and its answers, the system and hickory resolvers, shared
//! lookups, overrides, and the wait for answers before the race starts.

pub(crate) mod answers;
pub(crate) mod cache;
pub(crate) mod gather;
pub(crate) mod getaddrinfo;
#[cfg(feature = "hickory")]
pub(crate) mod hickory;
pub(crate) mod lookups;
pub(crate) mod nat64;
pub(crate) mod overrides;
#[cfg(feature = "hickory")]
pub(crate) mod rfc6724;
pub(crate) mod service;
pub(crate) mod system;

use std::fmt;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;

use crate::resolve::answers::{Answer, Answering};

/// The future a [`Resolve`] implementation returns.
pub type Resolving<'a> = Pin<Box<dyn Future<Output = io::Result<Vec<SocketAddr>>> + Send + 'a>>;

/// A name resolver: a host name and port in, socket addresses out.
///
/// The connector keeps the order returned (the system resolver sorts by RFC 6724), drops
/// duplicates, and applies its resolve timeout, cancellation and tracing to any resolver.
/// `Arc<R>` and `Box<R>` (`Box<dyn Resolve>` included) of a resolver are resolvers too.
///
/// # Errors
///
/// Return an `io::Error` whose kind says what a caller may do next, as [`SystemResolver`](crate::SystemResolver)
/// does: `NotFound` for a name that does not exist (retrying will not help), `TimedOut` for a
/// temporary failure (no answer in time, `SERVFAIL`: a retry may succeed), anything else for
/// the rest. A name that exists without addresses is an empty list, not an error. The
/// connector reports the error as [`ConnectError::Resolve`](crate::ConnectError::Resolve)'s
/// cause.
///
/// # Cancel safety
///
/// The connector drops the future (or stream) when the connect ends early: a timeout, a
/// cancellation, a dropped connect, or for [`resolve_in_parts`](Self::resolve_in_parts) once it
/// no longer waits for late answers. Dropping must stop the work or leave it bounded;
/// [`SystemResolver`](crate::SystemResolver) says what it cannot stop. The
/// [answer cache](crate::Connector::answer_cache) refreshes a stale answer by calling
/// [`resolve_in_parts`](Self::resolve_in_parts) from a task of its own, which drops the stream
/// at the resolve timeout, if one is set.
///
/// An answer may say how long it may be kept ([`Answer::with_ttl`](crate::Answer::with_ttl));
/// one that does not is kept for the cache's default TTL.
///
/// # Examples
///
/// A resolver that answers every name with loopback addresses:
///
/// ```
/// use std::net::SocketAddr;
/// use connect_any::{Connector, Resolve, Resolving};
///
/// struct Loopback;
///
/// impl Resolve for Loopback {
///     fn resolve<'a>(&'a self, _host: &'a str, port: u16) -> Resolving<'a> {
///         Box::pin(async move {
///             Ok(vec![SocketAddr::from(([0, 0, 0, 0, 0, 0, 0, 1], port)), SocketAddr::from(([127, 0, 0, 1], port))])
///         })
///     }
/// }
///
/// let connector = Connector::new().resolver(Loopback);
/// # drop(connector);
/// ```
///
/// One that answers in parts (RFC 8305 §3): the IPv4 answer at once, the IPv6 one later. The
/// race starts on IPv4 after the [resolution delay](crate::Connector::resolution_delay) if
/// IPv6 is not there by then, and IPv6 joins the race when it arrives:
///
/// ```
/// use std::net::SocketAddr;
/// use std::time::Duration;
/// use connect_any::{Answer, Answering, Connector, Resolve, Resolving};
/// use futures_util::StreamExt;
///
/// struct SlowIpv6;
///
/// impl Resolve for SlowIpv6 {
///     fn resolve<'a>(&'a self, _host: &'a str, port: u16) -> Resolving<'a> {
///         Box::pin(async move { Ok(vec![SocketAddr::from(([127, 0, 0, 1], port))]) })
///     }
///
///     fn resolve_in_parts<'a>(&'a self, _host: &'a str, port: u16) -> Answering<'a> {
///         let ipv4 = Answer::ipv4(Ok(vec![SocketAddr::from(([127, 0, 0, 1], port))]));
///         let ipv6 = async move {
///             tokio::time::sleep(Duration::from_millis(80)).await;
///             Answer::ipv6(Ok(vec![SocketAddr::from(([0, 0, 0, 0, 0, 0, 0, 1], port))]))
///         };
///         let first = futures_util::stream::iter([ipv4]);
///         Box::pin(first.chain(futures_util::stream::once(ipv6)))
///     }
/// }
///
/// let connector = Connector::new().resolver(SlowIpv6);
/// # drop(connector);
/// ```
pub trait Resolve: Send + Sync + 'static {
    /// Looks `host` up; each address returned carries `port`.
    fn resolve<'a>(&'a self, host: &'a str, port: u16) -> Resolving<'a>;

    /// Looks `host` up and hands over each part of the answer as it arrives: the AAAA and the
    /// A answers separately ([`Answer::ipv6`], [`Answer::ipv4`]), or everything at once
    /// ([`Answer::all`]); the stream ends when no more will come. The connector starts
    /// connecting on the first usable part (RFC 8305 §3) and lets later ones join the race.
    ///
    /// The default is one part, [`resolve`](Self::resolve)'s answer: a one-shot resolver needs
    /// nothing more.
    fn resolve_in_parts<'a>(&'a self, host: &'a str, port: u16) -> Answering<'a> {
        let lookup = self.resolve(host, port);
        Box::pin(futures_util::stream::once(async move {
            Answer::all(lookup.await)
        }))
    }

    /// Looks `host` up as an HTTPS origin (RFC 9460, Happy Eyeballs v3 §4): the HTTPS query
    /// (at [`_PORT._https.HOST`](https://www.rfc-editor.org/rfc/rfc9460#section-9.1) for a port
    /// other than 443) sent with the AAAA and A queries, each answer handed over as it
    /// arrives: the address answers as [`resolve_in_parts`](Self::resolve_in_parts) gives
    /// them, the records as [`Answer::https`] (AliasMode followed, a loop or a chain too long
    /// as its error), then the AAAA and A answers for each other TargetName the records name
    /// ([`Answer::for_name`]). Called for a target given a [`Service`](crate::Service).
    ///
    /// `None` (the default) says the resolver cannot ask for HTTPS records: such a target is
    /// then resolved, cached and connected as it would be without a service.
    /// [`HickoryResolver`](crate::HickoryResolver) asks. A connect that gets a stream does
    /// not use the [answer cache](crate::Connector::answer_cache).
    fn resolve_https<'a>(&'a self, host: &'a str, port: u16) -> Option<Answering<'a>> {
        let _ = (host, port);
        None
    }
}

/// A resolver shared by `Arc` (so one resolver can serve several connectors, or stay in a
/// test's hands) resolves as the resolver itself.
impl<R: Resolve + ?Sized> Resolve for Arc<R> {
    fn resolve<'a>(&'a self, host: &'a str, port: u16) -> Resolving<'a> {
        (**self).resolve(host, port)
    }

    fn resolve_in_parts<'a>(&'a self, host: &'a str, port: u16) -> Answering<'a> {
        (**self).resolve_in_parts(host, port)
    }

    fn resolve_https<'a>(&'a self, host: &'a str, port: u16) -> Option<Answering<'a>> {
        (**self).resolve_https(host, port)
    }
}

/// A boxed resolver, such as a `Box<dyn Resolve>` chosen at run time, resolves as the
/// resolver itself.
impl<R: Resolve + ?Sized> Resolve for Box<R> {
    fn resolve<'a>(&'a self, host: &'a str, port: u16) -> Resolving<'a> {
        (**self).resolve(host, port)
    }

    fn resolve_in_parts<'a>(&'a self, host: &'a str, port: u16) -> Answering<'a> {
        (**self).resolve_in_parts(host, port)
    }

    fn resolve_https<'a>(&'a self, host: &'a str, port: u16) -> Option<Answering<'a>> {
        (**self).resolve_https(host, port)
    }
}

/// The connector's resolver, shared by its clones, printed by its type's name.
#[derive(Clone)]
pub(crate) struct SharedResolver {
    resolver: Arc<dyn Resolve>,
    name: &'static str,
}

impl SharedResolver {
    pub(crate) fn new<R: Resolve>(resolver: R) -> Self {
        Self {
            resolver: Arc::new(resolver),
            name: std::any::type_name::<R>(),
        }
    }
}

impl std::ops::Deref for SharedResolver {
    type Target = dyn Resolve;

    fn deref(&self) -> &(dyn Resolve + 'static) {
        &*self.resolver
    }
}

impl fmt::Debug for SharedResolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name)
    }
}
