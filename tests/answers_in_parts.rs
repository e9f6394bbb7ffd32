//! Answers in parts (RFC 8305 §3) on the paused clock: a scripted resolver hands over the AAAA
//! and the A answers at given times, and the race starts and grows as they arrive.

mod common;

use std::io::{self, ErrorKind};
use std::net::SocketAddr;
use std::time::Duration;

use common::{Script, Step, TimedParts, ms, v4, v6};
use connect_any::{
    Answer, Answering, ConnectError, Connector, FamilyErrors, Resolve, Resolving, Stage,
};
use tokio_util::sync::CancellationToken;

/// One scripted answer.
#[derive(Clone, Debug)]
enum Part {
    V6(Vec<SocketAddr>),
    V4(Vec<SocketAddr>),
    V6Fails(ErrorKind),
    V4Fails(ErrorKind),
}

impl Part {
    fn answer(&self) -> Answer {
        let fail = |kind: &ErrorKind| Err(io::Error::new(*kind, format!("scripted {kind}")));
        match self {
            Part::V6(addrs) => Answer::ipv6(Ok(addrs.clone())),
            Part::V4(addrs) => Answer::ipv4(Ok(addrs.clone())),
            Part::V6Fails(kind) => Answer::ipv6(fail(kind)),
            Part::V4Fails(kind) => Answer::ipv4(fail(kind)),
        }
    }
}

fn timed(list: &[(u64, Part)]) -> Vec<(Duration, Answer)> {
    list.iter().map(|(at, p)| (ms(*at), p.answer())).collect()
}

fn parts(list: &[(u64, Part)]) -> TimedParts {
    TimedParts {
        parts: timed(list),
        then_hangs: false,
    }
}

fn parts_then_hang(list: &[(u64, Part)]) -> TimedParts {
    TimedParts {
        parts: timed(list),
        then_hangs: true,
    }
}

fn connector(resolver: TimedParts) -> Connector {
    Connector::new()
        .resolver(resolver)
        .winner_memory(0, Duration::ZERO)
}

#[tokio::test(start_paused = true)]
async fn aaaa_first_starts_at_once() {
    let script = Script::new(&[(v6(1), Step::Connect(ms(5)))]);
    let resolver = parts_then_hang(&[(0, Part::V6(vec![v6(1)]))]);
    let won = connector(resolver)
        .connect_with("parts.test:1", script.dialer())
        .await
        .unwrap();
    assert_eq!(won.addr, v6(1));
    assert_eq!(script.starts(), [(v6(1), ms(0))]);
}

#[tokio::test(start_paused = true)]
async fn a_first_waits_for_aaaa_that_comes_within_the_resolution_delay() {
    let script = Script::new(&[(v6(1), Step::Connect(ms(5)))]);
    let resolver = parts(&[(0, Part::V4(vec![v4(1)])), (30, Part::V6(vec![v6(1)]))]);
    let won = connector(resolver)
        .connect_with("parts.test:1", script.dialer())
        .await
        .unwrap();
    assert_eq!(won.addr, v6(1));
    assert_eq!(script.starts(), [(v6(1), ms(30))], "IPv6 first, at 30 ms");
}

#[tokio::test(start_paused = true)]
async fn a_first_and_aaaa_never_starts_after_the_resolution_delay() {
    let script = Script::new(&[(v4(1), Step::Connect(ms(5)))]);
    let resolver = parts_then_hang(&[(0, Part::V4(vec![v4(1)]))]);
    let won = connector(resolver)
        .connect_with("parts.test:1", script.dialer())
        .await
        .unwrap();
    assert_eq!(won.addr, v4(1));
    assert_eq!(script.starts(), [(v4(1), ms(50))]);
    let delay = connector(parts_then_hang(&[(0, Part::V4(vec![v4(1)]))])).resolution_delay(ms(20));
    let script = Script::new(&[(v4(1), Step::Connect(ms(5)))]);
    delay
        .connect_with("parts.test:1", script.dialer())
        .await
        .unwrap();
    assert_eq!(
        script.starts(),
        [(v4(1), ms(20))],
        "the delay is configurable"
    );
}

#[tokio::test(start_paused = true)]
async fn a_negative_aaaa_ends_the_wait_at_once() {
    let script = Script::new(&[(v4(1), Step::Connect(ms(5)))]);
    let resolver = parts(&[(0, Part::V4(vec![v4(1)])), (10, Part::V6(vec![]))]);
    connector(resolver)
        .connect_with("parts.test:1", script.dialer())
        .await
        .unwrap();
    assert_eq!(script.starts(), [(v4(1), ms(10))]);
}

#[tokio::test(start_paused = true)]
async fn a_late_a_answer_joins_while_ipv6_hangs() {
    let script = Script::new(&[(v6(1), Step::Hang), (v4(1), Step::Connect(ms(5)))]);
    let resolver = parts(&[(0, Part::V6(vec![v6(1)])), (1000, Part::V4(vec![v4(1)]))]);
    let won = connector(resolver)
        .connect_with("parts.test:1", script.dialer())
        .await
        .unwrap();
    assert_eq!(won.addr, v4(1));
    assert_eq!(script.starts(), [(v6(1), ms(0)), (v4(1), ms(1000))]);
    assert_eq!(script.elapsed(), ms(1005));
}

#[tokio::test(start_paused = true)]
async fn a_late_address_waits_for_the_stagger_tick_while_an_attempt_is_young() {
    let script = Script::new(&[(v6(1), Step::Hang), (v4(1), Step::Connect(ms(5)))]);
    let resolver = parts(&[(0, Part::V6(vec![v6(1)])), (100, Part::V4(vec![v4(1)]))]);
    connector(resolver)
        .connect_with("parts.test:1", script.dialer())
        .await
        .unwrap();
    assert_eq!(script.starts(), [(v6(1), ms(0)), (v4(1), ms(250))]);
}

#[tokio::test(start_paused = true)]
async fn ipv4_arriving_while_ipv6_attempts_run_goes_next() {
    let script = Script::new(&[(v4(1), Step::Connect(ms(5)))]);
    let resolver = parts(&[
        (0, Part::V6(vec![v6(1), v6(2), v6(3)])),
        (100, Part::V4(vec![v4(1)])),
    ]);
    connector(resolver)
        .connect_with("parts.test:1", script.dialer())
        .await
        .unwrap();
    assert_eq!(script.starts(), [(v6(1), ms(0)), (v4(1), ms(250))]);
}

#[tokio::test(start_paused = true)]
async fn an_address_in_two_answers_is_dialed_once() {
    let script = Script::new(&[(v6(1), Step::Fail(ms(10), ErrorKind::ConnectionRefused))]);
    let resolver = parts(&[
        (0, Part::V6(vec![v6(1), v6(1)])),
        (5, Part::V6(vec![v6(1)])),
        (20, Part::V4(vec![])),
    ]);
    let error = connector(resolver)
        .connect_with("parts.test:1", script.dialer())
        .await
        .unwrap_err();
    assert_eq!(script.starts(), [(v6(1), ms(0))]);
    assert!(
        matches!(error, ConnectError::AllAttemptsFailed { .. }),
        "{error:?}"
    );
    assert_eq!(
        script.elapsed(),
        ms(20),
        "it failed only once every query had answered"
    );
}

#[tokio::test(start_paused = true)]
async fn both_families_failing_is_a_resolve_error_with_both_causes() {
    let script = Script::new(&[]);
    let resolver = parts(&[
        (5, Part::V6Fails(ErrorKind::NotFound)),
        (7, Part::V4Fails(ErrorKind::TimedOut)),
    ]);
    let error = connector(resolver)
        .connect_with("parts.test:1", script.dialer())
        .await
        .unwrap_err();
    let ConnectError::Resolve { cause, .. } = &error else {
        panic!("{error:?}");
    };
    let both = cause
        .get_ref()
        .and_then(|e| e.downcast_ref::<FamilyErrors>())
        .expect("both causes");
    assert_eq!(both.ipv6.kind(), ErrorKind::NotFound);
    assert_eq!(both.ipv4.kind(), ErrorKind::TimedOut);
    assert_eq!(error.kind(), ErrorKind::TimedOut);
    assert!(format!("{error:#}").contains("AAAA: scripted"), "{error:#}");
    assert!(script.starts().is_empty());
}

#[tokio::test(start_paused = true)]
async fn timeouts_and_cancellation_while_some_answers_are_in() {
    // The resolve timeout ends the wait for A while AAAA failed: TimedOut, stage Resolve.
    let resolver = parts_then_hang(&[(5, Part::V6(vec![]))]);
    let script = Script::new(&[]);
    let error = connector(resolver)
        .resolve_timeout(Some(ms(300)))
        .connect_with("parts.test:1", script.dialer())
        .await
        .unwrap_err();
    assert!(
        matches!(error, ConnectError::TimedOut { stage: Stage::Resolve, elapsed, .. } if elapsed == ms(300)),
        "{error:?}"
    );
    // The overall timeout while IPv6 attempts run and A is awaited: TimedOut, stage Connect.
    let resolver = parts_then_hang(&[(0, Part::V6(vec![v6(1)]))]);
    let script = Script::new(&[(v6(1), Step::Fail(ms(100), ErrorKind::ConnectionRefused))]);
    let error = connector(resolver)
        .timeout(Some(ms(600)))
        .connect_with("parts.test:1", script.dialer())
        .await
        .unwrap_err();
    assert!(
        matches!(error, ConnectError::TimedOut { stage: Stage::Connect, elapsed, .. } if elapsed == ms(600)),
        "{error:?}"
    );
    assert_eq!(script.starts(), [(v6(1), ms(0))]);
    // After the resolve timeout a late answer no longer joins, and the race ends.
    let resolver = parts(&[(0, Part::V6(vec![v6(1)])), (500, Part::V4(vec![v4(1)]))]);
    let script = Script::new(&[(v6(1), Step::Fail(ms(100), ErrorKind::ConnectionRefused))]);
    let error = connector(resolver)
        .resolve_timeout(Some(ms(200)))
        .connect_with("parts.test:1", script.dialer())
        .await
        .unwrap_err();
    assert!(
        matches!(error, ConnectError::AllAttemptsFailed { .. }),
        "{error:?}"
    );
    assert_eq!(script.elapsed(), ms(200));
    // Cancellation while A is awaited and nothing runs.
    let token = CancellationToken::new();
    let cancel = token.clone();
    tokio::spawn(async move {
        tokio::time::sleep(ms(400)).await;
        cancel.cancel();
    });
    let resolver = parts_then_hang(&[(0, Part::V6(vec![v6(1)]))]);
    let script = Script::new(&[(v6(1), Step::Fail(ms(100), ErrorKind::ConnectionRefused))]);
    let error = connector(resolver)
        .cancellation_token(Some(token))
        .connect_with("parts.test:1", script.dialer())
        .await
        .unwrap_err();
    assert!(matches!(error, ConnectError::Cancelled { .. }), "{error:?}");
    assert_eq!(script.elapsed(), ms(400));
    assert_eq!(script.live(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_remembered_winner_goes_first_when_its_late_answer_arrives() {
    let resolver = parts(&[
        (0, Part::V6(vec![v6(1)])),
        (100, Part::V4(vec![v4(1), v4(2)])),
    ]);
    // Uncached, so that each connect's answers come in parts again.
    let connector = Connector::new().resolver(resolver).answer_cache(None);
    // First connect: IPv6 hangs, 127.0.0.1:2 wins.
    let script = Script::new(&[(v6(1), Step::Hang), (v4(2), Step::Connect(ms(1)))]);
    connector
        .connect_with("parts.test:1", script.dialer())
        .await
        .unwrap();
    // Next: when the A answer arrives, the remembered 127.0.0.1:2 goes before 127.0.0.1:1.
    let script = Script::new(&[(v6(1), Step::Hang), (v4(2), Step::Connect(ms(1)))]);
    let won = connector
        .connect_with("parts.test:1", script.dialer())
        .await
        .unwrap();
    assert_eq!(won.addr, v4(2));
    assert_eq!(script.starts(), [(v6(1), ms(0)), (v4(2), ms(250))]);
}

#[tokio::test(start_paused = true)]
async fn sequential_follows_the_same_rules_one_at_a_time() {
    let script = Script::new(&[
        (v6(1), Step::Fail(ms(100), ErrorKind::ConnectionRefused)),
        (v4(1), Step::Connect(ms(5))),
    ]);
    let resolver = parts(&[(0, Part::V6(vec![v6(1)])), (300, Part::V4(vec![v4(1)]))]);
    let won = connector(resolver)
        .strategy(connect_any::Strategy::Sequential)
        .connect_with("parts.test:1", script.dialer())
        .await
        .unwrap();
    assert_eq!(won.addr, v4(1));
    assert_eq!(script.starts(), [(v6(1), ms(0)), (v4(1), ms(300))]);
}

/// Answers in parts that a test changes between connects.
#[derive(Debug, Default)]
struct Changing(std::sync::Mutex<TimedParts>);

impl Changing {
    fn answer(&self, list: &[(u64, Part)]) {
        *self.0.lock().unwrap() = parts(list);
    }
}

impl Resolve for Changing {
    fn resolve<'a>(&'a self, _host: &'a str, _port: u16) -> Resolving<'a> {
        unreachable!("the connector asks for answers in parts")
    }

    fn resolve_in_parts<'a>(&'a self, _host: &'a str, _port: u16) -> Answering<'a> {
        self.0.lock().unwrap().answering()
    }
}

/// A remembered winner that arrives in a late answer and then fails is forgotten, as one in
/// the first answer is: the next connect does not dial it first again.
#[tokio::test(start_paused = true)]
async fn a_remembered_winner_from_a_late_answer_is_forgotten_when_it_fails() {
    let resolver = std::sync::Arc::new(Changing::default());
    // Uncached, so that each connect hears the answers of the moment.
    let connector = Connector::new()
        .resolver(resolver.clone())
        .answer_cache(None);
    // Connect 1: IPv4 wins and is remembered.
    resolver.answer(&[(0, Part::V4(vec![v4(1)])), (0, Part::V6(vec![]))]);
    let won = Script::new(&[(v4(1), Step::Connect(ms(1)))]);
    connector
        .connect_with("late.test:1", won.dialer())
        .await
        .unwrap();
    // Connect 2: the remembered address comes late, at 20 ms, and fails.
    resolver.answer(&[(0, Part::V6(vec![v6(1)])), (20, Part::V4(vec![v4(1)]))]);
    let fails = Script::new(&[
        (v6(1), Step::Fail(ms(10), ErrorKind::ConnectionRefused)),
        (v4(1), Step::Fail(ms(1), ErrorKind::ConnectionRefused)),
    ]);
    connector
        .connect_with("late.test:1", fails.dialer())
        .await
        .unwrap_err();
    assert_eq!(fails.starts(), [(v6(1), ms(0)), (v4(1), ms(20))]);
    // Connect 3: both in the first answer; without the memory, IPv6 goes first.
    resolver.answer(&[(0, Part::V4(vec![v4(1)])), (0, Part::V6(vec![v6(1)]))]);
    let third = Script::new(&[(v6(1), Step::Connect(ms(1)))]);
    connector
        .connect_with("late.test:1", third.dialer())
        .await
        .unwrap();
    assert_eq!(
        third.starts()[0].0,
        v6(1),
        "the failed winner was forgotten: {:?}",
        third.starts()
    );
}
