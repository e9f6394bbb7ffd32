//! HTTPS records handed to real TLS and QUIC dialers through `connect_endpoints_with`: the
//! record's ALPN decides what rustls offers (and so what a server offering `h2` and
//! `http/1.1` picks), its ECH bytes reach the dialer unchanged, and QUIC (quinn) and TCP+TLS
//! endpoints race as one Happy Eyeballs v3 race, the loser closed.
//!
//! The records come from a resolver written here (the DNS path to them is proven in the
//! crate's `tests/https_dns.rs`); every address is loopback.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::sync::atomic::Ordering::SeqCst;
use std::time::{Duration, Instant};

use connect_any::{
    Answer, Answering, Connector, Endpoint, Resolve, Resolving, Service, ServiceRecord, Target,
};
use connect_any_integration::{TLS_NAME, TestCert, alpn_server, quic_server};
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

/// Answers `tls.test` with 127.0.0.1 and these HTTPS records.
struct Records(Vec<ServiceRecord>);

impl Resolve for Records {
    fn resolve<'a>(&'a self, _host: &'a str, port: u16) -> Resolving<'a> {
        Box::pin(async move { Ok(vec![SocketAddr::from(([127, 0, 0, 1], port))]) })
    }

    fn resolve_https<'a>(&'a self, _host: &'a str, port: u16) -> Option<Answering<'a>> {
        let own = SocketAddr::from(([127, 0, 0, 1], port));
        let answers = [
            Answer::https(Ok(self.0.clone())),
            Answer::ipv6(Ok(Vec::new())),
            Answer::ipv4(Ok(vec![own])),
        ];
        Some(Box::pin(futures_util::stream::iter(answers)))
    }
}

fn connector(records: Vec<ServiceRecord>) -> Connector {
    Connector::new()
        .resolver(Records(records))
        .winner_memory(0, Duration::ZERO)
        .timeout(Duration::from_secs(10))
}

fn target(protocols: &[&str]) -> Target {
    Target::from_host_port(TLS_NAME, 443)
        .unwrap()
        .with_service(Service::https().protocols(protocols))
}

/// TCP, then TLS offering the endpoint's ALPN ids.
async fn tls_to(cert: Arc<TestCert>, endpoint: Endpoint) -> std::io::Result<TlsStream<TcpStream>> {
    let config = cert.client_config_offering(&endpoint.alpn());
    let tls = TlsConnector::from(Arc::new(config));
    let tcp = TcpStream::connect(endpoint.addr()).await?;
    tls.connect(ServerName::try_from(TLS_NAME).unwrap(), tcp)
        .await
}

fn negotiated(stream: &TlsStream<TcpStream>) -> Option<Vec<u8>> {
    stream.get_ref().1.alpn_protocol().map(<[u8]>::to_vec)
}

#[tokio::test]
async fn rustls_offers_the_records_alpn_and_the_server_picks_from_it() {
    let cert = Arc::new(TestCert::new());
    // The server prefers h2; the client offers what the record says.
    let (server, _) = alpn_server("127.0.0.1", &cert, &[b"h2", b"http/1.1"]).await;
    for (record, expected) in [
        (ServiceRecord::new(1, "."), b"http/1.1".as_slice()),
        (
            ServiceRecord::new(1, ".")
                .with_alpn(["h2"])
                .with_no_default_alpn(),
            b"h2".as_slice(),
        ),
    ] {
        let record = record.with_port(server.port());
        let cert = cert.clone();
        let stream = connector(vec![record])
            .connect_endpoints_with(target(&["h2", "http/1.1"]), move |endpoint| {
                tls_to(cert.clone(), endpoint)
            })
            .await
            .unwrap();
        assert_eq!(stream.get_ref().0.peer_addr().unwrap(), server);
        assert_eq!(negotiated(&stream).as_deref(), Some(expected));
    }
}

#[tokio::test]
async fn the_records_ech_config_reaches_the_dialer_unchanged() {
    // rustls has no ECH server, so the handshake cannot use it here: the bytes are checked.
    let cert = Arc::new(TestCert::new());
    let (server, _) = alpn_server("127.0.0.1", &cert, &[b"h2"]).await;
    let ech: Vec<u8> = b"\xfe\x0d\x00\x2a an ECHConfigList, opaque to the connector".to_vec();
    let record = ServiceRecord::new(1, ".")
        .with_alpn(["h2"])
        .with_ech_config_list(ech.clone());
    let (stream, seen) = connector(vec![record.with_port(server.port())])
        .connect_endpoints_with(target(&["h2"]), move |endpoint| {
            let cert = cert.clone();
            async move {
                let seen = endpoint.ech_config_list().map(<[u8]>::to_vec);
                Ok((tls_to(cert, endpoint).await?, seen))
            }
        })
        .await
        .unwrap();
    assert_eq!(seen, Some(ech));
    assert_eq!(negotiated(&stream).as_deref(), Some(b"h2".as_slice()));
}

/// A connection over QUIC or over TCP+TLS, whichever won.
enum Connected {
    Quic(quinn::Connection),
    Tls(Box<TlsStream<TcpStream>>),
}

/// QUIC to an endpoint whose record speaks `h3`, TCP+TLS to the others.
async fn quic_or_tls(
    cert: Arc<TestCert>,
    client: quinn::Endpoint,
    endpoint: Endpoint,
) -> std::io::Result<Connected> {
    if !endpoint.alpn().contains(&b"h3".as_slice()) {
        return Ok(Connected::Tls(Box::new(tls_to(cert, endpoint).await?)));
    }
    let tls = cert.client_config_offering(&[b"h3"]);
    let crypto =
        quinn::crypto::rustls::QuicClientConfig::try_from(tls).map_err(std::io::Error::other)?;
    let config = quinn::ClientConfig::new(Arc::new(crypto));
    let connecting = client
        .connect_with(config, endpoint.addr(), TLS_NAME)
        .map_err(std::io::Error::other)?;
    Ok(Connected::Quic(
        connecting.await.map_err(std::io::Error::other)?,
    ))
}

/// Whether `counter` reaches `value` within 5 s: a server counts after the client has its
/// connection.
async fn reaches(counter: &AtomicUsize, value: usize) -> bool {
    let deadline = Instant::now() + Duration::from_secs(5);
    while counter.load(SeqCst) < value && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    counter.load(SeqCst) == value
}

/// Races `h3` on `quic_port` (priority 1) against `h2` over TCP+TLS on `tls_port`
/// (priority 2), `delay` apart; returns the winner, the dialer's QUIC endpoint and the time
/// the race took.
async fn race_h3_and_h2(
    cert: Arc<TestCert>,
    quic_port: u16,
    tls_port: u16,
    delay: Duration,
) -> (Connected, quinn::Endpoint, Duration) {
    let records = vec![
        ServiceRecord::new(2, ".")
            .with_alpn(["h2"])
            .with_port(tls_port),
        ServiceRecord::new(1, ".")
            .with_alpn(["h3"])
            .with_no_default_alpn()
            .with_port(quic_port),
    ];
    let client = quinn::Endpoint::client("127.0.0.1:0".parse().unwrap()).unwrap();
    let dial_client = client.clone();
    let began = Instant::now();
    let connected = connector(records)
        .attempt_delay(delay)
        .connect_endpoints_with(target(&["h3", "h2"]), move |endpoint| {
            quic_or_tls(cert.clone(), dial_client.clone(), endpoint)
        })
        .await
        .unwrap();
    (connected, client, began.elapsed())
}

#[tokio::test]
async fn quic_wins_by_the_records_order_when_both_are_up() {
    let cert = Arc::new(TestCert::new());
    let (quic, quic_accepted) = quic_server(&cert);
    let (tls, tls_handshakes) = alpn_server("127.0.0.1", &cert, &[b"h2"]).await;
    let quic_port = quic.local_addr().unwrap().port();
    let (connected, _client, took) =
        race_h3_and_h2(cert, quic_port, tls.port(), Duration::from_secs(2)).await;
    let Connected::Quic(connection) = connected else {
        panic!("TCP+TLS won over a QUIC endpoint of a lower priority");
    };
    println!("both up: QUIC won after {took:?}");
    assert_eq!(connection.remote_address(), quic.local_addr().unwrap());
    assert!(
        reaches(&quic_accepted, 1).await,
        "the QUIC server saw the connection"
    );
    assert_eq!(tls_handshakes.load(SeqCst), 0, "TCP never started");
}

#[tokio::test]
async fn with_udp_black_holed_tcp_tls_wins_after_the_attempt_delay_and_quic_is_closed() {
    let cert = Arc::new(TestCert::new());
    // A UDP socket that reads nothing: QUIC's Initial goes unanswered.
    let hole = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let (tls, tls_handshakes) = alpn_server("127.0.0.1", &cert, &[b"h2"]).await;
    let hole_port = hole.local_addr().unwrap().port();
    let (connected, client, took) =
        race_h3_and_h2(cert, hole_port, tls.port(), Duration::from_millis(200)).await;
    let raced = Instant::now();
    let Connected::Tls(stream) = connected else {
        panic!("QUIC won with UDP black-holed");
    };
    println!("UDP black-holed: TCP+TLS won after {took:?}");
    assert_eq!(stream.get_ref().0.peer_addr().unwrap(), tls);
    assert_eq!(negotiated(&stream).as_deref(), Some(b"h2".as_slice()));
    assert!(
        took >= Duration::from_millis(200),
        "TCP waited the attempt delay: {took:?}"
    );
    assert!(
        reaches(&tls_handshakes, 1).await,
        "the TLS server saw the handshake"
    );
    // The QUIC attempt was dropped with the race: its connection leaves the endpoint once
    // quinn has drained it (three probe timeouts; generous bound for a busy machine).
    let deadline = Instant::now() + Duration::from_secs(20);
    while client.open_connections() > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(client.open_connections(), 0, "the QUIC loser was closed");
    println!(
        "the QUIC loser left the endpoint {:?} after the race",
        raced.elapsed()
    );
}
