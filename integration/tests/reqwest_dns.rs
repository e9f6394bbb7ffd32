//! reqwest with a connector's resolver and guard: the address policy holds for every form a
//! destination takes, names, IP literals and redirects.

use std::sync::atomic::Ordering;

use connect_any::{AddressPolicy, ConnectError, Connector, ReqwestResolver};
use connect_any_integration::{counted_http_server, http_server, redirecting_server};

fn client(connector: Connector) -> reqwest::Client {
    ReqwestResolver::new(connector)
        .install(reqwest::Client::builder())
        .no_proxy()
        .build()
        .unwrap()
}

/// The addresses the policy refused, from anywhere in the error's chain.
fn refused_by_policy(error: &reqwest::Error) -> Option<Vec<std::net::SocketAddr>> {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(cause) = source {
        if let Some(ConnectError::Denied { refused, .. }) = cause.downcast_ref::<ConnectError>() {
            return Some(refused.clone());
        }
        source = cause.source();
    }
    None
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
    let refused =
        refused_by_policy(&error).unwrap_or_else(|| panic!("not refused by the policy: {error:?}"));
    assert_eq!(refused.len(), 1);
    assert!(refused[0].ip().is_loopback());
}

/// reqwest never asks a resolver about an IP literal: the guard judges it before any dial.
#[tokio::test]
async fn literals_in_every_form_are_refused_before_any_connect() {
    let (server, accepted) = counted_http_server("127.0.0.1").await;
    let port = server.port();
    let guarded = client(Connector::new().address_policy(AddressPolicy::deny_non_public()));
    for host in [
        "127.0.0.1",
        "2130706433",
        "0x7f.1",
        "[::ffff:127.0.0.1]",
        "127.1",
    ] {
        let url = format!("http://{host}:{port}/");
        let error = guarded.get(&url).send().await.unwrap_err();
        let refused = refused_by_policy(&error)
            .unwrap_or_else(|| panic!("{url} was not refused by the policy: {error:?}"));
        println!("{url}: refused {refused:?}");
        assert_eq!(refused.len(), 1, "{url}");
    }
    assert_eq!(accepted.load(Ordering::SeqCst), 0, "nothing was dialed");

    // The same client still reaches what the policy allows.
    let open = client(Connector::new());
    let response = open.get(format!("http://127.0.0.1:{port}/")).send().await;
    assert_eq!(response.unwrap().status(), 200);
    assert_eq!(accepted.load(Ordering::SeqCst), 1);
}

/// A redirect from an allowed name to a refused literal is not followed into it.
#[tokio::test]
async fn a_redirect_to_a_refused_literal_is_refused() {
    let (inside, accepted) = counted_http_server("127.0.0.2").await;
    let outside = redirecting_server("127.0.0.1", format!("http://{inside}/")).await;
    // Only the redirecting server's address is allowed; the literal it points to is not.
    let allowed = outside.ip();
    let connector = Connector::new()
        .resolve_override("public.test", None, [outside])
        .address_policy(AddressPolicy::custom(move |addr| addr.ip() == allowed));
    let url = format!("http://public.test:{}/", outside.port());
    let error = client(connector).get(&url).send().await.unwrap_err();
    let refused = refused_by_policy(&error)
        .unwrap_or_else(|| panic!("the redirect was not refused: {error:?}"));
    assert_eq!(refused, [inside]);
    assert_eq!(
        accepted.load(Ordering::SeqCst),
        0,
        "the literal was never dialed"
    );

    // Without the policy, the redirect is followed to the same server.
    let open = Connector::new().resolve_override("public.test", None, [outside]);
    let response = client(open).get(&url).send().await.unwrap();
    assert_eq!(response.text().await.unwrap(), "hello from connect-any");
    assert_eq!(accepted.load(Ordering::SeqCst), 1);
}

/// Through a proxy, a literal destination is still judged before anything is dialed, the
/// proxy included.
#[tokio::test]
async fn a_literal_through_a_proxy_is_refused() {
    let (proxy, proxied) = counted_http_server("127.0.0.1").await;
    let guarded =
        ReqwestResolver::new(Connector::new().address_policy(AddressPolicy::deny_non_public()))
            .install(reqwest::Client::builder())
            .proxy(reqwest::Proxy::http(format!("http://{proxy}")).unwrap())
            .build()
            .unwrap();
    let error = guarded
        .get("http://127.0.0.3:8080/")
        .send()
        .await
        .unwrap_err();
    assert!(refused_by_policy(&error).is_some(), "{error:?}");
    assert_eq!(
        proxied.load(Ordering::SeqCst),
        0,
        "the proxy was never dialed"
    );
}
