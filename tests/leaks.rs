//! No descriptor leaks: the process's open descriptors are counted before and after many races.
//! The only test in its binary, so that no other test opens descriptors meanwhile.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::{BlackHole, open_fds};
use connect_any::Connector;
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};

/// Accepts forever, reads each connection to EOF and counts the closed ones.
fn serve_until_eof(listener: TcpListener, closed: Arc<AtomicUsize>) {
    tokio::spawn(async move {
        loop {
            let (mut stream, _) = listener.accept().await.unwrap();
            let closed = closed.clone();
            tokio::spawn(async move {
                let mut buf = [0u8; 16];
                while stream.read(&mut buf).await.is_ok_and(|n| n > 0) {}
                closed.fetch_add(1, Ordering::SeqCst);
            });
        }
    });
}

async fn wait_for(count: &AtomicUsize, target: usize) {
    let waited = tokio::time::timeout(Duration::from_secs(20), async {
        while count.load(Ordering::SeqCst) < target {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    });
    assert!(
        waited.await.is_ok(),
        "only {} of {target} connections closed",
        count.load(Ordering::SeqCst)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_descriptor_outlives_a_race() {
    const RUNS: usize = 200;
    let slow = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let fast = TcpListener::bind("127.0.0.2:0").await.unwrap();
    let (slow_addr, fast_addr) = (slow.local_addr().unwrap(), fast.local_addr().unwrap());
    let closed = Arc::new(AtomicUsize::new(0));
    serve_until_eof(slow, closed.clone());
    serve_until_eof(fast, closed.clone());
    let hole = BlackHole::new("127.0.0.3").await.unwrap();
    let hole2 = BlackHole::new("127.0.0.4").await.unwrap();
    let connector = Connector::new().attempt_delay(Duration::from_millis(10));
    // Warm up the runtime's lazily opened descriptors before the first count.
    drop(connector.connect(fast_addr).await.unwrap());
    wait_for(&closed, 1).await;
    let before = open_fds();

    // Races with a loser that had connected: the slow address stalls after connecting.
    for _ in 0..RUNS {
        let stream = connector
            .connect_with(vec![slow_addr, fast_addr], |addr| async move {
                let stream = TcpStream::connect(addr).await?;
                if addr == slow_addr {
                    tokio::time::sleep(Duration::from_secs(30)).await;
                }
                Ok(stream)
            })
            .await
            .unwrap();
        assert_eq!(stream.peer_addr().unwrap(), fast_addr);
    }
    wait_for(&closed, 1 + 2 * RUNS).await;
    let after_races = open_fds();

    // Connects cancelled mid-race: two black-holed attempts in flight when the future drops
    // (the third would connect at 20 ms).
    for _ in 0..RUNS {
        let connect = connector.connect(vec![hole.addr, hole2.addr, slow_addr]);
        let dropped = tokio::time::timeout(Duration::from_millis(15), connect).await;
        assert!(dropped.is_err(), "the race was cancelled before it ended");
    }
    let after_cancels = open_fds();

    println!(
        "open descriptors: {before} before, {after_races} after {RUNS} races with losers, {after_cancels} after {RUNS} cancelled connects"
    );
    assert_eq!(after_races, before);
    assert_eq!(after_cancels, before);
}
