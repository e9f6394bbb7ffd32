//! Named connects through `HickoryResolver` with a warm cache, beside `SystemResolver`
//! (`localhost` from /etc/hosts through getaddrinfo) and an IP literal, on loopback:
//! interleaved rounds (as in `ab`), reset on close; then bursts of 1,000 concurrent connects.
//!
//! `cargo bench --features hickory --bench resolvers`

#[path = "../examples/support/dns.rs"]
mod dns;
#[path = "../examples/support/loopback.rs"]
mod loopback;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::{Duration, Instant};

use connect_any::{Connector, IpFamilies};
use dns::{Behaviour, dns_server, resolver};
use tokio::net::TcpStream;
use tokio::task::JoinSet;

const WARM_UP: usize = 500;
const ROUNDS: usize = 4_000;
const BURST: usize = 1000;
const BURST_ROUNDS: usize = 10;

const VARIANTS: [&str; 3] = [
    "IP literal",
    "HickoryResolver, warm cache",
    "SystemResolver (localhost)",
];

/// Median and mean of the middle 80%.
fn stats(times: &mut [Duration]) -> (Duration, Duration) {
    times.sort();
    let cut = times.len() / 10;
    let middle = &times[cut..times.len() - cut];
    (
        times[times.len() / 2],
        middle.iter().sum::<Duration>() / middle.len() as u32,
    )
}

struct Setup {
    literal: SocketAddr,
    hickory: Connector,
    system: Connector,
}

impl Setup {
    async fn connect(&self, variant: usize) -> TcpStream {
        let port = self.literal.port();
        match variant {
            0 => self.system.connect(self.literal).await,
            1 => self.hickory.connect(("bench.test", port)).await,
            _ => self.system.connect(("localhost", port)).await,
        }
        .unwrap()
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo test --benches` asks bench binaries to list their tests.
    }
    let literal = loopback::serve_and_drop(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
        .await
        .unwrap();
    // Both answers positive, so that hickory caches both (a NODATA without SOA is not).
    let loopback_v4 = Behaviour::Answer(Duration::ZERO, vec![IpAddr::V4(Ipv4Addr::LOCALHOST)]);
    let loopback_v6 = Behaviour::Answer(Duration::ZERO, vec![IpAddr::V6(Ipv6Addr::LOCALHOST)]);
    let server = dns_server(loopback_v6, loopback_v4).await;
    // IPv4 only everywhere, so that every variant dials the same one address.
    let only_v4 = Connector::new().ip_families(IpFamilies::V4Only);
    let setup = Setup {
        literal,
        hickory: only_v4.clone().resolver(resolver(server)),
        system: only_v4,
    };
    for round in 0..WARM_UP {
        setup.connect(round % 3).await.set_zero_linger().unwrap();
    }
    let mut times: [Vec<Duration>; 3] = Default::default();
    for round in 0..ROUNDS {
        for step in 0..3 {
            let variant = (round + step) % 3;
            let began = Instant::now();
            let stream = setup.connect(variant).await;
            times[variant].push(began.elapsed());
            stream.set_zero_linger().unwrap();
        }
    }
    println!("{ROUNDS} rounds, each variant once per round in rotating order, reset on close");
    let (literal_median, literal_mean) = stats(&mut times[0]);
    for (variant, name) in VARIANTS.iter().enumerate() {
        let (median, mean) = stats(&mut times[variant]);
        println!(
            "{name:<30} median {median:>8.1?} ({:.3}x literal)  trimmed mean {mean:>8.1?} ({:.3}x)",
            median.as_secs_f64() / literal_median.as_secs_f64(),
            mean.as_secs_f64() / literal_mean.as_secs_f64(),
        );
    }

    let mut bursts: [Vec<Duration>; 3] = Default::default();
    let setup = std::sync::Arc::new(setup);
    for round in 0..BURST_ROUNDS {
        for step in 0..3 {
            let variant = (round + step) % 3;
            let began = Instant::now();
            let mut all = JoinSet::new();
            for _ in 0..BURST {
                let setup = setup.clone();
                all.spawn(async move { setup.connect(variant).await });
            }
            while let Some(stream) = all.join_next().await {
                stream.unwrap().set_zero_linger().unwrap();
            }
            bursts[variant].push(began.elapsed());
        }
    }
    println!("{BURST_ROUNDS} rounds of {BURST} concurrent connects, rotating");
    let (literal_median, _) = stats(&mut bursts[0]);
    for (variant, name) in VARIANTS.iter().enumerate() {
        let (median, _) = stats(&mut bursts[variant]);
        println!(
            "1000 x {name:<30} median {median:>8.1?} ({:.3}x literal)",
            median.as_secs_f64() / literal_median.as_secs_f64()
        );
    }
}
