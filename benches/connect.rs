//! Time to connect on loopback: connect-any beside tokio's own `TcpStream::connect`.
//!
//! `cargo bench --bench connect`; criterion's report lands in `target/criterion/report/`.

use std::net::SocketAddr;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::Runtime;

/// A listener that accepts and drops every connection, so the backlog never fills.
fn healthy_listener(rt: &Runtime) -> SocketAddr {
    rt.block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                drop(stream);
            }
        });
        addr
    })
}

fn connect(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let addr = healthy_listener(&rt);
    let mut group = c.benchmark_group("connect");
    group.measurement_time(Duration::from_secs(3));
    group.bench_function("tokio TcpStream::connect(SocketAddr)", |b| {
        b.to_async(&rt)
            .iter(|| async { TcpStream::connect(addr).await.unwrap() })
    });
    group.bench_function("connect_any(SocketAddr)", |b| {
        b.to_async(&rt)
            .iter(|| async { connect_any::connect_any(addr).await.unwrap() })
    });
    group.finish();
}

criterion_group!(benches, connect);
criterion_main!(benches);
