//! Late losers: attempts that complete just after the winner, or that ignore cancellation until
//! they complete, must never leak or be returned. The only test in its binary, because it
//! counts the process's descriptors.

mod common;

use std::net::SocketAddr;
use std::sync::atomic::Ordering::SeqCst;
use std::time::Duration;

use common::{EofServer, eventually, open_fds};
use connect_any::Connector;
use tokio::net::TcpStream;
use tokio::time::{Instant, sleep_until};

const RUNS: usize = 100;

async fn connected_at(addr: SocketAddr, at: Instant) -> std::io::Result<TcpStream> {
    let stream = TcpStream::connect(addr).await?;
    sleep_until(at).await;
    Ok(stream)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_losers_are_closed_and_never_returned() {
    let first = EofServer::start("127.0.0.1").await;
    let second = EofServer::start("127.0.0.2").await;
    let connector = Connector::new().attempt_delay(Duration::from_millis(10));
    drop(TcpStream::connect(first.addr).await.unwrap());
    assert!(eventually(|| first.open() == 0).await);
    let before = open_fds();

    for run in 0..RUNS {
        // Both attempts hold a connected stream until the same instant, so both are ready in
        // the same poll; or the loser ignores cancellation and finishes 1 ms after the winner.
        let finish = Instant::now() + Duration::from_millis(30);
        let ignores_cancellation = run % 2 == 1;
        let (a, b) = (first.addr, second.addr);
        let stream = connector
            .connect_with(vec![a, b], |addr| async move {
                if addr == a {
                    return connected_at(a, finish).await;
                }
                if ignores_cancellation {
                    let late = finish + Duration::from_millis(1);
                    return tokio::spawn(connected_at(b, late)).await.unwrap();
                }
                connected_at(b, finish).await
            })
            .await
            .unwrap();
        assert_eq!(
            stream.peer_addr().unwrap(),
            a,
            "run {run}: the first to connect wins"
        );
        let loser_closed =
            eventually(|| second.accepted.load(SeqCst) == run + 1 && second.open() == 0).await;
        assert!(loser_closed, "run {run}: the late loser was left open");
        assert!(
            eventually(|| first.open() == 1).await,
            "run {run}: exactly the winner stays open"
        );
        drop(stream);
        assert!(eventually(|| first.open() == 0).await);
    }
    assert_eq!(
        second.accepted.load(std::sync::atomic::Ordering::SeqCst),
        RUNS
    );
    eventually(|| open_fds() == before).await;
    let after = open_fds();
    println!("late losers: {RUNS} runs, descriptors {before} before and {after} after");
    assert_eq!(after, before);
}
