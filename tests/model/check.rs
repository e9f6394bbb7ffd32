//! What both model checks share: the scenarios they draw, the way a connect's error reads as
//! a trace, and the case runner. `tests/model_check.rs` runs the whole connector on tokio's
//! paused clock; `src/race/simulation.rs` runs the race's core on a simulated clock, without
//! a runtime. Both compare what they saw with [`expected`](super::expected).

use std::collections::HashMap;
use std::io::ErrorKind;
use std::net::SocketAddr;

use connect_any::{ConnectError, Stage};
use proptest::prelude::*;
use proptest::test_runner::{Config, FileFailurePersistence, TestRunner};

use super::{
    Dial, End, Failure, Families, Lookup, Ms, Part, Reported, Scenario, Settings, Source, Trace,
};

pub fn v4(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

pub fn v6(port: u16) -> SocketAddr {
    SocketAddr::from(([0, 0, 0, 0, 0, 0, 0, 1], port))
}

/// A failed connect as the model states it: which error, its kind, when, and the report.
pub fn failed_end(error: &ConnectError, at: Ms) -> End {
    let ms = |duration: std::time::Duration| duration.as_millis() as Ms;
    let attempts = error
        .attempts()
        .iter()
        .map(|a| Reported {
            addr: a.addr(),
            started: ms(a.started()),
            duration: ms(a.duration()),
            kind: a.error().kind(),
        })
        .collect();
    let failure = match error {
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

/// Runs `run` on random scenarios, as many as the environment variable `cases_from` says
/// (`default` without it), and fails on the first whose trace is not the model's.
pub fn check_random(cases_from: &str, default: u32, run: impl Fn(&Scenario) -> Trace) {
    let cases = std::env::var(cases_from)
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(default);
    let config = Config {
        cases,
        failure_persistence: Some(Box::new(FileFailurePersistence::Off)),
        ..Config::default()
    };
    let started = std::time::Instant::now();
    let mut runner = TestRunner::new(config);
    let outcome = runner.run(&scenario(), |scenario| {
        let expected = super::expected(&scenario);
        let seen = run(&scenario);
        prop_assert_eq!(seen, expected, "scenario: {:#?}", scenario);
        Ok(())
    });
    println!("{cases} scenarios in {:?}", started.elapsed());
    if let Err(failure) = outcome {
        panic!("{failure}");
    }
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
        3 => Just(super::Strategy::HappyEyeballs),
        1 => Just(super::Strategy::Sequential),
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

pub fn scenario() -> impl Strategy<Value = Scenario> {
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

/// Named scenarios, as [`ties`] collects them.
type Ties = Vec<(&'static str, Scenario)>;

/// The ties, decided and documented (see the model's rules), each a named scenario; each
/// function first checks that the model decides it as its name says.
pub fn ties() -> Vec<(&'static str, Scenario)> {
    let mut ties = Vec::new();
    let cases: [fn(&mut Ties); 13] = [
        two_attempts_connecting_at_one_instant_the_earlier_started_wins,
        a_failure_at_a_stagger_tick_starts_one_attempt,
        a_connect_at_the_deadline_is_a_connect,
        an_answer_as_the_resolve_timeout_runs_out_counts,
        the_last_attempt_failing_at_the_deadline_is_all_attempts_failed,
        a_connect_at_a_stagger_tick_starts_nothing_more,
        a_timeout_and_a_connect_at_one_instant_the_connect_wins_and_nothing_starts,
        the_deadline_while_an_answer_is_awaited_is_a_timeout,
        the_last_answer_at_the_deadline_is_too_late,
        answers_in_parts_start_and_join_the_race,
        an_answer_at_the_resolve_bound_still_joins_the_race,
        an_attempt_that_ends_as_it_starts_comes_before_an_answer,
        an_attempt_failing_as_it_starts_at_the_resolve_bound_leaves_the_answer_awaited,
    ];
    for case in cases {
        case(&mut ties);
    }
    ties
}

/// Fails unless `run` gives the model's trace for every one of [`ties`].
pub fn check_ties(run: impl Fn(&Scenario) -> Trace) {
    for (name, scenario) in ties() {
        let expected = super::expected(&scenario);
        assert_eq!(
            run(&scenario),
            expected,
            "{name}: the model and the run disagree"
        );
    }
}

fn both(strategy: super::Strategy) -> Settings {
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

fn two_attempts_connecting_at_one_instant_the_earlier_started_wins(
    ties: &mut Vec<(&'static str, Scenario)>,
) {
    let list = [v6(1), v4(1)];
    // The first started at 0 and connects at 300; the second started at 250, connects at 300.
    let dials = [(v6(1), Dial::Connect(300)), (v4(1), Dial::Connect(50))];
    let scenario = scenario_of(&list, &dials, both(super::Strategy::HappyEyeballs));
    let expected = super::expected(&scenario);
    assert_eq!(
        expected.end,
        End::Won {
            addr: v6(1),
            at: 300
        }
    );
    ties.push((
        "two_attempts_connecting_at_one_instant_the_earlier_started_wins",
        scenario,
    ));
}

fn a_failure_at_a_stagger_tick_starts_one_attempt(ties: &mut Ties) {
    let list = [v6(1), v4(1), v6(2)];
    let dials = [
        (v6(1), Dial::Fail(250, ErrorKind::ConnectionRefused)),
        (v6(2), Dial::Connect(10)),
    ];
    let scenario = scenario_of(&list, &dials, both(super::Strategy::HappyEyeballs));
    let expected = super::expected(&scenario);
    assert_eq!(expected.starts, [(v6(1), 0), (v4(1), 250), (v6(2), 500)]);
    ties.push(("a_failure_at_a_stagger_tick_starts_one_attempt", scenario));
}

fn a_connect_at_the_deadline_is_a_connect(ties: &mut Ties) {
    let mut settings = both(super::Strategy::HappyEyeballs);
    settings.timeout = Some(500);
    let scenario = scenario_of(&[v6(1)], &[(v6(1), Dial::Connect(500))], settings);
    assert_eq!(
        super::expected(&scenario).end,
        End::Won {
            addr: v6(1),
            at: 500
        }
    );
    ties.push(("a_connect_at_the_deadline_is_a_connect", scenario));
}

fn an_answer_as_the_resolve_timeout_runs_out_counts(ties: &mut Ties) {
    let mut settings = both(super::Strategy::HappyEyeballs);
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
        super::expected(&scenario).end,
        End::Won {
            addr: v4(1),
            at: 105
        }
    );
    ties.push(("an_answer_as_the_resolve_timeout_runs_out_counts", scenario));
}

fn the_last_attempt_failing_at_the_deadline_is_all_attempts_failed(
    ties: &mut Vec<(&'static str, Scenario)>,
) {
    let mut settings = both(super::Strategy::Sequential);
    settings.timeout = Some(300);
    let list = [v4(1), v4(2)];
    let dials = [
        (v4(1), Dial::Fail(100, ErrorKind::ConnectionRefused)),
        (v4(2), Dial::Fail(200, ErrorKind::ConnectionReset)),
    ];
    let scenario = scenario_of(&list, &dials, settings);
    let End::Failed {
        failure, kind, at, ..
    } = super::expected(&scenario).end
    else {
        panic!("expected a failure");
    };
    assert_eq!(
        (failure, kind, at),
        (Failure::AllAttemptsFailed, ErrorKind::ConnectionReset, 300)
    );
    ties.push((
        "the_last_attempt_failing_at_the_deadline_is_all_attempts_failed",
        scenario,
    ));
}

fn a_connect_at_a_stagger_tick_starts_nothing_more(ties: &mut Ties) {
    let mut settings = both(super::Strategy::HappyEyeballs);
    settings.attempt_delay = 100;
    let list = [v6(1), v4(1), v6(2)];
    let dials = [(v4(1), Dial::Connect(100))];
    let scenario = scenario_of(&list, &dials, settings);
    assert_eq!(
        super::expected(&scenario).starts,
        [(v6(1), 0), (v4(1), 100)]
    );
    ties.push(("a_connect_at_a_stagger_tick_starts_nothing_more", scenario));
}

/// Found by the search: at 400 ms the first attempt times out, the second connects and a
/// stagger tick is due. The engine used to handle the timeout first and start a fifth attempt
/// before it saw the connect.
fn a_timeout_and_a_connect_at_one_instant_the_connect_wins_and_nothing_starts(
    ties: &mut Vec<(&'static str, Scenario)>,
) {
    let mut settings = both(super::Strategy::HappyEyeballs);
    settings.attempt_delay = 100;
    settings.attempt_timeout = Some(400);
    let list = [v6(10), v4(1), v6(2), v4(12), v4(2)];
    let dials = [(v6(10), Dial::Connect(450)), (v4(1), Dial::Connect(300))];
    let scenario = scenario_of(&list, &dials, settings);
    let expected = super::expected(&scenario);
    assert_eq!(expected.starts.len(), 4, "{expected:?}");
    assert_eq!(
        expected.end,
        End::Won {
            addr: v4(1),
            at: 400
        }
    );
    ties.push((
        "a_timeout_and_a_connect_at_one_instant_the_connect_wins_and_nothing_starts",
        scenario,
    ));
}

/// Found by the search, with answers in parts: an A answer's address failed and AAAA is still
/// awaited when the deadline comes; the wait and the deadline end at one instant. Time ran out
/// while an answer was awaited: TimedOut.
fn the_deadline_while_an_answer_is_awaited_is_a_timeout(ties: &mut Ties) {
    let mut settings = both(super::Strategy::HappyEyeballs);
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
    let End::Failed { failure, at, .. } = super::expected(&scenario).end else {
        panic!("expected a failure");
    };
    assert_eq!((failure, at), (Failure::TimedOutConnecting, 3000));
    ties.push((
        "the_deadline_while_an_answer_is_awaited_is_a_timeout",
        scenario,
    ));
}

/// Found by the search: the last answer (a failed AAAA) arrives at the very deadline. It is
/// too late; the connect times out rather than reporting every attempt failed.
fn the_last_answer_at_the_deadline_is_too_late(ties: &mut Ties) {
    let mut settings = both(super::Strategy::HappyEyeballs);
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
    let End::Failed { failure, .. } = super::expected(&scenario).end else {
        panic!("expected a failure");
    };
    assert_eq!(failure, Failure::TimedOutConnecting);
    ties.push(("the_last_answer_at_the_deadline_is_too_late", scenario));
}

/// Answers in parts, the plain cases: AAAA late within the resolution delay puts IPv6 first;
/// an A answer while IPv6 attempts run goes next.
fn answers_in_parts_start_and_join_the_race(ties: &mut Ties) {
    let settings = both(super::Strategy::HappyEyeballs);
    let scenario = Scenario {
        source: Source::Parts {
            aaaa: Some((30, Part::Addrs(vec![v6(1), v6(2)]))),
            a: Some((0, Part::Addrs(vec![v4(1)]))),
        },
        dials: [(v4(1), Dial::Connect(5))].into_iter().collect(),
        settings,
    };
    let trace = super::expected(&scenario);
    assert_eq!(trace.starts, [(v6(1), 30), (v4(1), 280)]);
    ties.push(("answers_in_parts_start_and_join_the_race", scenario));
    let late_a = Scenario {
        source: Source::Parts {
            aaaa: Some((0, Part::Addrs(vec![v6(1), v6(2)]))),
            a: Some((100, Part::Addrs(vec![v4(1)]))),
        },
        dials: [(v4(1), Dial::Connect(5))].into_iter().collect(),
        settings,
    };
    assert_eq!(super::expected(&late_a).starts, [(v6(1), 0), (v4(1), 250)]);
    ties.push(("answers_in_parts_start_and_join_the_race", late_a));
}

/// Found by the search: AAAA and A both answer at the very resolve bound. The race starts on
/// the AAAA answer, and the A answer of the same instant still counts (the engine dropped it).
fn an_answer_at_the_resolve_bound_still_joins_the_race(ties: &mut Ties) {
    let mut settings = both(super::Strategy::HappyEyeballs);
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
    let trace = super::expected(&scenario);
    assert_eq!(trace.starts, [(v6(1), 1200), (v4(1), 1250)]);
    ties.push((
        "an_answer_at_the_resolve_bound_still_joins_the_race",
        scenario,
    ));
}

/// Found by the search on the core: at 100 ms an attempt fails, the next one starts and fails
/// at once (as a connect to an unreachable network fails inside `connect(2)`), and an AAAA
/// answer arrives. That failure is an attempt finished at this instant, so it comes before the
/// answer: the IPv4 address left from the first answer starts, and connects, before the IPv6
/// one is merged. The model used to take the answer first; the connector never did.
fn an_attempt_that_ends_as_it_starts_comes_before_an_answer(ties: &mut Ties) {
    let settings = both(super::Strategy::HappyEyeballs);
    let scenario = Scenario {
        source: Source::Parts {
            aaaa: Some((100, Part::Addrs(vec![v6(1)]))),
            a: Some((0, Part::Addrs(vec![v4(1), v4(2), v4(3)]))),
        },
        dials: [
            (v4(1), Dial::Fail(50, ErrorKind::ConnectionRefused)),
            (v4(2), Dial::Fail(0, ErrorKind::ConnectionRefused)),
            (v4(3), Dial::Connect(0)),
            (v6(1), Dial::Connect(0)),
        ]
        .into_iter()
        .collect(),
        settings,
    };
    let trace = super::expected(&scenario);
    assert_eq!(trace.starts, [(v4(1), 50), (v4(2), 100), (v4(3), 100)]);
    assert_eq!(
        trace.end,
        End::Won {
            addr: v4(3),
            at: 100
        }
    );
    ties.push((
        "an_attempt_that_ends_as_it_starts_comes_before_an_answer",
        scenario,
    ));
}

/// Found by the search: AAAA and A both answer at the very resolve bound, and the AAAA
/// address fails the instant it starts. Its failure comes first (as above), and the race then
/// still awaits the A answer of that instant, which counts: its address starts and connects.
/// The model ended the race there, as if nothing were awaited once it had started at the
/// bound; the connector never did.
fn an_attempt_failing_as_it_starts_at_the_resolve_bound_leaves_the_answer_awaited(ties: &mut Ties) {
    let mut settings = both(super::Strategy::HappyEyeballs);
    settings.resolve_timeout = Some(400);
    let scenario = Scenario {
        source: Source::Parts {
            aaaa: Some((400, Part::Addrs(vec![v6(1)]))),
            a: Some((400, Part::Addrs(vec![v4(1)]))),
        },
        dials: [
            (v6(1), Dial::Fail(0, ErrorKind::ConnectionRefused)),
            (v4(1), Dial::Connect(0)),
        ]
        .into_iter()
        .collect(),
        settings,
    };
    let trace = super::expected(&scenario);
    assert_eq!(trace.starts, [(v6(1), 400), (v4(1), 400)]);
    assert_eq!(
        trace.end,
        End::Won {
            addr: v4(1),
            at: 400
        }
    );
    ties.push((
        "an_attempt_failing_as_it_starts_at_the_resolve_bound_leaves_the_answer_awaited",
        scenario,
    ));
}
