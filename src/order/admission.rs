//! What may be dialed: repeated addresses dropped, the family filter, the address policy.

use std::collections::HashSet;
use std::net::SocketAddr;

use crate::order::policy::AddressPolicy;
use crate::resolve::nat64::Nat64Prefix;
use crate::sync::Keyed;

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
    /// The NAT64 prefix at hand, if any: an IPv6 address under it (a DNS64 server's
    /// synthesis) is taken as the IPv4 address inside, so that it is judged, de-duplicated
    /// and ordered as the IPv4 address it stands for (HEv3 §8), and dialed through the prefix
    /// where IPv4 has no route.
    pub(crate) dns64: Option<Nat64Prefix>,
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
        if let Some(prefix) = self.dns64 {
            addrs[start..]
                .iter_mut()
                .for_each(|addr| *addr = unsynthesized(prefix, *addr));
        }
        let judge = |addr: &SocketAddr| {
            if !self.families.allows(addr) {
                filtered += 1;
                return false;
            }
            let allowed = self.policy.allows(addr);
            if !allowed {
                refused.push(*addr);
            }
            allowed
        };
        keep_new(addrs, start, self.judges().then_some(judge));
        filtered
    }

    /// Whether [`admit`](Self::admit) would keep `list` whole and as it is: nothing to judge
    /// or to take out of a NAT64 prefix, and no repeats (looked for in a short list only), so
    /// that it may be dialed where it is, not copied.
    pub(crate) fn keeps_whole(&self, list: &[SocketAddr]) -> bool {
        let unique = || (1..list.len()).all(|i| !list[..i].contains(&list[i]));
        !self.judges() && self.dns64.is_none() && list.len() <= SCAN_LIMIT && unique()
    }

    /// Whether any address could be dropped for its family or refused by the policy: both
    /// families and no policy (the default) judge nothing, and repeats are all that go.
    fn judges(&self) -> bool {
        self.families != IpFamilies::Both || !self.policy.allows_all()
    }
}

/// The IPv4 address that `addr` stands for, if it is under `prefix`; else `addr`.
fn unsynthesized(prefix: Nat64Prefix, addr: SocketAddr) -> SocketAddr {
    match addr {
        SocketAddr::V6(v6) => match prefix.extract(*v6.ip()) {
            Some(v4) => SocketAddr::from((v4, v6.port())),
            None => addr,
        },
        SocketAddr::V4(_) => addr,
    }
}

/// Whether an address is not one of `withdrawn`: a scan for a short list, a hash set for a
/// long one, so that removing them is linear in both.
pub(crate) fn not_in(withdrawn: &[SocketAddr]) -> impl FnMut(&SocketAddr) -> bool + '_ {
    let gone: Option<HashSet<&SocketAddr, Keyed>> =
        (withdrawn.len() > SCAN_LIMIT).then(|| withdrawn.iter().collect());
    move |addr| match &gone {
        Some(gone) => !gone.contains(addr),
        None => !withdrawn.contains(addr),
    }
}

/// Lists longer than this are de-duplicated with a hash set rather than by scanning.
const SCAN_LIMIT: usize = 16;

/// Keeps, of `addrs[start..]`, each address not seen before it (in `addrs[..start]` or earlier
/// in the tail) for which `keep` says yes (all of them, without one), in order; `keep` is
/// asked once per distinct new address. Linear for long lists (a hash set), a scan for short
/// ones, where that is faster and allocates nothing.
fn keep_new(
    addrs: &mut Vec<SocketAddr>,
    start: usize,
    mut keep: Option<impl FnMut(&SocketAddr) -> bool>,
) {
    if addrs.len() > SCAN_LIMIT {
        let mut seen = HashSet::with_capacity_and_hasher(addrs.len(), Keyed);
        seen.extend(addrs[..start].iter().copied());
        let mut index = 0;
        addrs.retain(|addr| {
            index += 1;
            if index <= start {
                return true;
            }
            seen.insert(*addr)
                && match keep.as_mut() {
                    Some(keep) => keep(addr),
                    None => true,
                }
        });
        return;
    }
    // Repeats go first, in place; then each distinct new address is asked once.
    let mut kept = start;
    for i in start..addrs.len() {
        let addr = addrs[i];
        if !addrs[..kept].contains(&addr) {
            addrs[kept] = addr;
            kept += 1;
        }
    }
    addrs.truncate(kept);
    let Some(keep) = keep.as_mut() else {
        return;
    };
    let mut index = 0;
    addrs.retain(|addr| {
        index += 1;
        index <= start || keep(addr)
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::order::test_addrs as addrs;

    /// What `families` and `policy` let through of `list`: (admitted, refused, filtered).
    fn admitted(
        list: Vec<SocketAddr>,
        families: IpFamilies,
        policy: &AddressPolicy,
    ) -> (Vec<SocketAddr>, Vec<SocketAddr>, usize) {
        let (mut admitted, mut refused) = (Vec::new(), Vec::new());
        let admission = Admission {
            families,
            policy,
            dns64: None,
        };
        let filtered = admission.admit(list, &mut admitted, &mut refused);
        (admitted, refused, filtered)
    }

    #[test]
    fn repeats_go_and_families_are_filtered_and_counted() {
        let all = AddressPolicy::allow_all();
        let list = addrs("61 41 61 42 41 62");
        let both = admitted(list.clone(), IpFamilies::Both, &all);
        assert_eq!(both, (addrs("61 41 42 62"), vec![], 0));
        let v4 = admitted(list.clone(), IpFamilies::V4Only, &all);
        assert_eq!(
            v4,
            (addrs("41 42"), vec![], 2),
            "each IPv6 address counted once"
        );
        let v6 = admitted(addrs("41 42"), IpFamilies::V6Only, &all);
        assert_eq!(v6, (vec![], vec![], 2));
    }

    #[test]
    fn the_policy_refuses_after_the_family_filter() {
        let only_41 = AddressPolicy::custom(|addr| addr.ip().to_string() == "10.0.0.1");
        let (kept, refused, filtered) =
            admitted(addrs("41 61 42 42"), IpFamilies::V4Only, &only_41);
        assert_eq!((kept, refused, filtered), (addrs("41"), addrs("42"), 1));
    }

    #[test]
    fn a_second_list_keeps_the_first_and_adds_only_new_addresses() {
        let all = AddressPolicy::allow_all();
        let admission = Admission {
            families: IpFamilies::Both,
            policy: &all,
            dns64: None,
        };
        let (mut kept, mut refused) = (Vec::new(), Vec::new());
        admission.admit(addrs("61 41"), &mut kept, &mut refused);
        admission.admit(addrs("41 62 61 42"), &mut kept, &mut refused);
        assert_eq!(kept, addrs("61 41 62 42"));
    }

    #[test]
    fn long_lists_dedup_the_same_way() {
        let list: Vec<_> = (0..100u16)
            .map(|n| SocketAddr::from(([127, 0, 0, 1], n % 40)))
            .collect();
        let expected: Vec<_> = (0..40u16)
            .map(|n| SocketAddr::from(([127, 0, 0, 1], n)))
            .collect();
        let all = AddressPolicy::allow_all();
        assert_eq!(admitted(list.clone(), IpFamilies::Both, &all).0, expected);
        assert_eq!(
            admitted(list, IpFamilies::V6Only, &all),
            (vec![], vec![], 40)
        );
    }

    mod keeping_whole {
        use super::*;
        use proptest::prelude::*;

        fn families() -> impl Strategy<Value = IpFamilies> {
            prop_oneof![
                Just(IpFamilies::Both),
                Just(IpFamilies::V4Only),
                Just(IpFamilies::V6Only)
            ]
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(2000))]
            /// A list is borrowed only when admitting it would change nothing, and every
            /// short list that admission leaves as it is, with nothing to judge, is borrowed.
            #[test]
            fn a_list_kept_whole_is_one_admission_leaves_as_it_is(
                hosts in prop::collection::vec((any::<bool>(), 1u8..12), 0..20),
                families in families(),
                deny_public in any::<bool>(),
                prefix in any::<bool>(),
            ) {
                let list: Vec<SocketAddr> = hosts
                    .iter()
                    .map(|(v6, n)| match v6 {
                        true => SocketAddr::from(([0x2001, 0xdb8, 0x64, 0, 0, 0, 0, *n as u16], 80)),
                        false => SocketAddr::from(([10, 0, 0, *n], 80)),
                    })
                    .collect();
                let policy = match deny_public {
                    true => AddressPolicy::deny_non_public(),
                    false => AddressPolicy::allow_all(),
                };
                let dns64 = prefix
                    .then(|| Nat64Prefix::new("2001:db8:64::".parse().unwrap(), 96).unwrap());
                let admission = Admission { families, policy: &policy, dns64 };
                let (mut kept, mut refused) = (Vec::new(), Vec::new());
                admission.admit(list.clone(), &mut kept, &mut refused);
                let unchanged = kept == list && refused.is_empty();
                if admission.keeps_whole(&list) {
                    prop_assert!(unchanged, "borrowed {list:?}, admitted {kept:?}");
                }
                let plain = families == IpFamilies::Both && !deny_public && !prefix;
                if unchanged && plain && list.len() <= SCAN_LIMIT {
                    prop_assert!(admission.keeps_whole(&list), "copied {list:?}");
                }
            }
        }
    }

    /// A DNS64 server's synthesis is taken as the IPv4 address inside: judged by the policy as
    /// that address, and a repeat of it when the A answer has it too.
    #[test]
    fn a_dns64_address_counts_as_the_ipv4_address_inside() {
        let socket = |text: &str| text.parse::<SocketAddr>().unwrap();
        let public = AddressPolicy::deny_non_public();
        let admission = Admission {
            families: IpFamilies::Both,
            policy: &public,
            dns64: Some(Nat64Prefix::new("2001:db8:64::".parse().unwrap(), 96).unwrap()),
        };
        let (mut kept, mut refused) = (Vec::new(), Vec::new());
        let aaaa = [
            "[2001:db8:64::808:808]:53",
            "[2001:db8:64::a00:1]:53",
            "[2606:4700::1]:53",
        ];
        admission.admit(aaaa.map(socket).to_vec(), &mut kept, &mut refused);
        admission.admit(vec![socket("8.8.8.8:53")], &mut kept, &mut refused);
        assert_eq!(kept, [socket("8.8.8.8:53"), socket("[2606:4700::1]:53")]);
        assert_eq!(refused, [socket("10.0.0.1:53")]);
    }
}
