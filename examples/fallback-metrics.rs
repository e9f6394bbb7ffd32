//! What Happy Eyeballs hides, counted: many connects through a connector whose event hook
//! counts attempts, wins and fallbacks per family, against an embedded server whose IPv6 side
//! is black-holed. The counters printed are what a service would send to its metrics system.
//!
//! ```text
//! cargo run --example fallback-metrics            # 100 connects
//! cargo run --example fallback-metrics -- 1000    # as many as you like, 100 at a time
//! ```
//!
//! Every connect works, 250 ms late: nothing in the streams says so, only the counters do.

mod support;

use std::net::{Ipv4Addr, SocketAddr};
use std::process::ExitCode;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::time::Duration;

use connect_any::{Connector, EventKind};

/// The counters a metrics system would get, per family of the address dialed.
#[derive(Debug, Default)]
struct Counters {
    /// Attempts started: [IPv6, IPv4].
    attempts: [AtomicUsize; 2],
    /// Connects won: [IPv6, IPv4].
    wins: [AtomicUsize; 2],
    /// Connects won by an address other than the first one tried.
    fallbacks: AtomicUsize,
    /// How long each fallback connect took, from its start to the win (a histogram's input).
    fallback_costs: Mutex<Vec<Duration>>,
}

fn family(addr: &SocketAddr) -> usize {
    usize::from(addr.is_ipv4())
}

impl Counters {
    fn count(&self, kind: &EventKind<'_>, elapsed: Duration) {
        match kind {
            EventKind::AttemptStarted { addr, .. } => {
                self.attempts[family(addr)].fetch_add(1, Relaxed);
            }
            EventKind::AttemptWon { addr, fallback, .. } => {
                self.wins[family(addr)].fetch_add(1, Relaxed);
                if *fallback {
                    self.fallbacks.fetch_add(1, Relaxed);
                    // A short critical section: the hook runs inside the connect's poll.
                    let mut costs = self
                        .fallback_costs
                        .lock()
                        .unwrap_or_else(|e| e.into_inner());
                    costs.push(elapsed);
                }
            }
            _ => {}
        }
    }

    fn median_fallback_cost(&self) -> Option<Duration> {
        let mut costs = self.fallback_costs.lock().ok()?.clone();
        costs.sort();
        costs.get(costs.len() / 2).copied()
    }
}

type Error = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main]
async fn main() -> ExitCode {
    support::init_logging();
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("fallback-metrics: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), Error> {
    let connects: usize = match std::env::args().nth(1) {
        Some(n) => n
            .parse()
            .map_err(|_| format!("not a number of connects: {n}"))?,
        None => 100,
    };
    let working = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
    let working_addr = support::loopback::serve_and_drop(working).await?;
    // The black hole goes on ::1; a machine without IPv6 gets it on 127.0.0.2, counted as
    // IPv4 then (the first address tried still loses).
    let hole = match support::loopback::BlackHole::on("::1").await {
        Ok(hole) => hole,
        Err(error) => {
            eprintln!("no IPv6 loopback ({error}); the black hole is on 127.0.0.2");
            support::loopback::BlackHole::on("127.0.0.2").await?
        }
    };
    let addrs = [hole.addr, working_addr];
    eprintln!(
        "embedded server: {} (black-holed) and {} (serving)",
        hole.addr, working_addr
    );

    let counters = std::sync::Arc::new(Counters::default());
    let counting = counters.clone();
    let connector = Connector::new()
        .on_event(move |event| counting.count(event.kind(), event.elapsed()))
        // Each connect here must pay for the black hole, as a new client would.
        .winner_memory(0, None);

    let mut done = 0;
    while done < connects {
        let batch = (connects - done).min(100);
        let mut connecting = tokio::task::JoinSet::new();
        for _ in 0..batch {
            connecting.spawn(connector.connect(addrs.to_vec()));
        }
        while let Some(connected) = connecting.join_next().await {
            drop(connected??);
        }
        done += batch;
    }

    let [v6_attempts, v4_attempts] = counters.attempts.each_ref().map(|a| a.load(Relaxed));
    let [v6_wins, v4_wins] = counters.wins.each_ref().map(|w| w.load(Relaxed));
    let fallbacks = counters.fallbacks.load(Relaxed);
    let median = counters
        .median_fallback_cost()
        .map_or("none".to_owned(), |cost| format!("{} ms", cost.as_millis()));
    println!("connects {connects}");
    println!("IPv6 attempts {v6_attempts}, IPv6 wins {v6_wins}");
    println!("IPv4 attempts {v4_attempts}, IPv4 wins {v4_wins}");
    println!("fallbacks {fallbacks}, median fallback cost {median}");
    let hole_family = if hole.addr.is_ipv6() { "IPv6" } else { "IPv4" };
    if fallbacks == connects {
        println!("every connect fell back from the black-holed {hole_family} address");
    }
    Ok(())
}
