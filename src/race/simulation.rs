//! The race's core and the wait for answers on a simulated clock, checked against the
//! executable model in `tests/model`: the scenarios of `tests/model_check.rs`, without tokio,
//! a timer or a future. Time is whole milliseconds that jump from one event to the next; at
//! each instant, what is ready is found through [`poll_in_order`] as the tokio drivers find
//! it, and handed to [`Waiting`] and [`Core`]. The glue between them is the pipeline's own
//! (`direct_addr`, `admit`, `direct_outcome`, `settle`, `unanswered_error`).
//!
//! `CONNECT_ANY_CORE_CASES=1000000 cargo test --release --lib simulation` for a long run.

#[path = "../../tests/model/mod.rs"]
mod model;

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use tokio::time::Instant;

use model::check::{check_random, check_ties, failed_end};
use model::{Dial, End, Families, Lookup, Ms, Part, Scenario, Source, Trace};

use crate::connector::pipeline::{admit, direct_addr, direct_outcome, settle, unanswered_error};
use crate::connector::settings::{Settings, Strategy};
use crate::limits::{Bounded, Woke, deadline_after, earliest, no_answers, no_work, poll_in_order};
use crate::order::admission::{Admission, IpFamilies};
use crate::order::interleave::interleave;
use crate::race::core::{Awaited, Core, Driver, Outcome};
use crate::race::log::Log;
use crate::race::running::timed_out;
use crate::resolve::answers::Answer;
use crate::resolve::gather::{Joining, Waiting};
use crate::target::Target;

/// The connector's settings for a scenario, as `tests/model_check.rs` builds them.
fn settings_of(scenario: &Scenario) -> Settings {
    let model = &scenario.settings;
    let millis = |limit: Option<Ms>| limit.map(Duration::from_millis);
    Settings {
        strategy: match model.strategy {
            model::Strategy::HappyEyeballs => Strategy::HappyEyeballs,
            model::Strategy::Sequential => Strategy::Sequential,
        },
        attempt_delay: Duration::from_millis(model.attempt_delay),
        attempt_timeout: millis(model.attempt_timeout),
        timeout: millis(model.timeout),
        resolve_timeout: millis(model.resolve_timeout),
        resolution_delay: Duration::from_millis(model.resolution_delay),
        first_family_count: model.first_family_count,
        families: match model.families {
            Families::Both => IpFamilies::Both,
            Families::V4Only => IpFamilies::V4Only,
            Families::V6Only => IpFamilies::V6Only,
        },
        ..Settings::default()
    }
}

/// A started attempt: when its script ends it, and when its own timeout does.
struct Simulated {
    index: usize,
    ends: Option<(Ms, Result<(), io::ErrorKind>)>,
    expires: Option<Ms>,
}

/// Everything outside the core: the clock, the scripted attempts and the answers.
struct World<'s> {
    scenario: &'s Scenario,
    attempt_timeout: Option<Duration>,
    base: Instant,
    now: Ms,
    running: Vec<Simulated>,
    starts: Vec<(SocketAddr, Ms)>,
    /// Answers still to come, in order, and when their stream ends (`None`: it never does).
    answers: VecDeque<(Ms, Answer)>,
    answers_end: Option<Ms>,
}

impl World<'_> {
    fn instant(&self, at: Ms) -> Instant {
        self.base + Duration::from_millis(at)
    }

    fn ms(&self, instant: Instant) -> Ms {
        (instant - self.base).as_millis() as Ms
    }

    fn now(&self) -> Instant {
        self.instant(self.now)
    }

    /// Ready once `at` has come, as a timer is.
    fn clock(&self, at: Option<Instant>) -> Poll<()> {
        match at {
            Some(at) if at <= self.now() => Poll::Ready(()),
            _ => Poll::Pending,
        }
    }

    /// How `attempt` ends at this instant, if it does: by its script or by its timeout, in
    /// the order `Dialing` decides them.
    fn ended(&self, attempt: &Simulated, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let work = |_: &mut Context<'_>| match attempt.ends {
            Some((at, result)) if at <= self.now => Poll::Ready(result),
            _ => Poll::Pending,
        };
        let expires = attempt.expires.map(|at| self.instant(at));
        let woke = poll_in_order(cx, None, work, no_answers, |_| self.clock(expires));
        woke.map(|woke| match woke {
            Woke::Finished(result) => result.map_err(|kind| io::Error::new(kind, "scripted")),
            Woke::Due => Err(timed_out(self.attempt_timeout)),
            Woke::Cancelled => unreachable!("an attempt has no token of its own"),
            Woke::Arrived(never) => match never {},
        })
    }

    /// A running attempt that ended at this instant.
    fn next_finished(&mut self) -> Poll<(usize, io::Result<()>)> {
        let mut cx = Context::from_waker(Waker::noop());
        for position in 0..self.running.len() {
            if let Poll::Ready(result) = self.ended(&self.running[position], &mut cx) {
                let attempt = self.running.swap_remove(position);
                return Poll::Ready((attempt.index, result));
            }
        }
        Poll::Pending
    }

    /// The next answer, if it has come; `None` once the answers have ended.
    fn next_answer(&mut self) -> Poll<Option<Answer>> {
        match self.answers.front() {
            Some(&(at, _)) if at <= self.now => Poll::Ready(self.answers.pop_front().map(|a| a.1)),
            None if self.answers_end.is_some_and(|end| end <= self.now) => Poll::Ready(None),
            _ => Poll::Pending,
        }
    }

    /// Moves the clock to the next instant anything happens, `wake_at` among them.
    fn advance(&mut self, wake_at: Option<Instant>) {
        let attempts = self.running.iter().flat_map(|attempt| {
            let ends = attempt.ends.map(|(at, _)| at);
            ends.into_iter().chain(attempt.expires)
        });
        let answer = match self.answers.front() {
            Some(&(at, _)) => Some(at),
            None => self.answers_end,
        };
        let woken = wake_at.map(|at| self.ms(at));
        let next = attempts
            .chain(answer)
            .chain(woken)
            .filter(|&at| at > self.now);
        self.now = next
            .min()
            .expect("a scenario that could hang has a deadline");
    }
}

/// The world as the core's driver; shared, so that the closures given to [`poll_in_order`]
/// can each reach it in turn.
type Shared<'w, 's> = &'w RefCell<World<'s>>;

impl Driver<()> for Shared<'_, '_> {
    fn start(&mut self, index: usize, addr: &SocketAddr, now: Instant) {
        self.borrow_mut().start(index, *addr, now);
    }

    fn also_finished(&mut self) -> Option<(usize, io::Result<()>)> {
        match self.borrow_mut().next_finished() {
            Poll::Ready(finished) => Some(finished),
            Poll::Pending => None,
        }
    }
}

impl World<'_> {
    fn start(&mut self, index: usize, addr: SocketAddr, now: Instant) {
        let now = self.ms(now);
        self.starts.push((addr, now));
        let dial = self.scenario.dials.get(&addr).copied();
        let ends = match dial.unwrap_or(Dial::Hang) {
            Dial::Connect(after) => Some((now + after, Ok(()))),
            Dial::Fail(after, kind) => Some((now + after, Err(kind))),
            Dial::Hang => None,
        };
        let expires = deadline_after(self.instant(now), self.attempt_timeout);
        let expires = expires.map(|at| self.ms(at));
        self.running.push(Simulated {
            index,
            ends,
            expires,
        });
    }
}

/// The answers of a scenario's resolver, as `tests/model_check.rs` scripts them.
fn answers_of(source: &Source) -> (VecDeque<(Ms, Answer)>, Option<Ms>) {
    match source {
        Source::List(_) => (VecDeque::new(), Some(0)),
        Source::Name { at: None, .. } => (VecDeque::new(), None),
        Source::Name {
            at: Some(at),
            answer,
        } => {
            let addrs = match answer {
                Lookup::Addrs(list) => Ok(list.clone()),
                Lookup::NotFound => Err(io::Error::new(io::ErrorKind::NotFound, "no such host")),
            };
            ([(*at, Answer::all(addrs))].into(), Some(*at))
        }
        Source::Parts { aaaa, a } => {
            let mut parts: Vec<(Ms, bool, &Part)> = Vec::new();
            parts.extend(aaaa.as_ref().map(|(at, part)| (*at, true, part)));
            parts.extend(a.as_ref().map(|(at, part)| (*at, false, part)));
            parts.sort_by_key(|&(at, is_aaaa, _)| (at, !is_aaaa));
            let hangs = aaaa.is_none() || a.is_none();
            let end = parts.last().map_or(0, |&(at, _, _)| at);
            let answers = parts.into_iter().map(|(at, is_aaaa, part)| {
                let addrs = match part {
                    Part::Addrs(addrs) => Ok(addrs.clone()),
                    Part::Fails(kind) => Err(io::Error::new(*kind, "scripted")),
                };
                let answer = match is_aaaa {
                    true => Answer::ipv6(addrs),
                    false => Answer::ipv4(addrs),
                };
                (at, answer)
            });
            (answers.collect(), (!hangs).then_some(end))
        }
    }
}

/// One connect of `scenario`, simulated.
fn simulate(scenario: &Scenario) -> Trace {
    let settings = settings_of(scenario);
    let target = match &scenario.source {
        Source::List(list) => Target::from(list.clone()),
        _ => Target::parse("model.test:1").expect("a valid target"),
    };
    let (answers, answers_end) = answers_of(&scenario.source);
    let world = RefCell::new(World {
        scenario,
        attempt_timeout: settings.attempt_timeout,
        base: Instant::now(),
        now: 0,
        running: Vec::new(),
        starts: Vec::new(),
        answers,
        answers_end,
    });
    let result = connect(&settings, &target, &world);
    let world = world.into_inner();
    let end = match result {
        Ok(addr) => End::Won {
            addr,
            at: world.now,
        },
        Err(error) => failed_end(&error, world.now),
    };
    Trace {
        starts: world.starts,
        end,
    }
}

/// The pipeline's steps for a scenario: the direct path for one literal; else the addresses
/// (a list admitted, or the wait for answers), then the race.
fn connect(
    settings: &Settings,
    target: &Target,
    world: Shared<'_, '_>,
) -> Result<SocketAddr, crate::ConnectError> {
    let began = world.borrow().now();
    let deadline = deadline_after(began, settings.timeout);
    if let Some(addr) = direct_addr(settings, target) {
        return connect_direct(settings, target, addr, deadline, world);
    }
    let mut log = Log::new(began, None);
    let (addrs, joining) = match target.addrs() {
        [] => {
            let resolve_deadline = deadline_after(began, settings.resolve_timeout);
            let admission = Admission {
                families: settings.families,
                policy: &settings.policy,
                dns64: None,
            };
            let until = earliest(deadline, resolve_deadline);
            let mut waiting = Waiting::new(admission, settings.resolution_delay, until);
            let decided = loop {
                let mut cx = Context::from_waker(Waker::noop());
                let due = waiting.wake_at();
                let woke = poll_in_order(
                    &mut cx,
                    None,
                    no_work,
                    |_| world.borrow_mut().next_answer(),
                    |_| world.borrow().clock(due),
                );
                match woke {
                    Poll::Ready(woke) => {
                        match waiting.decide(woke, world.borrow().now(), &mut None) {
                            Some(decided) => break decided,
                            None => continue,
                        }
                    }
                    Poll::Pending => world.borrow_mut().advance(due),
                }
            };
            if let Err(unanswered) = decided {
                return Err(unanswered_error(
                    target,
                    unanswered,
                    began..world.borrow().now(),
                ));
            }
            let (mut addrs, joining) = waiting.finish(world.borrow().now());
            if settings.strategy == Strategy::HappyEyeballs {
                interleave(&mut addrs, settings.first_family_count);
            }
            (addrs, joining)
        }
        listed => (admit(settings, target, listed.to_vec())?, None),
    };
    let outcome = race(settings, addrs, joining, deadline, &mut log, world);
    let won = settle(settings, target, outcome, log, None, || {
        world.borrow().now()
    })?;
    Ok(won.addr)
}

/// The race over `addrs`, with the answers still to come admitted by `joining`.
fn race(
    settings: &Settings,
    addrs: Vec<SocketAddr>,
    mut joining: Option<Joining<'_>>,
    deadline: Option<Instant>,
    log: &mut Log<'_>,
    world: Shared<'_, '_>,
) -> Outcome<()> {
    let awaited = joining.as_ref().map(|joining| Awaited {
        until: joining.until,
        remembered: None,
    });
    // As in the connector, a list with nothing to join it is raced where it is.
    let addrs = match awaited {
        Some(_) => Cow::Owned(addrs),
        None => Cow::Borrowed(addrs.as_slice()),
    };
    let timed = settings.adaptive_delay;
    let mut core = Core::new(addrs, awaited, settings.stagger(), deadline, timed, log);
    let began = world.borrow().now();
    if let Some(outcome) = core.begin(began, false, &mut { world }) {
        return outcome;
    }
    loop {
        let mut cx = Context::from_waker(Waker::noop());
        let due = core.wake_at();
        let woke = poll_in_order(
            &mut cx,
            None,
            |_| world.borrow_mut().next_finished(),
            |_| match &mut joining {
                Some(joining) => world
                    .borrow_mut()
                    .next_answer()
                    .map(|answer| answer.map(|answer| joining.admit(answer))),
                None => Poll::Pending,
            },
            |_| world.borrow().clock(due),
        );
        let woke = match woke {
            Poll::Ready(woke) => woke,
            Poll::Pending => {
                world.borrow_mut().advance(due);
                continue;
            }
        };
        let now = world.borrow().now();
        let ended = core.decide(woke, || now, &mut { world });
        if !core.awaits_answers() {
            joining = None;
        }
        if let Some(outcome) = ended {
            return outcome;
        }
    }
}

/// The direct path: one attempt under the deadline, ended as `bounded` ends it.
fn connect_direct(
    settings: &Settings,
    target: &Target,
    addr: SocketAddr,
    deadline: Option<Instant>,
    world: Shared<'_, '_>,
) -> Result<SocketAddr, crate::ConnectError> {
    let began = world.borrow().now();
    if crate::limits::is_past(deadline, began) {
        let log = Log::new(began, None);
        let timed_out = Outcome::<()>::TimedOut;
        return settle(settings, target, timed_out, log, None, || began).map(|won| won.addr);
    }
    world.borrow_mut().start(0, addr, began);
    let ended = loop {
        let mut cx = Context::from_waker(Waker::noop());
        let woke = poll_in_order(
            &mut cx,
            None,
            |_| world.borrow_mut().next_finished(),
            no_answers,
            |_| world.borrow().clock(deadline),
        );
        match woke {
            Poll::Ready(Woke::Finished(finished)) => break Bounded::Done(finished),
            Poll::Ready(Woke::Due) => break Bounded::TimedOut,
            Poll::Ready(Woke::Cancelled) => break Bounded::Cancelled,
            Poll::Ready(Woke::Arrived(never)) => match never {},
            Poll::Pending => world.borrow_mut().advance(deadline),
        }
    };
    let now = world.borrow().now();
    let mut log = Log::new(began, None);
    let outcome = direct_outcome(ended, addr, began, now, &mut log);
    settle(settings, target, outcome, log, None, || now).map(|won| won.addr)
}

#[test]
fn the_core_follows_the_model_on_random_scenarios() {
    check_random("CONNECT_ANY_CORE_CASES", 10_000, simulate);
}

#[test]
fn the_core_decides_each_named_tie_as_the_model() {
    check_ties(simulate);
}

#[test]
fn the_simulation_sees_a_stagger_and_a_fallback() {
    use model::check::{v4, v6};
    let scenario = Scenario {
        source: Source::List(vec![v6(1), v4(1)]),
        dials: [(v4(1), Dial::Connect(7))].into_iter().collect(),
        settings: model::Settings {
            strategy: model::Strategy::HappyEyeballs,
            attempt_delay: 250,
            resolution_delay: 50,
            attempt_timeout: None,
            timeout: Some(1000),
            resolve_timeout: None,
            first_family_count: 1,
            families: Families::Both,
        },
    };
    let trace = simulate(&scenario);
    assert_eq!(trace.starts, [(v6(1), 0), (v4(1), 250)]);
    assert_eq!(
        trace.end,
        End::Won {
            addr: v4(1),
            at: 257
        }
    );
    assert_eq!(trace, model::expected(&scenario));
}
