//! A ServiceMode record of an HTTPS answer (RFC 9460), as a resolver hands it over, and what
//! the caller of a service connect speaks.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

/// The protocol every HTTPS endpoint speaks unless its record says `no-default-alpn`
/// (RFC 9460 §7.1.2).
const DEFAULT_ALPN: &[u8] = b"http/1.1";

/// The SvcParamKeys this crate reads (RFC 9460 §14.3.2): `mandatory`, `alpn`,
/// `no-default-alpn`, `port`, `ipv4hint`, `ech` and `ipv6hint`.
const UNDERSTOOD_KEYS: std::ops::RangeInclusive<u16> = 0..=6;

/// The `mandatory` key's own number, which its list must not name (RFC 9460 §8).
const MANDATORY_KEY: u16 = 0;

/// A service a named target is reached as, so that its HTTPS records (RFC 9460) are asked
/// for along with its addresses, and which application protocols the caller speaks.
///
/// Give it to a target with [`Target::with_service`](crate::Target::with_service). Only a
/// resolver that can ask for HTTPS records does ([`HickoryResolver`](crate::HickoryResolver));
/// with any other, such a target connects as it would without.
///
/// # Examples
///
/// ```
/// use connect_any::{Service, Target};
///
/// let target = Target::parse("example.com:443")?.with_service(Service::https().protocols(["h2", "http/1.1"]));
/// assert!(target.service().is_some());
/// # Ok::<(), connect_any::TargetError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Service {
    /// The ALPN ids the caller speaks, in its order of preference; `None`: any.
    protocols: Option<Arc<[Box<[u8]>]>>,
}

impl Service {
    /// An HTTPS origin: its `HTTPS` records are asked for (at `_PORT._https.HOST` for a port
    /// other than 443, RFC 9460 §9.1).
    pub fn https() -> Self {
        Self { protocols: None }
    }

    /// The ALPN protocol ids the caller can speak (`h2`, `http/1.1`, `h3`...), in its order of
    /// preference. An endpoint whose record lists none of them is never dialed (HEv3 §6.2),
    /// and each [`Endpoint::alpn`](crate::Endpoint::alpn) lists only these. Default is any
    /// protocol.
    pub fn protocols<I, P>(self, protocols: I) -> Self
    where
        I: IntoIterator<Item = P>,
        P: AsRef<[u8]>,
    {
        let protocols = protocols.into_iter().map(|p| p.as_ref().into()).collect();
        Self {
            protocols: Some(protocols),
        }
    }

    /// Whether the caller speaks `protocol`.
    pub(crate) fn speaks(&self, protocol: &[u8]) -> bool {
        self.protocols
            .as_ref()
            .is_none_or(|spoken| spoken.iter().any(|p| **p == *protocol))
    }
}

/// One ServiceMode record of a name's HTTPS answer (RFC 9460 §2.4.3): where the service may be
/// reached, by which protocols, and how its ClientHello may be encrypted.
///
/// A resolver builds these for [`Answer::https`](crate::Answer::https), having followed the
/// AliasMode records; the connector orders them by priority and turns each into endpoints.
///
/// # Examples
///
/// ```
/// use connect_any::ServiceRecord;
///
/// let record = ServiceRecord::new(1, ".")
///     .with_alpn(["h2"])
///     .with_port(8443)
///     .with_ipv4_hints(["192.0.2.1".parse().unwrap()]);
/// assert_eq!(record.port(), Some(8443));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceRecord {
    priority: u16,
    target_name: Box<str>,
    alpn: Vec<Box<[u8]>>,
    no_default_alpn: bool,
    port: Option<u16>,
    ipv4_hints: Vec<Ipv4Addr>,
    ipv6_hints: Vec<Ipv6Addr>,
    ech_config_list: Option<Box<[u8]>>,
    mandatory: Vec<u16>,
    /// Keys present that this crate does not read, so that a `mandatory` list naming one
    /// can be told from one naming a key that is absent.
    other_keys: Vec<u16>,
}

impl ServiceRecord {
    /// A record of `priority` (1 or more: 0 is AliasMode, which a resolver follows rather
    /// than hands over) whose endpoints are `target_name`'s addresses; `"."` is the name the
    /// record is at (RFC 9460 §2.5.2). Without parameters.
    pub fn new(priority: u16, target_name: &str) -> Self {
        Self {
            priority,
            target_name: target_name.into(),
            alpn: Vec::new(),
            no_default_alpn: false,
            port: None,
            ipv4_hints: Vec::new(),
            ipv6_hints: Vec::new(),
            ech_config_list: None,
            mandatory: Vec::new(),
            other_keys: Vec::new(),
        }
    }

    /// The `alpn` parameter: the protocol ids the endpoints speak besides the default
    /// `http/1.1`.
    pub fn with_alpn<I, P>(mut self, protocols: I) -> Self
    where
        I: IntoIterator<Item = P>,
        P: AsRef<[u8]>,
    {
        self.alpn = protocols.into_iter().map(|p| p.as_ref().into()).collect();
        self
    }

    /// The `no-default-alpn` parameter: the endpoints do not speak `http/1.1` unless `alpn`
    /// lists it.
    pub fn with_no_default_alpn(mut self) -> Self {
        self.no_default_alpn = true;
        self
    }

    /// The `port` parameter: the endpoints' port, in place of the target's.
    pub fn with_port(mut self, port: u16) -> Self {
        self.port = Some(port);
        self
    }

    /// The `ipv4hint` parameter: addresses to dial until the A answer for the target name
    /// arrives, which replaces them.
    pub fn with_ipv4_hints(mut self, hints: impl IntoIterator<Item = Ipv4Addr>) -> Self {
        self.ipv4_hints = hints.into_iter().collect();
        self
    }

    /// The `ipv6hint` parameter: addresses to dial until the AAAA answer for the target name
    /// arrives, which replaces them.
    pub fn with_ipv6_hints(mut self, hints: impl IntoIterator<Item = Ipv6Addr>) -> Self {
        self.ipv6_hints = hints.into_iter().collect();
        self
    }

    /// The `ech` parameter: an ECHConfigList (draft-ietf-tls-svcb-ech), for the TLS layer to
    /// encrypt its ClientHello with; the connector hands it over unread.
    pub fn with_ech_config_list(mut self, bytes: impl Into<Box<[u8]>>) -> Self {
        self.ech_config_list = Some(bytes.into());
        self
    }

    /// The `mandatory` parameter: keys a client must understand to use the record. One this
    /// crate does not understand, or one the record does not carry, makes the record unusable
    /// (RFC 9460 §8).
    pub fn with_mandatory(mut self, keys: impl IntoIterator<Item = u16>) -> Self {
        self.mandatory = keys.into_iter().collect();
        self
    }

    /// A parameter this crate does not read (by its key number), carried by the record.
    pub fn with_other_key(mut self, key: u16) -> Self {
        self.other_keys.push(key);
        self
    }

    /// The record's SvcPriority: lower is preferred.
    pub fn priority(&self) -> u16 {
        self.priority
    }

    /// The record's TargetName, `"."` for the name the record is at.
    pub fn target_name(&self) -> &str {
        &self.target_name
    }

    /// The `port` parameter, if the record has one.
    pub fn port(&self) -> Option<u16> {
        self.port
    }

    /// The `ech` parameter's bytes, if the record has one.
    pub fn ech_config_list(&self) -> Option<&[u8]> {
        self.ech_config_list.as_deref()
    }

    /// The record's address hints, IPv6 then IPv4.
    pub(crate) fn hints(&self) -> (&[Ipv6Addr], &[Ipv4Addr]) {
        (&self.ipv6_hints, &self.ipv4_hints)
    }

    /// The record's ALPN set (RFC 9460 §7.1.1): its `alpn` ids, then `http/1.1` unless
    /// `no-default-alpn` or listed already.
    pub fn alpn_set(&self) -> impl Iterator<Item = &[u8]> + '_ {
        let listed = self.alpn.iter().map(|p| &**p);
        let default = !self.no_default_alpn && !self.alpn.iter().any(|p| **p == *DEFAULT_ALPN);
        listed.chain(default.then_some(DEFAULT_ALPN))
    }

    /// Why the record may not be used by a caller speaking `service`'s protocols, if it may not.
    pub(crate) fn unusable(&self, service: &Service) -> Option<Unusable> {
        if self.priority == 0 {
            return Some(Unusable::AliasMode);
        }
        for &key in &self.mandatory {
            if key == MANDATORY_KEY {
                return Some(Unusable::MandatoryListsItself);
            }
            if !UNDERSTOOD_KEYS.contains(&key) {
                return Some(Unusable::UnknownMandatoryKey(key));
            }
            if !self.carries(key) {
                return Some(Unusable::MandatoryKeyMissing(key));
            }
        }
        if self.no_default_alpn && self.alpn.is_empty() {
            return Some(Unusable::NoProtocols);
        }
        if !self.alpn_set().any(|p| service.speaks(p)) {
            return Some(Unusable::NoCommonProtocol);
        }
        None
    }

    fn carries(&self, key: u16) -> bool {
        match key {
            1 => !self.alpn.is_empty(),
            2 => self.no_default_alpn,
            3 => self.port.is_some(),
            4 => !self.ipv4_hints.is_empty(),
            5 => self.ech_config_list.is_some(),
            6 => !self.ipv6_hints.is_empty(),
            other => self.other_keys.contains(&other),
        }
    }
}

/// Why a record is skipped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Unusable {
    /// SvcPriority 0: an alias, which the resolver should have followed.
    AliasMode,
    /// Its `mandatory` list names `mandatory` itself (RFC 9460 §8: malformed).
    MandatoryListsItself,
    /// Its `mandatory` list names a key this crate does not understand.
    UnknownMandatoryKey(u16),
    /// Its `mandatory` list names a key it does not carry (RFC 9460 §8: malformed).
    MandatoryKeyMissing(u16),
    /// `no-default-alpn` without `alpn`: no protocol at all.
    NoProtocols,
    /// None of its protocols is one the caller speaks (HEv3 §6.2).
    NoCommonProtocol,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_alpn_set_adds_the_default_unless_told_not_to() {
        let set =
            |record: &ServiceRecord| record.alpn_set().map(<[u8]>::to_vec).collect::<Vec<_>>();
        let h2 = ServiceRecord::new(1, ".").with_alpn(["h2"]);
        assert_eq!(set(&h2), [b"h2".to_vec(), b"http/1.1".to_vec()]);
        assert_eq!(set(&h2.clone().with_no_default_alpn()), [b"h2".to_vec()]);
        let listed = ServiceRecord::new(1, ".").with_alpn(["http/1.1", "h2"]);
        assert_eq!(set(&listed), [b"http/1.1".to_vec(), b"h2".to_vec()]);
        assert_eq!(set(&ServiceRecord::new(1, ".")), [b"http/1.1".to_vec()]);
    }

    #[test]
    fn mandatory_keys_must_be_understood_and_carried() {
        let any = Service::https();
        let record = ServiceRecord::new(1, ".").with_port(8443);
        assert_eq!(record.clone().with_mandatory([3]).unusable(&any), None);
        assert_eq!(
            record.clone().with_mandatory([1]).unusable(&any),
            Some(Unusable::MandatoryKeyMissing(1))
        );
        assert_eq!(
            record.clone().with_mandatory([0]).unusable(&any),
            Some(Unusable::MandatoryListsItself)
        );
        let unknown = record
            .clone()
            .with_other_key(65_000)
            .with_mandatory([65_000]);
        assert_eq!(
            unknown.unusable(&any),
            Some(Unusable::UnknownMandatoryKey(65_000))
        );
        // An unknown key that is not mandatory is ignored.
        assert_eq!(record.with_other_key(65_000).unusable(&any), None);
    }

    #[test]
    fn a_record_must_share_a_protocol_with_the_caller() {
        let tcp = Service::https().protocols(["h2", "http/1.1"]);
        let h3 = ServiceRecord::new(1, ".")
            .with_alpn(["h3"])
            .with_no_default_alpn();
        assert_eq!(h3.unusable(&tcp), Some(Unusable::NoCommonProtocol));
        assert_eq!(h3.unusable(&Service::https()), None);
        assert_eq!(
            ServiceRecord::new(1, ".").with_alpn(["h3"]).unusable(&tcp),
            None
        );
        let none = ServiceRecord::new(1, ".").with_no_default_alpn();
        assert_eq!(
            none.unusable(&Service::https()),
            Some(Unusable::NoProtocols)
        );
        assert_eq!(
            ServiceRecord::new(0, "x.test").unusable(&tcp),
            Some(Unusable::AliasMode)
        );
    }
}
