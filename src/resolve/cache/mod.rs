//! The answer cache: what the resolver said of each name, kept for its time to live, raced
//! at once when it has expired while the resolver is asked again, and served through a DNS
//! outage.

mod refresh;
mod store;

use std::time::Duration;

pub(crate) use refresh::{Refresh, refresh, subscribe};
pub(crate) use store::{Cache, Found};

/// How many names the cache holds by default.
const DEFAULT_CAPACITY: usize = 1024;
/// How long an answer without a TTL (the system resolver's) is kept by default: Java's
/// default (Chromium keeps such answers for 60 s).
const DEFAULT_TTL: Duration = Duration::from_secs(30);
/// The longest a record's TTL is trusted by default: a day, as hickory caps it.
const DEFAULT_MAX_TTL: Duration = Duration::from_secs(86_400);
/// How long a negative answer is kept by default.
const DEFAULT_NEGATIVE_TTL: Duration = Duration::from_secs(5);
/// How long after its expiry an answer may still be raced while it is refreshed, by default.
const DEFAULT_MAX_STALE: Duration = Duration::from_secs(600);

/// The settings of a connector's answer cache; see
/// [`Connector::answer_cache`](crate::Connector::answer_cache) for what the cache does.
///
/// Every duration accepts zero and `Duration::MAX` (no limit).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use connect_any::{AnswerCache, Connector};
///
/// let cache = AnswerCache::new()
///     .capacity(10_000)
///     .default_ttl(Duration::from_secs(60))
///     .max_stale(Duration::from_secs(3600));
/// let connector = Connector::new().answer_cache(cache);
/// let uncached = Connector::new().answer_cache(None);
/// # drop((connector, uncached));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[must_use = "an AnswerCache's setters return the changed settings; pass them to Connector::answer_cache"]
pub struct AnswerCache {
    pub(crate) capacity: usize,
    pub(crate) default_ttl: Duration,
    pub(crate) min_ttl: Duration,
    pub(crate) max_ttl: Duration,
    pub(crate) negative_ttl: Duration,
    pub(crate) max_stale: Duration,
}

impl Default for AnswerCache {
    fn default() -> Self {
        Self {
            capacity: DEFAULT_CAPACITY,
            default_ttl: DEFAULT_TTL,
            min_ttl: Duration::ZERO,
            max_ttl: DEFAULT_MAX_TTL,
            negative_ttl: DEFAULT_NEGATIVE_TTL,
            max_stale: DEFAULT_MAX_STALE,
        }
    }
}

impl AnswerCache {
    /// The default settings, as each setter below gives them.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many host names (with their ports) the cache holds; when it is full, the name
    /// stored least recently is evicted. 0 keeps nothing. Default is 1,024.
    pub fn capacity(self, capacity: usize) -> Self {
        Self { capacity, ..self }
    }

    /// How long an answer that carries no TTL is fresh: the system resolver's (`getaddrinfo`
    /// tells none) and a custom resolver's unless it sets one with
    /// [`Answer::with_ttl`](crate::Answer::with_ttl). The TTL range applies to it too.
    /// Default is 30 s.
    pub fn default_ttl(self, ttl: Duration) -> Self {
        Self {
            default_ttl: ttl,
            ..self
        }
    }

    /// The range every positive answer's TTL is clamped to. A `min` above `max` counts as
    /// `max`. Default is 0 to one day.
    pub fn ttl_range(self, min: Duration, max: Duration) -> Self {
        Self {
            min_ttl: min.min(max),
            max_ttl: max,
            ..self
        }
    }

    /// How long a negative answer (a name that does not exist, or has no records of a
    /// family) is kept; 0 keeps none. Resolver errors (timeouts, `SERVFAIL`) are never kept.
    /// Default is 5 s.
    pub fn negative_ttl(self, ttl: Duration) -> Self {
        Self {
            negative_ttl: ttl,
            ..self
        }
    }

    /// How long after it expired an answer may still be raced while the resolver is asked
    /// again, and served while the resolver fails; 0 never races an expired answer. Default
    /// is 10 minutes.
    pub fn max_stale(self, max_stale: Duration) -> Self {
        Self { max_stale, ..self }
    }

    /// `ttl` clamped to the TTL range; the default TTL for `None`.
    pub(crate) fn positive_ttl(&self, ttl: Option<Duration>) -> Duration {
        ttl.unwrap_or(self.default_ttl)
            .clamp(self.min_ttl, self.max_ttl)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ttl_is_clamped_to_the_range_and_defaults_without_one() {
        let cache = AnswerCache::new().ttl_range(Duration::from_secs(5), Duration::from_secs(60));
        assert_eq!(cache.positive_ttl(None), Duration::from_secs(30));
        assert_eq!(
            cache.positive_ttl(Some(Duration::ZERO)),
            Duration::from_secs(5)
        );
        assert_eq!(
            cache.positive_ttl(Some(Duration::MAX)),
            Duration::from_secs(60)
        );
        let inverted = AnswerCache::new().ttl_range(Duration::MAX, Duration::from_secs(1));
        assert_eq!(inverted.positive_ttl(None), Duration::from_secs(1));
        let unbounded = AnswerCache::new().ttl_range(Duration::ZERO, Duration::MAX);
        assert_eq!(unbounded.positive_ttl(Some(Duration::MAX)), Duration::MAX);
    }
}
