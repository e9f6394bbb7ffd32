//! Time to connect, on loopback only.
//!
//! - `connect`: one connect to a healthy listener: tokio's `TcpStream::connect` (the floor)
//!   beside `connect_any`, by IP literal and by the name `localhost`.
//! - `race`: the race machinery alone, with an in-memory dialer, for 1, 2, 8 and 64 addresses.
//! - `burst`: 1,000 concurrent connects to one listener, connect-any beside tokio.
//! - `memory`: the winner memory's lock under concurrent named connects, on and off.
//!
//! `cargo bench --bench connect`; criterion's report is `target/criterion/report/index.html`.

#[path = "../examples/support/loopback.rs"]
mod loopback;

use std::future::ready;
use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use connect_any::{Connector, Resolve, Resolving, connect_any};
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use tokio::net::TcpStream;
use tokio::runtime::Runtime;
use tokio::task::JoinSet;

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// A healthy listener on 127.0.0.1, and on [::1] at the same port where the machine has it, so
/// that `localhost` works whichever address the resolver puts first.
fn healthy_localhost(rt: &Runtime) -> SocketAddr {
    let v4 = rt
        .block_on(loopback::serve_and_drop(SocketAddr::from((
            Ipv4Addr::LOCALHOST,
            0,
        ))))
        .unwrap();
    if let Err(error) = rt.block_on(loopback::serve_and_drop(SocketAddr::from((
        Ipv6Addr::LOCALHOST,
        v4.port(),
    )))) {
        eprintln!("no [::1] listener ({error}); localhost benches use IPv4 only");
    }
    v4
}

fn connect(c: &mut Criterion) {
    let rt = runtime();
    let addr = healthy_localhost(&rt);
    let name = format!("localhost:{}", addr.port());
    let mut group = c.benchmark_group("connect");
    group.measurement_time(Duration::from_secs(4));
    group.bench_function("tokio TcpStream::connect(SocketAddr)", |b| {
        b.to_async(&rt)
            .iter(|| async { TcpStream::connect(addr).await.unwrap() })
    });
    group.bench_function("connect_any(SocketAddr)", |b| {
        b.to_async(&rt)
            .iter(|| async { connect_any(addr).await.unwrap() })
    });
    group.bench_function("tokio TcpStream::connect(\"localhost:P\")", |b| {
        b.to_async(&rt)
            .iter(|| async { TcpStream::connect(name.as_str()).await.unwrap() })
    });
    group.bench_function("connect_any(\"localhost:P\")", |b| {
        b.to_async(&rt)
            .iter(|| async { connect_any(name.as_str()).await.unwrap() })
    });
    group.finish();
}

fn race(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let connector = Connector::new();
    let mut group = c.benchmark_group("race");
    for count in [1u16, 2, 8, 64] {
        let addrs: Vec<SocketAddr> = (1..=count)
            .map(|port| SocketAddr::from((Ipv4Addr::LOCALHOST, port)))
            .collect();
        let last = addrs[addrs.len() - 1];
        group.bench_with_input(
            BenchmarkId::new("first connects", count),
            &addrs,
            |b, addrs| {
                b.to_async(&rt).iter(|| async {
                    connector
                        .connect_with(addrs.as_slice(), |addr| ready(Ok(addr)))
                        .await
                        .unwrap()
                })
            },
        );
        group.bench_with_input(
            BenchmarkId::new("all but last fail", count),
            &addrs,
            |b, addrs| {
                b.to_async(&rt).iter(|| async {
                    let dial = |addr| {
                        ready(if addr == last {
                            Ok(addr)
                        } else {
                            Err(io::ErrorKind::ConnectionRefused.into())
                        })
                    };
                    connector
                        .connect_with(addrs.as_slice(), dial)
                        .await
                        .unwrap()
                })
            },
        );
    }
    group.finish();
}

const BURST: usize = 1000;

fn burst(c: &mut Criterion) {
    let rt = runtime();
    let addr = rt
        .block_on(loopback::serve_and_drop(SocketAddr::from((
            Ipv4Addr::LOCALHOST,
            0,
        ))))
        .unwrap();
    let mut group = c.benchmark_group("burst");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(5));
    group.bench_function("1000 x tokio TcpStream::connect", |b| {
        b.to_async(&rt).iter(|| async {
            let mut all = JoinSet::new();
            for _ in 0..BURST {
                all.spawn(TcpStream::connect(addr));
            }
            while let Some(done) = all.join_next().await {
                done.unwrap().unwrap();
            }
        })
    });
    group.bench_function("1000 x connect_any", |b| {
        b.to_async(&rt).iter(|| async {
            let mut all = JoinSet::new();
            for _ in 0..BURST {
                all.spawn(connect_any(addr));
            }
            while let Some(done) = all.join_next().await {
                done.unwrap().unwrap();
            }
        })
    });
    group.finish();
}

/// Answers every name at once with the same two loopback addresses.
#[derive(Debug)]
struct Instant2;

impl Resolve for Instant2 {
    fn resolve<'a>(&'a self, _host: &'a str, port: u16) -> Resolving<'a> {
        let v6 = SocketAddr::from((Ipv6Addr::LOCALHOST, port));
        let v4 = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        Box::pin(ready(Ok(vec![v6, v4])))
    }
}

const PER_TASK: usize = 1000;

/// The winner memory's lock under contention: two worker threads, each running 1,000 named
/// connects (instant resolver, in-memory dialer) to 16 hosts, with the memory on and off.
fn memory(c: &mut Criterion) {
    let rt = runtime();
    let mut group = c.benchmark_group("memory");
    group.sample_size(20);
    for (label, capacity) in [("on", 1024), ("off", 0)] {
        let connector = Connector::new()
            .resolver(Instant2)
            .winner_memory(capacity, Duration::from_secs(600));
        group.bench_function(
            format!("2 x {PER_TASK} named connects, memory {label}"),
            |b| {
                b.to_async(&rt).iter(|| async {
                    let mut tasks = JoinSet::new();
                    for task in 0..2 {
                        let connector = connector.clone();
                        tasks.spawn(async move {
                            for i in 0..PER_TASK {
                                let host = ("host.test", 1 + ((task * PER_TASK + i) % 16) as u16);
                                connector
                                    .connect_with(host, |addr| ready(Ok(addr)))
                                    .await
                                    .unwrap();
                            }
                        });
                    }
                    while let Some(done) = tasks.join_next().await {
                        done.unwrap();
                    }
                })
            },
        );
    }
    group.finish();
}

criterion_group!(benches, connect, race, burst, memory);
criterion_main!(benches);
