//! Reading host strings: `host:port` splitting, ports, IPv6 literals and zones, and the rules
//! for names, internationalized ones included.

use std::borrow::Cow;
use std::net::{Ipv6Addr, SocketAddrV6};
use std::str::FromStr;

use crate::target::error::TargetError;

/// Longest host name accepted, in bytes, not counting a trailing dot (RFC 1035 §2.3.4).
const MAX_NAME_LEN: usize = 253;
/// Longest label of a host name, in bytes (RFC 1035 §2.3.4).
const MAX_LABEL_LEN: usize = 63;
/// Longest interface name accepted as an IPv6 zone id (Linux `IFNAMSIZ` less its NUL).
const MAX_ZONE_LEN: usize = 15;

pub(crate) fn check_common(input: &str) -> Result<(), TargetError> {
    if input.is_empty() {
        return Err(TargetError::EmptyHost);
    }
    if input.contains('\0') {
        return Err(TargetError::NulByte);
    }
    Ok(())
}

/// Splits `host:port` or `[v6]:port`, leaving the brackets on the host.
pub(crate) fn split_host_port(input: &str) -> Result<(&str, &str), TargetError> {
    if input.starts_with('[') {
        let close = input.find(']').ok_or(TargetError::UnbalancedBrackets)?;
        let (host, rest) = input.split_at(close + 1);
        return match rest.strip_prefix(':') {
            Some(port) => Ok((host, port)),
            None if rest.is_empty() => Err(TargetError::MissingPort),
            None if rest.contains(']') => Err(TargetError::UnbalancedBrackets),
            None => Err(TargetError::MissingPort),
        };
    }
    let (host, port) = input.rsplit_once(':').ok_or(TargetError::MissingPort)?;
    if host.contains(':') {
        return Err(TargetError::UnbracketedIpv6);
    }
    if host.bytes().any(|b| b == b'[' || b == b']') {
        return Err(TargetError::UnbalancedBrackets);
    }
    if host.is_empty() {
        return Err(TargetError::EmptyHost);
    }
    Ok((host, port))
}

/// A decimal port, 1 to 65535, in at most five digits (so `00080` is 80 and `065535` is
/// refused). Read digit by digit: five digits cannot overflow a `u32`, and the standard
/// parser's generality (signs, radixes, overflow checks) is not needed.
pub(crate) fn parse_port(text: &str) -> Result<u16, TargetError> {
    if text.is_empty() {
        return Err(TargetError::MissingPort);
    }
    if text.len() > 5 {
        return Err(TargetError::InvalidPort);
    }
    let value = text.bytes().try_fold(0u32, |value, byte| {
        byte.is_ascii_digit()
            .then(|| value * 10 + u32::from(byte - b'0'))
    });
    match value.map(u16::try_from) {
        Some(Ok(port)) if port != 0 => Ok(port),
        _ => Err(TargetError::InvalidPort),
    }
}

/// Parses an IPv6 literal without brackets, with an optional `%zone` (index or interface name),
/// also in RFC 6874's URI form, where the `%` is written `%25`: `fe80::1%25eth0`.
pub(crate) fn parse_ipv6(text: &str, port: u16) -> Result<SocketAddrV6, TargetError> {
    let (ip, zone) = match text.split_once('%') {
        Some((ip, zone)) => (ip, Some(uri_decoded_zone(zone))),
        None => (text, None),
    };
    let ip = Ipv6Addr::from_str(ip).map_err(|_| TargetError::InvalidIpv6)?;
    let scope_id = zone.map(parse_zone).transpose()?.unwrap_or(0);
    Ok(SocketAddrV6::new(ip, port, 0, scope_id))
}

/// RFC 6874 writes a zone's `%` as `%25`. A zone that starts with `25` and goes on with a
/// non-digit (`25eth0`) can only be that form; `%251` stays interface index 251.
fn uri_decoded_zone(zone: &str) -> &str {
    match zone.strip_prefix("25") {
        Some(rest) if rest.starts_with(|c: char| !c.is_ascii_digit()) => rest,
        _ => zone,
    }
}

fn parse_zone(zone: &str) -> Result<u32, TargetError> {
    if zone.is_empty() || zone.len() > MAX_ZONE_LEN {
        return Err(TargetError::InvalidZone);
    }
    if zone.bytes().all(|b| b.is_ascii_digit()) {
        return zone.parse().map_err(|_| TargetError::InvalidZone);
    }
    let safe = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.');
    if zone.starts_with('.') || !zone.bytes().all(safe) {
        return Err(TargetError::InvalidZone);
    }
    interface_index(zone).ok_or(TargetError::InvalidZone)
}

/// Looks an interface name up in sysfs, which needs neither `unsafe` nor a libc binding.
#[cfg(target_os = "linux")]
pub(crate) fn interface_index(name: &str) -> Option<u32> {
    let text = std::fs::read_to_string(format!("/sys/class/net/{name}/ifindex")).ok()?;
    text.trim().parse().ok()
}

#[cfg(not(target_os = "linux"))]
pub(crate) fn interface_index(_name: &str) -> Option<u32> {
    None
}

/// The form in which host names compare: ASCII (UTS 46 for an internationalized name), lower
/// case, without a trailing dot. Borrows when `name` already is in that form. A name IDNA
/// rejects is kept as given, lower-cased: no valid target can match it.
pub(crate) fn canonical_name(name: &str) -> Cow<'_, str> {
    // Most names are canonical already; one pass over the bytes tells.
    let unchanged = |b: u8| b.is_ascii() && !b.is_ascii_uppercase();
    if !name.ends_with('.') && name.bytes().all(unchanged) {
        return Cow::Borrowed(name);
    }
    if !name.is_ascii() {
        let ascii = to_ascii(name).unwrap_or_else(|| name.to_lowercase());
        let trimmed = ascii.strip_suffix('.').unwrap_or(&ascii);
        return Cow::Owned(trimmed.to_owned());
    }
    let name = name.strip_suffix('.').unwrap_or(name);
    match name.bytes().any(|b| b.is_ascii_uppercase()) {
        true => Cow::Owned(name.to_ascii_lowercase()),
        false => Cow::Borrowed(name),
    }
}

/// An internationalized name's ASCII form by UTS 46 (IDNA), or `None` when it has none, or
/// when the crate is built without its `idn` feature.
pub(crate) fn to_ascii(name: &str) -> Option<String> {
    #[cfg(feature = "idn")]
    return idna::domain_to_ascii(name).ok();
    #[cfg(not(feature = "idn"))]
    return {
        let _ = name;
        None
    };
}

/// Checks a host name against RFC 1123 rules, also allowing `_` which real internal names use.
///
/// One pass over the bytes. A bad character anywhere is reported before a bad length, and the
/// length before the first bad label.
pub(crate) fn check_name(name: &str) -> Result<(), TargetError> {
    let name = name.strip_suffix('.').unwrap_or(name);
    if name.is_empty() {
        return Err(TargetError::EmptyLabel);
    }
    let mut label_error = None;
    let mut label_start = 0;
    for (i, byte) in name.bytes().enumerate() {
        match byte {
            b'.' => {
                label_error = label_error.or(check_label(&name[label_start..i]));
                label_start = i + 1;
            }
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' => {}
            _ => {
                let bad = name[i..].chars().next().unwrap_or('\0');
                return Err(TargetError::InvalidCharacter(bad));
            }
        }
    }
    if name.len() > MAX_NAME_LEN {
        return Err(TargetError::NameTooLong);
    }
    let last = &name[label_start..];
    if let Some(error) = label_error.or(check_label(last)) {
        return Err(error);
    }
    // A numeric last label would make getaddrinfo read the name as a short-form IPv4 address
    // (`127.1`, `0x7f.1`); only canonical dotted quads, parsed earlier, are taken as addresses.
    if last.bytes().all(|b| b.is_ascii_digit()) || is_hex_number(last) {
        return Err(TargetError::InvalidIpv4);
    }
    Ok(())
}

fn check_label(label: &str) -> Option<TargetError> {
    if label.is_empty() {
        return Some(TargetError::EmptyLabel);
    }
    if label.len() > MAX_LABEL_LEN {
        return Some(TargetError::LabelTooLong);
    }
    if label.starts_with('-') || label.ends_with('-') {
        return Some(TargetError::HyphenAtLabelEdge);
    }
    None
}

fn is_hex_number(label: &str) -> bool {
    label
        .strip_prefix("0x")
        .or_else(|| label.strip_prefix("0X"))
        .is_some_and(|digits| digits.bytes().all(|b| b.is_ascii_hexdigit()))
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use super::*;
    use crate::target::Target;

    #[test]
    fn names_follow_label_rules() {
        assert_eq!(check_name(&"a".repeat(63)), Ok(()));
        assert_eq!(check_name(&"a".repeat(64)), Err(TargetError::LabelTooLong));
        let long = [
            "a".repeat(63),
            "b".repeat(63),
            "c".repeat(63),
            "d".repeat(61),
        ]
        .join(".");
        assert_eq!(long.len(), 253);
        assert_eq!(check_name(&long), Ok(()));
        assert_eq!(check_name(&format!("{long}.")), Ok(()));
        assert_eq!(
            check_name(&format!("{long}e")),
            Err(TargetError::NameTooLong)
        );
        assert_eq!(check_name("a..b"), Err(TargetError::EmptyLabel));
        assert_eq!(check_name("-a.b"), Err(TargetError::HyphenAtLabelEdge));
        assert_eq!(check_name("héllo"), Err(TargetError::InvalidCharacter('é')));
        assert_eq!(check_name("127.1"), Err(TargetError::InvalidIpv4));
        assert_eq!(check_name("0x7f000001"), Err(TargetError::InvalidIpv4));
        assert_eq!(check_name("1.2.example"), Ok(()));
    }
    #[test]
    fn ports_are_decimal_1_to_65535() {
        assert_eq!(parse_port("1"), Ok(1));
        assert_eq!(parse_port("65535"), Ok(65535));
        assert_eq!(parse_port("065535"), Err(TargetError::InvalidPort));
        assert_eq!(parse_port("00080"), Ok(80));
        assert_eq!(parse_port("0"), Err(TargetError::InvalidPort));
        assert_eq!(parse_port("65536"), Err(TargetError::InvalidPort));
        assert_eq!(parse_port("+80"), Err(TargetError::InvalidPort));
        assert_eq!(parse_port(""), Err(TargetError::MissingPort));
    }

    proptest::proptest! {
        /// Read digit by digit, a port is what the standard parser makes of at most five
        /// ASCII digits, 0 refused.
        #[test]
        fn ports_read_as_the_standard_parser_reads_them(
            text in "[01]{1,6}|[0-9]{5}|[0-9+\\- a٣]{0,7}",
        ) {
            let standard = match text.parse::<u16>() {
                _ if text.is_empty() => Err(TargetError::MissingPort),
                _ if text.len() > 5 || !text.bytes().all(|b| b.is_ascii_digit()) => {
                    Err(TargetError::InvalidPort)
                }
                Ok(0) | Err(_) => Err(TargetError::InvalidPort),
                Ok(port) => Ok(port),
            };
            proptest::prop_assert_eq!(parse_port(&text), standard);
        }
    }

    /// Built without IDN support, literals and ASCII names work, and a non-ASCII name is a
    /// clear error.
    #[cfg(not(feature = "idn"))]
    #[test]
    fn without_idn_non_ascii_names_are_refused() {
        assert_eq!(
            Target::from_host_port("bücher.example", 443),
            Err(TargetError::InvalidIdn)
        );
        assert_eq!(
            Target::parse("Example.com:443").unwrap().host(),
            Some("Example.com")
        );
        assert_eq!(Target::parse("[::1]:80").unwrap().port(), Some(80));
    }

    #[test]
    fn canonical_names() {
        assert_eq!(canonical_name("Dual.Test."), "dual.test");
        #[cfg(feature = "idn")]
        assert_eq!(canonical_name("Bücher.Example."), "xn--bcher-kva.example");
        assert!(matches!(
            canonical_name("dual.test"),
            Cow::Borrowed("dual.test")
        ));
    }

    #[test]
    fn zone_ids_by_index_and_by_name() {
        let target = Target::parse("[fe80::1%2]:80").unwrap();
        match target.addrs() {
            [SocketAddr::V6(addr)] => assert_eq!(addr.scope_id(), 2),
            other => panic!("unexpected {other:?}"),
        }
        #[cfg(target_os = "linux")]
        for text in ["[fe80::1%lo]:80", "[fe80::1%25lo]:80"] {
            let target = Target::parse(text).unwrap();
            let lo = interface_index("lo").expect("lo has an index");
            match target.addrs() {
                [SocketAddr::V6(addr)] => assert_eq!(addr.scope_id(), lo),
                other => panic!("unexpected {other:?}"),
            }
        }
        match Target::parse("[fe80::1%251]:80").unwrap().addrs() {
            [SocketAddr::V6(addr)] => assert_eq!(addr.scope_id(), 251),
            other => panic!("unexpected {other:?}"),
        }
        assert_eq!(
            Target::parse("[fe80::1%../x]:80"),
            Err(TargetError::InvalidZone)
        );
        assert_eq!(
            Target::parse("[fe80::1%]:80"),
            Err(TargetError::InvalidZone)
        );
        assert_eq!(
            Target::parse("[fe80::1%nosuchif0]:80"),
            Err(TargetError::InvalidZone)
        );
    }
    #[cfg(feature = "idn")]
    #[test]
    fn internationalized_names_become_ascii() {
        let valid = [
            ("bücher.example", "xn--bcher-kva.example"),
            ("Bücher.Example", "xn--bcher-kva.example"),
            ("bücher.example.", "xn--bcher-kva.example."),
            ("例え.テスト", "xn--r8jz45g.xn--zckzah"),
            ("münchen.de", "xn--mnchen-3ya.de"),
            ("παράδειγμα.δοκιμή", "xn--hxajbheg2az3al.xn--jxalpdlp"),
            ("a\u{200b}b.example", "ab.example"),
            ("ⓐ.example", "a.example"),
        ];
        for (given, ascii) in valid {
            let target = Target::from_host_port(given, 443).unwrap();
            assert_eq!(target.host(), Some(ascii), "{given}");
            assert_eq!(target.to_string(), format!("{given}:443 ({ascii})"));
        }
        let invalid = [
            ("b\u{fffd}cher.example", TargetError::InvalidIdn),
            ("\u{300}a.example", TargetError::InvalidIdn),
            ("a\u{2488}.example", TargetError::InvalidIdn),
            ("ab\u{5d0}1.example", TargetError::InvalidIdn),
            ("bücher..example", TargetError::EmptyLabel),
            ("bücher .example", TargetError::InvalidCharacter(' ')),
        ];
        for (given, error) in invalid {
            assert_eq!(Target::from_host_port(given, 1), Err(error), "{given:?}");
        }
        let wide = Target::parse("１２７。０。０。１:80").unwrap();
        assert_eq!(wide.addrs(), &["127.0.0.1:80".parse().unwrap()]);
    }
}
