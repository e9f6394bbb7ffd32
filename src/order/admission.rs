//! What may be dialed: repeated addresses dropped, the family filter, the address policy.

use std::collections::HashSet;
use std::net::SocketAddr;

use crate::order::policy::AddressPolicy;

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

/// What may be dialed of a resolver's answer: the connector's families, then its policy.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Admission<'a> {
    pub(crate) families: IpFamilies,
    pub(crate) policy: &'a AddressPolicy,
}

impl Admission<'_> {
    /// Appends to `addrs` the addresses of `list` that are new and may be dialed, in order;
    /// those the policy refuses go to `refused`, those of a family not dialed are dropped and
    /// counted. The first list is filtered where it is, not copied.
    pub(crate) fn admit(
        &self,
        list: Vec<SocketAddr>,
        addrs: &mut Vec<SocketAddr>,
        refused: &mut Vec<SocketAddr>,
    ) -> usize {
        let mut filtered = 0;
        let start = addrs.len();
        match start {
            0 => *addrs = list,
            _ => addrs.extend(list),
        }
        keep_new(addrs, start, |addr| {
            if !self.families.allows(addr) {
                filtered += 1;
                return false;
            }
            let allowed = self.policy.allows(addr);
            if !allowed {
                refused.push(*addr);
            }
            allowed
        });
        filtered
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
