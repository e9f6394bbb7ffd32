//! A connector for hyper-util's legacy client (feature `hyper`).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use http::Uri;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::connector::Connector;
use crate::error::ConnectError;
use crate::target::{IntoTarget, Target, TargetError};

/// A `tower_service::Service<Uri>` that connects with a [`Connector`]: a drop-in replacement
/// for hyper-util's `HttpConnector` in `hyper_util::client::legacy::Client`.
///
/// The host and port come from the URI: brackets are stripped from IPv6 hosts, and a missing
/// port defaults by scheme (80 for `http` and `ws`, 443 for `https` and `wss`). The stream is a
/// plain TCP stream, as with `HttpConnector`: wrap it in a TLS connector for `https`. Its
/// `Connected` info carries hyper-util's `HttpInfo` (remote and local address).
///
/// # Examples
///
/// ```no_run
/// use connect_any::{Connector, HyperConnector};
/// use http_body_util::Empty;
/// use hyper::body::Bytes;
/// use hyper_util::client::legacy::Client;
/// use hyper_util::rt::TokioExecutor;
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let connector = HyperConnector::new(Connector::new().nodelay(true));
/// let client = Client::builder(TokioExecutor::new()).build::<_, Empty<Bytes>>(connector);
/// let response = client.get("http://localhost:8080/".parse()?).await?;
/// # drop(response);
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug, Default)]
pub struct HyperConnector {
    connector: Connector,
}

impl HyperConnector {
    /// Connects with `connector`'s settings.
    pub fn new(connector: Connector) -> Self {
        Self { connector }
    }
}

impl From<Connector> for HyperConnector {
    fn from(connector: Connector) -> Self {
        Self::new(connector)
    }
}

/// The future a [`HyperConnector`] returns.
pub type Connecting =
    Pin<Box<dyn Future<Output = Result<TokioIo<TcpStream>, ConnectError>> + Send>>;

impl tower_service::Service<Uri> for HyperConnector {
    type Response = TokioIo<TcpStream>;
    type Error = ConnectError;
    type Future = Connecting;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let connector = self.connector.clone();
        Box::pin(async move {
            let stream = connector.connect(&uri).await?;
            Ok(TokioIo::new(stream))
        })
    }
}

/// A URI's host and port (see [`HyperConnector`] for the defaults).
impl IntoTarget for &Uri {
    fn into_target(self) -> Result<Target, TargetError> {
        let host = self.host().ok_or(TargetError::EmptyHost)?;
        let port = match (self.port_u16(), self.scheme_str()) {
            (Some(port), _) => port,
            (None, Some("http" | "ws")) => 80,
            (None, Some("https" | "wss")) => 443,
            (None, _) => return Err(TargetError::UnknownScheme),
        };
        Target::from_host_port(host, port)
    }
}

impl IntoTarget for Uri {
    fn into_target(self) -> Result<Target, TargetError> {
        (&self).into_target()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(uri: &str) -> Result<Target, TargetError> {
        uri.parse::<Uri>().unwrap().into_target()
    }

    #[test]
    fn host_and_port_from_the_uri() {
        assert_eq!(
            target("http://example.com/x"),
            Target::from_host_port("example.com", 80)
        );
        assert_eq!(
            target("https://example.com"),
            Target::from_host_port("example.com", 443)
        );
        assert_eq!(
            target("wss://example.com:8443/"),
            Target::from_host_port("example.com", 8443)
        );
        let v6 = target("http://[::1]:8080/").unwrap();
        assert_eq!(v6.addrs(), &["[::1]:8080".parse().unwrap()]);
        assert_eq!(
            target("ftp://example.com/"),
            Err(TargetError::UnknownScheme)
        );
        assert_eq!(
            target("ftp://example.com:21/"),
            Target::from_host_port("example.com", 21)
        );
        assert_eq!(target("/relative/path"), Err(TargetError::EmptyHost));
    }
}
