//! `HickoryResolver` against a DNS server that this test runs on 127.0.0.1, whose answer per
//! record type can be delayed, dropped, NXDOMAIN, SERVFAIL, truncated or garbage.
#![cfg(feature = "hickory")]

mod common;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use connect_any::{ConnectError, Connector, HickoryResolver};
use hickory_proto::op::{Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA};
use hickory_proto::rr::{RData, Record, RecordType};
use hickory_resolver::config::{NameServerConfig, ResolveHosts, ResolverConfig, ResolverOpts};
use tokio::net::{TcpListener, UdpSocket};

/// What the server does with one record type's queries.
#[derive(Clone, Debug)]
pub enum Behaviour {
    /// Answers with these addresses after this long.
    Answer(Duration, Vec<IpAddr>),
    /// Never answers.
    Drop,
    /// NOERROR with no records.
    NoData,
    NxDomain,
    ServFail,
    /// An empty answer with the truncation bit set, which asks the client to retry over TCP.
    Truncated,
    /// Bytes that are not a DNS message.
    Garbage,
}

/// Serves queries on 127.0.0.1 (any port) until dropped with the test's runtime.
async fn dns_server(aaaa: Behaviour, a: Behaviour) -> SocketAddr {
    let socket = Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
    let addr = socket.local_addr().unwrap();
    tokio::spawn(async move {
        let mut buf = vec![0u8; 4096];
        while let Ok((len, peer)) = socket.recv_from(&mut buf).await {
            let Ok(query) = Message::from_vec(&buf[..len]) else {
                continue;
            };
            let Some(question) = query.queries.first() else {
                continue;
            };
            let behaviour = match question.query_type() {
                RecordType::AAAA => aaaa.clone(),
                RecordType::A => a.clone(),
                _ => Behaviour::NoData,
            };
            let socket = socket.clone();
            // A task per query, so a delayed answer holds up only itself.
            tokio::spawn(async move {
                if let Behaviour::Answer(after, _) = &behaviour {
                    tokio::time::sleep(*after).await;
                }
                if let Some(bytes) = respond(&query, &behaviour) {
                    let _ = socket.send_to(&bytes, peer).await;
                }
            });
        }
    });
    addr
}

fn respond(query: &Message, behaviour: &Behaviour) -> Option<Vec<u8>> {
    let mut response = Message::new(query.metadata.id, MessageType::Response, OpCode::Query);
    response.metadata.recursion_desired = query.metadata.recursion_desired;
    response.metadata.recursion_available = true;
    for question in &query.queries {
        response.add_query(question.clone());
    }
    let name = query.queries[0].name().clone();
    match behaviour {
        Behaviour::Drop => return None,
        Behaviour::Garbage => return Some(b"\x13\x37 this is not DNS".to_vec()),
        Behaviour::Answer(_, ips) => {
            for ip in ips {
                let rdata = match ip {
                    IpAddr::V4(v4) => RData::A(A(*v4)),
                    IpAddr::V6(v6) => RData::AAAA(AAAA(*v6)),
                };
                response.add_answer(Record::from_rdata(name.clone(), 60, rdata));
            }
        }
        Behaviour::NoData => {}
        Behaviour::NxDomain => response.metadata.response_code = ResponseCode::NXDomain,
        Behaviour::ServFail => response.metadata.response_code = ResponseCode::ServFail,
        Behaviour::Truncated => response.metadata.truncation = true,
    }
    response.to_vec().ok()
}

/// A resolver that asks only the test server, over UDP, waiting at most 600 ms per query.
fn resolver(server: SocketAddr) -> HickoryResolver {
    let mut name_server = NameServerConfig::udp(server.ip());
    name_server.connections[0].port = server.port();
    let config = ResolverConfig::from_parts(None, vec![], vec![name_server]);
    let mut options = ResolverOpts::default();
    options.timeout = Duration::from_millis(600);
    options.attempts = 1;
    options.use_hosts_file = ResolveHosts::Never;
    HickoryResolver::with_config(config, options).unwrap()
}

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
