//! Pieces shared by the examples: a line echo server and logging setup.
#![allow(dead_code)]

pub mod dns;
pub mod loopback;

use std::io;

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::codec::{Framed, LinesCodec};

/// Sends logs to stderr, filtered by `RUST_LOG` (nothing by default).
pub fn init_logging() {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(io::stderr)
        .init();
}

/// Serves `listener` forever: every line a client sends comes back to it.
pub async fn serve_echo(listener: TcpListener) {
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                tokio::spawn(async move {
                    if let Err(error) = echo_lines(stream).await {
                        eprintln!("echo to {peer} ended: {error}");
                    }
                });
            }
            Err(error) => eprintln!("accept failed: {error}"),
        }
    }
}

async fn echo_lines(stream: TcpStream) -> io::Result<()> {
    use futures_util::{SinkExt, StreamExt};
    let mut lines = Framed::new(stream, LinesCodec::new_with_max_length(64 * 1024));
    while let Some(line) = lines.next().await {
        let line = line.map_err(io::Error::other)?;
        lines.send(line).await.map_err(io::Error::other)?;
    }
    lines.into_inner().shutdown().await
}
