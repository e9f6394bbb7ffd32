//! The answer cache with `HickoryResolver` on real sockets, against a DNS server that this
//! test runs on 127.0.0.1: an answer lives for its records' TTL (1 s here), a changed answer
//! is found by the refresh after it, and a silent server is bridged by the stale answer.
#![cfg(feature = "hickory")]

mod common;
#[path = "../examples/support/dns.rs"]
mod dns;

use std::net::IpAddr;
use std::time::{Duration, Instant};

use common::skip;
use connect_any::{AddressSource, ConnectReport, Connector};
use dns::{Behaviour, Zone, resolver, serve_zone};
use tokio::net::TcpListener;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

/// Listeners on 127.0.0.1 and 127.0.0.2 with one port, accepting until the test ends.
async fn two_listeners() -> Option<u16> {
    for _ in 0..20 {
        let first = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = first.local_addr().unwrap().port();
        let Ok(second) = TcpListener::bind(("127.0.0.2", port)).await else {
            continue;
        };
        for listener in [first, second] {
            tokio::spawn(async move {
                let mut kept = Vec::new();
                while let Ok((stream, _)) = listener.accept().await {
                    kept.push(stream);
                }
            });
        }
        return Some(port);
    }
    None
}

/// One connect by name: where it went, how it got its addresses, how long it took.
async fn connect(connector: &Connector, target: &str) -> (IpAddr, ConnectReport, Duration) {
    let began = Instant::now();
    let (stream, report) = connector.connect_reported(target).await.unwrap();
    let peer = stream.peer_addr().unwrap().ip();
    (peer, report, began.elapsed())
}

#[tokio::test]
async fn a_hickory_answer_lives_for_its_records_ttl_then_is_refreshed_in_the_race() {
    let Some(port) = two_listeners().await else {
        return skip("no common free port on 127.0.0.1 and 127.0.0.2");
    };
    let zone = Zone::new(
        Behaviour::NoData,
        Behaviour::Answer(ms(200), vec![ip("127.0.0.1")]),
    );
    zone.set_ttl(1);
    let server = serve_zone("127.0.0.1:0".parse().unwrap(), zone.clone()).await;
    let connector = Connector::new().resolver(resolver(server));
    let target = format!("ttl.test:{port}");

    let (peer, report, took) = connect(&connector, &target).await;
    assert_eq!(
        (peer, report.source()),
        (ip("127.0.0.1"), AddressSource::Resolver)
    );
    assert!(
        took >= ms(200),
        "waited for the server's A answer: {took:?}"
    );
    let asked = zone.queries();
    assert_eq!(asked, 2, "AAAA and A");

    let (peer, report, took) = connect(&connector, &target).await;
    assert_eq!(
        (peer, report.source()),
        (ip("127.0.0.1"), AddressSource::Cache)
    );
    assert!(took < ms(200), "no wait for DNS: {took:?}");
    assert_eq!(zone.queries(), asked, "within the TTL, no query");

    // The record changes; once its 1 s TTL has passed, the stale answer is raced at once and
    // the refresh (answered 200 ms later) finds the new address.
    zone.set(
        Behaviour::NoData,
        Behaviour::Answer(ms(200), vec![ip("127.0.0.2")]),
    );
    tokio::time::sleep(ms(1100)).await;
    let (peer, report, _) = connect(&connector, &target).await;
    assert_eq!(
        (peer, report.source()),
        (ip("127.0.0.1"), AddressSource::StaleCache)
    );
    assert!(
        common::eventually(|| zone.queries() > asked).await,
        "the refresh asked the server"
    );
    tokio::time::sleep(ms(400)).await;
    let asked = zone.queries();
    let (peer, report, _) = connect(&connector, &target).await;
    assert_eq!(
        (peer, report.source()),
        (ip("127.0.0.2"), AddressSource::Cache)
    );
    assert_eq!(zone.queries(), asked);

    // The server goes silent: past the TTL, the stale answer still serves, without waiting
    // for the resolver's 600 ms timeout.
    zone.set(Behaviour::Drop, Behaviour::Drop);
    tokio::time::sleep(ms(1100)).await;
    for _ in 0..3 {
        let (peer, report, _) = connect(&connector, &target).await;
        assert_eq!(
            (peer, report.source()),
            (ip("127.0.0.2"), AddressSource::StaleCache)
        );
    }
}

#[tokio::test]
async fn the_address_policy_applies_to_cached_addresses() {
    let Some(port) = two_listeners().await else {
        return skip("no common free port on 127.0.0.1 and 127.0.0.2");
    };
    let zone = Zone::new(
        Behaviour::NoData,
        Behaviour::Answer(ms(0), vec![ip("127.0.0.1")]),
    );
    let server = serve_zone("127.0.0.1:0".parse().unwrap(), zone.clone()).await;
    let connector = Connector::new().resolver(resolver(server));
    let target = format!("policy.test:{port}");
    connect(&connector, &target).await;
    // A clone shares the cache; its policy still refuses what the cache holds.
    let strict = connector
        .clone()
        .address_policy(connect_any::AddressPolicy::deny_non_public());
    let error = strict.connect(target.as_str()).await.unwrap_err();
    assert!(
        matches!(error, connect_any::ConnectError::Denied { .. }),
        "{error:?}"
    );
    assert_eq!(zone.queries(), 2, "the cache answered, the policy refused");
}
