//! The first phase of a name's resolution: reading answers until the race may start, and
//! the answers still to come once it has.

use std::collections::HashSet;
use std::convert::Infallible;
use std::fmt;
use std::future::poll_fn;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use futures_util::StreamExt;
use tokio::time::Instant;

use crate::limits::{
    Cancel, Timer, Woke, deadline_after, earliest, is_past, no_work, poll_in_order,
};
use crate::order::admission::{Admission, not_in};
use crate::report::observer::Observing;
use crate::resolve::answers::{Answer, Answering, Family, Heard, Next, Query};
use crate::resolve::service::endpoint::Endpoints;
use crate::resolve::service::plan::Plan;
use crate::sync::Keyed;

/// Why a name's answers gave nothing to dial.
#[derive(Debug)]
pub(crate) enum Unanswered {
    /// A query failed and none gave an address.
    Failed(io::Error),
    /// Every address was refused by the policy.
    Denied(Vec<SocketAddr>),
    /// Only negative answers, or only addresses of families not dialed (`filtered` of them).
    NoAddresses {
        filtered: usize,
    },
    TimedOut,
    Cancelled,
}

/// The first addresses to dial, and the answers still to come.
pub(crate) struct Gathered<'a> {
    pub(crate) addrs: Vec<SocketAddr>,
    pub(crate) later: Option<Later<'a>>,
    /// Whether they are the answer cache's fresh answers.
    pub(crate) cached: bool,
    /// For a service connect, the record behind each address and its rank.
    pub(crate) endpoints: Option<Arc<Endpoints>>,
}

/// Reads `answers` until the race may start, by the rules of [`Waiting`], within `until` (the
/// resolve deadline) and the tokens; each answer is told to `observing`. With `plan`, the
/// answers are a service lookup's, turned into endpoints by it.
///
/// The wait's state is built here rather than passed in: an `async fn` keeps a second copy
/// of each argument, and the state is large.
pub(crate) async fn gather<'a>(
    mut answers: Answering<'a>,
    admission: Admission<'a>,
    (resolution_delay, until): (Duration, Option<Instant>),
    plan: Option<Box<Plan>>,
    cancel: Cancel<'_>,
    observing: &mut Observing<'_>,
) -> Result<Gathered<'a>, Unanswered> {
    let waiting = Waiting::new(admission, resolution_delay, until);
    let mut waiting = match plan {
        Some(plan) => waiting.for_service(plan),
        None => waiting,
    };
    let mut timer = Timer::default();
    let mut cancelled = cancel.watch();
    // The wait ends at the instant of the event that ended it, read once.
    let ended_at = poll_fn(|cx| {
        loop {
            let due = waiting.wake_at();
            let woke = ready!(poll_in_order(
                cx,
                cancelled.as_mut(),
                no_work,
                |cx| answers.poll_next_unpin(cx),
                |cx| timer.poll_optional(due, cx),
            ));
            let now = Instant::now();
            if let Some(decided) = waiting.decide(woke, now, observing) {
                return Poll::Ready(decided.map(|()| now));
            }
        }
    })
    .await?;
    let endpoints = waiting.plan.as_ref().map(|plan| plan.endpoints().clone());
    let (addrs, joining) = waiting.finish(ended_at);
    let later = joining.map(|joining| Later { answers, joining });
    let cached = false;
    Ok(Gathered {
        addrs,
        later,
        cached,
        endpoints,
    })
}

/// Answers already at hand (the answer cache's), decided at `now` as if they had all arrived
/// and the answers had ended: the first addresses, or why there are none.
pub(crate) fn gather_at_hand(
    answers: impl IntoIterator<Item = Answer>,
    admission: Admission<'_>,
    now: Instant,
    observing: &mut Observing<'_>,
) -> Result<Vec<SocketAddr>, Unanswered> {
    let mut waiting = Waiting::new(admission, Duration::ZERO, None);
    for answer in answers.into_iter().map(Some).chain([None]) {
        if let Some(Err(unanswered)) = waiting.decide(Woke::Arrived(answer), now, observing) {
            return Err(unanswered);
        }
    }
    Ok(waiting.finish(now).0)
}

/// The wait for the first answers, with no I/O and no clock: fed each event with the instant
/// it happened, it says when the race may start or why it cannot. The race starts on an
/// answer with an address of the preferred family, on any address once the other family has
/// answered or the resolution delay has passed (see [`Heard::hear`]), or with what came when
/// the bound passes; the first addresses come in the resolver's order for a one-shot answer,
/// IPv6 first for answers in parts.
pub(crate) struct Waiting<'a> {
    admission: Admission<'a>,
    resolution_delay: Duration,
    until: Option<Instant>,
    want_ipv6: bool,
    heard: Heard,
    addrs: Vec<SocketAddr>,
    refused: Vec<SocketAddr>,
    /// How many addresses the family filter dropped.
    filtered: usize,
    in_parts: bool,
    /// When the wait for the IPv6 answer ends, once an IPv4 address came first.
    delay_ends: Option<Instant>,
    /// Whether the answers ended.
    ended: bool,
    /// For a service lookup, what turns its answers into endpoints.
    plan: Option<Box<Plan>>,
}

impl<'a> Waiting<'a> {
    pub(crate) fn new(
        admission: Admission<'a>,
        resolution_delay: Duration,
        until: Option<Instant>,
    ) -> Self {
        Self {
            want_ipv6: admission.families.allows(&SocketAddr::from(([0u16; 8], 0))),
            admission,
            resolution_delay,
            until,
            heard: Heard::default(),
            addrs: Vec::new(),
            refused: Vec::new(),
            filtered: 0,
            in_parts: false,
            delay_ends: None,
            ended: false,
            plan: None,
        }
    }

    /// The wait for a service lookup's answers, which `plan` turns into endpoints: the HTTPS
    /// answer is waited for too (HEv3 §4.2).
    pub(crate) fn for_service(self, plan: Box<Plan>) -> Self {
        Self {
            heard: Heard::asking_https(),
            plan: Some(plan),
            ..self
        }
    }

    /// When the core must be told that time passed: the end of the resolution delay or the
    /// bound, whichever is first.
    pub(crate) fn wake_at(&self) -> Option<Instant> {
        earliest(self.delay_ends, self.until)
    }

    /// Decides what `woke` at `now` means: `Some(Ok(()))` when the race may start, an error
    /// when it cannot, `None` to wait on.
    pub(crate) fn decide(
        &mut self,
        woke: Woke<Infallible, Option<Answer>>,
        now: Instant,
        observing: &mut Observing<'_>,
    ) -> Option<Result<(), Unanswered>> {
        let next = match woke {
            Woke::Cancelled => return Some(Err(Unanswered::Cancelled)),
            Woke::Finished(never) => match never {},
            Woke::Arrived(Some(answer)) if self.plan.is_some() => {
                self.hear_planned(answer, now, observing)
            }
            Woke::Arrived(Some(answer)) => {
                self.in_parts |= answer.family.is_some();
                let heard = answer.addrs.as_ref().map(Vec::len);
                if let Some(observer) = observing {
                    observer.answer(answer.family, heard, now);
                }
                let addrs = &mut self.addrs;
                let counted = answer.addrs.map(|list| {
                    let before = addrs.len();
                    self.filtered += self.admission.admit(list, addrs, &mut self.refused);
                    addrs.len() - before
                });
                tracing::debug!(family = ?answer.family, ?counted, "answer");
                self.heard.hear(answer.family, counted, self.want_ipv6)
            }
            Woke::Arrived(None) => {
                self.ended = true;
                match self.addrs.is_empty() {
                    true => Next::NothingCame,
                    false => Next::Start,
                }
            }
            Woke::Due if is_past(self.until, now) && self.addrs.is_empty() => {
                return Some(Err(Unanswered::TimedOut));
            }
            Woke::Due => Next::Start,
        };
        match next {
            Next::Start => {
                let recording = observing.as_mut().and_then(|o| o.recording.as_mut());
                if let (Some(ends), Some(recording)) = (self.delay_ends, recording) {
                    let waited_from = ends.checked_sub(self.resolution_delay).unwrap_or(ends);
                    recording.resolution_delay = Some(now.saturating_duration_since(waited_from));
                }
                Some(Ok(()))
            }
            Next::WaitForIpv6 => {
                let delay = Some(self.resolution_delay);
                self.delay_ends = self.delay_ends.or(deadline_after(now, delay));
                None
            }
            Next::Wait => None,
            Next::NothingCame => Some(Err(self.nothing_came())),
        }
    }

    /// A service lookup's answer, through the plan: its new endpoints admitted, those it
    /// withdrew dropped, and the start decided by HEv3 §4.2.
    fn hear_planned(
        &mut self,
        answer: Answer,
        now: Instant,
        observing: &mut Observing<'_>,
    ) -> Next {
        let Some(plan) = self.plan.as_mut() else {
            unreachable!("called only with a plan");
        };
        let planned = plan.hear(answer);
        if let (Query::Own(family), Some(observer)) = (planned.query, observing.as_mut()) {
            let heard = planned.heard.as_ref().map(|count| *count);
            observer.answer(family, heard, now);
        }
        tracing::debug!(query = ?planned.query, heard = ?planned.heard, added = ?planned.added, "answer");
        self.addrs.retain(not_in(&planned.withdrawn));
        let hinted = [SocketAddr::is_ipv6, SocketAddr::is_ipv4]
            .map(|of_family| planned.added.iter().any(of_family));
        self.filtered += self
            .admission
            .admit(planned.added, &mut self.addrs, &mut self.refused);
        let have_addrs = !self.addrs.is_empty();
        self.heard.hear_service(
            planned.query,
            planned.heard,
            hinted,
            self.want_ipv6,
            have_addrs,
        )
    }

    fn nothing_came(&mut self) -> Unanswered {
        let refused = std::mem::take(&mut self.refused);
        match (
            refused.is_empty(),
            std::mem::take(&mut self.heard).failure(),
        ) {
            (false, _) => Unanswered::Denied(refused),
            (true, Some(error)) => Unanswered::Failed(error),
            (true, None) => Unanswered::NoAddresses {
                filtered: self.filtered,
            },
        }
    }

    /// The first addresses, once the race may start at `now`, and the admission of the
    /// answers still to come, if any are.
    pub(crate) fn finish(self, now: Instant) -> (Vec<SocketAddr>, Option<Joining<'a>>) {
        let mut addrs = self.addrs;
        if let Some(plan) = &self.plan {
            // Stable: each rank's families keep their order.
            let endpoints = plan.endpoints();
            addrs.sort_by_cached_key(|addr| (endpoints.rank(addr), addr.is_ipv4()));
        } else if self.in_parts {
            // Stable: each family keeps its order.
            addrs.sort_by_key(SocketAddr::is_ipv4);
        }
        // An answer at the very bound still counts, so the wait ends only after it.
        let before_bound = self.until.is_none_or(|until| now <= until);
        let heard = &self.heard;
        let awaited = heard.awaits(Family::Ipv6) || heard.awaits(Family::Ipv4);
        // A service lookup may still bring a TargetName's answers: it ends when they have come.
        let more_to_come = !self.ended && before_bound && (awaited || self.plan.is_some());
        let joining = more_to_come.then(|| {
            let mut joining = Joining::new(self.until, &addrs, self.admission);
            joining.joined.plan = self.plan;
            joining
        });
        (addrs, joining)
    }
}

/// The answers still to come once the race has started.
pub(crate) struct Later<'a> {
    answers: Answering<'a>,
    pub(crate) joining: Joining<'a>,
}

impl fmt::Debug for Later<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Later")
            .field("joining", &self.joining)
            .finish_non_exhaustive()
    }
}

/// A late answer: what it said, and its addresses that may join the race.
#[derive(Debug)]
pub(crate) struct Arrival {
    pub(crate) family: Option<Family>,
    /// How many addresses it held, or the query's error.
    pub(crate) heard: io::Result<usize>,
    /// Its addresses that are new and may be dialed, in order.
    pub(crate) added: Vec<SocketAddr>,
    /// For a refresh of a stale answer (whose new addresses go first, at once), the stale
    /// addresses of its family that it no longer lists: not to be started. Boxed, so that a
    /// late answer, which the race's events carry by value, stays small.
    pub(crate) refresh: Option<Box<[SocketAddr]>>,
    /// For a service lookup's answer, how the endpoints not yet started are reordered.
    pub(crate) ranked: Option<Box<Ranked>>,
}

/// What a service lookup's late answer changes besides adding endpoints.
#[derive(Debug)]
pub(crate) struct Ranked {
    /// Endpoints given before that no longer belong (hints replaced): not to be started.
    pub(crate) withdrawn: Vec<SocketAddr>,
    /// The rank of each endpoint, which may have changed.
    pub(crate) endpoints: Arc<Endpoints>,
    /// Whether the answer is the target's own A or AAAA answer, which a report lists.
    pub(crate) own: bool,
}

impl<'a> Later<'a> {
    /// The answers of a refresh, joining a race that started on the stale `addrs`.
    pub(crate) fn refreshing(
        answers: Answering<'a>,
        until: Option<Instant>,
        addrs: &[SocketAddr],
        admission: Admission<'a>,
    ) -> Self {
        let mut joining = Joining::new(until, addrs, admission);
        joining.refreshing = true;
        Self { answers, joining }
    }

    /// Whether these are a refresh's answers.
    #[cfg(feature = "reqwest")]
    pub(crate) fn refreshes(&self) -> bool {
        self.joining.refreshing
    }

    /// The next answer, or `None` once the answers end.
    pub(crate) fn poll_answer(&mut self, cx: &mut Context<'_>) -> Poll<Option<Arrival>> {
        self.answers
            .poll_next_unpin(cx)
            .map(|answer| answer.map(|answer| self.joining.admit(answer)))
    }
}

/// How late answers join the race: admitted like the first ones, and never an address twice.
#[derive(Debug)]
pub(crate) struct Joining<'a> {
    /// When to stop waiting for them: the resolve timeout.
    pub(crate) until: Option<Instant>,
    /// Boxed: a set is 48 bytes inline, and the race's state must stay under the allocator's
    /// per-thread cache limit (see the pipeline's size test); the box is made only for
    /// answers in parts.
    joined: Box<Joined>,
    admission: Admission<'a>,
    /// Whether the answers refresh a stale answer, whose addresses are those seen first.
    refreshing: bool,
}

/// What late answers have brought so far.
#[derive(Debug)]
struct Joined {
    /// Every address admitted so far, so that none is dialed twice.
    seen: HashSet<SocketAddr, Keyed>,
    /// For a service lookup, what turns its answers into endpoints.
    plan: Option<Box<Plan>>,
}

impl<'a> Joining<'a> {
    fn new(until: Option<Instant>, addrs: &[SocketAddr], admission: Admission<'a>) -> Self {
        Self {
            until,
            joined: Box::new(Joined {
                seen: addrs.iter().copied().collect(),
                plan: None,
            }),
            admission,
            refreshing: false,
        }
    }

    /// `answer`, with the addresses that may join the race, and for a refresh, the stale
    /// addresses it withdraws.
    pub(crate) fn admit(&mut self, answer: Answer) -> Arrival {
        let Joined { seen, plan } = &mut *self.joined;
        if let Some(plan) = plan.as_mut() {
            let planned = plan.hear(answer);
            tracing::debug!(query = ?planned.query, heard = ?planned.heard, added = ?planned.added, withdrawn = ?planned.withdrawn, "late answer");
            let mut added = Vec::new();
            self.admission
                .admit(planned.added, &mut added, &mut Vec::new());
            added.retain(|addr| seen.insert(*addr));
            let (family, own) = match planned.query {
                Query::Own(family) => (family, true),
                Query::Https | Query::TargetName => (None, false),
            };
            let ranked = Ranked {
                withdrawn: planned.withdrawn,
                endpoints: plan.endpoints().clone(),
                own,
            };
            return Arrival {
                family,
                heard: planned.heard,
                added,
                refresh: None,
                ranked: Some(Box::new(ranked)),
            };
        }
        tracing::debug!(family = ?answer.family, addrs = ?answer.addrs, "late answer");
        let mut added = Vec::new();
        let mut refused = Vec::new();
        let mut withdrawn = Vec::new();
        let heard = answer.addrs.map(|list| {
            let count = list.len();
            self.admission.admit(list, &mut added, &mut refused);
            count
        });
        if self.refreshing && heard.is_ok() {
            let listed: HashSet<SocketAddr, Keyed> = added.iter().copied().collect();
            let covers = |addr: &SocketAddr| answer.family.is_none_or(|f| f == Family::of(addr));
            let gone = seen
                .iter()
                .filter(|addr| covers(addr) && !listed.contains(addr));
            withdrawn.extend(gone);
        }
        added.retain(|addr| seen.insert(*addr));
        Arrival {
            family: answer.family,
            heard,
            added,
            refresh: self.refreshing.then(|| withdrawn.into_boxed_slice()),
            ranked: None,
        }
    }
}
