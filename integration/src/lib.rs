//! Shared fixtures for the integration tests and examples: loopback servers, a self-signed
//! certificate, and a black-holed address.
#![warn(missing_docs, rust_2018_idioms)]

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::client::TlsStream;
use tokio_rustls::{TlsAcceptor, TlsConnector};

#[path = "../../examples/support/loopback.rs"]
mod loopback;
/// A server that accepts TCP connections and never says a word (a TLS handshake to it stalls),
/// counting connections accepted and closed by the client.
pub use loopback::{BlackHole, EofServer};

/// The name the test certificate is made out to.
pub const TLS_NAME: &str = "tls.test";

/// A self-signed certificate for [`TLS_NAME`], with its key.
pub struct TestCert {
    /// The certificate, which clients trust as their only root.
    pub cert: CertificateDer<'static>,
    key: PrivatePkcs8KeyDer<'static>,
}

impl TestCert {
    /// Makes a fresh self-signed certificate.
    pub fn new() -> Self {
        let made = rcgen::generate_simple_self_signed(vec![TLS_NAME.to_owned()]).unwrap();
        Self {
            cert: made.cert.der().clone(),
            key: PrivatePkcs8KeyDer::from(made.signing_key.serialize_der()),
        }
    }

    /// A rustls client configuration that trusts only this certificate.
    pub fn client_config(&self) -> rustls::ClientConfig {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.cert.clone()).unwrap();
        rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth()
    }

    /// A rustls client configuration that trusts only this certificate and offers `alpn`.
    pub fn client_config_offering(&self, alpn: &[&[u8]]) -> rustls::ClientConfig {
        let mut config = self.client_config();
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        config
    }

    /// A rustls server configuration with this certificate, choosing from `alpn` in its order.
    pub fn server_config_choosing(&self, alpn: &[&[u8]]) -> rustls::ServerConfig {
        let mut config = self.server_config();
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        config
    }

    fn server_config(&self) -> rustls::ServerConfig {
        rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![self.cert.clone()],
            PrivateKeyDer::Pkcs8(self.key.clone_key()),
        )
        .unwrap()
    }
}

impl Default for TestCert {
    fn default() -> Self {
        Self::new()
    }
}

async fn hello(_: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    Ok(Response::new(Full::new(Bytes::from_static(
        b"hello from connect-any",
    ))))
}

/// An HTTP/1 server on `ip` (port chosen by the system) answering every request with 200.
pub async fn http_server(ip: &str) -> SocketAddr {
    counted_http_server(ip).await.0
}

/// [`http_server`], and the number of connections it has accepted.
pub async fn counted_http_server(ip: &str) -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = TcpListener::bind((ip, 0)).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let counter = accepted.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(serve(TokioIo::new(stream)));
        }
    });
    (addr, accepted)
}

/// An HTTP/1 server on `ip` that answers every request with a 302 to `location`.
pub async fn redirecting_server(ip: &str, location: String) -> SocketAddr {
    let listener = TcpListener::bind((ip, 0)).await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let location = location.clone();
            let redirect = move |_: Request<Incoming>| {
                let response = Response::builder()
                    .status(302)
                    .header("location", location.clone())
                    .body(Full::new(Bytes::new()))
                    .unwrap();
                async move { Ok::<_, Infallible>(response) }
            };
            tokio::spawn(async move {
                let service = hyper::service::service_fn(redirect);
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    addr
}

/// The same server over TLS with `cert`.
pub async fn https_server(ip: &str, cert: &TestCert) -> SocketAddr {
    let listener = TcpListener::bind((ip, 0)).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let acceptor = TlsAcceptor::from(Arc::new(cert.server_config()));
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                if let Ok(tls) = acceptor.accept(stream).await {
                    serve(TokioIo::new(tls)).await;
                }
            });
        }
    });
    addr
}

async fn serve<T>(io: TokioIo<T>)
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(hello);
    let _ = hyper::server::conn::http1::Builder::new()
        .serve_connection(io, service)
        .await;
}

/// A TLS server on `ip` that completes handshakes choosing from `alpn` (in its own order of
/// preference) and then holds the connection; with the number of handshakes it completed.
pub async fn alpn_server(
    ip: &str,
    cert: &TestCert,
    alpn: &[&[u8]],
) -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = TcpListener::bind((ip, 0)).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let acceptor = TlsAcceptor::from(Arc::new(cert.server_config_choosing(alpn)));
    let handshakes = Arc::new(AtomicUsize::new(0));
    let counter = handshakes.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let (acceptor, counter) = (acceptor.clone(), counter.clone());
            tokio::spawn(async move {
                if let Ok(tls) = acceptor.accept(stream).await {
                    counter.fetch_add(1, Ordering::SeqCst);
                    // Held open until the client closes it.
                    let mut tls = tls;
                    let _ = tokio::io::AsyncReadExt::read(&mut tls, &mut [0u8; 1]).await;
                }
            });
        }
    });
    (addr, handshakes)
}

/// A QUIC server on 127.0.0.1 (UDP, port chosen by the system) speaking `h3`'s ALPN with
/// `cert`, accepting every connection and holding it; with the number it accepted.
pub fn quic_server(cert: &TestCert) -> (quinn::Endpoint, Arc<AtomicUsize>) {
    let tls = cert.server_config_choosing(&[b"h3"]);
    let crypto = quinn::crypto::rustls::QuicServerConfig::try_from(tls).unwrap();
    let config = quinn::ServerConfig::with_crypto(Arc::new(crypto));
    let endpoint = quinn::Endpoint::server(config, "127.0.0.1:0".parse().unwrap()).unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let (server, counter) = (endpoint.clone(), accepted.clone());
    tokio::spawn(async move {
        while let Some(incoming) = server.accept().await {
            let counter = counter.clone();
            tokio::spawn(async move {
                if let Ok(connection) = incoming.await {
                    counter.fetch_add(1, Ordering::SeqCst);
                    connection.closed().await;
                }
            });
        }
    });
    (endpoint, accepted)
}

/// Connects over TCP with `tcp` (a connector's own socket settings), then completes a TLS
/// handshake as `name`: a dialer for which an attempt wins only once TLS is up.
pub async fn tls_dial(
    tcp: connect_any::TcpDialer,
    tls: TlsConnector,
    name: ServerName<'static>,
    addr: SocketAddr,
) -> io::Result<TlsStream<TcpStream>> {
    let tcp = tcp.dial(addr).await?;
    tls.connect(name, tcp).await
}

/// Whether this machine can bind `[::1]`.
pub fn has_ipv6_loopback() -> bool {
    std::net::TcpListener::bind("[::1]:0").is_ok()
}
