//! The race's timing on tokio's paused clock, with a scripted dialer: exact virtual times.

mod common;

use std::io::ErrorKind;

use common::{FixedResolver, Script, Step, ms, v4, v6};
use connect_any::{ConnectError, Connector, Stage, Strategy};
use tokio_util::sync::CancellationToken;

fn happy() -> Connector {
    Connector::new()
}

fn sequential() -> Connector {
    Connector::new().strategy(Strategy::Sequential)
}

#[tokio::test(start_paused = true)]
async fn attempts_start_every_250_ms_and_the_first_to_connect_wins() {
    let script = Script::new(&[
        (v6(1), Step::Hang),
        (v4(1), Step::Hang),
        (v6(2), Step::Connect(ms(100))),
    ]);
    let won = happy()
        .connect_with(vec![v6(1), v4(1), v6(2)], script.dialer())
        .await
        .unwrap();
    assert_eq!(won.addr, v6(2));
    assert_eq!(script.start_times(), [ms(0), ms(250), ms(500)]);
    assert_eq!(script.elapsed(), ms(600));
    drop(won);
    assert_eq!(script.live(), 0, "the two losers were dropped");
}

#[tokio::test(start_paused = true)]
async fn a_failure_starts_the_next_attempt_at_once_and_restarts_the_delay() {
    let script = Script::new(&[
        (v6(1), Step::Fail(ms(40), ErrorKind::ConnectionRefused)),
        (v4(1), Step::Hang),
        (v6(2), Step::Connect(ms(10))),
    ]);
    let won = happy()
        .connect_with(vec![v6(1), v4(1), v6(2)], script.dialer())
        .await
        .unwrap();
    assert_eq!(won.addr, v6(2));
    assert_eq!(script.start_times(), [ms(0), ms(40), ms(290)]);
    assert_eq!(script.elapsed(), ms(300));
}

#[tokio::test(start_paused = true)]
async fn a_slow_first_attempt_still_wins_if_it_connects_first() {
    let script = Script::new(&[
        (v6(1), Step::Connect(ms(300))),
        (v4(1), Step::Connect(ms(100))),
    ]);
    let won = happy()
        .connect_with(vec![v6(1), v4(1)], script.dialer())
        .await
        .unwrap();
    assert_eq!(
        won.addr,
        v6(1),
        "starting attempt 2 must not abort attempt 1"
    );
    assert_eq!(script.start_times(), [ms(0), ms(250)]);
    assert_eq!(script.elapsed(), ms(300));
    drop(won);
    assert_eq!(script.live(), 0);
}

#[tokio::test(start_paused = true)]
async fn the_attempt_delay_is_configurable() {
    let script = Script::new(&[(v6(1), Step::Hang), (v4(1), Step::Connect(ms(5)))]);
    let connector = happy().attempt_delay(ms(100));
    connector
        .connect_with(vec![v6(1), v4(1)], script.dialer())
        .await
        .unwrap();
    assert_eq!(script.start_times(), [ms(0), ms(100)]);
}

#[tokio::test(start_paused = true)]
async fn resolved_addresses_interleave_by_family() {
    let answer = [v6(1), v6(2), v6(3), v4(1), v4(2)];
    let script = Script::new(&[]);
    let connector = happy()
        .resolver(FixedResolver::new("dual.test", &answer))
        .timeout(Some(ms(2000)));
    let error = connector
        .connect_with("dual.test:1", script.dialer())
        .await
        .unwrap_err();
    assert!(matches!(
        error,
        ConnectError::TimedOut {
            stage: Stage::Connect,
            ..
        }
    ));
    let order: Vec<_> = script.starts().into_iter().map(|(a, _)| a).collect();
    assert_eq!(order, [v6(1), v4(1), v6(2), v4(2), v6(3)]);
    assert_eq!(
        script.start_times(),
        [ms(0), ms(250), ms(500), ms(750), ms(1000)]
    );

    let script = Script::new(&[]);
    let two_first = connector.first_family_count(2);
    two_first
        .connect_with("dual.test:1", script.dialer())
        .await
        .unwrap_err();
    let order: Vec<_> = script.starts().into_iter().map(|(a, _)| a).collect();
    assert_eq!(order, [v6(1), v6(2), v4(1), v6(3), v4(2)]);
}

#[tokio::test(start_paused = true)]
async fn a_pre_resolved_list_is_tried_in_the_given_order() {
    let list = vec![v4(1), v4(2), v6(1), v6(2)];
    let script = Script::new(&[]);
    let connector = happy().timeout(Some(ms(1000)));
    connector
        .connect_with(list.clone(), script.dialer())
        .await
        .unwrap_err();
    let order: Vec<_> = script.starts().into_iter().map(|(a, _)| a).collect();
    assert_eq!(order, list);
}

#[tokio::test(start_paused = true)]
async fn sequential_tries_one_address_at_a_time_in_order() {
    let answer = [v6(1), v6(2), v4(1)];
    let script = Script::new(&[
        (v6(1), Step::Fail(ms(100), ErrorKind::ConnectionRefused)),
        (v6(2), Step::Fail(ms(700), ErrorKind::ConnectionReset)),
        (v4(1), Step::Connect(ms(50))),
    ]);
    let connector = sequential().resolver(FixedResolver::new("seq.test", &answer));
    let won = connector
        .connect_with("seq.test:1", script.dialer())
        .await
        .unwrap();
    assert_eq!(won.addr, v4(1));
    let order: Vec<_> = script.starts().into_iter().map(|(a, _)| a).collect();
    assert_eq!(order, answer, "sequential keeps the resolver's order");
    assert_eq!(script.start_times(), [ms(0), ms(100), ms(800)]);
    assert_eq!(script.elapsed(), ms(850));
}

#[tokio::test(start_paused = true)]
async fn sequential_moves_on_after_the_attempt_timeout() {
    let script = Script::new(&[(v6(1), Step::Hang), (v4(1), Step::Connect(ms(20)))]);
    let connector = sequential().attempt_timeout(Some(ms(2000)));
    let won = connector
        .connect_with(vec![v6(1), v4(1)], script.dialer())
        .await
        .unwrap();
    assert_eq!(won.addr, v4(1));
    assert_eq!(script.start_times(), [ms(0), ms(2000)]);
    assert_eq!(script.elapsed(), ms(2020));
}

#[tokio::test(start_paused = true)]
async fn happy_eyeballs_attempt_timeout_aborts_only_the_attempt_that_ran_too_long() {
    let list = vec![v6(1), v4(1), v6(2), v4(2)];
    let script = Script::new(&[(v4(2), Step::Connect(ms(200)))]);
    let connector = happy().attempt_timeout(Some(ms(300)));
    let won = connector.connect_with(list, script.dialer()).await.unwrap();
    assert_eq!(won.addr, v4(2));
    // 0 and 250 by the delay; v6(1) times out at 300, which starts v6(2) at once; v4(1) times
    // out at 550, which starts v4(2), which connects at 750.
    assert_eq!(script.start_times(), [ms(0), ms(250), ms(300), ms(550)]);
    assert_eq!(script.elapsed(), ms(750));
}

#[tokio::test(start_paused = true)]
async fn the_overall_timeout_reports_every_attempt() {
    let script = Script::new(&[(v6(1), Step::Fail(ms(100), ErrorKind::ConnectionRefused))]);
    let connector = happy().timeout(Some(ms(1000)));
    let error = connector
        .connect_with(vec![v6(1), v4(1), v4(2)], script.dialer())
        .await
        .unwrap_err();
    let ConnectError::TimedOut {
        stage,
        elapsed,
        attempts,
        ..
    } = &error
    else {
        panic!("expected a timeout, got {error:?}");
    };
    assert_eq!((*stage, *elapsed), (Stage::Connect, ms(1000)));
    let summary: Vec<_> = attempts
        .iter()
        .map(|a| (a.addr(), a.started(), a.duration(), a.error().kind()))
        .collect();
    assert_eq!(
        summary,
        [
            (v6(1), ms(0), ms(100), ErrorKind::ConnectionRefused),
            (v4(1), ms(100), ms(900), ErrorKind::TimedOut),
            (v4(2), ms(350), ms(650), ErrorKind::TimedOut),
        ]
    );
    assert_eq!(std::io::Error::from(error).kind(), ErrorKind::TimedOut);
    assert_eq!(script.live(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_thousand_addresses() {
    let list: Vec<_> = (1..=1000).map(v4).collect();
    let mut steps: Vec<_> = list
        .iter()
        .map(|&a| (a, Step::Fail(ms(1), ErrorKind::ConnectionRefused)))
        .collect();
    steps[999].1 = Step::Connect(ms(1));
    let script = Script::new(&steps);
    let won = happy()
        .connect_with(list.clone(), script.dialer())
        .await
        .unwrap();
    assert_eq!(won.addr, v4(1000));
    let expected: Vec<_> = (0..1000).map(ms).collect();
    assert_eq!(
        script.start_times(),
        expected,
        "each failure starts the next at once"
    );
    assert_eq!(script.elapsed(), ms(1000));

    // All hanging: one start every 250 ms, all 1,000 running at the end, then all cancelled.
    let script = Script::new(&[]);
    let connector = happy().timeout(Some(ms(250 * 1000)));
    let error = connector
        .connect_with(list, script.dialer())
        .await
        .unwrap_err();
    assert_eq!(error.attempts().len(), 1000);
    assert_eq!(error.attempts()[999].started(), ms(250 * 999));
    assert_eq!(script.live(), 0);
}

#[tokio::test(start_paused = true)]
async fn an_empty_list_is_no_addresses_not_a_panic() {
    let script = Script::new(&[]);
    let error = happy()
        .connect_with(Vec::new(), script.dialer())
        .await
        .unwrap_err();
    assert!(
        matches!(error, ConnectError::NoAddresses { .. }),
        "{error:?}"
    );
    assert_eq!(error.to_string(), "no addresses for an empty address list");

    let empty = FixedResolver::new("empty.test", &[]);
    let error = sequential()
        .resolver(empty)
        .connect_with("empty.test:1", script.dialer())
        .await;
    assert!(matches!(error, Err(ConnectError::NoAddresses { host, .. }) if host == "empty.test:1"));
    assert!(script.starts().is_empty());
}

#[tokio::test(start_paused = true)]
async fn no_attempt_starts_after_the_winner() {
    let script = Script::new(&[(v6(1), Step::Connect(ms(260))), (v4(1), Step::Hang)]);
    let list = vec![v6(1), v4(1), v6(2), v4(2)];
    let won = happy().connect_with(list, script.dialer()).await.unwrap();
    assert_eq!(won.addr, v6(1));
    tokio::time::sleep(ms(5000)).await;
    assert_eq!(script.start_times(), [ms(0), ms(250)]);
    drop(won);
    assert_eq!(script.live(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_cancellation_token_cancels_a_connect_in_progress() {
    let token = CancellationToken::new();
    let connector = happy().cancellation_token(Some(token.clone()));
    let script = Script::new(&[]);
    let canceller = tokio::spawn(async move {
        tokio::time::sleep(ms(400)).await;
        token.cancel();
    });
    let error = connector
        .connect_with(vec![v6(1), v4(1)], script.dialer())
        .await
        .unwrap_err();
    canceller.await.unwrap();
    let ConnectError::Cancelled { attempts, .. } = &error else {
        panic!("expected cancellation, got {error:?}");
    };
    let summary: Vec<_> = attempts
        .iter()
        .map(|a| (a.addr(), a.started(), a.duration()))
        .collect();
    assert_eq!(
        summary,
        [(v6(1), ms(0), ms(400)), (v4(1), ms(250), ms(150))]
    );
    assert_eq!(script.live(), 0);

    // Already cancelled: returns at once without dialing.
    let script = Script::new(&[]);
    let error = connector
        .connect_with(v4(1), script.dialer())
        .await
        .unwrap_err();
    assert!(matches!(error, ConnectError::Cancelled { .. }));
    assert!(script.starts().is_empty());
}

#[tokio::test(start_paused = true)]
async fn dropping_the_future_cancels_every_attempt() {
    let script = Script::new(&[]);
    let connector = happy();
    let connect = connector.connect_with(vec![v6(1), v4(1), v6(2)], script.dialer());
    assert!(tokio::time::timeout(ms(300), connect).await.is_err());
    assert_eq!(
        script.live(),
        0,
        "every dial future was dropped with the connect"
    );
    tokio::time::sleep(ms(1000)).await;
    assert_eq!(
        script.start_times(),
        [ms(0), ms(250)],
        "nothing started after the drop"
    );
}

#[tokio::test(start_paused = true)]
async fn the_resolve_timeout_bounds_resolution_only() {
    let resolver = FixedResolver {
        delay: ms(800),
        ..FixedResolver::new("slow.test", &[v4(1)])
    };
    let script = Script::new(&[(v4(1), Step::Connect(ms(900)))]);
    // Uncached, so that the second connect resolves again.
    let connector = happy()
        .resolver(resolver)
        .resolve_timeout(Some(ms(1000)))
        .answer_cache(None);
    let won = connector
        .connect_with("slow.test:1", script.dialer())
        .await
        .unwrap();
    assert_eq!(script.start_times(), [ms(800)]);
    assert_eq!(
        script.elapsed(),
        ms(1700),
        "the resolve timeout does not cover the attempts"
    );
    drop(won);

    let connector = connector.resolve_timeout(Some(ms(500)));
    let error = connector
        .connect_with("slow.test:1", script.dialer())
        .await
        .unwrap_err();
    assert!(
        matches!(error, ConnectError::TimedOut { stage: Stage::Resolve, elapsed, .. } if elapsed == ms(500))
    );
}

#[tokio::test(start_paused = true)]
async fn families_can_be_restricted() {
    let answer = [v6(1), v4(1)];
    let script = Script::new(&[(v6(1), Step::Connect(ms(1))), (v4(1), Step::Connect(ms(1)))]);
    let connector = happy()
        .resolver(FixedResolver::new("dual.test", &answer))
        .ip_families(connect_any::IpFamilies::V4Only);
    let won = connector
        .connect_with("dual.test:1", script.dialer())
        .await
        .unwrap();
    assert_eq!(won.addr, v4(1));
    let only_v6 = connector.ip_families(connect_any::IpFamilies::V6Only);
    let error = only_v6
        .connect_with(v4(2), script.dialer())
        .await
        .unwrap_err();
    assert!(matches!(error, ConnectError::NoAddresses { .. }));
    assert_eq!(script.starts().len(), 1);
}

/// Four addresses that never answer, an overall timeout of 500 ms and the 250 ms delay: the
/// third attempt would be due at exactly 500 ms, which is too late to start.
#[tokio::test(start_paused = true)]
async fn no_attempt_starts_at_or_after_the_deadline() {
    let script = Script::new(&[]);
    let error = happy()
        .timeout(Some(ms(500)))
        .connect_with(vec![v6(1), v4(1), v6(2), v4(2)], script.dialer())
        .await
        .unwrap_err();
    assert_eq!(script.start_times(), [ms(0), ms(250)]);
    let ConnectError::TimedOut {
        elapsed, attempts, ..
    } = &error
    else {
        panic!("expected a timeout, got {error:?}");
    };
    assert_eq!(*elapsed, ms(500));
    let durations: Vec<_> = attempts.iter().map(|a| a.duration()).collect();
    assert_eq!(durations, [ms(500), ms(250)], "no attempt of 0 ns");
    assert_eq!(script.live(), 0);
}

/// A failure at the deadline does not start the next attempt either.
#[tokio::test(start_paused = true)]
async fn a_failure_at_the_deadline_starts_nothing() {
    let script = Script::new(&[(v6(1), Step::Fail(ms(500), ErrorKind::ConnectionRefused))]);
    let error = sequential()
        .timeout(Some(ms(500)))
        .connect_with(vec![v6(1), v4(1)], script.dialer())
        .await
        .unwrap_err();
    assert_eq!(script.start_times(), [ms(0)]);
    assert!(
        matches!(error, ConnectError::TimedOut { elapsed, .. } if elapsed == ms(500)),
        "{error:?}"
    );
}

/// The tie rule both ways: connected at the deadline is connected; 1 ms later is too late.
#[tokio::test(start_paused = true)]
async fn a_stream_connected_at_the_deadline_is_returned() {
    for (connects_at, in_time) in [(ms(500), true), (ms(501), false)] {
        // Raced: the second attempt starts at 250 ms.
        let script = Script::new(&[
            (v6(1), Step::Hang),
            (v4(1), Step::Connect(connects_at - ms(250))),
        ]);
        let raced = happy()
            .timeout(Some(ms(500)))
            .connect_with(vec![v6(1), v4(1)], script.dialer())
            .await;
        let raced_took = script.elapsed();
        // Alone: one address takes the direct path.
        let alone_script = Script::new(&[(v4(1), Step::Connect(connects_at))]);
        let alone = happy()
            .timeout(Some(ms(500)))
            .connect_with(v4(1), alone_script.dialer())
            .await;
        let alone_took = alone_script.elapsed();
        for (result, script, took) in [
            (raced, &script, raced_took),
            (alone, &alone_script, alone_took),
        ] {
            assert_eq!(took, ms(500));
            match result {
                Ok(stream) if in_time => assert_eq!(stream.addr, v4(1)),
                Err(ConnectError::TimedOut { .. }) if !in_time => {}
                other => panic!("connect at {connects_at:?}: {other:?}"),
            }
            assert!(script.live() <= usize::from(in_time));
        }
    }
}

/// `Duration::MAX` (or anything too long to add to an instant) means "no limit" for every
/// duration setting, on both paths, and never panics.
#[tokio::test(start_paused = true)]
async fn duration_max_is_no_limit_for_every_setting() {
    use std::time::Duration;
    let max = Duration::MAX;
    let connectors = [
        ("timeout", happy().timeout(Some(max))),
        ("attempt_timeout", happy().attempt_timeout(Some(max))),
        ("resolve_timeout", happy().resolve_timeout(Some(max))),
        ("attempt_delay", happy().attempt_delay(max)),
        ("winner_memory", happy().winner_memory(16, max)),
        (
            "adaptive_delay",
            happy().adaptive_delay(true).attempt_delay(max),
        ),
        (
            "sequential",
            sequential().timeout(Some(max)).attempt_timeout(Some(max)),
        ),
        (
            "all",
            happy()
                .timeout(Some(max))
                .attempt_timeout(Some(max))
                .resolve_timeout(Some(max))
                .attempt_delay(max)
                .winner_memory(16, max),
        ),
    ];
    for (setting, connector) in connectors {
        let connector = connector.resolver(FixedResolver::new("max.test", &[v6(1), v4(1)]));
        let script = Script::new(&[
            (v6(1), Step::Fail(ms(30), ErrorKind::ConnectionRefused)),
            (v4(1), Step::Connect(ms(5))),
        ]);
        let won = connector
            .connect_with("max.test:1", script.dialer())
            .await
            .unwrap_or_else(|e| panic!("{setting}: {e}"));
        assert_eq!(won.addr, v4(1), "{setting}");
        assert_eq!(script.start_times(), [ms(0), ms(30)], "{setting}");
        let alone = Script::new(&[(v4(1), Step::Connect(ms(5)))]);
        connector
            .connect_with(v4(1), alone.dialer())
            .await
            .unwrap_or_else(|e| panic!("{setting}, one address: {e}"));
    }
}

/// Only woken attempts are polled: a few polls per attempt however many run at once (every
/// wake used to poll every running attempt, 2 million polls for these 2,000).
#[tokio::test(start_paused = true)]
async fn each_attempt_is_polled_only_when_woken() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    const ADDRESSES: u16 = 2000;
    for attempt_timeout in [None, Some(ms(1_000_000))] {
        let last = v4(ADDRESSES);
        let script = Script::new(&[(last, Step::Connect(ms(1)))]);
        let polls = Arc::new(AtomicUsize::new(0));
        let mut dial = script.dialer();
        let counting = |addr| {
            let mut attempt = dial(addr);
            let polls = polls.clone();
            std::future::poll_fn(move |cx| {
                polls.fetch_add(1, Ordering::Relaxed);
                attempt.as_mut().poll(cx)
            })
        };
        let list: Vec<_> = (1..=ADDRESSES).map(v4).collect();
        let won = happy()
            .attempt_delay(ms(10))
            .attempt_timeout(attempt_timeout)
            .connect_with(list, counting)
            .await
            .unwrap();
        assert_eq!(won.addr, last);
        let polls = polls.load(Ordering::Relaxed);
        println!("{ADDRESSES} attempts, attempt timeout {attempt_timeout:?}: {polls} polls");
        assert!(
            polls <= 2 * usize::from(ADDRESSES) + 2,
            "{polls} polls for {ADDRESSES} attempts"
        );
    }
}

/// `connect_with_cancellable`: the call's own token ends the race at the instant it fires,
/// with every attempt made so far, and drops the running ones.
#[tokio::test(start_paused = true)]
async fn a_per_call_token_cancels_a_custom_dialer_race() {
    let script = Script::new(&[(v6(1), Step::Hang), (v4(1), Step::Hang)]);
    let token = CancellationToken::new();
    let cancel = token.clone();
    tokio::spawn(async move {
        tokio::time::sleep(ms(300)).await;
        cancel.cancel();
    });
    let error = happy()
        .connect_with_cancellable(vec![v6(1), v4(1)], &token, script.dialer())
        .await
        .unwrap_err();
    assert!(matches!(error, ConnectError::Cancelled { .. }), "{error:?}");
    assert_eq!(script.starts(), [(v6(1), ms(0)), (v4(1), ms(250))]);
    assert_eq!(script.elapsed(), ms(300));
    assert_eq!(script.live(), 0, "both attempts were dropped");
}
