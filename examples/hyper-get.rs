//! A GET through hyper-util's client with connect-any as its connector.
//!
//! ```text
//! cargo run --example hyper-get --features hyper                  # embedded server, see below
//! cargo run --example hyper-get --features hyper -- http://localhost:8080/
//! ```
//!
//! Without a URL it starts a hello server on 127.0.0.1:P, black-holes [::1]:P, pins the name
//! `demo.test` to both (IPv6 first) and fetches `http://demo.test:P/`: Happy Eyeballs answers
//! in about 250 ms where hyper-util's `HttpConnector` would wait 300 ms for its fallback.

mod support;

use std::convert::Infallible;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Instant;

use connect_any::{Connector, HyperConnector};
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, Uri};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpInfo;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;

type Error = Box<dyn std::error::Error + Send + Sync>;

async fn hello_server(listener: TcpListener) {
    while let Ok((stream, _)) = listener.accept().await {
        tokio::spawn(async move {
            let hello = hyper::service::service_fn(|_: Request<Incoming>| async {
                Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(
                    b"hello from connect-any\n",
                ))))
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), hello)
                .await;
        });
    }
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    support::init_logging();
    let mut connector = Connector::new();
    let mut _black_hole = None;
    let uri: Uri = match std::env::args().nth(1) {
        Some(url) => url.parse()?,
        None => {
            let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
            let working = listener.local_addr()?;
            tokio::spawn(hello_server(listener));
            let hole_addr = SocketAddr::from((Ipv6Addr::LOCALHOST, working.port()));
            let mut addrs = vec![working];
            match support::loopback::BlackHole::bind(hole_addr).await {
                Ok(hole) => {
                    _black_hole = Some(hole);
                    addrs.insert(0, hole_addr);
                    eprintln!("demo.test -> {hole_addr} (black-holed), {working} (serving)");
                }
                Err(error) => {
                    eprintln!("demo.test -> {working} only; no IPv6 black hole ({error})")
                }
            }
            connector = connector.resolve_override("demo.test", None, addrs);
            format!("http://demo.test:{}/", working.port()).parse()?
        }
    };

    let client = Client::builder(TokioExecutor::new())
        .build::<_, Empty<Bytes>>(HyperConnector::new(connector));
    let began = Instant::now();
    let response = client.get(uri.clone()).await?;
    let took = began.elapsed();
    let peer = response
        .extensions()
        .get::<HttpInfo>()
        .map(|info| info.remote_addr());
    eprintln!(
        "GET {uri} -> {} from {peer:?} in {took:.1?}",
        response.status()
    );
    let body = response.into_body().collect().await?.to_bytes();
    print!("{}", String::from_utf8_lossy(&body));
    Ok(())
}
