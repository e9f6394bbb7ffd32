//! Happy Eyeballs where success means a completed TLS handshake (as Happy Eyeballs v3 asks):
//! the first address accepts TCP but never answers the ClientHello, the second completes TLS
//! and wins; the stalled connection is closed before the call returns.
//!
//! `cargo run -p connect-any-integration --example tls-race`

use std::sync::Arc;
use std::time::{Duration, Instant};

use connect_any::Connector;
use connect_any_integration::{EofServer, TLS_NAME, TestCert, https_server, tls_dial};
use rustls::pki_types::ServerName;
use std::sync::atomic::Ordering::SeqCst;
use tokio_rustls::TlsConnector;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let cert = TestCert::new();
    let mute = EofServer::start("127.0.0.2").await;
    let good = https_server("127.0.0.1", &cert).await;
    println!(
        "{} accepts TCP and stays silent; {good} speaks TLS",
        mute.addr
    );

    let tls = TlsConnector::from(Arc::new(cert.client_config()));
    let name = ServerName::try_from(TLS_NAME)?;
    let connector = Connector::new()
        .attempt_delay(Duration::from_millis(100))
        .timeout(Duration::from_secs(5))
        .nodelay(true);
    // TCP exactly as the connector's own connects make it: its socket options and hook.
    let tcp = connector.tcp_dialer();
    let began = Instant::now();
    let stream = connector
        .connect_with(vec![mute.addr, good], |addr| {
            tls_dial(tcp.clone(), tls.clone(), name.clone(), addr)
        })
        .await?;
    let (tcp, session) = stream.get_ref();
    println!(
        "won by {} after {:?} ({:?}); the silent server accepted {} connection(s)",
        tcp.peer_addr()?,
        began.elapsed(),
        session.protocol_version(),
        mute.accepted.load(SeqCst),
    );
    tokio::time::sleep(Duration::from_millis(20)).await;
    println!(
        "the stalled handshake's socket was closed: {}",
        mute.closed.load(SeqCst) == 1
    );
    Ok(())
}
