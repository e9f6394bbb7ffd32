//! A resolver for reqwest (feature `reqwest`).

use std::net::SocketAddr;
use std::sync::Arc;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

use crate::connector::Connector;
use crate::pipeline;
use crate::target::Target;

/// A [`reqwest::dns::Resolve`] that answers through a [`Connector`]'s resolver, overrides,
/// family filter and [address policy](crate::AddressPolicy), so that a reqwest client gets the
/// same answers, and the same SSRF guard, as the connector.
///
/// reqwest still dials with its own connector: the connector's race, attempt delay, socket
/// options and winner memory do not apply, only what decides the addresses. reqwest does not
/// tell a resolver the port, so [`resolve_override`](Connector::resolve_override)s made for one
/// port do not apply (those for any port do), and a custom policy sees port 0. A refused or
/// failed lookup fails the request with the [`ConnectError`](crate::ConnectError) as its cause.
///
/// # Examples
///
/// ```no_run
/// use connect_any::{AddressPolicy, Connector, ReqwestResolver};
///
/// let connector = Connector::new().address_policy(AddressPolicy::deny_non_public());
/// let client = reqwest::Client::builder()
///     .dns_resolver(ReqwestResolver::new(connector).into_arc())
///     .build()
///     .unwrap();
/// # drop(client);
/// ```
#[derive(Clone, Debug)]
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
}

impl Resolve for ReqwestResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let settings = self.connector.settings().clone();
        // Any port will do: reqwest sets its own on every address returned.
        let target = Target::from_host_port(name.as_str(), 1);
        Box::pin(async move {
            let target = target.map_err(crate::ConnectError::from)?;
            let addrs = pipeline::lookup(&settings, &target).await?;
            let addrs = addrs.into_iter().map(|a| SocketAddr::new(a.ip(), 0));
            Ok(Box::new(addrs.collect::<Vec<_>>().into_iter()) as Addrs)
        })
    }
}
