//! Fixed answers for given names, checked before the resolver.

use std::net::SocketAddr;
use std::sync::Arc;

use crate::target::host::canonical_name;

/// Fixed answers for given names, like curl's `--resolve`: checked before the resolver.
#[derive(Clone, Debug, Default)]
pub(crate) struct Overrides(Vec<Override>);

#[derive(Clone, Debug)]
struct Override {
    host: Box<str>,
    port: Option<u16>,
    addrs: Arc<[SocketAddr]>,
}

impl Overrides {
    /// Adds or replaces the override for `host` and `port` (`None`: any port).
    pub(crate) fn set(&mut self, host: &str, port: Option<u16>, addrs: Arc<[SocketAddr]>) {
        let host = canonical_name(host);
        self.0.retain(|o| !(*o.host == *host && o.port == port));
        self.0.push(Override {
            host: host.into(),
            port,
            addrs,
        });
    }

    /// The overriding addresses for `host` and `port`, an exact port before "any port"; an
    /// address given with port 0 takes `port`. Port 0 (a lookup for a caller that sets the
    /// port itself) matches only "any port" overrides.
    pub(crate) fn find(&self, host: &str, port: u16) -> Option<Vec<SocketAddr>> {
        if self.0.is_empty() {
            return None;
        }
        let host = canonical_name(host);
        let matching =
            |wanted: Option<u16>| self.0.iter().find(|o| o.port == wanted && *o.host == *host);
        let exact = (port != 0).then(|| matching(Some(port))).flatten();
        let found = exact.or_else(|| matching(None))?;
        let with_port = |addr: &SocketAddr| {
            let mut addr = *addr;
            if addr.port() == 0 {
                addr.set_port(port);
            }
            addr
        };
        Some(found.addrs.iter().map(with_port).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_match_exact_port_first_then_any() {
        let mut overrides = Overrides::default();
        let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
        let exact: SocketAddr = "127.0.0.2:9000".parse().unwrap();
        overrides.set("Upstream.test.", None, Arc::from([any]));
        overrides.set("upstream.test", Some(443), Arc::from([exact]));
        assert_eq!(overrides.find("UPSTREAM.test", 443), Some(vec![exact]));
        let any_port = overrides.find("upstream.test", 80).unwrap();
        assert_eq!(
            any_port,
            vec!["127.0.0.1:80".parse::<SocketAddr>().unwrap()]
        );
        assert_eq!(overrides.find("other.test", 80), None);
        overrides.set("upstream.test", Some(443), Arc::from([any]));
        assert_eq!(
            overrides.find("upstream.test", 443),
            Some(vec!["127.0.0.1:443".parse().unwrap()])
        );
        overrides.set("Bücher.Example.", None, Arc::from([exact]));
        #[cfg(feature = "idn")]
        assert_eq!(
            overrides.find("xn--bcher-kva.example", 1),
            Some(vec![exact]),
            "an internationalized override matches the target's ASCII form"
        );
    }
}
