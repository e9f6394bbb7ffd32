//! The order addresses are dialed in: families interleaved (RFC 8305 §4), late answers merged
//! into what has not started, a remembered winner first.

use std::collections::VecDeque;
use std::net::SocketAddr;

use crate::resolve::answers::Family;

/// Reorders by RFC 8305 §4: `first_family_count` addresses of the first address's family, then
/// one of each family in turn; what is left of either family goes last, in its order.
pub(crate) fn interleave(addrs: &mut Vec<SocketAddr>, first_family_count: usize) {
    let Some(first) = addrs.first().map(Family::of) else {
        return;
    };
    // Most answers are in that order already (one family, or one of each); they are left
    // where they are rather than copied.
    if addrs.len() > 2
        && !addrs
            .iter()
            .copied()
            .eq(alternating(addrs, first, first_family_count))
    {
        *addrs = alternating(addrs, first, first_family_count).collect();
    }
}

/// Orders by rank, lower first (a service's endpoints by their record's priority), keeping
/// each rank's order; with `first_family_count`, each rank's addresses are interleaved as
/// [`interleave`] does (Happy Eyeballs v3 §5: priorities first, then families).
pub(crate) fn by_rank(
    addrs: &mut Vec<SocketAddr>,
    first_family_count: Option<usize>,
    rank: impl Fn(&SocketAddr) -> u32,
) {
    let mut ranked: Vec<(u32, SocketAddr)> = addrs.iter().map(|a| (rank(a), *a)).collect();
    ranked.sort_by_key(|(rank, _)| *rank);
    addrs.clear();
    for group in ranked.chunk_by(|a, b| a.0 == b.0) {
        let start = addrs.len();
        addrs.extend(group.iter().map(|(_, addr)| *addr));
        if let Some(count) = first_family_count {
            let mut part = addrs.split_off(start);
            interleave(&mut part, count);
            addrs.append(&mut part);
        }
    }
}

/// Merges addresses that `arrived` into the not-yet-started `pending` ones.
///
/// For Happy Eyeballs the families alternate again, starting with the family the last started
/// attempt was not of, so IPv4 arriving while IPv6 attempts run goes next (RFC 8305 §4, and
/// the Happy Eyeballs v3 draft's "Handling New Answers"); each family keeps its order, the
/// addresses already pending first. Sequentially, arrivals go last.
pub(crate) fn merge(
    pending: &mut VecDeque<SocketAddr>,
    arrived: &[SocketAddr],
    last_started: Option<Family>,
    interleave: bool,
) {
    pending.extend(arrived);
    if interleave {
        let turn = match last_started {
            Some(Family::Ipv6) => Family::Ipv4,
            Some(Family::Ipv4) | None => Family::Ipv6,
        };
        let merged: VecDeque<_> = alternating(pending.make_contiguous(), turn, 1).collect();
        *pending = merged;
    }
}

/// `addrs` with the families alternating: `lead` addresses of `first` (fewer if it has fewer),
/// then one of the other family and one of `first` in turn; when one family runs out, the
/// rest of the other, in order.
fn alternating(
    addrs: &[SocketAddr],
    first: Family,
    lead: usize,
) -> impl Iterator<Item = SocketAddr> + '_ {
    let of_family = move |family| addrs.iter().filter(move |a| Family::of(a) == family);
    let mut primary = of_family(first);
    let mut secondary = of_family(first.other());
    let mut lead = lead.max(1);
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
    use crate::order::test_addrs as addrs;

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
    fn ranks_go_first_and_each_is_interleaved() {
        let rank = |addr: &SocketAddr| match addr.ip().to_string().as_str() {
            "::3" | "10.0.0.3" => 2,
            _ => 1,
        };
        let mut list = addrs("63 61 62 43 41");
        by_rank(&mut list, Some(1), rank);
        assert_eq!(list, addrs("61 41 62 63 43"));
        let mut list = addrs("63 61 62 43 41");
        by_rank(&mut list, None, rank);
        assert_eq!(list, addrs("61 62 41 63 43"));
    }

    fn late(list: &str) -> Vec<SocketAddr> {
        list.split_whitespace()
            .map(|s| match s.strip_prefix('6') {
                Some(n) => SocketAddr::from(([0, 0, 0, 0, 0, 0, 0, 1], n.parse().unwrap())),
                None => SocketAddr::from(([127, 0, 0, 1], s[1..].parse().unwrap())),
            })
            .collect()
    }

    fn merged(
        pending: &str,
        arrived: &str,
        last: Option<Family>,
        interleave: bool,
    ) -> Vec<SocketAddr> {
        let mut pending: VecDeque<_> = late(pending).into();
        merge(&mut pending, &late(arrived), last, interleave);
        pending.into()
    }

    #[test]
    fn ipv4_arriving_while_ipv6_runs_goes_next() {
        let last = Some(Family::Ipv6);
        assert_eq!(merged("62 63", "41 42", last, true), late("41 62 42 63"));
        assert_eq!(merged("", "41 42", last, true), late("41 42"));
        assert_eq!(
            merged("41", "62 42", Some(Family::Ipv4), true),
            late("62 41 42")
        );
        assert_eq!(merged("62 63", "41 42", last, false), late("62 63 41 42"));
    }
}
