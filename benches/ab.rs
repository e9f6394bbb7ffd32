//! Interleaved A/B timing of one connect on loopback: connect-any beside tokio.
//!
//! Criterion measures one function after another, and a loopback connect drifts over a run
//! (the kernel's connection tables fill with closed connections), so the function measured
//! later looks slower. Here every round runs each variant once, in a rotating order, so drift
//! hits all of them alike. Then bursts of 1,000 concurrent connects, alternating likewise.
//! `cargo bench --bench ab` prints median, mean and 90th percentile.

#[path = "../examples/support/loopback.rs"]
mod loopback;

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::{Duration, Instant};

use connect_any::connect_any;
use tokio::net::TcpStream;
use tokio::task::JoinSet;

const ROUNDS: usize = 20_000;
const BURST: usize = 1000;
const BURST_ROUNDS: usize = 40;

fn summary(label: &str, times: &mut [Duration], baseline: Option<f64>) -> f64 {
    times.sort();
    let mean = times.iter().map(Duration::as_secs_f64).sum::<f64>() / times.len() as f64;
    let median = times[times.len() / 2];
    let p90 = times[times.len() * 9 / 10];
    let versus = baseline.map_or(String::new(), |b| {
        format!("  ({:+.1}% mean)", (mean / b - 1.0) * 100.0)
    });
    let mean_time = Duration::from_secs_f64(mean);
    println!("{label:<42} median {median:>9.1?}  mean {mean_time:>9.1?}  p90 {p90:>9.1?}{versus}");
    mean
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo test --benches` asks bench binaries to list their tests.
    }
    let addr = loopback::serve_and_drop(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
        .await
        .unwrap();
    let _ = loopback::serve_and_drop(SocketAddr::from((Ipv6Addr::LOCALHOST, addr.port()))).await;
    let name = format!("localhost:{}", addr.port());
    let mut times: [Vec<Duration>; 4] = Default::default();
    for round in 0..ROUNDS {
        for step in 0..4 {
            let variant = (round + step) % 4;
            let began = Instant::now();
            let stream = match variant {
                0 => TcpStream::connect(addr).await.unwrap(),
                1 => connect_any(addr).await.unwrap(),
                2 => TcpStream::connect(name.as_str()).await.unwrap(),
                _ => connect_any(name.as_str()).await.unwrap(),
            };
            times[variant].push(began.elapsed());
            drop(stream);
        }
    }
    println!("{ROUNDS} rounds, each variant once per round in rotating order");
    let [raw, any, raw_name, any_name] = &mut times;
    let floor = summary("tokio TcpStream::connect(SocketAddr)", raw, None);
    summary("connect_any(SocketAddr)", any, Some(floor));
    let by_name = summary("tokio TcpStream::connect(\"localhost:P\")", raw_name, None);
    summary("connect_any(\"localhost:P\")", any_name, Some(by_name));

    let mut bursts: [Vec<Duration>; 2] = Default::default();
    for round in 0..BURST_ROUNDS {
        for step in 0..2 {
            let variant = (round + step) % 2;
            let began = Instant::now();
            let mut all = JoinSet::new();
            for _ in 0..BURST {
                if variant == 0 {
                    all.spawn(async move { TcpStream::connect(addr).await.map(drop) });
                } else {
                    all.spawn(async move {
                        connect_any(addr)
                            .await
                            .map(drop)
                            .map_err(std::io::Error::from)
                    });
                }
            }
            while let Some(done) = all.join_next().await {
                done.unwrap().unwrap();
            }
            bursts[variant].push(began.elapsed());
        }
    }
    println!("{BURST_ROUNDS} rounds of {BURST} concurrent connects, alternating");
    let [raw_burst, any_burst] = &mut bursts;
    let floor = summary("1000 x tokio TcpStream::connect", raw_burst, None);
    summary("1000 x connect_any", any_burst, Some(floor));
}
