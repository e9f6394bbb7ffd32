//! Test doubles shared by the integration tests: a scripted dialer, a fixed resolver, and
//! loopback helpers (a real black hole, descriptor counts).
#![allow(dead_code, unreachable_pub, unused_imports)]

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use connect_any::{Resolve, Resolving};

#[path = "../../examples/support/loopback.rs"]
mod loopback;
pub use loopback::{BlackHole, EofServer, serve_and_drop};
use tokio::net::TcpListener;
use tokio::time::Instant;

/// What a scripted address does when dialed.
#[derive(Clone, Copy, Debug)]
pub enum Step {
    /// Connects after this long.
    Connect(Duration),
    /// Fails with this kind after this long.
    Fail(Duration, io::ErrorKind),
    /// Never answers.
    Hang,
}

pub fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// `127.0.0.1:port` for IPv4 and `[::1]:port` for IPv6: scripted tests dial nothing, but even
/// their addresses stay on loopback.
pub fn v4(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

pub fn v6(port: u16) -> SocketAddr {
    SocketAddr::from(([0, 0, 0, 0, 0, 0, 0, 1], port))
}

/// A stream from the scripted dialer; counts itself among the live objects while it exists.
#[derive(Debug)]
pub struct FakeStream {
    pub addr: SocketAddr,
    _live: Live,
}

#[derive(Debug)]
struct Live(Arc<AtomicUsize>);

impl Live {
    fn new(count: &Arc<AtomicUsize>) -> Self {
        count.fetch_add(1, Ordering::SeqCst);
        Self(count.clone())
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

pub type Dial = Pin<Box<dyn Future<Output = io::Result<FakeStream>> + Send>>;

/// A dialer that plays a script per address and records when each attempt started.
#[derive(Clone, Debug)]
pub struct Script {
    steps: Arc<HashMap<SocketAddr, Step>>,
    began: Instant,
    starts: Arc<Mutex<Vec<(SocketAddr, Duration)>>>,
    /// Dial futures and fake streams still alive.
    live: Arc<AtomicUsize>,
}

impl Script {
    pub fn new(steps: &[(SocketAddr, Step)]) -> Self {
        Self {
            steps: Arc::new(steps.iter().copied().collect()),
            began: Instant::now(),
            starts: Arc::default(),
            live: Arc::default(),
        }
    }

    pub fn dialer(&self) -> impl FnMut(SocketAddr) -> Dial + use<> {
        let script = self.clone();
        move |addr| {
            let step = script.steps.get(&addr).copied().unwrap_or(Step::Hang);
            script
                .starts
                .lock()
                .unwrap()
                .push((addr, script.began.elapsed()));
            let live = Live::new(&script.live);
            let count = script.live.clone();
            Box::pin(async move {
                let _live = live;
                match step {
                    Step::Connect(after) => {
                        tokio::time::sleep(after).await;
                        Ok(FakeStream {
                            addr,
                            _live: Live::new(&count),
                        })
                    }
                    Step::Fail(after, kind) => {
                        tokio::time::sleep(after).await;
                        Err(io::Error::new(kind, format!("scripted failure of {addr}")))
                    }
                    Step::Hang => std::future::pending().await,
                }
            })
        }
    }

    /// Start times of every attempt, in start order.
    pub fn starts(&self) -> Vec<(SocketAddr, Duration)> {
        self.starts.lock().unwrap().clone()
    }

    pub fn start_times(&self) -> Vec<Duration> {
        self.starts().into_iter().map(|(_, at)| at).collect()
    }

    pub fn live(&self) -> usize {
        self.live.load(Ordering::SeqCst)
    }

    pub fn elapsed(&self) -> Duration {
        self.began.elapsed()
    }
}

/// A resolver with a fixed answer per name, and an optional delay. It returns the addresses as
/// given, ports included, so that scripted tests can tell loopback addresses apart by port.
#[derive(Debug, Default)]
pub struct FixedResolver {
    pub answers: HashMap<String, Vec<SocketAddr>>,
    pub delay: Duration,
    pub calls: AtomicUsize,
}

impl FixedResolver {
    pub fn new(name: &str, addrs: &[SocketAddr]) -> Self {
        let mut answers = HashMap::new();
        answers.insert(name.to_owned(), addrs.to_vec());
        Self {
            answers,
            ..Self::default()
        }
    }
}

impl Resolve for FixedResolver {
    fn resolve<'a>(&'a self, host: &'a str, _port: u16) -> Resolving<'a> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        Box::pin(async move {
            tokio::time::sleep(self.delay).await;
            match self.answers.get(host) {
                Some(addrs) => Ok(addrs.clone()),
                None => Err(io::Error::new(io::ErrorKind::NotFound, "no such host")),
            }
        })
    }
}

/// Connects over TCP, then stalls for 30 s before returning if the address is `stalled` (a
/// stand-in for a slow TLS handshake), so that a later attempt wins after the loser connected.
pub async fn connect_stalling(
    addr: SocketAddr,
    stalled: SocketAddr,
) -> io::Result<tokio::net::TcpStream> {
    let stream = tokio::net::TcpStream::connect(addr).await?;
    if addr == stalled {
        tokio::time::sleep(Duration::from_secs(30)).await;
    }
    Ok(stream)
}

/// Says that a test skipped, and why, where `cargo test` shows it: libtest captures what
/// `println!` and `eprintln!` write from a passing test, but not a direct write to stderr.
pub fn skip(reason: &str) {
    use std::io::Write;
    let test = std::thread::current().name().unwrap_or("a test").to_owned();
    let _ = writeln!(std::io::stderr(), "SKIPPED {test}: {reason}");
}

/// Whether this machine can bind `[::1]`; IPv6-only tests skip with a message where it cannot.
pub fn has_ipv6_loopback() -> bool {
    std::net::TcpListener::bind("[::1]:0").is_ok()
}

/// The number of open descriptors of this process.
pub fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .map(|d| d.count())
        .unwrap_or(0)
}

/// An address on loopback with no listener: connects are refused at once.
pub fn refused_addr(ip: &str) -> SocketAddr {
    let listener = std::net::TcpListener::bind((ip, 0)).unwrap();
    listener.local_addr().unwrap()
}

/// Waits (real time, up to 10 s) until `done` holds, and says whether it did.
pub async fn eventually(mut done: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while std::time::Instant::now() < deadline {
        if done() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    done()
}

/// A small deterministic pseudo-random sequence (xorshift), so that storms are reproducible.
#[derive(Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed | 1)
    }

    pub fn below(&mut self, bound: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % bound
    }
}

/// A listener on `ip` with a port the system chose, and its address.
pub async fn listener(ip: &str) -> (TcpListener, SocketAddr) {
    let listener = TcpListener::bind((ip, 0)).await.unwrap();
    let addr = listener.local_addr().unwrap();
    (listener, addr)
}

/// A resolver that answers in parts on the clock: each answer at its time after the lookup
/// starts, in the order given (which must be time order); then the stream ends, or, with
/// `then_hangs`, stays open as a query that never answers does.
#[derive(Clone, Debug, Default)]
pub struct TimedParts {
    pub parts: Vec<(Duration, connect_any::Answer)>,
    pub then_hangs: bool,
}

impl TimedParts {
    /// The answers as a stream, timed from now.
    pub fn answering(&self) -> connect_any::Answering<'static> {
        use futures_util::StreamExt;
        let began = Instant::now();
        let then_hangs = self.then_hangs;
        let timed =
            futures_util::stream::iter(self.parts.clone()).then(move |(at, answer)| async move {
                tokio::time::sleep_until(began + at).await;
                answer
            });
        let end = futures_util::stream::once(async move {
            if then_hangs {
                std::future::pending::<()>().await;
            }
        })
        .filter_map(|()| async { None });
        Box::pin(timed.chain(end))
    }
}

impl Resolve for TimedParts {
    fn resolve<'a>(&'a self, _host: &'a str, _port: u16) -> Resolving<'a> {
        unreachable!("the connector asks for answers in parts")
    }

    fn resolve_in_parts<'a>(&'a self, _host: &'a str, _port: u16) -> connect_any::Answering<'a> {
        self.answering()
    }
}

/// A resolver whose one-shot answers a test changes between connects; a name it was not
/// given has no addresses.
#[derive(Debug, Default)]
pub struct Answers(Mutex<HashMap<String, Vec<SocketAddr>>>);

impl Answers {
    pub fn with(entries: &[(&str, &[SocketAddr])]) -> Arc<Self> {
        let answers = Self::default();
        for (name, addrs) in entries {
            answers.set(name, addrs);
        }
        Arc::new(answers)
    }

    pub fn set(&self, name: &str, addrs: &[SocketAddr]) {
        let mut answers = self.0.lock().unwrap();
        answers.insert(name.to_owned(), addrs.to_vec());
    }
}

impl Resolve for Answers {
    fn resolve<'a>(&'a self, host: &'a str, _port: u16) -> Resolving<'a> {
        let answer = self.0.lock().unwrap().get(host).cloned();
        Box::pin(async move { Ok(answer.unwrap_or_default()) })
    }
}

/// Each attempt of a failed connect: its address and when it started.
pub fn tried(error: &connect_any::ConnectError) -> Vec<(SocketAddr, Duration)> {
    let attempts = error.attempts().iter();
    attempts.map(|a| (a.addr(), a.started())).collect()
}
