//! What to connect to: parsing `host:port` strings and the other accepted forms.

pub(crate) mod error;
pub(crate) mod host;

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::str::FromStr;
use std::sync::Arc;

use crate::resolve::service::record::Service;
use crate::target::error::TargetError;

use crate::target::host::{
    check_common, check_name, parse_ipv6, parse_port, split_host_port, to_ascii,
};

/// A parsed connect target: a host name and port to resolve, or addresses to dial as they are.
///
/// Every `connect` method takes anything that implements [`IntoTarget`]; build a `Target`
/// yourself to parse once and connect many times (cloning a `Target` is cheap).
///
/// # Examples
///
/// ```
/// use connect_any::Target;
///
/// let target: Target = "example.com:443".parse().unwrap();
/// assert_eq!(target.host(), Some("example.com"));
/// assert_eq!(target.port(), Some(443));
///
/// let literal: Target = "[::1]:8080".parse().unwrap();
/// assert_eq!(literal.addrs(), &["[::1]:8080".parse().unwrap()]);
///
/// assert!("example.com".parse::<Target>().is_err()); // no port
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Target {
    kind: Kind,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Kind {
    /// A name for the resolver, in ASCII; `given` is the name as written when that was an
    /// internationalized name (`bücher.example` for `xn--bcher-kva.example`).
    Name {
        name: Arc<str>,
        port: u16,
        /// Thin (an `Arc<String>`), so that a name with its service fits in a literal's room.
        given: Option<Arc<String>>,
        /// The service it is reached as, if one was given.
        service: Option<Arc<Service>>,
    },
    /// One address, kept inline so that connecting to a `SocketAddr` allocates nothing here.
    Addr(SocketAddr),
    /// A pre-resolved list, tried in its order.
    Addrs(Arc<[SocketAddr]>),
}

impl Target {
    /// Parses `host:port`, `[v6]:port` (with an optional `%zone`) or `a.b.c.d:port`.
    ///
    /// # Errors
    ///
    /// A [`TargetError`] saying what is wrong with the input.
    pub fn parse(input: &str) -> Result<Self, TargetError> {
        match Self::parse_plain_name(input) {
            Some(parsed) => parsed,
            None => Self::parse_any_form(input),
        }
    }

    /// `name:port` for a name of ASCII letters, digits, `-`, `_` and `.` that does not begin
    /// with a digit, the form most targets take: such a name holds no NUL, bracket, colon,
    /// IP literal or non-ASCII character to look for, so the name's own rules decide it in
    /// one scan (they report any other character before anything else, and such a host is
    /// not plain). `None` for any other input, which [`parse_any_form`](Self::parse_any_form)
    /// reads, its errors included; on what this takes, the two agree.
    fn parse_plain_name(input: &str) -> Option<Result<Self, TargetError>> {
        let (host, port) = input.rsplit_once(':')?;
        if host.bytes().next()?.is_ascii_digit() {
            return None;
        }
        let port = parse_port(port).ok()?;
        match check_name(host) {
            Err(TargetError::InvalidCharacter(_)) => None,
            checked => Some(checked.map(|()| Self::ascii_name(host, port))),
        }
    }

    fn parse_any_form(input: &str) -> Result<Self, TargetError> {
        check_common(input)?;
        let (host, port) = split_host_port(input)?;
        Self::from_checked_host(host, parse_port(port)?)
    }

    /// A target for `name`, an ASCII name that has passed `check_name`.
    fn ascii_name(name: &str, port: u16) -> Self {
        Self {
            kind: Kind::Name {
                name: Arc::from(name),
                port,
                given: None,
                service: None,
            },
        }
    }

    /// Builds a target from a host (a name, an IP literal, or a bracketed IPv6 literal) and a
    /// port.
    ///
    /// # Errors
    ///
    /// A [`TargetError`] for a malformed host or port 0.
    pub fn from_host_port(host: &str, port: u16) -> Result<Self, TargetError> {
        if port == 0 {
            check_common(host)?;
            return Err(TargetError::InvalidPort);
        }
        Self::from_host_with_port(host, port)
    }

    /// A host for a caller that sets the port itself on every address (reqwest's resolver):
    /// port 0, which a target otherwise refuses.
    #[cfg(feature = "reqwest")]
    pub(crate) fn from_name_for_any_port(host: &str) -> Result<Self, TargetError> {
        Self::from_host_with_port(host, 0)
    }

    fn from_host_with_port(host: &str, port: u16) -> Result<Self, TargetError> {
        check_common(host)?;
        Self::from_checked_host(host, port)
    }

    /// [`from_host_with_port`](Self::from_host_with_port) for a host that `check_common`
    /// has passed.
    fn from_checked_host(host: &str, port: u16) -> Result<Self, TargetError> {
        let bare = match host.strip_prefix('[') {
            Some(rest) => rest
                .strip_suffix(']')
                .ok_or(TargetError::UnbalancedBrackets)?,
            None if host.ends_with(']') => return Err(TargetError::UnbalancedBrackets),
            None => host,
        };
        if bare.contains(':') {
            return Ok(Self::from(SocketAddr::V6(parse_ipv6(bare, port)?)));
        }
        if bare.len() != host.len() {
            return Err(TargetError::InvalidIpv6);
        }
        if let Ok(ip) = Ipv4Addr::from_str(bare) {
            return Ok(Self::from(SocketAddr::from((ip, port))));
        }
        if bare.is_ascii() {
            check_name(bare)?;
            return Ok(Self::ascii_name(bare, port));
        }
        let ascii = to_ascii(bare).ok_or(TargetError::InvalidIdn)?;
        // UTS 46 maps full-width digits and ideographic dots, so `１２７。０。０。１` is an
        // address, as browsers and the url crate read it.
        if let Ok(ip) = Ipv4Addr::from_str(&ascii) {
            return Ok(Self::from(SocketAddr::from((ip, port))));
        }
        check_name(&ascii)?;
        Ok(Self {
            kind: Kind::Name {
                name: Arc::from(ascii),
                port,
                given: Some(Arc::new(bare.to_owned())),
                service: None,
            },
        })
    }

    /// The host name to resolve, or `None` when the target is already addresses. An
    /// internationalized name is given in its ASCII form (`xn--bcher-kva.example`), which is
    /// what is resolved, remembered and matched against overrides.
    pub fn host(&self) -> Option<&str> {
        match &self.kind {
            Kind::Name { name, .. } => Some(name),
            Kind::Addr(_) | Kind::Addrs(_) => None,
        }
    }

    /// The name and port to resolve, or `None` when the target is already addresses.
    pub(crate) fn name_and_port(&self) -> Option<(&Arc<str>, u16)> {
        match &self.kind {
            Kind::Name { name, port, .. } => Some((name, *port)),
            Kind::Addr(_) | Kind::Addrs(_) => None,
        }
    }

    /// The port of a host-name target, or of a single address.
    pub fn port(&self) -> Option<u16> {
        match &self.kind {
            Kind::Name { port, .. } => Some(*port),
            Kind::Addr(addr) => Some(addr.port()),
            Kind::Addrs(_) => None,
        }
    }

    /// This target, reached as `service`: for a host name, its HTTPS records (RFC 9460) are
    /// asked for with its addresses, by a resolver that can ask for them
    /// ([`HickoryResolver`](crate::HickoryResolver)), and their endpoints are dialed by
    /// priority, at their ports, from their hints until the addresses come (Happy Eyeballs
    /// v3). An IP literal or a list has no records, and a name with a
    /// [`resolve_override`](crate::Connector::resolve_override) is answered by it: the service
    /// changes nothing for them.
    ///
    /// A connect whose resolver asks for the records does not use the
    /// [answer cache](crate::Connector::answer_cache); with one that cannot, the target is
    /// cached and connected as without a service.
    /// [`Connector::connect_endpoints_with`](crate::Connector::connect_endpoints_with) hands
    /// its dialer what each record says (ALPN, ECH); any other connect dials the addresses.
    pub fn with_service(mut self, service: Service) -> Self {
        if let Kind::Name { service: slot, .. } = &mut self.kind {
            *slot = Some(Arc::new(service));
        }
        self
    }

    /// The service a named target is reached as, if one was given (see
    /// [`with_service`](Self::with_service)).
    pub fn service(&self) -> Option<&Service> {
        match &self.kind {
            Kind::Name { service, .. } => service.as_deref(),
            Kind::Addr(_) | Kind::Addrs(_) => None,
        }
    }

    /// The addresses this target names without resolution: empty for a host name.
    pub fn addrs(&self) -> &[SocketAddr] {
        match &self.kind {
            Kind::Name { .. } => &[],
            Kind::Addr(addr) => std::slice::from_ref(addr),
            Kind::Addrs(addrs) => addrs,
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            // Port 0: a name resolved for a caller that sets the port itself.
            Kind::Name {
                name,
                port: 0,
                given: None,
                ..
            } => write!(f, "{name}"),
            Kind::Name {
                name,
                port: 0,
                given: Some(given),
                ..
            } => write!(f, "{given} ({name})"),
            Kind::Name {
                name,
                port,
                given: None,
                ..
            } => write!(f, "{name}:{port}"),
            Kind::Name {
                name,
                port,
                given: Some(given),
                ..
            } => write!(f, "{given}:{port} ({name})"),
            Kind::Addr(addr) => write!(f, "{addr}"),
            Kind::Addrs(addrs) => match addrs.split_first() {
                None => f.write_str("an empty address list"),
                Some((first, [])) => write!(f, "{first}"),
                Some((first, rest)) => write!(f, "{first} (+{} more)", rest.len()),
            },
        }
    }
}

impl FromStr for Target {
    type Err = TargetError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        Self::parse(input)
    }
}

impl From<SocketAddr> for Target {
    fn from(addr: SocketAddr) -> Self {
        Self {
            kind: Kind::Addr(addr),
        }
    }
}

impl From<&[SocketAddr]> for Target {
    fn from(addrs: &[SocketAddr]) -> Self {
        Self {
            kind: Kind::Addrs(Arc::from(addrs)),
        }
    }
}

impl From<Vec<SocketAddr>> for Target {
    fn from(addrs: Vec<SocketAddr>) -> Self {
        Self {
            kind: Kind::Addrs(Arc::from(addrs)),
        }
    }
}

/// Conversion into a [`Target`]: implemented for every form a `connect` method accepts.
///
/// - `"host:port"`, `"[v6]:port"`, `"a.b.c.d:port"` as `&str`, `String` or `&String`;
/// - `(&str, u16)`, `(String, u16)` and `(&String, u16)`, where the host may be a name or an
///   IP literal;
/// - `(IpAddr, u16)`, `(Ipv4Addr, u16)`, `(Ipv6Addr, u16)`, `SocketAddr`, `&SocketAddr`,
///   `SocketAddrV4`, `SocketAddrV6`;
/// - a pre-resolved list, `Vec<SocketAddr>`, `&Vec<SocketAddr>`, `&[SocketAddr]`,
///   `[SocketAddr; N]` or `&[SocketAddr; N]`, tried in the given order;
///
/// every form tokio's `ToSocketAddrs` takes, and lists.
/// - a [`Target`] or `&Target`.
pub trait IntoTarget {
    /// Parses or wraps `self`.
    ///
    /// # Errors
    ///
    /// A [`TargetError`] when `self` is not a valid target.
    fn into_target(self) -> Result<Target, TargetError>;

    /// [`into_target`](Self::into_target), and on failure the input as text, so that the
    /// error names it. For the crate's own forms; the default gives no text.
    #[doc(hidden)]
    fn into_target_or_input(self) -> Result<Target, (TargetError, String)>
    where
        Self: Sized,
    {
        self.into_target().map_err(|error| (error, String::new()))
    }
}

/// `converted`, or its error with `input` printed.
fn naming<T: fmt::Display + ?Sized>(
    converted: Result<Target, TargetError>,
    input: &T,
) -> Result<Target, (TargetError, String)> {
    converted.map_err(|error| (error, input.to_string()))
}

/// `host:port` as a person would write it, brackets around an IPv6 literal.
struct HostPort<'a>(&'a str, u16);

impl fmt::Display for HostPort<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.contains(':') && !self.0.starts_with('[') {
            true => write!(f, "[{}]:{}", self.0, self.1),
            false => write!(f, "{}:{}", self.0, self.1),
        }
    }
}

impl IntoTarget for Target {
    fn into_target(self) -> Result<Target, TargetError> {
        Ok(self)
    }
}

impl IntoTarget for &Target {
    fn into_target(self) -> Result<Target, TargetError> {
        Ok(self.clone())
    }
}

impl IntoTarget for &str {
    fn into_target(self) -> Result<Target, TargetError> {
        Target::parse(self)
    }

    fn into_target_or_input(self) -> Result<Target, (TargetError, String)> {
        naming(Target::parse(self), self)
    }
}

impl IntoTarget for String {
    fn into_target(self) -> Result<Target, TargetError> {
        Target::parse(&self)
    }

    fn into_target_or_input(self) -> Result<Target, (TargetError, String)> {
        naming(Target::parse(&self), &self)
    }
}

impl IntoTarget for &String {
    fn into_target(self) -> Result<Target, TargetError> {
        Target::parse(self)
    }

    fn into_target_or_input(self) -> Result<Target, (TargetError, String)> {
        naming(Target::parse(self), self)
    }
}

impl IntoTarget for (&str, u16) {
    fn into_target(self) -> Result<Target, TargetError> {
        Target::from_host_port(self.0, self.1)
    }

    fn into_target_or_input(self) -> Result<Target, (TargetError, String)> {
        naming(self.into_target(), &HostPort(self.0, self.1))
    }
}

impl IntoTarget for (String, u16) {
    fn into_target(self) -> Result<Target, TargetError> {
        Target::from_host_port(&self.0, self.1)
    }

    fn into_target_or_input(self) -> Result<Target, (TargetError, String)> {
        (self.0.as_str(), self.1).into_target_or_input()
    }
}

impl IntoTarget for (&String, u16) {
    fn into_target(self) -> Result<Target, TargetError> {
        Target::from_host_port(self.0, self.1)
    }

    fn into_target_or_input(self) -> Result<Target, (TargetError, String)> {
        (self.0.as_str(), self.1).into_target_or_input()
    }
}

impl IntoTarget for (IpAddr, u16) {
    fn into_target(self) -> Result<Target, TargetError> {
        SocketAddr::from(self).into_target()
    }
}

impl IntoTarget for (Ipv4Addr, u16) {
    fn into_target(self) -> Result<Target, TargetError> {
        SocketAddr::from(self).into_target()
    }
}

impl IntoTarget for (Ipv6Addr, u16) {
    fn into_target(self) -> Result<Target, TargetError> {
        SocketAddr::from(self).into_target()
    }
}

impl IntoTarget for &SocketAddr {
    fn into_target(self) -> Result<Target, TargetError> {
        (*self).into_target()
    }
}

impl IntoTarget for SocketAddr {
    fn into_target(self) -> Result<Target, TargetError> {
        if self.port() == 0 {
            return Err(TargetError::InvalidPort);
        }
        Ok(Target::from(self))
    }

    fn into_target_or_input(self) -> Result<Target, (TargetError, String)> {
        naming(self.into_target(), &self)
    }
}

impl IntoTarget for SocketAddrV4 {
    fn into_target(self) -> Result<Target, TargetError> {
        SocketAddr::V4(self).into_target()
    }
}

impl IntoTarget for SocketAddrV6 {
    fn into_target(self) -> Result<Target, TargetError> {
        SocketAddr::V6(self).into_target()
    }
}

impl IntoTarget for &[SocketAddr] {
    fn into_target(self) -> Result<Target, TargetError> {
        Ok(Target::from(self))
    }
}

impl IntoTarget for Vec<SocketAddr> {
    fn into_target(self) -> Result<Target, TargetError> {
        Ok(Target::from(self))
    }
}

impl IntoTarget for &Vec<SocketAddr> {
    fn into_target(self) -> Result<Target, TargetError> {
        Ok(Target::from(self.as_slice()))
    }
}

impl<const N: usize> IntoTarget for [SocketAddr; N] {
    fn into_target(self) -> Result<Target, TargetError> {
        Ok(Target::from(&self[..]))
    }
}

impl<const N: usize> IntoTarget for &[SocketAddr; N] {
    fn into_target(self) -> Result<Target, TargetError> {
        Ok(Target::from(&self[..]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(host: &str, port: u16) -> Target {
        Target {
            kind: Kind::Name {
                name: Arc::from(host),
                port,
                given: None,
                service: None,
            },
        }
    }

    #[test]
    fn parses_names_and_literals() {
        assert_eq!(
            Target::parse("example.com:443"),
            Ok(name("example.com", 443))
        );
        assert_eq!(Target::parse("localhost:1"), Ok(name("localhost", 1)));
        assert_eq!(
            Target::parse("a_b.internal.:80"),
            Ok(name("a_b.internal.", 80))
        );
        let v4: SocketAddr = "10.0.0.1:80".parse().unwrap();
        assert_eq!(Target::parse("10.0.0.1:80"), Ok(Target::from(v4)));
        let v6: SocketAddr = "[2001:db8::1]:65535".parse().unwrap();
        assert_eq!(Target::parse("[2001:db8::1]:65535"), Ok(Target::from(v6)));
    }

    mod plain_names {
        use proptest::prelude::*;

        use super::*;

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(4000))]

            /// Input near the plain form, with the characters that send it elsewhere.
            #[test]
            fn the_plain_reading_agrees_with_the_general_one(
                input in "[a-zA-Z0-9._:%\\-\\[\\]\u{0}é]{0,12}:[0-9]{0,6}",
            ) {
                if let Some(plain) = Target::parse_plain_name(&input) {
                    prop_assert_eq!(plain, Target::parse_any_form(&input));
                }
            }

            #[test]
            fn every_plain_name_is_read_in_one_scan(
                name in "[a-zA-Z_][a-zA-Z0-9._\\-]{0,20}",
                port in 1u16..,
            ) {
                let input = format!("{name}:{port}");
                prop_assert!(Target::parse_plain_name(&input).is_some());
            }
        }
    }

    #[test]
    fn host_port_pairs_accept_bare_and_bracketed_v6() {
        let expected = Target::from("[::1]:80".parse::<SocketAddr>().unwrap());
        assert_eq!(("::1", 80).into_target(), Ok(expected.clone()));
        assert_eq!(("[::1]", 80).into_target(), Ok(expected));
        assert_eq!(("host", 0).into_target(), Err(TargetError::InvalidPort));
        assert_eq!(("[host]", 1).into_target(), Err(TargetError::InvalidIpv6));
        assert_eq!(
            ("::1]", 1).into_target(),
            Err(TargetError::UnbalancedBrackets)
        );
    }

    #[test]
    fn display_names_the_target() {
        assert_eq!(name("example.com", 80).to_string(), "example.com:80");
        let list: Vec<SocketAddr> =
            vec!["[::1]:1".parse().unwrap(), "127.0.0.1:1".parse().unwrap()];
        assert_eq!(Target::from(list).to_string(), "[::1]:1 (+1 more)");
        assert_eq!(
            Target::from(Vec::new()).to_string(),
            "an empty address list"
        );
    }
}
