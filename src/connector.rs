//! The reusable [`Connector`]: settings, and the connect pipeline from target to winner.

use std::borrow::Cow;
use std::future::{Future, pending};
use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tokio::net::TcpStream;
use tokio::time::{Instant, sleep_until};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::error::{Attempts, ConnectError, Stage};
use crate::history::{ConnectTimes, HostKey, WinnerMemory};
use crate::policy::AddressPolicy;
use crate::race::{Log, Pace, Won, race};
use crate::resolve::{
    IpFamilies, Overrides, Resolve, SystemResolver, dedup_and_filter, interleave, promote,
};
use crate::socket::SocketOptions;
use crate::target::{IntoTarget, Target};

/// RFC 8305 §5's recommended Connection Attempt Delay.
const DEFAULT_ATTEMPT_DELAY: Duration = Duration::from_millis(250);
/// RFC 8305 §8: the Connection Attempt Delay MUST NOT be below 10 ms.
const MIN_ATTEMPT_DELAY: Duration = Duration::from_millis(10);
/// How many hosts the winner memory holds by default.
const DEFAULT_MEMORY_CAPACITY: usize = 1024;
/// How long a remembered winner is trusted by default.
const DEFAULT_MEMORY_TTL: Duration = Duration::from_secs(600);

/// How the addresses of a target are tried.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Strategy {
    /// One attempt at a time, in the resolver's order; the next starts when the previous one
    /// fails or exceeds the attempt timeout.
    Sequential,
    /// RFC 8305 Happy Eyeballs: families interleaved, a new attempt every attempt delay or as
    /// soon as one fails, earlier attempts left running, the first to connect wins.
    #[default]
    HappyEyeballs,
}

/// A reusable, cheap-to-clone connector: settings plus the connect methods.
///
/// Cloning shares the settings (one `Arc`); setters on a clone copy them first, so a clone can
/// be changed without affecting the original.
///
/// # Examples
///
/// ```no_run
/// use std::time::Duration;
/// use connect_any::{Connector, Strategy};
///
/// # async fn run() -> Result<(), connect_any::ConnectError> {
/// let connector = Connector::new()
///     .strategy(Strategy::HappyEyeballs)
///     .attempt_delay(Duration::from_millis(100))
///     .timeout(Some(Duration::from_secs(10)))
///     .nodelay(true);
/// let stream = connector.connect("localhost:8080").await?;
/// # drop(stream);
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug, Default)]
pub struct Connector {
    settings: Arc<Settings>,
}

#[derive(Clone, Debug)]
struct Settings {
    strategy: Strategy,
    attempt_delay: Duration,
    attempt_timeout: Option<Duration>,
    timeout: Option<Duration>,
    resolve_timeout: Option<Duration>,
    first_family_count: usize,
    families: IpFamilies,
    resolver: Arc<dyn Resolve>,
    socket: SocketOptions,
    cancel: Option<CancellationToken>,
    memory: Arc<WinnerMemory>,
    adaptive_delay: bool,
    connect_times: Arc<ConnectTimes>,
    overrides: Overrides,
    policy: AddressPolicy,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            strategy: Strategy::default(),
            attempt_delay: DEFAULT_ATTEMPT_DELAY,
            attempt_timeout: None,
            timeout: None,
            resolve_timeout: None,
            first_family_count: 1,
            families: IpFamilies::Both,
            resolver: Arc::new(SystemResolver),
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
        }
    }
}

/// The connector behind [`connect_any`](crate::connect_any).
pub(crate) fn default_connector() -> &'static Connector {
    static DEFAULT: OnceLock<Connector> = OnceLock::new();
    DEFAULT.get_or_init(Connector::new)
}

impl Connector {
    /// A connector with the default settings: Happy Eyeballs, 250 ms attempt delay, no
    /// timeouts, both families, the operating system's socket defaults.
    pub fn new() -> Self {
        Self::default()
    }

    fn with(mut self, change: impl FnOnce(&mut Settings)) -> Self {
        change(Arc::make_mut(&mut self.settings));
        self
    }

    /// How the addresses are tried. Default is [`Strategy::HappyEyeballs`].
    pub fn strategy(self, strategy: Strategy) -> Self {
        self.with(|s| s.strategy = strategy)
    }

    /// The Happy Eyeballs Connection Attempt Delay: how long after starting an attempt the next
    /// one starts if none has connected or failed. Values below 10 ms are raised to 10 ms
    /// (RFC 8305 §8). Ignored by [`Strategy::Sequential`]. Default is 250 ms.
    pub fn attempt_delay(self, delay: Duration) -> Self {
        self.with(|s| s.attempt_delay = delay.max(MIN_ATTEMPT_DELAY))
    }

    /// The longest one attempt may run before it is abandoned as failed, which starts the next
    /// one. Default is `None`: an attempt runs until it connects, fails, loses, or the overall
    /// timeout ends the connect; it is never aborted because a later attempt started.
    pub fn attempt_timeout(self, timeout: Option<Duration>) -> Self {
        self.with(|s| s.attempt_timeout = timeout)
    }

    /// The longest a whole connect may take, resolution included. Default is `None`.
    pub fn timeout(self, timeout: Option<Duration>) -> Self {
        self.with(|s| s.timeout = timeout)
    }

    /// The longest resolution may take; the overall [`timeout`](Self::timeout) bounds it too.
    /// Default is `None`.
    pub fn resolve_timeout(self, timeout: Option<Duration>) -> Self {
        self.with(|s| s.resolve_timeout = timeout)
    }

    /// How many addresses of the first family come before Happy Eyeballs alternates families
    /// (RFC 8305 §4's First Address Family Count); 0 counts as 1. Default is 1.
    pub fn first_family_count(self, count: usize) -> Self {
        self.with(|s| s.first_family_count = count.max(1))
    }

    /// Which address families to dial. Default is [`IpFamilies::Both`].
    pub fn ip_families(self, families: IpFamilies) -> Self {
        self.with(|s| s.families = families)
    }

    /// The resolver for host names; IP literals and address lists never reach it. Default is
    /// [`SystemResolver`] (`getaddrinfo`).
    pub fn resolver(self, resolver: impl Resolve) -> Self {
        self.with(|s| s.resolver = Arc::new(resolver))
    }

    /// Answers `host` with `addrs` instead of asking the resolver, like curl's `--resolve`:
    /// that name never reaches DNS, and its addresses are raced in the given order (no
    /// interleaving, no winner memory). `port` limits the override to one port; `None` applies
    /// it to any port. An address given with port 0 takes the target's port. Host names match
    /// without regard to case or a trailing dot. Default is no overrides.
    ///
    /// ```
    /// use std::net::SocketAddr;
    /// use connect_any::Connector;
    ///
    /// let canary: SocketAddr = "127.0.0.1:0".parse().unwrap();
    /// let connector = Connector::new().resolve_override("api.example.com", None, [canary]);
    /// # drop(connector);
    /// ```
    pub fn resolve_override(
        self,
        host: &str,
        port: Option<u16>,
        addrs: impl IntoIterator<Item = SocketAddr>,
    ) -> Self {
        let addrs: Arc<[SocketAddr]> = addrs.into_iter().collect();
        self.with(|s| s.overrides.set(host, port, addrs))
    }

    /// Which resolved addresses may be dialed at all; see [`AddressPolicy`]. It also applies to
    /// IP literals, address lists and overrides. Default is [`AddressPolicy::allow_all`].
    pub fn address_policy(self, policy: AddressPolicy) -> Self {
        self.with(|s| s.policy = policy)
    }

    /// Sets `TCP_NODELAY` (`setsockopt(IPPROTO_TCP, TCP_NODELAY)`) on each socket before it
    /// connects. Default is `false`, the operating system's default.
    pub fn nodelay(self, nodelay: bool) -> Self {
        self.with(|s| s.socket.nodelay = nodelay)
    }

    /// Sets `SO_KEEPALIVE` (`setsockopt(SOL_SOCKET, SO_KEEPALIVE)`), with the system's probe
    /// timings. Default is `false`.
    pub fn keepalive(self, keepalive: bool) -> Self {
        self.with(|s| s.socket.keepalive = keepalive)
    }

    /// Sets `SO_SNDBUF` (`setsockopt(SOL_SOCKET, SO_SNDBUF)`). Default is `None`: the system's.
    pub fn send_buffer_size(self, size: Option<u32>) -> Self {
        self.with(|s| s.socket.send_buffer_size = size)
    }

    /// Sets `SO_RCVBUF` (`setsockopt(SOL_SOCKET, SO_RCVBUF)`), before `connect` so that the
    /// TCP window scale is negotiated for it. Default is `None`: the system's.
    pub fn recv_buffer_size(self, size: Option<u32>) -> Self {
        self.with(|s| s.socket.recv_buffer_size = size)
    }

    /// The local address IPv4 attempts `bind(2)` to, with port 0. Default is `None`: the
    /// system picks.
    pub fn local_address_v4(self, addr: Option<Ipv4Addr>) -> Self {
        self.with(|s| s.socket.local_v4 = addr)
    }

    /// The local address IPv6 attempts `bind(2)` to, with port 0. Default is `None`: the
    /// system picks.
    pub fn local_address_v6(self, addr: Option<Ipv6Addr>) -> Self {
        self.with(|s| s.socket.local_v6 = addr)
    }

    /// Binds each socket to a network interface by name (`setsockopt(SOL_SOCKET,
    /// SO_BINDTODEVICE)`); usually needs `CAP_NET_RAW`. Default is `None`.
    #[cfg(any(target_os = "android", target_os = "fuchsia", target_os = "linux"))]
    pub fn bind_device(self, interface: Option<&str>) -> Self {
        self.with(|s| s.socket.device = interface.map(|name| name.as_bytes().to_vec()))
    }

    /// A token that cancels every connect made through this connector (and its clones made
    /// afterwards): a connect in progress then returns [`ConnectError::Cancelled`], and one
    /// started after cancellation returns it at once. Default is `None`.
    pub fn cancellation_token(self, token: Option<CancellationToken>) -> Self {
        self.with(|s| s.cancel = token)
    }

    /// How many hosts the winner memory holds, and for how long it trusts an entry. Default is
    /// 1,024 hosts for 10 minutes; a capacity of 0 turns the memory off.
    ///
    /// For each host name and port, the connector remembers the address that last won and
    /// tries it first next time, so a service that dials one upstream over and over pays the
    /// Happy Eyeballs delay once rather than on every connect. Memory only reorders: an address
    /// is tried only if the resolver returned it this time. A remembered address that fails is
    /// forgotten at once, and the next attempt starts without waiting. Clones share one memory;
    /// this setter gives the connector a new, empty one.
    pub fn winner_memory(self, capacity: usize, ttl: Duration) -> Self {
        self.with(|s| s.memory = Arc::new(WinnerMemory::new(capacity, ttl)))
    }

    /// Derives the attempt delay from the connect times this connector has observed recently,
    /// instead of always waiting [`attempt_delay`](Self::attempt_delay). Default is `false`.
    ///
    /// The delay is twice the 90th percentile of the last 32 connect times, never below 10 ms
    /// and never above `attempt_delay`; with fewer than 8 observations it is `attempt_delay`.
    /// A connect takes about one round trip, so an attempt not answered within twice the slow
    /// end of recent connects has most likely lost its SYN (RFC 8305 §5 allows such a
    /// "more nuanced" delay from historical RTT data). In a data centre, where connects take a
    /// millisecond, a black-holed first address then costs 10 ms instead of 250.
    pub fn adaptive_delay(self, adaptive: bool) -> Self {
        self.with(|s| s.adaptive_delay = adaptive)
    }

    /// Connects to `target` over TCP and returns the first stream to connect.
    ///
    /// # Errors
    ///
    /// A [`ConnectError`] when the target is invalid, resolution fails or finds nothing, every
    /// attempt fails, a timeout runs out, or the cancellation token fires.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future cancels every attempt and closes every socket it opened; nothing it
    /// started keeps running.
    pub async fn connect(&self, target: impl IntoTarget) -> Result<TcpStream, ConnectError> {
        let options = &self.settings.socket;
        self.connect_with(target, |addr| options.connect(addr))
            .await
    }

    /// Races `dial` over the target's addresses, like [`connect`](Self::connect), and returns
    /// the winner's stream: for a TLS stream, a test double, or anything else built per address.
    ///
    /// `dial` is called once per attempt. The socket options of this connector are not
    /// applied: they belong to `connect`'s own dialer.
    ///
    /// # Errors
    ///
    /// As for [`connect`](Self::connect); a failed attempt's error is whatever `dial` returned.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future drops every running `dial` future; the streams of losers that had
    /// connected are dropped before this returns.
    pub async fn connect_with<T, D, Fut, S>(
        &self,
        target: T,
        mut dial: D,
    ) -> Result<S, ConnectError>
    where
        T: IntoTarget,
        D: FnMut(SocketAddr) -> Fut,
        Fut: Future<Output = io::Result<S>>,
    {
        let target = target.into_target()?;
        let strategy = self.settings.strategy;
        let span = tracing::debug_span!("connect", host = %target, ?strategy);
        let won = self.run(&target, &mut dial).instrument(span).await?;
        Ok(won.stream)
    }

    async fn run<S, D, Fut>(&self, target: &Target, dial: &mut D) -> Result<Won<S>, ConnectError>
    where
        D: FnMut(SocketAddr) -> Fut,
        Fut: Future<Output = io::Result<S>>,
    {
        let settings = &*self.settings;
        let began = Instant::now();
        let deadline = settings.timeout.map(|limit| began + limit);
        let key: Option<HostKey> = target
            .name_and_port()
            .map(|(name, port)| (name.clone(), port));
        let (addrs, remembered) = self
            .addresses(target, key.as_ref(), began, deadline)
            .await?;
        let mut log = Log::new(began);
        let key_ref = key.as_ref();
        let mut dial = |addr| {
            let attempt = dial(addr);
            async move {
                let result = attempt.await;
                // Forget a remembered winner the moment it fails, not when the race ends.
                if let (Err(_), Some(key)) = (&result, key_ref) {
                    if remembered == Some(addr) {
                        settings.memory.forget(key, addr);
                    }
                }
                result
            }
        };
        let outcome = bounded(
            race(&addrs, self.pace(), &mut dial, &mut log),
            deadline,
            settings.cancel.as_ref(),
        );
        match outcome.await {
            Bounded::Done(Some(won)) => {
                if let Some(key) = &key {
                    settings.memory.remember(key, won.addr);
                }
                if settings.adaptive_delay {
                    settings.connect_times.observe(won.took);
                }
                Ok(won)
            }
            Bounded::Done(None) => Err(ConnectError::AllAttemptsFailed {
                host: target.to_string(),
                attempts: log.finish(|| io::Error::other("attempt did not finish")),
            }),
            Bounded::TimedOut => Err(ConnectError::TimedOut {
                host: target.to_string(),
                stage: Stage::Connect,
                elapsed: began.elapsed(),
                attempts: log.finish(|| {
                    io::Error::new(io::ErrorKind::TimedOut, "aborted by the overall timeout")
                }),
            }),
            Bounded::Cancelled => Err(ConnectError::Cancelled {
                host: target.to_string(),
                attempts: log.finish(|| io::Error::new(io::ErrorKind::Interrupted, "cancelled")),
            }),
        }
    }

    /// The addresses to race, in order, and the remembered winner among them: an override's
    /// or the resolver's answer for a name, the target's own addresses otherwise; filtered by
    /// family and by the address policy.
    async fn addresses<'t>(
        &self,
        target: &'t Target,
        key: Option<&HostKey>,
        began: Instant,
        deadline: Option<Instant>,
    ) -> Result<(Cow<'t, [SocketAddr]>, Option<SocketAddr>), ConnectError> {
        let settings = &*self.settings;
        let mut remembered = None;
        let addrs = match (key, target.addrs()) {
            (Some(key), _) => match settings.overrides.find(&key.0, key.1) {
                Some(mut given) => {
                    dedup_and_filter(&mut given, settings.families);
                    Cow::Owned(given)
                }
                None => {
                    let mut resolved = self.resolve(target, key, began, deadline).await?;
                    remembered = settings
                        .memory
                        .recall(key)
                        .filter(|&addr| promote(&mut resolved, addr));
                    Cow::Owned(resolved)
                }
            },
            (None, [one]) if settings.families.allows(one) => Cow::Borrowed(target.addrs()),
            (None, listed) => {
                let mut listed = listed.to_vec();
                dedup_and_filter(&mut listed, settings.families);
                Cow::Owned(listed)
            }
        };
        if addrs.is_empty() {
            return Err(ConnectError::NoAddresses {
                host: target.to_string(),
            });
        }
        if settings.policy.allows_all() {
            return Ok((addrs, remembered));
        }
        let (allowed, refused): (Vec<_>, Vec<_>) =
            addrs.iter().partition(|addr| settings.policy.allows(addr));
        if allowed.is_empty() {
            return Err(ConnectError::Denied {
                host: target.to_string(),
                refused,
            });
        }
        if !refused.is_empty() {
            tracing::debug!(?refused, "addresses denied by the address policy");
        }
        Ok((Cow::Owned(allowed), remembered))
    }

    /// How this connect's attempts are paced.
    fn pace(&self) -> Pace {
        let settings = &*self.settings;
        let delay = if settings.adaptive_delay {
            settings
                .connect_times
                .delay(MIN_ATTEMPT_DELAY, settings.attempt_delay)
        } else {
            settings.attempt_delay
        };
        Pace {
            stagger: match settings.strategy {
                Strategy::HappyEyeballs => Some(delay),
                Strategy::Sequential => None,
            },
            attempt_timeout: settings.attempt_timeout,
        }
    }

    /// Resolves `name`, then de-duplicates, filters and (for Happy Eyeballs) interleaves.
    async fn resolve(
        &self,
        target: &Target,
        (name, port): &HostKey,
        began: Instant,
        deadline: Option<Instant>,
    ) -> Result<Vec<SocketAddr>, ConnectError> {
        let settings = &*self.settings;
        let resolve_deadline = earliest(deadline, settings.resolve_timeout.map(|t| began + t));
        let lookup = settings.resolver.resolve(name, *port);
        let mut addrs = match bounded(lookup, resolve_deadline, settings.cancel.as_ref()).await {
            Bounded::Done(Ok(addrs)) => addrs,
            Bounded::Done(Err(source)) => {
                return Err(ConnectError::Resolve {
                    host: target.to_string(),
                    source,
                });
            }
            Bounded::TimedOut => {
                return Err(ConnectError::TimedOut {
                    host: target.to_string(),
                    stage: Stage::Resolve,
                    elapsed: began.elapsed(),
                    attempts: Attempts::default(),
                });
            }
            Bounded::Cancelled => {
                return Err(ConnectError::Cancelled {
                    host: target.to_string(),
                    attempts: Attempts::default(),
                });
            }
        };
        tracing::debug!(?addrs, elapsed = ?began.elapsed(), "resolved");
        dedup_and_filter(&mut addrs, settings.families);
        if settings.strategy == Strategy::HappyEyeballs {
            addrs = interleave(&addrs, settings.first_family_count);
        }
        Ok(addrs)
    }
}

/// How a bounded piece of work ended.
enum Bounded<T> {
    Done(T),
    TimedOut,
    Cancelled,
}

/// Runs `work` until it finishes, `deadline` passes or `cancel` fires, whichever is first;
/// cancellation wins ties, then the work.
async fn bounded<F: Future>(
    work: F,
    deadline: Option<Instant>,
    cancel: Option<&CancellationToken>,
) -> Bounded<F::Output> {
    let cancelled = async {
        match cancel {
            Some(token) => token.cancelled().await,
            None => pending().await,
        }
    };
    let expired = async {
        match deadline {
            Some(deadline) => sleep_until(deadline).await,
            None => pending().await,
        }
    };
    tokio::select! {
        biased;
        () = cancelled => Bounded::Cancelled,
        output = work => Bounded::Done(output),
        () = expired => Bounded::TimedOut,
    }
}

/// The earlier of two optional deadlines.
fn earliest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn earliest_deadline() {
        let now = Instant::now();
        let later = now + Duration::from_secs(1);
        assert_eq!(earliest(None, None), None);
        assert_eq!(earliest(Some(later), None), Some(later));
        assert_eq!(earliest(None, Some(now)), Some(now));
        assert_eq!(earliest(Some(later), Some(now)), Some(now));
    }

    #[test]
    fn attempt_delay_never_goes_below_10_ms() {
        let connector = Connector::new().attempt_delay(Duration::from_millis(1));
        assert_eq!(connector.settings.attempt_delay, MIN_ATTEMPT_DELAY);
        let connector = connector.attempt_delay(Duration::from_secs(2));
        assert_eq!(connector.settings.attempt_delay, Duration::from_secs(2));
    }

    #[test]
    fn clones_share_settings_until_changed() {
        let original = Connector::new().nodelay(true);
        let clone = original.clone();
        assert!(Arc::ptr_eq(&original.settings, &clone.settings));
        let changed = clone.strategy(Strategy::Sequential);
        assert_eq!(original.settings.strategy, Strategy::HappyEyeballs);
        assert_eq!(changed.settings.strategy, Strategy::Sequential);
        assert!(changed.settings.socket.nodelay);
    }

    #[test]
    fn connector_is_send_sync_and_its_future_is_send() {
        fn assert_send_sync<T: Send + Sync>(_: &T) {}
        fn assert_send<T: Send>(_: T) {}
        let connector = Connector::new();
        assert_send_sync(&connector);
        assert_send(connector.connect("localhost:1"));
    }
}
