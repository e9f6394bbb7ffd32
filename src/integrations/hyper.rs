//! A connector for hyper-util's legacy client (feature `hyper`).

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use http::Uri;
use hyper_util::client::legacy::connect::{Connected, Connection};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use crate::connector::Connector;
use crate::error::ConnectError;
use crate::report::ConnectReport;
use crate::resolve::service::record::Service;
use crate::target::error::TargetError;
use crate::target::{IntoTarget, Target};

/// A `tower_service::Service<Uri>` that connects with a [`Connector`]: a drop-in replacement
/// for hyper-util's `HttpConnector` in `hyper_util::client::legacy::Client`.
///
/// The host and port come from the URI: brackets are stripped from IPv6 hosts, and a missing
/// port defaults by scheme (80 for `http` and `ws`, 443 for `https` and `wss`; schemes compare
/// without case). The stream is a plain TCP stream, as with `HttpConnector`; its `Connected`
/// info carries hyper-util's `HttpInfo` (remote and local address).
///
/// An `https` URI's target is given [`Service::https`](crate::Service::https) speaking `h2`
/// and `http/1.1`: with a resolver that asks for HTTPS records
/// ([`HickoryResolver`](crate::HickoryResolver)), their endpoints are dialed by priority, at
/// their ports (see [`Target::with_service`](crate::Target::with_service)). The ALPN and ECH
/// they carry are the TLS layer's, which this connector does not reach.
///
/// By default only `http` and `ws` URIs are accepted: any other (`https`, `wss`, none) fails
/// with [`TargetError::SchemeNotHttp`] before anything is resolved or dialed, so that an
/// `https` request is never sent in clear text by mistake. A TLS connector that wraps this one
/// (such as hyper-rustls) needs [`enforce_http(false)`](Self::enforce_http).
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
#[cfg_attr(docsrs, doc(cfg(feature = "hyper")))]
#[derive(Clone, Debug)]
#[must_use = "a connector does nothing until it is given to a client"]
pub struct HyperConnector {
    connector: Connector,
    enforce_http: bool,
}

impl Default for HyperConnector {
    fn default() -> Self {
        Self::new(Connector::default())
    }
}

impl HyperConnector {
    /// Connects with `connector`'s settings.
    pub fn new(connector: Connector) -> Self {
        Self {
            connector,
            enforce_http: true,
        }
    }

    /// Whether URIs whose scheme is not `http` or `ws` are refused, as hyper-util's
    /// `HttpConnector::enforce_http`. Turn it off only when a TLS connector wraps this one.
    /// Default is `true`.
    pub fn enforce_http(mut self, enforce: bool) -> Self {
        self.enforce_http = enforce;
        self
    }
}

/// The ALPN ids hyper's client speaks over TCP.
const TCP_PROTOCOLS: [&str; 2] = ["h2", "http/1.1"];

/// Whether `uri` may go out over plain TCP: `http` and `ws`, in any case.
fn is_plaintext_scheme(uri: &Uri) -> bool {
    uri.scheme_str().is_some_and(|scheme| {
        ["http", "ws"]
            .iter()
            .any(|s| scheme.eq_ignore_ascii_case(s))
    })
}

impl From<Connector> for HyperConnector {
    fn from(connector: Connector) -> Self {
        Self::new(connector)
    }
}

/// The future a [`HyperConnector`] returns.
#[cfg_attr(docsrs, doc(cfg(feature = "hyper")))]
pub type Connecting =
    Pin<Box<dyn Future<Output = Result<TokioIo<HyperStream>, ConnectError>> + Send>>;

/// The connection a [`HyperConnector`] hands to hyper: the TCP stream, with the
/// [`ConnectReport`] of its connect.
///
/// Its [`Connection::connected`] carries hyper-util's `HttpInfo` (as for a plain
/// `TcpStream`) and the report, so that after a request on the legacy client
/// `response.extensions().get::<ConnectReport>()` says how the connection was made: which
/// address won, whether it was a fallback, what each attempt did.
#[cfg_attr(docsrs, doc(cfg(feature = "hyper")))]
#[derive(Debug)]
pub struct HyperStream {
    stream: TcpStream,
    report: ConnectReport,
}

impl HyperStream {
    /// The TCP stream.
    pub fn get_ref(&self) -> &TcpStream {
        &self.stream
    }

    /// The report of the connect that made it.
    pub fn report(&self) -> &ConnectReport {
        &self.report
    }

    /// The TCP stream, without the report.
    pub fn into_inner(self) -> TcpStream {
        self.stream
    }
}

impl Connection for HyperStream {
    fn connected(&self) -> Connected {
        self.stream.connected().extra(self.report.clone())
    }
}

impl AsyncRead for HyperStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for HyperStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

impl tower_service::Service<Uri> for HyperConnector {
    type Response = TokioIo<HyperStream>;
    type Error = ConnectError;
    type Future = Connecting;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        if self.enforce_http && !is_plaintext_scheme(&uri) {
            let refused = ConnectError::InvalidTarget {
                input: uri.to_string(),
                cause: TargetError::SchemeNotHttp,
            };
            return Box::pin(std::future::ready(Err(refused)));
        }
        let connecting = self.connector.connect_reported(&uri);
        Box::pin(async move {
            let (stream, report) = connecting.await?;
            Ok(TokioIo::new(HyperStream { stream, report }))
        })
    }
}

/// A URI's host and port (see [`HyperConnector`] for the defaults).
impl IntoTarget for &Uri {
    fn into_target_or_input(self) -> Result<Target, (TargetError, String)> {
        self.into_target()
            .map_err(|error| (error, self.to_string()))
    }

    fn into_target(self) -> Result<Target, TargetError> {
        let host = self.host().ok_or(TargetError::EmptyHost)?;
        let scheme = self.scheme_str().map(str::to_ascii_lowercase);
        let port = match (self.port_u16(), scheme.as_deref()) {
            (Some(port), _) => port,
            (None, Some("http" | "ws")) => 80,
            (None, Some("https" | "wss")) => 443,
            (None, _) => return Err(TargetError::UnknownScheme),
        };
        // In a URI a zone's `%` is always written `%25` (RFC 6874).
        let target = match host.split_once("%25") {
            Some((ip, zone)) => Target::from_host_port(&format!("{ip}%{zone}"), port)?,
            None => Target::from_host_port(host, port)?,
        };
        // The TLS layer above speaks HTTP over TCP: records for QUIC alone are skipped.
        Ok(match scheme.as_deref() {
            Some("https") => target.with_service(Service::https().protocols(TCP_PROTOCOLS)),
            _ => target,
        })
    }
}

impl IntoTarget for Uri {
    fn into_target(self) -> Result<Target, TargetError> {
        (&self).into_target()
    }

    fn into_target_or_input(self) -> Result<Target, (TargetError, String)> {
        (&self).into_target_or_input()
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
        let https = Service::https().protocols(TCP_PROTOCOLS);
        assert_eq!(
            target("https://example.com"),
            Target::from_host_port("example.com", 443).map(|t| t.with_service(https))
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
        assert_eq!(
            target("WS://example.com/"),
            Target::from_host_port("example.com", 80)
        );
        assert!(target("https://example.com/").unwrap().service().is_some());
        assert!(target("http://example.com/").unwrap().service().is_none());
        let zoned = target("http://[fe80::1%251]:8080/").unwrap();
        assert!(matches!(zoned.addrs(), [std::net::SocketAddr::V6(a)] if a.scope_id() == 1));
    }

    #[test]
    fn only_plaintext_schemes_pass_enforce_http() {
        let plaintext = |uri: &str| is_plaintext_scheme(&uri.parse().unwrap());
        for uri in ["http://a/", "HTTP://a/", "ws://a/", "Ws://a:1/"] {
            assert!(plaintext(uri), "{uri}");
        }
        for uri in [
            "https://a/",
            "HTTPS://a/",
            "wss://a/",
            "WSS://a/",
            "ftp://a:1/",
            "a:1",
        ] {
            assert!(!plaintext(uri), "{uri}");
        }
    }
}
