//! Property tests for target parsing: arbitrary input never panics, and every valid form parses
//! back to the same host and port.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use connect_any::{IntoTarget, Target};
use proptest::prelude::*;

/// A valid host name: letters, digits, inner hyphens; the last label starts with a letter (an
/// all-numeric last label would read as a short-form IPv4 address).
fn host_name() -> impl Strategy<Value = String> {
    let label = "[a-z0-9]([a-z0-9-]{0,20}[a-z0-9])?";
    let last = "[a-z]([a-z0-9-]{0,20}[a-z0-9])?";
    (prop::collection::vec(label, 0..4), last, any::<bool>()).prop_map(|(mut labels, last, dot)| {
        labels.push(last);
        let mut name = labels.join(".");
        if dot {
            name.push('.');
        }
        name
    })
}

fn port() -> impl Strategy<Value = u16> {
    1..=u16::MAX
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn arbitrary_strings_never_panic(input in any::<String>()) {
        let _ = Target::parse(&input);
        let _ = (input.as_str(), 80).into_target();
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        let input = String::from_utf8_lossy(&bytes);
        let _ = Target::parse(&input);
    }

    #[test]
    fn target_shaped_noise_never_panics(input in r"[\[\]:%.0-9a-fA-F\x00 -]{0,40}", port in any::<u16>()) {
        let _ = Target::parse(&input);
        let _ = (input.as_str(), port).into_target();
    }

    #[test]
    fn names_round_trip(name in host_name(), port in port()) {
        let parsed = Target::parse(&format!("{name}:{port}")).unwrap();
        prop_assert_eq!(parsed.host(), Some(name.as_str()));
        prop_assert_eq!(parsed.port(), Some(port));
        let pair = (name.as_str(), port).into_target().unwrap();
        prop_assert_eq!(&pair, &parsed);
        let owned = (name.clone(), port).into_target().unwrap();
        prop_assert_eq!(owned, parsed);
    }

    #[test]
    fn ipv4_literals_round_trip(ip in any::<Ipv4Addr>(), port in port()) {
        let addr = SocketAddr::from((ip, port));
        let parsed = Target::parse(&format!("{ip}:{port}")).unwrap();
        prop_assert_eq!(parsed.addrs(), &[addr]);
        prop_assert_eq!(parsed.host(), None);
        prop_assert_eq!((IpAddr::V4(ip), port).into_target().unwrap(), parsed);
    }

    #[test]
    fn ipv6_literals_round_trip(ip in any::<Ipv6Addr>(), port in port()) {
        let addr = SocketAddr::from((ip, port));
        let parsed = Target::parse(&format!("[{ip}]:{port}")).unwrap();
        prop_assert_eq!(parsed.addrs(), &[addr]);
        prop_assert_eq!(&(ip.to_string().as_str(), port).into_target().unwrap(), &parsed);
        prop_assert_eq!(&(format!("[{ip}]"), port).into_target().unwrap(), &parsed);
        prop_assert_eq!(addr.into_target().unwrap(), parsed);
    }

    #[test]
    fn numeric_zone_ids_round_trip(ip in any::<Ipv6Addr>(), zone in any::<u32>(), port in port()) {
        let parsed = Target::parse(&format!("[{ip}%{zone}]:{port}")).unwrap();
        match parsed.addrs() {
            [SocketAddr::V6(addr)] => {
                prop_assert_eq!((*addr.ip(), addr.port(), addr.scope_id()), (ip, port, zone));
            }
            other => prop_assert!(false, "unexpected {:?}", other),
        }
    }
}
