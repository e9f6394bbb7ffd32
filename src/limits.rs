//! What ends a connect early: deadlines (with arithmetic that never overflows) and
//! cancellation tokens; and the one order in which everything that happens at one instant is
//! decided ([`poll_in_order`]).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use pin_project_lite::pin_project;
use tokio::time::{Instant, Sleep, sleep_until};
use tokio_util::sync::{CancellationToken, WaitForCancellationFuture};

/// `start + limit`, or `None` (no limit) when there is no limit or the sum would overflow:
/// a duration too large to add, such as `Duration::MAX`, means "never".
#[inline]
pub(crate) fn deadline_after(start: Instant, limit: Option<Duration>) -> Option<Instant> {
    start.checked_add(limit?)
}

/// The earlier of two optional deadlines.
#[inline]
pub(crate) fn earliest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Whether `deadline` has come.
#[inline]
pub(crate) fn is_past(deadline: Option<Instant>, now: Instant) -> bool {
    deadline.is_some_and(|deadline| now >= deadline)
}

/// Whether the current tokio runtime has a time driver, asked once per runtime and thread.
///
/// tokio panics when a timer is made on a runtime built without `enable_time`, and whether a
/// connect needs one depends on the data (a slow first address starts the stagger timer), so
/// the connect asks up front instead. tokio offers no query for it: the probe makes a timer
/// inside `catch_unwind`, which happens once per such runtime and thread, and on such a
/// runtime only; tokio's panic message is printed then, by the panic hook.
pub(crate) fn timers_available() -> bool {
    use std::cell::Cell;
    use tokio::runtime::{Handle, Id};

    thread_local! {
        static KNOWN: Cell<Option<(Id, bool)>> = const { Cell::new(None) };
    }
    let Ok(runtime) = Handle::try_current() else {
        // Outside a runtime, tokio's own error for the socket says what is wrong.
        return true;
    };
    let id = runtime.id();
    if let Some((known, available)) = KNOWN.get()
        && known == id
    {
        return available;
    }
    let probe = std::panic::catch_unwind(|| drop(tokio::time::sleep(Duration::ZERO)));
    let available = probe.is_ok();
    KNOWN.set(Some((id, available)));
    available
}

/// The cancellation tokens that apply to one connect: the connector's and the call's own.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Cancel<'a> {
    pub(crate) connector: Option<&'a CancellationToken>,
    pub(crate) call: Option<&'a CancellationToken>,
}

impl<'a> Cancel<'a> {
    #[inline]
    pub(crate) fn is_cancelled(&self) -> bool {
        [self.connector, self.call]
            .into_iter()
            .flatten()
            .any(CancellationToken::is_cancelled)
    }

    /// A future that completes when either token is cancelled, boxed, or `None` without a
    /// token: most connects have none, and then pay nothing for it.
    #[inline]
    pub(crate) fn watch(self) -> Option<Pin<Box<Fired<'a>>>> {
        self.has_token().then(|| Box::pin(self.fired()))
    }

    /// Whether there is a token to watch at all.
    #[inline]
    pub(crate) fn has_token(&self) -> bool {
        self.connector.is_some() || self.call.is_some()
    }

    /// Completes when either token is cancelled; never without a token.
    pub(crate) fn fired(self) -> Fired<'a> {
        Fired {
            connector: self.connector.map(CancellationToken::cancelled),
            call: self.call.map(CancellationToken::cancelled),
        }
    }
}

pin_project! {
    /// See [`Cancel::fired`].
    pub(crate) struct Fired<'a> {
        #[pin]
        connector: Option<WaitForCancellationFuture<'a>>,
        #[pin]
        call: Option<WaitForCancellationFuture<'a>>,
    }
}

impl Future for Fired<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.project();
        let connector = this.connector.as_pin_mut().map(|f| f.poll(cx));
        let call = this.call.as_pin_mut().map(|f| f.poll(cx));
        match (connector, call) {
            (Some(Poll::Ready(())), _) | (_, Some(Poll::Ready(()))) => Poll::Ready(()),
            _ => Poll::Pending,
        }
    }
}

/// What [`poll_in_order`] found first.
pub(crate) enum Woke<F, A> {
    /// A cancellation token fired.
    Cancelled,
    /// The work finished something: an attempt ended, a bounded future completed.
    Finished(F),
    /// New input arrived: a resolver's answer.
    Arrived(A),
    /// The clock reached the instant the caller waits for.
    Due,
}

/// The tie order of the whole crate, written here and nowhere else: of the things that are
/// ready at one instant, a cancellation comes first, then finished work, then arrived
/// answers, then the clock. Every wait of a connect polls through it: the race (attempts,
/// late answers, the stagger tick and the deadline), the wait for the first answers (answers,
/// the resolution delay and the resolve deadline), one attempt under its own timeout, and
/// the direct path's one attempt under the deadline.
///
/// What follows from it: a stream that connected at the instant the deadline passed, or its
/// own attempt timeout ran out, is returned; an answer at the very resolve deadline still
/// counts; a connect at the instant of a stagger tick starts nothing more; and a cancellation
/// at the instant of a win cancels. `tests/model/mod.rs` states the same rules as an executable
/// model.
#[inline]
pub(crate) fn poll_in_order<F, A>(
    cx: &mut Context<'_>,
    cancelled: Option<&mut Pin<Box<Fired<'_>>>>,
    work: impl FnOnce(&mut Context<'_>) -> Poll<F>,
    answers: impl FnOnce(&mut Context<'_>) -> Poll<A>,
    clock: impl FnOnce(&mut Context<'_>) -> Poll<()>,
) -> Poll<Woke<F, A>> {
    if let Some(cancelled) = cancelled
        && cancelled.as_mut().poll(cx).is_ready()
    {
        return Poll::Ready(Woke::Cancelled);
    }
    if let Poll::Ready(finished) = work(cx) {
        return Poll::Ready(Woke::Finished(finished));
    }
    if let Poll::Ready(arrived) = answers(cx) {
        return Poll::Ready(Woke::Arrived(arrived));
    }
    clock(cx).map(|()| Woke::Due)
}

/// Nothing ever finishes: for waits on answers alone.
#[inline]
pub(crate) fn no_work(_: &mut Context<'_>) -> Poll<std::convert::Infallible> {
    Poll::Pending
}

/// Nothing ever arrives: for waits without answers.
#[inline]
pub(crate) fn no_answers(_: &mut Context<'_>) -> Poll<std::convert::Infallible> {
    Poll::Pending
}

/// How a bounded piece of work ended.
pub(crate) enum Bounded<T> {
    Done(T),
    TimedOut,
    Cancelled,
}

/// A timer that costs nothing until it is first polled, and then one heap allocation (so that
/// futures holding it stay small and need no pinning for it).
#[derive(Debug, Default)]
pub(crate) struct Timer(Option<Pin<Box<Sleep>>>);

impl Timer {
    /// Polls until `at`, creating the timer or moving it there as needed.
    pub(crate) fn poll_until(&mut self, at: Instant, cx: &mut Context<'_>) -> Poll<()> {
        match &mut self.0 {
            Some(sleep) if sleep.deadline() == at => {}
            Some(sleep) => sleep.as_mut().reset(at),
            None => self.0 = Some(Box::pin(sleep_until(at))),
        }
        self.0
            .as_mut()
            .map_or(Poll::Pending, |sleep| sleep.as_mut().poll(cx))
    }

    /// Polls until `at`, or never without one.
    #[inline]
    pub(crate) fn poll_optional(&mut self, at: Option<Instant>, cx: &mut Context<'_>) -> Poll<()> {
        match at {
            Some(at) => self.poll_until(at, cx),
            None => Poll::Pending,
        }
    }
}

pin_project! {
    /// See [`bounded`].
    pub(crate) struct BoundedFuture<'a, F> {
        #[pin]
        work: F,
        cancelled: Option<Pin<Box<Fired<'a>>>>,
        deadline: Option<Instant>,
        timer: Timer,
    }
}

/// Runs `work` until it finishes, `deadline` passes or `cancel` fires, whichever is first;
/// ties go by [`poll_in_order`].
#[inline]
pub(crate) fn bounded<F: Future>(
    work: F,
    deadline: Option<Instant>,
    cancel: Cancel<'_>,
) -> BoundedFuture<'_, F> {
    BoundedFuture {
        work,
        cancelled: cancel.watch(),
        deadline,
        timer: Timer::default(),
    }
}

impl<F: Future> Future for BoundedFuture<'_, F> {
    type Output = Bounded<F::Output>;

    // Out of line: the paths that need no bounds should not carry its code.
    #[inline(never)]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let (work, timer, deadline) = (this.work, this.timer, *this.deadline);
        let woke = poll_in_order(
            cx,
            this.cancelled.as_mut(),
            |cx| work.poll(cx),
            no_answers,
            |cx| timer.poll_optional(deadline, cx),
        );
        woke.map(|woke| match woke {
            Woke::Cancelled => Bounded::Cancelled,
            Woke::Finished(output) => Bounded::Done(output),
            Woke::Arrived(never) => match never {},
            Woke::Due => Bounded::TimedOut,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn earliest_deadline() {
        let now = Instant::now();
        let later = now + Duration::from_secs(1);
        assert_eq!(earliest(None, None), None);
        assert_eq!(earliest(Some(later), None), Some(later));
        assert_eq!(earliest(None, Some(now)), Some(now));
        assert_eq!(earliest(Some(later), Some(now)), Some(now));
    }

    #[test]
    fn a_limit_too_large_to_add_is_no_limit() {
        let now = Instant::now();
        assert_eq!(deadline_after(now, None), None);
        assert_eq!(deadline_after(now, Some(Duration::MAX)), None);
        let second = Duration::from_secs(1);
        assert_eq!(deadline_after(now, Some(second)), Some(now + second));
    }

    #[test]
    fn a_deadline_is_past_from_its_own_instant_on() {
        let now = Instant::now();
        assert!(!is_past(None, now));
        assert!(is_past(Some(now), now));
        assert!(!is_past(Some(now + Duration::from_millis(1)), now));
    }

    #[tokio::test(start_paused = true)]
    async fn either_token_cancels() {
        let (a, b) = (CancellationToken::new(), CancellationToken::new());
        let cancel = Cancel {
            connector: Some(&a),
            call: Some(&b),
        };
        assert!(!cancel.is_cancelled());
        b.cancel();
        assert!(cancel.is_cancelled());
        let work = std::future::pending::<()>();
        assert!(matches!(
            bounded(work, None, cancel).await,
            Bounded::Cancelled
        ));
    }

    #[tokio::test(start_paused = true)]
    async fn work_done_at_the_deadline_is_done() {
        let deadline = Instant::now() + Duration::from_millis(500);
        let work = tokio::time::sleep_until(deadline);
        let ended = bounded(work, Some(deadline), Cancel::default()).await;
        assert!(matches!(ended, Bounded::Done(())));
        let late = tokio::time::sleep_until(deadline + Duration::from_millis(1));
        let ended = bounded(late, Some(deadline), Cancel::default()).await;
        assert!(matches!(ended, Bounded::TimedOut));
        assert_eq!(Instant::now(), deadline);
    }
}
