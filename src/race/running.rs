//! The running attempts of a race: each attempt's future, with its own timeout, and the set
//! that polls only the attempts whose waker fired.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use futures_util::stream::{FuturesUnordered, StreamExt};
use futures_util::task::AtomicWaker;
use pin_project_lite::pin_project;
use tokio::time::Instant;

use crate::human::Human;
use crate::limits::{Timer, Woke, deadline_after, no_answers, poll_in_order};

pin_project! {
    /// The running attempts. The first runs in place, polled with the race's own waker while
    /// it is alone; the set for the others, and a waker that marks when the first needs
    /// polling, are built only when a second attempt starts. So a race whose first attempt
    /// wins before the stagger allocates nothing for it.
    pub(crate) struct Running<F> {
        #[pin]
        first: Option<Dialing<F>>,
        first_waker: Option<(Arc<Woken>, Waker)>,
        others: Option<FuturesUnordered<Dialing<F>>>,
    }
}

impl<F> Default for Running<F> {
    fn default() -> Self {
        Self {
            first: None,
            first_waker: None,
            others: None,
        }
    }
}

/// Records that the first attempt was woken, then wakes the race.
#[derive(Default)]
struct Woken {
    woken: AtomicBool,
    race: AtomicWaker,
}

impl Wake for Woken {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, Ordering::Release);
        self.race.wake();
    }
}

impl<S, F: Future<Output = io::Result<S>>> Running<F> {
    #[inline]
    pub(crate) fn push(self: Pin<&mut Self>, attempt: Dialing<F>) {
        let mut this = self.project();
        if this.first.is_none() && this.others.as_ref().is_none_or(FuturesUnordered::is_empty) {
            if let Some((woken, _)) = this.first_waker {
                woken.woken.store(true, Ordering::Release);
            }
            this.first.set(Some(attempt));
            return;
        }
        if this.first.is_some() && this.first_waker.is_none() {
            // From now on the first is polled only when its own waker fired; poll it once more
            // so that it registers that waker.
            let woken = Arc::new(Woken::default());
            woken.woken.store(true, Ordering::Release);
            let waker = Waker::from(woken.clone());
            *this.first_waker = Some((woken, waker));
        }
        this.others
            .get_or_insert_with(FuturesUnordered::new)
            .push(attempt);
    }

    /// The next attempt to finish, with its index in the log.
    pub(crate) fn poll_next(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<(usize, io::Result<S>)> {
        let mut this = self.project();
        if let Some(first) = this.first.as_mut().as_pin_mut() {
            let polled = match this.first_waker {
                None => first.poll(cx),
                Some((woken, waker)) => {
                    // Registered before the flag is read, so no wake can fall in between.
                    woken.race.register(cx.waker());
                    match woken.woken.swap(false, Ordering::AcqRel) {
                        true => first.poll(&mut Context::from_waker(waker)),
                        false => Poll::Pending,
                    }
                }
            };
            if let Poll::Ready(finished) = polled {
                this.first.set(None);
                return Poll::Ready(finished);
            }
        }
        match this
            .others
            .as_mut()
            .map(|others| others.poll_next_unpin(cx))
        {
            Some(Poll::Ready(Some(finished))) => Poll::Ready(finished),
            _ => Poll::Pending,
        }
    }
}

pin_project! {
    /// One attempt: a dial future, bounded by its own timeout, tagged with its index in the log.
    pub(crate) struct Dialing<F> {
        index: usize,
        #[pin]
        dial: F,
        limit: Option<Duration>,
        expires: Option<Instant>,
        timer: Timer,
    }
}

impl<F> Dialing<F> {
    #[inline]
    pub(crate) fn new(index: usize, dial: F, now: Instant, limit: Option<Duration>) -> Self {
        Self {
            index,
            dial,
            limit,
            expires: deadline_after(now, limit),
            timer: Timer::default(),
        }
    }
}

impl<S, F: Future<Output = io::Result<S>>> Future for Dialing<F> {
    type Output = (usize, io::Result<S>);

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let Some(expires) = *this.expires else {
            // No timeout, nothing to order: the attempt is its dial.
            return this.dial.poll(cx).map(|result| (*this.index, result));
        };
        let (dial, timer) = (this.dial, this.timer);
        let woke = poll_in_order(
            cx,
            None,
            |cx| dial.poll(cx),
            no_answers,
            |cx| timer.poll_until(expires, cx),
        );
        woke.map(|woke| match woke {
            Woke::Finished(result) => (*this.index, result),
            Woke::Due => (*this.index, Err(timed_out(*this.limit))),
            Woke::Cancelled => unreachable!("an attempt has no token of its own"),
            Woke::Arrived(never) => match never {},
        })
    }
}

/// The error of an attempt that ran for its whole `limit`.
pub(crate) fn timed_out(limit: Option<Duration>) -> io::Error {
    let limit = limit.unwrap_or_default();
    let message = format!("attempt timed out after {}", Human(limit));
    io::Error::new(io::ErrorKind::TimedOut, message)
}
