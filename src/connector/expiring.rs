//! A bounded map whose entries expire: the storage behind the winner memory and the per-prefix
//! connect times.

use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasher, Hash, RandomState};
use std::time::Duration;

use tokio::time::Instant;

/// At most `capacity` entries, each trusted for `ttl` after it was last stored (or for a
/// lifetime of its own, if stored with one). When full, the entry stored least recently goes;
/// expired entries are purged whenever one is stored. Every operation is O(log n). Keys are
/// hashed by `S`.
#[derive(Debug)]
pub(crate) struct ExpiringMap<K, V, S = RandomState> {
    capacity: usize,
    ttl: Duration,
    entries: HashMap<K, Entry<V>, S>,
    /// Keys by the sequence number of their last store, oldest first.
    by_age: BTreeMap<u64, K>,
    /// Keys of entries that expire, by when (then by sequence number), soonest first.
    by_expiry: BTreeMap<(Instant, u64), K>,
    next_sequence: u64,
}

#[derive(Debug)]
struct Entry<V> {
    value: V,
    stored: Instant,
    /// `None`: never (a lifetime too long to add).
    expires: Option<Instant>,
    sequence: u64,
}

impl<V> Entry<V> {
    fn is_fresh(&self, now: Instant) -> bool {
        self.expires.is_none_or(|expires| now < expires)
    }
}

impl<K: Clone + Eq + Hash, V> ExpiringMap<K, V> {
    pub(crate) fn new(capacity: usize, ttl: Duration) -> Self {
        Self::with_hasher(capacity, ttl, RandomState::new())
    }
}

impl<K: Clone + Eq + Hash, V, S: BuildHasher> ExpiringMap<K, V, S> {
    pub(crate) fn with_hasher(capacity: usize, ttl: Duration, hasher: S) -> Self {
        Self {
            capacity,
            ttl,
            entries: HashMap::with_hasher(hasher),
            by_age: BTreeMap::new(),
            by_expiry: BTreeMap::new(),
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

    /// The value for `key` and when it was stored, unless it has expired (an expired one is
    /// removed).
    pub(crate) fn get(&mut self, key: &K, now: Instant) -> Option<(V, Instant)>
    where
        V: Clone,
    {
        // One lookup: `get_mut` needs a second, to hand out a borrow it may not keep.
        match self.entries.get(key) {
            Some(entry) if entry.is_fresh(now) => Some((entry.value.clone(), entry.stored)),
            Some(_) => {
                self.remove(key);
                None
            }
            None => None,
        }
    }

    /// The value for `key`, to read or change in place, and when it was stored, unless it has
    /// expired (an expired one is removed).
    pub(crate) fn get_mut(&mut self, key: &K, now: Instant) -> Option<(&mut V, Instant)> {
        if self.entries.get(key)?.is_fresh(now) {
            let entry = self.entries.get_mut(key)?;
            return Some((&mut entry.value, entry.stored));
        }
        self.remove(key);
        None
    }

    /// Stores `update(old value, if fresh)` under `key` as its newest entry, for the map's
    /// time to live; see [`store_for`](Self::store_for).
    pub(crate) fn store(&mut self, key: K, now: Instant, update: impl FnOnce(Option<V>) -> V) {
        self.store_for(key, now, self.ttl, update);
    }

    /// Stores `update(old value, if fresh)` under `key` as its newest entry, trusted for
    /// `lifetime` (at most the map's time to live), then purges expired entries and evicts
    /// the oldest while over capacity; returns how many were evicted for want of room.
    pub(crate) fn store_for(
        &mut self,
        key: K,
        now: Instant,
        lifetime: Duration,
        update: impl FnOnce(Option<V>) -> V,
    ) -> usize {
        let lifetime = lifetime.min(self.ttl);
        if self.capacity == 0 || lifetime.is_zero() {
            return 0;
        }
        let old = self.take(&key).filter(|entry| entry.is_fresh(now));
        let sequence = self.next_sequence;
        self.next_sequence += 1;
        let value = update(old.map(|entry| entry.value));
        let expires = now.checked_add(lifetime);
        self.by_age.insert(sequence, key.clone());
        if let Some(expires) = expires {
            self.by_expiry.insert((expires, sequence), key.clone());
        }
        let entry = Entry {
            value,
            stored: now,
            expires,
            sequence,
        };
        self.entries.insert(key, entry);
        self.purge(now)
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
        if let Some(expires) = entry.expires {
            self.by_expiry.remove(&(expires, entry.sequence));
        }
        Some(entry)
    }

    /// Removes the expired entries, then the oldest while over capacity; returns how many of
    /// the latter.
    fn purge(&mut self, now: Instant) -> usize {
        while let Some((&(expires, _), key)) = self.by_expiry.first_key_value() {
            if now < expires {
                break;
            }
            let key = key.clone();
            self.remove(&key);
        }
        let mut evicted = 0;
        while self.entries.len() > self.capacity {
            let Some((_, oldest)) = self.by_age.first_key_value() else {
                break;
            };
            let oldest = oldest.clone();
            self.remove(&oldest);
            evicted += 1;
        }
        evicted
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

    #[tokio::test(start_paused = true)]
    async fn an_entry_stored_for_its_own_lifetime_expires_then() {
        let mut map = ExpiringMap::new(4, Duration::MAX);
        map.store_for("short", Instant::now(), ms(100), |_| 1);
        map.store_for("long", Instant::now(), ms(1000), |_| 2);
        map.store_for("forever", Instant::now(), Duration::MAX, |_| 3);
        tokio::time::sleep(ms(100)).await;
        assert_eq!(map.get(&"short", Instant::now()), None);
        assert!(map.get(&"long", Instant::now()).is_some());
        tokio::time::sleep(ms(900)).await;
        map.store_for("new", Instant::now(), ms(1), |_| 4);
        assert_eq!(
            map.len(),
            2,
            "the expired long entry is purged by a store: {map:?}"
        );
        assert!(map.get(&"forever", Instant::now()).is_some());
    }

    #[test]
    fn a_lifetime_is_capped_by_the_maps_ttl() {
        let now = Instant::now();
        let mut map = ExpiringMap::new(4, ms(10));
        map.store_for("a", now, Duration::MAX, |_| 1);
        assert!(map.get(&"a", now + ms(9)).is_some());
        assert_eq!(map.get(&"a", now + ms(10)), None);
    }

    #[test]
    fn eviction_for_room_is_counted() {
        let now = Instant::now();
        let mut map = ExpiringMap::new(2, Duration::MAX);
        assert_eq!(map.store_for("a", now, ms(5), |_| 1), 0);
        assert_eq!(map.store_for("b", now, ms(5), |_| 2), 0);
        assert_eq!(map.store_for("c", now, ms(5), |_| 3), 1);
        // Expired entries purged are not counted as evicted.
        assert_eq!(map.store_for("d", now + ms(5), ms(5), |_| 4), 0);
        assert_eq!(map.len(), 1);
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
