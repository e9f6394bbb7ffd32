//! hyper-util style resolvers (feature `hyper`): a `tower_service::Service<Name>` as a
//! [`Resolve`].

use std::error::Error as StdError;
use std::future::poll_fn;
use std::io;
use std::net::SocketAddr;
use std::str::FromStr;

use hyper_util::client::legacy::connect::dns::Name;
use tower_service::Service;

use crate::resolve::{Resolve, Resolving};

/// A resolver in hyper-util's shape, a `tower_service::Service<Name>` that answers an iterator
/// of `SocketAddr`s (what `HttpConnector::new_with_resolver` takes, such as hyper-util's
/// `GaiResolver`), used as a connector's [`Resolve`]: the swap from `new_with_resolver(r)` is
/// `Connector::new().resolver(ServiceResolver::new(r))`.
///
/// Each lookup clones the service, waits for `poll_ready`, then calls it. An address answered
/// with port 0 (hyper-util's resolvers answer so) takes the target's port. The service's error
/// becomes the lookup's `io::Error`, kept as its inner error.
///
/// # Examples
///
/// ```
/// use connect_any::{Connector, ServiceResolver};
/// use hyper_util::client::legacy::connect::dns::GaiResolver;
///
/// let connector = Connector::new().resolver(ServiceResolver::new(GaiResolver::new()));
/// # drop(connector);
/// ```
#[cfg_attr(docsrs, doc(cfg(feature = "hyper")))]
#[derive(Clone, Debug)]
#[must_use = "a resolver does nothing until it is given to a Connector"]
pub struct ServiceResolver<S> {
    service: S,
}

impl<S> ServiceResolver<S> {
    /// Resolves with `service`.
    pub fn new(service: S) -> Self {
        Self { service }
    }
}

impl<S> Resolve for ServiceResolver<S>
where
    S: Service<Name> + Clone + Send + Sync + 'static,
    S::Response: Iterator<Item = SocketAddr>,
    S::Error: Into<Box<dyn StdError + Send + Sync>>,
    S::Future: Send,
{
    fn resolve<'a>(&'a self, host: &'a str, port: u16) -> Resolving<'a> {
        let mut service = self.service.clone();
        Box::pin(async move {
            let name =
                Name::from_str(host).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
            poll_fn(|cx| service.poll_ready(cx))
                .await
                .map_err(service_error)?;
            let answer = service.call(name).await.map_err(service_error)?;
            Ok(answer
                .map(|mut addr| {
                    if addr.port() == 0 {
                        addr.set_port(port);
                    }
                    addr
                })
                .collect())
        })
    }
}

/// The service's error as an `io::Error`: an `io::Error` as it is, anything else inside one.
fn service_error(error: impl Into<Box<dyn StdError + Send + Sync>>) -> io::Error {
    match error.into().downcast::<io::Error>() {
        Ok(io) => *io,
        Err(other) => io::Error::other(other),
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;
    use std::future::Ready;
    use std::task::{Context, Poll};

    use super::*;
    use crate::connector::Connector;

    /// Answers every name with loopback, port 0, as hyper-util resolvers do.
    #[derive(Clone)]
    struct Loopback;

    impl Service<Name> for Loopback {
        type Response = std::vec::IntoIter<SocketAddr>;
        type Error = Infallible;
        type Future = Ready<Result<Self::Response, Infallible>>;

        fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
            Poll::Ready(Ok(()))
        }

        fn call(&mut self, _: Name) -> Self::Future {
            std::future::ready(Ok(vec![SocketAddr::from(([127, 0, 0, 1], 0))].into_iter()))
        }
    }

    #[tokio::test]
    async fn a_hyper_util_resolver_answers_a_connect() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let connector = Connector::new().resolver(ServiceResolver::new(Loopback));
        let stream = connector.connect(("anything.test", port)).await.unwrap();
        assert_eq!(stream.peer_addr().unwrap(), listener.local_addr().unwrap());
    }

    #[test]
    fn errors_keep_an_io_error_as_it_is() {
        let refused = service_error(io::Error::from(io::ErrorKind::NotFound));
        assert_eq!(refused.kind(), io::ErrorKind::NotFound);
        let other = service_error("no such zone");
        assert_eq!(other.to_string(), "no such zone");
    }
}
