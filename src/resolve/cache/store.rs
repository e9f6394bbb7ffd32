//! The cache's table: each name's answers with their expiry, and the refresh in flight.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

use crate::connector::expiring::ExpiringMap;
use crate::connector::history::HostKey;
use crate::resolve::answers::{Answer, Family, copy_error};
use crate::resolve::cache::AnswerCache;
use crate::resolve::cache::refresh::{Progress, RefreshStart};
use crate::sync::{Prehashed, lock};

/// What a query (or a one-shot lookup) said, as kept.
#[derive(Debug)]
enum Said {
    Addresses(Vec<SocketAddr>),
    /// No records of the family (NODATA), or none at all for a one-shot answer.
    NoRecords,
    /// The name does not exist (NXDOMAIN): the resolver's `NotFound` error, copied.
    NoSuchName(io::Error),
}

/// One kept answer.
#[derive(Debug)]
struct Part {
    said: Said,
    stored: Instant,
    /// `None`: never (a TTL too long to add).
    expires: Option<Instant>,
}

impl Part {
    fn is_fresh(&self, now: Instant) -> bool {
        self.expires.is_none_or(|expires| now < expires)
    }

    /// How long from `now` it may still be raced, fresh or stale by at most `max_stale`.
    fn usable_for(&self, now: Instant, max_stale: Duration) -> Duration {
        let until = self
            .expires
            .and_then(|expires| expires.checked_add(max_stale));
        until.map_or(Duration::MAX, |until| until.saturating_duration_since(now))
    }

    fn answer(&self, family: Option<Family>) -> Answer {
        let addrs = match &self.said {
            Said::Addresses(addrs) => Ok(addrs.clone()),
            Said::NoRecords => Ok(Vec::new()),
            Said::NoSuchName(error) => Err(copy_error(error)),
        };
        match family {
            None => Answer::all(addrs),
            Some(Family::Ipv6) => Answer::ipv6(addrs),
            Some(Family::Ipv4) => Answer::ipv4(addrs),
        }
    }
}

/// A name's kept answers: a one-shot answer for every family, or the AAAA and the A answers.
#[derive(Debug, Default)]
struct Cached {
    all: Option<Part>,
    ipv6: Option<Part>,
    ipv4: Option<Part>,
    /// The refresh in flight, and its id.
    refreshing: Option<(u64, watch::Receiver<Progress>)>,
}

impl Cached {
    fn parts(&self) -> impl Iterator<Item = (Option<Family>, &Part)> {
        let all = self.all.as_ref().map(|part| (None, part));
        let ipv6 = self.ipv6.as_ref().map(|part| (Some(Family::Ipv6), part));
        let ipv4 = self.ipv4.as_ref().map(|part| (Some(Family::Ipv4), part));
        all.into_iter().chain(ipv6).chain(ipv4)
    }

    fn is_complete(&self) -> bool {
        self.all.is_some() || (self.ipv6.is_some() && self.ipv4.is_some())
    }

    /// Whether it answers every family within the TTLs: no need to ask the resolver.
    fn is_fresh(&self, now: Instant) -> bool {
        self.is_complete() && self.parts().all(|(_, part)| part.is_fresh(now))
    }

    /// How long from `now` the entry is worth keeping: until its last part is unusable.
    fn usable_for(&self, now: Instant, max_stale: Duration) -> Duration {
        let parts = self
            .parts()
            .map(|(_, part)| part.usable_for(now, max_stale));
        parts.max().unwrap_or(Duration::ZERO)
    }
}

/// The kept answers of a name, in the order a resolver would give them: the one-shot answer,
/// or the AAAA answer then the A answer.
#[derive(Debug, Default)]
pub(crate) struct Replay {
    answers: [Option<Answer>; 2],
}

impl IntoIterator for Replay {
    type Item = Answer;
    type IntoIter = std::iter::Flatten<std::array::IntoIter<Option<Answer>, 2>>;

    fn into_iter(self) -> Self::IntoIter {
        self.answers.into_iter().flatten()
    }
}

/// What the cache holds for a name.
#[derive(Debug)]
pub(crate) enum Found {
    /// Answers within their TTL, for every family: no need to ask the resolver.
    Fresh(Replay),
    /// Answers past their TTL (or some family's missing): to race at once while the resolver
    /// is asked again, whose answers `progress` hands over; `start` is the refresh to start,
    /// unless one is in flight already.
    Stale {
        replay: Replay,
        progress: watch::Receiver<Progress>,
        start: Option<RefreshStart>,
    },
    /// Nothing usable: ask the resolver.
    Miss,
}

/// A connector's answer cache, shared by its clones.
pub(crate) struct Cache {
    config: AnswerCache,
    names: Mutex<ExpiringMap<HostKey, Cached, Prehashed>>,
    next_refresh: AtomicU64,
}

impl fmt::Debug for Cache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut debug = f.debug_struct("Cache");
        debug.field("config", &self.config);
        if let Ok(names) = self.names.try_lock() {
            debug.field("names", &names.len());
        }
        debug.finish_non_exhaustive()
    }
}

impl Cache {
    pub(crate) fn new(config: AnswerCache) -> Self {
        Self {
            names: Mutex::new(ExpiringMap::with_hasher(
                config.capacity,
                Duration::MAX,
                Prehashed,
            )),
            config,
            next_refresh: AtomicU64::new(0),
        }
    }

    pub(crate) fn config(&self) -> &AnswerCache {
        &self.config
    }

    /// What the cache holds for `key` at `now`. A stale answer counts only if a refresh may
    /// be started (`may_refresh()`); the first connect to find one is handed the refresh to
    /// start, the others its progress.
    pub(crate) fn lookup(
        &self,
        key: &HostKey,
        now: Instant,
        may_refresh: impl FnOnce() -> bool,
    ) -> Found {
        let max_stale = self.config.max_stale;
        let mut names = lock(&self.names);
        let Some((cached, _)) = names.get_mut(key, now) else {
            return Found::Miss;
        };
        let mut replay = Replay::default();
        let fresh = cached.is_fresh(now);
        let usable = cached
            .parts()
            .filter(|(_, part)| !part.usable_for(now, max_stale).is_zero());
        for (slot, (family, part)) in replay.answers.iter_mut().zip(usable) {
            *slot = Some(part.answer(family));
        }
        if replay.answers[0].is_none() {
            return Found::Miss;
        }
        if fresh {
            let stored = cached.parts().map(|(_, part)| part.stored).min();
            let expires = cached.parts().filter_map(|(_, part)| part.expires).min();
            tracing::debug!(
                age = ?stored.map(|stored| now - stored),
                ttl_left = ?expires.map(|expires| expires - now),
                "answer cache hit"
            );
            return Found::Fresh(replay);
        }
        if !may_refresh() {
            return Found::Miss;
        }
        let expired = cached.parts().filter_map(|(_, part)| part.expires).min();
        tracing::debug!(
            expired_for = ?expired.map(|expired| now.saturating_duration_since(expired)),
            complete = cached.is_complete(),
            "stale answer used"
        );
        if let Some((_, progress)) = &cached.refreshing {
            let progress = progress.clone();
            return Found::Stale {
                replay,
                progress,
                start: None,
            };
        }
        let id = self.next_refresh.fetch_add(1, Ordering::Relaxed);
        let (sender, progress) = watch::channel(Progress::default());
        cached.refreshing = Some((id, progress.clone()));
        Found::Stale {
            replay,
            progress,
            start: Some(RefreshStart { id, sender }),
        }
    }

    /// The one address of `key`'s fresh answers that `admits` allows, if there is exactly one:
    /// a connect to it needs no ordering and no race. Allocates nothing.
    pub(crate) fn only_fresh_addr(
        &self,
        key: &HostKey,
        now: Instant,
        admits: impl Fn(&SocketAddr) -> bool,
    ) -> Option<SocketAddr> {
        let mut names = lock(&self.names);
        let (cached, _) = names.get_mut(key, now)?;
        if !cached.is_fresh(now) {
            return None;
        }
        let mut only = None;
        for (_, part) in cached.parts() {
            let Said::Addresses(addrs) = &part.said else {
                continue;
            };
            for addr in addrs.iter().filter(|addr| admits(addr)) {
                match only {
                    Some(one) if one != *addr => return None,
                    _ => only = Some(*addr),
                }
            }
        }
        only
    }

    /// Keeps what `answer` says of `key` at `now`: addresses for their TTL (clamped to the
    /// range; the default TTL without one), a negative answer for the negative TTL. An error
    /// other than a name that does not exist keeps nothing and leaves what was kept.
    pub(crate) fn record(&self, key: &HostKey, answer: &Answer, now: Instant) {
        // Service lookups are not kept: only the target's own answers are.
        if answer.service.is_some() {
            return;
        }
        let said = match &answer.addrs {
            Ok(addrs) if addrs.is_empty() => Said::NoRecords,
            Ok(addrs) => Said::Addresses(addrs.clone()),
            Err(error) if error.kind() == io::ErrorKind::NotFound => {
                Said::NoSuchName(copy_error(error))
            }
            Err(_) => return,
        };
        let ttl = match said {
            Said::Addresses(_) => self.config.positive_ttl(answer.ttl),
            Said::NoRecords | Said::NoSuchName(_) => self.config.negative_ttl,
        };
        let negative_off = ttl.is_zero() && !matches!(said, Said::Addresses(_));
        let part = (!negative_off).then(|| Part {
            said,
            stored: now,
            expires: now.checked_add(ttl),
        });
        let mut names = lock(&self.names);
        let mut cached = match names.get_mut(key, now) {
            Some((cached, _)) => std::mem::take(cached),
            None => Cached::default(),
        };
        match answer.family {
            None => {
                cached.all = part;
                cached.ipv6 = None;
                cached.ipv4 = None;
            }
            Some(family) => {
                cached.all = None;
                match family {
                    Family::Ipv6 => cached.ipv6 = part,
                    Family::Ipv4 => cached.ipv4 = part,
                }
            }
        }
        let keep_for = cached.usable_for(now, self.config.max_stale);
        if keep_for.is_zero() {
            names.remove_if(key, |_| true);
            return;
        }
        let evicted = names.store_for(key.clone(), now, keep_for, |_| cached);
        if evicted > 0 {
            tracing::debug!(
                evicted,
                "answer cache full: least recently stored names evicted"
            );
        }
    }

    /// Makes `key`'s fresh answers stale at `now`: every address they gave failed, so the
    /// next connect races them while it asks the resolver again (with `max_stale` 0, it just
    /// asks).
    pub(crate) fn expire(&self, key: &HostKey, now: Instant) {
        let mut names = lock(&self.names);
        let Some((cached, _)) = names.get_mut(key, now) else {
            return;
        };
        for part in [&mut cached.all, &mut cached.ipv6, &mut cached.ipv4]
            .into_iter()
            .flatten()
        {
            if part.is_fresh(now) {
                part.expires = Some(now);
            }
        }
        tracing::debug!("every cached address failed: the answer is stale now");
    }

    /// The refresh `id` of `key` has ended: another may start.
    pub(crate) fn refreshed(&self, key: &HostKey, id: u64, now: Instant) {
        let mut names = lock(&self.names);
        if let Some((cached, _)) = names.get_mut(key, now)
            && cached
                .refreshing
                .as_ref()
                .is_some_and(|(own, _)| *own == id)
        {
            cached.refreshing = None;
        }
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        lock(&self.names).len()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn key(name: &str) -> HostKey {
        HostKey::new(&Arc::from(name), 443)
    }

    fn addr(last: u8) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, last], 443))
    }

    fn cache() -> Cache {
        Cache::new(AnswerCache::new().default_ttl(ms(1000)).max_stale(ms(500)))
    }

    /// The addresses a replay holds, one list per answer.
    fn lists(replay: Replay) -> Vec<Vec<SocketAddr>> {
        replay
            .into_iter()
            .map(|answer| answer.addrs.unwrap())
            .collect()
    }

    fn fresh(found: Found) -> Vec<Vec<SocketAddr>> {
        match found {
            Found::Fresh(replay) => lists(replay),
            other => panic!("not fresh: {other:?}"),
        }
    }

    #[test]
    fn fresh_then_stale_with_one_refresh_then_gone() {
        let cache = cache();
        let began = Instant::now();
        let always = || true;
        cache.record(&key("a.test"), &Answer::all(Ok(vec![addr(1)])), began);
        let found = cache.lookup(&key("A.test."), began + ms(999), always);
        assert_eq!(
            fresh(found),
            [vec![addr(1)]],
            "case and trailing dot ignored"
        );
        let Found::Stale { replay, start, .. } =
            cache.lookup(&key("a.test"), began + ms(1000), always)
        else {
            panic!("stale at the TTL");
        };
        assert_eq!(lists(replay), [vec![addr(1)]]);
        let start = start.expect("the first to find it stale starts the refresh");
        let again = cache.lookup(&key("a.test"), began + ms(1001), always);
        assert!(
            matches!(again, Found::Stale { start: None, .. }),
            "{again:?}"
        );
        cache.refreshed(&key("a.test"), start.id, began + ms(1002));
        let after = cache.lookup(&key("a.test"), began + ms(1003), always);
        assert!(
            matches!(after, Found::Stale { start: Some(_), .. }),
            "{after:?}"
        );
        let gone = cache.lookup(&key("a.test"), began + ms(1500), always);
        assert!(matches!(gone, Found::Miss), "past max_stale: {gone:?}");
        assert_eq!(cache.len(), 0);
    }

    #[test]
    fn a_stale_answer_is_a_miss_where_no_refresh_can_start() {
        let cache = cache();
        let began = Instant::now();
        cache.record(&key("a.test"), &Answer::all(Ok(vec![addr(1)])), began);
        let found = cache.lookup(&key("a.test"), began + ms(1000), || false);
        assert!(matches!(found, Found::Miss), "{found:?}");
    }

    #[test]
    fn answers_in_parts_are_fresh_once_both_families_are_kept() {
        let cache = cache();
        let now = Instant::now();
        let v6 = SocketAddr::from(([0, 0, 0, 0, 0, 0, 0, 1], 443));
        cache.record(&key("a.test"), &Answer::ipv4(Ok(vec![addr(1)])), now);
        let partial = cache.lookup(&key("a.test"), now, || true);
        assert!(
            matches!(partial, Found::Stale { .. }),
            "AAAA missing: {partial:?}"
        );
        cache.record(&key("a.test"), &Answer::ipv6(Ok(vec![v6])), now);
        let found = cache.lookup(&key("a.test"), now, || true);
        assert_eq!(fresh(found), [vec![v6], vec![addr(1)]], "AAAA first");
    }

    #[test]
    fn a_records_ttl_is_kept_within_the_range() {
        let cache = Cache::new(AnswerCache::new().ttl_range(ms(100), ms(5000)));
        let now = Instant::now();
        let long = Answer::all(Ok(vec![addr(1)])).with_ttl(Duration::MAX);
        let short = Answer::all(Ok(vec![addr(2)])).with_ttl(Duration::ZERO);
        cache.record(&key("long.test"), &long, now);
        cache.record(&key("short.test"), &short, now);
        let is_fresh =
            |name, at| matches!(cache.lookup(&key(name), now + at, || true), Found::Fresh(_));
        assert!(is_fresh("long.test", ms(4999)));
        assert!(!is_fresh("long.test", ms(5000)));
        assert!(is_fresh("short.test", ms(99)));
        assert!(!is_fresh("short.test", ms(100)));
    }

    #[test]
    fn negative_answers_are_kept_briefly_errors_never() {
        let cache = cache();
        let now = Instant::now();
        let nx = io::Error::new(io::ErrorKind::NotFound, "no such name");
        cache.record(&key("nx.test"), &Answer::all(Err(nx)), now);
        let Found::Fresh(replay) = cache.lookup(&key("nx.test"), now + ms(4999), || true) else {
            panic!("a name that does not exist is kept for the negative TTL");
        };
        let error = replay.into_iter().next().unwrap().addrs.unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::NotFound);
        assert_eq!(error.to_string(), "no such name");
        let expired = cache.lookup(&key("nx.test"), now + ms(5000), || true);
        assert!(matches!(expired, Found::Stale { .. }), "{expired:?}");

        cache.record(&key("ok.test"), &Answer::all(Ok(vec![addr(1)])), now);
        let timeout = io::Error::new(io::ErrorKind::TimedOut, "no answer");
        cache.record(&key("ok.test"), &Answer::all(Err(timeout)), now + ms(1));
        let kept = cache.lookup(&key("ok.test"), now + ms(2), || true);
        assert_eq!(
            fresh(kept),
            [vec![addr(1)]],
            "a failure leaves what was kept"
        );
        let servfail = io::Error::new(io::ErrorKind::TimedOut, "SERVFAIL");
        cache.record(&key("fail.test"), &Answer::all(Err(servfail)), now);
        assert!(matches!(
            cache.lookup(&key("fail.test"), now, || true),
            Found::Miss
        ));

        let off = Cache::new(AnswerCache::new().negative_ttl(Duration::ZERO));
        off.record(&key("ok.test"), &Answer::all(Ok(vec![addr(1)])), now);
        off.record(&key("ok.test"), &Answer::all(Ok(Vec::new())), now);
        assert!(
            matches!(off.lookup(&key("ok.test"), now, || true), Found::Miss),
            "no records now"
        );
        assert_eq!(off.len(), 0);
    }

    #[test]
    fn the_only_fresh_address_is_found_without_a_replay() {
        let cache = cache();
        let now = Instant::now();
        let v6 = SocketAddr::from(([0, 0, 0, 0, 0, 0, 0, 1], 443));
        let only = |name, at, admits: &dyn Fn(&SocketAddr) -> bool| {
            cache.only_fresh_addr(&key(name), now + at, admits)
        };
        cache.record(
            &key("one.test"),
            &Answer::all(Ok(vec![addr(1), addr(1)])),
            now,
        );
        assert_eq!(
            only("one.test", ms(0), &|_| true),
            Some(addr(1)),
            "a repeat is one"
        );
        assert_eq!(only("one.test", ms(1000), &|_| true), None, "stale");
        cache.record(&key("two.test"), &Answer::ipv6(Ok(vec![v6])), now);
        assert_eq!(
            only("two.test", ms(0), &|_| true),
            None,
            "the A answer is missing"
        );
        cache.record(&key("two.test"), &Answer::ipv4(Ok(vec![addr(2)])), now);
        assert_eq!(only("two.test", ms(0), &|_| true), None, "two addresses");
        assert_eq!(only("two.test", ms(0), &SocketAddr::is_ipv4), Some(addr(2)));
        assert_eq!(only("two.test", ms(0), &|_| false), None);
        assert_eq!(only("none.test", ms(0), &|_| true), None);
    }

    #[test]
    fn a_full_cache_evicts_the_name_stored_least_recently() {
        let cache = Cache::new(AnswerCache::new().capacity(2));
        let now = Instant::now();
        for (name, last) in [("a.test", 1), ("b.test", 2), ("a.test", 3), ("c.test", 4)] {
            cache.record(&key(name), &Answer::all(Ok(vec![addr(last)])), now);
        }
        assert_eq!(cache.len(), 2);
        assert!(matches!(
            cache.lookup(&key("b.test"), now, || true),
            Found::Miss
        ));
        assert_eq!(
            fresh(cache.lookup(&key("a.test"), now, || true)),
            [vec![addr(3)]]
        );
    }

    #[test]
    fn durations_without_a_limit_keep_answers_forever() {
        let forever = AnswerCache::new()
            .default_ttl(Duration::MAX)
            .ttl_range(Duration::ZERO, Duration::MAX)
            .negative_ttl(Duration::MAX)
            .max_stale(Duration::MAX);
        let cache = Cache::new(forever);
        let now = Instant::now();
        cache.record(&key("a.test"), &Answer::all(Ok(vec![addr(1)])), now);
        cache.record(&key("b.test"), &Answer::ipv6(Ok(Vec::new())), now);
        let later = now + Duration::from_secs(86_400 * 365 * 30);
        assert_eq!(
            fresh(cache.lookup(&key("a.test"), later, || true)),
            [vec![addr(1)]]
        );
        let stale = Cache::new(
            AnswerCache::new()
                .default_ttl(ms(1))
                .max_stale(Duration::MAX),
        );
        stale.record(&key("a.test"), &Answer::all(Ok(vec![addr(1)])), now);
        let found = stale.lookup(&key("a.test"), later, || true);
        assert!(matches!(found, Found::Stale { .. }), "{found:?}");
    }
}
