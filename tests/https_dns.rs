//! HTTPS service records through `HickoryResolver`, against a DNS server this test runs on
//! 127.0.0.1 that serves HTTPS records (built with hickory-proto), on real loopback sockets:
//! hints, ports, TargetNames, aliases and their loops, priorities, mandatory keys, negative,
//! dropped and malformed answers, and the ECH bytes reaching the dialer.
#![cfg(feature = "hickory")]

mod common;
#[path = "../examples/support/dns.rs"]
mod dns;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use connect_any::{ConnectError, Connector, Endpoint, Service, Target};
use dns::{Behaviour, HttpsBehaviour, Zone, resolver_waiting, serve_zone};
use hickory_proto::rr::Name;
use hickory_proto::rr::RecordType;
use hickory_proto::rr::rdata::A;
use hickory_proto::rr::rdata::svcb::{
    Alpn, EchConfigList, IpHint, Mandatory, SVCB, SvcParamKey, SvcParamValue, Unknown,
};
use tokio::net::TcpListener;

const LOCAL: Ipv4Addr = Ipv4Addr::LOCALHOST;

fn name(name: &str) -> Name {
    Name::from_ascii(name).unwrap()
}

/// A record with `params` in key order, as RFC 9460 §2.2 requires on the wire.
fn record(priority: u16, target: &str, mut params: Vec<(SvcParamKey, SvcParamValue)>) -> SVCB {
    params.sort_by_key(|(key, _)| u16::from(*key));
    SVCB::new(priority, name(target), params)
}

fn port(port: u16) -> (SvcParamKey, SvcParamValue) {
    (SvcParamKey::Port, SvcParamValue::Port(port))
}

fn ipv4_hint(ip: Ipv4Addr) -> (SvcParamKey, SvcParamValue) {
    (
        SvcParamKey::Ipv4Hint,
        SvcParamValue::Ipv4Hint(IpHint(vec![A(ip)])),
    )
}

fn answer(after_ms: u64, ips: &[Ipv4Addr]) -> Behaviour {
    let ips = ips.iter().map(|ip| IpAddr::V4(*ip)).collect();
    Behaviour::Answer(Duration::from_millis(after_ms), ips)
}

fn records(records: Vec<SVCB>) -> HttpsBehaviour {
    HttpsBehaviour::Records(Duration::ZERO, records)
}

/// A zone whose `svc.test` has no addresses of its own unless a test sets them.
async fn zone() -> (Arc<Zone>, Connector) {
    let zone = Zone::new(Behaviour::NoData, Behaviour::NoData);
    let server = serve_zone("127.0.0.1:0".parse().unwrap(), zone.clone()).await;
    let resolver = resolver_waiting(server, Duration::from_secs(5));
    let connector = Connector::new()
        .resolver(resolver)
        .timeout(Some(Duration::from_secs(10)));
    (zone, connector)
}

fn target(port: u16) -> Target {
    Target::from_host_port("svc.test", port)
        .unwrap()
        .with_service(Service::https().protocols(["h2", "http/1.1"]))
}

/// Connects; returns the winner's peer and the time taken.
async fn connect(
    connector: &Connector,
    target: Target,
) -> Result<(SocketAddr, Duration), ConnectError> {
    let began = Instant::now();
    let stream = connector.connect(target).await?;
    Ok((stream.peer_addr().unwrap(), began.elapsed()))
}

async fn listener() -> (TcpListener, SocketAddr) {
    common::listener("127.0.0.1").await
}

#[tokio::test]
async fn a_hint_and_the_records_port_connect_before_the_address_answers() {
    let (zone, connector) = zone().await;
    let (_listener, listening) = listener().await;
    zone.set_name("svc.test", Behaviour::NoData, answer(3_000, &[LOCAL]));
    let hinted = record(1, ".", vec![port(listening.port()), ipv4_hint(LOCAL)]);
    zone.set_https("svc.test", records(vec![hinted]));
    let (winner, took) = connect(&connector, target(443)).await.unwrap();
    println!(
        "hint at the record's port: connected to {winner} after {took:?}, the A answer 3 s away"
    );
    assert_eq!(winner, listening, "the hint, at the record's port");
    assert!(
        took < Duration::from_millis(2_500),
        "not waiting for the A answer: {took:?}"
    );
}

#[tokio::test]
async fn a_port_other_than_443_asks_under_its_prefix() {
    let (zone, connector) = zone().await;
    let (_listener, listening) = listener().await;
    zone.set_name("svc.test", Behaviour::NoData, answer(0, &[LOCAL]));
    let _ = connect(&connector, target(listening.port())).await.unwrap();
    let prefixed = format!("_{}._https.svc.test", listening.port());
    assert!(
        zone.asked().contains(&(prefixed, RecordType::HTTPS)),
        "{:?}",
        zone.asked()
    );
}

#[tokio::test]
async fn the_target_names_addresses_are_asked_for_and_dialed_at_the_records_port() {
    let (zone, connector) = zone().await;
    let (_listener, listening) = listener().await;
    // The target's own address refuses; the record's TargetName has the listener.
    zone.set_name(
        "svc.test",
        Behaviour::NoData,
        answer(0, &["127.0.0.5".parse().unwrap()]),
    );
    zone.set_name("pool.test", Behaviour::NoData, answer(0, &[LOCAL]));
    zone.set_https(
        "svc.test",
        records(vec![record(1, "pool.test.", vec![port(listening.port())])]),
    );
    let (winner, _) = connect(&connector, target(443)).await.unwrap();
    assert_eq!(winner, listening);
    assert!(zone.asked().contains(&("pool.test".into(), RecordType::A)));
}

#[tokio::test]
async fn an_alias_is_followed_and_its_dot_means_the_alias_target() {
    let (zone, connector) = zone().await;
    let (_listener, listening) = listener().await;
    zone.set_https("svc.test", records(vec![record(0, "alias.test.", vec![])]));
    zone.set_https(
        "alias.test",
        records(vec![record(1, ".", vec![port(listening.port())])]),
    );
    zone.set_name("alias.test", Behaviour::NoData, answer(0, &[LOCAL]));
    let (winner, _) = connect(&connector, target(443)).await.unwrap();
    assert_eq!(winner, listening);
}

#[tokio::test]
async fn an_alias_loop_is_an_error_and_the_targets_own_addresses_still_serve() {
    let (zone, connector) = zone().await;
    zone.set_https("svc.test", records(vec![record(0, "a.test.", vec![])]));
    zone.set_https("a.test", records(vec![record(0, "svc.test.", vec![])]));
    let error = connect(&connector, target(443)).await.unwrap_err();
    assert!(matches!(error, ConnectError::Resolve { .. }), "{error:?}");
    assert!(format!("{error:#}").contains("alias loop"), "{error:#}");
    let (_listener, listening) = listener().await;
    zone.set_name("svc.test", Behaviour::NoData, answer(0, &[LOCAL]));
    let (winner, _) = connect(&connector, target(listening.port())).await.unwrap();
    assert_eq!(winner, listening);
}

#[tokio::test]
async fn the_lower_priority_wins_and_an_unknown_mandatory_key_skips_its_record() {
    let (zone, connector) = zone().await;
    let (skipped, skipped_at) = listener().await;
    let (second, second_at) = listener().await;
    let (_first, first_at) = listener().await;
    let unknown = (
        SvcParamKey::Unknown(65_000),
        SvcParamValue::Unknown(Unknown(vec![1])),
    );
    let mandatory = (
        SvcParamKey::Mandatory,
        SvcParamValue::Mandatory(Mandatory(vec![SvcParamKey::Unknown(65_000)])),
    );
    zone.set_name("svc.test", Behaviour::NoData, answer(0, &[LOCAL]));
    zone.set_https(
        "svc.test",
        records(vec![
            record(3, ".", vec![port(second_at.port())]),
            record(1, ".", vec![port(skipped_at.port()), mandatory, unknown]),
            record(2, ".", vec![port(first_at.port())]),
        ]),
    );
    let (winner, _) = connect(&connector, target(443)).await.unwrap();
    assert_eq!(winner, first_at);
    drop(second);
    // Nothing came to the skipped record's port.
    let accepted = tokio::time::timeout(Duration::from_millis(50), skipped.accept()).await;
    assert!(accepted.is_err(), "the skipped record was dialed");
}

#[tokio::test]
async fn negative_dropped_and_malformed_https_answers_leave_the_own_addresses() {
    for https in [
        HttpsBehaviour::NoData,
        HttpsBehaviour::Drop,
        HttpsBehaviour::Malformed,
    ] {
        let (zone, connector) = zone().await;
        let (_listener, listening) = listener().await;
        zone.set_name("svc.test", Behaviour::NoData, answer(0, &[LOCAL]));
        // Asked under the port's prefix: the listener is not on 443.
        let prefixed = format!("_{}._https.svc.test", listening.port());
        zone.set_https(&prefixed, https.clone());
        let (winner, took) = connect(&connector, target(listening.port())).await.unwrap();
        println!("HTTPS {https:?}: connected to {winner} after {took:?}");
        assert_eq!(winner, listening, "{https:?}");
        if matches!(https, HttpsBehaviour::Drop) {
            // The A answer is positive: the unanswered HTTPS query costs the resolution delay.
            assert!(took >= Duration::from_millis(50), "{took:?}");
        }
        assert!(took < Duration::from_secs(3), "{https:?}: {took:?}");
    }
}

#[tokio::test]
async fn the_records_alpn_and_ech_bytes_reach_the_endpoint_dialer_unchanged() {
    let (zone, connector) = zone().await;
    let (_listener, listening) = listener().await;
    let ech: Vec<u8> = (0..=255).collect();
    let params = vec![
        (
            SvcParamKey::Alpn,
            SvcParamValue::Alpn(Alpn(vec!["h2".into(), "h3".into()])),
        ),
        (
            SvcParamKey::EchConfigList,
            SvcParamValue::EchConfigList(EchConfigList(ech.clone())),
        ),
        port(listening.port()),
    ];
    zone.set_name("svc.test", Behaviour::NoData, answer(0, &[LOCAL]));
    zone.set_https("svc.test", records(vec![record(1, ".", params)]));
    let (stream, endpoint) = connector
        .connect_endpoints_with(target(443), |endpoint: Endpoint| async move {
            let stream = tokio::net::TcpStream::connect(endpoint.addr()).await?;
            Ok((stream, endpoint))
        })
        .await
        .unwrap();
    assert_eq!(stream.peer_addr().unwrap(), listening);
    assert_eq!(endpoint.ech_config_list(), Some(ech.as_slice()));
    assert_eq!(endpoint.alpn(), [b"h2".as_slice(), b"http/1.1"]);
    assert_eq!(endpoint.target_name(), Some("."));
}

#[cfg(feature = "hyper")]
#[tokio::test]
async fn a_hyper_connector_asks_for_an_https_uris_records() {
    use tower_service::Service as _;
    let (zone, connector) = zone().await;
    let (_listener, listening) = listener().await;
    zone.set_name("svc.test", Behaviour::NoData, answer(0, &[LOCAL]));
    zone.set_https(
        "svc.test",
        records(vec![record(1, ".", vec![port(listening.port())])]),
    );
    let mut hyper = connect_any::HyperConnector::new(connector).enforce_http(false);
    let uri: http::Uri = "https://svc.test/".parse().unwrap();
    let stream = hyper.call(uri).await.unwrap();
    let report = stream.inner().report();
    assert_eq!(
        report.winner(),
        Some(listening),
        "the record's port, not 443"
    );
}
