//! A bounded map whose entries expire: the storage behind the winner memory and the per-prefix
//! connect times.

use std::collections::{BTreeMap, HashMap};
use std::hash::Hash;
use std::time::Duration;

use tokio::time::Instant;

/// At most `capacity` entries, each trusted for `ttl` after it was last stored. When full, the
/// entry stored least recently goes; expired entries are purged whenever one is stored. Every
/// operation is O(log n).
#[derive(Debug)]
pub(crate) struct ExpiringMap<K, V> {
    capacity: usize,
    ttl: Duration,
    entries: HashMap<K, Entry<V>>,
    /// Keys by the sequence number of their last store, oldest first.
    by_age: BTreeMap<u64, K>,
    next_sequence: u64,
}

#[derive(Debug)]
struct Entry<V> {
    value: V,
    stored: Instant,
    sequence: u64,
}

impl<K: Clone + Eq + Hash, V> ExpiringMap<K, V> {
    pub(crate) fn new(capacity: usize, ttl: Duration) -> Self {
        Self {
            capacity,
            ttl,
            entries: HashMap::new(),
            by_age: BTreeMap::new(),
            next_sequence: 0,
        }
    }

    pub(crate) fn capacity(&self) -> usize {
        self.capacity
    }

    pub(crate) fn ttl(&self) -> Duration {
        self.ttl
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether anything can be stored at all.
    pub(crate) fn is_enabled(&self) -> bool {
        self.capacity > 0 && !self.ttl.is_zero()
    }

    fn is_fresh(&self, entry: &Entry<V>, now: Instant) -> bool {
        now.saturating_duration_since(entry.stored) < self.ttl
    }

    /// The value for `key` and when it was stored, unless it has expired (an expired one is
    /// removed).
    pub(crate) fn get(&mut self, key: &K, now: Instant) -> Option<(V, Instant)>
    where
        V: Clone,
    {
        let entry = self.entries.get(key)?;
        if self.is_fresh(entry, now) {
            return Some((entry.value.clone(), entry.stored));
        }
        self.remove(key);
        None
    }

    /// Stores `update(old value, if fresh)` under `key` as its newest entry, then purges
    /// expired entries and evicts the oldest while over capacity.
    pub(crate) fn store(&mut self, key: K, now: Instant, update: impl FnOnce(Option<V>) -> V) {
        if !self.is_enabled() {
            return;
        }
        let old = self.take(&key).filter(|entry| self.is_fresh(entry, now));
        let sequence = self.next_sequence;
        self.next_sequence += 1;
        let value = update(old.map(|entry| entry.value));
        self.by_age.insert(sequence, key.clone());
        let entry = Entry {
            value,
            stored: now,
            sequence,
        };
        self.entries.insert(key, entry);
        self.purge(now);
    }

    /// Removes `key` if `condition` holds for its value.
    pub(crate) fn remove_if(&mut self, key: &K, condition: impl FnOnce(&V) -> bool) {
        if self.entries.get(key).is_some_and(|e| condition(&e.value)) {
            self.remove(key);
        }
    }

    fn remove(&mut self, key: &K) {
        self.take(key);
    }

    fn take(&mut self, key: &K) -> Option<Entry<V>> {
        let entry = self.entries.remove(key)?;
        self.by_age.remove(&entry.sequence);
        Some(entry)
    }

    fn purge(&mut self, now: Instant) {
        while let Some(entry) = self.by_age.first_key_value() {
            let (_, key) = entry;
            let oldest = &self.entries[key];
            if self.entries.len() <= self.capacity && self.is_fresh(oldest, now) {
                return;
            }
            let key = key.clone();
            self.remove(&key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[tokio::test(start_paused = true)]
    async fn entries_expire_after_the_ttl() {
        let mut map = ExpiringMap::new(4, ms(1000));
        map.store("a", Instant::now(), |_| 1);
        tokio::time::sleep(ms(999)).await;
        assert_eq!(map.get(&"a", Instant::now()).map(|(v, _)| v), Some(1));
        tokio::time::sleep(ms(1)).await;
        assert_eq!(map.get(&"a", Instant::now()), None);
        assert_eq!(map.len(), 0, "an expired entry is removed when found");
    }

    #[tokio::test(start_paused = true)]
    async fn storing_purges_expired_entries() {
        let mut map = ExpiringMap::new(100, ms(1000));
        for key in 0..50 {
            map.store(key, Instant::now(), |_| ());
        }
        tokio::time::sleep(ms(1000)).await;
        map.store(99, Instant::now(), |_| ());
        assert_eq!(map.len(), 1, "the 50 expired entries are gone");
    }

    #[test]
    fn the_least_recently_stored_entry_is_evicted() {
        let now = Instant::now();
        let mut map = ExpiringMap::new(2, ms(60_000));
        map.store("a", now, |_| 1);
        map.store("b", now, |_| 2);
        map.store("a", now, |old| old.unwrap_or(0) + 10);
        map.store("c", now, |_| 3);
        assert_eq!(map.get(&"b", now), None, "b was stored least recently");
        assert_eq!(map.get(&"a", now), Some((11, now)));
        assert_eq!(map.get(&"c", now), Some((3, now)));
        assert_eq!(map.len(), 2);
    }

    #[test]
    fn remove_if_checks_the_value() {
        let now = Instant::now();
        let mut map = ExpiringMap::new(2, ms(60_000));
        map.store("a", now, |_| 1);
        map.remove_if(&"a", |&v| v == 2);
        assert_eq!(map.get(&"a", now), Some((1, now)));
        map.remove_if(&"a", |&v| v == 1);
        assert_eq!(map.get(&"a", now), None);
    }

    #[test]
    fn a_zero_capacity_or_ttl_stores_nothing() {
        let now = Instant::now();
        for mut map in [ExpiringMap::new(0, ms(1)), ExpiringMap::new(1, ms(0))] {
            map.store("a", now, |_| 1);
            assert_eq!(map.len(), 0);
        }
    }

    #[test]
    fn a_huge_map_stays_fast() {
        let now = Instant::now();
        let mut map = ExpiringMap::new(100_000, Duration::MAX);
        let started = std::time::Instant::now();
        for key in 0..300_000u32 {
            map.store(key, now, |_| ());
        }
        assert_eq!(map.len(), 100_000);
        // O(n) eviction would take minutes here; O(log n) takes well under a second.
        assert!(started.elapsed() < Duration::from_secs(20));
    }
}
