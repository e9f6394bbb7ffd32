//! The reusable [`Connector`]: its settings and the connect methods.

mod dial;
pub(crate) mod expiring;
pub(crate) mod history;
mod lone;
mod nat64;
pub(crate) mod pipeline;
pub(crate) mod settings;
pub(crate) mod socket;
mod socket_setters;

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

use crate::connector::dial::{ByEndpoint, Dial};
use crate::connector::history::WinnerMemory;
use crate::connector::settings::{MIN_ATTEMPT_DELAY, Settings, Strategy};
use crate::error::ConnectError;
use crate::order::admission::IpFamilies;
use crate::order::policy::AddressPolicy;
use crate::race::core::Won;
use crate::report::ConnectReport;
use crate::report::event::{ConnectEvent, Hook};
use crate::resolve::cache::{AnswerCache, Cache};
use crate::resolve::nat64::Nat64;
use crate::resolve::service::endpoint::{Endpoint, Endpoints};
use crate::resolve::service::record::Service;
use crate::resolve::{Resolve, SharedResolver};
use crate::target::error::TargetError;
use crate::target::{IntoTarget, Target};

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
#[must_use = "a Connector's setters return the changed connector; it does nothing until a connect method is called"]
pub struct Connector {
    settings: Arc<Settings>,
}

/// A cache with `config`, unless it can hold nothing.
fn new_cache(config: AnswerCache) -> Option<Arc<Cache>> {
    (config.capacity > 0).then(|| Arc::new(Cache::new(config)))
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

    #[cfg(feature = "reqwest")]
    pub(crate) fn settings(&self) -> &Arc<Settings> {
        &self.settings
    }

    pub(crate) fn with(mut self, change: impl FnOnce(&mut Settings)) -> Self {
        change(Arc::make_mut(&mut self.settings));
        self
    }

    /// How the addresses are tried. Default is [`Strategy::HappyEyeballs`].
    pub fn strategy(self, strategy: Strategy) -> Self {
        self.with(|s| s.strategy = strategy)
    }

    /// The Happy Eyeballs Connection Attempt Delay: how long after starting an attempt the next
    /// one starts if none has connected or failed. Values below 10 ms are raised to 10 ms
    /// (RFC 8305 §8); a delay too long to add to a start time (such as `Duration::MAX`) means
    /// that only a failure starts the next attempt, and so does `None`. Ignored by
    /// [`Strategy::Sequential`]. Takes a `Duration` or an `Option<Duration>`. Default is 250 ms.
    pub fn attempt_delay(self, delay: impl Into<Option<Duration>>) -> Self {
        let delay = delay.into().unwrap_or(Duration::MAX);
        self.with(|s| s.attempt_delay = delay.max(MIN_ATTEMPT_DELAY))
    }

    /// The longest one attempt may run before it is abandoned as failed, which starts the next
    /// one. Default is `None`: an attempt runs until it connects, fails, loses, or the overall
    /// timeout ends the connect; it is never aborted because a later attempt started. A
    /// duration too long to add to a start time (such as `Duration::MAX`) is no limit. Takes a
    /// `Duration` or an `Option<Duration>`.
    pub fn attempt_timeout(self, timeout: impl Into<Option<Duration>>) -> Self {
        let timeout = timeout.into();
        self.with(|s| s.attempt_timeout = timeout)
    }

    /// The longest a whole connect may take, resolution included. No attempt starts at or
    /// after this deadline; a stream that has connected when it passes is returned. A duration
    /// too long to add to the start time (such as `Duration::MAX`) is no limit. Takes a
    /// `Duration` or an `Option<Duration>`. Default is `None`.
    pub fn timeout(self, timeout: impl Into<Option<Duration>>) -> Self {
        let timeout = timeout.into();
        self.with(|s| s.timeout = timeout)
    }

    /// The longest resolution may take, a wait for a free system lookup slot included; the
    /// overall [`timeout`](Self::timeout) bounds it too. `Duration::MAX` is no limit. Takes a
    /// `Duration` or an `Option<Duration>`. Default is `None`.
    pub fn resolve_timeout(self, timeout: impl Into<Option<Duration>>) -> Self {
        let timeout = timeout.into();
        self.with(|s| s.resolve_timeout = timeout)
    }

    /// How long to wait for the AAAA answer when the A answer came first with addresses
    /// (RFC 8305 §3's Resolution Delay), counted from the A answer; an AAAA answer, positive or
    /// negative, ends the wait at once. Applies to resolvers that answer in parts
    /// ([`Resolve::resolve_in_parts`]); one-shot answers start at once. `Duration::MAX` or
    /// `None` waits for AAAA as long as the resolve timeout allows. Takes a `Duration` or an
    /// `Option<Duration>`. Default is 50 ms.
    pub fn resolution_delay(self, delay: impl Into<Option<Duration>>) -> Self {
        let delay = delay.into().unwrap_or(Duration::MAX);
        self.with(|s| s.resolution_delay = delay)
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
    /// [`SystemResolver`](crate::SystemResolver) (`getaddrinfo`).
    ///
    /// The [answer cache](Self::answer_cache) starts empty again: another resolver's answers
    /// are not this one's.
    pub fn resolver(self, resolver: impl Resolve) -> Self {
        let resolver = SharedResolver::new(resolver);
        self.with(|s| {
            s.resolver = resolver;
            s.cache = s
                .cache
                .as_ref()
                .and_then(|cache| new_cache(cache.config().clone()));
        })
    }

    /// The answer cache: what the resolver said of each host name and port, kept so that a
    /// connect by name need not wait for DNS. `None` turns it off: every connect asks the
    /// resolver, as a connector without a cache does. Default is on, with
    /// [`AnswerCache::new`]'s settings: 1,024 names, a 30 s TTL for answers without one (the
    /// system resolver's), records' TTLs clamped to 0 s to 1 day, negative answers kept 5 s,
    /// expired answers raced for up to 10 minutes.
    ///
    /// - **Fresh** (within its TTL): the connect races the cached addresses at once; the
    ///   resolver is not asked.
    /// - **Stale** (expired at most `max_stale` ago): the connect races the cached addresses
    ///   at once and the resolver is asked again at the same moment, once per name however
    ///   many connects find it stale. The refreshed answer joins the race as it comes: its
    ///   new addresses go first and start at once, and stale addresses it no longer lists are
    ///   not started. If every stale address fails, the connect waits for the refresh and
    ///   races its addresses. The refresh runs in a task of its own: it **may outlive the
    ///   connect**, bounded by the [resolve timeout](Self::resolve_timeout) (without one, by
    ///   the resolver's own limits), and updates the cache when it ends.
    /// - **Through an outage**: a refresh that fails (a timeout, `SERVFAIL`) keeps nothing,
    ///   so the stale answer keeps serving until `max_stale`; after that, connects fail with
    ///   the resolver's error again.
    ///
    /// Names compare without case or a trailing dot, an internationalized name by its ASCII
    /// form; IP literals, address lists and [overrides](Self::resolve_override) never enter
    /// the cache. The [address policy](Self::address_policy) and the family filter apply to
    /// cached addresses on every connect, as to fresh ones. Clones share one cache; this
    /// setter (and [`resolver`](Self::resolver)) gives the connector a new, empty one.
    ///
    /// A cached address can be out of date: a service that moved (DNS-based failover) is
    /// reached at its new address once the answer expires and is refreshed, or sooner, once a
    /// connect found every cached address failing (the answer is then stale), and a stale
    /// address may by then belong to someone else; plain TCP cannot tell, TLS (which checks
    /// the server's name) can. A short [`default_ttl`](AnswerCache::default_ttl) costs a
    /// background query per expiry, never a wait.
    pub fn answer_cache(self, cache: impl Into<Option<AnswerCache>>) -> Self {
        let cache = cache.into().and_then(new_cache);
        self.with(|s| s.cache = cache)
    }

    /// Answers `host` with `addrs` instead of asking the resolver, like curl's `--resolve`. An
    /// overridden name skips the [winner memory](Self::winner_memory) and never reaches DNS;
    /// its addresses are raced in the given order, without interleaving.
    ///
    /// `port` limits the override to one port; `None` applies it to any port. An address
    /// given with port 0 takes the target's port; one with a port of its own keeps it. Host
    /// names match without regard to case or a trailing dot, and an internationalized name
    /// matches its ASCII form (`bücher.example` is `xn--bcher-kva.example`). Default is no
    /// overrides.
    ///
    /// ```
    /// use std::net::SocketAddr;
    /// use connect_any::Connector;
    ///
    /// let canary: SocketAddr = "127.0.0.1:0".parse().unwrap(); // port 0: the target's port
    /// let pinned: SocketAddr = "127.0.0.2:8443".parse().unwrap(); // always port 8443
    /// let connector = Connector::new()
    ///     .resolve_override("api.example.com", None, [canary]) // api.example.com:443 -> 127.0.0.1:443
    ///     .resolve_override("admin.example.com", Some(443), [pinned]); // only for port 443
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

    /// A token that cancels every connect made through this connector (and its clones made
    /// afterwards): a connect in progress then returns [`ConnectError::Cancelled`], and one
    /// started after cancellation returns it at once. Default is `None`.
    pub fn cancellation_token(self, token: impl Into<Option<CancellationToken>>) -> Self {
        let token = token.into();
        self.with(|s| s.cancel = token)
    }

    /// How many hosts the winner memory holds, and for how long it trusts an entry. Default is
    /// 1,024 hosts for 10 minutes; a capacity of 0 turns the memory off, and `Duration::MAX`
    /// or `None` trusts an entry until it is evicted.
    ///
    /// For each host name and port, the connector remembers the address that last won and
    /// tries it first next time, so a service that dials one upstream over and over pays the
    /// Happy Eyeballs delay once rather than on every connect. Memory only reorders: an address
    /// is tried only if the resolver returned it this time. A remembered address that fails is
    /// forgotten at once, and the next attempt starts without waiting. Names compare without
    /// case or a trailing dot; names answered by a
    /// [`resolve_override`](Self::resolve_override) are never remembered. When full, the host
    /// whose winner was confirmed least recently is evicted; expired entries are dropped as new
    /// ones arrive. Clones share one memory; this setter gives the connector a new, empty one.
    pub fn winner_memory(self, capacity: usize, ttl: impl Into<Option<Duration>>) -> Self {
        let ttl = ttl.into().unwrap_or(Duration::MAX);
        self.with(|s| s.memory = Arc::new(WinnerMemory::new(capacity, ttl)))
    }

    /// Derives the attempt delay from the connect times this connector has observed, instead
    /// of always waiting [`attempt_delay`](Self::attempt_delay). Default is `false`.
    ///
    /// RFC 8305 §5 allows a "more nuanced" delay from the RTT history "to the same host or
    /// prefix"; a TCP connect takes about one round trip, so an attempt not answered within
    /// twice the slow end of recent connects has most likely lost its SYN. The delay after an
    /// attempt is therefore twice the 90th percentile of the last 8 connect times to that
    /// address's prefix (IPv4 /24, IPv6 /64), never below 10 ms and never above
    /// `attempt_delay`. A prefix with no history borrows the connector-wide estimate (from the
    /// last 32 connects, once there are 8) for at most one attempt per connect; later attempts
    /// to unknown prefixes wait `attempt_delay`. So in a data centre, where connects take a
    /// millisecond, a black-holed first address costs 10 ms instead of 250, while a far server
    /// never seen before gets at most one extra SYN.
    pub fn adaptive_delay(self, adaptive: bool) -> Self {
        self.with(|s| s.adaptive_delay = adaptive)
    }

    /// Connects to `target` over TCP and returns the first stream to connect.
    ///
    /// The future owns what it needs (a clone of this connector is one `Arc`), so it can be
    /// spawned: `tokio::spawn(connector.connect("example.com:443"))`.
    ///
    /// # Errors
    ///
    /// A [`ConnectError`] when the target is invalid, resolution fails or finds nothing, every
    /// attempt fails, a timeout runs out, or a cancellation token fires.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future cancels every attempt and closes every socket it opened; nothing it
    /// started keeps running, except a system lookup already handed to `getaddrinfo` (see
    /// [`SystemResolver`](crate::SystemResolver)).
    pub fn connect(
        &self,
        target: impl IntoTarget,
    ) -> impl Future<Output = Result<TcpStream, ConnectError>> + Send + 'static {
        self.connect_until(target, None)
    }

    /// Like [`connect`](Self::connect), and also ends with [`ConnectError::Cancelled`] when
    /// `token` is cancelled; the connector's own token (if any) still applies.
    ///
    /// # Errors
    ///
    /// As for [`connect`](Self::connect).
    ///
    /// # Cancel safety
    ///
    /// As for [`connect`](Self::connect).
    pub fn connect_cancellable(
        &self,
        target: impl IntoTarget,
        token: &CancellationToken,
    ) -> impl Future<Output = Result<TcpStream, ConnectError>> + Send + 'static {
        self.connect_until(target, Some(token.clone()))
    }

    /// Like [`connect`](Self::connect), and also returns what happened on the way: where the
    /// addresses came from, when each answer arrived, every attempt with its outcome, the
    /// winner and the total time. A failed connect's error carries the same report
    /// ([`ConnectError::report`]).
    ///
    /// A report costs a few small allocations per connect, and such a connect never takes the
    /// direct path that a plain literal connect takes; use it where the report is wanted.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), connect_any::ConnectError> {
    /// let connector = connect_any::Connector::new();
    /// let (stream, report) = connector.connect_reported("localhost:8080").await?;
    /// if report.is_fallback() {
    ///     eprintln!("{report:#}");
    /// }
    /// # drop(stream);
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    ///
    /// As for [`connect`](Self::connect).
    ///
    /// # Cancel safety
    ///
    /// As for [`connect`](Self::connect).
    pub fn connect_reported(
        &self,
        target: impl IntoTarget,
    ) -> impl Future<Output = Result<(TcpStream, ConnectReport), ConnectError>> + Send + 'static
    {
        let target = target.into_target_or_input();
        let settings = self.settings.clone();
        async move {
            let target = target.as_ref().map_err(invalid)?;
            let dial = |addr| settings.socket.connect(addr);
            let won = pipeline::connect(&settings, target, None, true, dial).await?;
            Ok((won.stream, reported(won.report)))
        }
    }

    fn connect_until(
        &self,
        target: impl IntoTarget,
        token: Option<CancellationToken>,
    ) -> impl Future<Output = Result<TcpStream, ConnectError>> + Send + 'static {
        let target = target.into_target_or_input();
        let settings = self.settings.clone();
        async move {
            // Borrowed rather than moved out, so the future holds the target once.
            let target = target.as_ref().map_err(invalid)?;
            let dial = |addr| settings.socket.connect(addr);
            let token = token.as_ref();
            let won = pipeline::connect(&settings, target, token, false, dial).await?;
            Ok(won.stream)
        }
    }

    /// Races `dial` over the target's addresses, like [`connect`](Self::connect), and returns
    /// the winner's stream: for a TLS stream (so that an attempt wins only once its handshake
    /// is done, as Happy Eyeballs v3 asks), a test double, or anything else built per address.
    ///
    /// `dial` is called once per attempt. It makes its own connection: for TCP exactly as
    /// [`connect`](Self::connect) would make it (every socket option, local address and
    /// [`before_connect`](Self::before_connect) hook of this connector), dial through
    /// [`tcp_dialer`](Self::tcp_dialer). The future does not borrow the connector.
    ///
    /// # Errors
    ///
    /// As for [`connect`](Self::connect); a failed attempt's error is whatever `dial` returned.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future drops every running `dial` future; the streams of losers that had
    /// connected are dropped before this returns.
    ///
    /// # Examples
    ///
    /// A TLS race with tokio-rustls, over TCP set up as the connector's own connects are (this
    /// crate does not depend on rustls, so the snippet is not compiled here; the workspace's
    /// `tls-race` example runs the same code):
    ///
    /// ```ignore
    /// # use std::sync::Arc;
    /// # async fn run(config: Arc<rustls::ClientConfig>) -> Result<(), connect_any::ConnectError> {
    /// use connect_any::Connector;
    /// use rustls::pki_types::ServerName;
    /// use tokio_rustls::TlsConnector;
    ///
    /// let connector = Connector::new().nodelay(true);
    /// let tcp = connector.tcp_dialer();
    /// let tls = TlsConnector::from(config);
    /// let name = ServerName::try_from("example.com").unwrap();
    /// let stream = connector
    ///     .connect_with("example.com:443", |addr| {
    ///         let (tcp, tls, name) = (tcp.clone(), tls.clone(), name.clone());
    ///         async move { tls.connect(name, tcp.dial(addr).await?).await }
    ///     })
    ///     .await?;
    /// # drop(stream);
    /// # Ok(())
    /// # }
    /// ```
    pub fn connect_with<T, D, Fut, S>(
        &self,
        target: T,
        dial: D,
    ) -> impl Future<Output = Result<S, ConnectError>> + use<T, D, Fut, S>
    where
        T: IntoTarget,
        D: FnMut(SocketAddr) -> Fut,
        Fut: Future<Output = io::Result<S>>,
    {
        self.connect_with_until(target, None, dial)
    }

    /// Like [`connect_with`](Self::connect_with), and also ends with
    /// [`ConnectError::Cancelled`] when `token` is cancelled; the connector's own token (if
    /// any) still applies.
    ///
    /// # Errors
    ///
    /// As for [`connect_with`](Self::connect_with).
    ///
    /// # Cancel safety
    ///
    /// As for [`connect_with`](Self::connect_with).
    pub fn connect_with_cancellable<T, D, Fut, S>(
        &self,
        target: T,
        token: &CancellationToken,
        dial: D,
    ) -> impl Future<Output = Result<S, ConnectError>> + use<T, D, Fut, S>
    where
        T: IntoTarget,
        D: FnMut(SocketAddr) -> Fut,
        Fut: Future<Output = io::Result<S>>,
    {
        self.connect_with_until(target, Some(token.clone()), dial)
    }

    fn connect_with_until<T, D, Fut, S>(
        &self,
        target: T,
        token: Option<CancellationToken>,
        dial: D,
    ) -> impl Future<Output = Result<S, ConnectError>> + use<T, D, Fut, S>
    where
        T: IntoTarget,
        D: FnMut(SocketAddr) -> Fut,
        Fut: Future<Output = io::Result<S>>,
    {
        let connecting = self.connect_with_call(target, token, false, |_| dial);
        async move { Ok(connecting.await?.stream) }
    }

    /// One `connect_with` call: `token` for the call, a report if `report`, the dialer made
    /// from the parsed target by `dialer`.
    fn connect_with_call<T, M, D, Fut, S>(
        &self,
        target: T,
        token: Option<CancellationToken>,
        report: bool,
        dialer: M,
    ) -> impl Future<Output = Result<Won<S>, ConnectError>> + use<T, M, D, Fut, S>
    where
        T: IntoTarget,
        M: FnOnce(&Target) -> D,
        D: Dial<Fut>,
        Fut: Future<Output = io::Result<S>>,
    {
        let target = target.into_target_or_input();
        let settings = self.settings.clone();
        async move {
            let target = target.as_ref().map_err(invalid)?;
            let dial = dialer(target);
            pipeline::connect(&settings, target, token.as_ref(), report, dial).await
        }
    }

    /// Races `dial` over the target's endpoints, like [`connect_with`](Self::connect_with),
    /// handing it for each attempt an [`Endpoint`]: the address, and for a target given a
    /// [`Service`](crate::Service) whose HTTPS records were found, what the record says (the
    /// ALPN ids to offer, the ECH configuration, the TargetName), so that a TLS dialer can
    /// set them (Happy Eyeballs v3 §6). An address from no record comes without one.
    ///
    /// # Errors
    ///
    /// As for [`connect_with`](Self::connect_with).
    ///
    /// # Cancel safety
    ///
    /// As for [`connect_with`](Self::connect_with).
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use connect_any::{Connector, Service, Target};
    ///
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// // With a resolver that asks for HTTPS records, such as `HickoryResolver`.
    /// let connector = Connector::new();
    /// let tcp = connector.tcp_dialer();
    /// let target = Target::parse("example.com:443")?.with_service(Service::https().protocols(["h2", "http/1.1"]));
    /// let (stream, alpn) = connector
    ///     .connect_endpoints_with(target, |endpoint| {
    ///         let tcp = tcp.clone();
    ///         // A TLS dialer would offer these protocols and use the ECH configuration.
    ///         let alpn: Vec<Vec<u8>> = endpoint.alpn().iter().map(|p| p.to_vec()).collect();
    ///         async move { Ok((tcp.dial(endpoint.addr()).await?, alpn)) }
    ///     })
    ///     .await?;
    /// # drop((stream, alpn));
    /// # Ok(())
    /// # }
    /// ```
    pub fn connect_endpoints_with<T, D, Fut, S>(
        &self,
        target: T,
        dial: D,
    ) -> impl Future<Output = Result<S, ConnectError>> + use<T, D, Fut, S>
    where
        T: IntoTarget,
        D: FnMut(Endpoint) -> Fut,
        Fut: Future<Output = io::Result<S>>,
    {
        let by_endpoint = |target: &Target| {
            let service = target.service().cloned().unwrap_or_else(Service::https);
            let endpoints = Endpoints::new(service);
            ByEndpoint { dial, endpoints }
        };
        let connecting = self.connect_with_call(target, None, false, by_endpoint);
        async move { Ok(connecting.await?.stream) }
    }

    /// Like [`connect_with`](Self::connect_with), and also returns the connect's report, as
    /// [`connect_reported`](Self::connect_reported) does.
    ///
    /// # Errors
    ///
    /// As for [`connect_with`](Self::connect_with); the error carries the report.
    ///
    /// # Cancel safety
    ///
    /// As for [`connect_with`](Self::connect_with).
    pub fn connect_with_reported<T, D, Fut, S>(
        &self,
        target: T,
        dial: D,
    ) -> impl Future<Output = Result<(S, ConnectReport), ConnectError>> + use<T, D, Fut, S>
    where
        T: IntoTarget,
        D: FnMut(SocketAddr) -> Fut,
        Fut: Future<Output = io::Result<S>>,
    {
        let connecting = self.connect_with_call(target, None, true, |_| dial);
        async move {
            let won = connecting.await?;
            Ok((won.stream, reported(won.report)))
        }
    }

    /// How to reach IPv4 destinations from a host without an IPv4 route to them: an IPv6-only
    /// host behind NAT64 (IPv6-only cloud subnets, mobile networks), where a connect to
    /// `192.0.2.1:80` would fail at once with "Network is unreachable".
    ///
    /// With [`Nat64::Automatic`] (the default), an IPv4 destination without a route is dialed
    /// as its synthesized IPv6 address (RFC 6052), in the IPv4 address's place in the race:
    /// literals, overrides' addresses and A answers alike. Which destinations have no route is
    /// told without sending anything: on a host with no IPv4 address but loopback (from
    /// `getifaddrs`, once per process), none has; on one with IPv4 addresses but no default
    /// route (`/proc/net/route`), each is asked about with a connected UDP socket; on one with
    /// a default route, a connect whose attempts fail with `ENETUNREACH` returns that error,
    /// and the connector's later connects synthesize. The prefix is learnt from the resolver's
    /// answer for `ipv4only.arpa` (RFC 7050) on the first connect that needs it, within its
    /// timeouts, and kept ten minutes (a lookup that reveals none: one minute). A host with a
    /// default route whose connects all find their routes never asks for `ipv4only.arpa`.
    ///
    /// Once a prefix is at hand, an AAAA answer under it (a DNS64 server's synthesis) is taken
    /// as the IPv4 address inside: ordered as IPv4, judged by the address policy as IPv4, and
    /// not dialed twice when the A answer has it too.
    ///
    /// [`Nat64::Prefix`] gives the prefix outright; [`Nat64::Off`] turns all of it off.
    /// Addresses in 0/8, 127/8 and 169.254/16 and the broadcast address are never
    /// synthesized, and the address policy judges the IPv4 address, as given or resolved.
    /// Default is [`Nat64::Automatic`].
    pub fn nat64(self, nat64: Nat64) -> Self {
        self.with(|s| s.nat64 = nat64)
    }

    /// Calls `hook` with each event of every connect as it happens: an answer arrived, an
    /// attempt started, failed, won or was cancelled, the connect finished (Go's
    /// `httptrace.ClientTrace`). For metrics on what Happy Eyeballs hides: how often IPv6
    /// loses, how much a fallback costs.
    ///
    /// The hook runs synchronously inside the connect's poll, on the runtime's thread: it must
    /// be quick and must not block (count, record, send to a channel; never wait on I/O or a
    /// lock held across an `.await`). A panic in the hook is caught, after the panic hook has
    /// printed it, and the connect goes on. Without a hook, nothing is paid for events; with
    /// one, connects to a literal no longer take the direct path. Default is none.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Arc;
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    /// use connect_any::{Connector, EventKind};
    ///
    /// let fallbacks = Arc::new(AtomicUsize::new(0));
    /// let counter = fallbacks.clone();
    /// let connector = Connector::new().on_event(move |event| {
    ///     if let EventKind::AttemptWon { fallback: true, .. } = event.kind() {
    ///         counter.fetch_add(1, Ordering::Relaxed);
    ///     }
    /// });
    /// # drop(connector);
    /// ```
    pub fn on_event(self, hook: impl Fn(&ConnectEvent<'_>) + Send + Sync + 'static) -> Self {
        let hook = Hook(Arc::new(hook));
        self.with(|s| s.hook = Some(hook))
    }

    /// A TCP dialer that makes each connection exactly as [`connect`](Self::connect) does:
    /// every socket option, local address and [`before_connect`](Self::before_connect) hook of
    /// this connector, for the dialer of [`connect_with`](Self::connect_with). Cheap to clone;
    /// it keeps the settings this connector has now.
    pub fn tcp_dialer(&self) -> TcpDialer {
        TcpDialer {
            settings: self.settings.clone(),
        }
    }
}

/// The report of a connect that asked for one: the pipeline records one for every such
/// connect, and hands it over once.
fn reported(report: Option<Box<ConnectReport>>) -> ConnectReport {
    *report.expect("a reported connect settles with its report")
}

/// The error for a target that did not convert, naming the input.
fn invalid((cause, input): &(TargetError, String)) -> ConnectError {
    ConnectError::InvalidTarget {
        input: input.clone(),
        cause: cause.clone(),
    }
}

/// Dials one address over TCP with a [`Connector`]'s socket settings; see
/// [`Connector::tcp_dialer`].
#[derive(Clone, Debug)]
pub struct TcpDialer {
    settings: Arc<Settings>,
}

impl TcpDialer {
    /// Opens a socket of `addr`'s family, applies the connector's socket options and hook,
    /// and connects it; no timeout of its own (the race's apply around it).
    ///
    /// # Errors
    ///
    /// The error of the socket call that failed, or of the hook.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future closes the socket.
    pub fn dial(&self, addr: SocketAddr) -> impl Future<Output = io::Result<TcpStream>> + Send {
        self.settings.socket.connect(addr)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn connect_futures_do_not_borrow_the_connector_or_the_target() {
        fn assert_static<T: 'static>(_: T) {}
        let host = String::from("localhost:1");
        let connector = Connector::new();
        let future = connector.connect(host.as_str());
        drop(connector);
        assert_static(future);
    }
}
