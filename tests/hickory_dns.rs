//! `HickoryResolver` against a DNS server that this test runs on 127.0.0.1, whose answer per
//! record type can be delayed, dropped, NXDOMAIN, SERVFAIL, truncated or garbage.
#![cfg(feature = "hickory")]

mod common;
#[path = "../examples/support/dns.rs"]
mod dns;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::{Duration, Instant};

use connect_any::{ConnectError, Connector};
use dns::{Behaviour, dns_server, resolver};
use tokio::net::TcpListener;

const V4: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
const V6: IpAddr = IpAddr::V6(Ipv6Addr::LOCALHOST);

fn now() -> Duration {
    Duration::ZERO
}

/// Connects to `dual.test` (A 127.0.0.1, AAAA ::1, each served as told) where both loopback
/// addresses listen on one port; returns the winner and the time taken.
async fn connect_dual(
    aaaa: Behaviour,
    a: Behaviour,
) -> Result<(SocketAddr, Duration), ConnectError> {
    let v4 = TcpListener::bind((V4, 0)).await.unwrap();
    let port = v4.local_addr().unwrap().port();
    let _v6 = if common::has_ipv6_loopback() {
        TcpListener::bind((V6, port)).await.ok()
    } else {
        None
    };
    let server = dns_server(aaaa, a).await;
    let connector = Connector::new()
        .resolver(resolver(server))
        .timeout(Some(Duration::from_secs(5)));
    let began = Instant::now();
    let stream = connector.connect(("dual.test", port)).await?;
    Ok((stream.peer_addr().unwrap(), began.elapsed()))
}

#[tokio::test]
async fn a_slow_aaaa_costs_the_resolution_delay_not_the_wait() {
    let (winner, took) = connect_dual(
        Behaviour::Answer(Duration::from_secs(1), vec![V6]),
        Behaviour::Answer(now(), vec![V4]),
    )
    .await
    .unwrap();
    println!("AAAA delayed 1 s: connected to {winner} after {took:?}");
    assert_eq!(winner.ip(), V4);
    assert!(
        took >= Duration::from_millis(50),
        "the resolution delay: {took:?}"
    );
    assert!(
        took < Duration::from_millis(900),
        "did not wait for AAAA: {took:?}"
    );
}

#[tokio::test]
async fn a_dropped_aaaa_costs_the_resolution_delay() {
    let (winner, took) = connect_dual(Behaviour::Drop, Behaviour::Answer(now(), vec![V4]))
        .await
        .unwrap();
    println!("AAAA dropped: connected to {winner} after {took:?}");
    assert_eq!(winner.ip(), V4);
    assert!(took >= Duration::from_millis(50), "{took:?}");
    assert!(
        took < Duration::from_millis(550),
        "did not wait for the AAAA timeout: {took:?}"
    );
}

#[tokio::test]
async fn a_dropped_a_does_not_delay_ipv6() {
    if !common::has_ipv6_loopback() {
        common::skip("this machine cannot bind [::1]");
        return;
    }
    let (winner, took) = connect_dual(Behaviour::Answer(now(), vec![V6]), Behaviour::Drop)
        .await
        .unwrap();
    println!("A dropped: connected to {winner} after {took:?}");
    assert_eq!(winner.ip(), V6);
    assert!(
        took < Duration::from_millis(550),
        "did not wait for the A timeout: {took:?}"
    );
}

#[tokio::test]
async fn a_negative_aaaa_ends_the_wait() {
    let (winner, took) = connect_dual(Behaviour::NoData, Behaviour::Answer(now(), vec![V4]))
        .await
        .unwrap();
    assert_eq!(winner.ip(), V4);
    println!("AAAA NODATA: connected to {winner} after {took:?}");
}

/// Every fault gives a clear error within its bound, never a panic or a hang.
#[tokio::test]
async fn each_fault_gives_its_documented_error() {
    let faults = [
        ("NXDOMAIN", Behaviour::NxDomain),
        ("NODATA", Behaviour::NoData),
        ("SERVFAIL", Behaviour::ServFail),
        ("truncated", Behaviour::Truncated),
        ("garbage", Behaviour::Garbage),
        ("dropped", Behaviour::Drop),
    ];
    for (fault, behaviour) in faults {
        let began = Instant::now();
        let error = connect_dual(behaviour.clone(), behaviour)
            .await
            .unwrap_err();
        let took = began.elapsed();
        println!(
            "{fault} for both: {error} (kind {:?}) after {took:?}",
            error.kind()
        );
        assert!(took < Duration::from_secs(3), "{fault}: {took:?}");
        match fault {
            "NXDOMAIN" | "NODATA" => assert!(
                matches!(error, ConnectError::NoAddresses { .. }),
                "{fault}: {error:?}"
            ),
            _ => assert!(
                matches!(error, ConnectError::Resolve { .. }),
                "{fault}: {error:?}"
            ),
        }
    }
}
