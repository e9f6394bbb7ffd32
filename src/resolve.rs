//! Resolution and address ordering: lookup, de-duplication, family filter, interleaving.

use std::collections::HashSet;
use std::fmt;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;

use crate::answers::{Answer, Answering};
use crate::host::canonical_name;

/// Which address families a connector dials.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum IpFamilies {
    /// IPv6 and IPv4 (the default).
    #[default]
    Both,
    /// IPv4 addresses only; IPv6 ones are dropped after resolution.
    V4Only,
    /// IPv6 addresses only; IPv4 ones are dropped after resolution.
    V6Only,
}

impl IpFamilies {
    pub(crate) fn allows(self, addr: &SocketAddr) -> bool {
        match self {
            IpFamilies::Both => true,
            IpFamilies::V4Only => addr.is_ipv4(),
            IpFamilies::V6Only => addr.is_ipv6(),
        }
    }
}

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
/// [`SystemResolver`](crate::SystemResolver) says what it cannot stop.
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

/// Fixed answers for given names, like curl's `--resolve`: checked before the resolver.
#[derive(Clone, Debug, Default)]
pub(crate) struct Overrides(Vec<Override>);

#[derive(Clone, Debug)]
struct Override {
    host: Box<str>,
    port: Option<u16>,
    addrs: Arc<[SocketAddr]>,
}

impl Overrides {
    /// Adds or replaces the override for `host` and `port` (`None`: any port).
    pub(crate) fn set(&mut self, host: &str, port: Option<u16>, addrs: Arc<[SocketAddr]>) {
        let host = canonical_name(host);
        self.0.retain(|o| !(*o.host == *host && o.port == port));
        self.0.push(Override {
            host: host.into(),
            port,
            addrs,
        });
    }

    /// The overriding addresses for `host` and `port`, an exact port before "any port"; an
    /// address given with port 0 takes `port`. Port 0 (a lookup for a caller that sets the
    /// port itself) matches only "any port" overrides.
    pub(crate) fn find(&self, host: &str, port: u16) -> Option<Vec<SocketAddr>> {
        if self.0.is_empty() {
            return None;
        }
        let host = canonical_name(host);
        let matching =
            |wanted: Option<u16>| self.0.iter().find(|o| o.port == wanted && *o.host == *host);
        let exact = (port != 0).then(|| matching(Some(port))).flatten();
        let found = exact.or_else(|| matching(None))?;
        let with_port = |addr: &SocketAddr| {
            let mut addr = *addr;
            if addr.port() == 0 {
                addr.set_port(port);
            }
            addr
        };
        Some(found.addrs.iter().map(with_port).collect())
    }
}

/// Lists longer than this are de-duplicated with a hash set rather than by scanning.
const SCAN_LIMIT: usize = 16;

/// Drops repeated addresses and those of a family not allowed, keeping the first occurrence's
/// place; says how many the family filter removed.
pub(crate) fn dedup_and_filter(addrs: &mut Vec<SocketAddr>, families: IpFamilies) -> usize {
    let mut filtered = 0;
    keep_new(addrs, 0, |addr| {
        let allowed = families.allows(addr);
        filtered += usize::from(!allowed);
        allowed
    });
    filtered
}

/// Keeps, of `addrs[start..]`, each address not seen before it (in `addrs[..start]` or earlier
/// in the tail) for which `keep` says yes, in order; `keep` is asked once per new address.
/// Linear for long lists (a hash set), a scan for short ones, where that is faster.
pub(crate) fn keep_new(
    addrs: &mut Vec<SocketAddr>,
    start: usize,
    mut keep: impl FnMut(&SocketAddr) -> bool,
) {
    if addrs.len() > SCAN_LIMIT {
        let mut seen: HashSet<SocketAddr> = addrs[..start].iter().copied().collect();
        let mut index = 0;
        addrs.retain(|addr| {
            index += 1;
            index <= start || (seen.insert(*addr) && keep(addr))
        });
        return;
    }
    let mut kept = start;
    for i in start..addrs.len() {
        let addr = addrs[i];
        if !addrs[..kept].contains(&addr) && keep(&addr) {
            addrs[kept] = addr;
            kept += 1;
        }
    }
    addrs.truncate(kept);
}

/// Reorders by RFC 8305 §4: `first_family_count` addresses of the first address's family, then
/// one of each family in turn; what is left of either family goes last, in its order.
pub(crate) fn interleave(addrs: &mut Vec<SocketAddr>, first_family_count: usize) {
    // Most answers are in that order already (one family, or one of each); they are left
    // where they are rather than copied.
    if addrs.len() > 2
        && !addrs
            .iter()
            .copied()
            .eq(interleaved(addrs, first_family_count))
    {
        *addrs = interleaved(addrs, first_family_count).collect();
    }
}

fn interleaved(
    addrs: &[SocketAddr],
    first_family_count: usize,
) -> impl Iterator<Item = SocketAddr> + '_ {
    let first_is_v6 = addrs.first().is_some_and(SocketAddr::is_ipv6);
    let of_family = |v6: bool| addrs.iter().filter(move |a| a.is_ipv6() == v6);
    let mut primary = of_family(first_is_v6);
    let mut secondary = of_family(!first_is_v6);
    let mut lead = first_family_count.max(1);
    let mut secondary_next = true;
    std::iter::from_fn(move || {
        if lead > 0 {
            lead -= 1;
            if let Some(addr) = primary.next() {
                return Some(*addr);
            }
            lead = 0;
        }
        let (turn, other) = match secondary_next {
            true => (&mut secondary, &mut primary),
            false => (&mut primary, &mut secondary),
        };
        let next = turn.next().or_else(|| other.next());
        secondary_next = !secondary_next;
        next.copied()
    })
}

/// Moves `first` to the front, keeping the others' order, and says whether it was listed: an
/// address that is not is never added, so a remembered address is tried only when the resolver
/// returned it this time.
pub(crate) fn promote(addrs: &mut [SocketAddr], first: SocketAddr) -> bool {
    let Some(position) = addrs.iter().position(|&a| a == first) else {
        return false;
    };
    addrs[..=position].rotate_right(1);
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addrs(list: &str) -> Vec<SocketAddr> {
        list.split_whitespace()
            .map(|s| match s.strip_prefix('6') {
                Some(n) => SocketAddr::from(([0, 0, 0, 0, 0, 0, 0, n.parse().unwrap()], 80)),
                None => SocketAddr::from(([10, 0, 0, s[1..].parse().unwrap()], 80)),
            })
            .collect()
    }

    #[test]
    fn interleaves_starting_with_the_first_family() {
        let interleaved = |list: &str, first_family_count| {
            let mut list = addrs(list);
            interleave(&mut list, first_family_count);
            list
        };
        assert_eq!(interleaved("61 62 63 41 42", 1), addrs("61 41 62 42 63"));
        assert_eq!(interleaved("41 42 43 61", 1), addrs("41 61 42 43"));
        assert_eq!(interleaved("61 62 63 41 42", 2), addrs("61 62 41 63 42"));
        assert_eq!(interleaved("41 42", 1), addrs("41 42"));
        assert_eq!(interleaved("61 41 42 43", 0), addrs("61 41 42 43"));
        assert_eq!(interleaved("61 41 62 42", 1), addrs("61 41 62 42"));
        assert_eq!(
            interleaved("41 42 61 62 63 64", 3),
            addrs("41 42 61 62 63 64")
        );
        assert_eq!(interleaved("", 1), Vec::new());
    }

    #[test]
    fn promote_moves_a_listed_address_to_the_front() {
        let mut list = addrs("61 41 62 42");
        assert!(promote(&mut list, addrs("42")[0]));
        assert_eq!(list, addrs("42 61 41 62"));
        assert!(!promote(&mut list, addrs("43")[0]));
        assert_eq!(
            list,
            addrs("42 61 41 62"),
            "an address not returned is never added"
        );
    }

    #[test]
    fn dedup_keeps_first_place_and_filters_families() {
        let mut list = addrs("61 41 61 42 41 62");
        dedup_and_filter(&mut list, IpFamilies::Both);
        assert_eq!(list, addrs("61 41 42 62"));
        dedup_and_filter(&mut list, IpFamilies::V4Only);
        assert_eq!(list, addrs("41 42"));
        dedup_and_filter(&mut list, IpFamilies::V6Only);
        assert!(list.is_empty());
    }

    #[test]
    fn overrides_match_exact_port_first_then_any() {
        let mut overrides = Overrides::default();
        let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
        let exact: SocketAddr = "127.0.0.2:9000".parse().unwrap();
        overrides.set("Upstream.test.", None, Arc::from([any]));
        overrides.set("upstream.test", Some(443), Arc::from([exact]));
        assert_eq!(overrides.find("UPSTREAM.test", 443), Some(vec![exact]));
        let any_port = overrides.find("upstream.test", 80).unwrap();
        assert_eq!(
            any_port,
            vec!["127.0.0.1:80".parse::<SocketAddr>().unwrap()]
        );
        assert_eq!(overrides.find("other.test", 80), None);
        overrides.set("upstream.test", Some(443), Arc::from([any]));
        assert_eq!(
            overrides.find("upstream.test", 443),
            Some(vec!["127.0.0.1:443".parse().unwrap()])
        );
        overrides.set("Bücher.Example.", None, Arc::from([exact]));
        #[cfg(feature = "idn")]
        assert_eq!(
            overrides.find("xn--bcher-kva.example", 1),
            Some(vec![exact]),
            "an internationalized override matches the target's ASCII form"
        );
    }

    #[test]
    fn long_lists_dedup_the_same_way() {
        let mut list: Vec<_> = (0..100u16)
            .map(|n| SocketAddr::from(([127, 0, 0, 1], n % 40)))
            .collect();
        dedup_and_filter(&mut list, IpFamilies::Both);
        let expected: Vec<_> = (0..40u16)
            .map(|n| SocketAddr::from(([127, 0, 0, 1], n)))
            .collect();
        assert_eq!(list, expected);
        dedup_and_filter(&mut list, IpFamilies::V6Only);
        assert!(list.is_empty());
    }
}
