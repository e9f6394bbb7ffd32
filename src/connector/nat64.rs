//! NAT64 in a connect: whether this host reaches IPv4 through it, the prefix learnt within a
//! connect's limits, the address dialed for an IPv4 one, and what a failed race teaches.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;

use futures_util::TryFutureExt;
use futures_util::future::Either;
use tokio::time::Instant;

use crate::connector::dial::Dial;
use crate::connector::settings::Settings;
use crate::limits::{Bounded, Cancel, bounded};
use crate::race::core::Outcome;
use crate::race::log::Log;
use crate::resolve::nat64::{
    Ipv4Reach, Nat64, Nat64Prefix, has_route, host_ipv4, may_synthesize, synthesize,
};

/// Whether IPv4 destinations may be reached through NAT64 on this connector's host: it has no
/// IPv4 address or no default route, or a connect found an IPv4 destination without a route.
#[inline]
pub(crate) fn synthesizes(settings: &Settings) -> bool {
    let state = &settings.nat64_state;
    settings.nat64 != Nat64::Off && (state.without_ipv4() || host_ipv4() != Ipv4Reach::Everywhere)
}

/// Notes, after a race that ended with `outcome`, whether an IPv4 destination had no route
/// (every attempt failed, some for want of one): later connects then go through NAT64.
pub(crate) fn note_missing_routes<S>(settings: &Settings, outcome: &Outcome<S>, log: &Log<'_>) {
    let all_failed = matches!(outcome, Outcome::AllFailed);
    if all_failed && settings.nat64 != Nat64::Off && log.failed_for_want_of_a_route() {
        settings.nat64_state.found_without_ipv4();
    }
}

/// The NAT64 prefix to dial IPv4 addresses through, learnt within the connect's deadline and
/// tokens; `None` if none could be had.
pub(crate) async fn nat64_prefix(
    settings: &Settings,
    deadline: Option<Instant>,
    cancel: Cancel<'_>,
) -> Option<Nat64Prefix> {
    let learning = settings
        .nat64_state
        .prefix(settings.nat64, &settings.resolver);
    match bounded(learning, deadline, cancel).await {
        Bounded::Done(Ok(prefix)) => Some(prefix),
        Bounded::Done(Err(error)) => {
            tracing::debug!(%error, "no NAT64 prefix");
            None
        }
        Bounded::TimedOut | Bounded::Cancelled => None,
    }
}

/// The NAT64 form to dial instead of `addr`, if any: for an IPv4 address that may be
/// synthesized and has no route, when a prefix is at hand. On an IPv6-only host no IPv4
/// address has a route, nor, once a connect found one without, on any; on a host with IPv4
/// addresses but no default route, each destination is asked about.
#[inline]
fn through_nat64(settings: &Settings, addr: SocketAddr) -> Option<SocketAddr> {
    let SocketAddr::V4(v4) = addr else {
        return None;
    };
    if !may_synthesize(&addr) || !synthesizes(settings) {
        return None;
    }
    let ask = host_ipv4() == Ipv4Reach::Partly && !settings.nat64_state.without_ipv4();
    if ask && has_route(*v4.ip()) {
        return None;
    }
    let prefix = settings.nat64_state.at_hand(settings.nat64)?;
    let dialed = synthesize(prefix, addr);
    tracing::debug!(%addr, %dialed, "dialing through NAT64");
    Some(dialed)
}

/// Dials `addr`, or its NAT64 form (see [`through_nat64`]); an error of the NAT64 form names it, as
/// the race and its report name `addr`. Boxed when synthesized: only NAT64 hosts pay for it.
#[inline]
pub(crate) fn dial_maybe_through_nat64<S, D, Fut>(
    settings: &Settings,
    dial: &mut D,
    addr: SocketAddr,
) -> Either<Fut, Pin<Box<impl Future<Output = io::Result<S>> + use<S, D, Fut>>>>
where
    D: Dial<Fut>,
    Fut: Future<Output = io::Result<S>>,
{
    let Some(synthesized) = through_nat64(settings, addr) else {
        return Either::Left(dial.dial(addr));
    };
    let named = move |error: io::Error| {
        let message = format!("{synthesized} through NAT64: {error}");
        io::Error::new(error.kind(), message)
    };
    Either::Right(Box::pin(dial.dial(synthesized).map_err(named)))
}
