//! The engine against the executable specification (`tests/model/mod.rs`): random scenarios run
//! through the real connector on tokio's paused clock, with a scripted resolver and dialer, must
//! produce exactly the model's trace, and hold the invariants below whatever the model says.
//!
//! `CONNECT_ANY_MODEL_CASES=100000 cargo test --release --test model_check` for a long run.

mod common;
mod model;

use std::collections::{HashMap, HashSet};
use std::io::ErrorKind;
use std::net::SocketAddr;
use std::time::Duration;

use common::{FixedResolver, Script, Step, TimedParts, v4, v6};
use connect_any::{ConnectError, Connector, IpFamilies, Stage, Target};
use model::{
    Dial, End, Failure, Families, Lookup, Ms, Part, Reported, Scenario, Settings, Source, Trace,
};
use proptest::prelude::*;
use proptest::test_runner::{Config, FileFailurePersistence, TestRunner};

const NAME: &str = "model.test";
/// A resolver that never answers answers after this long.
const NEVER: Ms = 100_000_000;

fn ms(duration: Duration) -> Ms {
    duration.as_millis() as Ms
}

fn connector(settings: &Settings) -> Connector {
    let strategy = match settings.strategy {
        model::Strategy::HappyEyeballs => connect_any::Strategy::HappyEyeballs,
        model::Strategy::Sequential => connect_any::Strategy::Sequential,
    };
    let families = match settings.families {
        Families::Both => IpFamilies::Both,
        Families::V4Only => IpFamilies::V4Only,
        Families::V6Only => IpFamilies::V6Only,
    };
    let millis = |limit: Option<Ms>| limit.map(Duration::from_millis);
    Connector::new()
        .strategy(strategy)
        .attempt_delay(Duration::from_millis(settings.attempt_delay))
        .attempt_timeout(millis(settings.attempt_timeout))
        .timeout(millis(settings.timeout))
        .resolve_timeout(millis(settings.resolve_timeout))
        .first_family_count(settings.first_family_count)
        .resolution_delay(Duration::from_millis(settings.resolution_delay))
        .ip_families(families)
        .winner_memory(0, Duration::ZERO)
}

/// AAAA and A answered separately, at their times, in time order (AAAA first at one instant);
/// a part that never comes keeps the stream open.
fn timed_parts(aaaa: &Option<(Ms, Part)>, a: &Option<(Ms, Part)>) -> TimedParts {
    let mut parts: Vec<(Ms, bool, Part)> = Vec::new();
    parts.extend(aaaa.clone().map(|(at, part)| (at, true, part)));
    parts.extend(a.clone().map(|(at, part)| (at, false, part)));
    parts.sort_by_key(|&(at, is_aaaa, _)| (at, !is_aaaa));
    let answer = |is_aaaa, part| {
        let addrs = match part {
            Part::Addrs(addrs) => Ok(addrs),
            Part::Fails(kind) => Err(std::io::Error::new(kind, "scripted")),
        };
        match is_aaaa {
            true => connect_any::Answer::ipv6(addrs),
            false => connect_any::Answer::ipv4(addrs),
        }
    };
    TimedParts {
        parts: parts
            .into_iter()
            .map(|(at, is_aaaa, part)| (Duration::from_millis(at), answer(is_aaaa, part)))
            .collect(),
        then_hangs: aaaa.is_none() || a.is_none(),
    }
}

/// Runs `scenario` through the real connector and checks the invariants that hold whatever
/// the model says; returns the trace it produced.
async fn engine(scenario: &Scenario) -> Trace {
    let steps: Vec<(SocketAddr, Step)> = scenario
        .dials
        .iter()
        .map(|(&addr, &dial)| {
            let step = match dial {
                Dial::Connect(after) => Step::Connect(Duration::from_millis(after)),
                Dial::Fail(after, kind) => Step::Fail(Duration::from_millis(after), kind),
                Dial::Hang => Step::Hang,
            };
            (addr, step)
        })
        .collect();
    let script = Script::new(&steps);
    let mut connector = connector(&scenario.settings);
    let target = match &scenario.source {
        Source::List(list) => Target::from(list.clone()),
        Source::Name { at, answer } => {
            let mut resolver = FixedResolver {
                delay: Duration::from_millis(at.unwrap_or(NEVER)),
                ..FixedResolver::default()
            };
            if let Lookup::Addrs(list) = answer {
                resolver.answers.insert(NAME.to_owned(), list.clone());
            }
            connector = connector.resolver(resolver);
            Target::parse(&format!("{NAME}:1")).unwrap()
        }
        Source::Parts { aaaa, a } => {
            connector = connector.resolver(timed_parts(aaaa, a));
            Target::parse(&format!("{NAME}:1")).unwrap()
        }
    };
    let result = connector.connect_with(target, script.dialer()).await;
    let at = ms(script.elapsed());
    let starts: Vec<(SocketAddr, Ms)> = script
        .starts()
        .into_iter()
        .map(|(addr, started)| (addr, ms(started)))
        .collect();

    // Invariants, independent of the model.
    let dialed: HashSet<_> = starts.iter().map(|&(addr, _)| addr).collect();
    assert_eq!(
        dialed.len(),
        starts.len(),
        "an address dialed twice: {starts:?}"
    );
    if let Some(deadline) = scenario.settings.timeout {
        assert!(
            starts.iter().all(|&(_, started)| started < deadline),
            "an attempt at or after the deadline {deadline}: {starts:?}"
        );
    }
    let end = match result {
        Ok(stream) => {
            assert!(
                starts.iter().all(|&(_, started)| started <= at),
                "a start after the win"
            );
            assert_eq!(script.live(), 1, "only the winner's stream is left");
            End::Won {
                addr: stream.addr,
                at,
            }
        }
        Err(error) => {
            assert_eq!(script.live(), 0, "every dial future was dropped");
            let attempts: Vec<Reported> = error
                .attempts()
                .iter()
                .map(|a| Reported {
                    addr: a.addr(),
                    started: ms(a.started()),
                    duration: ms(a.duration()),
                    kind: a.error().kind(),
                })
                .collect();
            let listed: Vec<_> = attempts.iter().map(|a| (a.addr, a.started)).collect();
            assert_eq!(
                listed, starts,
                "the error lists every attempt in start order"
            );
            let failure = match &error {
                ConnectError::AllAttemptsFailed { .. } => Failure::AllAttemptsFailed,
                ConnectError::TimedOut {
                    stage: Stage::Resolve,
                    ..
                } => Failure::TimedOutResolving,
                ConnectError::TimedOut { .. } => Failure::TimedOutConnecting,
                ConnectError::Resolve { .. } => Failure::Resolve,
                ConnectError::NoAddresses { .. } => Failure::NoAddresses,
                other => panic!("an error the scenario cannot cause: {other:?}"),
            };
            End::Failed {
                failure,
                kind: error.kind(),
                at,
                attempts,
            }
        }
    };
    Trace { starts, end }
}

fn run(scenario: &Scenario) -> Trace {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap()
        .block_on(engine(scenario))
}

/// Checks one scenario: the engine's trace must be the model's.
fn check(scenario: &Scenario) {
    let expected = model::expected(scenario);
    let seen = run(scenario);
    assert_eq!(seen, expected, "engine and model disagree on {scenario:#?}");
}

// Generation: times cluster on multiples of 50 ms so that ties are common.

fn time() -> impl Strategy<Value = Ms> {
    prop_oneof![(0u64..=40).prop_map(|n| n * 50), 0u64..=2000]
}

fn addr() -> impl Strategy<Value = SocketAddr> {
    (any::<bool>(), 1u16..=12).prop_map(|(is_v6, port)| if is_v6 { v6(port) } else { v4(port) })
}

fn kind() -> impl Strategy<Value = ErrorKind> {
    prop::sample::select(vec![
        ErrorKind::ConnectionRefused,
        ErrorKind::ConnectionReset,
        ErrorKind::TimedOut,
        ErrorKind::AddrNotAvailable,
        ErrorKind::NetworkUnreachable,
        ErrorKind::HostUnreachable,
        ErrorKind::PermissionDenied,
        ErrorKind::InvalidData,
    ])
}

fn dial() -> impl Strategy<Value = Dial> {
    prop_oneof![
        time().prop_map(Dial::Connect),
        (time(), kind()).prop_map(|(after, kind)| Dial::Fail(after, kind)),
        Just(Dial::Hang),
    ]
}

fn source() -> impl Strategy<Value = Source> {
    let list = || prop::collection::vec(addr(), 0..=20);
    let answer = prop_oneof![
        9 => list().prop_map(Lookup::Addrs),
        1 => Just(Lookup::NotFound),
    ];
    // A family's part: its own family's addresses, mostly, sometimes none or a failure.
    let part = |is_v6: bool| {
        let addrs = prop::collection::vec(1u16..=12, 0..=8).prop_map(move |ports| {
            let addr = |port| if is_v6 { v6(port) } else { v4(port) };
            ports.into_iter().map(addr).collect()
        });
        prop::option::weighted(
            0.85,
            (
                time(),
                prop_oneof![8 => addrs.prop_map(Part::Addrs), 1 => kind().prop_map(Part::Fails)],
            ),
        )
    };
    prop_oneof![
        list().prop_map(Source::List),
        (prop::option::weighted(0.9, time()), answer)
            .prop_map(|(at, answer)| Source::Name { at, answer }),
        (part(true), part(false)).prop_map(|(aaaa, a)| Source::Parts { aaaa, a }),
    ]
}

fn settings() -> impl Strategy<Value = Settings> {
    let strategy = prop_oneof![
        3 => Just(model::Strategy::HappyEyeballs),
        1 => Just(model::Strategy::Sequential),
    ];
    let delay = prop_oneof![Just(250u64), Just(50), Just(100), 10u64..=300];
    let limit = || prop::option::of(prop_oneof![(1u64..=40).prop_map(|n| n * 50), 1u64..=2000]);
    let families = prop_oneof![
        4 => Just(Families::Both),
        1 => Just(Families::V4Only),
        1 => Just(Families::V6Only),
    ];
    (
        strategy,
        delay,
        limit(),
        limit(),
        limit(),
        1usize..=3,
        families,
        prop_oneof![Just(50u64), 0u64..=300],
    )
        .prop_map(
            |(
                strategy,
                attempt_delay,
                attempt_timeout,
                timeout,
                resolve_timeout,
                count,
                families,
                resolution_delay,
            )| {
                Settings {
                    strategy,
                    attempt_delay,
                    resolution_delay,
                    attempt_timeout,
                    timeout,
                    resolve_timeout,
                    first_family_count: count,
                    families,
                }
            },
        )
}

fn scenario() -> impl Strategy<Value = Scenario> {
    (source(), prop::collection::vec(dial(), 24), settings()).prop_map(
        |(source, dials, mut settings)| {
            let every_addr = (1..=12).flat_map(|port| [v4(port), v6(port)]);
            let dials: HashMap<_, _> = every_addr.zip(dials).collect();
            // A scenario that could hang forever gets an overall timeout.
            let never_answers = matches!(
                source,
                Source::Name { at: None, .. }
                    | Source::Parts { aaaa: None, .. }
                    | Source::Parts { a: None, .. }
            );
            let may_hang = never_answers
                || (settings.attempt_timeout.is_none() && dials.values().any(|d| *d == Dial::Hang));
            if may_hang && settings.timeout.is_none() {
                settings.timeout = Some(3000);
            }
            if matches!(source, Source::Name { at: None, .. }) && settings.resolve_timeout.is_none()
            {
                settings.resolve_timeout = settings.timeout;
            }
            Scenario {
                source,
                dials,
                settings,
            }
        },
    )
}

#[test]
fn the_engine_follows_the_model_on_random_scenarios() {
    let cases = std::env::var("CONNECT_ANY_MODEL_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(2000);
    let config = Config {
        cases,
        failure_persistence: Some(Box::new(FileFailurePersistence::Off)),
        ..Config::default()
    };
    let started = std::time::Instant::now();
    let mut runner = TestRunner::new(config);
    let outcome = runner.run(&scenario(), |scenario| {
        let expected = model::expected(&scenario);
        let seen = run(&scenario);
        prop_assert_eq!(seen, expected, "scenario: {:#?}", scenario);
        Ok(())
    });
    println!("{cases} scenarios in {:?}", started.elapsed());
    if let Err(failure) = outcome {
        panic!("{failure}");
    }
}

// Ties, decided and documented (see the model's rules), each as a named case.

fn both(strategy: model::Strategy) -> Settings {
    Settings {
        strategy,
        attempt_delay: 250,
        resolution_delay: 50,
        attempt_timeout: None,
        timeout: None,
        resolve_timeout: None,
        first_family_count: 1,
        families: Families::Both,
    }
}

fn scenario_of(list: &[SocketAddr], dials: &[(SocketAddr, Dial)], settings: Settings) -> Scenario {
    Scenario {
        source: Source::List(list.to_vec()),
        dials: dials.iter().copied().collect(),
        settings,
    }
}

#[test]
fn two_attempts_connecting_at_one_instant_the_earlier_started_wins() {
    let list = [v6(1), v4(1)];
    // The first started at 0 and connects at 300; the second started at 250, connects at 300.
    let dials = [(v6(1), Dial::Connect(300)), (v4(1), Dial::Connect(50))];
    let scenario = scenario_of(&list, &dials, both(model::Strategy::HappyEyeballs));
    let expected = model::expected(&scenario);
    assert_eq!(
        expected.end,
        End::Won {
            addr: v6(1),
            at: 300
        }
    );
    check(&scenario);
}

#[test]
fn a_failure_at_a_stagger_tick_starts_one_attempt() {
    let list = [v6(1), v4(1), v6(2)];
    let dials = [
        (v6(1), Dial::Fail(250, ErrorKind::ConnectionRefused)),
        (v6(2), Dial::Connect(10)),
    ];
    let scenario = scenario_of(&list, &dials, both(model::Strategy::HappyEyeballs));
    let expected = model::expected(&scenario);
    assert_eq!(expected.starts, [(v6(1), 0), (v4(1), 250), (v6(2), 500)]);
    check(&scenario);
}

#[test]
fn a_connect_at_the_deadline_is_a_connect() {
    let mut settings = both(model::Strategy::HappyEyeballs);
    settings.timeout = Some(500);
    let scenario = scenario_of(&[v6(1)], &[(v6(1), Dial::Connect(500))], settings);
    assert_eq!(
        model::expected(&scenario).end,
        End::Won {
            addr: v6(1),
            at: 500
        }
    );
    check(&scenario);
}

#[test]
fn an_answer_as_the_resolve_timeout_runs_out_counts() {
    let mut settings = both(model::Strategy::HappyEyeballs);
    settings.resolve_timeout = Some(100);
    let scenario = Scenario {
        source: Source::Name {
            at: Some(100),
            answer: Lookup::Addrs(vec![v4(1)]),
        },
        dials: [(v4(1), Dial::Connect(5))].into_iter().collect(),
        settings,
    };
    assert_eq!(
        model::expected(&scenario).end,
        End::Won {
            addr: v4(1),
            at: 105
        }
    );
    check(&scenario);
}

#[test]
fn the_last_attempt_failing_at_the_deadline_is_all_attempts_failed() {
    let mut settings = both(model::Strategy::Sequential);
    settings.timeout = Some(300);
    let list = [v4(1), v4(2)];
    let dials = [
        (v4(1), Dial::Fail(100, ErrorKind::ConnectionRefused)),
        (v4(2), Dial::Fail(200, ErrorKind::ConnectionReset)),
    ];
    let scenario = scenario_of(&list, &dials, settings);
    let End::Failed {
        failure, kind, at, ..
    } = model::expected(&scenario).end
    else {
        panic!("expected a failure");
    };
    assert_eq!(
        (failure, kind, at),
        (Failure::AllAttemptsFailed, ErrorKind::ConnectionReset, 300)
    );
    check(&scenario);
}

#[test]
fn a_connect_at_a_stagger_tick_starts_nothing_more() {
    let mut settings = both(model::Strategy::HappyEyeballs);
    settings.attempt_delay = 100;
    let list = [v6(1), v4(1), v6(2)];
    let dials = [(v4(1), Dial::Connect(100))];
    let scenario = scenario_of(&list, &dials, settings);
    assert_eq!(
        model::expected(&scenario).starts,
        [(v6(1), 0), (v4(1), 100)]
    );
    check(&scenario);
}

/// Found by the search: at 400 ms the first attempt times out, the second connects and a
/// stagger tick is due. The engine used to handle the timeout first and start a fifth attempt
/// before it saw the connect.
#[test]
fn a_timeout_and_a_connect_at_one_instant_the_connect_wins_and_nothing_starts() {
    let mut settings = both(model::Strategy::HappyEyeballs);
    settings.attempt_delay = 100;
    settings.attempt_timeout = Some(400);
    let list = [v6(10), v4(1), v6(2), v4(12), v4(2)];
    let dials = [(v6(10), Dial::Connect(450)), (v4(1), Dial::Connect(300))];
    let scenario = scenario_of(&list, &dials, settings);
    let expected = model::expected(&scenario);
    assert_eq!(expected.starts.len(), 4, "{expected:?}");
    assert_eq!(
        expected.end,
        End::Won {
            addr: v4(1),
            at: 400
        }
    );
    check(&scenario);
}

/// Found by the search, with answers in parts: an A answer's address failed and AAAA is still
/// awaited when the deadline comes; the wait and the deadline end at one instant. Time ran out
/// while an answer was awaited: TimedOut.
#[test]
fn the_deadline_while_an_answer_is_awaited_is_a_timeout() {
    let mut settings = both(model::Strategy::HappyEyeballs);
    settings.attempt_timeout = Some(50);
    settings.timeout = Some(3000);
    let scenario = Scenario {
        source: Source::Parts {
            aaaa: None,
            a: Some((0, Part::Addrs(vec![v4(1)]))),
        },
        dials: [(v4(1), Dial::Connect(200))].into_iter().collect(),
        settings,
    };
    let End::Failed { failure, at, .. } = model::expected(&scenario).end else {
        panic!("expected a failure");
    };
    assert_eq!((failure, at), (Failure::TimedOutConnecting, 3000));
    check(&scenario);
}

/// Found by the search: the last answer (a failed AAAA) arrives at the very deadline. It is
/// too late; the connect times out rather than reporting every attempt failed.
#[test]
fn the_last_answer_at_the_deadline_is_too_late() {
    let mut settings = both(model::Strategy::HappyEyeballs);
    settings.attempt_timeout = Some(50);
    settings.timeout = Some(1400);
    let scenario = Scenario {
        source: Source::Parts {
            aaaa: Some((1400, Part::Fails(ErrorKind::ConnectionRefused))),
            a: Some((0, Part::Addrs(vec![v4(1)]))),
        },
        dials: [(v4(1), Dial::Connect(971))].into_iter().collect(),
        settings,
    };
    let End::Failed { failure, .. } = model::expected(&scenario).end else {
        panic!("expected a failure");
    };
    assert_eq!(failure, Failure::TimedOutConnecting);
    check(&scenario);
}

/// Answers in parts, the plain cases: AAAA late within the resolution delay puts IPv6 first;
/// an A answer while IPv6 attempts run goes next.
#[test]
fn answers_in_parts_start_and_join_the_race() {
    let settings = both(model::Strategy::HappyEyeballs);
    let scenario = Scenario {
        source: Source::Parts {
            aaaa: Some((30, Part::Addrs(vec![v6(1), v6(2)]))),
            a: Some((0, Part::Addrs(vec![v4(1)]))),
        },
        dials: [(v4(1), Dial::Connect(5))].into_iter().collect(),
        settings,
    };
    let trace = model::expected(&scenario);
    assert_eq!(trace.starts, [(v6(1), 30), (v4(1), 280)]);
    check(&scenario);
    let late_a = Scenario {
        source: Source::Parts {
            aaaa: Some((0, Part::Addrs(vec![v6(1), v6(2)]))),
            a: Some((100, Part::Addrs(vec![v4(1)]))),
        },
        dials: [(v4(1), Dial::Connect(5))].into_iter().collect(),
        settings,
    };
    assert_eq!(model::expected(&late_a).starts, [(v6(1), 0), (v4(1), 250)]);
    check(&late_a);
}

/// Found by the search: AAAA and A both answer at the very resolve bound. The race starts on
/// the AAAA answer, and the A answer of the same instant still counts (the engine dropped it).
#[test]
fn an_answer_at_the_resolve_bound_still_joins_the_race() {
    let mut settings = both(model::Strategy::HappyEyeballs);
    settings.attempt_delay = 50;
    settings.resolve_timeout = Some(1200);
    let scenario = Scenario {
        source: Source::Parts {
            aaaa: Some((1200, Part::Addrs(vec![v6(1)]))),
            a: Some((1200, Part::Addrs(vec![v4(1)]))),
        },
        dials: [(v6(1), Dial::Connect(100)), (v4(1), Dial::Connect(0))]
            .into_iter()
            .collect(),
        settings,
    };
    let trace = model::expected(&scenario);
    assert_eq!(trace.starts, [(v6(1), 1200), (v4(1), 1250)]);
    check(&scenario);
}
