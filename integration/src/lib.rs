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
