//! A line echo server on both loopback families: `[::1]:PORT` and `127.0.0.1:PORT`.
//!
//! ```text
//! cargo run --example echo-server            # port 7007
//! cargo run --example echo-server -- 9000
//! ```

mod support;

use std::net::{Ipv4Addr, Ipv6Addr};

use tokio::net::TcpListener;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    support::init_logging();
    let port = match std::env::args().nth(1) {
        Some(arg) => arg.parse().map_err(|_| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("not a port: {arg}"),
            )
        })?,
        None => 7007,
    };
    let v4 = TcpListener::bind((Ipv4Addr::LOCALHOST, port)).await?;
    let port = v4.local_addr()?.port();
    eprintln!("echoing lines on 127.0.0.1:{port}");
    tokio::spawn(support::serve_echo(v4));
    match TcpListener::bind((Ipv6Addr::LOCALHOST, port)).await {
        Ok(v6) => {
            eprintln!("echoing lines on [::1]:{port}");
            tokio::spawn(support::serve_echo(v6));
        }
        Err(error) => eprintln!("no IPv6 side ([::1]:{port}): {error}"),
    }
    tokio::signal::ctrl_c().await
}
