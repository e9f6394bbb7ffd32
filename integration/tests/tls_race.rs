//! Happy Eyeballs v3's notion of success: with `connect_with` over a TLS dialer, an address that
//! accepts TCP but never answers the ClientHello loses to one that completes the handshake,
//! and the stalled connection is closed.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use connect_any::Connector;
use connect_any_integration::{EofServer, TLS_NAME, TestCert, https_server, tls_dial};
use rustls::pki_types::ServerName;
use std::sync::atomic::Ordering::SeqCst;
use tokio_rustls::TlsConnector;

#[tokio::test]
async fn the_address_that_completes_tls_wins_and_the_stalled_one_is_closed() {
    let cert = TestCert::new();
    let mute = EofServer::start("127.0.0.2").await;
    let good = https_server("127.0.0.1", &cert).await;
    let tls = TlsConnector::from(Arc::new(cert.client_config()));
    let name = ServerName::try_from(TLS_NAME).unwrap();
    let hooked = Arc::new(Mutex::new(Vec::new()));
    let seen = hooked.clone();
    let connector = Connector::new()
        .attempt_delay(Duration::from_millis(100))
        .timeout(Duration::from_secs(10))
        .nodelay(true)
        .before_connect(move |socket, addr| {
            seen.lock().unwrap().push(addr);
            socket2::SockRef::from(socket).set_tos_v4(0x10)
        });
    let tcp = connector.tcp_dialer();

    let began = Instant::now();
    let stream = connector
        .connect_with(vec![mute.addr, good], |addr| {
            tls_dial(tcp.clone(), tls.clone(), name.clone(), addr)
        })
        .await
        .unwrap();
    // The TCP under the TLS stream was set up as the connector's own connects are.
    let socket = socket2::SockRef::from(stream.get_ref().0);
    assert!(socket.tcp_nodelay().unwrap(), "TCP_NODELAY read back");
    assert_eq!(
        socket.tos_v4().unwrap(),
        0x10,
        "the hook's IP_TOS read back"
    );
    assert_eq!(
        *hooked.lock().unwrap(),
        [mute.addr, good],
        "the hook ran per attempt"
    );
    let took = began.elapsed();
    let peer = stream.get_ref().0.peer_addr().unwrap();
    println!(
        "TLS race: {peer} won after {took:?}; the mute server accepted {}",
        mute.accepted.load(SeqCst)
    );
    assert_eq!(peer, good);
    assert!(
        took >= Duration::from_millis(100),
        "the mute address went first: {took:?}"
    );
    assert_eq!(
        mute.accepted.load(SeqCst),
        1,
        "the mute address was dialed and its TCP accepted"
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while mute.closed.load(SeqCst) < 1 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(
        mute.closed.load(SeqCst),
        1,
        "the stalled handshake's socket was closed"
    );
}
