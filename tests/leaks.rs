//! No descriptor leaks: the process's open descriptors are counted before and after many races.
//! The only test in its binary, so that no other test opens descriptors meanwhile.

mod common;

use std::sync::atomic::Ordering::SeqCst;
use std::time::Duration;

use common::{BlackHole, EofServer, connect_stalling, eventually, open_fds};
use connect_any::Connector;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_descriptor_outlives_a_race() {
    const RUNS: usize = 200;
    let slow = EofServer::start("127.0.0.1").await;
    let fast = EofServer::start("127.0.0.2").await;
    let (slow_addr, fast_addr) = (slow.addr, fast.addr);
    let hole = BlackHole::on("127.0.0.3").await.unwrap();
    let hole2 = BlackHole::on("127.0.0.4").await.unwrap();
    let connector = Connector::new().attempt_delay(Duration::from_millis(10));
    // Warm up the runtime's lazily opened descriptors before the first count.
    drop(connector.connect(fast_addr).await.unwrap());
    // Accepted and closed by the server too, so that no descriptor of it is counted.
    let accepted = || fast.accepted.load(SeqCst);
    assert!(eventually(|| accepted() == 1 && fast.open() == 0).await);
    let before = open_fds();

    // Races with a loser that had connected: the slow address stalls after connecting.
    for _ in 0..RUNS {
        let stream = connector
            .connect_with(vec![slow_addr, fast_addr], |addr| {
                connect_stalling(addr, slow_addr)
            })
            .await
            .unwrap();
        assert_eq!(stream.peer_addr().unwrap(), fast_addr);
    }
    let all_closed = eventually(|| {
        let accepted = slow.accepted.load(SeqCst) + fast.accepted.load(SeqCst);
        accepted == 1 + 2 * RUNS && slow.open() + fast.open() == 0
    })
    .await;
    assert!(
        all_closed,
        "{} connections left open",
        slow.open() + fast.open()
    );
    eventually(|| open_fds() == before).await;
    let after_races = open_fds();

    // Connects cancelled mid-race: two black-holed attempts in flight when the future drops
    // (the third would connect at 20 ms).
    // A VM can stall the runtime past the 20 ms of the third attempt now and then; such a
    // connect ends on its own, and its descriptors must be gone all the same. Most must be cut.
    let mut ended = Vec::new();
    for _ in 0..RUNS {
        let connect = connector.connect(vec![hole.addr, hole2.addr, slow_addr]);
        if let Ok(result) = tokio::time::timeout(Duration::from_millis(15), connect).await {
            ended.push(format!("{:?}", result.map(|stream| stream.peer_addr())));
        }
    }
    assert!(
        ended.len() <= RUNS / 10,
        "{} of {RUNS} races ended before they were cut: {ended:?}",
        ended.len()
    );
    eventually(|| open_fds() == before).await;
    let after_cancels = open_fds();

    println!(
        "open descriptors: {before} before, {after_races} after {RUNS} races with losers, {after_cancels} after {RUNS} cut connects ({} ended first: {ended:?})",
        ended.len()
    );
    assert_eq!(after_races, before);
    assert_eq!(after_cancels, before);
}
