//! A gRPC health check through tonic, dialed by `HyperConnector`, to a server behind a name
//! whose first address is black-holed.

use std::time::{Duration, Instant};

use connect_any::{Connector, HyperConnector};
use connect_any_integration::{BlackHole, has_ipv6_loopback};
use tonic::transport::{Endpoint, Server, server::TcpIncoming};
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

#[tokio::test]
async fn a_health_check_reaches_serving_past_a_black_hole() {
    let incoming = TcpIncoming::bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let server = incoming.local_addr().unwrap();
    let (_reporter, health) = tonic_health::server::health_reporter();
    tokio::spawn(
        Server::builder()
            .add_service(health)
            .serve_with_incoming(incoming),
    );

    // The name's first address hangs like a black-holed route ([::1] where this machine has
    // IPv6, another loopback address otherwise); the second is the server.
    let hole_ip = if has_ipv6_loopback() {
        "::1"
    } else {
        "127.0.0.2"
    };
    let hole = BlackHole::on(hole_ip).await.unwrap();
    let connector = Connector::new().resolve_override("grpc.test", None, [hole.addr, server]);

    let began = Instant::now();
    let endpoint = Endpoint::from_shared(format!("http://grpc.test:{}", server.port())).unwrap();
    let channel = endpoint
        .connect_with_connector(HyperConnector::new(connector))
        .await
        .unwrap();
    let response = HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    let took = began.elapsed();
    println!(
        "tonic health check through {hole_ip} black hole: {:?} after {took:?}",
        response.status()
    );
    assert_eq!(response.status(), ServingStatus::Serving);
    assert!(
        took >= Duration::from_millis(250),
        "the black hole was tried first: {took:?}"
    );
    assert!(took < Duration::from_secs(10), "{took:?}");
}
