//! Ordering: what of the answers may be dialed (de-duplication, the family filter, the address
//! policy) and in which order (families interleaved, late answers merged, a remembered winner
//! first).

pub(crate) mod admission;
pub(crate) mod interleave;
pub(crate) mod policy;

/// Addresses for tests, written short: `"61 41 62"` is `[::1]:80`, `10.0.0.1:80`, `[::2]:80`.
#[cfg(test)]
fn test_addrs(list: &str) -> Vec<std::net::SocketAddr> {
    use std::net::SocketAddr;
    list.split_whitespace()
        .map(|s| match s.strip_prefix('6') {
            Some(n) => SocketAddr::from(([0, 0, 0, 0, 0, 0, 0, n.parse().unwrap()], 80)),
            None => SocketAddr::from(([10, 0, 0, s[1..].parse().unwrap()], 80)),
        })
        .collect()
}
