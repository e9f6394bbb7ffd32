//! The first phase of a name's resolution: reading answers until the race may start, and
//! the answers still to come once it has.

use std::collections::HashSet;
use std::fmt;
use std::future::poll_fn;
use std::io;
use std::net::SocketAddr;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::StreamExt;
use tokio::time::Instant;

use crate::limits::{
    Cancel, Timer, Woke, deadline_after, earliest, is_past, no_work, poll_in_order,
};
use crate::order::admission::Admission;
use crate::resolve::answers::{Answer, Answering, Family, Heard, Next};

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
}

enum Gathering {
    Answer(Answer),
    Ended,
    TimerFired,
    Cancelled,
}

/// Reads `answers` until the race may start (see [`Heard::hear`]), within `until` (the
/// resolve deadline) and the tokens. The first addresses come in the resolver's order for a
/// one-shot answer, IPv6 first for answers in parts.
pub(crate) async fn gather<'a>(
    mut answers: Answering<'a>,
    admission: Admission<'a>,
    resolution_delay: Duration,
    until: Option<Instant>,
    cancel: Cancel<'_>,
) -> Result<Gathered<'a>, Unanswered> {
    let want_ipv6 = admission.families.allows(&SocketAddr::from(([0u16; 8], 0)));
    let mut heard = Heard::default();
    let mut addrs = Vec::new();
    let mut refused = Vec::new();
    let mut filtered = 0;
    let mut in_parts = false;
    let mut delay_ends = None;
    let mut timer = Timer::default();
    let mut cancelled = cancel.watch();
    let mut ended = false;
    loop {
        let due = earliest(delay_ends, until);
        let event = poll_fn(|cx| {
            let woke = poll_in_order(
                cx,
                cancelled.as_mut(),
                no_work,
                |cx| answers.poll_next_unpin(cx),
                |cx| timer.poll_optional(due, cx),
            );
            woke.map(|woke| match woke {
                Woke::Cancelled => Gathering::Cancelled,
                Woke::Finished(never) => match never {},
                Woke::Arrived(next) => next.map_or(Gathering::Ended, Gathering::Answer),
                Woke::Due => Gathering::TimerFired,
            })
        })
        .await;
        let next = match event {
            Gathering::Cancelled => return Err(Unanswered::Cancelled),
            Gathering::Answer(answer) => {
                in_parts |= answer.family.is_some();
                let counted = answer.addrs.map(|list| {
                    let before = addrs.len();
                    filtered += admission.admit(list, &mut addrs, &mut refused);
                    addrs.len() - before
                });
                tracing::debug!(family = ?answer.family, ?counted, "answer");
                heard.hear(answer.family, counted, want_ipv6)
            }
            Gathering::Ended => {
                ended = true;
                match addrs.is_empty() {
                    true => Next::NothingCame,
                    false => Next::Start,
                }
            }
            Gathering::TimerFired if is_past(until, Instant::now()) && addrs.is_empty() => {
                return Err(Unanswered::TimedOut);
            }
            Gathering::TimerFired => Next::Start,
        };
        match next {
            Next::Start => break,
            Next::WaitForIpv6 => {
                delay_ends = delay_ends.or(deadline_after(Instant::now(), Some(resolution_delay)));
            }
            Next::Wait => {}
            Next::NothingCame => {
                return Err(match (refused.is_empty(), heard.failure()) {
                    (false, _) => Unanswered::Denied(refused),
                    (true, Some(error)) => Unanswered::Failed(error),
                    (true, None) => Unanswered::NoAddresses { filtered },
                });
            }
        }
    }
    if in_parts {
        // Stable: each family keeps its order.
        addrs.sort_by_key(SocketAddr::is_ipv4);
    }
    // An answer at the very bound still counts, so the wait ends only after it.
    let before_bound = until.is_none_or(|until| Instant::now() <= until);
    let more_to_come =
        !ended && before_bound && (heard.awaits(Family::Ipv6) || heard.awaits(Family::Ipv4));
    let later = more_to_come.then(|| Later {
        answers,
        until,
        seen: Box::new(addrs.iter().copied().collect()),
        admission,
        remembered: None,
    });
    Ok(Gathered { addrs, later })
}

/// The answers still to come once the race has started.
pub(crate) struct Later<'a> {
    answers: Answering<'a>,
    /// When to stop waiting for them: the resolve timeout.
    pub(crate) until: Option<Instant>,
    /// Every address admitted so far, so that none is dialed twice.
    /// Boxed: a set is 48 bytes inline, and the race's state must stay under the allocator's
    /// per-thread cache limit (see the pipeline's size test); the box is made only for
    /// answers in parts.
    #[allow(clippy::box_collection)]
    seen: Box<HashSet<SocketAddr>>,
    admission: Admission<'a>,
    /// The remembered winner, to go first when its answer arrives.
    pub(crate) remembered: Option<SocketAddr>,
}

impl fmt::Debug for Later<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Later")
            .field("until", &self.until)
            .field("seen", &self.seen)
            .finish_non_exhaustive()
    }
}

impl Later<'_> {
    /// The new addresses of the next answer (maybe none), or `None` once the answers end.
    pub(crate) fn poll_answer(&mut self, cx: &mut Context<'_>) -> Poll<Option<Vec<SocketAddr>>> {
        let answer = match self.answers.poll_next_unpin(cx) {
            Poll::Ready(Some(answer)) => answer,
            Poll::Ready(None) => return Poll::Ready(None),
            Poll::Pending => return Poll::Pending,
        };
        tracing::debug!(family = ?answer.family, addrs = ?answer.addrs, "late answer");
        let mut added = Vec::new();
        let mut refused = Vec::new();
        if let Ok(list) = answer.addrs {
            self.admission.admit(list, &mut added, &mut refused);
        }
        added.retain(|addr| self.seen.insert(*addr));
        Poll::Ready(Some(added))
    }
}
