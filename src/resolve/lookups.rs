//! Blocking lookups shared and bounded: one call per name at a time, a bounded number of
//! calls in flight, a bounded harm from calls that hang, and waiters woken by the call itself.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::task::{Context, Poll, Waker, ready};

use tokio::sync::{AcquireError, OwnedSemaphorePermit, Semaphore};

use crate::resolve::answers::copy_error;
use crate::sync::{Prehashed, hash_once, lock};

/// The blocking lookups in flight, by name.
///
/// The policy, so that names whose lookups hang cannot starve the others:
/// - one call per name and runtime at a time, names compared without regard to ASCII case; the
///   call runs on that runtime's blocking pool (`spawn_blocking`), and a connect on another
///   runtime makes its own, so that no runtime waits behind another's busy pool;
/// - at most `slots` calls that someone waits for run at once; a lookup waits for a free slot;
/// - a running call whose every waiter has left (timed out, cancelled, dropped) gives its slot
///   back, so that it no longer holds up other names, and runs on unwatched to its end; at
///   most `abandoned` such calls at once, beyond which an abandoned call keeps its slot. So at
///   most `slots + abandoned` threads block in lookups, and it takes more than `abandoned`
///   hung names at once to hold up any other;
/// - a waiter that leaves takes its waker with it, so that nothing of its task is kept.
pub(crate) struct Lookups {
    in_flight: Mutex<InFlight>,
    slots: Arc<Semaphore>,
    /// Running calls that gave their slot back, and how many may.
    abandoned: Arc<AtomicUsize>,
    max_abandoned: usize,
    /// The blocking lookup itself; tests substitute their own.
    blocking: fn(&str) -> io::Result<Vec<SocketAddr>>,
}

#[derive(Default)]
struct InFlight {
    /// By the hash of the flight's runtime and name. Two flights whose hashes collide do not
    /// share: the newer takes the entry.
    calls: HashMap<u64, Weak<Flight>, Prehashed>,
    /// Entries whose waiters all left are swept when the map reaches this size.
    sweep_at: usize,
}

impl Lookups {
    pub(crate) fn new(
        slots: usize,
        max_abandoned: usize,
        blocking: fn(&str) -> io::Result<Vec<SocketAddr>>,
    ) -> Self {
        Self {
            in_flight: Mutex::default(),
            slots: Arc::new(Semaphore::new(slots)),
            abandoned: Arc::default(),
            max_abandoned,
            blocking,
        }
    }

    /// Looks `host` up, joining a lookup of the same name still in flight.
    ///
    /// Inside a runtime the lookup is joined, and its call started if a slot is free, at once
    /// rather than at the first poll: the call runs while the caller gets ready to wait for
    /// it. Outside one, it is joined at the first poll, on the runtime that polls it.
    ///
    /// An entry is not removed when answered: it is replaced by the next lookup of the name,
    /// and entries whose waiters all left are swept as the table grows.
    pub(crate) fn lookup<'a>(&'a self, host: &'a str, port: u16) -> Lookup<'a> {
        // Built here, not only joined, so that a lookup dropped unpolled still leaves.
        let joined = match current_runtime() {
            Some(runtime) => Joined::Waiting(self.waiting(host, Some(runtime))),
            None => Joined::NotYet,
        };
        Lookup {
            lookups: self,
            host,
            port,
            joined,
        }
    }

    /// A waiter on the flight of `host` on `runtime`.
    fn waiting(&self, host: &str, runtime: Option<tokio::runtime::Id>) -> Waiting<'_> {
        Waiting {
            flight: self.join(host, runtime),
            lookups: self,
            place: None,
            acquiring: None,
            read: false,
        }
    }

    /// The flight of `host` on `runtime` not yet answered, or a new one, started at once if a
    /// slot is free.
    fn join(&self, host: &str, runtime: Option<tokio::runtime::Id>) -> Arc<Flight> {
        let host = Name::lowercase(host);
        let hash = hash_once((runtime, host.as_str()));
        let flight = {
            let mut in_flight = lock(&self.in_flight);
            let in_flight = &mut *in_flight;
            let entry = in_flight.calls.entry(hash);
            if let Entry::Occupied(joined) = &entry
                && let Some(flight) = joined.get().upgrade()
                && flight.runtime == runtime
                && flight.host.as_str() == host.as_str()
                && flight.join_unanswered()
            {
                return flight;
            }
            let flight = Arc::new(Flight {
                runtime,
                host,
                state: Mutex::new(FlightState {
                    readers: 1,
                    ..FlightState::default()
                }),
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
    /// slot is held until the call returns or its waiters all leave.
    fn start(&self, flight: &Arc<Flight>, slot: OwnedSemaphorePermit) {
        {
            let mut state = flight.lock();
            if !matches!(state.stage, Progress::WaitingForSlot) {
                return;
            }
            state.stage = Progress::Running;
            state.slot = Some(slot);
            // Waiters queued for a slot of their own leave the queue.
            state.wakers.iter().for_each(Waker::wake_by_ref);
        }
        let mut call = Call {
            flight: flight.clone(),
            abandoned: self.abandoned.clone(),
            answered: false,
        };
        let blocking = self.blocking;
        // Detached: the call answers its flight itself.
        drop(tokio::task::spawn_blocking(move || {
            let answer = blocking(call.flight.host.as_str());
            call.answer(answer);
        }));
    }
}

/// One lookup of a name's addresses, each with the port asked for: a waiter on its flight,
/// joined when it was made or, outside a runtime, at its first poll. Written out rather than
/// as an `async` block, so that a connect's poll of its answer goes through one small step.
pub(crate) struct Lookup<'a> {
    lookups: &'a Lookups,
    host: &'a str,
    port: u16,
    joined: Joined<'a>,
}

/// Where a [`Lookup`] is with its flight.
enum Joined<'a> {
    /// Made outside a runtime: joined at the first poll.
    NotYet,
    Waiting(Waiting<'a>),
    /// The answer was read, and the flight left.
    Answered,
}

impl Future for Lookup<'_> {
    type Output = io::Result<Vec<SocketAddr>>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        if let Joined::NotYet = this.joined {
            this.joined = Joined::Waiting(this.lookups.waiting(this.host, current_runtime()));
        }
        let Joined::Waiting(waiting) = &mut this.joined else {
            panic!("a lookup polled after it returned its answer");
        };
        let answer = ready!(Pin::new(waiting).poll(cx));
        // A waiter reads its flight's answer once; it leaves as soon as it has.
        this.joined = Joined::Answered;
        let mut addrs = answer?;
        // `set_port` keeps an IPv6 address's scope id and flow info.
        addrs.iter_mut().for_each(|addr| addr.set_port(this.port));
        Poll::Ready(Ok(addrs))
    }
}

fn current_runtime() -> Option<tokio::runtime::Id> {
    tokio::runtime::Handle::try_current().ok().map(|h| h.id())
}

/// One name's `getaddrinfo` call and the lookups waiting for it. Lookups are shared among
/// the connects of one runtime, whose blocking pool runs the call, so that no runtime waits
/// behind another's busy pool.
struct Flight {
    runtime: Option<tokio::runtime::Id>,
    host: Name,
    state: Mutex<FlightState>,
}

/// A flight's name in lower case, kept in the flight itself when it is short (as most names
/// are), so that a lookup allocates nothing for it.
enum Name {
    Short { len: u8, bytes: [u8; SHORT_NAME] },
    Long(Box<str>),
}

/// The longest name kept in the flight itself; the flight's first cache lines hold it.
const SHORT_NAME: usize = 62;

impl Name {
    fn lowercase(host: &str) -> Self {
        let len = match u8::try_from(host.len()) {
            Ok(len) if host.len() <= SHORT_NAME => len,
            _ => return Name::Long(host.to_ascii_lowercase().into()),
        };
        let mut bytes = [0; SHORT_NAME];
        for (kept, byte) in bytes.iter_mut().zip(host.bytes()) {
            *kept = byte.to_ascii_lowercase();
        }
        Name::Short { len, bytes }
    }

    fn as_str(&self) -> &str {
        match self {
            // SAFETY: the bytes are a `&str`'s with ASCII letters lowered, which keeps them
            // UTF-8: every byte of a multi-byte character is above the ASCII range.
            Name::Short { len, bytes } => unsafe {
                std::str::from_utf8_unchecked(&bytes[..usize::from(*len)])
            },
            Name::Long(name) => name,
        }
    }
}

#[derive(Default)]
struct FlightState {
    stage: Progress,
    /// Lookups that joined the flight and have neither read its answer nor left: the last
    /// to read it takes it, the others copy it.
    readers: usize,
    wakers: Wakers,
    /// The slot of a running call, until it returns or is abandoned.
    slot: Option<OwnedSemaphorePermit>,
    /// Whether the call gave its slot back and counts among the abandoned.
    abandoned: bool,
}

/// The waiters' wakers, each in the place its waiter was given; the first is kept inline, as
/// most flights have one waiter. A waiter that leaves empties its place for the next.
#[derive(Default)]
struct Wakers {
    first: Option<Waker>,
    more: Vec<Option<Waker>>,
    free: Vec<usize>,
}

impl Wakers {
    /// Keeps `waker` in the waiter's `place`, giving it one on its first call.
    fn register(&mut self, place: &mut Option<usize>, waker: &Waker) {
        match *place {
            Some(0) => return keep(&mut self.first, waker),
            Some(more) => return keep(&mut self.more[more - 1], waker),
            None => {}
        }
        if self.first.is_none() {
            self.first = Some(waker.clone());
            *place = Some(0);
            return;
        }
        let index = self.free.pop().unwrap_or_else(|| {
            self.more.push(None);
            self.more.len() - 1
        });
        self.more[index] = Some(waker.clone());
        *place = Some(index + 1);
    }

    /// Empties a leaving waiter's place.
    fn leave(&mut self, place: usize) {
        match place {
            0 => self.first = None,
            more => {
                self.more[more - 1] = None;
                self.free.push(more - 1);
            }
        }
    }

    fn iter(&self) -> impl Iterator<Item = &Waker> {
        self.first.iter().chain(self.more.iter().flatten())
    }

    fn wake_all(self) {
        self.first
            .into_iter()
            .chain(self.more.into_iter().flatten())
            .for_each(Waker::wake);
    }
}

fn keep(kept: &mut Option<Waker>, waker: &Waker) {
    match kept {
        Some(kept) => kept.clone_from(waker),
        None => *kept = Some(waker.clone()),
    }
}

#[derive(Default)]
enum Progress {
    /// No slot yet: the first waiter to get one starts the call.
    #[default]
    WaitingForSlot,
    Running,
    /// Emptied when its last reader took it.
    Answered(io::Result<Vec<SocketAddr>>),
}

impl Flight {
    fn lock(&self) -> MutexGuard<'_, FlightState> {
        lock(&self.state)
    }

    /// Counts one more reader, unless the flight has answered (a later lookup asks anew).
    fn join_unanswered(&self) -> bool {
        let mut state = self.lock();
        let unanswered = !matches!(state.stage, Progress::Answered(_));
        state.readers += usize::from(unanswered);
        unanswered
    }
}

impl FlightState {
    /// One reader's answer and its leaving: the last reader takes the answer itself, so that
    /// the usual lookup, with one reader, copies nothing.
    fn read(&mut self) -> Option<io::Result<Vec<SocketAddr>>> {
        let Progress::Answered(answer) = &mut self.stage else {
            return None;
        };
        self.readers -= 1;
        Some(match (self.readers, answer) {
            (0, answer) => std::mem::replace(answer, Ok(Vec::new())),
            (_, Ok(addrs)) => Ok(addrs.clone()),
            (_, Err(error)) => Err(copy_error(error)),
        })
    }
}

/// A running call: it answers its flight even if it ends without a result (a panic, or a
/// runtime shutting down before it ran), so that no waiter waits forever.
struct Call {
    flight: Arc<Flight>,
    abandoned: Arc<AtomicUsize>,
    /// Whether this call gave its answer, so that dropping it need not lock the flight
    /// while its waiters read the answer.
    answered: bool,
}

impl Call {
    /// Records the answer, if none was, wakes every waiter, and frees the call's slot or its
    /// place among the abandoned.
    fn answer(&mut self, answer: io::Result<Vec<SocketAddr>>) {
        self.answered = true;
        let (wakers, slot) = {
            let mut state = self.flight.lock();
            if matches!(state.stage, Progress::Answered(_)) {
                return;
            }
            state.stage = Progress::Answered(answer);
            if std::mem::take(&mut state.abandoned) {
                self.abandoned.fetch_sub(1, Ordering::AcqRel);
            }
            (std::mem::take(&mut state.wakers), state.slot.take())
        };
        // Waiters first: giving the slot back can wait, they should not.
        wakers.wake_all();
        drop(slot);
    }
}

impl Drop for Call {
    fn drop(&mut self) {
        // The usual call has answered: its error is built only when it did not.
        if !self.answered {
            let ended = io::Error::other("the lookup ended without an answer");
            self.answer(Err(ended));
        }
    }
}

/// One lookup waiting for its flight's answer; when no slot was free, it queues for one, and
/// the first waiter to get one starts the call. A flight whose waiters all left before that
/// makes no call; one whose waiters all leave while it runs gives its slot back (see
/// [`Lookups`]).
struct Waiting<'a> {
    flight: Arc<Flight>,
    lookups: &'a Lookups,
    place: Option<usize>,
    acquiring: Option<Acquiring>,
    /// Whether it has read the answer, and so left the flight's readers.
    read: bool,
}

type Acquiring = Pin<Box<dyn Future<Output = Result<OwnedSemaphorePermit, AcquireError>> + Send>>;

impl Future for Waiting<'_> {
    type Output = io::Result<Vec<SocketAddr>>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        loop {
            {
                let mut state = this.flight.lock();
                let state = &mut *state;
                if let Some(answer) = state.read() {
                    this.read = true;
                    return Poll::Ready(answer);
                }
                state.wakers.register(&mut this.place, cx.waker());
                if matches!(state.stage, Progress::Running) {
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
                Err(closed) => return Poll::Ready(Err(io::Error::other(closed))),
            }
        }
    }
}

impl Drop for Waiting<'_> {
    /// Takes this waiter's waker out of the flight; the last waiter of a running call gives
    /// its slot back, within the budget for abandoned calls.
    fn drop(&mut self) {
        if self.read {
            return;
        }
        let slot = {
            let mut state = self.flight.lock();
            let state = &mut *state;
            state.readers -= 1;
            if let Progress::Answered(answer) = &mut state.stage {
                // The answer took the wakers; the last reader frees the answer.
                if state.readers == 0 {
                    *answer = Ok(Vec::new());
                }
                return;
            }
            if let Some(place) = self.place {
                state.wakers.leave(place);
            }
            let last_of_a_running_call =
                state.readers == 0 && matches!(state.stage, Progress::Running);
            match last_of_a_running_call && state.slot.is_some() && self.lookups.may_abandon() {
                true => {
                    state.abandoned = true;
                    state.slot.take()
                }
                false => None,
            }
        };
        drop(slot);
    }
}

impl Lookups {
    /// Takes a place among the abandoned calls, if one is free.
    fn may_abandon(&self) -> bool {
        self.abandoned
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |now| {
                (now < self.max_abandoned).then_some(now + 1)
            })
            .is_ok()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
    use std::time::Duration;

    use super::*;
    use crate::resolve::{Resolve, Resolving};

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
        let lookups = Arc::new(Lookups::new(4, 0, counted));
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
        assert!(in_flight.calls.values().all(|call| {
            call.upgrade()
                .is_none_or(|flight| !flight.join_unanswered())
        }));
    }

    static LONG_CALLS: AtomicUsize = AtomicUsize::new(0);

    fn long_and_missing(host: &str) -> io::Result<Vec<SocketAddr>> {
        assert_eq!(
            host,
            host.to_ascii_lowercase(),
            "the call is made in lower case"
        );
        LONG_CALLS.fetch_add(1, SeqCst);
        std::thread::sleep(Duration::from_millis(100));
        Err(io::Error::new(io::ErrorKind::NotFound, "no such host"))
    }

    /// A name too long to be kept in the flight itself is shared like any other, and every
    /// waiter gets the error: the copies and the last waiter's original alike.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn long_names_share_a_call_and_every_waiter_gets_its_error() {
        let lookups = Arc::new(Lookups::new(4, 0, long_and_missing));
        let label = "a".repeat(SHORT_NAME);
        let mut waiting = Vec::new();
        for spelling in [label.as_str(), &label.to_ascii_uppercase()].repeat(3) {
            let lookups = lookups.clone();
            let host = format!("{spelling}.test");
            waiting.push(tokio::spawn(async move { lookups.lookup(&host, 80).await }));
        }
        for answer in waiting {
            let error = answer.await.unwrap().unwrap_err();
            assert_eq!(error.kind(), io::ErrorKind::NotFound);
            assert_eq!(error.to_string(), "no such host");
        }
        assert_eq!(LONG_CALLS.load(SeqCst), 1);
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
        let lookups = Arc::new(Lookups::new(3, 0, slow));
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
        let lookups = Arc::new(Lookups::new(1, 0, blocks_first));
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

    /// A test's own lookup table as a resolver.
    impl Resolve for Lookups {
        fn resolve<'a>(&'a self, host: &'a str, port: u16) -> Resolving<'a> {
            Box::pin(self.lookup(host, port))
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
        use crate::connector::Connector;
        use crate::error::{ConnectError, Stage};
        let lookups = Arc::new(Lookups::new(1, 0, holds_the_slot));
        let busy = tokio::spawn({
            let lookups = lookups.clone();
            async move { lookups.lookup("busy.test", 80).await }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        let connector = Connector::new()
            .resolver(lookups)
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
        let lookups = Lookups::new(4, 0, instant);
        for n in 0..1000 {
            lookups.lookup(&format!("host-{n}.test"), 80).await.unwrap();
        }
        let entries = lookups.in_flight.lock().unwrap().calls.len();
        assert!(
            entries <= 64,
            "{entries} entries after 1,000 answered lookups"
        );
    }

    /// A second poll after the answer must not read the flight's answer again (which would
    /// miscount its readers); it panics, as an `async` block resumed after completion does.
    #[tokio::test]
    async fn a_lookup_polled_after_its_answer_panics() {
        let lookups = Lookups::new(4, 0, instant);
        let mut lookup = std::pin::pin!(lookups.lookup("again.test", 80));
        let addrs = std::future::poll_fn(|cx| lookup.as_mut().poll(cx))
            .await
            .unwrap();
        assert_eq!(addrs, vec![SocketAddr::from(([127, 0, 0, 1], 80))]);
        let waker = futures_util::task::noop_waker();
        let polled_again = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            lookup.as_mut().poll(&mut Context::from_waker(&waker))
        }));
        let message = polled_again.expect_err("a second poll panics");
        let message = message.downcast_ref::<&str>().copied();
        assert_eq!(
            message,
            Some("a lookup polled after it returned its answer")
        );
    }

    fn link_local(_host: &str) -> io::Result<Vec<SocketAddr>> {
        Ok(vec!["[fe80::1%3]:0".parse().unwrap()])
    }

    /// `getaddrinfo` answers a zone for link-local names (mDNS, `/etc/hosts`); Linux refuses
    /// to dial `fe80::1` without one.
    #[tokio::test]
    async fn the_ipv6_zone_survives_the_port() {
        let lookups = Lookups::new(1, 0, link_local);
        let addrs = lookups.lookup("printer.local", 631).await.unwrap();
        assert_eq!(addrs, ["[fe80::1%3]:631".parse::<SocketAddr>().unwrap()]);
        let SocketAddr::V6(v6) = addrs[0] else {
            unreachable!()
        };
        assert_eq!(v6.scope_id(), 3);
    }

    #[test]
    fn shared_errors_keep_their_kind_and_code() {
        let os = copy_error(&io::Error::from_raw_os_error(libc::ECONNREFUSED));
        assert_eq!(os.raw_os_error(), Some(libc::ECONNREFUSED));
        let named = copy_error(&io::Error::new(io::ErrorKind::NotFound, "no such host"));
        assert_eq!(named.kind(), io::ErrorKind::NotFound);
        assert_eq!(named.to_string(), "no such host");
    }

    /// A gate that blocked lookups wait at until a test opens it.
    struct Gate(Mutex<bool>, std::sync::Condvar);

    impl Gate {
        const fn new() -> Self {
            Self(Mutex::new(false), std::sync::Condvar::new())
        }

        fn wait(&self) {
            let open = self.0.lock().unwrap();
            drop(self.1.wait_while(open, |open| !*open).unwrap());
        }

        fn open(&self) {
            *self.0.lock().unwrap() = true;
            self.1.notify_all();
        }

        /// Opens the gate when dropped, so that a failing test does not leave its runtime
        /// waiting at shutdown for the blocked calls.
        fn opened_at_the_end(&'static self) -> impl Drop {
            struct Opens(&'static Gate);
            impl Drop for Opens {
                fn drop(&mut self) {
                    self.0.open();
                }
            }
            Opens(self)
        }
    }

    /// A task's waker that counts its live copies.
    struct CountedWaker;

    impl std::task::Wake for CountedWaker {
        fn wake(self: Arc<Self>) {}
    }

    static HUNG_FOR_WAKERS: Gate = Gate::new();

    fn hangs_for_wakers(_host: &str) -> io::Result<Vec<SocketAddr>> {
        HUNG_FOR_WAKERS.wait();
        Ok(loopback())
    }

    /// A waiter that gives up takes its waker, and so its task's memory, with it: 1,000
    /// abandoned waits on one hung name leave no waker behind and one place in the table.
    #[tokio::test]
    async fn an_abandoned_waiter_takes_its_waker_with_it() {
        let _open = HUNG_FOR_WAKERS.opened_at_the_end();
        let lookups = Lookups::new(1, 0, hangs_for_wakers);
        let task = Arc::new(CountedWaker);
        let waker = Waker::from(task.clone());
        let mut cx = Context::from_waker(&waker);
        let mut flight = None;
        for _ in 0..1000 {
            let mut waiting = Box::pin(Waiting {
                flight: lookups.join("hung.test", current_runtime()),
                lookups: &lookups,
                place: None,
                acquiring: None,
                read: false,
            });
            assert!(waiting.as_mut().poll(&mut cx).is_pending());
            flight = Some(waiting.flight.clone());
        }
        let flight = flight.unwrap();
        assert_eq!(
            Arc::strong_count(&task),
            2,
            "only the test's own waker is left"
        );
        {
            let state = flight.lock();
            assert_eq!(state.readers, 0);
            assert!(state.wakers.more.len() <= 1, "places are reused");
        }
        HUNG_FOR_WAKERS.open();
    }

    static HUNG_NAMES: Gate = Gate::new();
    static HUNG_CALLS: AtomicUsize = AtomicUsize::new(0);

    fn some_names_hang(host: &str) -> io::Result<Vec<SocketAddr>> {
        if host.starts_with("hang") {
            HUNG_CALLS.fetch_add(1, SeqCst);
            HUNG_NAMES.wait();
        }
        Ok(loopback())
    }

    /// Hung names whose waiters gave up give their slots back (up to the budget for abandoned
    /// calls), so other names still resolve; case variants of a name share one call; beyond the
    /// budget, the bound on threads holds.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn hung_names_cannot_starve_other_lookups() {
        let _open = HUNG_NAMES.opened_at_the_end();
        let lookups = Lookups::new(2, 2, some_names_hang);
        let give_up = Duration::from_millis(50);
        for name in ["hang-1.test", "hang-2.test", "HANG-1.test", "hang-2.TEST"] {
            let gave_up = tokio::time::timeout(give_up, lookups.lookup(name, 80)).await;
            assert!(gave_up.is_err(), "{name} hangs");
        }
        assert_eq!(HUNG_CALLS.load(SeqCst), 2, "case variants share a call");
        let fine = tokio::time::timeout(Duration::from_secs(5), lookups.lookup("fine.test", 80));
        assert!(fine.await.is_ok(), "both slots were given back");

        // Past the budget, abandoned calls keep their slots: at most 2 + 2 calls block.
        for name in ["hang-3.test", "hang-4.test"] {
            let gave_up = tokio::time::timeout(give_up, lookups.lookup(name, 80)).await;
            assert!(gave_up.is_err(), "{name} hangs");
        }
        assert_eq!(HUNG_CALLS.load(SeqCst), 4);
        let waits = tokio::time::timeout(give_up, lookups.lookup("other.test", 80)).await;
        assert!(
            waits.is_err(),
            "no third abandoned call gives its slot back"
        );
        assert_eq!(lookups.abandoned.load(SeqCst), 2);

        HUNG_NAMES.open();
        let after = tokio::time::timeout(Duration::from_secs(5), lookups.lookup("other.test", 80));
        assert!(after.await.is_ok());
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(
            lookups.abandoned.load(SeqCst),
            0,
            "ended calls leave the budget"
        );
    }

    fn takes_100_ms(_host: &str) -> io::Result<Vec<SocketAddr>> {
        std::thread::sleep(Duration::from_millis(100));
        Ok(loopback())
    }

    /// A name looked up on two runtimes at once is looked up on each one's own blocking pool:
    /// the idle runtime does not wait behind the busy one's.
    #[test]
    fn a_shared_lookup_does_not_wait_behind_another_runtimes_pool() {
        let lookups = Arc::new(Lookups::new(4, 0, takes_100_ms));
        let busy = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .max_blocking_threads(1)
            .enable_all()
            .build()
            .unwrap();
        busy.spawn_blocking(|| std::thread::sleep(Duration::from_millis(2000)));
        let first = busy.spawn({
            let lookups = lookups.clone();
            async move { lookups.lookup("shared.test", 80).await }
        });
        std::thread::sleep(Duration::from_millis(20));
        let idle = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let began = std::time::Instant::now();
        idle.block_on(lookups.lookup("shared.test", 80)).unwrap();
        let took = began.elapsed();
        assert!(took < Duration::from_millis(1500), "waited {took:?}");
        busy.block_on(first).unwrap().unwrap();
        busy.shutdown_background();
    }

    fn panics_for_one_name(host: &str) -> io::Result<Vec<SocketAddr>> {
        if host == "panics.test" {
            panic!("resolver bug");
        }
        Ok(loopback())
    }

    #[tokio::test]
    async fn a_call_that_panics_answers_with_an_error_and_frees_its_slot() {
        let lookups = Lookups::new(1, 0, panics_for_one_name);
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

    static EAGER_CALLS: AtomicUsize = AtomicUsize::new(0);

    fn counts_eager_calls(_host: &str) -> io::Result<Vec<SocketAddr>> {
        EAGER_CALLS.fetch_add(1, SeqCst);
        Ok(loopback())
    }

    /// Waits up to 5 s for `calls` to reach `count`.
    fn reaches(calls: &AtomicUsize, count: usize) -> bool {
        let until = std::time::Instant::now() + Duration::from_secs(5);
        while calls.load(SeqCst) < count && std::time::Instant::now() < until {
            std::thread::sleep(Duration::from_millis(1));
        }
        calls.load(SeqCst) == count
    }

    /// Asked inside a runtime, a lookup's call starts before the lookup is polled; asked
    /// outside one, at its first poll, on the runtime that polls it.
    #[test]
    fn a_lookup_starts_its_call_when_asked_inside_a_runtime() {
        let lookups = Lookups::new(4, 0, counts_eager_calls);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();

        let asked_outside = lookups.lookup("outside.test", 80);
        std::thread::sleep(Duration::from_millis(100));
        assert_eq!(EAGER_CALLS.load(SeqCst), 0, "no runtime, no call");
        assert_eq!(
            runtime.block_on(asked_outside).unwrap(),
            [SocketAddr::from(([127, 0, 0, 1], 80))]
        );
        assert_eq!(EAGER_CALLS.load(SeqCst), 1);

        let asked_inside = {
            let _inside = runtime.enter();
            lookups.lookup("inside.test", 443)
        };
        assert!(reaches(&EAGER_CALLS, 2), "the call ran unpolled");
        assert_eq!(
            runtime.block_on(asked_inside).unwrap(),
            [SocketAddr::from(([127, 0, 0, 1], 443))]
        );
        assert_eq!(EAGER_CALLS.load(SeqCst), 2, "and only once");
    }

    // Not `some_names_hang`: the tests run at once, and that test counts its calls exactly.
    static UNPOLLED_NAMES: Gate = Gate::new();
    static UNPOLLED_CALLS: AtomicUsize = AtomicUsize::new(0);

    fn unpolled_names_hang(host: &str) -> io::Result<Vec<SocketAddr>> {
        if host == "unpolled.test" {
            UNPOLLED_CALLS.fetch_add(1, SeqCst);
            UNPOLLED_NAMES.wait();
        }
        Ok(loopback())
    }

    /// A lookup dropped before its first poll leaves its flight as a polled one does: its
    /// running call gives the only slot back, so another name still resolves.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_lookup_dropped_unpolled_gives_its_slot_back() {
        let _open = UNPOLLED_NAMES.opened_at_the_end();
        let lookups = Lookups::new(1, 1, unpolled_names_hang);
        drop(lookups.lookup("unpolled.test", 80));
        assert!(reaches(&UNPOLLED_CALLS, 1), "the call started");
        assert_eq!(lookups.abandoned.load(SeqCst), 1);
        let other = tokio::time::timeout(Duration::from_secs(5), lookups.lookup("other.test", 80));
        assert!(other.await.is_ok(), "the slot was given back");
    }
}
