//! Where the time of a named connect goes, beyond tokio's: each round times every variant below
//! once, in an order shuffled anew each round, and the medians are compared.
//!
//! Shuffled rather than rotated: a rotation puts every variant after the same neighbour in nine
//! rounds of ten, and what ran just before changes a connect's time, by what it left in the
//! caches (see BENCHMARKS.md). Shuffled, each variant follows each other one as often.
//!
//! A connect by name through `Connector::connect` (no answer cache) costs our resolver's
//! lookup, our pipeline around it (target, resolution, ordering, memory, race or lone attempt)
//! and the literal connect. The variants take these apart:
//!
//! - `tokio lookup_host + ours by literal`: tokio's lookup, then our literal connect: what a
//!   named connect would cost if our pipeline cost nothing;
//! - `ours, answer at once`: our pipeline with a resolver that answers without waiting, beside
//!   `ours by literal`: the pipeline's own cost with everything in cache;
//! - `ours, answer after a yield`: one more poll through the pipeline (on a `multi_thread`
//!   runtime a yield also sends the task through the scheduler, which costs far more than the
//!   poll);
//! - `ours, answer from the blocking pool` beside `blocking pool + ours by literal`: the
//!   pipeline's cost when the answer comes from another thread, as getaddrinfo's does.
//!
//! `cargo bench --bench named_cost` runs it from `block_on` on a `current_thread` runtime and
//! from a task spawned on a 2-worker `multi_thread` one, the listener on an OS thread of its
//! own, every stream closed with a reset.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use connect_any::{Connector, Resolve, Resolving};
use tokio::net::TcpStream;

const WARM_UP: usize = 300;
const ROUNDS: usize = 3_000;

/// Answers with one address, at once.
struct AtOnce(SocketAddr);

impl Resolve for AtOnce {
    fn resolve<'a>(&'a self, _host: &'a str, _port: u16) -> Resolving<'a> {
        let addr = self.0;
        Box::pin(async move { Ok(vec![addr]) })
    }
}

/// Answers with one address after yielding once to the runtime.
struct AfterAYield(SocketAddr);

impl Resolve for AfterAYield {
    fn resolve<'a>(&'a self, _host: &'a str, _port: u16) -> Resolving<'a> {
        let addr = self.0;
        Box::pin(async move {
            tokio::task::yield_now().await;
            Ok(vec![addr])
        })
    }
}

/// Answers with one address from tokio's blocking pool, the way to getaddrinfo.
struct FromTheBlockingPool(SocketAddr);

impl Resolve for FromTheBlockingPool {
    fn resolve<'a>(&'a self, _host: &'a str, _port: u16) -> Resolving<'a> {
        let addr = self.0;
        Box::pin(async move { Ok(tokio::task::spawn_blocking(move || vec![addr]).await?) })
    }
}

/// Asks tokio's `lookup_host`, as our system resolver asks getaddrinfo.
struct TokioLookup;

impl Resolve for TokioLookup {
    fn resolve<'a>(&'a self, host: &'a str, port: u16) -> Resolving<'a> {
        Box::pin(async move { Ok(tokio::net::lookup_host((host, port)).await?.collect()) })
    }
}

const VARIANTS: [&str; 10] = [
    "tokio by name",
    "ours by name",
    "ours, resolver calling tokio lookup_host",
    "tokio lookup_host + ours by literal",
    "tokio by literal",
    "ours by literal",
    "ours, answer at once",
    "ours, answer after a yield",
    "ours, answer from the blocking pool",
    "blocking pool + ours by literal",
];

struct Connectors {
    system: Connector,
    tokio_lookup: Connector,
    at_once: Connector,
    after_a_yield: Connector,
    blocking_pool: Connector,
}

impl Connectors {
    fn new(addr: SocketAddr) -> Self {
        let uncached = || Connector::new().answer_cache(None);
        Self {
            system: uncached(),
            tokio_lookup: uncached().resolver(TokioLookup),
            at_once: uncached().resolver(AtOnce(addr)),
            after_a_yield: uncached().resolver(AfterAYield(addr)),
            blocking_pool: uncached().resolver(FromTheBlockingPool(addr)),
        }
    }

    /// Times one connect of `variant` (an index into [`VARIANTS`]).
    async fn once(&self, variant: usize, name: &str, addr: SocketAddr) -> Duration {
        let began = Instant::now();
        let stream = match variant {
            0 => TcpStream::connect(name).await,
            1 => self.system.connect(name).await.map_err(Into::into),
            2 => self.tokio_lookup.connect(name).await.map_err(Into::into),
            3 => {
                let first = tokio::net::lookup_host(name).await.unwrap().next().unwrap();
                self.system.connect(first).await.map_err(Into::into)
            }
            4 => TcpStream::connect(addr).await,
            5 => self.system.connect(addr).await.map_err(Into::into),
            6 => self.at_once.connect(name).await.map_err(Into::into),
            7 => self.after_a_yield.connect(name).await.map_err(Into::into),
            8 => self.blocking_pool.connect(name).await.map_err(Into::into),
            _ => {
                let given = tokio::task::spawn_blocking(move || addr).await.unwrap();
                self.system.connect(given).await.map_err(Into::into)
            }
        };
        let took = began.elapsed();
        let stream: TcpStream = stream.unwrap();
        stream.set_zero_linger().unwrap();
        took
    }
}

/// Accepts and drops every connection, on an OS thread of its own.
fn listen_on_a_thread() -> std::io::Result<SocketAddr> {
    let listener = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    let addr = listener.local_addr()?;
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            drop(stream);
        }
    });
    Ok(addr)
}

fn median(times: &mut [Duration]) -> Duration {
    times.sort();
    times[times.len() / 2]
}

/// Interleaved rounds of every variant, each round in a new order; the median of each.
async fn medians(connectors: Connectors, name: String, addr: SocketAddr) -> Vec<Duration> {
    let mut times: Vec<Vec<Duration>> = vec![Vec::with_capacity(ROUNDS); VARIANTS.len()];
    let mut order: Vec<usize> = (0..VARIANTS.len()).collect();
    let mut shuffler = Shuffler(0x9e37_79b9_7f4a_7c15);
    for round in 0..WARM_UP + ROUNDS {
        shuffler.shuffle(&mut order);
        for &variant in &order {
            let took = connectors.once(variant, &name, addr).await;
            if round >= WARM_UP {
                times[variant].push(took);
            }
        }
    }
    times.iter_mut().map(|t| median(t)).collect()
}

/// Fisher-Yates over xorshift64: the same orders on every run, and no dependency for them.
struct Shuffler(u64);

impl Shuffler {
    fn shuffle(&mut self, items: &mut [usize]) {
        for last in (1..items.len()).rev() {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            let pick = (self.0 % (last as u64 + 1)) as usize;
            items.swap(last, pick);
        }
    }
}

fn report(medians: &[Duration]) {
    for (variant, took) in VARIANTS.iter().zip(medians) {
        let ratio = took.as_secs_f64() / medians[0].as_secs_f64();
        println!("  {variant:<42} {took:>8.1?}  {ratio:.3}x tokio by name");
    }
    let micros = |a: usize, b: usize| (medians[a].as_secs_f64() - medians[b].as_secs_f64()) * 1e6;
    for (what, cost) in [
        ("our pipeline, answer at once", micros(6, 5)),
        ("our pipeline, answer after a yield", micros(7, 5)),
        ("our pipeline, answer from another thread", micros(8, 9)),
        ("our system resolver against tokio's lookup", micros(1, 2)),
        ("ours by name against tokio by name", micros(1, 0)),
    ] {
        println!("  {what:<42} {cost:+8.1} µs");
    }
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo test --benches` asks bench binaries to list their tests.
    }
    let addr = listen_on_a_thread().unwrap();
    // `localhost` must reach the listener by its IPv4 address, whatever else it resolves to.
    let name = format!("localhost:{}", addr.port());
    println!(
        "{ROUNDS} rounds (after {WARM_UP} warm-up), each variant once per round in a shuffled order, medians"
    );
    println!("current_thread, from block_on:");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    report(&runtime.block_on(medians(Connectors::new(addr), name.clone(), addr)));
    println!("multi_thread (2 workers), from a spawned task:");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let spawned = runtime.spawn(medians(Connectors::new(addr), name, addr));
    report(&runtime.block_on(spawned).unwrap());
}
