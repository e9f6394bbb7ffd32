//! Errors: every attempt reported, and bad input rejected with a clear variant, never a panic.

mod common;

use std::io::{self, ErrorKind};
use std::net::{IpAddr, Ipv4Addr};

use common::{Script, Step, ms, v4, v6};
use connect_any::{ConnectError, Connector, IntoTarget, TargetError, connect_any};

#[tokio::test(start_paused = true)]
async fn every_failed_attempt_is_reported_with_its_address() {
    let script = Script::new(&[
        (v6(1), Step::Fail(ms(5), ErrorKind::AddrNotAvailable)),
        (v4(1), Step::Fail(ms(30), ErrorKind::ConnectionRefused)),
        (v6(2), Step::Fail(ms(10), ErrorKind::NetworkUnreachable)),
        (v4(2), Step::Fail(ms(20), ErrorKind::ConnectionReset)),
    ]);
    let list = vec![v6(1), v4(1), v6(2), v4(2)];
    let error = Connector::new()
        .connect_with(list, script.dialer())
        .await
        .unwrap_err();
    let ConnectError::AllAttemptsFailed { host, attempts, .. } = &error else {
        panic!("expected all attempts failed, got {error:?}");
    };
    assert_eq!(host, "[::1]:1 (+3 more)");
    let summary: Vec<_> = attempts
        .iter()
        .map(|a| (a.addr(), a.error().kind(), a.started(), a.duration()))
        .collect();
    assert_eq!(
        summary,
        [
            (v6(1), ErrorKind::AddrNotAvailable, ms(0), ms(5)),
            (v4(1), ErrorKind::ConnectionRefused, ms(5), ms(30)),
            (v6(2), ErrorKind::NetworkUnreachable, ms(35), ms(10)),
            (v4(2), ErrorKind::ConnectionReset, ms(45), ms(20)),
        ]
    );
    assert!(attempts[1].error().to_string().contains("127.0.0.1:1"));
    assert_eq!(
        error.to_string(),
        "could not connect to [::1]:1 (+3 more) (4 attempts, most relevant 127.0.0.1:2)"
    );
    assert_eq!(
        format!("{error:#}"),
        "could not connect to [::1]:1 (+3 more) (4 attempts, most relevant 127.0.0.1:2): scripted failure of 127.0.0.1:2"
    );
    assert_eq!(error.kind(), ErrorKind::ConnectionReset);
    // A reset got further than a refusal, which got further than the local errors.
    assert_eq!(error.most_relevant().unwrap().addr(), v4(2));
    assert_eq!(io::Error::from(error).kind(), ErrorKind::ConnectionReset);
}

#[tokio::test(start_paused = true)]
async fn an_ipv6_unavailable_address_does_not_hide_an_ipv4_refusal() {
    let script = Script::new(&[
        (v4(1), Step::Fail(ms(1), ErrorKind::ConnectionRefused)),
        (v6(1), Step::Fail(ms(1), ErrorKind::AddrNotAvailable)),
    ]);
    let error = Connector::new()
        .connect_with(vec![v4(1), v6(1)], script.dialer())
        .await
        .unwrap_err();
    assert_eq!(error.most_relevant().unwrap().addr(), v4(1));
    let io_error = io::Error::from(error);
    assert_eq!(io_error.kind(), ErrorKind::ConnectionRefused);
    let inner = io_error
        .get_ref()
        .and_then(|e| e.downcast_ref::<ConnectError>());
    assert!(
        inner.is_some(),
        "the io::Error keeps the ConnectError inside"
    );
}

const BAD_TARGETS: &[(&str, TargetError)] = &[
    ("", TargetError::EmptyHost),
    (":80", TargetError::EmptyHost),
    ("example.com", TargetError::MissingPort),
    ("example.com:", TargetError::MissingPort),
    ("example.com:0", TargetError::InvalidPort),
    ("example.com:65536", TargetError::InvalidPort),
    ("example.com:99999999999", TargetError::InvalidPort),
    ("example.com:-1", TargetError::InvalidPort),
    ("example.com:+80", TargetError::InvalidPort),
    ("example.com:8o", TargetError::InvalidPort),
    ("example.com:80 ", TargetError::InvalidPort),
    ("[::1:80", TargetError::UnbalancedBrackets),
    ("::1]:80", TargetError::UnbracketedIpv6),
    ("[::1]]:80", TargetError::UnbalancedBrackets),
    ("[::1]", TargetError::MissingPort),
    ("[::1]80", TargetError::MissingPort),
    ("::1:80", TargetError::UnbracketedIpv6),
    ("[example.com]:80", TargetError::InvalidIpv6),
    ("[1.2.3.4]:80", TargetError::InvalidIpv6),
    ("[::g]:80", TargetError::InvalidIpv6),
    ("[fe80::1%]:80", TargetError::InvalidZone),
    ("[fe80::1%../../etc]:80", TargetError::InvalidZone),
    ("exa\0mple.com:80", TargetError::NulByte),
    ("example.com\0:80", TargetError::NulByte),
    ("exa mple.com:80", TargetError::InvalidCharacter(' ')),
    (" example.com:80", TargetError::InvalidCharacter(' ')),
    ("example.com/x:80", TargetError::InvalidCharacter('/')),
    ("ex@mple.com:80", TargetError::InvalidCharacter('@')),
    ("ex\u{fffd}mple.com:80", TargetError::InvalidIdn),
    ("\u{300}example.com:80", TargetError::InvalidIdn),
    ("example..com:80", TargetError::EmptyLabel),
    (".example.com:80", TargetError::EmptyLabel),
    ("-example.com:80", TargetError::HyphenAtLabelEdge),
    ("example-.com:80", TargetError::HyphenAtLabelEdge),
    ("256.0.0.1:80", TargetError::InvalidIpv4),
    ("127.1:80", TargetError::InvalidIpv4),
    ("0x7f.0.0.1:80", TargetError::InvalidIpv4),
];

#[test]
fn bad_targets_get_a_clear_error() {
    let label = "a".repeat(64);
    let name_254 = format!("{}bb", "a.".repeat(126));
    assert_eq!(name_254.len(), 254);
    let mut table: Vec<(String, TargetError)> = BAD_TARGETS
        .iter()
        .map(|(t, e)| ((*t).to_owned(), e.clone()))
        .collect();
    table.push((format!("{label}.com:80"), TargetError::LabelTooLong));
    table.push((format!("{name_254}:80"), TargetError::NameTooLong));
    table.push((format!("{name_254}.:80"), TargetError::NameTooLong));
    assert!(table.len() >= 25);
    for (input, expected) in &table {
        assert_eq!(
            input.as_str().into_target(),
            Err(expected.clone()),
            "input {input:?}"
        );
        assert!(!expected.to_string().is_empty());
    }
}

#[test]
fn bad_host_port_pairs_get_a_clear_error() {
    assert_eq!(("", 80).into_target(), Err(TargetError::EmptyHost));
    assert_eq!(
        ("example.com", 0).into_target(),
        Err(TargetError::InvalidPort)
    );
    assert_eq!(("exa\0mple", 80).into_target(), Err(TargetError::NulByte));
    assert_eq!(
        ("[::1", 80).into_target(),
        Err(TargetError::UnbalancedBrackets)
    );
    assert_eq!(
        ("example.com:80", 80).into_target(),
        Err(TargetError::InvalidIpv6)
    );
    let unspecified = (IpAddr::V4(Ipv4Addr::LOCALHOST), 0);
    assert_eq!(unspecified.into_target(), Err(TargetError::InvalidPort));
}

#[tokio::test]
async fn connect_reports_bad_input_as_invalid_target() {
    let error = connect_any("example.com").await.unwrap_err();
    assert!(matches!(
        error,
        ConnectError::InvalidTarget {
            cause: TargetError::MissingPort,
            ..
        }
    ));
    assert_eq!(error.to_string(), "invalid target \"example.com\"");
    assert_eq!(
        format!("{error:#}"),
        "invalid target \"example.com\": missing port"
    );
    assert_eq!(io::Error::from(error).kind(), ErrorKind::InvalidInput);
}

/// Real sockets: binding IPv6 attempts to an address this machine does not have makes them
/// fail locally with `EADDRNOTAVAIL` (nothing is sent), while IPv4 is refused on loopback.
#[tokio::test]
async fn a_real_eaddrnotavail_does_not_hide_a_real_refusal() {
    if !common::has_ipv6_loopback() {
        common::skip("this machine cannot bind [::1]");
        return;
    }
    let refused_v4 = common::refused_addr("127.0.0.1");
    let v6 = std::net::SocketAddr::from(([0, 0, 0, 0, 0, 0, 0, 1], refused_v4.port()));
    let not_here: std::net::Ipv6Addr = "2001:db8::1".parse().unwrap();
    let connector = Connector::new().local_address_v6(Some(not_here));
    for list in [vec![refused_v4, v6], vec![v6, refused_v4]] {
        let error = connector.connect(list.clone()).await.unwrap_err();
        let kinds: Vec<_> = error
            .attempts()
            .iter()
            .map(|a| (a.addr(), a.error().kind()))
            .collect();
        assert!(
            kinds.contains(&(v6, ErrorKind::AddrNotAvailable)),
            "{kinds:?}"
        );
        assert!(
            kinds.contains(&(refused_v4, ErrorKind::ConnectionRefused)),
            "{kinds:?}"
        );
        assert_eq!(error.kind(), ErrorKind::ConnectionRefused, "order {list:?}");
        assert_eq!(error.most_relevant().unwrap().addr(), refused_v4);
        let message = format!("{error:#}");
        assert!(message.contains("Connection refused"), "{message}");
    }
}

/// An internationalized name is resolved, overridden and reported in its ASCII form; errors
/// show the name as given too.
#[cfg(feature = "idn")]
#[tokio::test(start_paused = true)]
async fn internationalized_names_resolve_in_ascii_and_report_both_forms() {
    let resolver = common::FixedResolver::new("xn--bcher-kva.test", &[v4(1)]);
    let script = Script::new(&[(v4(1), Step::Connect(ms(1)))]);
    let connector = Connector::new().resolver(resolver);
    let won = connector
        .connect_with("Bücher.test:1", script.dialer())
        .await
        .unwrap();
    assert_eq!(won.addr, v4(1), "the resolver was asked for the ASCII form");

    let error = connector
        .connect_with("müller.test:1", script.dialer())
        .await
        .unwrap_err();
    assert_eq!(
        format!("{error:#}"),
        "failed to resolve müller.test:1 (xn--mller-kva.test): no such host"
    );

    let pinned = Connector::new().resolve_override("BÜCHER.test.", None, [v4(2)]);
    let script = Script::new(&[(v4(2), Step::Connect(ms(1)))]);
    let won = pinned
        .connect_with("bücher.test:2", script.dialer())
        .await
        .unwrap();
    assert_eq!(won.addr, v4(2), "the override matched the ASCII form");

    let invalid = connect_any("b\u{fffd}cher.test:1").await.unwrap_err();
    assert!(
        matches!(
            invalid,
            ConnectError::InvalidTarget {
                cause: TargetError::InvalidIdn,
                ..
            }
        ),
        "{invalid:?}"
    );
}

/// When the family filter empties the list, the message says so, for a literal and for a
/// resolver's answer alike.
#[tokio::test(start_paused = true)]
async fn an_emptied_list_says_the_family_filter_did_it() {
    let v6_only = Connector::new().ip_families(connect_any::IpFamilies::V6Only);
    let script = Script::new(&[]);
    let literal = v6_only
        .connect_with("127.0.0.1:80", script.dialer())
        .await
        .unwrap_err();
    assert_eq!(
        literal.to_string(),
        "no addresses for 127.0.0.1:80: the family filter removed 1"
    );
    let resolver = common::FixedResolver::new("v4.test", &[v4(1), v4(2)]);
    let answered = v6_only
        .resolver(resolver)
        .connect_with("v4.test:1", script.dialer())
        .await
        .unwrap_err();
    assert!(
        matches!(
            answered,
            ConnectError::NoAddresses {
                filtered_by_family: 2,
                ..
            }
        ),
        "{answered:?}"
    );
    assert!(script.starts().is_empty());
}
