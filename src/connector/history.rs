//! What a connector has seen: the address that last won per host and port, and recent connect
//! times (connector-wide and per destination prefix) for the adaptive attempt delay.

use std::borrow::Cow;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use crate::connector::expiring::ExpiringMap;
use crate::sync::{Prehashed, hash_once, lock};
use crate::target::host::canonical_name;

/// How many recent connect times the connector-wide estimate looks at.
const WINDOW: usize = 32;
/// How many recent connect times are kept per destination prefix.
const PREFIX_WINDOW: usize = 8;
/// Fewer connector-wide observations than this and the estimate is the configured delay.
const MIN_OBSERVATIONS: usize = 8;
/// The adaptive delay is this multiple of the 90th percentile connect time.
const MARGIN: u32 = 2;
/// How many destination prefixes keep their connect times, and for how long.
const PREFIX_CAPACITY: usize = 1024;
const PREFIX_TTL: Duration = Duration::from_secs(600);

/// A host name (lower case, no trailing dot) and port: the winner memory's key, and the
/// answer cache's. It carries its hash, computed once (see [`Prehashed`]).
#[derive(Clone, Debug)]
pub(crate) struct HostKey {
    name: Arc<str>,
    port: u16,
    /// Half the hash: enough to spread the keys, and it keeps the key at 24 bytes.
    hash: u32,
}

impl PartialEq for HostKey {
    fn eq(&self, other: &Self) -> bool {
        self.hash == other.hash && self.port == other.port && self.name == other.name
    }
}

impl Eq for HostKey {}

impl Hash for HostKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u32(self.hash);
    }
}

impl HostKey {
    /// The key for `name` and `port`; `Dual.Test.` and `dual.test` are one host. Allocates
    /// only for a name that is not already canonical.
    pub(crate) fn new(name: &Arc<str>, port: u16) -> Self {
        let name = match canonical_name(name) {
            Cow::Borrowed(same) if same.len() == name.len() => name.clone(),
            canonical => Arc::from(canonical),
        };
        let hash = hash_once((&*name, port)) as u32;
        Self { name, port, hash }
    }
}

/// A remembered winner and when it was stored.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Recalled {
    pub(crate) addr: SocketAddr,
    stored: Instant,
}

/// The last winning address per host and port.
pub(crate) struct WinnerMemory {
    winners: Mutex<ExpiringMap<HostKey, SocketAddr, Prehashed>>,
    /// Whether anything can be remembered, known without the lock.
    enabled: bool,
    /// The first eighth of the time to live, in which a winner confirmed again is not stored
    /// anew; known without the lock.
    fresh_for: Duration,
}

impl WinnerMemory {
    pub(crate) fn new(capacity: usize, ttl: Duration) -> Self {
        let winners = ExpiringMap::with_hasher(capacity, ttl, Prehashed);
        Self {
            enabled: winners.is_enabled(),
            fresh_for: winners.ttl() / 8,
            winners: Mutex::new(winners),
        }
    }

    /// Whether anything can be remembered (a capacity and a time to live above zero).
    pub(crate) fn is_enabled(&self) -> bool {
        self.enabled
    }

    /// The remembered winner for `key`, unless it had expired by `now` (the connect's start,
    /// which the caller has read already).
    pub(crate) fn recall(&self, key: &HostKey, now: Instant) -> Option<Recalled> {
        let (addr, stored) = lock(&self.winners).get(key, now)?;
        Some(Recalled { addr, stored })
    }

    /// Remembers `addr` as the winner for `key`. `recalled` is what this connect, begun at
    /// `began`, recalled: a winner confirmed again by a connect begun within the first eighth
    /// of its time to live is not stored anew, which spares a busy connector two map updates
    /// and a clock reading per connect, and delays its expiry by at most that eighth.
    pub(crate) fn remember(
        &self,
        key: &HostKey,
        addr: SocketAddr,
        recalled: Option<Recalled>,
        began: Instant,
    ) {
        let fresh = recalled.is_some_and(|recalled| {
            let age = began.saturating_duration_since(recalled.stored);
            recalled.addr == addr && age < self.fresh_for
        });
        if !fresh {
            lock(&self.winners).store(key.clone(), Instant::now(), |_| addr);
        }
    }

    /// Forgets `key`'s winner if it is still `addr` (a concurrent connect may have replaced it).
    pub(crate) fn forget(&self, key: &HostKey, addr: SocketAddr) {
        lock(&self.winners).remove_if(key, |&winner| winner == addr);
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        lock(&self.winners).len()
    }
}

/// A summary, so that printing a connector neither lists every host nor waits for the lock.
impl fmt::Debug for WinnerMemory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut debug = f.debug_struct("WinnerMemory");
        if let Ok(winners) = self.winners.try_lock() {
            debug
                .field("capacity", &winners.capacity())
                .field("ttl", &winners.ttl())
                .field("hosts", &winners.len());
        }
        debug.finish_non_exhaustive()
    }
}

/// The latest `N` connect times.
#[derive(Clone, Copy, Debug)]
struct Window<const N: usize> {
    times: [Duration; N],
    len: usize,
    next: usize,
}

impl<const N: usize> Default for Window<N> {
    fn default() -> Self {
        Self {
            times: [Duration::ZERO; N],
            len: 0,
            next: 0,
        }
    }
}

impl<const N: usize> Window<N> {
    fn observe(&mut self, took: Duration) {
        self.times[self.next] = took;
        self.next = (self.next + 1) % N;
        self.len = (self.len + 1).min(N);
    }

    fn delay(mut self, floor: Duration, ceiling: Duration) -> Duration {
        p90_delay(&mut self.times[..self.len], floor, ceiling)
    }
}

/// A destination prefix: IPv4 /24 or IPv6 /64, the unit RFC 8305 §5 keeps RTT history for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Prefix {
    V4(u32),
    V6(u64),
}

impl Prefix {
    fn of(addr: &SocketAddr) -> Self {
        match addr.ip() {
            IpAddr::V4(ip) => Prefix::V4(u32::from(ip) >> 8),
            IpAddr::V6(ip) => Prefix::V6((u128::from(ip) >> 64) as u64),
        }
    }
}

#[derive(Debug)]
struct Times {
    everywhere: Window<WINDOW>,
    by_prefix: ExpiringMap<Prefix, Window<PREFIX_WINDOW>>,
}

/// Recent connect times, for the adaptive attempt delay.
pub(crate) struct ConnectTimes {
    times: Mutex<Times>,
}

impl Default for ConnectTimes {
    fn default() -> Self {
        Self {
            times: Mutex::new(Times {
                everywhere: Window::default(),
                by_prefix: ExpiringMap::new(PREFIX_CAPACITY, PREFIX_TTL),
            }),
        }
    }
}

impl fmt::Debug for ConnectTimes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectTimes").finish_non_exhaustive()
    }
}

impl ConnectTimes {
    /// Records that a connect to `addr` took `took`.
    pub(crate) fn observe(&self, addr: &SocketAddr, took: Duration) {
        let mut times = lock(&self.times);
        times.everywhere.observe(took);
        times
            .by_prefix
            .store(Prefix::of(addr), Instant::now(), |window| {
                let mut window = window.unwrap_or_default();
                window.observe(took);
                window
            });
    }

    /// The pacing of one connect's attempts.
    pub(crate) fn pace(&self, floor: Duration, ceiling: Duration) -> AdaptivePace<'_> {
        AdaptivePace {
            times: self,
            floor,
            ceiling,
            estimate_spent: false,
        }
    }
}

/// The adaptive delays of one connect: each attempt waits for what its own destination prefix
/// has shown; a prefix never seen borrows the connector-wide estimate once per connect.
#[derive(Debug)]
pub(crate) struct AdaptivePace<'a> {
    times: &'a ConnectTimes,
    floor: Duration,
    ceiling: Duration,
    estimate_spent: bool,
}

impl AdaptivePace<'_> {
    /// How long to wait after starting an attempt to `addr` before starting the next one.
    pub(crate) fn delay_after(&mut self, addr: &SocketAddr) -> Duration {
        let (own, estimate) = {
            let mut times = lock(&self.times.times);
            let own = times
                .by_prefix
                .get(&Prefix::of(addr), Instant::now())
                .map(|(window, _)| window.delay(self.floor, self.ceiling));
            let everywhere = times.everywhere;
            let estimate = match everywhere.len {
                n if n < MIN_OBSERVATIONS => self.ceiling,
                _ => everywhere.delay(self.floor, self.ceiling),
            };
            (own, estimate)
        };
        pick_delay(own, estimate, self.ceiling, &mut self.estimate_spent)
    }
}

/// The delay after an attempt: the prefix's `own` when it has history; else the connector-wide
/// `estimate`, but only once per connect (`estimate_spent` records that), so a far host never
/// seen before gets at most one extra attempt from the pace of nearer ones; else `ceiling`.
fn pick_delay(
    own: Option<Duration>,
    estimate: Duration,
    ceiling: Duration,
    estimate_spent: &mut bool,
) -> Duration {
    if let Some(own) = own {
        return own;
    }
    if *estimate_spent || estimate >= ceiling {
        return ceiling;
    }
    *estimate_spent = true;
    estimate
}

/// Twice the 90th percentile of `times`, kept within `floor..=ceiling`; `ceiling` without
/// observations.
///
/// A TCP connect takes about one round trip, so an attempt that has not connected within twice
/// the slow end of recent connect times has most likely lost its SYN: on a lossy path the first
/// retransmission comes only after a second. The 90th percentile rather than the maximum keeps
/// one outlier from holding the delay high; the small window lets a burst of slow connects raise
/// it again within a few connects.
fn p90_delay(times: &mut [Duration], floor: Duration, ceiling: Duration) -> Duration {
    if times.is_empty() {
        return ceiling;
    }
    let rank = (times.len() * 9).div_ceil(10) - 1;
    let (_, p90, _) = times.select_nth_unstable(rank);
    p90.saturating_mul(MARGIN).clamp(floor, ceiling.max(floor))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn addr(text: &str) -> SocketAddr {
        text.parse().unwrap()
    }

    #[test]
    fn p90_delay_is_twice_the_90th_percentile_within_bounds() {
        let mut times: Vec<_> = (1..=10).map(|n| ms(n * 10)).collect();
        assert_eq!(p90_delay(&mut times, ms(10), ms(250)), ms(180));
        let mut fast = [ms(1); 20];
        assert_eq!(p90_delay(&mut fast, ms(10), ms(250)), ms(10));
        let mut slow = [ms(400); 20];
        assert_eq!(p90_delay(&mut slow, ms(10), ms(250)), ms(250));
        assert_eq!(p90_delay(&mut [], ms(10), ms(250)), ms(250));
        let mut huge = [Duration::MAX; 3];
        assert_eq!(p90_delay(&mut huge, ms(10), Duration::MAX), Duration::MAX);
    }

    #[test]
    fn one_outlier_does_not_hold_the_delay_high() {
        let mut times = [ms(2); 20];
        times[3] = ms(900);
        assert_eq!(p90_delay(&mut times, ms(10), ms(250)), ms(10));
    }

    #[test]
    fn the_estimate_paces_one_extra_attempt_at_most() {
        let mut spent = false;
        let (ceiling, estimate) = (ms(250), ms(10));
        assert_eq!(pick_delay(None, estimate, ceiling, &mut spent), estimate);
        assert_eq!(pick_delay(None, estimate, ceiling, &mut spent), ceiling);
        assert_eq!(
            pick_delay(Some(ms(30)), estimate, ceiling, &mut spent),
            ms(30)
        );
        let mut spent = false;
        assert_eq!(pick_delay(None, ceiling, ceiling, &mut spent), ceiling);
        assert!(!spent, "an estimate equal to the ceiling paces nothing");
    }

    #[test]
    fn prefixes_are_v4_24_and_v6_64() {
        let same = |a: &str, b: &str| Prefix::of(&addr(a)) == Prefix::of(&addr(b));
        assert!(same("10.1.2.3:1", "10.1.2.200:2"));
        assert!(!same("10.1.2.3:1", "10.1.3.3:1"));
        assert!(same("[2001:db8:0:1::1]:1", "[2001:db8:0:1:ffff::9]:1"));
        assert!(!same("[2001:db8:0:1::1]:1", "[2001:db8:0:2::1]:1"));
    }

    #[test]
    fn each_prefix_is_paced_by_its_own_times() {
        let times = ConnectTimes::default();
        for _ in 0..50 {
            times.observe(&addr("127.0.0.1:1"), ms(1));
        }
        times.observe(&addr("127.0.1.1:1"), ms(150));
        let mut pace = times.pace(ms(10), ms(250));
        assert_eq!(pace.delay_after(&addr("127.0.0.9:1")), ms(10));
        assert_eq!(pace.delay_after(&addr("127.0.1.9:1")), ms(250));
        assert_eq!(pace.delay_after(&addr("[::1]:1")), ms(10), "borrowed once");
        assert_eq!(pace.delay_after(&addr("127.0.2.1:1")), ms(250));
    }

    #[test]
    fn host_keys_ignore_case_and_a_trailing_dot() {
        let key = |name: &str| HostKey::new(&Arc::from(name), 1);
        assert_eq!(key("Dual.Test"), key("dual.test."));
        assert_eq!(key("dual.test"), key("DUAL.TEST."));
        assert_ne!(key("dual.test"), HostKey::new(&Arc::from("dual.test"), 2));
    }

    #[test]
    fn forget_only_removes_the_address_that_failed() {
        let memory = WinnerMemory::new(2, ms(60_000));
        let key = HostKey::new(&Arc::from("a"), 80);
        memory.remember(&key, addr("127.0.0.1:80"), None, Instant::now());
        memory.forget(&key, addr("127.0.0.2:80"));
        assert_eq!(
            memory.recall(&key, Instant::now()).map(|r| r.addr),
            Some(addr("127.0.0.1:80"))
        );
        memory.forget(&key, addr("127.0.0.1:80"));
        assert!(memory.recall(&key, Instant::now()).is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn a_winner_confirmed_again_is_stored_anew_only_after_an_eighth_of_its_ttl() {
        let (memory, key, winner) = stored_now();
        tokio::time::sleep(ms(999)).await;
        confirm(&memory, &key, winner);
        tokio::time::sleep(ms(7_001)).await;
        assert!(
            memory.recall(&key, Instant::now()).is_none(),
            "not stored anew at 999 ms"
        );
        memory.remember(&key, winner, None, Instant::now());
        tokio::time::sleep(ms(1_000)).await;
        confirm(&memory, &key, winner);
        tokio::time::sleep(ms(7_001)).await;
        assert!(
            memory.recall(&key, Instant::now()).is_some(),
            "stored anew at 1,000 ms"
        );
    }

    /// A memory with an eight-second time to live that has just stored a winner for its key.
    fn stored_now() -> (WinnerMemory, HostKey, SocketAddr) {
        let memory = WinnerMemory::new(2, ms(8_000));
        let key = HostKey::new(&Arc::from("a"), 80);
        let winner = addr("127.0.0.1:80");
        memory.remember(&key, winner, None, Instant::now());
        (memory, key, winner)
    }

    /// A connect that began at `now`, recalled `winner` and saw it win again.
    fn confirm(memory: &WinnerMemory, key: &HostKey, winner: SocketAddr) {
        let began = Instant::now();
        memory.remember(key, winner, memory.recall(key, began), began);
    }

    #[tokio::test(start_paused = true)]
    async fn freshness_is_judged_when_the_connect_began_not_when_it_ended() {
        let (memory, key, winner) = stored_now();
        tokio::time::sleep(ms(999)).await;
        let began = Instant::now();
        let recalled = memory.recall(&key, began);
        // A slow connect: it ends past the first eighth, but began within it.
        tokio::time::sleep(ms(500)).await;
        memory.remember(&key, winner, recalled, began);
        tokio::time::sleep(ms(7_001)).await;
        assert!(memory.recall(&key, Instant::now()).is_none());
    }

    #[test]
    fn debug_is_a_summary() {
        let memory = WinnerMemory::new(4096, ms(60_000));
        for n in 0..1000u16 {
            let key = HostKey::new(&Arc::from(format!("host-{n}.test")), 80);
            memory.remember(&key, addr("127.0.0.1:80"), None, Instant::now());
        }
        assert_eq!(memory.len(), 1000);
        let debug = format!("{memory:?}");
        assert!(!debug.contains("host-"), "{debug}");
        assert!(debug.len() < 200, "{debug}");
    }
}
