//! Answers in parts (RFC 8305 §3): a resolver may hand over the AAAA and the A answers
//! separately, as each arrives, and what they mean for when the race may start.

use std::error::Error;
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::time::Duration;

use futures_util::Stream;

use crate::resolve::service::record::ServiceRecord;

/// An address family, for answers that cover one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Family {
    /// IPv6: the AAAA query.
    Ipv6,
    /// IPv4: the A query.
    Ipv4,
}

impl Family {
    pub(crate) fn of(addr: &SocketAddr) -> Self {
        match addr {
            SocketAddr::V6(_) => Family::Ipv6,
            SocketAddr::V4(_) => Family::Ipv4,
        }
    }

    pub(crate) fn other(self) -> Self {
        match self {
            Family::Ipv6 => Family::Ipv4,
            Family::Ipv4 => Family::Ipv6,
        }
    }
}

/// One part of a resolver's answer: the addresses of one family, or of all at once.
///
/// An empty list is a negative answer (NODATA, or NXDOMAIN for that query); an error is a
/// failed query. Neither fails the connect while another family may still answer.
///
/// `Clone` copies an error by its OS error code, or by its kind and message (an `io::Error`
/// cannot be cloned itself).
#[derive(Debug)]
pub struct Answer {
    pub(crate) family: Option<Family>,
    pub(crate) addrs: io::Result<Vec<SocketAddr>>,
    /// How long the records behind it may be kept, if the resolver knows.
    pub(crate) ttl: Option<Duration>,
    /// For a service lookup, what the answer is besides the target's own addresses.
    pub(crate) service: Option<Box<ServicePart>>,
}

/// What an answer of a service lookup is, when it is not the target's own A or AAAA answer.
#[derive(Debug)]
pub(crate) enum ServicePart {
    /// The HTTPS query's ServiceMode records (the answer's addresses are empty).
    Records(io::Result<Vec<ServiceRecord>>),
    /// An A or AAAA answer for this TargetName.
    ForName(Box<str>),
}

impl Clone for Answer {
    fn clone(&self) -> Self {
        let addrs = match &self.addrs {
            Ok(addrs) => Ok(addrs.clone()),
            Err(error) => Err(copy_error(error)),
        };
        let service = self.service.as_ref().map(|part| {
            Box::new(match &**part {
                ServicePart::Records(Ok(records)) => ServicePart::Records(Ok(records.clone())),
                ServicePart::Records(Err(error)) => ServicePart::Records(Err(copy_error(error))),
                ServicePart::ForName(name) => ServicePart::ForName(name.clone()),
            })
        });
        Self {
            family: self.family,
            addrs,
            ttl: self.ttl,
            service,
        }
    }
}

/// A copy of `error`: the same OS error code, or the same kind and message.
pub(crate) fn copy_error(error: &io::Error) -> io::Error {
    match error.raw_os_error() {
        Some(code) => io::Error::from_raw_os_error(code),
        None => io::Error::new(error.kind(), error.to_string()),
    }
}

impl Answer {
    /// The whole answer at once, every family included: what a one-shot lookup such as
    /// `getaddrinfo` gives.
    pub fn all(addrs: io::Result<Vec<SocketAddr>>) -> Self {
        Self {
            family: None,
            addrs,
            ttl: None,
            service: None,
        }
    }

    /// The answer of the AAAA query.
    pub fn ipv6(addrs: io::Result<Vec<SocketAddr>>) -> Self {
        Self {
            family: Some(Family::Ipv6),
            addrs,
            ttl: None,
            service: None,
        }
    }

    /// The answer of the A query.
    pub fn ipv4(addrs: io::Result<Vec<SocketAddr>>) -> Self {
        Self {
            family: Some(Family::Ipv4),
            addrs,
            ttl: None,
            service: None,
        }
    }

    /// This answer, to be kept by the connector's [answer cache](crate::Connector::answer_cache)
    /// for `ttl` (within the cache's TTL range): the time to live of its DNS records, the
    /// smallest if they differ. An answer without one is kept for the cache's default TTL.
    ///
    /// ```
    /// use std::net::SocketAddr;
    /// use std::time::Duration;
    /// use connect_any::Answer;
    ///
    /// let addrs = vec![SocketAddr::from(([127, 0, 0, 1], 443))];
    /// let answer = Answer::ipv4(Ok(addrs)).with_ttl(Duration::from_secs(300));
    /// # drop(answer);
    /// ```
    pub fn with_ttl(self, ttl: Duration) -> Self {
        Self {
            ttl: Some(ttl),
            ..self
        }
    }

    /// The answer of the HTTPS query (RFC 9460) of a [service](crate::Service) target: its
    /// ServiceMode records, AliasMode records already followed; an empty list is a negative
    /// answer, an error a failed query (an alias loop included). Either way the target's own
    /// A and AAAA answers are still dialed.
    ///
    /// ```
    /// use connect_any::{Answer, ServiceRecord};
    ///
    /// let answer = Answer::https(Ok(vec![ServiceRecord::new(1, ".").with_alpn(["h2"])]));
    /// # drop(answer);
    /// ```
    pub fn https(records: io::Result<Vec<ServiceRecord>>) -> Self {
        Self {
            family: None,
            addrs: Ok(Vec::new()),
            ttl: None,
            service: Some(Box::new(ServicePart::Records(records))),
        }
    }

    /// This A or AAAA answer, as the answer for `target_name`, another name an HTTPS record
    /// pointed at, rather than for the target itself: it replaces that record's hints of its
    /// family.
    ///
    /// ```
    /// use std::net::SocketAddr;
    /// use connect_any::Answer;
    ///
    /// let addrs = vec![SocketAddr::from(([127, 0, 0, 1], 443))];
    /// let answer = Answer::ipv4(Ok(addrs)).for_name("pool.example");
    /// # drop(answer);
    /// ```
    pub fn for_name(self, target_name: &str) -> Self {
        Self {
            service: Some(Box::new(ServicePart::ForName(target_name.into()))),
            ..self
        }
    }
}

/// The stream [`Resolve::resolve_in_parts`](crate::Resolve::resolve_in_parts) returns: each
/// answer as it arrives, ending when no more will come.
pub type Answering<'a> = Pin<Box<dyn Stream<Item = Answer> + Send + 'a>>;

/// Both queries of a name failed: the cause of each.
#[derive(Debug)]
#[non_exhaustive]
pub struct FamilyErrors {
    /// Why the AAAA query failed.
    pub ipv6: io::Error,
    /// Why the A query failed.
    pub ipv4: io::Error,
}

impl fmt::Display for FamilyErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AAAA: {}; A: {}", self.ipv6, self.ipv4)
    }
}

impl Error for FamilyErrors {}

impl FamilyErrors {
    /// One `io::Error` carrying both, under the more telling kind: a name that does not exist
    /// only if neither query said anything more specific.
    pub(crate) fn into_io(self) -> io::Error {
        let kind = match (self.ipv6.kind(), self.ipv4.kind()) {
            (io::ErrorKind::NotFound, other) | (other, _) => other,
        };
        io::Error::new(kind, self)
    }
}

/// What one family's query has said so far.
#[derive(Debug, Default)]
enum Said {
    #[default]
    Nothing,
    Addresses,
    Negative,
    Failed(io::Error),
}

impl From<Result<usize, io::Error>> for Said {
    fn from(answer: Result<usize, io::Error>) -> Self {
        match answer {
            Ok(0) => Said::Negative,
            Ok(_) => Said::Addresses,
            Err(error) => Said::Failed(error),
        }
    }
}

fn answered(said: &Said) -> bool {
    !matches!(said, Said::Nothing)
}

/// Which query of a service lookup an answer answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Query {
    /// The target's own AAAA or A query (`None`: both at once).
    Own(Option<Family>),
    /// The HTTPS query.
    Https,
    /// An AAAA or A query for another name an HTTPS record pointed at.
    TargetName,
}

/// What the queries of one name have said, and so whether the race may start.
#[derive(Debug, Default)]
pub(crate) struct Heard {
    ipv6: Said,
    ipv4: Said,
    /// The HTTPS query's answer, for a service lookup.
    https: Option<Said>,
}

/// What to do after an answer.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Next {
    /// Start the race with the addresses so far.
    Start,
    /// Wait for the AAAA answer (for a service lookup, and the HTTPS one), at most the
    /// Resolution Delay from now.
    WaitForIpv6,
    /// Wait for more answers.
    Wait,
    /// Every query has answered and none gave an address.
    NothingCame,
}

impl Heard {
    /// Records `family`'s answer (`None`: every family's at once) as the number of usable
    /// addresses it gave or its error, and says what to do: start at once on addresses from
    /// the AAAA query or from a one-shot answer; on IPv4 addresses first, wait the Resolution
    /// Delay for AAAA unless it has answered or IPv6 is not wanted.
    pub(crate) fn hear(
        &mut self,
        family: Option<Family>,
        answer: Result<usize, io::Error>,
        want_ipv6: bool,
    ) -> Next {
        self.keep(family, Said::from(answer));
        match (&self.ipv6, &self.ipv4) {
            (Said::Addresses, _) => Next::Start,
            (v6, Said::Addresses) if family.is_none() || !want_ipv6 || answered(v6) => Next::Start,
            (_, Said::Addresses) => Next::WaitForIpv6,
            (v6, v4) if answered(v6) && answered(v4) => Next::NothingCame,
            _ => Next::Wait,
        }
    }

    fn keep(&mut self, family: Option<Family>, said: Said) {
        match family {
            None => {
                self.ipv4 = said;
                self.ipv6 = Said::Negative;
            }
            Some(Family::Ipv6) => self.ipv6 = said,
            Some(Family::Ipv4) => self.ipv4 = said,
        }
    }

    /// What a service lookup's queries have said, the HTTPS query's answer awaited too.
    pub(crate) fn asking_https() -> Self {
        Self {
            https: Some(Said::Nothing),
            ..Self::default()
        }
    }

    /// Records a service lookup's answer to `query` (addresses or records counted, or its
    /// error) and says what to do (HEv3 §4.2): with an address at hand (`have_addrs`: from
    /// any query, hints included), start once the preferred family's query and the HTTPS
    /// query have answered, else wait at most the Resolution Delay; without one, wait for the
    /// answers to end. The HTTPS answer's hints of a family (`hinted`) count as a positive
    /// answer of that family until its own query answers.
    pub(crate) fn hear_service(
        &mut self,
        query: Query,
        answer: Result<usize, io::Error>,
        hinted: [bool; 2],
        want_ipv6: bool,
        have_addrs: bool,
    ) -> Next {
        match query {
            Query::Own(family) => self.keep(family, Said::from(answer)),
            Query::Https => {
                self.https = Some(Said::from(answer));
                for (said, hinted) in [&mut self.ipv6, &mut self.ipv4].into_iter().zip(hinted) {
                    if hinted && !answered(said) {
                        *said = Said::Addresses;
                    }
                }
            }
            Query::TargetName => {}
        }
        let preferred = match want_ipv6 {
            true => &self.ipv6,
            false => &self.ipv4,
        };
        let https_answered = self.https.as_ref().is_none_or(answered);
        match have_addrs {
            false => Next::Wait,
            true if answered(preferred) && https_answered => Next::Start,
            true => Next::WaitForIpv6,
        }
    }

    /// Whether a family's query has not answered yet.
    pub(crate) fn awaits(&self, family: Family) -> bool {
        let said = match family {
            Family::Ipv6 => &self.ipv6,
            Family::Ipv4 => &self.ipv4,
        };
        matches!(said, Said::Nothing)
    }

    /// Why nothing came: the failed queries' errors (both, or the one), or `None` when the
    /// answers were only negative.
    pub(crate) fn failure(self) -> Option<io::Error> {
        match (self.ipv6, self.ipv4) {
            (Said::Failed(ipv6), Said::Failed(ipv4)) => Some(FamilyErrors { ipv6, ipv4 }.into_io()),
            (Said::Failed(one), _) | (_, Said::Failed(one)) => Some(one),
            _ => match self.https {
                Some(Said::Failed(https)) => Some(https),
                _ => None,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(n: usize) -> Result<usize, io::Error> {
        Ok(n)
    }

    #[test]
    fn when_the_race_may_start() {
        use Family::{Ipv4, Ipv6};
        // AAAA first: at once.
        assert_eq!(Heard::default().hear(Some(Ipv6), ok(2), true), Next::Start);
        // A first: wait for AAAA, which ends the wait whatever it says.
        let mut heard = Heard::default();
        assert_eq!(heard.hear(Some(Ipv4), ok(1), true), Next::WaitForIpv6);
        assert!(heard.awaits(Ipv6));
        assert_eq!(heard.hear(Some(Ipv6), ok(0), true), Next::Start);
        // A first when IPv6 is not wanted: at once.
        assert_eq!(Heard::default().hear(Some(Ipv4), ok(1), false), Next::Start);
        // A negative AAAA first: wait for A.
        let mut heard = Heard::default();
        assert_eq!(heard.hear(Some(Ipv6), ok(0), true), Next::Wait);
        assert_eq!(heard.hear(Some(Ipv4), ok(3), true), Next::Start);
        // A one-shot answer: at once, or nothing came.
        assert_eq!(Heard::default().hear(None, ok(1), true), Next::Start);
        assert_eq!(Heard::default().hear(None, ok(0), true), Next::NothingCame);
    }

    #[test]
    fn a_service_lookup_waits_for_the_https_answer_and_the_preferred_family() {
        use Family::{Ipv4, Ipv6};
        use Query::{Https, Own};
        let none = [false, false];
        // AAAA first: the HTTPS answer is waited for, at most the resolution delay.
        let mut heard = Heard::asking_https();
        assert_eq!(
            heard.hear_service(Own(Some(Ipv6)), ok(1), none, true, true),
            Next::WaitForIpv6
        );
        assert_eq!(
            heard.hear_service(Https, ok(0), none, true, true),
            Next::Start
        );
        // IPv6 hints are a positive AAAA answer: at once.
        let mut heard = Heard::asking_https();
        assert_eq!(
            heard.hear_service(Https, ok(1), [true, false], true, true),
            Next::Start
        );
        // IPv4 hints only: AAAA is waited for.
        let mut heard = Heard::asking_https();
        assert_eq!(
            heard.hear_service(Https, ok(1), [false, true], true, true),
            Next::WaitForIpv6
        );
        assert_eq!(
            heard.hear_service(Own(Some(Ipv6)), ok(0), none, true, true),
            Next::Start
        );
        // Without an address, the answers' end decides.
        let mut heard = Heard::asking_https();
        assert_eq!(
            heard.hear_service(Own(Some(Ipv4)), ok(0), none, true, false),
            Next::Wait
        );
        // A failed HTTPS query is why nothing came when the families were only negative.
        let mut heard = Heard::asking_https();
        heard.hear_service(
            Https,
            Err(io::Error::other("alias loop")),
            none,
            true,
            false,
        );
        heard.hear_service(Own(None), ok(0), none, true, false);
        assert_eq!(heard.failure().unwrap().to_string(), "alias loop");
    }

    #[test]
    fn both_failures_are_kept() {
        let mut heard = Heard::default();
        let nx = io::Error::new(io::ErrorKind::NotFound, "no such name");
        let timeout = io::Error::new(io::ErrorKind::TimedOut, "server did not answer");
        assert_eq!(heard.hear(Some(Family::Ipv6), Err(nx), true), Next::Wait);
        assert_eq!(
            heard.hear(Some(Family::Ipv4), Err(timeout), true),
            Next::NothingCame
        );
        let error = heard.failure().unwrap();
        assert_eq!(error.kind(), io::ErrorKind::TimedOut);
        assert_eq!(
            error.to_string(),
            "AAAA: no such name; A: server did not answer"
        );
        let both = error
            .get_ref()
            .and_then(|e| e.downcast_ref::<FamilyErrors>())
            .unwrap();
        assert_eq!(both.ipv6.kind(), io::ErrorKind::NotFound);
    }
}
