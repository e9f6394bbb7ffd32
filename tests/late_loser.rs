//! Late losers: attempts that complete just after the winner, or that ignore cancellation until
//! they complete, must never leak or be returned. The only test in its binary, because it
//! counts the process's descriptors.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering::SeqCst;
use std::time::Duration;

use common::{EofServer, eventually, open_fds};
use connect_any::Connector;
use tokio::net::TcpStream;
use tokio::sync::Barrier;

const RUNS: usize = 100;

/// Connects to `addr`, then waits until both attempts of the race have connected.
async fn connected_together(addr: SocketAddr, both: &Barrier) -> std::io::Result<TcpStream> {
    let stream = TcpStream::connect(addr).await?;
    both.wait().await;
    Ok(stream)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_losers_are_closed_and_never_returned() {
    let first = EofServer::start("127.0.0.1").await;
    let second = EofServer::start("127.0.0.2").await;
    let connector = Connector::new().attempt_delay(Duration::from_millis(10));
    drop(TcpStream::connect(first.addr).await.unwrap());
    // Accepted and closed by the server too, so that no descriptor of it is counted.
    assert!(eventually(|| first.accepted.load(SeqCst) == 1 && first.open() == 0).await);
    let before = open_fds();

    let (a, b) = (first.addr, second.addr);
    let (mut a_won, mut b_won) = (0, 0);
    for run in 0..RUNS {
        // Neither attempt returns before both have connected, however slow the machine: they
        // become ready together, or the second ignores cancellation and finishes 1 ms after
        // the first (a task of its own that dropping the attempt does not stop).
        let both = Arc::new(Barrier::new(2));
        let ignores_cancellation = run % 2 == 1;
        let stream = connector
            .connect_with(vec![a, b], |addr| {
                let both = both.clone();
                async move {
                    if addr == a {
                        return connected_together(a, &both).await;
                    }
                    if !ignores_cancellation {
                        return connected_together(b, &both).await;
                    }
                    let late = tokio::spawn(async move {
                        let stream = connected_together(b, &both).await?;
                        tokio::time::sleep(Duration::from_millis(1)).await;
                        Ok(stream)
                    });
                    late.await.unwrap()
                }
            })
            .await
            .unwrap();
        let winner = stream.peer_addr().unwrap();
        if ignores_cancellation {
            assert_eq!(
                winner, a,
                "run {run}: the loser finished 1 ms after the winner"
            );
        }
        let (won, lost) = if winner == a {
            a_won += 1;
            (&first, &second)
        } else {
            b_won += 1;
            (&second, &first)
        };
        let accepted = |server: &EofServer| server.accepted.load(SeqCst);
        let settled = eventually(|| {
            accepted(&first) + accepted(&second) == 1 + 2 * (run + 1) && lost.open() == 0
        })
        .await;
        assert!(
            settled,
            "run {run}: {winner} won; the loser has {} connections open ({} accepted so far)",
            lost.open(),
            accepted(&first) + accepted(&second)
        );
        assert!(
            eventually(|| won.open() == 1).await,
            "run {run}: exactly the winner's connection stays open"
        );
        drop(stream);
        assert!(eventually(|| first.open() + second.open() == 0).await);
    }
    eventually(|| open_fds() == before).await;
    let after = open_fds();
    println!(
        "late losers: {RUNS} runs ({a_won} won by the first address, {b_won} by the second), descriptors {before} before and {after} after"
    );
    assert_eq!(after, before);
}
