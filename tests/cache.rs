//! The answer cache on the paused clock, with a scripted resolver that counts its calls: no
//! call within the TTL, a stale answer raced at 0 ms with one refresh however many connects
//! find it, the refresh joining the race, an outage served until `max_stale`, and the rules
//! of what is kept and shared.

mod common;

use std::io::{self, ErrorKind};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{Script, Step, TimedParts, ms, v4};
use connect_any::{
    AddressSource, Answer, AnswerCache, Answering, ConnectError, Connector, Resolve, Resolving,
    Stage,
};

/// Answers in parts, timed from each call, that a test changes between connects; counts the
/// calls.
#[derive(Debug, Default)]
struct Scripted {
    answers: Mutex<TimedParts>,
    calls: AtomicUsize,
    /// The next call panics.
    panics: std::sync::atomic::AtomicBool,
}

impl Scripted {
    fn new(answers: &[(u64, Answer)]) -> Arc<Self> {
        let scripted = Arc::new(Self::default());
        scripted.set(answers);
        scripted
    }

    fn set(&self, answers: &[(u64, Answer)]) {
        let parts = answers.iter().map(|(at, answer)| (ms(*at), answer.clone()));
        *self.answers.lock().unwrap() = TimedParts {
            parts: parts.collect(),
            then_hangs: false,
        };
    }

    /// Answers nothing, ever: a server that went silent.
    fn hang(&self) {
        *self.answers.lock().unwrap() = TimedParts {
            parts: Vec::new(),
            then_hangs: true,
        };
    }

    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

impl Resolve for Scripted {
    fn resolve<'a>(&'a self, _host: &'a str, _port: u16) -> Resolving<'a> {
        unreachable!("the connector asks for answers in parts")
    }

    fn resolve_in_parts<'a>(&'a self, _host: &'a str, _port: u16) -> Answering<'a> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if self.panics.swap(false, Ordering::SeqCst) {
            panic!("a scripted resolver panic");
        }
        self.answers.lock().unwrap().answering()
    }
}

/// The AAAA answer (none) and the A answer `addrs`, both at `at` ms.
fn ipv4_at(at: u64, addrs: &[SocketAddr]) -> Vec<(u64, Answer)> {
    vec![
        (at, Answer::ipv6(Ok(Vec::new()))),
        (at, Answer::ipv4(Ok(addrs.to_vec()))),
    ]
}

fn failing(kind: ErrorKind) -> Answer {
    Answer::all(Err(io::Error::new(kind, format!("scripted {kind}"))))
}

/// A connector on `resolver` whose answers without a TTL live 1 s and may be raced 10 s past
/// it; no winner memory, so that only the cache decides the order.
fn connector(resolver: &Arc<Scripted>) -> Connector {
    let cache = AnswerCache::new()
        .default_ttl(ms(1000))
        .negative_ttl(ms(5000))
        .max_stale(ms(10_000));
    Connector::new()
        .resolver(resolver.clone())
        .winner_memory(0, Duration::ZERO)
        .answer_cache(cache)
}

/// Connects to `cache.test:1`, each address as `steps` says; the attempts' starts, and the
/// winner or the error.
async fn connect(
    connector: &Connector,
    steps: &[(SocketAddr, Step)],
) -> (
    Vec<(SocketAddr, Duration)>,
    Result<SocketAddr, ConnectError>,
) {
    let script = Script::new(steps);
    let result = connector
        .connect_with("cache.test:1", script.dialer())
        .await;
    (script.starts(), result.map(|stream| stream.addr))
}

fn connects(addr: SocketAddr) -> (SocketAddr, Step) {
    (addr, Step::Connect(ms(1)))
}

/// A connector on a new scripted resolver with `answers`, changed by `tune`, whose cached
/// answer has just expired: one connect (to 127.0.0.1:1) filled the cache, and its 1 s TTL
/// has passed.
async fn expired(
    answers: &[(u64, Answer)],
    tune: impl FnOnce(Connector) -> Connector,
) -> (Arc<Scripted>, Connector) {
    let resolver = Scripted::new(answers);
    let connector = tune(connector(&resolver));
    connect(&connector, &[connects(v4(1))]).await.1.unwrap();
    tokio::time::sleep(ms(1000)).await;
    (resolver, connector)
}

#[tokio::test(start_paused = true)]
async fn within_the_ttl_the_resolver_is_not_asked() {
    let resolver = Scripted::new(&ipv4_at(20, &[v4(1)]));
    let connector = connector(&resolver);
    let (starts, won) = connect(&connector, &[connects(v4(1))]).await;
    assert_eq!(starts, [(v4(1), ms(20))], "the first connect waits for DNS");
    assert_eq!(won.unwrap(), v4(1));
    tokio::time::sleep(ms(900)).await;
    let (starts, won) = connect(&connector, &[connects(v4(1))]).await;
    assert_eq!(
        starts,
        [(v4(1), ms(0))],
        "the cached answer is dialed at once"
    );
    assert_eq!(won.unwrap(), v4(1));
    assert_eq!(resolver.calls(), 1);
}

#[tokio::test(start_paused = true)]
async fn after_the_ttl_the_stale_answer_is_dialed_at_once_and_refreshed() {
    let (resolver, connector) = expired(&ipv4_at(20, &[v4(1)]), |connector| connector).await;
    let (starts, won) = connect(&connector, &[connects(v4(1))]).await;
    assert_eq!(starts, [(v4(1), ms(0))], "stale, and still dialed at 0 ms");
    assert_eq!(won.unwrap(), v4(1));
    assert_eq!(resolver.calls(), 2, "one refresh");
    // The refresh outlives the connect and fills the cache: the next connect is fresh.
    tokio::time::sleep(ms(20)).await;
    let (starts, _) = connect(&connector, &[connects(v4(1))]).await;
    assert_eq!(starts, [(v4(1), ms(0))]);
    assert_eq!(resolver.calls(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_thousand_connects_to_an_expired_name_make_one_refresh() {
    let (resolver, connector) = expired(&ipv4_at(20, &[v4(1)]), |connector| connector).await;
    let script = Script::new(&[connects(v4(1))]);
    let burst = (0..1000).map(|_| connector.connect_with("cache.test:1", script.dialer()));
    let results = futures_util::future::join_all(burst).await;
    assert!(results.iter().all(Result::is_ok));
    assert_eq!(script.starts().len(), 1000);
    assert!(script.start_times().iter().all(|at| *at == ms(0)));
    assert_eq!(resolver.calls(), 2, "1,000 stale connects, one refresh");
}

#[tokio::test(start_paused = true)]
async fn a_refreshed_new_address_starts_when_it_arrives() {
    let (resolver, connector) = expired(&ipv4_at(0, &[v4(1)]), |connector| connector).await;
    resolver.set(&ipv4_at(20, &[v4(1), v4(2)]));
    let (starts, won) = connect(&connector, &[(v4(1), Step::Hang), connects(v4(2))]).await;
    assert_eq!(
        starts,
        [(v4(1), ms(0)), (v4(2), ms(20))],
        "at 20 ms, not at the 250 ms tick"
    );
    assert_eq!(won.unwrap(), v4(2));
}

#[tokio::test(start_paused = true)]
async fn a_stale_address_that_refuses_waits_for_the_refresh() {
    let (resolver, connector) = expired(&ipv4_at(0, &[v4(1)]), |connector| connector).await;
    resolver.set(&ipv4_at(20, &[v4(2)]));
    let refuses = (v4(1), Step::Fail(ms(1), ErrorKind::ConnectionRefused));
    let (starts, won) = connect(&connector, &[refuses, connects(v4(2))]).await;
    assert_eq!(starts, [(v4(1), ms(0)), (v4(2), ms(20))]);
    assert_eq!(won.unwrap(), v4(2), "no error: the refresh answered");
}

#[tokio::test(start_paused = true)]
async fn stale_addresses_the_refresh_no_longer_lists_are_not_started() {
    let (resolver, connector) = expired(&ipv4_at(0, &[v4(1), v4(2)]), |connector| {
        connector.timeout(ms(1000))
    })
    .await;
    resolver.set(&ipv4_at(20, &[v4(3)]));
    let steps = [(v4(1), Step::Hang), connects(v4(2)), (v4(3), Step::Hang)];
    let (starts, result) = connect(&connector, &steps).await;
    assert_eq!(
        starts,
        [(v4(1), ms(0)), (v4(3), ms(20))],
        "127.0.0.1:2 was withdrawn by the refresh before its turn"
    );
    let error = result.unwrap_err();
    assert!(matches!(error, ConnectError::TimedOut { .. }), "{error:?}");
}

#[tokio::test(start_paused = true)]
async fn an_outage_is_served_from_the_stale_answer_until_max_stale() {
    let resolver = Scripted::new(&ipv4_at(0, &[v4(1)]));
    let connector = connector(&resolver);
    connect(&connector, &[connects(v4(1))]).await.1.unwrap();
    resolver.set(&[(300, failing(ErrorKind::TimedOut))]);
    // At 1 s, 5.3 s and 9.6 s: stale, within max_stale.
    for wait in [1000, 4000, 4000] {
        tokio::time::sleep(ms(wait)).await;
        let (starts, won) = connect(&connector, &[connects(v4(1))]).await;
        assert_eq!(starts, [(v4(1), ms(0))]);
        assert_eq!(won.unwrap(), v4(1), "served stale through the outage");
        // Let the refresh fail before the next connect.
        tokio::time::sleep(ms(300)).await;
    }
    assert_eq!(
        resolver.calls(),
        4,
        "each stale connect refreshed, none succeeded"
    );
    // At 11.1 s: past the A answer's TTL (1 s) and max_stale (10 s).
    tokio::time::sleep(ms(1200)).await;
    let (starts, result) = connect(&connector, &[connects(v4(1))]).await;
    assert!(starts.is_empty());
    let error = result.unwrap_err();
    let ConnectError::Resolve { cause, .. } = &error else {
        panic!("the resolver's error: {error:?}");
    };
    assert_eq!(cause.kind(), ErrorKind::TimedOut);
    assert_eq!(resolver.calls(), 5);
}

#[tokio::test(start_paused = true)]
async fn a_refresh_is_bounded_by_the_resolve_timeout() {
    let (resolver, connector) = expired(&ipv4_at(0, &[v4(1)]), |connector| {
        connector.resolve_timeout(ms(400))
    })
    .await;
    // The refresh would answer at 600 ms, past the resolve timeout: it is dropped at 400 ms.
    resolver.set(&ipv4_at(600, &[v4(2)]));
    connect(&connector, &[connects(v4(1))]).await.1.unwrap();
    tokio::time::sleep(ms(1000)).await;
    let (starts, _) = connect(&connector, &[connects(v4(1))]).await;
    assert_eq!(starts, [(v4(1), ms(0))], "the late answer was never kept");
    assert_eq!(
        resolver.calls(),
        3,
        "the timed-out refresh let another start"
    );
}

#[tokio::test(start_paused = true)]
async fn the_refresh_outlives_the_connect_only_until_the_resolve_timeout() {
    let (resolver, connector) = expired(&ipv4_at(0, &[v4(1)]), |connector| {
        connector.resolve_timeout(ms(400))
    })
    .await;
    resolver.hang();
    let tasks = || {
        tokio::runtime::Handle::current()
            .metrics()
            .num_alive_tasks()
    };
    let before = tasks();
    let (starts, won) = connect(&connector, &[connects(v4(1))]).await;
    assert_eq!((starts, won.unwrap()), (vec![(v4(1), ms(0))], v4(1)));
    assert_eq!(
        tasks(),
        before + 1,
        "the refresh runs on after the connect returned"
    );
    tokio::time::sleep(ms(398)).await;
    assert_eq!(tasks(), before + 1);
    tokio::time::sleep(ms(2)).await;
    tokio::task::yield_now().await;
    assert_eq!(tasks(), before, "and ends at the resolve timeout");
}

#[tokio::test(start_paused = true)]
async fn a_fresh_answer_whose_addresses_all_fail_is_refreshed_by_the_next_connect() {
    let refuses = |addr| (addr, Step::Fail(ms(1), ErrorKind::ConnectionRefused));
    // One address (the literal's path) and two (the race's).
    for cached in [vec![v4(1)], vec![v4(1), v4(3)]] {
        let resolver = Scripted::new(&ipv4_at(0, &cached));
        let connector = connector(&resolver);
        connect(&connector, &[connects(v4(1))]).await.1.unwrap();
        // The service moves to 127.0.0.1:2, and its old addresses refuse.
        resolver.set(&ipv4_at(20, &[v4(2)]));
        let steps = [refuses(v4(1)), refuses(v4(3)), connects(v4(2))];
        let (starts, result) = connect(&connector, &steps).await;
        assert!(starts.iter().all(|(_, at)| *at <= ms(1)), "{starts:?}");
        let error = result.unwrap_err();
        assert!(
            matches!(error, ConnectError::AllAttemptsFailed { .. }),
            "{error:?}"
        );
        assert_eq!(resolver.calls(), 1, "within the TTL");
        // Every cached address failed: the answer is stale, and refreshed in the next race.
        let (starts, won) = connect(&connector, &steps).await;
        assert_eq!(starts.last(), Some(&(v4(2), ms(20))), "{starts:?}");
        assert_eq!(won.unwrap(), v4(2));
        assert_eq!(resolver.calls(), 2);
    }
}

#[tokio::test(start_paused = true)]
async fn a_refresh_that_panics_lets_the_next_one_start() {
    let (resolver, connector) = expired(&ipv4_at(0, &[v4(1)]), |connector| connector).await;
    resolver.panics.store(true, Ordering::SeqCst);
    let (starts, won) = connect(&connector, &[connects(v4(1))]).await;
    assert_eq!(
        (starts, won.unwrap()),
        (vec![(v4(1), ms(0))], v4(1)),
        "the stale answer served"
    );
    tokio::time::sleep(ms(1)).await;
    connect(&connector, &[connects(v4(1))]).await.1.unwrap();
    assert_eq!(
        resolver.calls(),
        3,
        "the panicked refresh is no longer in flight"
    );
}

#[tokio::test(start_paused = true)]
async fn negative_answers_are_kept_for_the_negative_ttl() {
    let resolver = Scripted::new(&[(20, failing(ErrorKind::NotFound))]);
    let connector = connector(&resolver);
    for _ in 0..2 {
        let error = connect(&connector, &[]).await.1.unwrap_err();
        assert!(matches!(error, ConnectError::Resolve { .. }), "{error:?}");
    }
    assert_eq!(resolver.calls(), 1, "no such name, kept");
    // After 5 s the negative answer is stale: nothing to dial, so the connect waits for the
    // refresh, which now finds the name.
    tokio::time::sleep(ms(5000)).await;
    resolver.set(&ipv4_at(20, &[v4(1)]));
    let (starts, won) = connect(&connector, &[connects(v4(1))]).await;
    assert_eq!(starts, [(v4(1), ms(20))]);
    assert_eq!(won.unwrap(), v4(1));
    assert_eq!(resolver.calls(), 2);
}

#[tokio::test(start_paused = true)]
async fn resolver_errors_are_never_kept() {
    let resolver = Scripted::new(&[(20, failing(ErrorKind::TimedOut))]);
    let connector = connector(&resolver);
    for calls in 1..=2 {
        let error = connect(&connector, &[]).await.1.unwrap_err();
        assert!(matches!(error, ConnectError::Resolve { .. }), "{error:?}");
        assert_eq!(resolver.calls(), calls);
    }
}

#[tokio::test(start_paused = true)]
async fn clones_share_the_cache_and_the_setters_give_a_new_one() {
    let resolver = Scripted::new(&ipv4_at(0, &[v4(1)]));
    let connector = connector(&resolver);
    connect(&connector, &[connects(v4(1))]).await.1.unwrap();
    connect(&connector.clone(), &[connects(v4(1))])
        .await
        .1
        .unwrap();
    let tuned = connector.clone().nodelay(true);
    connect(&tuned, &[connects(v4(1))]).await.1.unwrap();
    assert_eq!(resolver.calls(), 1, "clones, tuned or not, share one cache");
    let renewed = connector.clone().answer_cache(AnswerCache::new());
    connect(&renewed, &[connects(v4(1))]).await.1.unwrap();
    assert_eq!(resolver.calls(), 2, "answer_cache gives a new, empty cache");
    let other = connector.clone().resolver(resolver.clone());
    connect(&other, &[connects(v4(1))]).await.1.unwrap();
    assert_eq!(
        resolver.calls(),
        3,
        "a new resolver starts with an empty cache"
    );
}

#[tokio::test(start_paused = true)]
async fn a_full_cache_evicts_the_name_stored_least_recently() {
    let resolver = Scripted::new(&ipv4_at(0, &[v4(1)]));
    let cache = AnswerCache::new().capacity(1);
    let connector = Connector::new()
        .resolver(resolver.clone())
        .answer_cache(cache);
    let script = Script::new(&[connects(v4(1))]);
    for name in ["a.test:1", "b.test:1", "b.test:1", "a.test:1"] {
        connector.connect_with(name, script.dialer()).await.unwrap();
    }
    assert_eq!(
        resolver.calls(),
        3,
        "b evicted a; b was then cached; a was asked again"
    );
    let larger = connector.answer_cache(AnswerCache::new().capacity(2));
    for name in ["a.test:1", "b.test:1", "b.test:1", "a.test:1"] {
        larger.connect_with(name, script.dialer()).await.unwrap();
    }
    assert_eq!(resolver.calls(), 5);
}

#[tokio::test(start_paused = true)]
async fn names_match_without_case_or_a_trailing_dot() {
    let resolver = Scripted::new(&ipv4_at(0, &[v4(1)]));
    let connector = connector(&resolver);
    let script = Script::new(&[connects(v4(1))]);
    for name in ["cache.test:1", "CACHE.Test.:1", "cache.test.:1"] {
        connector.connect_with(name, script.dialer()).await.unwrap();
    }
    assert_eq!(resolver.calls(), 1);
    connector
        .connect_with("cache.test:2", script.dialer())
        .await
        .unwrap();
    assert_eq!(resolver.calls(), 2, "another port is another entry");
}

#[tokio::test(start_paused = true)]
async fn overrides_and_literals_never_enter_the_cache() {
    let resolver = Scripted::new(&ipv4_at(0, &[v4(2)]));
    let connector = connector(&resolver).resolve_override("cache.test", None, [v4(1)]);
    let script = Script::new(&[connects(v4(1)), connects(v4(2))]);
    for target in ["cache.test:1", "127.0.0.1:1"] {
        for _ in 0..2 {
            let (_, report) = connector
                .connect_with_reported(target, script.dialer())
                .await
                .unwrap();
            let expected = match target {
                "cache.test:1" => AddressSource::Override,
                _ => AddressSource::Target,
            };
            assert_eq!(report.source(), expected);
        }
    }
    assert_eq!(resolver.calls(), 0);
}

#[tokio::test(start_paused = true)]
async fn turned_off_every_connect_waits_for_the_resolver() {
    let resolver = Scripted::new(&ipv4_at(20, &[v4(1)]));
    let connector = connector(&resolver).answer_cache(None);
    for calls in 1..=3 {
        let (starts, won) = connect(&connector, &[connects(v4(1))]).await;
        assert_eq!(starts, [(v4(1), ms(20))]);
        assert_eq!(won.unwrap(), v4(1));
        assert_eq!(resolver.calls(), calls);
    }
}

#[tokio::test(start_paused = true)]
async fn the_report_says_whether_the_cache_answered_and_how() {
    let resolver = Scripted::new(&ipv4_at(20, &[v4(1)]));
    let connector = connector(&resolver);
    let script = Script::new(&[connects(v4(1)), connects(v4(2))]);
    let mut reported = Vec::new();
    for wait in [0, 500, 600] {
        tokio::time::sleep(ms(wait)).await;
        let (_, report) = connector
            .connect_with_reported("cache.test:1", script.dialer())
            .await
            .unwrap();
        reported.push(report);
    }
    let sources: Vec<_> = reported.iter().map(|report| report.source()).collect();
    use AddressSource::{Cache, Resolver, StaleCache};
    assert_eq!(sources, [Resolver, Cache, StaleCache]);
    let answers = |report: &connect_any::ConnectReport| -> Vec<_> {
        let answers = report.answers().iter();
        answers
            .map(|answer| (answer.family(), answer.addresses(), answer.at()))
            .collect()
    };
    use connect_any::Family::{Ipv4, Ipv6};
    let cached = [(Some(Ipv6), 0, ms(0)), (Some(Ipv4), 1, ms(0))];
    assert_eq!(answers(&reported[1]), cached);
    assert_eq!(
        answers(&reported[2]),
        cached,
        "the winner came before the refresh"
    );
    let table = format!("{:#}", reported[2]);
    assert!(
        table.contains("addresses from the answer cache (stale"),
        "{table}"
    );
}

#[tokio::test(start_paused = true)]
async fn durations_without_a_limit_are_accepted() {
    let resolver = Scripted::new(&ipv4_at(0, &[v4(1)]));
    let forever = AnswerCache::new()
        .default_ttl(Duration::MAX)
        .ttl_range(Duration::MAX, Duration::MAX)
        .negative_ttl(Duration::MAX)
        .max_stale(Duration::MAX);
    let connector = connector(&resolver).answer_cache(forever);
    connect(&connector, &[connects(v4(1))]).await.1.unwrap();
    tokio::time::sleep(Duration::from_secs(86_400 * 365)).await;
    let (starts, _) = connect(&connector, &[connects(v4(1))]).await;
    assert_eq!(starts, [(v4(1), ms(0))]);
    assert_eq!(resolver.calls(), 1);
    let zero = AnswerCache::new()
        .default_ttl(Duration::ZERO)
        .negative_ttl(Duration::ZERO)
        .max_stale(Duration::ZERO);
    let connector = connector.answer_cache(zero);
    for calls in 2..=3 {
        connect(&connector, &[connects(v4(1))]).await.1.unwrap();
        assert_eq!(resolver.calls(), calls, "zero keeps nothing");
    }
}

#[tokio::test(start_paused = true)]
async fn the_resolve_stage_of_a_stale_connect_ends_with_the_overall_timeout() {
    // A stale negative answer leaves nothing to dial: the connect waits for the refresh, as
    // long as the overall timeout lets it.
    let resolver = Scripted::new(&[(0, Answer::all(Ok(Vec::new())))]);
    let connector = connector(&resolver).timeout(ms(300));
    connect(&connector, &[]).await.1.unwrap_err();
    tokio::time::sleep(ms(5000)).await;
    resolver.set(&ipv4_at(1000, &[v4(1)]));
    let error = connect(&connector, &[]).await.1.unwrap_err();
    assert!(
        matches!(error, ConnectError::TimedOut { stage: Stage::Resolve, elapsed, .. } if elapsed == ms(300)),
        "{error:?}"
    );
}
