//! The executable specification of one connect: given a scenario, the trace connect-any must
//! produce. Plain code in whole milliseconds, with no tokio and no futures, written to be read.
//!
//! # The rules
//!
//! **Addresses.** A pre-resolved list is used in its given order. A name is answered by the
//! resolver once, `at` some time: an error makes the connect fail with `Resolve` (kind
//! `NotFound` here) at that time; addresses are used in the resolver's order, interleaved by
//! family for Happy Eyeballs (RFC 8305 §4: `first_family_count` addresses of the first
//! address's family, then one of each family in turn, the rest of either family last). Either
//! way, repeated addresses and addresses of a family not allowed are dropped, the first
//! occurrence keeping its place. Nothing left: `NoAddresses` (kind `NotFound`).
//!
//! **Resolution time.** Resolution is bounded by the earlier of `timeout` and
//! `resolve_timeout`, both counted from the start of the connect. An answer that arrives at
//! that very instant counts; one that does not: `TimedOut` at the bound, stage `Resolve`, no
//! attempts.
//!
//! **Answers in parts.** A resolver may answer AAAA and A separately, each at its own time (or
//! never), with addresses, none (a negative answer) or a failure; at one instant AAAA comes
//! before A. The race starts when an AAAA answer brings an address; when an A answer brings
//! one first, it waits for AAAA at most `resolution_delay` from then, and any AAAA answer ends
//! the wait (IPv6 addresses first, each family in its order, then interleaved). When both have
//! answered and nothing came: `Resolve` if a query failed, else `NoAddresses`. If the bound
//! comes first: the race starts with what came, or `TimedOut` (stage `Resolve`) if nothing
//! did. Answers after the start join the addresses not yet started: for Happy Eyeballs the
//! families alternate again starting with the family the last started attempt was not of,
//! sequentially they go last; a new address starts at once if nothing runs or the stagger has
//! passed since the last start, else at the tick. Answers are awaited until the bound; the
//! connect fails with `AllAttemptsFailed` only once none is awaited any more. At one instant,
//! attempts that finished come first (an attempt that a failure started and that ends the
//! instant it starts among them), then answers, then the stagger tick, then the deadline,
//! and only then does the wait for answers end: an answer, even the last, at the deadline is
//! too late, and the connect times out.
//!
//! **The race.** The first attempt starts when the addresses are known. With Happy Eyeballs the
//! next starts `attempt_delay` after the last start; with either strategy the next starts at
//! once when an attempt fails (an attempt timeout is a failure with kind `TimedOut`). Starting
//! one never disturbs another. Each failure starts one attempt, so two failures at one instant
//! start two; a failure at the instant of a stagger tick starts one, and the delay counts anew
//! from it. No attempt starts at or after the overall deadline.
//!
//! **The end.** At each instant: if an attempt connects then, the connect succeeds then, with
//! the earliest-started attempt that connected at that instant (a connect at the instant its
//! attempt would time out, or at the overall deadline, is a connect). Otherwise, if the
//! deadline has come: `TimedOut` (stage `Connect`) when anything is still running or left to
//! start, else `AllAttemptsFailed`. Otherwise, when nothing runs and nothing is left:
//! `AllAttemptsFailed`. Its kind is the most relevant failure's: an error past the handshake
//! first, then refused or denied, then timed out, then unreachable, then "this machine cannot
//! use that address"; among equals the earliest attempt.
//!
//! **The report.** Every attempt, in start order, with its start and how long it ran until it
//! failed or the connect ended; attempts still running when time ran out have kind `TimedOut`.
//!
//! Not modelled: the winner memory, the adaptive delay, the address policy and cancellation,
//! each tested on its own.
#![allow(dead_code, unreachable_pub)]

pub mod check;

use std::collections::{HashMap, VecDeque};
use std::io::ErrorKind;
use std::net::SocketAddr;

/// Whole milliseconds since the connect began.
pub type Ms = u64;

/// What dialing an address does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dial {
    /// Connects this long after the attempt starts.
    Connect(Ms),
    /// Fails with this kind this long after the attempt starts.
    Fail(Ms, ErrorKind),
    /// Never answers.
    Hang,
}

/// Where the addresses come from.
#[derive(Clone, Debug)]
pub enum Source {
    /// A pre-resolved list.
    List(Vec<SocketAddr>),
    /// A name whose answer arrives `at` (never, for `None`).
    Name { at: Option<Ms>, answer: Lookup },
    /// A name whose AAAA and A answers arrive separately (never, for `None`).
    Parts {
        aaaa: Option<(Ms, Part)>,
        a: Option<(Ms, Part)>,
    },
}

/// The resolver's answer for a name.
#[derive(Clone, Debug)]
pub enum Lookup {
    Addrs(Vec<SocketAddr>),
    NotFound,
}

/// One family's answer, when it comes in parts.
#[derive(Clone, Debug)]
pub enum Part {
    /// Addresses (none: a negative answer).
    Addrs(Vec<SocketAddr>),
    /// The query failed.
    Fails(ErrorKind),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Strategy {
    HappyEyeballs,
    Sequential,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Families {
    Both,
    V4Only,
    V6Only,
}

impl Families {
    fn allows(self, addr: &SocketAddr) -> bool {
        match self {
            Families::Both => true,
            Families::V4Only => addr.is_ipv4(),
            Families::V6Only => addr.is_ipv6(),
        }
    }
}

#[derive(Clone, Copy, Debug)]
pub struct Settings {
    pub strategy: Strategy,
    pub attempt_delay: Ms,
    pub resolution_delay: Ms,
    pub attempt_timeout: Option<Ms>,
    pub timeout: Option<Ms>,
    pub resolve_timeout: Option<Ms>,
    pub first_family_count: usize,
    pub families: Families,
}

#[derive(Clone, Debug)]
pub struct Scenario {
    pub source: Source,
    /// What each address does; an address not listed hangs.
    pub dials: HashMap<SocketAddr, Dial>,
    pub settings: Settings,
}

/// Which error a failed connect returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure {
    Resolve,
    NoAddresses,
    AllAttemptsFailed,
    TimedOutResolving,
    TimedOutConnecting,
}

/// One attempt in an error's report.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reported {
    pub addr: SocketAddr,
    pub started: Ms,
    pub duration: Ms,
    pub kind: ErrorKind,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum End {
    Won {
        addr: SocketAddr,
        at: Ms,
    },
    Failed {
        failure: Failure,
        kind: ErrorKind,
        at: Ms,
        attempts: Vec<Reported>,
    },
}

/// Every attempt's address and start, in start order, then how the connect ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Trace {
    pub starts: Vec<(SocketAddr, Ms)>,
    pub end: End,
}

/// The trace connect-any must produce for `scenario`.
pub fn expected(scenario: &Scenario) -> Trace {
    let settings = &scenario.settings;
    let deadline = settings.timeout;
    let (addrs, began) = match &scenario.source {
        Source::Parts { aaaa, a } => return expected_parts(scenario, aaaa, a),
        Source::List(list) => (usable(list, settings.families), 0),
        Source::Name { at, answer } => {
            let bound = earlier(deadline, settings.resolve_timeout);
            match at.filter(|&at| bound.is_none_or(|bound| at <= bound)) {
                None => {
                    let at = bound.expect("a scenario that never resolves has a bound");
                    return failed(Failure::TimedOutResolving, ErrorKind::TimedOut, at, vec![]);
                }
                Some(at) => match answer {
                    Lookup::NotFound => {
                        return failed(Failure::Resolve, ErrorKind::NotFound, at, vec![]);
                    }
                    Lookup::Addrs(list) => {
                        let list = usable(list, settings.families);
                        let list = match settings.strategy {
                            Strategy::HappyEyeballs => {
                                interleave(&list, settings.first_family_count)
                            }
                            Strategy::Sequential => list,
                        };
                        (list, at)
                    }
                },
            }
        }
    };
    if addrs.is_empty() {
        return failed(Failure::NoAddresses, ErrorKind::NotFound, began, vec![]);
    }
    race(scenario, &addrs, began, vec![], Awaiting::No)
}

/// The first phase for answers in parts: when the race starts and with what, or how the
/// connect fails before it.
fn expected_parts(scenario: &Scenario, aaaa: &Option<(Ms, Part)>, a: &Option<(Ms, Part)>) -> Trace {
    let settings = &scenario.settings;
    let bound = earlier(settings.timeout, settings.resolve_timeout);
    // The answers in the order they arrive: by time, AAAA first at one instant.
    let mut parts: Vec<(Ms, bool, &Part)> = Vec::new();
    parts.extend(aaaa.as_ref().map(|(at, part)| (*at, true, part)));
    parts.extend(a.as_ref().map(|(at, part)| (*at, false, part)));
    parts.sort_by_key(|&(at, is_aaaa, _)| (at, !is_aaaa));
    let (mut ipv6, mut ipv4): (Vec<SocketAddr>, Vec<SocketAddr>) = (vec![], vec![]);
    let (mut heard_aaaa, mut heard_a) = (false, false);
    let mut failures = 0;
    let mut wait_ends: Option<Ms> = None;
    let want_ipv6 = settings.families != Families::V4Only;
    let mut next_part = 0;
    let start_at = loop {
        let part_at = parts.get(next_part).map(|&(at, _, _)| at);
        let timer = earlier(wait_ends, bound);
        // A part at the instant of a timer comes first.
        let part_first = part_at.is_some_and(|at| timer.is_none_or(|timer| at <= timer));
        match (part_at, timer) {
            (Some(at), _) if part_first => {
                let (_, is_aaaa, part) = parts[next_part];
                next_part += 1;
                match part {
                    Part::Addrs(list) => {
                        for addr in usable(list, settings.families) {
                            let family = if addr.is_ipv6() { &mut ipv6 } else { &mut ipv4 };
                            if !family.contains(&addr) {
                                family.push(addr);
                            }
                        }
                    }
                    Part::Fails(_) => failures += 1,
                }
                if is_aaaa {
                    heard_aaaa = true;
                } else {
                    heard_a = true;
                }
                if !ipv6.is_empty() {
                    break at;
                }
                if !ipv4.is_empty() {
                    if heard_aaaa || !want_ipv6 {
                        break at;
                    }
                    wait_ends = wait_ends.or(Some(at + settings.resolution_delay));
                }
                if heard_aaaa && heard_a && ipv6.is_empty() && ipv4.is_empty() {
                    let (failure, kind) = match failures {
                        0 => (Failure::NoAddresses, ErrorKind::NotFound),
                        _ => (Failure::Resolve, resolve_kind(aaaa, a)),
                    };
                    return failed(failure, kind, at, vec![]);
                }
            }
            (_, Some(timer)) => {
                if ipv4.is_empty() {
                    return failed(
                        Failure::TimedOutResolving,
                        ErrorKind::TimedOut,
                        timer,
                        vec![],
                    );
                }
                break timer;
            }
            _ => unreachable!("a scenario that never resolves has a bound"),
        }
    };
    let mut first: Vec<SocketAddr> = ipv6.iter().chain(&ipv4).copied().collect();
    if settings.strategy == Strategy::HappyEyeballs {
        first = interleave(&first, settings.first_family_count);
    }
    // Answers still to come join the race, unless the bound has passed.
    let mut seen = first.clone();
    let mut later = Vec::new();
    for &(at, _, part) in &parts[next_part..] {
        if bound.is_some_and(|bound| at > bound) {
            break;
        }
        if let Part::Addrs(list) = part {
            let fresh: Vec<_> = usable(list, settings.families)
                .into_iter()
                .filter(|addr| !seen.contains(addr))
                .collect();
            seen.extend(&fresh);
            later.push((at, fresh));
        } else {
            later.push((at, vec![]));
        }
    }
    // Answers are awaited until the last one has come, or the bound; a query that never
    // answers is awaited until the bound (forever without one). A race that starts at the
    // bound still awaits an answer of that very instant.
    let at_bound = start_at == bound.unwrap_or(Ms::MAX) && later.is_empty();
    let awaited = if at_bound || (heard_aaaa && heard_a) {
        Awaiting::No
    } else if aaaa.is_none() || a.is_none() {
        bound.map_or(Awaiting::Forever, Awaiting::Until)
    } else {
        let last = parts.last().map_or(start_at, |&(at, _, _)| at);
        Awaiting::Until(bound.map_or(last, |bound| bound.min(last)))
    };
    race(scenario, &first, start_at, later, awaited)
}

/// How long answers are awaited during the race.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Awaiting {
    No,
    Until(Ms),
    Forever,
}

/// The kind of a `Resolve` error: the failed query's, the more telling of two.
fn resolve_kind(aaaa: &Option<(Ms, Part)>, a: &Option<(Ms, Part)>) -> ErrorKind {
    let kind = |part: &Option<(Ms, Part)>| match part {
        Some((_, Part::Fails(kind))) => Some(*kind),
        _ => None,
    };
    match (kind(aaaa), kind(a)) {
        (Some(ErrorKind::NotFound), Some(other)) | (Some(other), _) | (None, Some(other)) => other,
        (None, None) => ErrorKind::NotFound,
    }
}

/// One started attempt.
struct Attempt {
    addr: SocketAddr,
    started: Ms,
    /// When and how it ends by itself: connected (`Ok`) or failed.
    ends: Option<(Ms, Result<(), ErrorKind>)>,
    /// How it ended, once it has.
    failed: Option<(Ms, ErrorKind)>,
}

/// The race from `began`: `addrs` to start with, and `later` answers' new addresses at their
/// times while answers are `awaited`.
fn race(
    scenario: &Scenario,
    addrs: &[SocketAddr],
    began: Ms,
    later: Vec<(Ms, Vec<SocketAddr>)>,
    mut awaited: Awaiting,
) -> Trace {
    let settings = &scenario.settings;
    let deadline = settings.timeout;
    let happy = settings.strategy == Strategy::HappyEyeballs;
    let mut attempts: Vec<Attempt> = Vec::new();
    let mut pending: VecDeque<SocketAddr> = addrs.iter().copied().collect();
    let mut later: VecDeque<(Ms, Vec<SocketAddr>)> = later.into();
    // The last start's tick (when the next may start) and address.
    let mut last: Option<(Option<Ms>, SocketAddr)> = None;
    let mut next_tick: Option<Ms> = None;
    let mut now = began;
    let start = |now: Ms,
                 attempts: &mut Vec<Attempt>,
                 pending: &mut VecDeque<SocketAddr>,
                 last: &mut Option<(Option<Ms>, SocketAddr)>| {
        if deadline.is_some_and(|deadline| now >= deadline) {
            return None;
        }
        let addr = pending.pop_front()?;
        let dial = scenario.dials.get(&addr).copied().unwrap_or(Dial::Hang);
        attempts.push(Attempt {
            addr,
            started: now,
            ends: ends(dial, now, settings.attempt_timeout),
            failed: None,
        });
        let tick = happy.then_some(now + settings.attempt_delay);
        *last = Some((tick, addr));
        tick.filter(|_| !pending.is_empty())
    };
    next_tick = start(now, &mut attempts, &mut pending, &mut last).or(next_tick);
    loop {
        let running = |attempts: &[Attempt]| attempts.iter().any(|a| a.failed.is_none());
        let past_deadline = deadline.is_some_and(|deadline| now >= deadline);
        if !running(&attempts) {
            match (pending.is_empty(), awaited) {
                (true, Awaiting::No) => return report(attempts, Failure::AllAttemptsFailed, now),
                (true, _) if !past_deadline => {}
                _ => return report(attempts, Failure::TimedOutConnecting, now),
            }
        }
        // The next instant anything happens.
        let finishes = attempts
            .iter()
            .filter(|a| a.failed.is_none())
            .filter_map(|a| a.ends.map(|(at, _)| at));
        let tick = next_tick.filter(|&tick| deadline.is_none_or(|deadline| tick < deadline));
        let answer = later.front().map(|&(at, _)| at);
        let awaited_end = match awaited {
            Awaiting::Until(until) => Some(until),
            _ => None,
        };
        now = finishes
            .chain(tick)
            .chain(answer)
            .chain(awaited_end)
            .chain(deadline)
            .min()
            .expect("a scenario that could hang has a deadline");
        // Attempts that finished at this instant: a connection wins, the earliest started.
        let connected = attempts
            .iter()
            .find(|a| a.failed.is_none() && a.ends == Some((now, Ok(()))));
        if let Some(winner) = connected {
            return Trace {
                starts: starts(&attempts),
                end: End::Won {
                    addr: winner.addr,
                    at: now,
                },
            };
        }
        let mut failures = 0;
        for attempt in attempts.iter_mut().filter(|a| a.failed.is_none()) {
            if let Some((at, Err(kind))) = attempt.ends
                && at == now
            {
                attempt.failed = Some((now, kind));
                failures += 1;
            }
        }
        for _ in 0..failures {
            next_tick = start(now, &mut attempts, &mut pending, &mut last);
        }
        let ends_now = attempts
            .iter()
            .any(|a| a.failed.is_none() && a.ends.is_some_and(|(at, _)| at == now));
        if failures > 0 && (ends_now || (!running(&attempts) && pending.is_empty())) {
            // Checked again at the top of the loop, before any answer at this instant: an
            // attempt that ends the instant it starts is an attempt finished at this instant.
            continue;
        }
        // Then answers that arrived at this instant.
        while later.front().is_some_and(|&(at, _)| at == now) {
            let (_, added) = later.pop_front().unwrap_or_default();
            if added.is_empty() {
                continue;
            }
            let last_family_v6 = last.map(|(_, addr)| addr.is_ipv6());
            merge(&mut pending, &added, last_family_v6, happy);
            let tick = last.and_then(|(tick, _)| tick);
            if !running(&attempts) || tick.is_some_and(|tick| tick <= now) {
                next_tick = start(now, &mut attempts, &mut pending, &mut last);
            } else {
                next_tick = tick;
            }
        }
        if failures == 0 && next_tick == Some(now) {
            next_tick = start(now, &mut attempts, &mut pending, &mut last);
        }
        // The deadline before the end of the wait for answers: if both come at one instant,
        // time ran out while an answer was still awaited.
        if deadline.is_some_and(|deadline| now >= deadline) {
            let waiting = awaited != Awaiting::No;
            let failure = match running(&attempts) || !pending.is_empty() || waiting {
                true => Failure::TimedOutConnecting,
                false => Failure::AllAttemptsFailed,
            };
            return report(attempts, failure, now);
        }
        if matches!(awaited, Awaiting::Until(until) if until <= now) {
            awaited = Awaiting::No;
        }
    }
}

/// Merges new addresses into the ones not yet started: alternating families again from the
/// one the last started attempt was not of (Happy Eyeballs), or last (sequentially).
fn merge(
    pending: &mut VecDeque<SocketAddr>,
    added: &[SocketAddr],
    last_v6: Option<bool>,
    happy: bool,
) {
    pending.extend(added);
    if !happy {
        return;
    }
    let (mut ipv6, mut ipv4): (VecDeque<SocketAddr>, VecDeque<SocketAddr>) =
        pending.drain(..).partition(|a| a.is_ipv6());
    let mut take_v6 = !last_v6.unwrap_or(false);
    while !ipv6.is_empty() || !ipv4.is_empty() {
        let next = match take_v6 {
            true => ipv6.pop_front().or_else(|| ipv4.pop_front()),
            false => ipv4.pop_front().or_else(|| ipv6.pop_front()),
        };
        pending.extend(next);
        take_v6 = !take_v6;
    }
}

/// When and how an attempt started at `started` ends by itself, with its own timeout: a
/// connect or failure at the instant of the timeout happens; the timeout is a `TimedOut`.
fn ends(dial: Dial, started: Ms, timeout: Option<Ms>) -> Option<(Ms, Result<(), ErrorKind>)> {
    let natural = match dial {
        Dial::Connect(after) => Some((started + after, Ok(()))),
        Dial::Fail(after, kind) => Some((started + after, Err(kind))),
        Dial::Hang => None,
    };
    let timed_out = timeout.map(|limit| (started + limit, Err(ErrorKind::TimedOut)));
    match (natural, timed_out) {
        (Some(natural), Some(timed_out)) if natural.0 > timed_out.0 => Some(timed_out),
        (natural, timed_out) => natural.or(timed_out),
    }
}

fn report(attempts: Vec<Attempt>, failure: Failure, now: Ms) -> Trace {
    let reported: Vec<Reported> = attempts
        .iter()
        .map(|a| {
            let (ended, kind) = a.failed.unwrap_or((now, ErrorKind::TimedOut));
            Reported {
                addr: a.addr,
                started: a.started,
                duration: ended - a.started,
                kind,
            }
        })
        .collect();
    let kind = match failure {
        Failure::AllAttemptsFailed => most_relevant(&reported),
        _ => ErrorKind::TimedOut,
    };
    Trace {
        starts: starts(&attempts),
        end: End::Failed {
            failure,
            kind,
            at: now,
            attempts: reported,
        },
    }
}

fn failed(failure: Failure, kind: ErrorKind, at: Ms, attempts: Vec<Reported>) -> Trace {
    Trace {
        starts: vec![],
        end: End::Failed {
            failure,
            kind,
            at,
            attempts,
        },
    }
}

fn starts(attempts: &[Attempt]) -> Vec<(SocketAddr, Ms)> {
    attempts.iter().map(|a| (a.addr, a.started)).collect()
}

/// The most relevant failure's kind; ties go to the earliest attempt.
fn most_relevant(attempts: &[Reported]) -> ErrorKind {
    let rank = |kind: ErrorKind| match kind {
        ErrorKind::AddrNotAvailable | ErrorKind::AddrInUse | ErrorKind::Unsupported => 0,
        ErrorKind::NetworkUnreachable | ErrorKind::HostUnreachable | ErrorKind::NetworkDown => 1,
        ErrorKind::TimedOut | ErrorKind::Interrupted => 2,
        ErrorKind::ConnectionRefused | ErrorKind::PermissionDenied => 3,
        _ => 4,
    };
    let mut best: Option<ErrorKind> = None;
    for attempt in attempts {
        if best.is_none_or(|best| rank(attempt.kind) > rank(best)) {
            best = Some(attempt.kind);
        }
    }
    best.unwrap_or(ErrorKind::Other)
}

fn usable(list: &[SocketAddr], families: Families) -> Vec<SocketAddr> {
    let mut kept = Vec::new();
    for addr in list {
        if families.allows(addr) && !kept.contains(addr) {
            kept.push(*addr);
        }
    }
    kept
}

fn interleave(list: &[SocketAddr], first_family_count: usize) -> Vec<SocketAddr> {
    let Some(first) = list.first() else {
        return vec![];
    };
    let (mut same, mut other): (Vec<SocketAddr>, Vec<SocketAddr>) =
        list.iter().partition(|a| a.is_ipv6() == first.is_ipv6());
    same.reverse();
    other.reverse();
    let mut ordered = Vec::new();
    for _ in 0..first_family_count.max(1) {
        ordered.extend(same.pop());
    }
    while !same.is_empty() || !other.is_empty() {
        ordered.extend(other.pop());
        ordered.extend(same.pop());
    }
    ordered
}

fn earlier(a: Option<Ms>, b: Option<Ms>) -> Option<Ms> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}
