//! NAT64 prefixes (RFC 6052): where an IPv4 address sits inside an IPv6 address, and how a
//! prefix is read from a DNS64 server's answer for `ipv4only.arpa` (RFC 7050).

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

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
}
