//! What a connector has seen: the address that last won per host and port, and recent connect
//! times for the adaptive attempt delay.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::time::Instant;

/// How many recent connect times the adaptive delay looks at.
const WINDOW: usize = 32;
/// Fewer observations than this and the adaptive delay is the configured attempt delay.
const MIN_OBSERVATIONS: usize = 8;
/// The adaptive delay is this multiple of the 90th percentile connect time.
const MARGIN: u32 = 2;

/// A host name and port, as the memory's key.
pub(crate) type HostKey = (Arc<str>, u16);

#[derive(Debug)]
struct Winner {
    addr: SocketAddr,
    stored: Instant,
    /// A logical clock for least-recently-used eviction.
    used: u64,
}

/// The last winning address per host and port: bounded, expiring, least recently used out.
#[derive(Debug)]
pub(crate) struct WinnerMemory {
    capacity: usize,
    ttl: Duration,
    entries: Mutex<Entries>,
}

#[derive(Debug, Default)]
struct Entries {
    map: HashMap<HostKey, Winner>,
    clock: u64,
}

impl WinnerMemory {
    pub(crate) fn new(capacity: usize, ttl: Duration) -> Self {
        Self {
            capacity,
            ttl,
            entries: Mutex::default(),
        }
    }

    pub(crate) fn is_enabled(&self) -> bool {
        self.capacity > 0 && !self.ttl.is_zero()
    }

    fn lock(&self) -> MutexGuard<'_, Entries> {
        // The map stays consistent even if a holder panicked: every update is one call.
        self.entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The remembered winner for `key`, unless it has expired.
    pub(crate) fn recall(&self, key: &HostKey) -> Option<SocketAddr> {
        if !self.is_enabled() {
            return None;
        }
        let mut entries = self.lock();
        let entries = &mut *entries;
        let winner = entries.map.get_mut(key)?;
        if winner.stored.elapsed() >= self.ttl {
            entries.map.remove(key);
            return None;
        }
        entries.clock += 1;
        winner.used = entries.clock;
        Some(winner.addr)
    }

    /// Remembers `addr` as the winner for `key`, evicting the least recently used entry when
    /// full.
    pub(crate) fn remember(&self, key: &HostKey, addr: SocketAddr) {
        if !self.is_enabled() {
            return;
        }
        let mut entries = self.lock();
        entries.clock += 1;
        let used = entries.clock;
        let stored = Instant::now();
        if let Some(winner) = entries.map.get_mut(key) {
            *winner = Winner { addr, stored, used };
            return;
        }
        if entries.map.len() >= self.capacity {
            let oldest = entries
                .map
                .iter()
                .min_by_key(|(_, w)| w.used)
                .map(|(k, _)| k.clone());
            if let Some(oldest) = oldest {
                entries.map.remove(&oldest);
            }
        }
        entries
            .map
            .insert(key.clone(), Winner { addr, stored, used });
    }

    /// Forgets `key`'s winner if it is still `addr` (a concurrent connect may have replaced it).
    pub(crate) fn forget(&self, key: &HostKey, addr: SocketAddr) {
        let mut entries = self.lock();
        if entries.map.get(key).is_some_and(|w| w.addr == addr) {
            entries.map.remove(key);
        }
    }
}

/// Recent connect times, for the adaptive attempt delay.
#[derive(Debug, Default)]
pub(crate) struct ConnectTimes {
    window: Mutex<Window>,
}

#[derive(Debug, Default)]
struct Window {
    times: [Duration; WINDOW],
    len: usize,
    next: usize,
}

impl ConnectTimes {
    pub(crate) fn observe(&self, took: Duration) {
        let mut window = self
            .window
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let slot = window.next;
        window.times[slot] = took;
        window.next = (slot + 1) % WINDOW;
        window.len = (window.len + 1).min(WINDOW);
    }

    /// The attempt delay to use now: see [`adaptive_delay`].
    pub(crate) fn delay(&self, floor: Duration, ceiling: Duration) -> Duration {
        let window = self
            .window
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut times = window.times;
        let len = window.len;
        drop(window);
        adaptive_delay(&mut times[..len], floor, ceiling)
    }
}

/// Twice the 90th percentile of `times`, kept within `floor..=ceiling`; `ceiling` itself until
/// there are enough observations to trust.
///
/// A TCP connect takes about one round trip, so an attempt that has not connected within twice
/// the slow end of recent connect times has most likely lost its SYN: on a lossy path the first
/// retransmission comes only after a second. The 90th percentile rather than the maximum keeps
/// one outlier from holding the delay high; the small window lets a burst of slow connects raise
/// it again within a few connects.
pub(crate) fn adaptive_delay(
    times: &mut [Duration],
    floor: Duration,
    ceiling: Duration,
) -> Duration {
    if times.len() < MIN_OBSERVATIONS {
        return ceiling;
    }
    let rank = (times.len() * 9).div_ceil(10) - 1;
    let (_, p90, _) = times.select_nth_unstable(rank);
    (*p90 * MARGIN).clamp(floor, ceiling.max(floor))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn adaptive_delay_needs_enough_observations() {
        let mut few = [ms(1); MIN_OBSERVATIONS - 1];
        assert_eq!(adaptive_delay(&mut few, ms(10), ms(250)), ms(250));
    }

    #[test]
    fn adaptive_delay_is_twice_the_90th_percentile_within_bounds() {
        let mut times: Vec<_> = (1..=10).map(|n| ms(n * 10)).collect();
        assert_eq!(adaptive_delay(&mut times, ms(10), ms(250)), ms(180));
        let mut fast = [ms(1); 20];
        assert_eq!(adaptive_delay(&mut fast, ms(10), ms(250)), ms(10));
        let mut slow = [ms(400); 20];
        assert_eq!(adaptive_delay(&mut slow, ms(10), ms(250)), ms(250));
    }

    #[test]
    fn one_outlier_does_not_hold_the_delay_high() {
        let mut times = [ms(2); 20];
        times[3] = ms(900);
        assert_eq!(adaptive_delay(&mut times, ms(10), ms(250)), ms(10));
    }

    #[test]
    fn the_window_keeps_the_latest_times() {
        let times = ConnectTimes::default();
        for _ in 0..50 {
            times.observe(ms(1));
        }
        assert_eq!(times.delay(ms(10), ms(250)), ms(10));
        for _ in 0..WINDOW {
            times.observe(ms(400));
        }
        assert_eq!(times.delay(ms(10), ms(250)), ms(250));
    }

    fn key(name: &str) -> HostKey {
        (Arc::from(name), 80)
    }

    fn addr(n: u8) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, n], 80))
    }

    #[tokio::test(start_paused = true)]
    async fn memory_expires() {
        let memory = WinnerMemory::new(4, ms(1000));
        memory.remember(&key("a"), addr(1));
        tokio::time::sleep(ms(999)).await;
        assert_eq!(memory.recall(&key("a")), Some(addr(1)));
        tokio::time::sleep(ms(1)).await;
        assert_eq!(memory.recall(&key("a")), None);
    }

    #[test]
    fn memory_evicts_the_least_recently_used() {
        let memory = WinnerMemory::new(2, ms(60_000));
        memory.remember(&key("a"), addr(1));
        memory.remember(&key("b"), addr(2));
        assert_eq!(memory.recall(&key("a")), Some(addr(1)));
        memory.remember(&key("c"), addr(3));
        assert_eq!(memory.recall(&key("b")), None, "b was used least recently");
        assert_eq!(memory.recall(&key("a")), Some(addr(1)));
        assert_eq!(memory.recall(&key("c")), Some(addr(3)));
    }

    #[test]
    fn forget_only_removes_the_address_that_failed() {
        let memory = WinnerMemory::new(2, ms(60_000));
        memory.remember(&key("a"), addr(1));
        memory.forget(&key("a"), addr(2));
        assert_eq!(memory.recall(&key("a")), Some(addr(1)));
        memory.forget(&key("a"), addr(1));
        assert_eq!(memory.recall(&key("a")), None);
    }

    #[test]
    fn a_zero_capacity_memory_remembers_nothing() {
        let memory = WinnerMemory::new(0, ms(60_000));
        memory.remember(&key("a"), addr(1));
        assert_eq!(memory.recall(&key("a")), None);
    }
}
