//! Named connects beside an IP literal, on loopback, through `SystemResolver` (`localhost`
//! from /etc/hosts through getaddrinfo) and `HickoryResolver` (a DNS server on 127.0.0.1),
//! each with the connector's answer cache and without it (hickory then answers from its own
//! cache): interleaved rounds (as in `ab`), reset on close; then bursts of 1,000 concurrent
//! connects. Each round runs the variants in a new random order, so that none always follows
//! the one whose after-effects (a woken blocking-pool thread, hickory's tasks) cost most. The
//! listener and the DNS server run on threads of their own; the connects run on a
//! `current_thread` runtime, then in a task spawned on a two-worker `multi_thread` one.
//!
//! `cargo bench --features hickory --bench resolvers`

#[path = "../examples/support/dns.rs"]
mod dns;

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use connect_any::{Connector, IpFamilies};
use dns::{Behaviour, Zone, resolver, serve_zone_on_a_thread};
use tokio::net::TcpStream;
use tokio::task::JoinSet;

const WARM_UP: usize = 500;
const ROUNDS: usize = 4_000;
const BURST: usize = 1000;
const BURST_ROUNDS: usize = 10;

const VARIANTS: [&str; 6] = [
    "IP literal",
    "SystemResolver, cached",
    "SystemResolver, uncached",
    "HickoryResolver, cached",
    "HickoryResolver, hickory's cache",
    "two addresses, cached (the race)",
];
/// The variants bursts compare: the literal and the cached names.
const BURST_VARIANTS: [usize; 3] = [0, 1, 3];

/// A new random order of the variants for each round (xorshift, fixed seed).
struct Order(u64, [usize; 6]);

impl Order {
    fn new() -> Self {
        Self(0x9e37_79b9_7f4a_7c15, [0, 1, 2, 3, 4, 5])
    }

    fn next(&mut self) -> [usize; 6] {
        for i in (1..self.1.len()).rev() {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.1.swap(i, (self.0 % (i as u64 + 1)) as usize);
        }
        self.1
    }
}

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
    /// By variant, as `VARIANTS` names them.
    connectors: [Connector; 6],
}

/// Answers every name with 127.0.0.1 and 127.0.0.2: a cached name with two addresses, which
/// takes the general path (a race, though the first address connects).
struct Two;

impl connect_any::Resolve for Two {
    fn resolve<'a>(&'a self, _host: &'a str, port: u16) -> connect_any::Resolving<'a> {
        let addrs = vec![
            SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
            SocketAddr::from((Ipv4Addr::new(127, 0, 0, 2), port)),
        ];
        Box::pin(async move { Ok(addrs) })
    }
}

impl Setup {
    fn new(literal: SocketAddr, server: SocketAddr) -> Self {
        // IPv4 only everywhere, so that every variant dials the same one address.
        let only_v4 = Connector::new().ip_families(IpFamilies::V4Only);
        let hickory = only_v4.clone().resolver(resolver(server));
        Self {
            literal,
            connectors: [
                only_v4.clone(),
                only_v4.clone(),
                only_v4.clone().answer_cache(None),
                hickory.clone(),
                hickory.answer_cache(None),
                only_v4.resolver(Two),
            ],
        }
    }

    async fn connect(&self, variant: usize) -> TcpStream {
        let port = self.literal.port();
        let connector = &self.connectors[variant];
        match variant {
            0 => connector.connect(self.literal).await,
            1 | 2 => connector.connect(("localhost", port)).await,
            5 => connector.connect(("two.test", port)).await,
            _ => connector.connect(("bench.test", port)).await,
        }
        .unwrap()
    }
}

/// A listener on 127.0.0.1 that drops what it accepts, on a thread of its own, with a backlog
/// deep enough for the bursts.
fn listener_thread() -> SocketAddr {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    socket
        .bind(&SocketAddr::from((Ipv4Addr::LOCALHOST, 0)).into())
        .unwrap();
    socket.listen(4096).unwrap();
    let listener = std::net::TcpListener::from(socket);
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            drop(stream);
        }
    });
    addr
}

/// The DNS server, answering `bench.test` with loopback at once, on a thread of its own.
fn dns_thread() -> SocketAddr {
    // Both answers positive, so that hickory caches both (a NODATA without SOA is not).
    let v4 = Behaviour::Answer(Duration::ZERO, vec![IpAddr::V4(Ipv4Addr::LOCALHOST)]);
    let v6 = Behaviour::Answer(Duration::ZERO, vec![IpAddr::V6(Ipv6Addr::LOCALHOST)]);
    let any_port = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
    serve_zone_on_a_thread(any_port, Zone::new(v6, v4))
}

async fn measure(setup: Arc<Setup>) {
    for round in 0..WARM_UP {
        let variant = round % VARIANTS.len();
        setup.connect(variant).await.set_zero_linger().unwrap();
    }
    let mut times: [Vec<Duration>; 6] = Default::default();
    let mut order = Order::new();
    for _ in 0..ROUNDS {
        for variant in order.next() {
            let began = Instant::now();
            let stream = setup.connect(variant).await;
            times[variant].push(began.elapsed());
            stream.set_zero_linger().unwrap();
        }
    }
    println!("  {ROUNDS} rounds, each variant once per round in a random order, reset on close");
    let (literal_median, literal_mean) = stats(&mut times[0]);
    for (variant, name) in VARIANTS.iter().enumerate() {
        let (median, mean) = stats(&mut times[variant]);
        println!(
            "  {name:<34} median {median:>8.1?} ({:.3}x literal)  trimmed mean {mean:>8.1?} ({:.3}x)",
            median.as_secs_f64() / literal_median.as_secs_f64(),
            mean.as_secs_f64() / literal_mean.as_secs_f64(),
        );
    }

    let mut bursts: [Vec<Duration>; 6] = Default::default();
    for round in 0..BURST_ROUNDS {
        for step in 0..BURST_VARIANTS.len() {
            let variant = BURST_VARIANTS[(round + step) % BURST_VARIANTS.len()];
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
    println!("  {BURST_ROUNDS} rounds of {BURST} concurrent connects, rotating");
    let (literal_median, _) = stats(&mut bursts[0]);
    for variant in BURST_VARIANTS {
        let (median, _) = stats(&mut bursts[variant]);
        println!(
            "  {BURST} x {:<34} median {median:>8.1?} ({:.3}x literal)",
            VARIANTS[variant],
            median.as_secs_f64() / literal_median.as_secs_f64()
        );
    }
}

fn run_on(
    runtime: tokio::runtime::Runtime,
    spawned: bool,
    measuring: impl Future<Output = ()> + Send + 'static,
) {
    match spawned {
        true => runtime.block_on(async { tokio::spawn(measuring).await.unwrap() }),
        false => runtime.block_on(measuring),
    }
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo test --benches` asks bench binaries to list their tests.
    }
    let literal = SocketAddr::from((Ipv4Addr::LOCALHOST, listener_thread().port()));
    let server = dns_thread();

    println!("current_thread runtime:");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let setup = Arc::new(runtime.block_on(async { Setup::new(literal, server) }));
    run_on(runtime, false, measure(setup));

    println!("a task spawned on a multi_thread runtime (2 workers):");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let setup = Arc::new(runtime.block_on(async { Setup::new(literal, server) }));
    run_on(runtime, true, measure(setup));
}
