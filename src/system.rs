//! The default resolver: `getaddrinfo` on tokio's blocking pool, one call per name at a time
//! and a bounded number of calls in flight.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, OnceLock};

use futures_util::future::{FutureExt, Shared, WeakShared};
use tokio::sync::Semaphore;

use crate::getaddrinfo;
use crate::resolve::{Resolve, Resolving};

/// How many `getaddrinfo` calls may run at once, process-wide. tokio's blocking pool has 512
/// threads by default; stuck lookups must never take them all, or `tokio::fs` and every other
/// blocking task stall behind a DNS outage.
const MAX_LOOKUPS_IN_FLIGHT: usize = 32;

/// The default resolver: the system's `getaddrinfo`, run on tokio's blocking thread pool
/// (`spawn_blocking`), so it honours `/etc/hosts`, nsswitch and the system's RFC 6724 order.
///
/// Lookups are shared and bounded, process-wide:
/// - concurrent lookups of one name share one `getaddrinfo` call (as Go's resolver does);
/// - at most 32 calls run at once; a lookup waits for a free slot, and that wait counts
///   against the connect's resolve timeout and overall timeout;
/// - a lookup whose every waiter has gone (timed out, cancelled, dropped) and that is still
///   waiting for a slot is abandoned without a call.
///
/// What a timeout or a drop cannot stop: a `getaddrinfo` call that has started runs to its end
/// on its blocking thread (glibc gives up after its own timeout, 5 s per try by default, 2
/// tries), holding its slot until then. Nothing else of the connect outlives it.
///
/// Errors carry kinds callers can match: `NotFound` for a name that does not exist,
/// `TimedOut` for a temporary failure, and the system's text as the message.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemResolver;

impl Resolve for SystemResolver {
    fn resolve<'a>(&'a self, host: &'a str, port: u16) -> Resolving<'a> {
        static LOOKUPS: OnceLock<Lookups> = OnceLock::new();
        let lookups =
            LOOKUPS.get_or_init(|| Lookups::new(MAX_LOOKUPS_IN_FLIGHT, getaddrinfo::lookup));
        Box::pin(lookups.lookup(host, port))
    }
}

/// What a lookup's waiters share: `io::Error` is not `Clone`, so the error is shared by `Arc`.
type Answer = Result<Arc<[SocketAddr]>, Arc<io::Error>>;
type Call = Pin<Box<dyn Future<Output = Answer> + Send>>;

/// The blocking lookups in flight, by name.
struct Lookups {
    in_flight: Mutex<InFlight>,
    slots: Arc<Semaphore>,
    /// The blocking lookup itself; tests substitute their own.
    blocking: fn(&str) -> io::Result<Vec<SocketAddr>>,
}

#[derive(Default)]
struct InFlight {
    calls: HashMap<Box<str>, WeakShared<Call>>,
    /// Entries whose waiters all left are swept when the map reaches this size.
    sweep_at: usize,
}

impl Lookups {
    fn new(slots: usize, blocking: fn(&str) -> io::Result<Vec<SocketAddr>>) -> Self {
        Self {
            in_flight: Mutex::default(),
            slots: Arc::new(Semaphore::new(slots)),
            blocking,
        }
    }

    /// Looks `host` up, joining a lookup of the same name already in flight.
    ///
    /// Its entry is not removed when answered: once the last waiter has dropped its handle it
    /// can no longer be joined, the next lookup of the name replaces it, and such dead entries
    /// are swept as the table grows.
    async fn lookup(&self, host: &str, port: u16) -> io::Result<Vec<SocketAddr>> {
        let answer = self.join(host).await;
        match answer {
            Ok(addrs) => Ok(addrs
                .iter()
                .map(|addr| SocketAddr::new(addr.ip(), port))
                .collect()),
            Err(error) => Err(copy(&error)),
        }
    }

    fn join(&self, host: &str) -> Shared<Call> {
        let mut in_flight = self.lock();
        let in_flight = &mut *in_flight;
        let entry = in_flight.calls.entry(host.into());
        if let Entry::Occupied(running) = &entry {
            if let Some(call) = running.get().upgrade() {
                return call;
            }
        }
        let call = self.call(host.to_owned()).shared();
        let weak = call.downgrade().expect("a new call is not finished");
        entry.insert_entry(weak);
        if in_flight.calls.len() >= in_flight.sweep_at {
            in_flight.calls.retain(|_, call| call.upgrade().is_some());
            in_flight.sweep_at = (in_flight.calls.len() * 2).max(64);
        }
        call
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, InFlight> {
        self.in_flight
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A lookup that waits for a slot, then runs the blocking call with the slot held until
    /// the call returns, even if nobody is waiting any more.
    fn call(&self, host: String) -> Call {
        let slots = self.slots.clone();
        let blocking = self.blocking;
        Box::pin(async move {
            let slot = slots.acquire_owned().await.map_err(io::Error::other)?;
            let run = move || {
                let _slot = slot;
                blocking(&host)
            };
            match tokio::task::spawn_blocking(run).await {
                Ok(Ok(addrs)) => Ok(addrs.into()),
                Ok(Err(error)) => Err(Arc::new(error)),
                Err(join) => Err(Arc::new(io::Error::other(join))),
            }
        })
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
        let in_flight = lookups.in_flight.lock().unwrap();
        assert!(
            in_flight
                .calls
                .values()
                .all(|call| call.upgrade().is_none())
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

    #[test]
    fn shared_errors_keep_their_kind_and_code() {
        let os = copy(&io::Error::from_raw_os_error(libc::ECONNREFUSED));
        assert_eq!(os.raw_os_error(), Some(libc::ECONNREFUSED));
        let named = copy(&io::Error::new(io::ErrorKind::NotFound, "no such host"));
        assert_eq!(named.kind(), io::ErrorKind::NotFound);
        assert_eq!(named.to_string(), "no such host");
    }
}
