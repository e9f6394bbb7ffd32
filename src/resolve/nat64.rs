//! NAT64 (RFC 6052, RFC 7050, RFC 8305 §7): where an IPv4 address sits inside an IPv6
//! address, how a prefix is learnt from a DNS64 server's answer for `ipv4only.arpa`, and the
//! connector's NAT64 state.

use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::time::Instant;

use crate::resolve::SharedResolver;

/// The prefix lengths RFC 6052 §2.2 allows.
const LENGTHS: [u8; 6] = [32, 40, 48, 56, 64, 96];

/// The octet (bits 64-71) that RFC 6052 reserves: zero in every address, so that the IPv4
/// bits skip it.
const U_OCTET: usize = 8;

/// The two IPv4 addresses of `ipv4only.arpa` (RFC 7050 §2.2).
const WELL_KNOWN_IPV4: [Ipv4Addr; 2] =
    [Ipv4Addr::new(192, 0, 0, 170), Ipv4Addr::new(192, 0, 0, 171)];

/// A NAT64 prefix (RFC 6052): an IPv6 prefix of 32, 40, 48, 56, 64 or 96 bits under which a
/// translator reaches IPv4 destinations, each IPv4 address embedded at the place the length
/// gives.
///
/// # Examples
///
/// ```
/// use std::net::{Ipv4Addr, Ipv6Addr};
/// use connect_any::Nat64Prefix;
///
/// let local = Nat64Prefix::new("2001:db8:122:344::".parse().unwrap(), 64).unwrap();
/// let v4 = Ipv4Addr::new(192, 0, 2, 33);
/// let v6: Ipv6Addr = "2001:db8:122:344:c0:2:2100:0".parse().unwrap();
/// assert_eq!(local.embed(v4), v6);
/// assert_eq!(local.extract(v6), Some(v4));
/// assert_eq!(Nat64Prefix::WELL_KNOWN.embed(v4), "64:ff9b::c000:221".parse::<Ipv6Addr>().unwrap());
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Nat64Prefix {
    /// The prefix's octets, zero past its length.
    octets: [u8; 16],
    len: u8,
}

/// Why [`Nat64Prefix::new`] refused a prefix.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Nat64PrefixError {
    /// RFC 6052 allows only 32, 40, 48, 56, 64 and 96 bits.
    #[error("a NAT64 prefix is 32, 40, 48, 56, 64 or 96 bits long, not {0}")]
    Length(u8),
    /// Bits 64-71 are reserved and must be zero (RFC 6052 §2.2).
    #[error("bits 64 to 71 of a NAT64 prefix must be zero")]
    ReservedBits,
}

impl Nat64Prefix {
    /// The well-known prefix, `64:ff9b::/96` (RFC 6052 §2.1).
    pub const WELL_KNOWN: Self = Self {
        octets: [0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
        len: 96,
    };

    /// The prefix of `len` bits of `prefix` (bits past the length are ignored).
    ///
    /// # Errors
    ///
    /// A length RFC 6052 does not allow, or a prefix whose reserved bits 64-71 are set.
    pub fn new(prefix: Ipv6Addr, len: u8) -> Result<Self, Nat64PrefixError> {
        if !LENGTHS.contains(&len) {
            return Err(Nat64PrefixError::Length(len));
        }
        let mut octets = prefix.octets();
        octets[usize::from(len / 8)..].fill(0);
        if octets[U_OCTET] != 0 {
            return Err(Nat64PrefixError::ReservedBits);
        }
        Ok(Self { octets, len })
    }

    /// The prefix, as an address with the bits past its length zero.
    pub fn prefix(&self) -> Ipv6Addr {
        Ipv6Addr::from(self.octets)
    }

    /// Its length in bits.
    pub fn length(&self) -> u8 {
        self.len
    }

    /// The octets of an address under this prefix that carry the IPv4 address, in order.
    fn positions(&self) -> impl Iterator<Item = usize> {
        let start = usize::from(self.len / 8);
        (start..16).filter(|&i| i != U_OCTET).take(4)
    }

    /// The IPv6 address that reaches `v4` through this prefix (RFC 6052 §2.2); the suffix
    /// past the IPv4 bits is zero.
    pub fn embed(&self, v4: Ipv4Addr) -> Ipv6Addr {
        let mut octets = self.octets;
        for (position, octet) in self.positions().zip(v4.octets()) {
            octets[position] = octet;
        }
        Ipv6Addr::from(octets)
    }

    /// The IPv4 address `v6` carries, if `v6` is under this prefix and its reserved bits are
    /// zero.
    pub fn extract(&self, v6: Ipv6Addr) -> Option<Ipv4Addr> {
        let octets = v6.octets();
        let prefix_len = usize::from(self.len / 8);
        let under_prefix = octets[..prefix_len] == self.octets[..prefix_len];
        if !under_prefix || octets[U_OCTET] != 0 {
            return None;
        }
        let mut v4 = [0; 4];
        for (slot, position) in v4.iter_mut().zip(self.positions()) {
            *slot = octets[position];
        }
        Some(Ipv4Addr::from(v4))
    }

    /// The prefix that a DNS64 server's AAAA answer for `ipv4only.arpa` reveals (RFC 7050
    /// §3): the one under which `v6` carries 192.0.0.170 or 192.0.0.171, if any; the longest
    /// such length first.
    pub fn from_ipv4only_answer(v6: Ipv6Addr) -> Option<Self> {
        LENGTHS.iter().rev().find_map(|&len| {
            let prefix = Self::new(v6, len).ok()?;
            let carried = prefix.extract(v6)?;
            WELL_KNOWN_IPV4.contains(&carried).then_some(prefix)
        })
    }
}

/// How a connector reaches IPv4 destinations from a host that has no IPv4 route to them (an
/// IPv6-only host behind NAT64, RFC 8305 §7); see [`Connector::nat64`](crate::Connector::nat64).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Nat64 {
    /// When a connect to an IPv4 address fails for want of a route, learn the network's
    /// prefix by asking the connector's resolver for `ipv4only.arpa` (RFC 7050) and dial the
    /// synthesized IPv6 address instead. The default.
    #[default]
    Automatic,
    /// As `Automatic`, with this prefix; nothing is asked.
    Prefix(Nat64Prefix),
    /// Never synthesize: an IPv4 address without a route fails as the system says.
    Off,
}

/// How long a learnt prefix is used before it is asked for again: the resolvers' answers carry
/// no TTL here, so a fixed time (RFC 7050 §3 bounds it by the answer's TTL; ten minutes is a
/// common DNS64 TTL).
const LEARNT_FOR: Duration = Duration::from_secs(600);

/// How long a failed attempt to learn a prefix keeps a connector from asking again: so that
/// on a host without IPv4 and without NAT64, connects do not each wait for a DNS query.
const UNLEARNT_FOR: Duration = Duration::from_secs(60);

/// What a connector learnt of its network's NAT64 prefix, and until when it holds.
#[derive(Clone, Copy, Debug)]
enum Learnt {
    Prefix(Nat64Prefix, Instant),
    Nothing(Instant),
}

/// A connector's NAT64 state, shared by its clones: whether an IPv4 destination has been
/// found without a route (so that later connects synthesize at once), and the prefix learnt.
#[derive(Debug, Default)]
pub(crate) struct Nat64State {
    without_ipv4: AtomicBool,
    learnt: Mutex<Option<Learnt>>,
}

impl Nat64State {
    /// Whether a connect has found an IPv4 destination without a route. Read on every connect
    /// to an IPv4 literal: one atomic load.
    #[inline]
    pub(crate) fn without_ipv4(&self) -> bool {
        self.without_ipv4.load(Ordering::Relaxed)
    }

    /// Notes that an IPv4 destination had no route.
    pub(crate) fn found_without_ipv4(&self) {
        if !self.without_ipv4.swap(true, Ordering::Relaxed) {
            tracing::debug!("an IPv4 destination had no route: IPv4 goes through NAT64 now");
        }
    }

    /// The prefix to synthesize with, if one is at hand now: the one `nat64` gives, or the
    /// one learnt within the last ten minutes.
    pub(crate) fn at_hand(&self, nat64: Nat64) -> Option<Nat64Prefix> {
        match nat64 {
            Nat64::Prefix(prefix) => Some(prefix),
            Nat64::Off => None,
            Nat64::Automatic => match *self.lock() {
                Some(Learnt::Prefix(prefix, until)) => (Instant::now() < until).then_some(prefix),
                _ => None,
            },
        }
    }

    /// The prefix to synthesize with: the one `nat64` gives, or the one learnt within the
    /// last ten minutes, or one learnt now from `resolver`'s answer for `ipv4only.arpa`
    /// (asked at most once a minute while it reveals none).
    ///
    /// # Errors
    ///
    /// NAT64 is off, or no answer revealed a prefix (the resolver's error, or `NotFound`).
    pub(crate) async fn prefix(
        &self,
        nat64: Nat64,
        resolver: &SharedResolver,
    ) -> io::Result<Nat64Prefix> {
        let none = || io::Error::new(io::ErrorKind::NotFound, "no NAT64 prefix");
        let now = Instant::now();
        match (nat64, *self.lock()) {
            (Nat64::Prefix(prefix), _) => return Ok(prefix),
            (Nat64::Off, _) => return Err(io::Error::other("NAT64 is off")),
            (_, Some(Learnt::Prefix(prefix, until))) if now < until => return Ok(prefix),
            (_, Some(Learnt::Nothing(until))) if now < until => return Err(none()),
            _ => {}
        }
        let answer = resolver.resolve("ipv4only.arpa", 0).await;
        let learnt = answer.as_ref().ok().and_then(|addrs| {
            addrs.iter().find_map(|addr| match addr.ip() {
                IpAddr::V6(v6) => Nat64Prefix::from_ipv4only_answer(v6),
                IpAddr::V4(_) => None,
            })
        });
        let now = Instant::now();
        let held = |lasting| now.checked_add(lasting).unwrap_or(now);
        match learnt {
            Some(prefix) => {
                tracing::debug!(%prefix, "NAT64 prefix learnt from ipv4only.arpa");
                *self.lock() = Some(Learnt::Prefix(prefix, held(LEARNT_FOR)));
                Ok(prefix)
            }
            None => {
                tracing::debug!(?answer, "ipv4only.arpa revealed no NAT64 prefix");
                *self.lock() = Some(Learnt::Nothing(held(UNLEARNT_FOR)));
                Err(answer.err().unwrap_or_else(none))
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Learnt>> {
        self.learnt
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Whether `addr` is an IPv4 address that may be reached through NAT64 (HEv3 §8: never 0/8,
/// 127/8, 169.254/16 or the broadcast address, which stay on the host or its link).
pub(crate) fn may_synthesize(addr: &SocketAddr) -> bool {
    let SocketAddr::V4(v4) = addr else {
        return false;
    };
    let ip = *v4.ip();
    let [first, second, ..] = ip.octets();
    !(first == 0 || first == 127 || (first, second) == (169, 254) || ip.is_broadcast())
}

/// How this host reaches IPv4 destinations, as far as can be told without sending anything.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Ipv4Reach {
    /// A default route: every IPv4 destination has a route.
    Everywhere,
    /// IPv4 addresses but no default route: each destination is asked about on its own.
    Partly,
    /// No IPv4 address but loopback (RFC 6724's "no IPv4 source"): an IPv6-only host.
    Nowhere,
}

/// How this host reaches IPv4, read once per process from the interface list and the
/// routing table (nothing is sent).
pub(crate) fn host_ipv4() -> Ipv4Reach {
    static REACH: std::sync::OnceLock<Ipv4Reach> = std::sync::OnceLock::new();
    *REACH.get_or_init(|| {
        let has_address =
            interface_ipv4().is_none_or(|mut addrs| addrs.any(|v4| !v4.is_loopback()));
        let reach = match (has_address, has_default_route()) {
            (false, _) => Ipv4Reach::Nowhere,
            (true, false) => Ipv4Reach::Partly,
            (true, true) => Ipv4Reach::Everywhere,
        };
        if reach != Ipv4Reach::Everywhere {
            tracing::debug!(?reach, "IPv4 destinations without a route go through NAT64");
        }
        reach
    })
}

/// Whether the routing table has a default IPv4 route; `true` where it cannot be read.
fn has_default_route() -> bool {
    // Linux: a line of /proc/net/route whose destination and mask are both 0.
    let Ok(table) = std::fs::read_to_string("/proc/net/route") else {
        return true;
    };
    table.lines().skip(1).any(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        matches!(
            fields.as_slice(),
            [_, "00000000", _, _, _, _, _, "00000000", ..]
        )
    })
}

/// Whether this host has a route to `v4`: a UDP socket connected to it (which sends
/// nothing) gets one, or fails with `ENETUNREACH`. Anything else counts as a route, so that
/// doubt never synthesizes.
pub(crate) fn has_route(v4: Ipv4Addr) -> bool {
    let Ok(socket) = std::net::UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)) else {
        return false;
    };
    match socket.connect((v4, 9)) {
        Ok(()) => true,
        Err(error) => !is_no_route(&error),
    }
}

/// The IPv4 addresses of this host's interfaces, or `None` if they cannot be listed (then the
/// host is taken to have IPv4).
#[cfg(unix)]
fn interface_ipv4() -> Option<impl Iterator<Item = Ipv4Addr>> {
    let mut list: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: `getifaddrs` writes a list it allocated into `list`, freed below.
    if unsafe { libc::getifaddrs(&mut list) } != 0 {
        return None;
    }
    let mut found = Vec::new();
    let mut entry = list;
    while !entry.is_null() {
        // SAFETY: `entry` is a node of the list `getifaddrs` returned, not yet freed.
        let node = unsafe { &*entry };
        // SAFETY: a non-null `ifa_addr` points to a `sockaddr` whose family says its type.
        if let Some(addr) = unsafe { node.ifa_addr.as_ref() }
            && i32::from(addr.sa_family) == libc::AF_INET
        {
            // SAFETY: an `AF_INET` address is a `sockaddr_in`.
            let v4 = unsafe { &*node.ifa_addr.cast::<libc::sockaddr_in>() };
            found.push(Ipv4Addr::from(u32::from_be(v4.sin_addr.s_addr)));
        }
        entry = node.ifa_next;
    }
    // SAFETY: `list` came from `getifaddrs` and is freed once.
    unsafe { libc::freeifaddrs(list) };
    Some(found.into_iter())
}

#[cfg(not(unix))]
fn interface_ipv4() -> Option<std::iter::Empty<Ipv4Addr>> {
    None
}

/// Whether `error`, from a connect to an IPv4 address, says there is no IPv4 route: the
/// system's `ENETUNREACH`, or `EAFNOSUPPORT` on a host without IPv4 at all. Only the system's
/// own errors count: nothing was sent, so trying the synthesized address costs no time.
pub(crate) fn is_no_route(error: &io::Error) -> bool {
    #[cfg(unix)]
    return matches!(
        error.raw_os_error(),
        Some(libc::ENETUNREACH | libc::EAFNOSUPPORT)
    );
    #[cfg(not(unix))]
    return error.raw_os_error().is_some() && error.kind() == io::ErrorKind::NetworkUnreachable;
}

/// The address to dial for `addr` with `prefix`: its synthesized IPv6 form for an IPv4 address
/// that [may be synthesized](may_synthesize), else `addr` itself.
pub(crate) fn synthesize(prefix: Nat64Prefix, addr: SocketAddr) -> SocketAddr {
    match addr {
        SocketAddr::V4(v4) if may_synthesize(&addr) => {
            SocketAddr::new(IpAddr::V6(prefix.embed(*v4.ip())), v4.port())
        }
        other => other,
    }
}

impl fmt::Debug for Nat64Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// `64:ff9b::/96`.
impl fmt::Display for Nat64Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.prefix(), self.len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v6(text: &str) -> Ipv6Addr {
        text.parse().unwrap()
    }

    /// RFC 6052 §2.4's table: 192.0.2.33 under a prefix of each length.
    const RFC_6052_EXAMPLES: [(&str, u8, &str); 7] = [
        ("2001:db8::", 32, "2001:db8:c000:221::"),
        ("2001:db8:100::", 40, "2001:db8:1c0:2:21::"),
        ("2001:db8:122::", 48, "2001:db8:122:c000:2:2100::"),
        ("2001:db8:122:300::", 56, "2001:db8:122:3c0:0:221::"),
        ("2001:db8:122:344::", 64, "2001:db8:122:344:c0:2:2100:0"),
        ("2001:db8:122:344::", 96, "2001:db8:122:344::c000:221"),
        ("64:ff9b::", 96, "64:ff9b::c000:221"),
    ];

    #[test]
    fn embeds_and_extracts_as_rfc_6052_section_2_4_shows() {
        let v4 = Ipv4Addr::new(192, 0, 2, 33);
        for (prefix, len, embedded) in RFC_6052_EXAMPLES {
            let prefix = Nat64Prefix::new(v6(prefix), len).unwrap();
            assert_eq!(prefix.embed(v4), v6(embedded), "{prefix}");
            assert_eq!(prefix.extract(v6(embedded)), Some(v4), "{prefix}");
        }
        assert_eq!(
            Nat64Prefix::WELL_KNOWN,
            Nat64Prefix::new(v6("64:ff9b::"), 96).unwrap()
        );
        assert_eq!(Nat64Prefix::WELL_KNOWN.to_string(), "64:ff9b::/96");
    }

    #[test]
    fn every_length_round_trips_and_skips_the_u_octet() {
        let v4 = Ipv4Addr::new(203, 0, 113, 255);
        for len in LENGTHS {
            let prefix = Nat64Prefix::new(v6("2001:db8:aaaa:bbbb::"), len).unwrap();
            let embedded = prefix.embed(v4);
            assert_eq!(embedded.octets()[U_OCTET], 0, "/{len}");
            assert_eq!(prefix.extract(embedded), Some(v4), "/{len}");
            // An address with the u octet set is not an RFC 6052 address.
            let mut bad = embedded.octets();
            bad[U_OCTET] = 1;
            if len != 96 {
                assert_eq!(prefix.extract(Ipv6Addr::from(bad)), None, "/{len}");
            }
            // Nor is one under another prefix.
            assert_eq!(prefix.extract(v6("2001:db9::1")), None, "/{len}");
        }
    }

    #[test]
    fn refuses_lengths_and_reserved_bits_rfc_6052_does_not_allow() {
        for len in [0, 31, 33, 63, 65, 95, 97, 128, 255] {
            assert_eq!(
                Nat64Prefix::new(v6("2001:db8::"), len),
                Err(Nat64PrefixError::Length(len))
            );
        }
        let reserved = v6("2001:db8:0:0:100::");
        assert_eq!(
            Nat64Prefix::new(reserved, 96),
            Err(Nat64PrefixError::ReservedBits)
        );
        // Bits past the length do not count: the u octet is past a /64.
        let prefix = Nat64Prefix::new(reserved, 64).unwrap();
        assert_eq!(prefix.prefix(), v6("2001:db8::"));
        assert_eq!(prefix.length(), 64);
    }

    #[test]
    fn reads_the_prefix_from_an_ipv4only_arpa_answer() {
        let found = |answer: &str| Nat64Prefix::from_ipv4only_answer(v6(answer));
        let well_known = Some(Nat64Prefix::WELL_KNOWN);
        assert_eq!(found("64:ff9b::c000:aa"), well_known);
        assert_eq!(found("64:ff9b::c000:ab"), well_known);
        let network_64 = Nat64Prefix::new(v6("2001:db8:122:344::"), 64).ok();
        assert_eq!(found("2001:db8:122:344:c0:0:aa00:0"), network_64);
        let network_32 = Nat64Prefix::new(v6("2001:db8::"), 32).ok();
        assert_eq!(found("2001:db8:c000:ab::"), network_32);
        // No well-known address inside: no prefix.
        assert_eq!(found("2001:db8::1"), None);
        assert_eq!(found("64:ff9b::c000:221"), None);
    }

    #[test]
    fn synthesizes_only_what_may_leave_the_host() {
        let port = |ip: &str| SocketAddr::new(ip.parse().unwrap(), 80);
        let prefix = Nat64Prefix::WELL_KNOWN;
        assert_eq!(
            synthesize(prefix, port("192.0.2.1")),
            port("64:ff9b::c000:201")
        );
        assert_eq!(synthesize(prefix, port("10.0.0.1")), port("64:ff9b::a00:1"));
        for kept in [
            "0.0.0.0",
            "0.1.2.3",
            "127.0.0.1",
            "127.9.9.9",
            "169.254.1.1",
            "255.255.255.255",
            "::1",
            "2001:db8::1",
        ] {
            assert_eq!(synthesize(prefix, port(kept)), port(kept), "{kept}");
        }
    }

    #[test]
    fn only_the_systems_own_no_route_errors_count() {
        assert!(is_no_route(&io::Error::from_raw_os_error(
            libc::ENETUNREACH
        )));
        assert!(is_no_route(&io::Error::from_raw_os_error(
            libc::EAFNOSUPPORT
        )));
        assert!(!is_no_route(&io::Error::from_raw_os_error(
            libc::ECONNREFUSED
        )));
        assert!(!is_no_route(&io::Error::from_raw_os_error(
            libc::EHOSTUNREACH
        )));
        let scripted = io::Error::new(io::ErrorKind::NetworkUnreachable, "scripted");
        assert!(!is_no_route(&scripted));
    }
}
