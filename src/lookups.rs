//! Blocking lookups shared and bounded: one call per name at a time, a bounded number of
//! calls in flight, and waiters woken by the call itself.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::task::{Context, Poll, Waker, ready};

use tokio::sync::{AcquireError, OwnedSemaphorePermit, Semaphore};

use crate::sync::lock;

/// What a lookup's waiters share: `io::Error` is not `Clone`, so the error is shared by `Arc`.
type SharedAnswer = Result<Arc<[SocketAddr]>, Arc<io::Error>>;

/// The blocking lookups in flight, by name.
pub(crate) struct Lookups {
    in_flight: Mutex<InFlight>,
    slots: Arc<Semaphore>,
    /// The blocking lookup itself; tests substitute their own.
    blocking: fn(&str) -> io::Result<Vec<SocketAddr>>,
}

#[derive(Default)]
struct InFlight {
    calls: HashMap<Arc<str>, Weak<Flight>>,
    /// Entries whose waiters all left are swept when the map reaches this size.
    sweep_at: usize,
}

impl Lookups {
    pub(crate) fn new(slots: usize, blocking: fn(&str) -> io::Result<Vec<SocketAddr>>) -> Self {
        Self {
            in_flight: Mutex::default(),
            slots: Arc::new(Semaphore::new(slots)),
            blocking,
        }
    }

    /// Looks `host` up, joining a lookup of the same name still in flight.
    ///
    /// An entry is not removed when answered: it is replaced by the next lookup of the name,
    /// and entries whose waiters all left are swept as the table grows.
    pub(crate) async fn lookup(&self, host: &str, port: u16) -> io::Result<Vec<SocketAddr>> {
        let waiting = Waiting {
            flight: self.join(host),
            lookups: self,
            waker_place: None,
            acquiring: None,
        };
        match waiting.await {
            // `set_port` keeps an IPv6 address's scope id and flow info.
            Ok(addrs) => Ok(addrs
                .iter()
                .map(|addr| {
                    let mut addr = *addr;
                    addr.set_port(port);
                    addr
                })
                .collect()),
            Err(error) => Err(copy(&error)),
        }
    }

    /// The flight of `host` not yet answered, or a new one, started at once if a slot is free.
    fn join(&self, host: &str) -> Arc<Flight> {
        let flight = {
            let mut in_flight = lock(&self.in_flight);
            let in_flight = &mut *in_flight;
            // The table's key and the flight share one copy of the name, hashed once.
            let host: Arc<str> = host.into();
            let entry = in_flight.calls.entry(host.clone());
            if let Entry::Occupied(joined) = &entry {
                if let Some(flight) = joined.get().upgrade().filter(|f| !f.is_answered()) {
                    return flight;
                }
            }
            let flight = Arc::new(Flight {
                host,
                state: Mutex::default(),
            });
            entry.insert_entry(Arc::downgrade(&flight));
            if in_flight.calls.len() >= in_flight.sweep_at {
                in_flight
                    .calls
                    .retain(|_, flight| flight.strong_count() > 0);
                in_flight.sweep_at = (in_flight.calls.len() * 2).max(64);
            }
            flight
        };
        if let Ok(slot) = self.slots.clone().try_acquire_owned() {
            self.start(&flight, slot);
        }
        flight
    }

    /// Runs `flight`'s blocking call with `slot`, unless another waiter has started it; the
    /// slot is held until the call returns, even if nobody is waiting any more.
    fn start(&self, flight: &Arc<Flight>, slot: OwnedSemaphorePermit) {
        {
            let mut state = flight.lock();
            if !matches!(state.stage, Stage::WaitingForSlot) {
                return;
            }
            state.stage = Stage::Running;
            // Waiters queued for a slot of their own leave the queue.
            state.wakers.iter().for_each(Waker::wake_by_ref);
        }
        let call = Call {
            flight: flight.clone(),
            _slot: slot,
        };
        let blocking = self.blocking;
        // Detached: the call answers its flight itself.
        drop(tokio::task::spawn_blocking(move || {
            let answer = blocking(&call.flight.host);
            call.flight
                .answer(|| answer.map(Into::into).map_err(Arc::new));
        }));
    }
}

/// One name's `getaddrinfo` call and the lookups waiting for it.
struct Flight {
    host: Arc<str>,
    state: Mutex<FlightState>,
}

#[derive(Default)]
struct FlightState {
    stage: Stage,
    wakers: Wakers,
}

/// The waiters' wakers, each in the place its waiter was given; the first is kept inline, as
/// most flights have one waiter.
#[derive(Default)]
struct Wakers {
    first: Option<Waker>,
    more: Vec<Waker>,
}

impl Wakers {
    /// Keeps `waker` in the waiter's `place`, giving it one on its first call.
    fn register(&mut self, place: &mut Option<usize>, waker: &Waker) {
        let kept = match *place {
            Some(0) => self.first.as_mut(),
            Some(more) => self.more.get_mut(more - 1),
            None => None,
        };
        if let Some(kept) = kept {
            kept.clone_from(waker);
        } else if self.first.is_none() {
            self.first = Some(waker.clone());
            *place = Some(0);
        } else {
            self.more.push(waker.clone());
            *place = Some(self.more.len());
        }
    }

    fn iter(&self) -> impl Iterator<Item = &Waker> {
        self.first.iter().chain(&self.more)
    }

    fn wake_all(self) {
        self.first
            .into_iter()
            .chain(self.more)
            .for_each(Waker::wake);
    }
}

#[derive(Default)]
enum Stage {
    /// No slot yet: the first waiter to get one starts the call.
    #[default]
    WaitingForSlot,
    Running,
    Answered(SharedAnswer),
}

impl Flight {
    fn lock(&self) -> MutexGuard<'_, FlightState> {
        lock(&self.state)
    }

    fn is_answered(&self) -> bool {
        matches!(self.lock().stage, Stage::Answered(_))
    }

    /// Records the answer, if none was, and wakes every waiter.
    fn answer(&self, answer: impl FnOnce() -> SharedAnswer) {
        let wakers = {
            let mut state = self.lock();
            if matches!(state.stage, Stage::Answered(_)) {
                return;
            }
            state.stage = Stage::Answered(answer());
            std::mem::take(&mut state.wakers)
        };
        wakers.wake_all();
    }
}

/// A running call: it answers its flight even if it ends without a result (a panic, or a
/// runtime shutting down before it ran), so that no waiter waits forever.
struct Call {
    flight: Arc<Flight>,
    _slot: OwnedSemaphorePermit,
}

impl Drop for Call {
    fn drop(&mut self) {
        self.flight.answer(|| {
            let ended = io::Error::other("the lookup ended without an answer");
            Err(Arc::new(ended))
        });
    }
}

/// One lookup waiting for its flight's answer; when no slot was free, it queues for one, and
/// the first waiter to get one starts the call. A flight whose waiters all left before that
/// makes no call.
struct Waiting<'a> {
    flight: Arc<Flight>,
    lookups: &'a Lookups,
    waker_place: Option<usize>,
    acquiring: Option<Acquiring>,
}

type Acquiring = Pin<Box<dyn Future<Output = Result<OwnedSemaphorePermit, AcquireError>> + Send>>;

impl Future for Waiting<'_> {
    type Output = SharedAnswer;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<SharedAnswer> {
        let this = &mut *self;
        loop {
            {
                let mut state = this.flight.lock();
                let state = &mut *state;
                if let Stage::Answered(answer) = &state.stage {
                    return Poll::Ready(answer.clone());
                }
                state.wakers.register(&mut this.waker_place, cx.waker());
                if matches!(state.stage, Stage::Running) {
                    this.acquiring = None;
                    return Poll::Pending;
                }
            }
            let slots = &this.lookups.slots;
            let acquiring = this
                .acquiring
                .get_or_insert_with(|| Box::pin(slots.clone().acquire_owned()));
            match ready!(acquiring.as_mut().poll(cx)) {
                Ok(slot) => {
                    this.acquiring = None;
                    this.lookups.start(&this.flight, slot);
                }
                Err(closed) => return Poll::Ready(Err(Arc::new(io::Error::other(closed)))),
            }
        }
    }
}

/// A waiter's own copy of a shared error.
fn copy(error: &io::Error) -> io::Error {
    match error.raw_os_error() {
        Some(code) => io::Error::from_raw_os_error(code),
        None => io::Error::new(error.kind(), error.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
    use std::time::Duration;

    use super::*;
    use crate::{Resolve, Resolving};

    fn loopback() -> Vec<SocketAddr> {
        vec!["127.0.0.1:0".parse().unwrap()]
    }

    static SHARED_CALLS: AtomicUsize = AtomicUsize::new(0);

    fn counted(_host: &str) -> io::Result<Vec<SocketAddr>> {
        SHARED_CALLS.fetch_add(1, SeqCst);
        std::thread::sleep(Duration::from_millis(100));
        Ok(loopback())
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_lookups_of_a_name_share_one_call() {
        let lookups = Arc::new(Lookups::new(4, counted));
        let mut waiting = Vec::new();
        for port in 1..=20 {
            let lookups = lookups.clone();
            waiting.push(tokio::spawn(async move {
                lookups.lookup("shared.test", port).await
            }));
        }
        for (port, answer) in (1..=20).zip(waiting) {
            let addrs = answer.await.unwrap().unwrap();
            assert_eq!(addrs, [SocketAddr::from(([127, 0, 0, 1], port))]);
        }
        assert_eq!(SHARED_CALLS.load(SeqCst), 1);
        lookups.lookup("shared.test", 1).await.unwrap();
        assert_eq!(
            SHARED_CALLS.load(SeqCst),
            2,
            "an answered lookup is not cached"
        );
        // The blocking call may still hold its flight for a moment after answering it; an
        // answered flight can no longer be joined.
        let in_flight = lookups.in_flight.lock().unwrap();
        assert!(
            in_flight
                .calls
                .values()
                .all(|call| call.upgrade().is_none_or(|flight| flight.is_answered()))
        );
    }

    static RUNNING: AtomicUsize = AtomicUsize::new(0);
    static MOST_RUNNING: AtomicUsize = AtomicUsize::new(0);

    fn slow(_host: &str) -> io::Result<Vec<SocketAddr>> {
        let now = RUNNING.fetch_add(1, SeqCst) + 1;
        MOST_RUNNING.fetch_max(now, SeqCst);
        std::thread::sleep(Duration::from_millis(50));
        RUNNING.fetch_sub(1, SeqCst);
        Ok(loopback())
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn calls_in_flight_are_bounded() {
        let lookups = Arc::new(Lookups::new(3, slow));
        let mut waiting = Vec::new();
        for n in 0..12 {
            let lookups = lookups.clone();
            waiting.push(tokio::spawn(async move {
                lookups.lookup(&format!("host-{n}.test"), 80).await
            }));
        }
        for answer in waiting {
            answer.await.unwrap().unwrap();
        }
        assert_eq!(MOST_RUNNING.load(SeqCst), 3);
    }

    static ABANDONED_CALLS: AtomicUsize = AtomicUsize::new(0);

    fn blocks_first(host: &str) -> io::Result<Vec<SocketAddr>> {
        ABANDONED_CALLS.fetch_add(1, SeqCst);
        if host == "stuck.test" {
            std::thread::sleep(Duration::from_millis(300));
        }
        Err(io::Error::new(io::ErrorKind::NotFound, "no such host"))
    }

    /// A lookup whose waiters left while it waited for a slot never calls the system.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_abandoned_lookup_waiting_for_a_slot_makes_no_call() {
        let lookups = Arc::new(Lookups::new(1, blocks_first));
        let stuck = tokio::spawn({
            let lookups = lookups.clone();
            async move { lookups.lookup("stuck.test", 80).await }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        let gave_up =
            tokio::time::timeout(Duration::from_millis(50), lookups.lookup("later.test", 80)).await;
        assert!(gave_up.is_err(), "it waited for the slot");
        let error = stuck.await.unwrap().unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::NotFound);
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(
            ABANDONED_CALLS.load(SeqCst),
            1,
            "later.test was never looked up"
        );
    }

    /// A resolver over a test's own lookup table.
    struct Pooled(Arc<Lookups>);

    impl std::fmt::Debug for Pooled {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("Pooled")
        }
    }

    impl Resolve for Pooled {
        fn resolve<'a>(&'a self, host: &'a str, port: u16) -> Resolving<'a> {
            Box::pin(self.0.lookup(host, port))
        }
    }

    fn holds_the_slot(host: &str) -> io::Result<Vec<SocketAddr>> {
        if host == "busy.test" {
            std::thread::sleep(Duration::from_millis(1500));
        }
        Ok(loopback())
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn waiting_for_a_slot_counts_against_the_resolve_timeout() {
        use crate::{ConnectError, Connector, Stage};
        let lookups = Arc::new(Lookups::new(1, holds_the_slot));
        let busy = tokio::spawn({
            let lookups = lookups.clone();
            async move { lookups.lookup("busy.test", 80).await }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        let connector = Connector::new()
            .resolver(Pooled(lookups))
            .resolve_timeout(Some(Duration::from_millis(100)));
        let began = std::time::Instant::now();
        let error = connector.connect("waiting.test:80").await.unwrap_err();
        let took = began.elapsed();
        assert!(
            matches!(
                error,
                ConnectError::TimedOut {
                    stage: Stage::Resolve,
                    ..
                }
            ),
            "{error:?}"
        );
        assert!(took >= Duration::from_millis(100), "{took:?}");
        assert!(
            took < Duration::from_millis(1400),
            "it did not wait for the slot: {took:?}"
        );
        busy.await.unwrap().unwrap();
    }

    fn instant(_host: &str) -> io::Result<Vec<SocketAddr>> {
        Ok(loopback())
    }

    #[tokio::test]
    async fn answered_entries_are_swept_as_the_table_grows() {
        let lookups = Lookups::new(4, instant);
        for n in 0..1000 {
            lookups.lookup(&format!("host-{n}.test"), 80).await.unwrap();
        }
        let entries = lookups.in_flight.lock().unwrap().calls.len();
        assert!(
            entries <= 64,
            "{entries} entries after 1,000 answered lookups"
        );
    }

    fn link_local(_host: &str) -> io::Result<Vec<SocketAddr>> {
        Ok(vec!["[fe80::1%3]:0".parse().unwrap()])
    }

    /// `getaddrinfo` answers a zone for link-local names (mDNS, `/etc/hosts`); Linux refuses
    /// to dial `fe80::1` without one.
    #[tokio::test]
    async fn the_ipv6_zone_survives_the_port() {
        let lookups = Lookups::new(1, link_local);
        let addrs = lookups.lookup("printer.local", 631).await.unwrap();
        assert_eq!(addrs, ["[fe80::1%3]:631".parse::<SocketAddr>().unwrap()]);
        let SocketAddr::V6(v6) = addrs[0] else {
            unreachable!()
        };
        assert_eq!(v6.scope_id(), 3);
    }

    #[test]
    fn shared_errors_keep_their_kind_and_code() {
        let os = copy(&io::Error::from_raw_os_error(libc::ECONNREFUSED));
        assert_eq!(os.raw_os_error(), Some(libc::ECONNREFUSED));
        let named = copy(&io::Error::new(io::ErrorKind::NotFound, "no such host"));
        assert_eq!(named.kind(), io::ErrorKind::NotFound);
        assert_eq!(named.to_string(), "no such host");
    }

    fn panics_for_one_name(host: &str) -> io::Result<Vec<SocketAddr>> {
        if host == "panics.test" {
            panic!("resolver bug");
        }
        Ok(loopback())
    }

    #[tokio::test]
    async fn a_call_that_panics_answers_with_an_error_and_frees_its_slot() {
        let lookups = Lookups::new(1, panics_for_one_name);
        let answer =
            tokio::time::timeout(Duration::from_secs(5), lookups.lookup("panics.test", 80))
                .await
                .expect("the waiter is answered");
        let error = answer.unwrap_err();
        assert_eq!(error.to_string(), "the lookup ended without an answer");
        let next = tokio::time::timeout(Duration::from_secs(5), lookups.lookup("fine.test", 80))
            .await
            .expect("the only slot was freed");
        assert_eq!(next.unwrap(), [SocketAddr::from(([127, 0, 0, 1], 80))]);
    }
}
