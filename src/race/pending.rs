//! The addresses a race has not started yet.

use std::borrow::Cow;
use std::collections::VecDeque;
use std::net::SocketAddr;

/// The addresses not yet started, in order. A list that was admitted as it was given (a
/// target's own addresses) stays borrowed; it is copied only when something joins or leaves
/// it, which only a resolver's late answers do.
#[derive(Debug)]
pub(crate) enum Pending<'a> {
    /// What is left of a borrowed list.
    Listed(&'a [SocketAddr]),
    Owned(VecDeque<SocketAddr>),
}

impl<'a> From<Cow<'a, [SocketAddr]>> for Pending<'a> {
    fn from(addrs: Cow<'a, [SocketAddr]>) -> Self {
        match addrs {
            Cow::Borrowed(listed) => Pending::Listed(listed),
            Cow::Owned(addrs) => Pending::Owned(addrs.into()),
        }
    }
}

impl Pending<'_> {
    /// The next address to start, where it is: read in place rather than taken out, so that
    /// each copy made of it is read from the list, not from a copy just written (a load that
    /// straddles recent stores stalls).
    #[inline]
    pub(crate) fn front(&self) -> Option<&SocketAddr> {
        match self {
            Pending::Listed(listed) => listed.first(),
            Pending::Owned(addrs) => addrs.front(),
        }
    }

    /// Takes the next address to start out of the list.
    #[inline]
    pub(crate) fn drop_front(&mut self) {
        match self {
            Pending::Listed(listed) => *listed = listed.get(1..).unwrap_or_default(),
            Pending::Owned(addrs) => {
                addrs.pop_front();
            }
        }
    }

    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        match self {
            Pending::Listed(listed) => listed.is_empty(),
            Pending::Owned(addrs) => addrs.is_empty(),
        }
    }

    /// The addresses, in order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &SocketAddr> {
        let (front, back) = match self {
            Pending::Listed(listed) => (*listed, &[][..]),
            Pending::Owned(addrs) => addrs.as_slices(),
        };
        front.iter().chain(back)
    }

    /// The addresses to change, copied out of a borrowed list first.
    pub(crate) fn to_mut(&mut self) -> &mut VecDeque<SocketAddr> {
        match self {
            Pending::Owned(addrs) => addrs,
            Pending::Listed(listed) => {
                *self = Pending::Owned(listed.iter().copied().collect());
                self.to_mut()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The next address, taken as the core takes it.
    fn take(pending: &mut Pending<'_>) -> Option<SocketAddr> {
        let next = pending.front().copied();
        pending.drop_front();
        next
    }

    fn addrs(ports: &[u16]) -> Vec<SocketAddr> {
        ports
            .iter()
            .map(|port| SocketAddr::from(([127, 0, 0, 1], *port)))
            .collect()
    }

    #[test]
    fn a_borrowed_list_is_taken_in_order_and_copied_only_to_change() {
        let listed = addrs(&[1, 2, 3]);
        let mut pending = Pending::from(Cow::Borrowed(listed.as_slice()));
        assert_eq!(take(&mut pending), Some(listed[0]));
        assert!(matches!(pending, Pending::Listed(rest) if rest == &listed[1..]));
        pending.to_mut().push_back(addrs(&[4])[0]);
        assert!(matches!(pending, Pending::Owned(_)));
        let left: Vec<_> = pending.iter().copied().collect();
        assert_eq!(left, addrs(&[2, 3, 4]));
        assert_eq!(take(&mut pending), Some(listed[1]));
        assert_eq!(take(&mut pending), Some(listed[2]));
        assert!(!pending.is_empty());
        assert_eq!(take(&mut pending), Some(addrs(&[4])[0]));
        assert!(pending.is_empty());
        assert_eq!(take(&mut pending), None);
    }

    #[test]
    fn an_owned_list_iterates_across_the_deques_wrap() {
        let mut pending = Pending::from(Cow::Owned(addrs(&[1, 2])));
        pending.to_mut().push_front(addrs(&[0])[0]);
        let all: Vec<_> = pending.iter().copied().collect();
        assert_eq!(all, addrs(&[0, 1, 2]));
        let mut empty = Pending::from(Cow::Borrowed(&[][..]));
        assert!(empty.is_empty());
        assert_eq!(take(&mut empty), None);
    }
}
