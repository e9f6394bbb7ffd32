//! The engine against the executable specification (`tests/model/mod.rs`): random scenarios run
//! through the real connector on tokio's paused clock, with a scripted resolver and dialer, must
//! produce exactly the model's trace, and hold the invariants below whatever the model says.
//!
//! `CONNECT_ANY_MODEL_CASES=100000 cargo test --release --test model_check` for a long run.

mod common;
mod model;

use std::collections::HashSet;
use std::net::SocketAddr;
use std::time::Duration;

use common::{FixedResolver, Script, Step, TimedParts};
use connect_any::{Connector, IpFamilies, Target};
use model::check::{check_random, check_ties, failed_end};
use model::{Dial, End, Families, Lookup, Ms, Part, Scenario, Settings, Source, Trace};

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
    // Every other scenario without the answer cache: on (its first connect records what the
    // resolver says) or off, the connector must agree with the model.
    static SCENARIOS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let mut connector = connector(&scenario.settings);
    if SCENARIOS.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % 2 == 1 {
        connector = connector.answer_cache(None);
    }
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
            let end = failed_end(&error, at);
            let End::Failed { attempts, .. } = &end else {
                unreachable!("a failure's end")
            };
            let listed: Vec<_> = attempts.iter().map(|a| (a.addr, a.started)).collect();
            assert_eq!(
                listed, starts,
                "the error lists every attempt in start order"
            );
            end
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

#[test]
fn the_engine_follows_the_model_on_random_scenarios() {
    check_random("CONNECT_ANY_MODEL_CASES", 2000, run);
}

#[test]
fn the_engine_decides_each_named_tie_as_the_model() {
    check_ties(run);
}
