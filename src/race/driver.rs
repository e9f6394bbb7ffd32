//! The race on tokio: a future that polls the attempts, the late answers, the timer and the
//! tokens through [`poll_in_order`] and hands what it found to the [`Core`]. It runs inside
//! the caller's future, so nothing outlives it.

use std::borrow::Cow;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use pin_project_lite::pin_project;
use tokio::time::Instant;

use crate::limits::{Cancel, Fired, Timer, poll_in_order};
use crate::race::core::{Awaited, Core, Driver, Outcome, Stagger};
use crate::race::log::Log;
use crate::race::running::{Dialing, Running};
use crate::resolve::gather::Later;

/// How attempts are paced and bounded.
#[derive(Debug)]
pub(crate) struct Pace<'a> {
    pub(crate) stagger: Stagger<'a>,
    /// Abort an attempt that has run this long; `None` or a duration too large to add: never.
    pub(crate) attempt_timeout: Option<Duration>,
    /// No attempt starts at or after this instant, and the race ends there.
    pub(crate) deadline: Option<Instant>,
    pub(crate) cancel: Cancel<'a>,
    /// The remembered winner, to go first when a late answer brings it.
    pub(crate) remembered: Option<SocketAddr>,
    /// Whether the winner's connect time is measured (for the adaptive delay).
    pub(crate) times_winner: bool,
    /// Whether the race begins when the connect did: nothing was awaited before it (a list
    /// of literals), so its first attempt needs no clock reading of its own.
    pub(crate) begins_with_connect: bool,
}

pin_project! {
    /// The race's state; see [`race`]. A hand-written future rather than an `async fn`: its
    /// size is its fields, without the second copies of arguments and the nested futures an
    /// `async fn` keeps, which keeps a connect's boxed future under 1 KiB, in the allocator's
    /// fast path for small blocks.
    struct Race<'r, 'm, D, Fut, Y> {
        core: Core<'r, 'r, 'm>,
        later: Option<Later<'r>>,
        cancel: Cancel<'r>,
        cancelled: Option<Pin<Box<Fired<'r>>>>,
        attempt_timeout: Option<Duration>,
        timer: Timer,
        #[pin]
        before_first_timer: Option<Y>,
        #[pin]
        running: Running<Fut>,
        dial: &'r mut D,
        begun: bool,
        begins_with_connect: bool,
    }
}

/// Dials `addrs` in order and returns the first stream to connect, by the [`Core`]'s rules.
/// When one connects, every other running attempt is dropped (closing its socket) before the
/// race completes. Only attempts whose waker fired are polled.
#[inline]
pub(crate) fn race<'r, 'm, S, D, Fut>(
    addrs: Cow<'r, [SocketAddr]>,
    later: Option<Later<'r>>,
    pace: Pace<'r>,
    dial: &'r mut D,
    log: &'r mut Log<'m>,
) -> impl Future<Output = Outcome<S>>
where
    'm: 'r,
    D: FnMut(SocketAddr) -> Fut,
    Fut: Future<Output = io::Result<S>>,
{
    let awaited = later.as_ref().map(|later| Awaited {
        until: later.joining.until,
        remembered: pace.remembered,
    });
    Race {
        core: Core::new(
            addrs,
            awaited,
            pace.stagger,
            pace.deadline,
            pace.times_winner,
            log,
        ),
        later,
        cancel: pace.cancel,
        cancelled: None,
        attempt_timeout: pace.attempt_timeout,
        timer: Timer::default(),
        // On a `current_thread` runtime the I/O driver runs once before the first timer is
        // set (a yielded task is woken only after it): a connect on loopback or a LAN has
        // often finished by then, and no timer is set at all. On a `multi_thread` one the
        // yield costs more than the timer (the yielded task wakes another worker, which may
        // take it: 1.28x a literal connect with it, 1.15x without, in the `resolvers` bench).
        // The timer's due instant does not move.
        // The runtime is asked only when a timer is about to be set.
        before_first_timer: Some(tokio::task::yield_now()),
        running: Running::default(),
        dial,
        begun: false,
        begins_with_connect: pace.begins_with_connect,
    }
}

/// Whether the race runs on a `current_thread` runtime.
fn on_current_thread() -> bool {
    use tokio::runtime::{Handle, RuntimeFlavor};
    Handle::try_current()
        .is_ok_and(|handle| handle.runtime_flavor() == RuntimeFlavor::CurrentThread)
}

/// The core's driver on tokio: starts attempts into the running set, and takes the others
/// that finished in the same poll.
struct Attempting<'a, 'c, D, Fut> {
    running: Pin<&'a mut Running<Fut>>,
    dial: &'a mut D,
    attempt_timeout: Option<Duration>,
    cx: &'a mut Context<'c>,
}

impl<S, D, Fut> Driver<S> for Attempting<'_, '_, D, Fut>
where
    D: FnMut(SocketAddr) -> Fut,
    Fut: Future<Output = io::Result<S>>,
{
    #[inline]
    fn start(&mut self, index: usize, addr: &SocketAddr, now: Instant) {
        let dialing = Dialing::new(index, (self.dial)(*addr), now, self.attempt_timeout);
        self.running.as_mut().push(dialing);
    }

    fn also_finished(&mut self) -> Option<(usize, io::Result<S>)> {
        match self.running.as_mut().poll_next(self.cx) {
            Poll::Ready(finished) => Some(finished),
            Poll::Pending => None,
        }
    }
}

impl<S, D, Fut, Y> Future for Race<'_, '_, D, Fut, Y>
where
    D: FnMut(SocketAddr) -> Fut,
    Fut: Future<Output = io::Result<S>>,
    Y: Future<Output = ()>,
{
    type Output = Outcome<S>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Outcome<S>> {
        let mut this = self.project();
        if !*this.begun {
            *this.begun = true;
            let cancelled = this.cancel.is_cancelled();
            if !cancelled {
                *this.cancelled = this.cancel.watch();
            }
            let mut driver = Attempting {
                running: this.running.as_mut(),
                dial: *this.dial,
                attempt_timeout: *this.attempt_timeout,
                cx,
            };
            let now = match *this.begins_with_connect {
                true => this.core.connect_began(),
                false => Instant::now(),
            };
            if let Some(outcome) = this.core.begin(now, cancelled, &mut driver) {
                return Poll::Ready(outcome);
            }
        }
        loop {
            let due = this.core.wake_at();
            let (running, later) = (&mut this.running, &mut *this.later);
            let (yielded, timer) = (&mut this.before_first_timer, &mut *this.timer);
            let woke = ready!(poll_in_order(
                cx,
                this.cancelled.as_mut(),
                |cx| running.as_mut().poll_next(cx),
                |cx| match later {
                    Some(later) => later.poll_answer(cx),
                    None => Poll::Pending,
                },
                |cx| {
                    let Some(due) = due else {
                        return Poll::Pending;
                    };
                    if let Some(yielding) = yielded.as_mut().as_pin_mut() {
                        if on_current_thread() {
                            ready!(yielding.poll(cx));
                        }
                        yielded.set(None);
                    }
                    timer.poll_until(due, cx)
                },
            ));
            let mut driver = Attempting {
                running: this.running.as_mut(),
                dial: *this.dial,
                attempt_timeout: *this.attempt_timeout,
                cx,
            };
            let ended = this.core.decide(woke, Instant::now, &mut driver);
            if !this.core.awaits_answers() {
                *this.later = None;
            }
            if let Some(outcome) = ended {
                // Every loser is dropped here, before the race completes.
                this.running.set(Running::default());
                return Poll::Ready(outcome);
            }
        }
    }
}
