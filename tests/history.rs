//! Memory of what worked and the adaptive attempt delay, on the paused clock.

mod common;

use std::io::ErrorKind;
use std::net::SocketAddr;
use std::time::Duration;

use common::{Answers, Script, Step, ms, tried, v4, v6};
use connect_any::{ConnectError, Connector, Resolve, Resolving};

fn first_start(script: &Script, from: usize) -> (SocketAddr, Duration) {
    script.starts()[from]
}

#[tokio::test(start_paused = true)]
async fn the_remembered_winner_goes_first_and_pays_no_delay() {
    let answers = Answers::with(&[("dual.test", &[v6(1), v4(1)])]);
    let script = Script::new(&[(v6(1), Step::Hang), (v4(1), Step::Connect(ms(1)))]);
    let connector = Connector::new().resolver(answers);

    let began = script.elapsed();
    connector
        .connect_with("dual.test:1", script.dialer())
        .await
        .unwrap();
    assert_eq!(
        script.elapsed() - began,
        ms(251),
        "the first connect waits out the black hole"
    );

    let clone = connector.clone();
    for _ in 0..3 {
        let began = script.elapsed();
        let starts_before = script.starts().len();
        let won = clone
            .connect_with("dual.test:1", script.dialer())
            .await
            .unwrap();
        assert_eq!(won.addr, v4(1));
        assert_eq!(
            script.elapsed() - began,
            ms(1),
            "no attempt delay once remembered"
        );
        assert_eq!(
            script.starts().len(),
            starts_before + 1,
            "one attempt, the remembered one"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn memory_expires() {
    let answers = Answers::with(&[("dual.test", &[v6(1), v4(1)])]);
    let script = Script::new(&[(v6(1), Step::Hang), (v4(1), Step::Connect(ms(1)))]);
    let connector = Connector::new()
        .resolver(answers)
        .winner_memory(16, ms(60_000));
    connector
        .connect_with("dual.test:1", script.dialer())
        .await
        .unwrap();
    tokio::time::sleep(ms(59_000)).await;
    connector
        .connect_with("dual.test:1", script.dialer())
        .await
        .unwrap();
    assert_eq!(
        first_start(&script, 2).0,
        v4(1),
        "still remembered before the TTL"
    );
    tokio::time::sleep(ms(61_000)).await;
    connector
        .connect_with("dual.test:1", script.dialer())
        .await
        .unwrap();
    assert_eq!(
        first_start(&script, 3).0,
        v6(1),
        "expired: the resolver's order again"
    );
}

#[tokio::test(start_paused = true)]
async fn memory_evicts_the_least_recently_used_host() {
    let answers = Answers::with(&[("a.test", &[v6(1), v4(1)]), ("b.test", &[v6(2), v4(2)])]);
    let script = Script::new(&[
        (v6(1), Step::Hang),
        (v4(1), Step::Connect(ms(1))),
        (v6(2), Step::Hang),
        (v4(2), Step::Connect(ms(1))),
    ]);
    let connector = Connector::new()
        .resolver(answers)
        .winner_memory(1, ms(60_000));
    connector
        .connect_with("a.test:1", script.dialer())
        .await
        .unwrap();
    connector
        .connect_with("b.test:1", script.dialer())
        .await
        .unwrap();
    let seen = script.starts().len();
    connector
        .connect_with("b.test:1", script.dialer())
        .await
        .unwrap();
    assert_eq!(first_start(&script, seen).0, v4(2), "b is remembered");
    connector
        .connect_with("a.test:1", script.dialer())
        .await
        .unwrap();
    assert_eq!(
        first_start(&script, seen + 1).0,
        v6(1),
        "a was evicted by b"
    );
}

#[tokio::test(start_paused = true)]
async fn a_remembered_address_that_fails_is_forgotten_and_costs_no_delay() {
    let answers = Answers::with(&[("dual.test", &[v6(1), v4(1)])]);
    let connector = Connector::new().resolver(answers);
    let learn = Script::new(&[(v6(1), Step::Hang), (v4(1), Step::Connect(ms(1)))]);
    connector
        .connect_with("dual.test:1", learn.dialer())
        .await
        .unwrap();

    let broken = Script::new(&[
        (v4(1), Step::Fail(ms(5), ErrorKind::ConnectionRefused)),
        (v6(1), Step::Fail(ms(5), ErrorKind::ConnectionRefused)),
    ]);
    let error = connector
        .connect_with("dual.test:1", broken.dialer())
        .await
        .unwrap_err();
    assert_eq!(
        tried(&error),
        [(v4(1), ms(0)), (v6(1), ms(5))],
        "the next attempt started at once"
    );

    let later = Script::new(&[(v6(1), Step::Connect(ms(1)))]);
    connector
        .connect_with("dual.test:1", later.dialer())
        .await
        .unwrap();
    assert_eq!(
        later.starts()[0].0,
        v6(1),
        "forgotten: the resolver's order again"
    );
}

#[tokio::test(start_paused = true)]
async fn memory_only_reorders_what_the_resolver_returned() {
    let answers = Answers::with(&[("moving.test", &[v6(1), v4(1)])]);
    let script = Script::new(&[
        (v6(1), Step::Hang),
        (v4(1), Step::Connect(ms(1))),
        (v6(2), Step::Connect(ms(1))),
    ]);
    // Uncached, so that the second connect hears the changed answer at once.
    let connector = Connector::new()
        .resolver(answers.clone())
        .answer_cache(None);
    connector
        .connect_with("moving.test:1", script.dialer())
        .await
        .unwrap();
    answers.set("moving.test", &[v6(2)]);
    connector
        .connect_with("moving.test:1", script.dialer())
        .await
        .unwrap();
    let started: Vec<_> = script.starts().into_iter().map(|(a, _)| a).collect();
    assert_eq!(
        started,
        [v6(1), v4(1), v6(2)],
        "the remembered v4(1) was not added back"
    );
}

#[tokio::test(start_paused = true)]
async fn memory_can_be_turned_off() {
    let answers = Answers::with(&[("dual.test", &[v6(1), v4(1)])]);
    let script = Script::new(&[(v6(1), Step::Hang), (v4(1), Step::Connect(ms(1)))]);
    let connector = Connector::new()
        .resolver(answers)
        .winner_memory(0, ms(60_000));
    connector
        .connect_with("dual.test:1", script.dialer())
        .await
        .unwrap();
    connector
        .connect_with("dual.test:1", script.dialer())
        .await
        .unwrap();
    assert_eq!(first_start(&script, 2), (v6(1), ms(251)));
}

/// `connects` connects of `took` each to `name`, whose only address connects after `took`.
async fn warm_up(connector: &Connector, script_took: Duration, connects: usize) {
    let script = Script::new(&[(v4(100), Step::Connect(script_took))]);
    for _ in 0..connects {
        connector
            .connect_with(v4(100), script.dialer())
            .await
            .unwrap();
    }
}

/// The delay before the second attempt to a new host whose first address is black-holed.
async fn second_attempt_after(connector: &Connector) -> Duration {
    let script = Script::new(&[(v6(7), Step::Hang), (v4(7), Step::Connect(ms(1)))]);
    connector
        .connect_with(vec![v6(7), v4(7)], script.dialer())
        .await
        .unwrap();
    script.starts()[1].1
}

#[tokio::test(start_paused = true)]
async fn adaptive_delay_follows_fast_connects() {
    let connector = Connector::new().adaptive_delay(true);
    assert_eq!(
        second_attempt_after(&connector).await,
        ms(250),
        "no history yet"
    );
    warm_up(&connector, ms(1), 50).await;
    let delay = second_attempt_after(&connector).await;
    assert!(
        delay >= ms(10) && delay <= ms(20),
        "abandoned after {delay:?}"
    );
    assert_eq!(delay, ms(10));
}

#[tokio::test(start_paused = true)]
async fn adaptive_delay_stays_at_the_attempt_delay_for_slow_connects() {
    let connector = Connector::new().adaptive_delay(true);
    warm_up(&connector, ms(400), 50).await;
    assert_eq!(second_attempt_after(&connector).await, ms(250));
}

#[tokio::test(start_paused = true)]
async fn a_burst_of_slow_connects_raises_the_adaptive_delay_again() {
    let connector = Connector::new().adaptive_delay(true);
    warm_up(&connector, ms(1), 50).await;
    assert_eq!(second_attempt_after(&connector).await, ms(10));
    warm_up(&connector, ms(60), 5).await;
    assert_eq!(
        second_attempt_after(&connector).await,
        ms(120),
        "twice the 90th percentile"
    );
    warm_up(&connector, ms(400), 5).await;
    assert_eq!(
        second_attempt_after(&connector).await,
        ms(250),
        "never above attempt_delay"
    );
}

#[tokio::test(start_paused = true)]
async fn without_adaptive_delay_history_changes_nothing() {
    let connector = Connector::new();
    warm_up(&connector, ms(1), 50).await;
    assert_eq!(second_attempt_after(&connector).await, ms(250));
}

/// Answers every name with the same addresses.
#[derive(Debug)]
struct AnyName(Vec<SocketAddr>);

impl Resolve for AnyName {
    fn resolve<'a>(&'a self, _host: &'a str, _port: u16) -> Resolving<'a> {
        Box::pin(async move { Ok(self.0.clone()) })
    }
}

/// `127.0.0.1:port` addresses form the near prefix; a far host's live in 127.0.1.0/24.
fn far(n: u8) -> SocketAddr {
    SocketAddr::from(([127, 0, 1, n], 1))
}

/// The attempt start times of one connect to the far host, whose 8 addresses all connect after
/// 150 ms.
async fn far_connect(connector: &Connector) -> Vec<Duration> {
    let list: Vec<_> = (1..=8).map(far).collect();
    let steps: Vec<_> = list.iter().map(|&a| (a, Step::Connect(ms(150)))).collect();
    let script = Script::new(&steps);
    let won = connector.connect_with(list, script.dialer()).await.unwrap();
    assert_eq!(won.addr, far(1));
    script.start_times()
}

#[tokio::test(start_paused = true)]
async fn a_far_host_gets_one_extra_attempt_at_most_after_near_connects() {
    let connector = Connector::new().adaptive_delay(true);
    warm_up(&connector, ms(1), 50).await;
    assert_eq!(
        far_connect(&connector).await,
        [ms(0), ms(10)],
        "the connector-wide estimate paces one extra attempt, then the configured delay"
    );
    for _ in 0..3 {
        assert_eq!(
            far_connect(&connector).await,
            [ms(0)],
            "its own 150 ms connect time is known: no extra attempt"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn near_hosts_keep_their_pace_after_far_connects() {
    let connector = Connector::new().adaptive_delay(true);
    warm_up(&connector, ms(1), 50).await;
    for _ in 0..20 {
        far_connect(&connector).await;
    }
    // The near host: its first address hangs, its second is in the same fast prefix.
    let script = Script::new(&[(v4(7), Step::Hang), (v4(8), Step::Connect(ms(1)))]);
    connector
        .connect_with(vec![v4(7), v4(8)], script.dialer())
        .await
        .unwrap();
    assert_eq!(script.start_times(), [ms(0), ms(10)]);
}

#[tokio::test(start_paused = true)]
async fn a_new_name_with_a_black_holed_first_address_is_still_reached_fast() {
    let connector = Connector::new()
        .adaptive_delay(true)
        .resolver(common::FixedResolver::new("new.test", &[v6(9), v4(9)]));
    warm_up(&connector, ms(1), 50).await;
    let script = Script::new(&[(v6(9), Step::Hang), (v4(9), Step::Connect(ms(1)))]);
    let won = connector
        .connect_with("new.test:1", script.dialer())
        .await
        .unwrap();
    assert_eq!(won.addr, v4(9));
    assert!(
        script.elapsed() <= ms(20),
        "reached after {:?}",
        script.elapsed()
    );
    assert_eq!(script.start_times(), [ms(0), ms(10)]);
}

/// `Dual.Test`, `dual.test.` and `dual.test` are one host to the memory.
#[tokio::test(start_paused = true)]
async fn memory_keys_ignore_case_and_a_trailing_dot() {
    let script = Script::new(&[(v6(1), Step::Hang), (v4(1), Step::Connect(ms(1)))]);
    let connector = Connector::new().resolver(AnyName(vec![v6(1), v4(1)]));
    connector
        .connect_with("Dual.Test:1", script.dialer())
        .await
        .unwrap();
    for (n, name) in ["dual.test.:1", "dual.test:1", "DUAL.test:1"]
        .into_iter()
        .enumerate()
    {
        let seen = script.starts().len();
        connector.connect_with(name, script.dialer()).await.unwrap();
        assert_eq!(first_start(&script, seen).0, v4(1), "{name} (connect {n})");
    }
    assert!(
        format!("{connector:?}").contains("hosts: 1"),
        "{connector:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn override_targets_never_fill_the_memory() {
    let script = Script::new(&[(v4(1), Step::Connect(ms(1)))]);
    let mut connector = Connector::new();
    for n in 0..100 {
        connector = connector.resolve_override(&format!("pinned-{n}.test"), None, [v4(1)]);
    }
    for n in 0..100 {
        let name = format!("pinned-{n}.test:1");
        connector.connect_with(name, script.dialer()).await.unwrap();
    }
    assert!(
        format!("{connector:?}").contains("hosts: 0"),
        "{connector:?}"
    );
}

/// Printing a connector neither locks up nor lists every remembered host.
#[tokio::test(start_paused = true)]
async fn debug_of_a_busy_connector_is_a_summary() {
    let names: Vec<String> = (0..1000).map(|n| format!("host-{n}.test")).collect();
    let connector = Connector::new()
        .resolver(AnyName(vec![v4(1)]))
        .winner_memory(4096, ms(60_000));
    let script = Script::new(&[(v4(1), Step::Connect(ms(1)))]);
    for name in &names {
        connector
            .connect_with((name.as_str(), 1), script.dialer())
            .await
            .unwrap();
    }
    let debug = format!("{connector:?}");
    assert!(debug.contains("hosts: 1000"), "{debug}");
    assert!(!debug.contains("host-1.test"), "{debug}");
    assert!(debug.len() < 2000, "{} bytes", debug.len());
}

/// A name's one address is dialed without the race when nothing needs it (no timeout, no
/// token, no report): the error must say what the race's would, and a failed remembered
/// winner must still be forgotten.
#[tokio::test(start_paused = true)]
async fn a_names_one_address_fails_as_it_would_in_the_race() {
    let connector = |answers: &std::sync::Arc<Answers>| {
        let delayed = DelayedAnswers(answers.clone(), ms(30));
        Connector::new().resolver(delayed).answer_cache(None)
    };
    let answers = Answers::with(&[("one.test", &[v4(1)])]);
    let remembering = connector(&answers);
    // The first connect wins and is remembered; the address then refuses.
    let winning = Script::new(&[(v4(1), Step::Connect(ms(5)))]);
    let won = remembering
        .connect_with("one.test:1", winning.dialer())
        .await;
    assert_eq!(won.unwrap().addr, v4(1));
    let refusing = Script::new(&[(v4(1), Step::Fail(ms(100), ErrorKind::ConnectionRefused))]);
    let alone = remembering
        .connect_with("one.test:1", refusing.dialer())
        .await;

    // Forgotten: with a second address the resolver's order holds again (v6 first), which
    // a remembered v4 winner would have changed.
    answers.set("one.test", &[v6(1), v4(1)]);
    let both = Script::new(&[(v6(1), Step::Connect(ms(1))), (v4(1), Step::Connect(ms(1)))]);
    let won = remembering.connect_with("one.test:1", both.dialer()).await;
    assert_eq!(won.unwrap().addr, v6(1), "the failed winner was forgotten");

    // A report takes the race: its error is the one to match.
    let raced = connector(&Answers::with(&[("one.test", &[v4(1)])]))
        .connect_with_reported("one.test:1", refusing.dialer())
        .await;
    for error in [alone.unwrap_err(), raced.unwrap_err()] {
        let ConnectError::AllAttemptsFailed { attempts, .. } = &error else {
            panic!("expected every attempt to fail, got {error:?}");
        };
        let [attempt] = &attempts[..] else {
            panic!("expected one attempt, got {attempts:?}");
        };
        assert_eq!(attempt.addr(), v4(1));
        assert_eq!(
            attempt.started(),
            ms(30),
            "the attempt starts with the answer"
        );
        assert_eq!(attempt.duration(), ms(100));
        assert_eq!(attempt.error().kind(), ErrorKind::ConnectionRefused);
    }
}

/// `Answers` after a delay, so that the attempt's start is told apart from the connect's.
#[derive(Debug)]
struct DelayedAnswers(std::sync::Arc<Answers>, Duration);

impl Resolve for DelayedAnswers {
    fn resolve<'a>(&'a self, host: &'a str, port: u16) -> Resolving<'a> {
        let answer = self.0.resolve(host, port);
        Box::pin(async move {
            tokio::time::sleep(self.1).await;
            answer.await
        })
    }
}
