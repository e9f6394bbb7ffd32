//! One connect from target to winner: addresses (overrides, resolution, ordering, memory,
//! policy), then the race, then what the connector learns from it.

use std::borrow::Cow;
use std::future::Future;
use std::io;
use std::net::SocketAddr;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::connector::{Settings, Strategy};
use crate::error::{Attempts, ConnectError, Stage};
use crate::history::HostKey;
use crate::limits::{Bounded, Cancel, bounded, deadline_after, earliest};
use crate::race::{Log, Outcome, Pace, Won, race};
use crate::resolve::{Resolving, dedup_and_filter, interleave, promote};
use crate::target::Target;

/// The addresses to race, in order, and what the winner memory knows of them.
struct Addresses<'t> {
    addrs: Cow<'t, [SocketAddr]>,
    /// The memory's key, for names the resolver answered (never for overrides or literals).
    key: Option<HostKey>,
    /// The remembered winner, when the resolver returned it again (it is then first).
    remembered: Option<SocketAddr>,
}

/// Connects to `target` with `settings`, dialing each address with `dial`.
pub(crate) async fn connect<S, D, Fut>(
    settings: &Settings,
    target: &Target,
    call_token: Option<&CancellationToken>,
    mut dial: D,
) -> Result<Won<S>, ConnectError>
where
    D: FnMut(SocketAddr) -> Fut,
    Fut: Future<Output = io::Result<S>>,
{
    let began = Instant::now();
    let deadline = deadline_after(began, settings.timeout);
    let cancel = Cancel {
        connector: settings.cancel.as_ref(),
        call: call_token,
    };
    let found = addresses(settings, target, began, deadline, cancel).await?;
    let mut log = Log::new(began);
    let key = found.key.as_ref();
    if let (Some(key), Some(addr)) = (key, found.remembered) {
        log.forget_on_failure(&settings.memory, key, addr);
    }
    let pace = Pace {
        stagger: settings.stagger(),
        attempt_timeout: settings.attempt_timeout,
        deadline,
        cancel,
    };
    let host = || target.to_string();
    match race(&found.addrs, pace, &mut dial, &mut log).await {
        Outcome::Won(won) => {
            if let Some(key) = key {
                settings.memory.remember(key, won.addr);
            }
            if settings.adaptive_delay {
                settings.connect_times.observe(&won.addr, won.took);
            }
            Ok(won)
        }
        Outcome::Exhausted => Err(ConnectError::AllAttemptsFailed {
            host: host(),
            attempts: log.finish(|| io::Error::other("attempt did not finish")),
        }),
        Outcome::TimedOut => Err(ConnectError::TimedOut {
            host: host(),
            stage: Stage::Connect,
            elapsed: began.elapsed(),
            attempts: log.finish(|| {
                io::Error::new(io::ErrorKind::TimedOut, "aborted by the overall timeout")
            }),
        }),
        Outcome::Cancelled => Err(ConnectError::Cancelled {
            host: host(),
            attempts: log.finish(|| io::Error::new(io::ErrorKind::Interrupted, "cancelled")),
        }),
    }
}

/// An override's or the resolver's answer for a name, the target's own addresses otherwise;
/// filtered by family and by the address policy.
async fn addresses<'t>(
    settings: &Settings,
    target: &'t Target,
    began: Instant,
    deadline: Option<Instant>,
    cancel: Cancel<'_>,
) -> Result<Addresses<'t>, ConnectError> {
    let mut found = Addresses {
        addrs: Cow::Borrowed(target.addrs()),
        key: None,
        remembered: None,
    };
    match (target.name_and_port(), target.addrs()) {
        (Some((name, port)), _) => match settings.overrides.find(name, port) {
            Some(mut given) => {
                dedup_and_filter(&mut given, settings.families);
                found.addrs = Cow::Owned(given);
            }
            None => {
                let key = HostKey::new(name, port);
                let limit = earliest(deadline, deadline_after(began, settings.resolve_timeout));
                let lookup = settings.resolver.resolve(name, port);
                // Boxed: a connect to an address carries none of the lookup's state.
                let resolving = resolve(settings, target, lookup, began, limit, cancel);
                let mut resolved = Box::pin(resolving).await?;
                found.remembered = settings
                    .memory
                    .recall(&key)
                    .filter(|&addr| promote(&mut resolved, addr));
                found.addrs = Cow::Owned(resolved);
                found.key = Some(key);
            }
        },
        (None, [one]) if settings.families.allows(one) => {}
        (None, listed) => {
            let mut listed = listed.to_vec();
            dedup_and_filter(&mut listed, settings.families);
            found.addrs = Cow::Owned(listed);
        }
    }
    if found.addrs.is_empty() {
        return Err(ConnectError::NoAddresses {
            host: target.to_string(),
        });
    }
    if settings.policy.allows_all() {
        return Ok(found);
    }
    let (allowed, refused): (Vec<_>, Vec<_>) = found
        .addrs
        .iter()
        .partition(|addr| settings.policy.allows(addr));
    if allowed.is_empty() {
        return Err(ConnectError::Denied {
            host: target.to_string(),
            refused,
        });
    }
    if !refused.is_empty() {
        tracing::debug!(?refused, "addresses denied by the address policy");
    }
    found.addrs = Cow::Owned(allowed);
    Ok(found)
}

/// Awaits `lookup` of the target's name, then de-duplicates, filters and (for Happy Eyeballs)
/// interleaves.
async fn resolve(
    settings: &Settings,
    target: &Target,
    lookup: Resolving<'_>,
    began: Instant,
    deadline: Option<Instant>,
    cancel: Cancel<'_>,
) -> Result<Vec<SocketAddr>, ConnectError> {
    let mut addrs = match bounded(lookup, deadline, cancel).await {
        Bounded::Done(Ok(addrs)) => addrs,
        Bounded::Done(Err(cause)) => {
            return Err(ConnectError::Resolve {
                host: target.to_string(),
                cause,
            });
        }
        Bounded::TimedOut => {
            return Err(ConnectError::TimedOut {
                host: target.to_string(),
                stage: Stage::Resolve,
                elapsed: began.elapsed(),
                attempts: Attempts::default(),
            });
        }
        Bounded::Cancelled => {
            return Err(ConnectError::Cancelled {
                host: target.to_string(),
                attempts: Attempts::default(),
            });
        }
    };
    tracing::debug!(?addrs, elapsed = ?began.elapsed(), "resolved");
    dedup_and_filter(&mut addrs, settings.families);
    if settings.strategy == Strategy::HappyEyeballs {
        addrs = interleave(&addrs, settings.first_family_count);
    }
    Ok(addrs)
}
