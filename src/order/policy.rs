//! The address policy: which resolved addresses may be dialed at all (an SSRF guard).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use crate::resolve::nat64::Nat64Prefix;

/// Decides, after resolution and before any attempt, which addresses may be dialed.
///
/// The check runs on the addresses actually dialed, so a DNS answer that changes between a
/// caller's own check and the connect (DNS rebinding) cannot slip through. Addresses the policy
/// refuses are never dialed; when it refuses all of them the connect fails with
/// [`ConnectError::Denied`](crate::ConnectError::Denied).
///
/// # Examples
///
/// ```
/// use connect_any::{AddressPolicy, Connector};
///
/// // A service that fetches user-supplied URLs must not reach its own network.
/// let connector = Connector::new().address_policy(AddressPolicy::deny_non_public());
///
/// // Or any rule of your own:
/// let only_port_443 = AddressPolicy::custom(|addr| addr.port() == 443);
/// # drop((connector, only_port_443));
/// ```
#[derive(Clone, Default)]
#[must_use = "a policy does nothing until it is given to a Connector"]
pub struct AddressPolicy {
    rule: Rule,
    /// The network's own NAT64 prefixes, judged by the IPv4 address inside.
    nat64: Vec<Nat64Prefix>,
}

#[derive(Clone, Default)]
enum Rule {
    #[default]
    AllowAll,
    DenyNonPublic,
    Custom(Arc<dyn Fn(&SocketAddr) -> bool + Send + Sync>),
}

impl AddressPolicy {
    /// Allows every address (the default).
    pub fn allow_all() -> Self {
        Self {
            rule: Rule::AllowAll,
            nat64: Vec::new(),
        }
    }

    /// Allows only globally reachable unicast addresses: see [`is_public`].
    pub fn deny_non_public() -> Self {
        Self {
            rule: Rule::DenyNonPublic,
            nat64: Vec::new(),
        }
    }

    /// Allows the addresses for which `allow` returns `true`.
    pub fn custom(allow: impl Fn(&SocketAddr) -> bool + Send + Sync + 'static) -> Self {
        Self {
            rule: Rule::Custom(Arc::new(allow)),
            nat64: Vec::new(),
        }
    }

    /// Judges an IPv6 address under `prefix`, a NAT64 prefix of the network the service runs
    /// in (RFC 6052), by the IPv4 address it carries, as [`is_public`] judges the well-known
    /// `64:ff9b::/96`: so that through a local translator `10.0.0.1` cannot be reached as
    /// `2001:db8:64::a00:1`. For [`deny_non_public`](Self::deny_non_public); a
    /// [`custom`](Self::custom) rule sees the IPv6 address (and can read the IPv4 one with
    /// [`Nat64Prefix::extract`]). May be given more than once. Default is none.
    ///
    /// # Examples
    ///
    /// ```
    /// use connect_any::{AddressPolicy, Nat64Prefix};
    ///
    /// let local = Nat64Prefix::new("2001:db8:64::".parse().unwrap(), 96).unwrap();
    /// let policy = AddressPolicy::deny_non_public().nat64_prefix(local);
    /// assert!(!policy.allows(&"[2001:db8:64::a00:1]:80".parse().unwrap()));
    /// assert!(policy.allows(&"[2001:db8:64::808:808]:53".parse().unwrap()));
    /// ```
    pub fn nat64_prefix(mut self, prefix: Nat64Prefix) -> Self {
        self.nat64.push(prefix);
        self
    }

    /// Whether `addr` may be dialed.
    #[inline]
    pub fn allows(&self, addr: &SocketAddr) -> bool {
        // The default decided where it is asked; the other rules' code kept out of its way.
        match &self.rule {
            Rule::AllowAll => true,
            _ => self.judges(addr),
        }
    }

    #[inline(never)]
    fn judges(&self, addr: &SocketAddr) -> bool {
        match &self.rule {
            Rule::AllowAll => true,
            Rule::DenyNonPublic => match (addr.ip(), self.nat64.as_slice()) {
                (IpAddr::V6(v6), local) if !local.is_empty() => {
                    let carried = local.iter().find_map(|prefix| prefix.extract(v6));
                    carried.map_or_else(|| is_public_v6(v6), is_public_v4)
                }
                (ip, _) => is_public(ip),
            },
            Rule::Custom(allow) => allow(addr),
        }
    }

    pub(crate) fn allows_all(&self) -> bool {
        matches!(self.rule, Rule::AllowAll)
    }
}

impl fmt::Debug for AddressPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self.rule {
            Rule::AllowAll => "AddressPolicy::allow_all()",
            Rule::DenyNonPublic => "AddressPolicy::deny_non_public()",
            Rule::Custom(_) => "AddressPolicy::custom(..)",
        })?;
        for prefix in &self.nat64 {
            write!(f, ".nat64_prefix({prefix})")?;
        }
        Ok(())
    }
}

/// Whether `ip` is a globally reachable unicast address.
///
/// Not public: unspecified, "this network" (0/8), loopback, private (10/8, 172.16/12,
/// 192.168/16), shared CGNAT space (100.64/10), link-local, IETF protocol assignments
/// (192.0.0/24, 2001::/23), documentation (192.0.2/24, 198.51.100/24, 203.0.113/24, 2001:db8::/32,
/// 3fff::/20), benchmarking (198.18/15), reserved (240/4) and broadcast, multicast, 6to4 relay
/// anycast (192.88.99/24), unique-local (fc00::/7), site-local (fec0::/10), discard-only
/// (100::/64), local-use NAT64 (64:ff9b:1::/48), IPv4-compatible (::/96), IPv4-translated
/// (::ffff:0:0:0/96) and SRv6 SID (5f00::/16) addresses. An IPv4
/// address embedded in an IPv4-mapped (`::ffff:0:0/96`), NAT64 (`64:ff9b::/96`) or 6to4
/// (`2002::/16`) address is judged as that IPv4 address.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

/// IPv4 ranges that are not globally reachable, as (network, prefix length).
const NON_PUBLIC_V4: &[([u8; 4], u32)] = &[
    ([0, 0, 0, 0], 8),
    ([10, 0, 0, 0], 8),
    ([100, 64, 0, 0], 10),
    ([127, 0, 0, 0], 8),
    ([169, 254, 0, 0], 16),
    ([172, 16, 0, 0], 12),
    ([192, 0, 0, 0], 24),
    ([192, 0, 2, 0], 24),
    ([192, 88, 99, 0], 24),
    ([192, 168, 0, 0], 16),
    ([198, 18, 0, 0], 15),
    ([198, 51, 100, 0], 24),
    ([203, 0, 113, 0], 24),
    ([224, 0, 0, 0], 4),
    ([240, 0, 0, 0], 4),
];

/// IPv6 ranges that are not globally reachable and embed no IPv4 address to judge instead.
const NON_PUBLIC_V6: &[([u16; 8], u32)] = &[
    ([0, 0, 0, 0, 0, 0, 0, 0], 96),
    ([0x64, 0xff9b, 1, 0, 0, 0, 0, 0], 48),
    ([0x100, 0, 0, 0, 0, 0, 0, 0], 64),
    ([0x2001, 0, 0, 0, 0, 0, 0, 0], 23),
    ([0x2001, 0xdb8, 0, 0, 0, 0, 0, 0], 32),
    ([0x3fff, 0, 0, 0, 0, 0, 0, 0], 20),
    ([0x5f00, 0, 0, 0, 0, 0, 0, 0], 16),
    ([0, 0, 0, 0, 0xffff, 0, 0, 0], 96),
    ([0xfc00, 0, 0, 0, 0, 0, 0, 0], 7),
    ([0xfe80, 0, 0, 0, 0, 0, 0, 0], 10),
    ([0xfec0, 0, 0, 0, 0, 0, 0, 0], 10),
    ([0xff00, 0, 0, 0, 0, 0, 0, 0], 8),
];

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let bits = u32::from(ip);
    !NON_PUBLIC_V4
        .iter()
        .any(|&(net, len)| bits >> (32 - len) == u32::from_be_bytes(net) >> (32 - len))
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let bits = u128::from(ip);
    let segments = ip.segments();
    let in_prefix = |net: [u16; 8], len: u32| {
        bits >> (128 - len) == u128::from(Ipv6Addr::from(net)) >> (128 - len)
    };
    if let Some(v4) = ip.to_ipv4_mapped().or(Nat64Prefix::WELL_KNOWN.extract(ip)) {
        return is_public_v4(v4);
    }
    if segments[0] == 0x2002 {
        let [a, b] = segments[1].to_be_bytes();
        let [c, d] = segments[2].to_be_bytes();
        return is_public_v4(Ipv4Addr::new(a, b, c, d));
    }
    // `::` and `::1` fall in ::/96, the deprecated IPv4-compatible range.
    !NON_PUBLIC_V6.iter().any(|&(net, len)| in_prefix(net, len))
}

#[cfg(test)]
mod tests {
    use super::*;

    const VERDICTS: &[(&str, bool)] = &[
        // IPv4
        ("0.0.0.0", false),
        ("0.1.2.3", false),
        ("10.0.0.1", false),
        ("10.255.255.255", false),
        ("100.63.255.255", true),
        ("100.64.0.1", false),
        ("100.127.255.255", false),
        ("100.128.0.0", true),
        ("127.0.0.1", false),
        ("127.255.0.9", false),
        ("169.254.169.254", false),
        ("172.15.255.255", true),
        ("172.16.0.1", false),
        ("172.31.255.255", false),
        ("172.32.0.0", true),
        ("192.0.0.8", false),
        ("192.0.2.1", false),
        ("192.88.99.1", false),
        ("192.168.1.1", false),
        ("198.18.0.1", false),
        ("198.19.255.255", false),
        ("198.20.0.0", true),
        ("198.51.100.7", false),
        ("203.0.113.9", false),
        ("224.0.0.251", false),
        ("239.255.255.250", false),
        ("240.0.0.1", false),
        ("255.255.255.255", false),
        ("1.1.1.1", true),
        ("8.8.8.8", true),
        ("93.184.216.34", true),
        ("223.255.255.255", true),
        // IPv6
        ("::", false),
        ("::1", false),
        ("::127.0.0.1", false),
        ("fe80::1", false),
        ("febf::1", false),
        ("fec0::1", false),
        ("fc00::1", false),
        ("fd12:3456::1", false),
        ("ff02::1", false),
        ("2001:db8::1", false),
        ("3fff::1", false),
        ("100::1", false),
        ("2001::1", false),
        ("2001:1ff::1", false),
        ("64:ff9b:1::1", false),
        ("2606:4700:4700::1111", true),
        ("2001:4860:4860::8888", true),
        ("2a00:1450::1", true),
        ("5f00::1", false),
        ("5f00:ffff::9", false),
        ("5eff:ffff::1", true),
        ("5f01::1", true),
        ("::ffff:0:127.0.0.1", false),
        ("::ffff:0:8.8.8.8", false),
        ("::ffff:0:0", false),
        // IPv4 inside IPv6
        ("::ffff:127.0.0.1", false),
        ("::ffff:10.1.2.3", false),
        ("::ffff:169.254.169.254", false),
        ("::ffff:8.8.8.8", true),
        ("64:ff9b::7f00:1", false),
        ("64:ff9b::192.168.0.1", false),
        ("64:ff9b::8.8.8.8", true),
        ("2002:7f00:1::1", false),
        ("2002:a00:1::", false),
        ("2002:808:808::1", true),
    ];

    #[test]
    fn verdicts() {
        assert!(VERDICTS.len() >= 40);
        for &(text, public) in VERDICTS {
            let ip: IpAddr = text.parse().unwrap();
            assert_eq!(is_public(ip), public, "{text}");
        }
    }

    /// Under a network's own NAT64 prefixes, `deny_non_public` judges the IPv4 address inside;
    /// elsewhere nothing changes.
    #[test]
    fn a_local_nat64_prefix_is_judged_by_the_ipv4_inside() {
        let prefix = |text: &str, len| Nat64Prefix::new(text.parse().unwrap(), len).unwrap();
        let policy = AddressPolicy::deny_non_public()
            .nat64_prefix(prefix("2001:db8:64::", 96))
            .nat64_prefix(prefix("64:ff9b:1::", 48));
        let table: &[(&str, bool)] = &[
            // 2001:db8:64::/96 is documentation space, judged by the IPv4 inside here.
            ("[2001:db8:64::a00:1]:80", false),
            ("[2001:db8:64::7f00:1]:80", false),
            ("[2001:db8:64::a9fe:a9fe]:80", false),
            ("[2001:db8:64::808:808]:53", true),
            // Local-use 64:ff9b:1::/48 (RFC 8215) with a /48 layout: 8.8.8.8 and 10.0.0.1.
            ("[64:ff9b:1:808:8:800::]:53", true),
            ("[64:ff9b:1:a00:0:100::]:80", false),
            // The well-known prefix is judged as always; other documentation space is not public.
            ("[64:ff9b::808:808]:53", true),
            ("[64:ff9b::a00:1]:80", false),
            ("[2001:db8:65::808:808]:53", false),
            ("8.8.8.8:53", true),
            ("10.0.0.1:80", false),
        ];
        for &(addr, allowed) in table {
            assert_eq!(policy.allows(&addr.parse().unwrap()), allowed, "{addr}");
        }
        // Without the prefixes, those addresses are not public at all.
        let plain = AddressPolicy::deny_non_public();
        assert!(!plain.allows(&"[2001:db8:64::808:808]:53".parse().unwrap()));
        assert!(!plain.allows(&"[64:ff9b:1:808:8:800::]:53".parse().unwrap()));
        // The table's addresses are the RFC 6052 embeddings of the IPv4 addresses named.
        let local_use = prefix("64:ff9b:1::", 48);
        let eight = local_use.embed(std::net::Ipv4Addr::new(8, 8, 8, 8));
        assert_eq!(eight, "64:ff9b:1:808:8:800::".parse::<Ipv6Addr>().unwrap());
        assert_eq!(
            format!("{policy:?}"),
            "AddressPolicy::deny_non_public().nat64_prefix(2001:db8:64::/96).nat64_prefix(64:ff9b:1::/48)"
        );
    }

    #[test]
    fn policies() {
        let loopback: SocketAddr = "127.0.0.1:80".parse().unwrap();
        let public: SocketAddr = "8.8.8.8:443".parse().unwrap();
        assert!(AddressPolicy::allow_all().allows(&loopback));
        assert!(!AddressPolicy::deny_non_public().allows(&loopback));
        assert!(AddressPolicy::deny_non_public().allows(&public));
        let only_443 = AddressPolicy::custom(|addr| addr.port() == 443);
        assert!(only_443.allows(&public) && !only_443.allows(&loopback));
        assert_eq!(format!("{only_443:?}"), "AddressPolicy::custom(..)");
    }
}
