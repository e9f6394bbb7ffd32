//! A resolver on hickory-resolver (feature `hickory`): AAAA and A asked at once, each answer
//! handed over the moment it arrives.

use std::fmt;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use std::collections::HashSet;

use futures_util::StreamExt;
use futures_util::stream::{self, FuturesUnordered};
use hickory_resolver::TokioResolver;
use hickory_resolver::config::{ResolverConfig, ResolverOpts};
use hickory_resolver::net::NetError;
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::rr::rdata::svcb::{SVCB, SvcParamKey, SvcParamValue};
use hickory_resolver::proto::rr::{Name, RData, RecordType};

use crate::resolve::answers::{Answer, Answering, Family};
use crate::resolve::rfc6724::Sources;
use crate::resolve::service::record::ServiceRecord;
use crate::resolve::service::{https_query_name, normalized};
use crate::resolve::{Resolve, Resolving};

/// A DNS resolver that asks for AAAA and A at the same moment, as separate queries, and hands
/// each answer to the race as it arrives (RFC 8305 §3): a slow or dropped AAAA answer does not
/// hold up an IPv4 connect by more than the [resolution delay](crate::Connector::resolution_delay),
/// where `getaddrinfo` waits for both (glibc: 5 s per try, twice).
///
/// For a target given a [`Service`](crate::Service), it also asks for the name's HTTPS
/// records (RFC 9460) with the AAAA and A queries, follows AliasMode records (at most 8; a
/// loop or a longer chain is the HTTPS query's error), and asks for the addresses of each
/// other TargetName the records name (at most 8): see
/// [`Resolve::resolve_https`](crate::Resolve::resolve_https).
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

    /// The HTTPS query sent with the AAAA and A queries; once its records are in, the AAAA and
    /// A queries for each other name they point at (at most 8).
    fn resolve_https<'a>(&'a self, host: &'a str, port: u16) -> Option<Answering<'a>> {
        let own = self.resolve_in_parts(host, port);
        let https = stream::once(self.https_records(host, port)).flat_map(move |records| {
            let names = match &records {
                Ok(records) => other_target_names(records, host),
                Err(_) => Vec::new(),
            };
            let name_queries: FuturesUnordered<_> = names
                .into_iter()
                .flat_map(|name| [(name.clone(), Family::Ipv6), (name, Family::Ipv4)])
                .map(|(name, family)| async move {
                    let (addrs, _) = self.query(&name, port, family).await;
                    let answer = match family {
                        Family::Ipv6 => Answer::ipv6(addrs),
                        Family::Ipv4 => Answer::ipv4(addrs),
                    };
                    answer.for_name(&name)
                })
                .collect();
            stream::once(std::future::ready(Answer::https(records))).chain(name_queries)
        });
        Some(Box::pin(stream::select(own, https)))
    }
}

/// How many AliasMode records are followed before the chain counts as failed (RFC 9460 §3
/// asks clients to bound it).
const MAX_ALIASES: usize = 8;

/// How many other TargetNames' addresses are asked for, so that a hostile answer cannot make
/// one connect send hundreds of queries.
const MAX_TARGET_NAMES: usize = 8;

impl HickoryResolver {
    /// The ServiceMode records of `host:port`'s HTTPS answer, AliasMode records followed (an
    /// alias to `.` means the service is not there: no records). Records that cannot be read
    /// are skipped with a debug event.
    async fn https_records(&self, host: &str, port: u16) -> io::Result<Vec<ServiceRecord>> {
        let mut name = https_query_name(host, port);
        let mut seen = HashSet::from([normalized(&name)]);
        for _ in 0..=MAX_ALIASES {
            let lookup = match self.resolver.lookup(name.as_str(), RecordType::HTTPS).await {
                Ok(lookup) => lookup,
                Err(error) if error.is_no_records_found() => return Ok(Vec::new()),
                Err(error) => return Err(net_error(error)),
            };
            let found: Vec<(&Name, &SVCB)> = lookup
                .answers()
                .iter()
                .filter_map(|record| match &record.data {
                    RData::HTTPS(https) => Some((&record.name, &https.0)),
                    _ => None,
                })
                .collect();
            // RFC 9460 §2.4.1: an alias in the set makes its ServiceMode records ignored.
            if let Some((_, alias)) = found.iter().find(|(_, svcb)| svcb.svc_priority == 0) {
                if alias.target_name.is_root() {
                    return Ok(Vec::new());
                }
                name = alias.target_name.to_ascii();
                if !seen.insert(normalized(&name)) {
                    return Err(io::Error::other(format!("HTTPS alias loop at {name}")));
                }
                continue;
            }
            let records = found.into_iter().filter_map(|(owner, svcb)| {
                let record = service_record(owner, svcb, host);
                if record.is_none() {
                    tracing::debug!(?svcb, "HTTPS record not understood, skipped");
                }
                record
            });
            return Ok(records.collect());
        }
        Err(io::Error::other(format!(
            "HTTPS alias chain longer than {MAX_ALIASES}"
        )))
    }
}

/// hickory's record as the connector reads it: a TargetName of `.` stays `.` when the record
/// is at `host` itself, and is the record's owner name after an alias. `None` for a record
/// whose parameters do not match their keys.
fn service_record(owner: &Name, svcb: &SVCB, host: &str) -> Option<ServiceRecord> {
    let target = match svcb.target_name.is_root() {
        true if normalized(&owner.to_ascii()) == normalized(host) => ".".to_owned(),
        true => owner.to_ascii(),
        false => svcb.target_name.to_ascii(),
    };
    let mut record = ServiceRecord::new(svcb.svc_priority, &target);
    for (key, value) in &svcb.svc_params {
        record = match (key, value) {
            (SvcParamKey::Mandatory, SvcParamValue::Mandatory(keys)) => {
                record.with_mandatory(keys.0.iter().map(|key| u16::from(*key)))
            }
            (SvcParamKey::Alpn, SvcParamValue::Alpn(alpn)) => record.with_alpn(&alpn.0),
            (SvcParamKey::NoDefaultAlpn, SvcParamValue::NoDefaultAlpn) => {
                record.with_no_default_alpn()
            }
            (SvcParamKey::Port, SvcParamValue::Port(port)) => record.with_port(*port),
            (SvcParamKey::Ipv4Hint, SvcParamValue::Ipv4Hint(hints)) => {
                record.with_ipv4_hints(hints.0.iter().map(|a| a.0))
            }
            (SvcParamKey::Ipv6Hint, SvcParamValue::Ipv6Hint(hints)) => {
                record.with_ipv6_hints(hints.0.iter().map(|aaaa| aaaa.0))
            }
            (SvcParamKey::EchConfigList, SvcParamValue::EchConfigList(ech)) => {
                record.with_ech_config_list(ech.0.clone())
            }
            (key, SvcParamValue::Unknown(_)) => record.with_other_key(u16::from(*key)),
            _ => return None,
        };
    }
    Some(record)
}

/// The TargetNames of `records` other than `host`'s own, each once, at most
/// [`MAX_TARGET_NAMES`].
fn other_target_names(records: &[ServiceRecord], host: &str) -> Vec<String> {
    let own = normalized(host);
    let mut names: Vec<String> = Vec::new();
    for record in records {
        let name = record.target_name();
        let other = name != "." && normalized(name) != own;
        if other && !names.iter().any(|n| normalized(n) == normalized(name)) {
            names.push(name.to_owned());
        }
    }
    names.truncate(MAX_TARGET_NAMES);
    names
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
