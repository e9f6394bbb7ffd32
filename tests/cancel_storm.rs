//! A cancellation storm: 1,000 connects cancelled at random points, by drop and by token.
//! The only test in its binary, because it counts descriptors and tasks.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::{BlackHole, EofServer, FixedResolver, Rng, eventually, open_fds};
use connect_any::{ConnectError, Connector};
use tokio::net::TcpStream;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

const CONNECTS: usize = 1000;
const AT_ONCE: usize = 50;

#[derive(Debug, Default)]
struct Tally {
    connected: usize,
    dropped: usize,
    cancelled_by_token: usize,
}

/// One connect, cancelled `after` into it: resolution takes 2 ms, black-holed attempts start at
/// about 2 and 12 ms, and the working one connects at about 25 ms (timers round up to the next
/// millisecond), so a cut in 0-35 ms lands before resolution ends, between attempts, or around
/// the win.
async fn one(connector: Connector, server: SocketAddr, by_token: bool, after: Duration) -> Tally {
    let mut tally = Tally::default();
    if by_token {
        let token = CancellationToken::new();
        let connector = connector.cancellation_token(Some(token.clone()));
        let canceller = tokio::spawn(async move {
            tokio::time::sleep(after).await;
            token.cancel();
        });
        match connector.connect("storm.test:1").await {
            Ok(stream) => {
                assert_eq!(
                    stream.peer_addr().unwrap(),
                    server,
                    "the working address won"
                );
                tally.connected += 1;
            }
            Err(ConnectError::Cancelled { .. }) => tally.cancelled_by_token += 1,
            Err(other) => panic!("unexpected error {other:?}"),
        }
        canceller.await.unwrap();
    } else {
        match tokio::time::timeout(after, connector.connect("storm.test:1")).await {
            Ok(result) => {
                let stream = result.expect("a connect that finished in time connected");
                assert_eq!(
                    stream.peer_addr().unwrap(),
                    server,
                    "the working address won"
                );
                tally.connected += 1;
            }
            Err(_) => tally.dropped += 1,
        }
    }
    tally
}

/// A dialer that cancels the token the instant its attempt has connected: the connect returns
/// either the stream or `Cancelled`, and in neither case may a connection stay half-open.
async fn cancelled_the_instant_it_won(connector: &Connector, server: &EofServer) -> bool {
    let token = CancellationToken::new();
    let connector = connector.clone().cancellation_token(Some(token.clone()));
    let result = connector
        .connect_with(server.addr, |addr| {
            let token = token.clone();
            async move {
                let stream = TcpStream::connect(addr).await?;
                token.cancel();
                Ok(stream)
            }
        })
        .await;
    match result {
        Ok(stream) => {
            assert_eq!(stream.peer_addr().unwrap(), server.addr, "its own stream");
            false
        }
        Err(ConnectError::Cancelled { .. }) => true,
        Err(other) => panic!("unexpected error {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_cancelled_connects_leave_nothing_behind() {
    let holes = [
        BlackHole::on("127.0.0.3").await.unwrap(),
        BlackHole::on("127.0.0.4").await.unwrap(),
    ];
    let server = EofServer::start("127.0.0.1").await;
    let resolver = FixedResolver {
        delay: Duration::from_millis(2),
        ..FixedResolver::new("storm.test", &[holes[0].addr, holes[1].addr, server.addr])
    };
    // No winner memory: every connect must race through the black holes.
    let connector = Connector::new()
        .resolver(resolver)
        .attempt_delay(Duration::from_millis(10))
        .winner_memory(0, Duration::ZERO);
    let metrics = tokio::runtime::Handle::current().metrics();
    let (fds_before, tasks_before) = (open_fds(), metrics.num_alive_tasks());

    let mut rng = Rng::new(0x5eed);
    let mut total = Tally::default();

    let mut storm = JoinSet::new();
    for i in 0..CONNECTS {
        let after = Duration::from_micros(rng.below(35_000));
        storm.spawn(one(connector.clone(), server.addr, i % 2 == 0, after));
        if storm.len() == AT_ONCE || i + 1 == CONNECTS {
            while let Some(tally) = storm.join_next().await {
                let tally = tally.expect("no connect panics");
                total.connected += tally.connected;
                total.dropped += tally.dropped;
                total.cancelled_by_token += tally.cancelled_by_token;
            }
        }
    }
    let mut cancelled_after_win = 0;
    for _ in 0..100 {
        cancelled_after_win += usize::from(cancelled_the_instant_it_won(&connector, &server).await);
    }

    assert!(
        eventually(|| server.open() == 0).await,
        "{} connections left half-open",
        server.open()
    );
    assert!(
        eventually(|| metrics.num_alive_tasks() == tasks_before).await,
        "tasks left behind"
    );
    eventually(|| open_fds() == fds_before).await;
    let fds_after = open_fds();
    println!(
        "cancellation storm: {CONNECTS} connects ({} dropped, {} cancelled by token, {} connected), \
         100 cancelled the instant they won ({cancelled_after_win} returned Cancelled, the rest their stream); descriptors {fds_before} before, \
         {fds_after} after; tasks {tasks_before} before, {} after",
        total.dropped,
        total.cancelled_by_token,
        total.connected,
        metrics.num_alive_tasks()
    );
    assert_eq!(
        total.dropped + total.cancelled_by_token + total.connected,
        CONNECTS
    );
    assert!(
        total.connected > 0,
        "cuts late enough let the connect return its stream: {total:?}"
    );
    assert!(
        total.dropped > 200 && total.cancelled_by_token > 200,
        "cuts mostly land mid-connect: {total:?}"
    );
    assert_eq!(fds_after, fds_before);
}
