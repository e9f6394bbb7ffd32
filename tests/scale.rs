//! Many concurrent connects in one process, mixing healthy, refused and black-holed addresses
//! under an overall timeout: every call returns in time, nothing panics, no descriptor leaks.
//!
//! 1,000 connects run in `cargo test`; 10,000 with `cargo test --test scale -- --ignored`.
//! Each runs in a child process (this binary again) under a raised `ulimit -n`, and is skipped
//! with a message when the limit cannot be raised.

mod common;

use std::net::SocketAddr;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{BlackHole, open_fds, refused_addr, serve_and_drop};
use connect_any::{ConnectError, Connector};
use tokio::task::JoinSet;

const CHILD_ENV: &str = "CONNECT_ANY_SCALE_CONNECTS";
const TIMEOUT: Duration = Duration::from_secs(2);
/// Room for scheduling 10,000 tasks on two cores past the timeout itself.
const SLACK: Duration = Duration::from_secs(2);

#[test]
fn a_thousand_concurrent_connects() {
    run_in_child(1_000, "a_thousand_concurrent_connects");
}

#[test]
#[ignore = "10,000 connects: run with --ignored (see BENCHMARKS.md)"]
fn ten_thousand_concurrent_connects() {
    run_in_child(10_000, "ten_thousand_concurrent_connects");
}

fn run_in_child(connects: usize, name: &str) {
    if let Some(count) = std::env::var_os(CHILD_ENV) {
        return storm(count.to_str().unwrap().parse().unwrap());
    }
    // At the peak every connect holds a socket, those racing a black hole two, and the server
    // holds accepted sockets briefly.
    let limit = connects * 3 / 2 + 1024;
    let output = Command::new("sh")
        .arg("-c")
        .arg(format!(
            r#"ulimit -n {limit} 2>/dev/null || exit 77; exec "$0" "$@""#
        ))
        .arg(std::env::current_exe().unwrap())
        .args([
            name,
            "--exact",
            "--nocapture",
            "--include-ignored",
            "--test-threads",
            "1",
        ])
        .env(CHILD_ENV, connects.to_string())
        .output()
        .expect("the child test runs");
    if output.status.code() == Some(77) {
        common::skip(&format!(
            "cannot raise the open-file limit to {limit} for {connects} connects"
        ));
        return;
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "child failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report = stdout
        .lines()
        .find_map(|l| l.find("scale:").map(|at| &l[at..]));
    println!("{}", report.expect("the child reported its figures"));
}

fn storm(connects: usize) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let healthy = serve_and_drop("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let hole = BlackHole::on("127.0.0.3").await.unwrap();
        let refused = refused_addr("127.0.0.4");
        let mixes: [Vec<SocketAddr>; 5] = [
            vec![healthy],
            vec![refused],
            vec![hole.addr],
            vec![hole.addr, healthy],
            vec![refused, healthy],
        ];
        let connector = Connector::new().timeout(Some(TIMEOUT)).attempt_delay(Duration::from_millis(100));
        let before = open_fds();

        let began = Instant::now();
        let mut all = JoinSet::new();
        for i in 0..connects {
            let (connector, target) = (connector.clone(), mixes[i % mixes.len()].clone());
            all.spawn(async move {
                let began = Instant::now();
                let result = connector.connect(target).await.map(drop);
                (began.elapsed(), result)
            });
        }
        let (mut ok, mut refused_count, mut timed_out, mut slowest) = (0, 0, 0, Duration::ZERO);
        while let Some(joined) = all.join_next().await {
            let (took, result) = joined.expect("no connect panics");
            slowest = slowest.max(took);
            match result {
                Ok(()) => ok += 1,
                Err(ConnectError::AllAttemptsFailed { .. }) => refused_count += 1,
                Err(ConnectError::TimedOut { .. }) => timed_out += 1,
                Err(other) => panic!("unexpected error: {other}"),
            }
        }
        let total = began.elapsed();
        assert!(slowest <= TIMEOUT + SLACK, "a connect took {slowest:?}");
        assert_eq!(ok + refused_count + timed_out, connects);
        assert_eq!(ok, connects * 3 / 5, "healthy, and the two fallbacks to healthy, connect");

        let settled = common::eventually(|| open_fds() == before).await;
        let after = open_fds();
        println!(
            "scale: {connects} concurrent connects in {total:.2?}: {ok} connected, {refused_count} refused, \
             {timed_out} timed out at {TIMEOUT:?}; slowest call {slowest:.2?}; descriptors {before} before, {after} after"
        );
        assert!(settled, "descriptors {before} before, {after} after");
    });
}
