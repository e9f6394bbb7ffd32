//! Interleaved A/B timing of one healthy connect on loopback: connect-any beside tokio.
//!
//! Criterion measures one function after another, and a loopback connect drifts over a run, so
//! the function measured later looks slower. Here each round runs both variants of a pair, A
//! then B on even rounds and B then A on odd ones, so drift and ordering hit both alike. Every
//! stream is closed with `SO_LINGER` 0 (a reset), so no TIME_WAIT connection piles up: with a
//! normal close, thousands of them fill the kernel's tables and make every later connect
//! slower, which adds the same absolute cost to both sides and hides the difference.
//!
//! The listener runs on an OS thread of its own, not as a task of the runtime being measured:
//! as a task it shares the client's workers, and its accept work is added to both sides alike,
//! which dilutes the difference. The same pairs run in three setups, because where the client
//! runs changes what a connect costs: from `block_on` on a `current_thread` runtime (the I/O
//! driver is polled on the same thread, the cheapest case, where our own work shows most),
//! from a task spawned on a 2-worker `multi_thread` runtime (what a service does), and from
//! `block_on` on that runtime (the old bench's setup: every wake crosses threads, which adds the
//! same few microseconds to both sides).
//!
//! `cargo bench --bench ab` prints, per setup, the median and the 10%-trimmed mean per variant
//! and the ratio of ours (`Connector::connect`) to tokio's, by literal, by name without the
//! answer cache (both sides ask getaddrinfo every time) and by name with it (the default);
//! then bursts of 1,000 concurrent connects. The median ratio comes with its 95% interval
//! from a paired bootstrap over the rounds. With 6,000 rounds a named row's interval was
//! ±1-2% wide on a 2-vCPU machine, as wide as the goals it is read against, so a single
//! run could neither meet nor miss them. 20,000 rounds (about a minute a run) narrow it to
//! ±0.2-0.5% in the rows where connects stay on their CPU; a row where a quarter or more
//! move is two modes, and its interval stays wider.
//!
//! Under each pair a second line says how many connects of each side ended on another CPU than
//! they began on (Linux only), and compares the medians of those that did not. On a virtual
//! machine a connect that tokio hands to the other worker, on the other vCPU, can take twice as
//! long or more, so the times form two modes; when about half of the connects move, the median falls
//! between the modes, and a few points more moves on one side swing the median ratio by 10% or
//! more (BENCHMARKS.md, "0.3: a fourth machine"). The second line tells such a swing from a
//! cost of the code.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::{Duration, Instant};

use connect_any::{Connector, connect_any};
use tokio::net::TcpStream;
use tokio::runtime::{Builder, Runtime};
use tokio::task::JoinSet;

const WARM_UP: usize = 500;
const ROUNDS: usize = 20_000;
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

/// Ours over theirs.
fn ratio(ours: Duration, theirs: Duration) -> f64 {
    ours.as_secs_f64() / theirs.as_secs_f64()
}

/// Resamples behind the interval printed with each median ratio.
const RESAMPLES: usize = 1_000;

/// The 95% interval of the ratio of medians, ours / tokio, by a paired bootstrap: rounds are
/// drawn with replacement, each with both of its connects, so that what a round's two
/// connects share (the machine's drift) stays shared. A row whose interval holds a goal
/// cannot be said to miss it from one run.
fn median_ratio_interval(tokio: &[Duration], ours: &[Duration]) -> (f64, f64) {
    let rounds = tokio.len();
    // xorshift64: a fixed seed, so that a run's interval depends only on its samples.
    let mut state = 0x9E37_79B9_7F4A_7C15_u64;
    let mut draw = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state % rounds as u64) as usize
    };
    let (mut theirs, mut mine) = (Vec::with_capacity(rounds), Vec::with_capacity(rounds));
    let mut ratios: Vec<f64> = (0..RESAMPLES)
        .map(|_| {
            theirs.clear();
            mine.clear();
            for round in std::iter::repeat_with(&mut draw).take(rounds) {
                theirs.push(tokio[round]);
                mine.push(ours[round]);
            }
            let middle = rounds / 2;
            let theirs = *theirs.select_nth_unstable(middle).1;
            let mine = *mine.select_nth_unstable(middle).1;
            ratio(mine, theirs)
        })
        .collect();
    ratios.sort_by(f64::total_cmp);
    (
        ratios[RESAMPLES / 40],
        ratios[RESAMPLES - 1 - RESAMPLES / 40],
    )
}

/// Prints a pair's medians, trimmed means and ratios; `tokio[i]` and `ours[i]` are round `i`.
fn report(pair: &str, tokio: &mut [Duration], ours: &mut [Duration]) {
    let (low, high) = median_ratio_interval(tokio, ours);
    let (tokio_median, tokio_mean) = stats(tokio);
    let (our_median, our_mean) = stats(ours);
    println!(
        "{pair:<8} tokio median {tokio_median:>8.1?} trimmed mean {tokio_mean:>8.1?} | \
         connect-any median {our_median:>8.1?} trimmed mean {our_mean:>8.1?} | \
         ratio median {:.3}x [{low:.3}, {high:.3}], trimmed mean {:.3}x",
        ratio(our_median, tokio_median),
        ratio(our_mean, tokio_mean),
    );
}

/// One timed connect, and whether its thread ended it on another CPU than it began it on.
#[derive(Clone, Copy)]
struct Sample {
    took: Duration,
    moved: bool,
}

/// The CPU the calling thread runs on, where the system tells it (Linux's `sched_getcpu(3)`,
/// which glibc answers from memory the kernel keeps current, without a system call).
fn cpu() -> Option<i32> {
    #[cfg(target_os = "linux")]
    // SAFETY: `sched_getcpu` takes no argument and reads only the calling thread's CPU.
    return Some(unsafe { libc::sched_getcpu() });
    #[cfg(not(target_os = "linux"))]
    return None;
}

/// [`report`] for a pair's samples, then the share of connects that moved to another CPU on
/// each side and the median ratio of those that did not, if the system tells the CPU.
fn report_samples(pair: &str, tokio: &[Sample], ours: &[Sample]) {
    let took = |samples: &[Sample]| samples.iter().map(|s| s.took).collect::<Vec<_>>();
    report(pair, &mut took(tokio), &mut took(ours));
    if cpu().is_none() {
        return;
    }
    let moved = |samples: &[Sample]| {
        let share = samples.iter().filter(|s| s.moved).count() as f64 / samples.len() as f64;
        let mut stayed: Vec<Duration> = samples
            .iter()
            .filter(|s| !s.moved)
            .map(|s| s.took)
            .collect();
        let median = (!stayed.is_empty()).then(|| stats(&mut stayed).0);
        (share * 100.0, median)
    };
    let ((tokio_moved, tokio_stayed), (our_moved, our_stayed)) = (moved(tokio), moved(ours));
    print!(
        "{:<8} moved to another CPU: tokio {tokio_moved:4.1}%, connect-any {our_moved:4.1}%",
        ""
    );
    match (tokio_stayed, our_stayed) {
        (Some(theirs), Some(ours)) => println!(
            " | stayed: medians {theirs:>8.1?} and {ours:>8.1?}, ratio {:.3}x",
            ratio(ours, theirs)
        ),
        _ => println!(),
    }
}

/// Times one connect of `variant` (0: tokio, 1: connect-any) to `target`; the CPU is read
/// outside the timed span.
async fn once(variant: usize, target: &Target, connector: &Connector) -> Sample {
    let cpu_before = cpu();
    let began = Instant::now();
    let stream = match (variant, target) {
        (0, Target::Addr(addr)) => TcpStream::connect(addr).await.unwrap(),
        (_, Target::Addr(addr)) => connector.connect(*addr).await.unwrap(),
        (0, Target::Name(name)) => TcpStream::connect(name.as_str()).await.unwrap(),
        (_, Target::Name(name)) => connector.connect(name.as_str()).await.unwrap(),
    };
    let took = began.elapsed();
    let moved = cpu() != cpu_before;
    reset(stream);
    Sample { took, moved }
}

#[derive(Clone)]
enum Target {
    Addr(SocketAddr),
    Name(String),
}

/// Interleaved rounds of one pair: tokio's times and ours, through `connector`.
async fn pair(target: Target, connector: Connector) -> [Vec<Sample>; 2] {
    for round in 0..WARM_UP {
        once(round % 2, &target, &connector).await;
    }
    let mut times: [Vec<Sample>; 2] = Default::default();
    for round in 0..ROUNDS {
        let first = round % 2;
        for variant in [first, 1 - first] {
            times[variant].push(once(variant, &target, &connector).await);
        }
    }
    times
}

/// Accepts and drops every connection, on an OS thread of its own; the backlog holds a whole
/// burst.
fn listen_on_a_thread(addr: SocketAddr) -> std::io::Result<SocketAddr> {
    let socket = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::STREAM,
        None,
    )?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.bind(&addr.into())?;
    socket.listen(4096)?;
    let listener = std::net::TcpListener::from(socket);
    let addr = listener.local_addr()?;
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            drop(stream);
        }
    });
    Ok(addr)
}

/// Where the client runs.
#[derive(Clone, Copy)]
enum Setup {
    CurrentThreadBlockOn,
    MultiThreadTask,
    MultiThreadBlockOn,
}

impl Setup {
    fn name(self) -> &'static str {
        match self {
            Setup::CurrentThreadBlockOn => "current_thread, from block_on",
            Setup::MultiThreadTask => "multi_thread (2 workers), from a spawned task",
            Setup::MultiThreadBlockOn => "multi_thread (2 workers), from block_on",
        }
    }

    fn runtime(self) -> Runtime {
        let mut builder = match self {
            Setup::CurrentThreadBlockOn => Builder::new_current_thread(),
            _ => {
                let mut builder = Builder::new_multi_thread();
                builder.worker_threads(2);
                builder
            }
        };
        builder.enable_all().build().unwrap()
    }

    fn pair(self, runtime: &Runtime, target: Target, connector: Connector) -> [Vec<Sample>; 2] {
        match self {
            Setup::MultiThreadTask => runtime
                .block_on(runtime.spawn(pair(target, connector)))
                .unwrap(),
            _ => runtime.block_on(pair(target, connector)),
        }
    }
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

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo test --benches` asks bench binaries to list their tests.
    }
    let addr = listen_on_a_thread(SocketAddr::from((Ipv4Addr::LOCALHOST, 0))).unwrap();
    // Both families on one port, so that a connect by name meets a listener on either.
    let _ = listen_on_a_thread(SocketAddr::from((Ipv6Addr::LOCALHOST, addr.port())));
    let name = format!("localhost:{}", addr.port());

    println!("{ROUNDS} rounds per pair (after {WARM_UP} warm-up), A B then B A, reset on close");
    println!("listener on its own OS thread; ours is Connector::connect");
    for setup in [
        Setup::CurrentThreadBlockOn,
        Setup::MultiThreadTask,
        Setup::MultiThreadBlockOn,
    ] {
        println!("{}:", setup.name());
        let runtime = setup.runtime();
        let connector = Connector::new;
        let [tokio, ours] = setup.pair(&runtime, Target::Addr(addr), connector());
        report_samples("literal", &tokio, &ours);
        // Without the answer cache, both sides ask getaddrinfo on every connect: the cost of
        // our machinery around the same lookup.
        let uncached = connector().answer_cache(None);
        let [tokio, ours] = setup.pair(&runtime, Target::Name(name.clone()), uncached);
        report_samples("name", &tokio, &ours);
        // With it (the default), ours asks once.
        let [tokio, ours] = setup.pair(&runtime, Target::Name(name.clone()), connector());
        report_samples("cached", &tokio, &ours);
    }

    let runtime = Setup::MultiThreadTask.runtime();
    let mut bursts: [Vec<Duration>; 2] = Default::default();
    for round in 0..BURST_ROUNDS {
        let first = round % 2;
        for variant in [first, 1 - first] {
            bursts[variant].push(runtime.block_on(burst(variant, addr)));
        }
    }
    println!("{BURST_ROUNDS} rounds of {BURST} concurrent connects, alternating");
    let [tokio, ours] = &mut bursts;
    report("burst", tokio, ours);
}
