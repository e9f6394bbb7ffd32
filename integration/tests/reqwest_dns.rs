//! reqwest with a connector's resolver: the address policy guards its requests.

use connect_any::{AddressPolicy, ConnectError, Connector, ReqwestResolver};
use connect_any_integration::http_server;

fn client(connector: Connector) -> reqwest::Client {
    reqwest::Client::builder()
        .dns_resolver(ReqwestResolver::new(connector).into_arc())
        .no_proxy()
        .build()
        .unwrap()
}

#[tokio::test]
async fn the_address_policy_guards_reqwest() {
    let server = http_server("127.0.0.1").await;
    let url = format!("http://internal.test:{}/", server.port());
    // The name resolves to the loopback server; port 0 takes the request's port.
    let loopback = std::net::SocketAddr::new(server.ip(), 0);
    let pinned = Connector::new().resolve_override("internal.test", None, [loopback]);

    let open = client(pinned.clone().address_policy(AddressPolicy::allow_all()));
    let response = open.get(&url).send().await.unwrap();
    println!("reqwest with allow_all: {}", response.status());
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), "hello from connect-any");

    let guarded = client(pinned.address_policy(AddressPolicy::deny_non_public()));
    let error = guarded.get(&url).send().await.unwrap_err();
    let mut chain = error.to_string();
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        chain = format!("{chain}: {cause}");
        source = cause.source();
    }
    println!("reqwest with deny_non_public: {chain}");
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&error);
    let mut denied = None;
    while let Some(cause) = source {
        if let Some(ConnectError::Denied { refused, .. }) = cause.downcast_ref::<ConnectError>() {
            denied = Some(refused.clone());
        }
        source = cause.source();
    }
    let refused = denied.unwrap_or_else(|| panic!("not refused by the policy: {error:?}"));
    assert_eq!(refused.len(), 1);
    assert!(refused[0].ip().is_loopback());
}
