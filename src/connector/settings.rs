//! A connector's settings, in one place that every stage reads, with their defaults.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::connector::history::{ConnectTimes, WinnerMemory};
use crate::connector::socket::SocketOptions;
use crate::order::admission::IpFamilies;
use crate::order::policy::AddressPolicy;
use crate::race::core::Stagger;
use crate::report::event::Hook;
use crate::resolve::SharedResolver;
use crate::resolve::cache::{AnswerCache, Cache};
use crate::resolve::nat64::{Nat64, Nat64State};
use crate::resolve::overrides::Overrides;
use crate::resolve::system::SystemResolver;

/// RFC 8305 §5's recommended Connection Attempt Delay.
pub(crate) const DEFAULT_ATTEMPT_DELAY: Duration = Duration::from_millis(250);
/// RFC 8305 §3's recommended Resolution Delay.
pub(crate) const DEFAULT_RESOLUTION_DELAY: Duration = Duration::from_millis(50);
/// RFC 8305 §8: the Connection Attempt Delay MUST NOT be below 10 ms.
pub(crate) const MIN_ATTEMPT_DELAY: Duration = Duration::from_millis(10);
/// How many hosts the winner memory holds by default.
pub(crate) const DEFAULT_MEMORY_CAPACITY: usize = 1024;
/// How long a remembered winner is trusted by default.
pub(crate) const DEFAULT_MEMORY_TTL: Duration = Duration::from_secs(600);

/// How the addresses of a target are tried.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Strategy {
    /// One attempt at a time, in the resolver's order except that a remembered winner (see
    /// [`Connector::winner_memory`](crate::Connector::winner_memory)) goes first; the next starts when the previous one fails or
    /// exceeds the attempt timeout.
    Sequential,
    /// RFC 8305 Happy Eyeballs: families interleaved, a new attempt every attempt delay or as
    /// soon as one fails, earlier attempts left running, the first to connect wins. Of
    /// attempts that connect at the same instant, the earliest started wins; a connect at the
    /// instant of a failure, a stagger tick or the deadline wins over them.
    #[default]
    HappyEyeballs,
}

#[derive(Clone, Debug)]
pub(crate) struct Settings {
    pub(crate) strategy: Strategy,
    pub(crate) attempt_delay: Duration,
    pub(crate) attempt_timeout: Option<Duration>,
    pub(crate) timeout: Option<Duration>,
    pub(crate) resolve_timeout: Option<Duration>,
    pub(crate) resolution_delay: Duration,
    pub(crate) first_family_count: usize,
    pub(crate) families: IpFamilies,
    pub(crate) resolver: SharedResolver,
    pub(crate) socket: SocketOptions,
    pub(crate) cancel: Option<CancellationToken>,
    pub(crate) memory: Arc<WinnerMemory>,
    pub(crate) adaptive_delay: bool,
    pub(crate) connect_times: Arc<ConnectTimes>,
    pub(crate) overrides: Overrides,
    pub(crate) policy: AddressPolicy,
    pub(crate) hook: Option<Hook>,
    pub(crate) nat64: Nat64,
    pub(crate) nat64_state: Arc<Nat64State>,
    /// `None`: answers are not cached.
    pub(crate) cache: Option<Arc<Cache>>,
}

impl Settings {
    /// How long after each start the next attempt starts, for one connect.
    pub(crate) fn stagger(&self) -> Stagger<'_> {
        match (self.strategy, self.adaptive_delay) {
            (Strategy::Sequential, _) => Stagger::Never,
            (Strategy::HappyEyeballs, false) => Stagger::Fixed(self.attempt_delay),
            (Strategy::HappyEyeballs, true) => Stagger::Adaptive(
                self.connect_times
                    .pace(MIN_ATTEMPT_DELAY, self.attempt_delay),
            ),
        }
    }
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            strategy: Strategy::default(),
            attempt_delay: DEFAULT_ATTEMPT_DELAY,
            attempt_timeout: None,
            timeout: None,
            resolve_timeout: None,
            resolution_delay: DEFAULT_RESOLUTION_DELAY,
            first_family_count: 1,
            families: IpFamilies::Both,
            resolver: SharedResolver::new(SystemResolver),
            socket: SocketOptions::default(),
            cancel: None,
            memory: Arc::new(WinnerMemory::new(
                DEFAULT_MEMORY_CAPACITY,
                DEFAULT_MEMORY_TTL,
            )),
            adaptive_delay: false,
            connect_times: Arc::default(),
            overrides: Overrides::default(),
            policy: AddressPolicy::allow_all(),
            hook: None,
            nat64: Nat64::default(),
            nat64_state: Arc::default(),
            cache: Some(Arc::new(Cache::new(AnswerCache::default()))),
        }
    }
}
