//! `HyperConnector` under hyper-rustls: a GET over TLS to a local rustls server with a
//! self-signed certificate, by a name the connector overrides.

use std::time::Duration;

use connect_any::{ConnectError, Connector, HyperConnector};
use connect_any_integration::{TLS_NAME, TestCert, https_server};
use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

#[tokio::test]
async fn a_get_over_tls_through_hyper_rustls() {
    let cert = TestCert::new();
    let server = https_server("127.0.0.1", &cert).await;
    let connector = Connector::new()
        .timeout(Some(Duration::from_secs(10)))
        .resolve_override(TLS_NAME, None, [server]);
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(cert.client_config())
        .https_only()
        .enable_http1()
        .wrap_connector(HyperConnector::new(connector.clone()).enforce_http(false));
    let client = Client::builder(TokioExecutor::new()).build::<_, Empty<Bytes>>(https);
    let uri = format!("https://{TLS_NAME}:{}/", server.port())
        .parse()
        .unwrap();
    let response = client.get(uri).await.unwrap();
    let status = response.status();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    println!(
        "hyper-rustls GET: {status}, {:?}",
        String::from_utf8_lossy(&body)
    );
    assert_eq!(status, 200);
    assert_eq!(&body[..], b"hello from connect-any");

    // Without enforce_http(false) the inner connector refuses to carry https itself.
    let strict = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(cert.client_config())
        .https_only()
        .enable_http1()
        .wrap_connector(HyperConnector::new(connector));
    let client = Client::builder(TokioExecutor::new()).build::<_, Empty<Bytes>>(strict);
    let uri = format!("https://{TLS_NAME}:{}/", server.port())
        .parse()
        .unwrap();
    let error = client.get(uri).await.unwrap_err();
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&error);
    let mut refused = false;
    while let Some(cause) = source {
        refused |= matches!(
            cause.downcast_ref::<ConnectError>(),
            Some(ConnectError::InvalidTarget { .. })
        );
        source = cause.source();
    }
    assert!(refused, "{error:?}");
}
