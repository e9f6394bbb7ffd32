//! NAT64 (RFC 8305 §7, HEv3 §8): IPv4 destinations without a route are dialed as their
//! synthesized IPv6 addresses, in the IPv4 addresses' places. The dialer here is scripted: an
//! IPv4 address fails with the system's own `ENETUNREACH`, as on an IPv6-only host, and an
//! IPv6 address connects.

mod common;

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use common::FixedResolver;
use connect_any::{AttemptOutcome, ConnectError, Connector, Nat64, Nat64Prefix};

/// Every address a dialer dialed, in order.
type Dialed = Arc<Mutex<Vec<SocketAddr>>>;

/// A dialer that records every address it dials; IPv4 has no route, IPv6 connects.
fn ipv6_only() -> (
    impl FnMut(SocketAddr) -> std::future::Ready<io::Result<SocketAddr>> + Clone,
    Dialed,
) {
    let dialed = Arc::new(Mutex::new(Vec::new()));
    let seen = dialed.clone();
    let dial = move |addr: SocketAddr| {
        seen.lock().unwrap().push(addr);
        std::future::ready(match addr {
            SocketAddr::V4(_) => Err(io::Error::from_raw_os_error(libc::ENETUNREACH)),
            SocketAddr::V6(_) => Ok(addr),
        })
    };
    (dial, dialed)
}

fn addr(text: &str) -> SocketAddr {
    text.parse().unwrap()
}

/// The first connect to an IPv4 literal finds no route and says so; the connector notes it,
/// and from then on dials the literal, an override's address and an A answer as their
/// synthesized forms, in the IPv4 addresses' places; loopback is never synthesized.
#[tokio::test]
async fn ipv4_destinations_without_a_route_are_dialed_through_the_prefix() {
    let resolver = FixedResolver::new("a-only.test", &[addr("192.0.2.7:443")]);
    let connector = Connector::new()
        .nat64(Nat64::Prefix(Nat64Prefix::WELL_KNOWN))
        .resolver(resolver)
        .resolve_override("pinned.test", None, [addr("198.51.100.1:80")]);
    let (dial, dialed) = ipv6_only();

    let first = connector.connect_with("192.0.2.1:80", dial.clone()).await;
    let Err(ConnectError::AllAttemptsFailed { attempts, .. }) = first else {
        panic!("the first connect fails as the system says: {first:?}");
    };
    assert_eq!(attempts[0].error().raw_os_error(), Some(libc::ENETUNREACH));

    for (target, synthesized) in [
        ("192.0.2.1:80", "[64:ff9b::c000:201]:80"),
        ("pinned.test:80", "[64:ff9b::c633:6401]:80"),
        ("a-only.test:443", "[64:ff9b::c000:207]:443"),
    ] {
        dialed.lock().unwrap().clear();
        let (stream, report) = connector
            .connect_with_reported(target, dial.clone())
            .await
            .unwrap_or_else(|error| panic!("{target}: {error:#}"));
        assert_eq!(stream, addr(synthesized), "{target}");
        assert_eq!(*dialed.lock().unwrap(), [addr(synthesized)], "{target}");
        // The race and its report name the IPv4 address: the synthesized one took its place.
        let attempts = report.attempts();
        assert_eq!(attempts.len(), 1, "{report:#}");
        assert!(attempts[0].addr().is_ipv4(), "{report:#}");
        assert!(matches!(attempts[0].outcome(), AttemptOutcome::Connected));
    }

    dialed.lock().unwrap().clear();
    let loopback = connector.connect_with("127.0.0.1:80", dial.clone()).await;
    assert!(loopback.is_err());
    assert_eq!(*dialed.lock().unwrap(), [addr("127.0.0.1:80")]);
}

/// With the default, the prefix is learnt from the resolver's answer for `ipv4only.arpa`
/// (RFC 7050) once, and kept.
#[tokio::test]
async fn the_prefix_is_learnt_from_ipv4only_arpa_once() {
    let dns64 = FixedResolver::new("ipv4only.arpa", &[addr("[2001:db8:64::c000:aa]:0")]);
    let resolver = Arc::new(dns64);
    let connector = Connector::new().resolver(resolver.clone());
    let (dial, dialed) = ipv6_only();
    assert!(
        connector
            .connect_with("192.0.2.1:80", dial.clone())
            .await
            .is_err()
    );
    assert_eq!(
        resolver.calls.load(Ordering::SeqCst),
        0,
        "nothing asked yet"
    );
    for _ in 0..3 {
        let stream = connector.connect_with("192.0.2.1:80", dial.clone()).await;
        assert_eq!(stream.unwrap(), addr("[2001:db8:64::c000:201]:80"));
    }
    assert_eq!(resolver.calls.load(Ordering::SeqCst), 1, "learnt once");
    assert_eq!(dialed.lock().unwrap().len(), 4);
}

/// A resolver without a DNS64 answer leaves IPv4 addresses as they are, and is not asked on
/// every connect.
#[tokio::test]
async fn without_a_prefix_ipv4_is_dialed_as_it_is() {
    let resolver = Arc::new(FixedResolver::default());
    let connector = Connector::new().resolver(resolver.clone());
    let (dial, dialed) = ipv6_only();
    for _ in 0..3 {
        let error = connector.connect_with("192.0.2.1:80", dial.clone()).await;
        assert!(error.is_err());
    }
    assert!(dialed.lock().unwrap().iter().all(SocketAddr::is_ipv4));
    assert_eq!(
        resolver.calls.load(Ordering::SeqCst),
        1,
        "a failed lookup is kept"
    );
}

/// A host whose IPv4 destinations have routes never asks for `ipv4only.arpa`, and `Off`
/// never synthesizes.
#[tokio::test]
async fn routes_or_off_mean_no_nat64() {
    let resolver = Arc::new(FixedResolver::new(
        "ipv4only.arpa",
        &[addr("[64:ff9b::c000:aa]:0")],
    ));
    let connector = Connector::new().resolver(resolver.clone());
    let routed = |addr: SocketAddr| std::future::ready(Ok::<_, io::Error>(addr));
    for _ in 0..3 {
        let stream = connector.connect_with("192.0.2.1:80", routed).await;
        assert_eq!(stream.unwrap(), addr("192.0.2.1:80"));
    }
    assert_eq!(resolver.calls.load(Ordering::SeqCst), 0);

    let off = Connector::new()
        .nat64(Nat64::Off)
        .resolver(resolver.clone());
    let (dial, dialed) = ipv6_only();
    for _ in 0..2 {
        assert!(
            off.connect_with("192.0.2.1:80", dial.clone())
                .await
                .is_err()
        );
    }
    assert_eq!(
        *dialed.lock().unwrap(),
        [addr("192.0.2.1:80"), addr("192.0.2.1:80")]
    );
    assert_eq!(resolver.calls.load(Ordering::SeqCst), 0);
}

/// A DNS64 server's AAAA answer under the prefix stands for the IPv4 address inside: the
/// address policy judges that address (an operator's prefix in public address space must not
/// carry a request to 10.0.0.1), and the same address in the A answer is not dialed twice.
#[tokio::test]
async fn dns64_answers_count_as_the_ipv4_address_inside() {
    let local = Nat64Prefix::new("2a00:1450:64::".parse().unwrap(), 96).unwrap();
    let answers = [
        addr("[2a00:1450:64::a00:1]:80"),
        addr("[2a00:1450:64::808:808]:80"),
        addr("8.8.8.8:80"),
    ];
    let connector = Connector::new()
        .nat64(Nat64::Prefix(local))
        .resolver(FixedResolver::new("dns64.test", &answers))
        .address_policy(connect_any::AddressPolicy::deny_non_public());
    let (dial, dialed) = ipv6_only();

    // This host has IPv4 addresses: 8.8.8.8 is dialed as it is, once, and finds no route.
    let first = connector.connect_with("dns64.test:80", dial.clone()).await;
    let Err(ConnectError::AllAttemptsFailed { attempts, .. }) = first else {
        panic!("{first:?}");
    };
    assert_eq!(attempts.len(), 1);
    assert_eq!(*dialed.lock().unwrap(), [addr("8.8.8.8:80")]);

    // From then on, through the prefix; 10.0.0.1's synthesis is never dialed.
    dialed.lock().unwrap().clear();
    let (stream, report) = connector
        .connect_with_reported("dns64.test:80", dial.clone())
        .await
        .unwrap();
    assert_eq!(stream, addr("[2a00:1450:64::808:808]:80"));
    assert_eq!(
        *dialed.lock().unwrap(),
        [addr("[2a00:1450:64::808:808]:80")]
    );
    assert_eq!(report.attempts().len(), 1, "{report:#}");
    assert_eq!(report.attempts()[0].addr(), addr("8.8.8.8:80"));
}

/// A synthesized attempt that fails is reported under the IPv4 address, with an error that
/// names the address dialed.
#[tokio::test]
async fn a_failed_synthesized_attempt_names_both_forms() {
    let connector = Connector::new().nat64(Nat64::Prefix(Nat64Prefix::WELL_KNOWN));
    let refusing = |addr: SocketAddr| {
        std::future::ready(match addr {
            SocketAddr::V4(_) => {
                Err::<SocketAddr, _>(io::Error::from_raw_os_error(libc::ENETUNREACH))
            }
            SocketAddr::V6(_) => Err(io::Error::from_raw_os_error(libc::ECONNREFUSED)),
        })
    };
    assert!(
        connector
            .connect_with("192.0.2.9:80", refusing)
            .await
            .is_err()
    );
    let error = connector
        .connect_with("192.0.2.9:80", refusing)
        .await
        .unwrap_err();
    let attempt = &error.attempts()[0];
    assert_eq!(attempt.addr(), addr("192.0.2.9:80"));
    assert_eq!(attempt.error().kind(), io::ErrorKind::ConnectionRefused);
    let shown = attempt.to_string();
    assert!(shown.starts_with("192.0.2.9:80 "), "{shown}");
    assert!(
        shown.contains("[64:ff9b::c000:209]:80 through NAT64: Connection refused"),
        "{shown}"
    );
}
