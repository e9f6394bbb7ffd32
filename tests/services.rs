//! Resolver overrides and the address policy, through real loopback sockets (and a scripted
//! dialer where "nothing was dialed" must be proven).

mod common;

use std::io::ErrorKind;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use common::{FixedResolver, Script, Step, listener, ms, refused_addr, v4};
use connect_any::{AddressPolicy, ConnectError, Connector};
use tokio::net::TcpListener;

/// Whether `listener` accepts a connection within 200 ms.
async fn was_dialed(listener: &TcpListener) -> bool {
    tokio::time::timeout(Duration::from_millis(200), listener.accept())
        .await
        .is_ok()
}

#[tokio::test]
async fn an_override_never_reaches_the_resolver_and_races_in_order() {
    let resolver = Arc::new(FixedResolver::default());
    let (_listener, working) = listener("127.0.0.2").await;
    let refused = refused_addr("127.0.0.3");
    let connector = Connector::new()
        .resolver(resolver.clone())
        .resolve_override("Pinned.Test", Some(working.port()), [refused, working]);
    let stream = connector
        .connect(("pinned.test.", working.port()))
        .await
        .unwrap();
    assert_eq!(stream.peer_addr().unwrap(), working);
    assert_eq!(
        resolver.calls.load(Ordering::SeqCst),
        0,
        "the name never reached the resolver"
    );

    // Another port of the same name is not overridden and goes to the resolver.
    let error = connector.connect(("pinned.test", 9)).await.unwrap_err();
    assert!(matches!(error, ConnectError::Resolve { .. }), "{error:?}");
    assert_eq!(resolver.calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn an_any_port_override_gives_port_0_addresses_the_target_port() {
    let (_listener, working) = listener("127.0.0.4").await;
    let any_port = SocketAddr::new(working.ip(), 0);
    let connector = Connector::new().resolve_override("anyport.test", None, [any_port]);
    let stream = connector
        .connect(format!("anyport.test:{}", working.port()))
        .await
        .unwrap();
    assert_eq!(stream.peer_addr().unwrap(), working);
}

#[tokio::test]
async fn a_name_resolving_to_loopback_is_denied_and_nothing_is_dialed() {
    let (listener, addr) = listener("127.0.0.1").await;
    let connector = Connector::new()
        .resolver(FixedResolver::new("rebind.test", &[addr]))
        .address_policy(AddressPolicy::deny_non_public());
    let error = connector.connect("rebind.test:1").await.unwrap_err();
    let ConnectError::Denied { host, refused, .. } = &error else {
        panic!("expected denial, got {error:?}");
    };
    assert_eq!(
        (host.as_str(), refused.as_slice()),
        ("rebind.test:1", &[addr][..])
    );
    assert_eq!(
        error.to_string(),
        "every address of rebind.test:1 is denied by the address policy"
    );
    assert!(!was_dialed(&listener).await, "a denied address was dialed");
    assert_eq!(
        std::io::Error::from(error).kind(),
        ErrorKind::PermissionDenied
    );

    // The same for an IP literal, a list and an override: the policy sees every address.
    let literal = connector.connect(addr.to_string()).await.unwrap_err();
    assert!(
        matches!(literal, ConnectError::Denied { .. }),
        "{literal:?}"
    );
    let list = connector
        .connect(vec![addr, SocketAddr::new(addr.ip(), 9)])
        .await
        .unwrap_err();
    assert!(
        matches!(&list, ConnectError::Denied { refused, .. } if refused.len() == 2),
        "{list:?}"
    );
    let overridden = connector
        .clone()
        .resolve_override("pinned.test", None, [addr]);
    let error = overridden.connect("pinned.test:1").await.unwrap_err();
    assert!(matches!(error, ConnectError::Denied { .. }), "{error:?}");
    assert!(!was_dialed(&listener).await);
}

#[tokio::test(start_paused = true)]
async fn denied_addresses_are_never_dialed_while_allowed_ones_are() {
    let script = Script::new(&[(v4(1), Step::Connect(ms(1))), (v4(2), Step::Connect(ms(1)))]);
    let policy = AddressPolicy::custom(|addr| addr.port() != 1);
    let connector = Connector::new().address_policy(policy);
    let won = connector
        .connect_with(vec![v4(1), v4(2)], script.dialer())
        .await
        .unwrap();
    assert_eq!(won.addr, v4(2));
    assert_eq!(
        script.starts().len(),
        1,
        "only the allowed address was dialed"
    );

    let error = connector
        .connect_with(v4(1), script.dialer())
        .await
        .unwrap_err();
    assert!(matches!(error, ConnectError::Denied { .. }), "{error:?}");
    assert_eq!(script.starts().len(), 1);
}
