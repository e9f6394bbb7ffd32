//! Connects by name through a DNS server on 127.0.0.1 whose answers take 20 ms (a server one
//! WAN round trip away): ten in a row, the one after the records' 1 s TTL ran out, and three
//! while the server is silent; through tokio, and connect-any with `SystemResolver` and
//! `HickoryResolver`, without and with the answer cache.
//!
//! NAT64 is off: the namespace has no IPv4 address but loopback, which would make the
//! connector learn a NAT64 prefix from the same server first.
//!
//! `cargo bench --features hickory --bench dns_cache` measures `HickoryResolver` alone.
//! `bash benches/dns-cache.sh` (root) runs it where the system resolver asks that server too:
//! in new network and mount namespaces whose `/etc/resolv.conf` names 127.0.0.1 (one try,
//! 1 s timeout), with the server on port 53.

#[path = "../examples/support/dns.rs"]
mod dns;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use connect_any::{AnswerCache, Connector, Nat64, SystemResolver};
use dns::{Behaviour, Zone, resolver_waiting, serve_zone_on_a_thread};

const ANSWER_TIME: Duration = Duration::from_millis(20);
const TTL: Duration = Duration::from_secs(1);

fn answering(zone: &Zone) {
    let loopback = vec![IpAddr::V4(Ipv4Addr::LOCALHOST)];
    zone.set(
        Behaviour::Answer(ANSWER_TIME, Vec::new()),
        Behaviour::Answer(ANSWER_TIME, loopback),
    );
}

/// The zone, served on `addr` from a thread of its own.
fn dns_thread(addr: SocketAddr) -> (Arc<Zone>, SocketAddr) {
    let zone = Zone::new(Behaviour::Drop, Behaviour::Drop);
    answering(&zone);
    zone.set_ttl(TTL.as_secs() as u32);
    zone.with_soa();
    let served = serve_zone_on_a_thread(addr, zone.clone());
    (zone, served)
}

/// A listener on 127.0.0.1 that drops what it accepts, on a thread of its own.
fn listener_thread() -> u16 {
    let listener = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            drop(stream);
        }
    });
    port
}

enum Way {
    Tokio,
    Connector(Connector),
}

impl Way {
    /// One connect to `name:port`: how long it took, and whether it failed.
    async fn connect(&self, name: &str, port: u16) -> (Duration, bool) {
        let began = Instant::now();
        let failed = match self {
            Way::Tokio => tokio::net::TcpStream::connect((name, port)).await.is_err(),
            Way::Connector(connector) => connector.connect((name, port)).await.is_err(),
        };
        (began.elapsed(), failed)
    }
}

fn shown((took, failed): (Duration, bool)) -> String {
    match failed {
        true => format!("failed after {took:.1?}"),
        false => format!("{took:.2?}"),
    }
}

async fn row(label: &str, way: Way, name: &str, port: u16, zone: &Zone) {
    answering(zone);
    let mut ten = Vec::new();
    for _ in 0..10 {
        ten.push(way.connect(name, port).await);
    }
    let first = ten[0];
    let mut rest: Vec<Duration> = ten[1..].iter().map(|(took, _)| *took).collect();
    rest.sort();
    let failures = ten.iter().filter(|(_, failed)| *failed).count();
    tokio::time::sleep(TTL + Duration::from_millis(100)).await;
    let after_ttl = way.connect(name, port).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    zone.set(Behaviour::Drop, Behaviour::Drop);
    tokio::time::sleep(TTL + Duration::from_millis(100)).await;
    let mut silent = Vec::new();
    for _ in 0..3 {
        silent.push(shown(way.connect(name, port).await));
    }
    println!(
        "| {label} | {} | {:.2?} | {} | {} |{}",
        shown(first),
        rest[rest.len() / 2],
        shown(after_ttl),
        silent.join(", "),
        match failures {
            0 => String::new(),
            n => format!(" ({n} of ten failed)"),
        }
    );
    // Let refreshes still asking the silent server end before the next row.
    answering(zone);
    tokio::time::sleep(Duration::from_millis(1200)).await;
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo test --benches` asks bench binaries to list their tests.
    }
    let system = std::env::args().any(|a| a == "--system");
    let bind = match system {
        true => "127.0.0.1:53",
        false => "127.0.0.1:0",
    };
    let (zone, server) = dns_thread(bind.parse().unwrap());
    let port = listener_thread();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let cache = || AnswerCache::new().default_ttl(TTL);
        let base = || Connector::new().nat64(Nat64::Off);
        let hickory = || resolver_waiting(server, Duration::from_secs(1));
        println!(
            "DNS answers after {ANSWER_TIME:?}, records' TTL {TTL:?}; the silent server drops every query"
        );
        println!("| resolver | first | median of the next nine | after the TTL ran out | while the server is silent |");
        println!("|---|---|---|---|---|");
        if system {
            row("tokio `TcpStream::connect`", Way::Tokio, "a.test", port, &zone).await;
            let uncached = base().resolver(SystemResolver).answer_cache(None);
            row("`SystemResolver`, no cache", Way::Connector(uncached), "b.test", port, &zone).await;
            let cached = base().answer_cache(cache());
            row("`SystemResolver`, cached", Way::Connector(cached), "c.test", port, &zone).await;
        } else {
            println!("(`SystemResolver` and tokio skipped: run `bash benches/dns-cache.sh` for them)");
        }
        let uncached = base().resolver(hickory()).answer_cache(None);
        row("`HickoryResolver`, its own cache only", Way::Connector(uncached), "d.test", port, &zone).await;
        let cached = base().resolver(hickory()).answer_cache(cache());
        row("`HickoryResolver`, cached", Way::Connector(cached), "e.test", port, &zone).await;
    });
}
