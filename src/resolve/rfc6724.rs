//! Destination address selection (RFC 6724 §6), for resolvers that do not sort as
//! `getaddrinfo` does: rules 1 (avoid unusable destinations), 2 (prefer matching scope),
//! 5 (prefer matching label), 6 (prefer higher precedence), 8 (prefer smaller scope) and
//! 9 (use the longest matching prefix), over a source address learnt per destination.

use std::cmp::Ordering;
use std::net::{IpAddr, Ipv6Addr, SocketAddr, UdpSocket};
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use crate::connector::expiring::ExpiringMap;
use crate::sync::lock;

/// How many of an answer's addresses are ordered; the rest follow in the answer's order. A
/// race rarely gets past the first few, and each ordered address costs a socket (once per
/// [`SOURCE_TTL`]).
const MAX_ORDERED: usize = 32;
/// How long a destination's source address is trusted; routes change rarely, and a stale one
/// only misorders.
const SOURCE_TTL: Duration = Duration::from_secs(30);
/// How many destinations' source addresses are kept.
const SOURCE_CAPACITY: usize = 1024;

/// The source address per destination, learnt with a socket and kept for a while, so that a
/// name answered from hickory's cache costs no socket at all.
#[derive(Debug)]
pub(crate) struct Sources {
    known: Mutex<ExpiringMap<IpAddr, Option<IpAddr>>>,
    #[cfg(test)]
    learnt: std::sync::atomic::AtomicUsize,
}

impl Default for Sources {
    fn default() -> Self {
        Self {
            known: Mutex::new(ExpiringMap::new(SOURCE_CAPACITY, SOURCE_TTL)),
            #[cfg(test)]
            learnt: Default::default(),
        }
    }
}

impl Sources {
    /// Orders `dests` by RFC 6724 §6: the first [`MAX_ORDERED`] of them, each with its source
    /// (known, or learnt now), then the rest as they came.
    pub(crate) fn order(&self, dests: &mut [SocketAddr]) {
        let ordered = dests.len().min(MAX_ORDERED);
        if ordered < 2 {
            return;
        }
        let mut with_sources: Vec<_> = dests[..ordered]
            .iter()
            .map(|dest| (*dest, self.source_of(dest)))
            .collect();
        sort(&mut with_sources);
        for (slot, (dest, _)) in dests.iter_mut().zip(with_sources) {
            *slot = dest;
        }
    }

    fn source_of(&self, dest: &SocketAddr) -> Option<IpAddr> {
        let now = Instant::now();
        if let Some((source, _)) = lock(&self.known).get(&dest.ip(), now) {
            return source;
        }
        #[cfg(test)]
        self.learnt
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let source = source_for(dest);
        lock(&self.known).store(dest.ip(), now, |_| source);
        source
    }
}

/// The source address the system would use to reach `dest`: connecting a UDP socket sends
/// nothing, but makes the kernel pick a route and a source. `None` when there is no route
/// (the destination is unusable).
fn source_for(dest: &SocketAddr) -> Option<IpAddr> {
    let unspecified: SocketAddr = match dest {
        SocketAddr::V4(_) => (std::net::Ipv4Addr::UNSPECIFIED, 0).into(),
        SocketAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    let socket = UdpSocket::bind(unspecified).ok()?;
    // A port is needed to connect; the discard port will do, as nothing is sent.
    let port = if dest.port() == 0 { 9 } else { dest.port() };
    socket.connect(SocketAddr::new(dest.ip(), port)).ok()?;
    Some(socket.local_addr().ok()?.ip())
}

/// Sorts `dests` by RFC 6724 §6, each paired with its source address (`None`: unusable). The
/// sort is stable, so the resolver's order breaks remaining ties (rule 10).
fn sort(dests: &mut [(SocketAddr, Option<IpAddr>)]) {
    dests.sort_by(compare);
}

fn compare(
    (da, sa): &(SocketAddr, Option<IpAddr>),
    (db, sb): &(SocketAddr, Option<IpAddr>),
) -> Ordering {
    let (da, db) = (as_v6(da.ip()), as_v6(db.ip()));
    let (sa, sb) = (sa.map(as_v6), sb.map(as_v6));
    // `Less` puts a first, so every rule compares "b is better" to "a is better".
    // Rule 1: avoid unusable destinations.
    let usable = sb.is_some().cmp(&sa.is_some());
    let (Some(sa), Some(sb)) = (sa, sb) else {
        return usable;
    };
    // Rule 2: prefer matching scope.
    let scope_match = |d, s| scope(d) == scope(s);
    let rule2 = scope_match(db, sb).cmp(&scope_match(da, sa));
    // Rule 5: prefer matching label.
    let label_match = |d, s| policy(d).1 == policy(s).1;
    let rule5 = label_match(db, sb).cmp(&label_match(da, sa));
    // Rule 6: prefer higher precedence.
    let rule6 = policy(db).0.cmp(&policy(da).0);
    // Rule 8: prefer smaller scope.
    let rule8 = scope(da).cmp(&scope(db));
    // Rule 9: the longest matching prefix, between addresses of one family only.
    let rule9 = if da.to_ipv4_mapped().is_some() == db.to_ipv4_mapped().is_some() {
        common_prefix(db, sb).cmp(&common_prefix(da, sa))
    } else {
        Ordering::Equal
    };
    rule2.then(rule5).then(rule6).then(rule8).then(rule9)
}

fn as_v6(ip: IpAddr) -> Ipv6Addr {
    match ip {
        IpAddr::V4(v4) => v4.to_ipv6_mapped(),
        IpAddr::V6(v6) => v6,
    }
}

/// The default policy table (RFC 6724 §2.1): (precedence, label) of the longest matching
/// prefix.
fn policy(ip: Ipv6Addr) -> (u8, u8) {
    const TABLE: &[(u128, u32, u8, u8)] = &[
        (0x0000_0000_0000_0000_0000_0000_0000_0001, 128, 50, 0), // ::1/128
        (0x0000_0000_0000_0000_0000_ffff_0000_0000, 96, 35, 4),  // ::ffff:0:0/96
        (0x2002_0000_0000_0000_0000_0000_0000_0000, 16, 30, 2),  // 2002::/16
        (0x2001_0000_0000_0000_0000_0000_0000_0000, 32, 5, 5),   // 2001::/32
        (0xfc00_0000_0000_0000_0000_0000_0000_0000, 7, 3, 13),   // fc00::/7
        (0x0000_0000_0000_0000_0000_0000_0000_0000, 96, 1, 3),   // ::/96
        (0xfec0_0000_0000_0000_0000_0000_0000_0000, 10, 1, 11),  // fec0::/10
        (0x3ffe_0000_0000_0000_0000_0000_0000_0000, 16, 1, 12),  // 3ffe::/16
    ];
    let bits = u128::from(ip);
    TABLE
        .iter()
        .find(|&&(net, len, _, _)| bits >> (128 - len) == net >> (128 - len))
        .map_or((40, 1), |&(_, _, precedence, label)| (precedence, label)) // ::/0
}

/// The scope of an address (RFC 4291 §2.7, RFC 6724 §3.2): smaller is narrower.
fn scope(ip: Ipv6Addr) -> u8 {
    const LINK_LOCAL: u8 = 0x2;
    const SITE_LOCAL: u8 = 0x5;
    const GLOBAL: u8 = 0xe;
    if let Some(v4) = ip.to_ipv4_mapped() {
        return match v4.octets() {
            [127, ..] | [169, 254, ..] => LINK_LOCAL,
            _ => GLOBAL,
        };
    }
    let segments = ip.segments();
    match segments[0] {
        _ if ip.is_loopback() => LINK_LOCAL,
        s if s & 0xff00 == 0xff00 => (s & 0x000f) as u8,
        s if s & 0xffc0 == 0xfe80 => LINK_LOCAL,
        s if s & 0xffc0 == 0xfec0 => SITE_LOCAL,
        _ => GLOBAL,
    }
}

/// Leading bits two addresses share, up to the 64-bit prefix (RFC 6724 §2.2).
fn common_prefix(a: Ipv6Addr, b: Ipv6Addr) -> u32 {
    (u128::from(a) ^ u128::from(b)).leading_zeros().min(64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sorted(pairs: &[(&str, Option<&str>)]) -> Vec<String> {
        let mut dests: Vec<_> = pairs
            .iter()
            .map(|(d, s)| {
                let ip: IpAddr = d.parse().unwrap();
                (SocketAddr::new(ip, 1), s.map(|s| s.parse().unwrap()))
            })
            .collect();
        sort(&mut dests);
        dests.iter().map(|(d, _)| d.ip().to_string()).collect()
    }

    /// Candidate destinations, each with its source address (`None`: no route).
    type Candidates<'a> = &'a [(&'a str, Option<&'a str>)];

    /// Rows from RFC 6724 §10.2's examples and the rules, each (candidates with their
    /// sources, expected order).
    #[test]
    fn destination_selection() {
        let table: &[(Candidates<'_>, &[&str])] = &[
            // Rule 1: an unreachable destination goes last.
            (
                &[
                    ("2001:db8:1::1", None),
                    ("198.51.100.121", Some("198.51.100.117")),
                ],
                &["198.51.100.121", "2001:db8:1::1"],
            ),
            // Rule 2: matching scope (a global IPv6 destination without a global source).
            (
                &[
                    ("2001:db8:1::1", Some("fe80::1")),
                    ("198.51.100.121", Some("198.51.100.117")),
                ],
                &["198.51.100.121", "2001:db8:1::1"],
            ),
            // Rule 5/6: native IPv6 over IPv4 when both have matching sources.
            (
                &[
                    ("198.51.100.121", Some("198.51.100.117")),
                    ("2001:db8:1::1", Some("2001:db8:1::2")),
                ],
                &["2001:db8:1::1", "198.51.100.121"],
            ),
            // Rule 5: a 6to4 source matches a 6to4 destination's label.
            (
                &[
                    ("2001:db8:1::1", Some("2002:c633:6401::2")),
                    ("2002:c633:6401::1", Some("2002:c633:6401::2")),
                ],
                &["2002:c633:6401::1", "2001:db8:1::1"],
            ),
            // Rule 6: higher precedence: ::1 (50) over a global IPv6 (40).
            (
                &[
                    ("2001:db8:1::1", Some("2001:db8:1::2")),
                    ("::1", Some("::1")),
                ],
                &["::1", "2001:db8:1::1"],
            ),
            // Rule 8: smaller scope, with equal precedence (both link-local by scope).
            (
                &[
                    ("2001:db8:1::1", Some("2001:db8:1::d")),
                    ("fe80::1", Some("fe80::d")),
                ],
                &["fe80::1", "2001:db8:1::1"],
            ),
            // Rule 9: the longer matching prefix.
            (
                &[
                    ("2001:db8:2::1", Some("2001:db8:1::d")),
                    ("2001:db8:1::1", Some("2001:db8:1::d")),
                ],
                &["2001:db8:1::1", "2001:db8:2::1"],
            ),
            // Rule 10: otherwise the resolver's order stands.
            (
                &[
                    ("198.51.100.1", Some("198.51.100.117")),
                    ("198.51.100.2", Some("198.51.100.117")),
                ],
                &["198.51.100.1", "198.51.100.2"],
            ),
            // Loopback IPv6 before loopback IPv4 (::1 precedence 50 over ::ffff:0:0/96 35).
            (
                &[("127.0.0.1", Some("127.0.0.1")), ("::1", Some("::1"))],
                &["::1", "127.0.0.1"],
            ),
        ];
        for (candidates, expected) in table {
            assert_eq!(sorted(candidates), *expected, "{candidates:?}");
        }
    }

    #[test]
    fn scopes_and_policies() {
        let v6 = |s: &str| s.parse::<Ipv6Addr>().unwrap();
        assert_eq!(scope(v6("fe80::1")), 2);
        assert_eq!(scope(v6("ff05::1")), 5);
        assert_eq!(scope(v6("2001:db8::1")), 14);
        assert_eq!(scope(as_v6("169.254.1.1".parse().unwrap())), 2);
        assert_eq!(policy(v6("::1")), (50, 0));
        assert_eq!(policy(as_v6("10.0.0.1".parse().unwrap())), (35, 4));
        assert_eq!(policy(v6("2a00::1")), (40, 1));
        assert_eq!(common_prefix(v6("2001:db8::1"), v6("2001:db8::2")), 64);
    }

    /// 2,000 records cost at most 32 sockets, and none once their sources are known.
    #[tokio::test]
    async fn a_long_answer_costs_a_bounded_number_of_sockets_once() {
        use std::sync::atomic::Ordering::SeqCst;
        let sources = Sources::default();
        let answer: Vec<SocketAddr> = (0..2000u32)
            .map(|n| SocketAddr::from(([127, 3, (n >> 8) as u8, n as u8], 80)))
            .collect();
        let mut first = answer.clone();
        let began = std::time::Instant::now();
        sources.order(&mut first);
        let took = began.elapsed();
        assert_eq!(sources.learnt.load(SeqCst), MAX_ORDERED);
        println!("2,000 records ordered in {took:?}");
        let mut again = answer.clone();
        sources.order(&mut again);
        assert_eq!(
            sources.learnt.load(SeqCst),
            MAX_ORDERED,
            "no socket the second time"
        );
        assert_eq!(first, again);
        assert_eq!(
            first[MAX_ORDERED..],
            answer[MAX_ORDERED..],
            "the rest keep their order"
        );
        let mut head = first[..MAX_ORDERED].to_vec();
        head.sort();
        let mut expected = answer[..MAX_ORDERED].to_vec();
        expected.sort();
        assert_eq!(
            head, expected,
            "the first 32 are reordered among themselves"
        );
    }

    #[test]
    fn the_source_of_a_loopback_destination_is_loopback() {
        let source = source_for(&"127.0.0.1:80".parse().unwrap());
        assert_eq!(source, Some("127.0.0.1".parse().unwrap()));
    }
}
