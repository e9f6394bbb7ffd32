//! The adaptive attempt delay on real loopback sockets: after healthy connects, how long does
//! reaching a new host whose first address is black-holed take, with and without it?
//!
//! `cargo bench --bench adaptive`. The black hole is a backlog-0 listener whose queue is full.

#[path = "../examples/support/loopback.rs"]
mod loopback;

use std::time::{Duration, Instant};

use connect_any::Connector;

const WARM_UP: usize = 50;
const TRIALS: u8 = 5;

/// Warms `connector` up on a healthy listener, then times a connect to a new host whose first
/// address is black-holed.
async fn new_host_after_warm_up(connector: &Connector, trial: u8) -> Duration {
    let healthy = loopback::serve_and_drop("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    for _ in 0..WARM_UP {
        drop(connector.connect(healthy).await.unwrap());
    }
    let hole = loopback::BlackHole::on(&format!("127.0.1.{trial}"))
        .await
        .unwrap();
    let working_addr = format!("127.0.2.{trial}:0").parse().unwrap();
    let working = loopback::serve_and_drop(working_addr).await.unwrap();
    let began = Instant::now();
    let stream = connector.connect(vec![hole.addr, working]).await.unwrap();
    assert_eq!(stream.peer_addr().unwrap(), working);
    began.elapsed()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    println!(
        "new host with a black-holed first address, after {WARM_UP} healthy loopback connects:"
    );
    for (label, adaptive) in [
        ("attempt_delay 250 ms (default)", false),
        ("adaptive_delay(true)", true),
    ] {
        let mut times = Vec::new();
        for trial in 1..=TRIALS {
            let connector = Connector::new().adaptive_delay(adaptive);
            times.push(new_host_after_warm_up(&connector, trial).await);
        }
        times.sort();
        println!(
            "  {label:<32} median {:.1?}  (min {:.1?}, max {:.1?}, {TRIALS} trials)",
            times[times.len() / 2],
            times[0],
            times[times.len() - 1]
        );
    }
}
