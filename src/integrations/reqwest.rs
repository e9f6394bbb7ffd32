//! reqwest (feature `reqwest`): a resolver that answers through a connector, and a connector
//! layer that judges every destination before reqwest dials it.

use std::error::Error as StdError;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures_util::future::Either;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

use crate::connector::Connector;

use crate::connector::pipeline;
use crate::connector::settings::Settings;
use crate::error::ConnectError;
use crate::target::Target;
use crate::target::error::TargetError;

/// A [`reqwest::dns::Resolve`] that answers through a [`Connector`]'s resolver, overrides,
/// family filter and [address policy](crate::AddressPolicy), so that a reqwest client gets the
/// same answers as the connector: every address of every family that answers within the
/// connector's resolve bounds.
///
/// reqwest still dials with its own connector: the connector's race, attempt delay, socket
/// options and winner memory do not apply, only what decides the addresses. reqwest does not
/// tell a resolver the port, so names are resolved as port 0: a custom policy sees port 0,
/// [`resolve_override`](Connector::resolve_override)s made for one port do not apply (those for
/// any port do), and messages name the host alone. A refused or failed lookup fails the request
/// with the [`ConnectError`] as its cause.
///
/// **reqwest never asks a resolver about an IP literal** (`http://127.0.0.1/`, and the forms
/// the URL parser turns into one, such as `http://2130706433/`), so a resolver alone is no SSRF
/// guard. [`install`](Self::install) sets this resolver and the [`ReqwestGuard`] layer that
/// judges literals too; use it rather than `dns_resolver` alone.
///
/// # Examples
///
/// ```no_run
/// use connect_any::{AddressPolicy, Connector, ReqwestResolver};
///
/// let connector = Connector::new().address_policy(AddressPolicy::deny_non_public());
/// let client = ReqwestResolver::new(connector)
///     .install(reqwest::Client::builder())
///     .no_proxy()
///     .build()
///     .unwrap();
/// # drop(client);
/// ```
#[cfg_attr(docsrs, doc(cfg(feature = "reqwest")))]
#[derive(Clone, Debug)]
#[must_use = "a resolver does nothing until it is given to a reqwest client"]
pub struct ReqwestResolver {
    connector: Connector,
}

impl ReqwestResolver {
    /// Answers with `connector`'s settings.
    pub fn new(connector: Connector) -> Self {
        Self { connector }
    }

    /// This resolver in the `Arc` that `reqwest::ClientBuilder::dns_resolver` takes.
    pub fn into_arc(self) -> Arc<Self> {
        Arc::new(self)
    }

    /// The [`ReqwestGuard`] of the same connector, for `ClientBuilder::connector_layer`.
    pub fn guard(&self) -> ReqwestGuard {
        ReqwestGuard {
            settings: self.connector.settings().clone(),
        }
    }

    /// Sets this resolver (`dns_resolver`) and its [`guard`](Self::guard) (`connector_layer`)
    /// on `builder`: names are answered through the connector, and every destination,
    /// literals and redirect targets included, is judged by its policy before it is dialed.
    ///
    /// With a proxy, only the proxy's own address and literal destinations are judged: the
    /// proxy resolves named destinations itself. Add `.no_proxy()` where the policy must hold
    /// for every name.
    pub fn install(self, builder: reqwest::ClientBuilder) -> reqwest::ClientBuilder {
        let guard = self.guard();
        builder.dns_resolver(self.into_arc()).connector_layer(guard)
    }
}

impl Resolve for ReqwestResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let settings = self.connector.settings().clone();
        let target = Target::from_name_for_any_port(name.as_str());
        Box::pin(async move {
            let target = target.map_err(|cause| ConnectError::InvalidTarget {
                input: name.as_str().to_owned(),
                cause,
            })?;
            let mut addrs = pipeline::lookup_all(&settings, &target).await?;
            // reqwest dials the request's port on an address of port 0; an override's own
            // port is not that.
            addrs.iter_mut().for_each(|addr| addr.set_port(0));
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

/// A `tower` layer for `reqwest::ClientBuilder::connector_layer` that judges each connection's
/// destination by a [`Connector`]'s family filter and [address policy](crate::AddressPolicy)
/// before reqwest dials it: an IP literal that the policy refuses fails the request with
/// [`ConnectError::Denied`], and so does any URL whose host connect-any cannot read. Named
/// destinations pass on to reqwest, which resolves them through its resolver (a
/// [`ReqwestResolver`] judges them there). Every connection goes through the layer, so a
/// redirect to a refused literal is refused too.
///
/// Obtain one with [`ReqwestResolver::guard`], or let [`ReqwestResolver::install`] set both.
#[cfg_attr(docsrs, doc(cfg(feature = "reqwest")))]
#[derive(Clone, Debug)]
#[must_use = "a layer does nothing until it is given to a reqwest client"]
pub struct ReqwestGuard {
    settings: Arc<Settings>,
}

impl<S> tower_layer::Layer<S> for ReqwestGuard {
    type Service = ReqwestGuardService<S>;

    fn layer(&self, inner: S) -> ReqwestGuardService<S> {
        ReqwestGuardService {
            inner,
            settings: self.settings.clone(),
        }
    }
}

/// reqwest's connector behind a [`ReqwestGuard`].
#[cfg_attr(docsrs, doc(cfg(feature = "reqwest")))]
#[derive(Clone, Debug)]
pub struct ReqwestGuardService<S> {
    inner: S,
    settings: Arc<Settings>,
}

type BoxError = Box<dyn StdError + Send + Sync>;

impl<S, R> tower_service::Service<R> for ReqwestGuardService<S>
where
    S: tower_service::Service<R, Error = BoxError>,
    R: std::fmt::Debug,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = Either<std::future::Ready<Result<S::Response, BoxError>>, S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: R) -> Self::Future {
        let verdict = destination(&request)
            .map_err(ConnectError::from)
            .and_then(|target| judge(&self.settings, &target));
        match verdict {
            Ok(()) => Either::Right(self.inner.call(request)),
            Err(refused) => Either::Left(std::future::ready(Err(refused.into()))),
        }
    }
}

/// The destination of reqwest's connector request. reqwest hands the layer a sealed type that
/// offers nothing but `Debug` (`Unnameable(http://host:port/)`), so the URI is read from that;
/// anything that does not read as one is refused rather than let through unjudged.
fn destination(request: &impl std::fmt::Debug) -> Result<Target, TargetError> {
    let printed = format!("{request:?}");
    let uri = printed
        .split_once('(')
        .and_then(|(_, rest)| rest.strip_suffix(')'))
        .and_then(|inside| inside.parse::<http::Uri>().ok())
        .ok_or(TargetError::EmptyHost)?;
    let host = uri.host().ok_or(TargetError::EmptyHost)?;
    let port = match (uri.port_u16(), uri.scheme_str()) {
        (Some(port), _) => port,
        (None, Some(scheme)) if scheme.eq_ignore_ascii_case("https") => 443,
        (None, _) => 80,
    };
    Target::from_host_port(host, port)
}

/// Refuses a literal destination that the family filter or the policy refuses; names pass.
fn judge(settings: &Settings, target: &Target) -> Result<(), ConnectError> {
    if target.host().is_some() {
        return Ok(());
    }
    pipeline::admit_literal(settings, target)
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;
    use std::str::FromStr;
    use std::sync::Mutex;
    use std::time::Duration;

    use futures_util::StreamExt;

    use super::*;
    use crate::order::policy::AddressPolicy;
    use crate::resolve::answers::{Answer, Answering};

    /// AAAA at once, A 60 ms later: past the resolution delay, so a connect would start on
    /// IPv6 alone.
    #[derive(Debug)]
    struct SlowA;

    impl crate::Resolve for SlowA {
        fn resolve<'a>(&'a self, _: &'a str, _: u16) -> crate::Resolving<'a> {
            unreachable!("asked in parts")
        }

        fn resolve_in_parts<'a>(&'a self, _: &'a str, port: u16) -> Answering<'a> {
            let v6 = Answer::ipv6(Ok(vec![SocketAddr::from((
                [0u16, 0, 0, 0, 0, 0, 0, 1],
                port,
            ))]));
            let v4 = async move {
                tokio::time::sleep(Duration::from_millis(60)).await;
                Answer::ipv4(Ok(vec![SocketAddr::from(([127, 0, 0, 1], port))]))
            };
            Box::pin(futures_util::stream::once(async { v6 }).chain(futures_util::stream::once(v4)))
        }
    }

    async fn resolve(resolver: &ReqwestResolver, name: &str) -> Result<Vec<SocketAddr>, String> {
        let name = Name::from_str(name).unwrap();
        match Resolve::resolve(resolver, name).await {
            Ok(addrs) => Ok(addrs.collect()),
            Err(error) => Err(error.to_string()),
        }
    }

    /// reqwest gets every family that answers within the resolve bounds, not only the first.
    #[tokio::test(start_paused = true)]
    async fn reqwest_gets_every_family_that_answers() {
        let resolver = ReqwestResolver::new(Connector::new().resolver(SlowA));
        let addrs = resolve(&resolver, "dual.test").await.unwrap();
        let expected: Vec<SocketAddr> =
            vec!["[::1]:0".parse().unwrap(), "127.0.0.1:0".parse().unwrap()];
        assert_eq!(addrs, expected);
        // A resolve timeout still bounds the wait for the late family.
        let bounded = Connector::new()
            .resolver(SlowA)
            .resolve_timeout(Some(Duration::from_millis(30)));
        let addrs = resolve(&ReqwestResolver::new(bounded), "dual.test")
            .await
            .unwrap();
        assert_eq!(addrs, expected[..1]);
    }

    /// Answers once, then never again: a DNS server that went silent.
    #[derive(Debug, Default)]
    struct FirstThenSilent(std::sync::atomic::AtomicUsize);

    impl crate::Resolve for FirstThenSilent {
        fn resolve<'a>(&'a self, _: &'a str, _: u16) -> crate::Resolving<'a> {
            unreachable!("asked in parts")
        }

        fn resolve_in_parts<'a>(&'a self, _: &'a str, port: u16) -> Answering<'a> {
            match self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst) {
                0 => {
                    let addrs = vec![SocketAddr::from(([127, 0, 0, 1], port))];
                    Box::pin(futures_util::stream::iter([Answer::all(Ok(addrs))]))
                }
                _ => Box::pin(futures_util::stream::pending()),
            }
        }
    }

    /// A stale cached answer is handed to reqwest at once; its refresh goes on without the
    /// lookup.
    #[tokio::test(start_paused = true)]
    async fn reqwest_gets_a_stale_answer_at_once_while_it_is_refreshed() {
        let resolver = Arc::new(FirstThenSilent::default());
        let cache = crate::AnswerCache::new().default_ttl(Duration::from_secs(1));
        let connector = Connector::new()
            .resolver(resolver.clone())
            .answer_cache(cache);
        let reqwest = ReqwestResolver::new(connector);
        let expected: Vec<SocketAddr> = vec!["127.0.0.1:0".parse().unwrap()];
        assert_eq!(resolve(&reqwest, "stale.test").await.unwrap(), expected);
        tokio::time::sleep(Duration::from_secs(1)).await;
        let began = tokio::time::Instant::now();
        assert_eq!(resolve(&reqwest, "stale.test").await.unwrap(), expected);
        assert_eq!(
            began.elapsed(),
            Duration::ZERO,
            "not waiting for the silent refresh"
        );
        // The refresh asks the resolver once its task first runs.
        tokio::task::yield_now().await;
        assert_eq!(resolver.0.load(std::sync::atomic::Ordering::SeqCst), 2);
    }

    /// Names are resolved as port 0, as documented: a policy sees port 0, an override for one
    /// port does not apply, an override for any port does, and messages name the host alone.
    #[tokio::test(start_paused = true)]
    async fn names_are_resolved_as_port_zero() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let record = seen.clone();
        let policy = AddressPolicy::custom(move |addr| {
            record.lock().unwrap().push(addr.port());
            false
        });
        let pinned: SocketAddr = "127.0.0.9:0".parse().unwrap();
        let one_port: SocketAddr = "127.0.0.8:0".parse().unwrap();
        let connector = Connector::new()
            .resolver(SlowA)
            .resolve_override("pinned.test", None, [pinned])
            .resolve_override("one-port.test", Some(1), [one_port]);
        let open = ReqwestResolver::new(connector.clone());
        assert_eq!(resolve(&open, "pinned.test").await.unwrap(), [pinned]);
        let not_overridden = resolve(&open, "one-port.test").await.unwrap();
        assert!(!not_overridden.contains(&one_port), "{not_overridden:?}");

        let guarded = ReqwestResolver::new(connector.address_policy(policy));
        let error = resolve(&guarded, "pinned.test").await.unwrap_err();
        assert_eq!(*seen.lock().unwrap(), [0]);
        assert_eq!(
            error,
            "every address of pinned.test is denied by the address policy"
        );
    }

    /// reqwest's sealed request, as it prints.
    #[derive(Debug)]
    struct Unnameable(#[allow(dead_code)] http::Uri);

    #[test]
    fn destinations_are_read_from_the_sealed_request() {
        let read = |uri: &str| match uri.parse() {
            Ok(uri) => destination(&Unnameable(uri)),
            Err(_) => destination(&uri),
        };
        let literal = read("http://127.0.0.1:8080/").unwrap();
        assert_eq!(literal.addrs(), ["127.0.0.1:8080".parse().unwrap()]);
        let v6 = read("https://[::ffff:127.0.0.1]/").unwrap();
        assert_eq!(v6.addrs(), ["[::ffff:127.0.0.1]:443".parse().unwrap()]);
        let name = read("http://example.test/").unwrap();
        assert_eq!(name.host(), Some("example.test"));
        assert_eq!(name.port(), Some(80));
        assert!(read("not a uri").is_err(), "unreadable: refused");
        assert!(destination(&"no parenthesis").is_err());
    }
}
