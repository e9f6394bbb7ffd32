//! NAT64 prefix discovery (RFC 7050) through `HickoryResolver`, against a DNS server that this
//! test runs on 127.0.0.1 answering `ipv4only.arpa` as a DNS64 server would, or would not.
#![cfg(feature = "hickory")]

mod common;
#[path = "../examples/support/dns.rs"]
mod dns;

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use connect_any::Connector;
use dns::{Behaviour, dns_server, resolver};

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

/// What a connect to 192.0.2.1:80 dials on an IPv6-only host (every IPv4 attempt fails with
/// the system's `ENETUNREACH`) once the connector knows the host needs NAT64, with a DNS
/// server whose AAAA answer for every name is `aaaa`.
async fn dialed_through(aaaa: Behaviour) -> SocketAddr {
    let a = Behaviour::Answer(Duration::ZERO, vec![ip("192.0.0.170"), ip("192.0.0.171")]);
    let server = dns_server(aaaa, a).await;
    let connector = Connector::new().resolver(resolver(server));
    let dial = |addr: SocketAddr| {
        std::future::ready(match addr {
            SocketAddr::V4(_) => Err(io::Error::from_raw_os_error(libc::ENETUNREACH)),
            SocketAddr::V6(_) => Ok(addr),
        })
    };
    let first = connector.connect_with("192.0.2.1:80", dial).await;
    assert!(
        first.is_err(),
        "the connect that finds no route fails: {first:?}"
    );
    match connector.connect_with("192.0.2.1:80", dial).await {
        Ok(dialed) => dialed,
        Err(error) => error.attempts()[0].addr(),
    }
}

#[tokio::test]
async fn the_well_known_prefix_from_either_well_known_address() {
    for answer in [
        vec![ip("64:ff9b::c000:aa"), ip("64:ff9b::c000:ab")],
        vec![ip("64:ff9b::c000:ab")],
    ] {
        let dialed = dialed_through(Behaviour::Answer(Duration::ZERO, answer)).await;
        assert_eq!(dialed, "[64:ff9b::c000:201]:80".parse().unwrap());
    }
}

#[tokio::test]
async fn a_network_specific_64_bit_prefix() {
    let answer = vec![ip("2001:db8:122:344:c0:0:aa00:0")];
    let dialed = dialed_through(Behaviour::Answer(Duration::ZERO, answer)).await;
    assert_eq!(dialed, "[2001:db8:122:344:c0:2:100:0]:80".parse().unwrap());
}

#[tokio::test]
async fn no_prefix_without_a_dns64_answer() {
    for aaaa in [
        Behaviour::Answer(Duration::ZERO, vec![ip("2001:db8::1")]),
        Behaviour::NxDomain,
        Behaviour::NoData,
    ] {
        let dialed = dialed_through(aaaa).await;
        assert_eq!(dialed, "192.0.2.1:80".parse().unwrap());
    }
}
