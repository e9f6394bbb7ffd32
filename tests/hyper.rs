//! The hyper connector against a real hyper server on loopback (feature `hyper`).
#![cfg(feature = "hyper")]

mod common;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use std::sync::atomic::Ordering::SeqCst;

use common::{BlackHole, EofServer, eventually, has_ipv6_loopback};
use connect_any::{
    AddressSource, ConnectError, ConnectReport, Connector, HyperConnector, TargetError,
};
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpInfo;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tower_service::Service;

/// An HTTP/1 server on `ip` that answers every request with 200 and "hello".
async fn hello_server(ip: &str, port: u16) -> SocketAddr {
    let listener = TcpListener::bind((ip, port)).await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let hello = hyper::service::service_fn(|_: Request<Incoming>| async {
                    Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"hello"))))
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), hello)
                    .await;
            });
        }
    });
    addr
}

#[tokio::test]
async fn a_get_through_hyper_falls_back_from_a_black_hole() {
    let hole_ip = if has_ipv6_loopback() {
        "::1"
    } else {
        "127.0.0.2"
    };
    let hole = BlackHole::on(hole_ip).await.unwrap();
    let working = hello_server("127.0.0.1", 0).await;
    let connector = Connector::new().resolve_override("upstream.test", None, [hole.addr, working]);
    let client = Client::builder(TokioExecutor::new())
        .build::<_, Empty<Bytes>>(HyperConnector::new(connector));

    let began = Instant::now();
    let response = client
        .get("http://upstream.test/".parse().unwrap())
        .await
        .unwrap();
    let took = began.elapsed();
    assert_eq!(response.status(), 200);
    let info = response
        .extensions()
        .get::<HttpInfo>()
        .expect("Connected info reaches hyper");
    assert_eq!(info.remote_addr(), working);
    let report = response
        .extensions()
        .get::<ConnectReport>()
        .expect("the connect report reaches the response");
    assert_eq!(report.winner(), Some(working));
    assert!(report.is_fallback(), "{report:#}");
    assert_eq!(report.source(), AddressSource::Override);
    assert_eq!(report.attempts().len(), 2, "{report:#}");
    assert_eq!(report.attempts()[0].addr(), hole.addr);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(&body[..], b"hello");
    assert!(
        took >= Duration::from_millis(240) && took < Duration::from_secs(2),
        "took {took:?}"
    );
}

#[tokio::test]
async fn ipv6_literal_uris_lose_their_brackets() {
    if !has_ipv6_loopback() {
        common::skip("this machine cannot bind [::1]");
        return;
    }
    let server = hello_server("::1", 0).await;
    let client =
        Client::builder(TokioExecutor::new()).build::<_, Empty<Bytes>>(HyperConnector::default());
    let uri = format!("http://[::1]:{}/", server.port()).parse().unwrap();
    let response = client.get(uri).await.unwrap();
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn bad_uris_are_clear_errors() {
    let mut connector = HyperConnector::default().enforce_http(false);
    let no_host = connector
        .call("/just/a/path".parse().unwrap())
        .await
        .unwrap_err();
    assert!(
        matches!(
            no_host,
            ConnectError::InvalidTarget {
                cause: TargetError::EmptyHost,
                ..
            }
        ),
        "{no_host:?}"
    );
    let no_port = connector
        .call("gopher://example.com/".parse().unwrap())
        .await
        .unwrap_err();
    assert!(
        matches!(
            no_port,
            ConnectError::InvalidTarget {
                cause: TargetError::UnknownScheme,
                ..
            }
        ),
        "{no_port:?}"
    );
    assert_eq!(
        format!("{no_port:#}"),
        "invalid target \"gopher://example.com/\": URI has no port and no scheme with a default port"
    );

    let client = Client::builder(TokioExecutor::new()).build::<_, Empty<Bytes>>(connector);
    let error = client
        .get("gopher://example.com/".parse().unwrap())
        .await
        .unwrap_err();
    assert!(error.is_connect(), "{error:?}");
}

/// An `https` URI through a plain-TCP connector would send the request, headers and all, in
/// clear text: it is refused before anything is dialed, whatever the scheme's case.
#[tokio::test]
async fn tls_schemes_are_refused_before_any_connect() {
    let server = EofServer::start("127.0.0.1").await;
    let port = server.addr.port();
    let mut connector = HyperConnector::default();
    for scheme in ["https", "HTTPS", "wss", "Wss", "ftp"] {
        let uri = format!("{scheme}://127.0.0.1:{port}/").parse().unwrap();
        let error = connector.call(uri).await.unwrap_err();
        assert!(
            matches!(
                error,
                ConnectError::InvalidTarget {
                    cause: TargetError::SchemeNotHttp,
                    ..
                }
            ),
            "{scheme}: {error:?}"
        );
    }
    let no_scheme = connector.call("/just/a/path".parse().unwrap()).await;
    assert!(matches!(
        no_scheme,
        Err(ConnectError::InvalidTarget {
            cause: TargetError::SchemeNotHttp,
            ..
        })
    ));
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    assert_eq!(
        server.accepted.load(SeqCst),
        0,
        "nothing reached the listener"
    );

    for scheme in ["http", "HTTP", "ws", "WS"] {
        let uri = format!("{scheme}://127.0.0.1:{port}/").parse().unwrap();
        let stream = connector.call(uri).await.unwrap();
        drop(stream);
    }
    let mut tls_wrapped = HyperConnector::default().enforce_http(false);
    let uri = format!("https://127.0.0.1:{port}/").parse().unwrap();
    drop(tls_wrapped.call(uri).await.unwrap());
    assert!(eventually(|| server.accepted.load(SeqCst) == 5).await);
}
