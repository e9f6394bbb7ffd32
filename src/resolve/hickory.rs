//! A resolver on hickory-resolver (feature `hickory`): AAAA and A asked at once, each answer
//! handed over the moment it arrives.

use std::fmt;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use hickory_resolver::TokioResolver;
use hickory_resolver::config::{ResolverConfig, ResolverOpts};
use hickory_resolver::net::NetError;
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::rr::{RData, RecordType};

use crate::resolve::answers::{Answer, Answering, Family};
use crate::resolve::rfc6724::Sources;
use crate::resolve::{Resolve, Resolving};

/// A DNS resolver that asks for AAAA and A at the same moment, as separate queries, and hands
/// each answer to the race as it arrives (RFC 8305 §3): a slow or dropped AAAA answer does not
/// hold up an IPv4 connect by more than the [resolution delay](crate::Connector::resolution_delay),
/// where `getaddrinfo` waits for both (glibc: 5 s per try, twice).
///
/// Each answer carries its records' time to live, which the connector's
/// [answer cache](crate::Connector::answer_cache) keeps it for (within its TTL range).
///
/// Each answer is ordered by RFC 6724 §6 (rules 1, 2, 5, 6, 8 and 9), with the source address
/// for each destination learnt by connecting a UDP socket to it (nothing is sent) and kept for
/// 30 s; only an answer's first 32 addresses are ordered (the rest follow as they came), so a
/// huge answer costs at most 32 sockets, and a cached one none. A name with
/// no record of one type (NODATA) or that does not exist (NXDOMAIN) is a negative answer for
/// that family, not a failure.
///
/// What it does not do that `getaddrinfo` does: it reads `/etc/resolv.conf` and `/etc/hosts`
/// but not the rest of nsswitch (mDNS, LDAP, NIS, `systemd-resolved`'s own rules and split
/// DNS), and its RFC 6724 ordering uses the default policy table, not `/etc/gai.conf`.
///
/// # Examples
///
/// ```no_run
/// use connect_any::{Connector, HickoryResolver};
///
/// # fn run() -> std::io::Result<()> {
/// let connector = Connector::new().resolver(HickoryResolver::from_system_conf()?);
/// # drop(connector);
/// # Ok(())
/// # }
/// ```
#[cfg_attr(docsrs, doc(cfg(feature = "hickory")))]
#[derive(Clone)]
pub struct HickoryResolver {
    resolver: TokioResolver,
    sources: Arc<Sources>,
}

impl fmt::Debug for HickoryResolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HickoryResolver").finish_non_exhaustive()
    }
}

impl HickoryResolver {
    /// A resolver configured from the system: `/etc/resolv.conf` (or the registry on Windows)
    /// and `/etc/hosts`.
    ///
    /// # Errors
    ///
    /// When the system configuration cannot be read.
    pub fn from_system_conf() -> io::Result<Self> {
        let builder = TokioResolver::builder_tokio().map_err(net_error)?;
        Ok(Self::from_resolver(builder.build().map_err(net_error)?))
    }

    /// A resolver with the given hickory configuration (name servers, search domains) and
    /// options (timeouts, attempts, cache).
    ///
    /// # Errors
    ///
    /// When hickory cannot build a resolver from them.
    pub fn with_config(config: ResolverConfig, options: ResolverOpts) -> io::Result<Self> {
        let builder = TokioResolver::builder_with_config(config, TokioRuntimeProvider::default())
            .with_options(options);
        Ok(Self::from_resolver(builder.build().map_err(net_error)?))
    }

    /// Wraps a hickory resolver built another way.
    pub fn from_resolver(resolver: TokioResolver) -> Self {
        Self {
            resolver,
            sources: Arc::default(),
        }
    }

    /// One family's query: its addresses in RFC 6724 order (none for NODATA or NXDOMAIN),
    /// and how long they may be kept: until hickory's own cache would drop them, which is the
    /// smallest TTL of the records.
    async fn query(
        &self,
        host: &str,
        port: u16,
        family: Family,
    ) -> (io::Result<Vec<SocketAddr>>, Option<Duration>) {
        let record_type = match family {
            Family::Ipv6 => RecordType::AAAA,
            Family::Ipv4 => RecordType::A,
        };
        let lookup = match self.resolver.lookup(host, record_type).await {
            Ok(lookup) => lookup,
            Err(error) if error.is_no_records_found() => return (Ok(Vec::new()), None),
            Err(error) => return (Err(net_error(error)), None),
        };
        let ttl = lookup
            .valid_until()
            .saturating_duration_since(std::time::Instant::now());
        let addrs = lookup
            .answers()
            .iter()
            .filter_map(|record| match &record.data {
                RData::AAAA(aaaa) if family == Family::Ipv6 => Some(IpAddr::V6(aaaa.0)),
                RData::A(a) if family == Family::Ipv4 => Some(IpAddr::V4(a.0)),
                _ => None,
            });
        let mut addrs: Vec<_> = addrs.map(|ip| SocketAddr::new(ip, port)).collect();
        self.sources.order(&mut addrs);
        (Ok(addrs), Some(ttl))
    }
}

impl Resolve for HickoryResolver {
    /// Both queries at once; the addresses of both, IPv6 first, once both have answered.
    fn resolve<'a>(&'a self, host: &'a str, port: u16) -> Resolving<'a> {
        Box::pin(async move {
            let ((ipv6, _), (ipv4, _)) = futures_util::join!(
                self.query(host, port, Family::Ipv6),
                self.query(host, port, Family::Ipv4)
            );
            match (ipv6, ipv4) {
                (Err(error), Err(_)) => Err(error),
                (ipv6, ipv4) => Ok(ipv6.into_iter().chain(ipv4).flatten().collect()),
            }
        })
    }

    fn resolve_in_parts<'a>(&'a self, host: &'a str, port: u16) -> Answering<'a> {
        let query = move |family| async move {
            let (addrs, ttl) = self.query(host, port, family).await;
            let answer = match family {
                Family::Ipv6 => Answer::ipv6(addrs),
                Family::Ipv4 => Answer::ipv4(addrs),
            };
            match ttl {
                Some(ttl) => answer.with_ttl(ttl),
                None => answer,
            }
        };
        let both: FuturesUnordered<_> = [query(Family::Ipv6), query(Family::Ipv4)]
            .into_iter()
            .collect();
        both.boxed()
    }
}

/// hickory's error as an `io::Error` with a kind callers can match.
fn net_error(error: NetError) -> io::Error {
    let kind = match &error {
        NetError::Timeout => io::ErrorKind::TimedOut,
        NetError::Io(io) => io.kind(),
        _ if error.is_nx_domain() => io::ErrorKind::NotFound,
        _ => io::ErrorKind::Other,
    };
    io::Error::new(kind, error)
}
