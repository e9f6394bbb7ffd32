//! Interleaved A/B timing of one healthy connect on loopback: connect-any beside tokio.
//!
//! Criterion measures one function after another, and a loopback connect drifts over a run, so
//! the function measured later looks slower. Here each round runs both variants of a pair, A
//! then B on even rounds and B then A on odd ones, so drift and ordering hit both alike. Every
//! stream is closed with `SO_LINGER` 0 (a reset), so no TIME_WAIT connection piles up: with a
//! normal close, thousands of them fill the kernel's tables and make every later connect
//! slower, which adds the same absolute cost to both sides and hides the difference.
//!
//! `cargo bench --bench ab` prints the median and the 10%-trimmed mean per variant and the
//! ratio of ours to tokio's, by literal and by name; then bursts of 1,000 concurrent connects.

#[path = "../examples/support/loopback.rs"]
mod loopback;

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::{Duration, Instant};

use connect_any::connect_any;
use tokio::net::TcpStream;
use tokio::task::JoinSet;

const WARM_UP: usize = 500;
const ROUNDS: usize = 6_000;
const BURST: usize = 1000;
const BURST_ROUNDS: usize = 20;

/// Closes with a reset, leaving no TIME_WAIT entry behind.
fn reset(stream: TcpStream) {
    stream.set_zero_linger().unwrap();
    drop(stream);
}

/// Median and mean of the middle 80%.
fn stats(times: &mut [Duration]) -> (Duration, Duration) {
    times.sort();
    let cut = times.len() / 10;
    let middle = &times[cut..times.len() - cut];
    let trimmed = middle.iter().sum::<Duration>() / middle.len() as u32;
    (times[times.len() / 2], trimmed)
}

fn report(pair: &str, tokio: &mut [Duration], ours: &mut [Duration]) {
    let (tokio_median, tokio_mean) = stats(tokio);
    let (our_median, our_mean) = stats(ours);
    let ratio = |ours: Duration, theirs: Duration| ours.as_secs_f64() / theirs.as_secs_f64();
    println!(
        "{pair:<8} tokio median {tokio_median:>8.1?} trimmed mean {tokio_mean:>8.1?} | \
         connect-any median {our_median:>8.1?} trimmed mean {our_mean:>8.1?} | \
         ratio median {:.3}x, trimmed mean {:.3}x",
        ratio(our_median, tokio_median),
        ratio(our_mean, tokio_mean),
    );
}

/// Times one connect of `variant` (0: tokio, 1: connect-any) to `target`.
async fn once(variant: usize, target: &Target<'_>) -> Duration {
    let began = Instant::now();
    let stream = match (variant, target) {
        (0, Target::Addr(addr)) => TcpStream::connect(addr).await.unwrap(),
        (_, Target::Addr(addr)) => connect_any(*addr).await.unwrap(),
        (0, Target::Name(name)) => TcpStream::connect(name).await.unwrap(),
        (_, Target::Name(name)) => connect_any(*name).await.unwrap(),
    };
    let took = began.elapsed();
    reset(stream);
    took
}

enum Target<'a> {
    Addr(SocketAddr),
    Name(&'a str),
}

/// Interleaved rounds of one pair: tokio's times and ours.
async fn pair(target: &Target<'_>) -> [Vec<Duration>; 2] {
    for round in 0..WARM_UP {
        once(round % 2, target).await;
    }
    let mut times: [Vec<Duration>; 2] = Default::default();
    for round in 0..ROUNDS {
        let first = round % 2;
        for variant in [first, 1 - first] {
            times[variant].push(once(variant, target).await);
        }
    }
    times
}

async fn burst(variant: usize, addr: SocketAddr) -> Duration {
    let began = Instant::now();
    let mut all = JoinSet::new();
    for _ in 0..BURST {
        all.spawn(async move {
            match variant {
                0 => TcpStream::connect(addr).await.unwrap(),
                _ => connect_any(addr).await.unwrap(),
            }
        });
    }
    while let Some(stream) = all.join_next().await {
        reset(stream.unwrap());
    }
    began.elapsed()
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

    println!("{ROUNDS} rounds per pair (after {WARM_UP} warm-up), A B then B A, reset on close");
    let [mut tokio, mut ours] = pair(&Target::Addr(addr)).await;
    report("literal", &mut tokio, &mut ours);
    let [mut tokio, mut ours] = pair(&Target::Name(&name)).await;
    report("name", &mut tokio, &mut ours);

    let mut bursts: [Vec<Duration>; 2] = Default::default();
    for round in 0..BURST_ROUNDS {
        let first = round % 2;
        for variant in [first, 1 - first] {
            bursts[variant].push(burst(variant, addr).await);
        }
    }
    println!("{BURST_ROUNDS} rounds of {BURST} concurrent connects, alternating");
    let [tokio, ours] = &mut bursts;
    report("burst", tokio, ours);
}
