//! The connect report and the event hook: exact times on the paused clock with a scripted
//! resolver and dialer, the hook's events in order, the failure report, and a real fallback on
//! loopback.

mod common;

use std::io::ErrorKind;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{BlackHole, Script, Step, TimedParts, has_ipv6_loopback, listener, ms, v4, v6};
use connect_any::{
    AddressSource, Answer, AttemptOutcome, ConnectError, ConnectEvent, Connector, EventKind, Family,
};

/// One event as a test compares it: what, where, when.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Seen {
    Answer(Option<Family>, usize, Duration),
    Started(SocketAddr, Duration),
    Failed(SocketAddr, Duration),
    Won(SocketAddr, Duration, bool),
    Cancelled(SocketAddr, Duration),
    Finished(Result<SocketAddr, ErrorKind>, Duration),
}

fn seen(event: &ConnectEvent<'_>) -> Seen {
    let at = event.elapsed();
    match event.kind() {
        EventKind::AnswerArrived {
            family, addresses, ..
        } => Seen::Answer(*family, *addresses, at),
        EventKind::AttemptStarted { addr, .. } => Seen::Started(*addr, at),
        EventKind::AttemptFailed { addr, .. } => Seen::Failed(*addr, at),
        EventKind::AttemptWon { addr, fallback, .. } => Seen::Won(*addr, at, *fallback),
        EventKind::AttemptCancelled { addr, .. } => Seen::Cancelled(*addr, at),
        EventKind::Finished { result, .. } => Seen::Finished(result.map_err(|e| e.kind()), at),
        other => panic!("an event this test does not expect: {other:?}"),
    }
}

fn outcome_name(outcome: &AttemptOutcome) -> &'static str {
    match outcome {
        AttemptOutcome::Connected => "connected",
        AttemptOutcome::Failed(e) if e.kind() == ErrorKind::ConnectionRefused => "refused",
        AttemptOutcome::Failed(_) => "failed",
        AttemptOutcome::TimedOut => "timed out",
        AttemptOutcome::Cancelled => "cancelled",
        AttemptOutcome::Aborted => "aborted",
        AttemptOutcome::NotStarted => "not started",
        other => panic!("an outcome this test does not expect: {other:?}"),
    }
}

/// A connector whose hook writes every event into the returned list.
fn recorded(connector: Connector) -> (Connector, Arc<Mutex<Vec<Seen>>>) {
    let events = Arc::new(Mutex::new(Vec::new()));
    let sink = events.clone();
    let connector = connector.on_event(move |event| sink.lock().unwrap().push(seen(event)));
    (connector, events)
}

/// A at 0 ms with two addresses, AAAA at 30 ms with two: the race starts at 30 ms (within the
/// resolution delay), IPv6 first; the first IPv6 address refuses at 40 ms, so the A address
/// starts then; the stagger starts the second IPv6 at 290 ms, which connects at 300 ms while
/// the A attempt hangs; the second IPv4 address is never started.
fn scripted() -> (Connector, Script) {
    let resolver = TimedParts {
        parts: vec![
            (ms(0), Answer::ipv4(Ok(vec![v4(1), v4(2)]))),
            (ms(30), Answer::ipv6(Ok(vec![v6(1), v6(2)]))),
        ],
        then_hangs: false,
    };
    let script = Script::new(&[
        (v6(1), Step::Fail(ms(10), ErrorKind::ConnectionRefused)),
        (v6(2), Step::Connect(ms(10))),
        (v4(1), Step::Hang),
    ]);
    let connector = Connector::new().resolver(resolver);
    (connector, script)
}

#[tokio::test(start_paused = true)]
async fn the_report_times_every_step_exactly() {
    let (connector, script) = scripted();
    let (stream, report) = connector
        .connect_with_reported("parts.test:1", script.dialer())
        .await
        .unwrap();
    assert_eq!(stream.addr, v6(2));
    assert_eq!(report.source(), AddressSource::Resolver);
    let answers: Vec<_> = report
        .answers()
        .iter()
        .map(|a| (a.family(), a.addresses(), a.at()))
        .collect();
    assert_eq!(
        answers,
        [
            (Some(Family::Ipv4), 2, ms(0)),
            (Some(Family::Ipv6), 2, ms(30))
        ]
    );
    assert_eq!(report.resolution_delay(), Some(ms(30)));
    let attempts: Vec<_> = report
        .attempts()
        .iter()
        .map(|a| (a.addr(), a.started(), a.duration(), a.outcome()))
        .map(|(addr, started, ran, outcome)| (addr, started, ran, outcome_name(outcome)))
        .collect();
    let expected = [
        (v6(1), Some(ms(30)), ms(10), "refused"),
        (v4(1), Some(ms(40)), ms(260), "cancelled"),
        (v6(2), Some(ms(290)), ms(10), "connected"),
        (v4(2), None, ms(0), "not started"),
    ];
    assert_eq!(attempts, expected);
    // The stagger counts from the last start (40 ms): the third attempt starts at 290 ms.
    assert_eq!(script.start_times(), [ms(30), ms(40), ms(290)]);
    assert_eq!(report.winner(), Some(v6(2)));
    assert!(report.is_fallback());
    assert_eq!(report.total(), ms(300));
    assert_eq!(report.remembered_first(), None);
    assert!(!report.adaptive_delay());
    let line = report.to_string();
    assert_eq!(
        line,
        "parts.test:1: connected to [::1]:2 in 300 ms, attempt 3 of 3 (a fallback)"
    );
    let table = format!("{report:#}");
    println!("{table}");
    for needed in [
        "addresses from the resolver",
        "answer A    at     0 µs  2 addresses",
        "answer AAAA at    30 ms  2 addresses",
        "waited 30 ms for AAAA",
        "cancelled: another won",
        "never started",
        "total 300 ms",
    ] {
        assert!(table.contains(needed), "{needed:?} missing from\n{table}");
    }
}

#[tokio::test(start_paused = true)]
async fn the_hook_sees_the_same_steps_in_order() {
    let (connector, script) = scripted();
    let (connector, events) = recorded(connector);
    let stream = connector
        .connect_with("parts.test:1", script.dialer())
        .await
        .unwrap();
    assert_eq!(stream.addr, v6(2));
    let expected = [
        Seen::Answer(Some(Family::Ipv4), 2, ms(0)),
        Seen::Answer(Some(Family::Ipv6), 2, ms(30)),
        Seen::Started(v6(1), ms(30)),
        Seen::Failed(v6(1), ms(40)),
        Seen::Started(v4(1), ms(40)),
        Seen::Started(v6(2), ms(290)),
        Seen::Won(v6(2), ms(300), true),
        Seen::Cancelled(v4(1), ms(300)),
        Seen::Finished(Ok(v6(2)), ms(300)),
    ];
    assert_eq!(*events.lock().unwrap(), expected);
}

#[tokio::test(start_paused = true)]
async fn a_failed_connect_carries_a_report_that_matches_its_attempts() {
    let script = Script::new(&[
        (v4(1), Step::Fail(ms(5), ErrorKind::ConnectionRefused)),
        (v4(2), Step::Hang),
    ]);
    let connector = Connector::new().attempt_delay(ms(100)).timeout(ms(100));
    let list = vec![v4(1), v4(2), v4(3)];
    let error = connector
        .connect_with_reported(list, script.dialer())
        .await
        .unwrap_err();
    assert!(matches!(error, ConnectError::TimedOut { .. }), "{error:?}");
    let report = error
        .report()
        .expect("a reported connect's error has a report");
    assert_eq!(report.source(), AddressSource::Target);
    assert_eq!(report.winner(), None);
    assert!(!report.is_fallback());
    assert_eq!(report.total(), ms(100));
    // The started attempts are the error's, in the same order with the same times.
    let started: Vec<_> = report
        .attempts()
        .iter()
        .filter(|a| a.started().is_some())
        .collect();
    assert_eq!(started.len(), error.attempts().len());
    for (recorded, attempt) in started.iter().zip(error.attempts()) {
        assert_eq!(recorded.addr(), attempt.addr());
        assert_eq!(recorded.started(), Some(attempt.started()));
        assert_eq!(recorded.duration(), attempt.duration());
    }
    let outcomes: Vec<_> = report
        .attempts()
        .iter()
        .map(|a| (a.addr(), outcome_name(a.outcome())))
        .collect();
    // The second attempt started at 5 ms; the stagger would start the third at 105 ms.
    assert_eq!(
        outcomes,
        [
            (v4(1), "refused"),
            (v4(2), "aborted"),
            (v4(3), "not started")
        ]
    );
    let line = report.to_string();
    assert!(
        line.ends_with(": no connection after 100 ms, 2 attempts"),
        "{line}"
    );
    // A plain connect's error has none.
    let plain = connector
        .connect_with(vec![v4(1)], script.dialer())
        .await
        .unwrap_err();
    assert!(plain.report().is_none());
}

#[tokio::test(start_paused = true)]
async fn a_resolver_failure_is_reported_with_its_answers() {
    let resolver = TimedParts {
        parts: vec![
            (ms(5), Answer::ipv6(Ok(vec![]))),
            (ms(8), Answer::ipv4(Err(ErrorKind::TimedOut.into()))),
        ],
        then_hangs: false,
    };
    let connector = Connector::new().resolver(resolver);
    let error = connector
        .connect_reported("nothing.test:1")
        .await
        .unwrap_err();
    assert!(matches!(error, ConnectError::Resolve { .. }), "{error:?}");
    let report = error.report().expect("a report");
    let answers: Vec<_> = report
        .answers()
        .iter()
        .map(|a| (a.family(), a.at(), a.error().map(|e| e.kind())))
        .collect();
    assert_eq!(
        answers,
        [
            (Some(Family::Ipv6), ms(5), None),
            (Some(Family::Ipv4), ms(8), Some(ErrorKind::TimedOut)),
        ]
    );
    assert!(report.attempts().is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_panicking_hook_does_not_break_the_connect() {
    let script = Script::new(&[(v4(1), Step::Connect(ms(3)))]);
    let connector = Connector::new().on_event(|event| {
        if let EventKind::AttemptStarted { .. } = event.kind() {
            panic!("a faulty metrics hook");
        }
    });
    let stream = connector
        .connect_with(v4(1), script.dialer())
        .await
        .unwrap();
    assert_eq!(stream.addr, v4(1));
}

#[tokio::test]
async fn a_black_holed_ipv6_is_reported_as_a_fallback() {
    if !has_ipv6_loopback() {
        common::skip("no IPv6 loopback");
        return;
    }
    let hole = BlackHole::on("::1").await.unwrap();
    let (_listener, working) = listener("127.0.0.1").await;
    let began = Instant::now();
    let (stream, report) = Connector::new()
        .connect_reported(vec![hole.addr, working])
        .await
        .unwrap();
    let took = began.elapsed();
    assert_eq!(stream.peer_addr().unwrap(), working);
    assert_eq!(report.winner(), Some(working));
    assert!(report.is_fallback());
    let attempts = report.attempts();
    assert_eq!(attempts.len(), 2, "{report:#}");
    assert_eq!(attempts[0].addr(), hole.addr);
    assert!(matches!(attempts[0].outcome(), AttemptOutcome::Cancelled));
    let ran = attempts[0].duration();
    assert!(ran >= Duration::from_millis(250), "{report:#}");
    assert!(ran < Duration::from_secs(2), "{report:#}");
    assert!(matches!(attempts[1].outcome(), AttemptOutcome::Connected));
    assert!(report.total() <= took);
    println!("{report}\n{report:#}");
}
