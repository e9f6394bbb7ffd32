//! What a new user writes compiles and does what it says: durations as written, every target
//! form tokio's `ToSocketAddrs` takes, resolvers behind `Arc` and `Box`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use connect_any::{Connector, IntoTarget, Keepalive, Resolve, SystemResolver, Target};
use tokio_util::sync::CancellationToken;

/// Each setter takes the plain value and `None` where "none" means something.
#[test]
fn setters_take_what_a_user_writes() {
    let _ = Connector::new()
        .timeout(Duration::from_secs(1))
        .timeout(None)
        .attempt_timeout(Duration::from_millis(500))
        .attempt_timeout(Some(Duration::MAX))
        .resolve_timeout(Duration::from_secs(2))
        .attempt_delay(None)
        .attempt_delay(Duration::from_millis(100))
        .resolution_delay(Duration::from_millis(25))
        .resolution_delay(None)
        .winner_memory(16, None)
        .winner_memory(16, Duration::from_secs(60))
        .keepalive(Keepalive::new().idle(Duration::from_secs(30)))
        .keepalive(None)
        .tcp_user_timeout(Duration::from_secs(30))
        .send_buffer_size(64 * 1024)
        .recv_buffer_size(None)
        .local_address_v4(Ipv4Addr::LOCALHOST)
        .local_address_v6(None)
        .bind_device("lo")
        .bind_device(None)
        .cancellation_token(CancellationToken::new())
        .cancellation_token(None);
}

/// Every form tokio's `ToSocketAddrs` accepts is a target, and names the same address.
#[test]
fn every_tokio_target_form_is_accepted() {
    let addr = SocketAddr::from(([127, 0, 0, 1], 8080));
    let v6 = SocketAddr::from((Ipv6Addr::LOCALHOST, 8080));
    let host = String::from("127.0.0.1");
    let list = vec![addr, v6];
    let one = |target: Result<Target, _>| target.unwrap().addrs().to_vec();
    assert_eq!(one((Ipv4Addr::LOCALHOST, 8080).into_target()), [addr]);
    assert_eq!(one((Ipv6Addr::LOCALHOST, 8080).into_target()), [v6]);
    assert_eq!(
        one((IpAddr::from([127, 0, 0, 1]), 8080).into_target()),
        [addr]
    );
    assert_eq!(one((host.clone(), 8080).into_target()), [addr]);
    assert_eq!(one((&host, 8080).into_target()), [addr]);
    assert_eq!(one((host.as_str(), 8080).into_target()), [addr]);
    assert_eq!(one((&addr).into_target()), [addr]);
    assert_eq!(one([addr, v6].into_target()), [addr, v6]);
    assert_eq!(one((&[addr, v6]).into_target()), [addr, v6]);
    assert_eq!(one((&list).into_target()), [addr, v6]);
    assert_eq!(one(list.clone().into_target()), [addr, v6]);
    assert_eq!(one(list.as_slice().into_target()), [addr, v6]);
    assert_eq!(one("127.0.0.1:8080".into_target()), [addr]);
    let name = ("example.test", 443).into_target().unwrap();
    assert_eq!(
        (name.host(), name.port()),
        (Some("example.test"), Some(443))
    );
}

/// Targets can key a map: equal targets hash alike.
#[test]
fn targets_are_hash_keys() {
    let mut seen = std::collections::HashSet::new();
    assert!(seen.insert(Target::parse("db.test:5432").unwrap()));
    assert!(!seen.insert(("db.test", 5432).into_target().unwrap()));
}

/// A resolver shared by `Arc` or boxed as `dyn Resolve` plugs in as it is.
#[test]
fn resolvers_plug_in_behind_arc_and_box() {
    let shared = Arc::new(SystemResolver);
    let _ = Connector::new().resolver(shared.clone());
    let boxed: Box<dyn Resolve> = Box::new(SystemResolver);
    let _ = Connector::new().resolver(boxed);
    let dynamic: Arc<dyn Resolve> = shared;
    let _ = Connector::new().resolver(dynamic);
}
