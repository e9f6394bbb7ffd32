#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![warn(
    missing_docs,
    missing_debug_implementations,
    rust_2018_idioms,
    unreachable_pub
)]

// The model check's shared code (`tests/model`) names the crate, in its unit tests too.
#[cfg(test)]
extern crate self as connect_any;

mod connector;
mod error;
mod human;
#[cfg(any(feature = "hyper", feature = "reqwest"))]
mod integrations;
mod limits;
mod order;
mod race;
mod report;
mod resolve;
mod sync;
mod target;

pub use connector::settings::Strategy;
pub use connector::socket::Keepalive;
pub use connector::{Connector, TcpDialer};
pub use error::{ConnectError, Stage};
#[cfg(feature = "hyper")]
pub use integrations::hyper::{Connecting, HyperConnector, HyperStream};
#[cfg(feature = "hyper")]
pub use integrations::hyper_resolver::ServiceResolver;
#[cfg(feature = "reqwest")]
pub use integrations::reqwest::{ReqwestGuard, ReqwestGuardService, ReqwestResolver};
pub use order::admission::IpFamilies;
pub use order::policy::{AddressPolicy, is_public};
pub use race::attempts::{Attempt, Attempts};
pub use report::event::{ConnectEvent, EventKind};
pub use report::{AddressSource, AnswerRecord, AttemptOutcome, AttemptRecord, ConnectReport};
pub use resolve::answers::{Answer, Answering, Family, FamilyErrors};
pub use resolve::cache::AnswerCache;
#[cfg(feature = "hickory")]
pub use resolve::hickory::HickoryResolver;
pub use resolve::nat64::{Nat64, Nat64Prefix, Nat64PrefixError};
pub use resolve::service::endpoint::Endpoint;
pub use resolve::service::record::{Service, ServiceRecord};
pub use resolve::system::SystemResolver;
pub use resolve::{Resolve, Resolving};
pub use target::error::TargetError;
pub use target::{IntoTarget, Target};

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
