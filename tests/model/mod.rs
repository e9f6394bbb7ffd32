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

use std::collections::HashMap;
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
    Name { at: Option<Ms>, answer: Answer },
}

/// The resolver's answer for a name.
#[derive(Clone, Debug)]
pub enum Answer {
    Addrs(Vec<SocketAddr>),
    NotFound,
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
        Source::List(list) => (usable(list, settings.families), 0),
        Source::Name { at, answer } => {
            let bound = earlier(deadline, settings.resolve_timeout);
            match at.filter(|&at| bound.is_none_or(|bound| at <= bound)) {
                None => {
                    let at = bound.expect("a scenario that never resolves has a bound");
                    return failed(Failure::TimedOutResolving, ErrorKind::TimedOut, at, vec![]);
                }
                Some(at) => match answer {
                    Answer::NotFound => {
                        return failed(Failure::Resolve, ErrorKind::NotFound, at, vec![]);
                    }
                    Answer::Addrs(list) => {
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
    race(scenario, &addrs, began)
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

fn race(scenario: &Scenario, addrs: &[SocketAddr], began: Ms) -> Trace {
    let settings = &scenario.settings;
    let deadline = settings.timeout;
    let mut attempts: Vec<Attempt> = Vec::new();
    let mut left = addrs.iter();
    let mut now = began;
    let start = |now: Ms, attempts: &mut Vec<Attempt>, left: &mut std::slice::Iter<'_, _>| {
        if deadline.is_some_and(|deadline| now >= deadline) {
            return None;
        }
        let &addr = left.next()?;
        let dial = scenario.dials.get(&addr).copied().unwrap_or(Dial::Hang);
        attempts.push(Attempt {
            addr,
            started: now,
            ends: ends(dial, now, settings.attempt_timeout),
            failed: None,
        });
        match settings.strategy {
            Strategy::HappyEyeballs if left.len() > 0 => Some(now + settings.attempt_delay),
            _ => None,
        }
    };
    let mut next_tick = start(now, &mut attempts, &mut left);
    loop {
        let running = || attempts.iter().filter(|a| a.failed.is_none());
        if running().count() == 0 {
            let failure = match left.len() {
                0 => Failure::AllAttemptsFailed,
                _ => Failure::TimedOutConnecting,
            };
            return report(attempts, failure, now);
        }
        // The next instant anything happens.
        let finishes = running().filter_map(|a| a.ends.map(|(at, _)| at));
        let tick = next_tick.filter(|&tick| deadline.is_none_or(|deadline| tick < deadline));
        now = finishes
            .chain(tick)
            .chain(deadline)
            .min()
            .expect("a scenario that could hang has a deadline");
        let connected = running().find(|a| a.ends == Some((now, Ok(()))));
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
            if let Some((at, Err(kind))) = attempt.ends {
                if at == now {
                    attempt.failed = Some((now, kind));
                    failures += 1;
                }
            }
        }
        if deadline.is_some_and(|deadline| now >= deadline) {
            let running = attempts.iter().any(|a| a.failed.is_none());
            let failure = match running || left.len() > 0 {
                true => Failure::TimedOutConnecting,
                false => Failure::AllAttemptsFailed,
            };
            return report(attempts, failure, now);
        }
        if failures > 0 {
            for _ in 0..failures {
                next_tick = start(now, &mut attempts, &mut left);
            }
        } else if next_tick == Some(now) {
            next_tick = start(now, &mut attempts, &mut left);
        }
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
