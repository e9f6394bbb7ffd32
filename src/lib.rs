#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![warn(
    missing_docs,
    missing_debug_implementations,
    rust_2018_idioms,
    unreachable_pub
)]

mod answers;
mod attempts;
mod blocking_pool;
mod connector;
mod error;
mod expiring;
mod gather;
mod getaddrinfo;
#[cfg(feature = "hickory")]
mod hickory;
mod history;
mod host;
mod human;
#[cfg(feature = "hyper")]
mod hyper;
#[cfg(feature = "hyper")]
mod hyper_resolver;
mod limits;
mod lookups;
mod pipeline;
mod policy;
mod race;
#[cfg(feature = "reqwest")]
mod reqwest_dns;
mod resolve;
#[cfg(feature = "hickory")]
mod rfc6724;
mod running;
mod socket;
mod sync;
mod system;
mod target;

pub use answers::{Answer, Answering, Family, FamilyErrors};
pub use attempts::{Attempt, Attempts};
pub use connector::{Connector, Strategy, TcpDialer};
pub use error::{ConnectError, Stage};
#[cfg(feature = "hickory")]
pub use hickory::HickoryResolver;
#[cfg(feature = "hyper")]
pub use hyper::{Connecting, HyperConnector};
#[cfg(feature = "hyper")]
pub use hyper_resolver::ServiceResolver;
pub use policy::{AddressPolicy, is_public};
#[cfg(feature = "reqwest")]
pub use reqwest_dns::{ReqwestGuard, ReqwestGuardService, ReqwestResolver};
pub use resolve::{IpFamilies, Resolve, Resolving};
pub use socket::Keepalive;
pub use system::SystemResolver;
pub use target::{IntoTarget, Target, TargetError};

use tokio::net::TcpStream;

/// Connects to `target` with Happy Eyeballs and the default settings (see [`Connector::new`]).
///
/// `target` is anything [`IntoTarget`] accepts: `"host:port"`, `"[v6]:port"`, `(host, port)`,
/// a `SocketAddr`, or a pre-resolved list. IP literals are never sent to DNS.
///
/// # Errors
///
/// A [`ConnectError`] saying what happened at every address.
///
/// # Cancel safety
///
/// Dropping the future cancels every attempt and closes every socket it opened.
pub fn connect_any(
    target: impl IntoTarget,
) -> impl std::future::Future<Output = Result<TcpStream, ConnectError>> + Send + 'static {
    connector::default_connector().connect(target)
}

/// A setter's result left unused is a warning (denied here, so the snippet must fail):
///
/// ```compile_fail
/// #![deny(unused_must_use)]
/// let connector = connect_any::Connector::new();
/// connector.clone().nodelay(true);
/// ```
///
/// ```compile_fail
/// #![deny(unused_must_use)]
/// connect_any::Keepalive::new().retries(3);
/// ```
///
/// And used, it is not:
///
/// ```
/// #![deny(unused_must_use)]
/// let connector = connect_any::Connector::new();
/// let _tuned = connector.clone().nodelay(true);
/// ```
#[cfg(doctest)]
struct MustUseDoctests;
