//! Which endpoints a service connect dials, from the answers so far: each usable record's
//! addresses (the A and AAAA answers for its TargetName, its hints until they come) at its
//! port, by priority, then the target's own addresses. Pure: fed answers, it says which
//! addresses are new and which earlier ones no longer belong.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use crate::resolve::answers::{Answer, Family, Query, ServicePart};
use crate::resolve::service::endpoint::Endpoints;
use crate::resolve::service::normalized;
use crate::resolve::service::record::{Service, ServiceRecord};

/// What one answer changed.
#[derive(Debug)]
pub(crate) struct Planned {
    pub(crate) query: Query,
    /// How many addresses or records it held, or the query's error.
    pub(crate) heard: io::Result<usize>,
    /// Addresses to dial that were not there before, in order.
    pub(crate) added: Vec<SocketAddr>,
    /// Addresses given before that no longer belong (hints that the TargetName's answer does
    /// not list): not to be started.
    pub(crate) withdrawn: Vec<SocketAddr>,
}

/// One name's addresses per family, `None` until its query answers.
#[derive(Debug, Default)]
struct Lists {
    ipv6: Option<Vec<IpAddr>>,
    ipv4: Option<Vec<IpAddr>>,
}

impl Lists {
    /// Keeps `answer`'s addresses for its families; a failed query keeps nothing, so that
    /// hints stay in use.
    fn keep(&mut self, family: Option<Family>, addrs: &[SocketAddr]) {
        let of = |family| {
            let listed = addrs.iter().filter(move |a| Family::of(a) == family);
            Some(listed.map(SocketAddr::ip).collect())
        };
        if family != Some(Family::Ipv4) {
            self.ipv6 = of(Family::Ipv6);
        }
        if family != Some(Family::Ipv6) {
            self.ipv4 = of(Family::Ipv4);
        }
    }
}

/// The endpoints of one service connect as the answers come.
#[derive(Debug)]
pub(crate) struct Plan {
    host: Box<str>,
    port: u16,
    service: Service,
    /// The usable records by priority, once the HTTPS query has answered.
    records: Option<Vec<Arc<ServiceRecord>>>,
    own: Lists,
    target_names: HashMap<Box<str>, Lists>,
    /// Every address given so far, and whether it still belongs.
    given: HashMap<SocketAddr, bool>,
    endpoints: Arc<Endpoints>,
}

impl Plan {
    pub(crate) fn new(host: &str, port: u16, service: Service, endpoints: Arc<Endpoints>) -> Self {
        Self {
            host: normalized(host),
            port,
            service,
            records: None,
            own: Lists::default(),
            target_names: HashMap::new(),
            given: HashMap::new(),
            endpoints,
        }
    }

    /// The endpoints' table, for the race and the dialer.
    pub(crate) fn endpoints(&self) -> &Arc<Endpoints> {
        &self.endpoints
    }

    /// Takes in `answer` and says what changed.
    pub(crate) fn hear(&mut self, answer: Answer) -> Planned {
        let (query, heard) = match answer.service.map(|part| *part) {
            None => {
                let heard = answer.addrs.map(|addrs| {
                    self.own.keep(answer.family, &addrs);
                    addrs.len()
                });
                (Query::Own(answer.family), heard)
            }
            Some(ServicePart::Records(records)) => {
                let heard = records.map(|records| {
                    let count = records.len();
                    self.records = Some(self.usable(records));
                    count
                });
                if heard.is_err() {
                    // A failed HTTPS query counts as a negative one (HEv3 §4.2).
                    self.records = Some(Vec::new());
                }
                (Query::Https, heard)
            }
            Some(ServicePart::ForName(name)) => {
                let heard = answer.addrs.map(|addrs| {
                    let lists = self.target_names.entry(normalized(&name)).or_default();
                    lists.keep(answer.family, &addrs);
                    addrs.len()
                });
                (Query::TargetName, heard)
            }
        };
        let (added, withdrawn) = self.update();
        Planned {
            query,
            heard,
            added,
            withdrawn,
        }
    }

    /// The records a caller speaking `self.service` may use, by priority (stable: equal
    /// priorities keep the answer's order); the others are skipped with a debug event.
    fn usable(&self, records: Vec<ServiceRecord>) -> Vec<Arc<ServiceRecord>> {
        let mut usable: Vec<_> = records
            .into_iter()
            .filter(|record| match record.unusable(&self.service) {
                None => true,
                Some(why) => {
                    tracing::debug!(?record, ?why, "HTTPS record skipped");
                    false
                }
            })
            .map(Arc::new)
            .collect();
        usable.sort_by_key(|record| record.priority());
        usable
    }

    /// Brings the table up to date; returns the addresses new to it and those that no
    /// longer belong.
    fn update(&mut self) -> (Vec<SocketAddr>, Vec<SocketAddr>) {
        let wanted = self.wanted();
        let mut added = Vec::new();
        for (addr, record) in &wanted {
            self.endpoints.set(*addr, record.as_ref());
            // Given once: one withdrawn stays withdrawn, as the race has dropped it.
            if let Entry::Vacant(slot) = self.given.entry(*addr) {
                slot.insert(true);
                added.push(*addr);
            }
        }
        let mut withdrawn = Vec::new();
        if self.given.len() > wanted.len() {
            let still: HashMap<SocketAddr, ()> = wanted.iter().map(|(a, _)| (*a, ())).collect();
            for (addr, belongs) in &mut self.given {
                if *belongs && !still.contains_key(addr) {
                    *belongs = false;
                    withdrawn.push(*addr);
                }
            }
        }
        (added, withdrawn)
    }

    /// Every endpoint in order, each once (the first place it takes): each record's, then the
    /// target's own addresses at its port, without a record.
    fn wanted(&self) -> Vec<(SocketAddr, Option<Arc<ServiceRecord>>)> {
        let mut wanted = Vec::new();
        for record in self.records.iter().flatten() {
            let port = record.port().unwrap_or(self.port);
            let lists = match self.is_own(record.target_name()) {
                true => Some(&self.own),
                false => self.target_names.get(&*normalized(record.target_name())),
            };
            let (ipv6_hints, ipv4_hints) = record.hints();
            let ipv6: Vec<IpAddr> = match lists.and_then(|l| l.ipv6.as_ref()) {
                Some(answered) => answered.clone(),
                None => ipv6_hints.iter().map(|ip| IpAddr::V6(*ip)).collect(),
            };
            let ipv4: Vec<IpAddr> = match lists.and_then(|l| l.ipv4.as_ref()) {
                Some(answered) => answered.clone(),
                None => ipv4_hints.iter().map(|ip| IpAddr::V4(*ip)).collect(),
            };
            let addrs = ipv6
                .into_iter()
                .chain(ipv4)
                .map(|ip| SocketAddr::new(ip, port));
            wanted.extend(addrs.map(|addr| (addr, Some(record.clone()))));
        }
        let own = self.own.ipv6.iter().chain(&self.own.ipv4).flatten();
        wanted.extend(own.map(|ip| (SocketAddr::new(*ip, self.port), None)));
        let mut seen = HashMap::with_capacity(wanted.len());
        wanted.retain(|(addr, _)| seen.insert(*addr, ()).is_none());
        wanted
    }

    /// Whether a TargetName is the target's own name: `"."` (after aliases, which a resolver
    /// resolves to the name it found the records at) or the same name.
    fn is_own(&self, target_name: &str) -> bool {
        target_name == "." || *normalized(target_name) == *self.host
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan() -> Plan {
        let service = Service::https().protocols(["h2", "http/1.1"]);
        Plan::new("svc.test", 443, service.clone(), Endpoints::new(service))
    }

    fn addrs(list: &[&str]) -> Vec<SocketAddr> {
        list.iter().map(|s| s.parse().unwrap()).collect()
    }

    fn records(records: Vec<ServiceRecord>) -> Answer {
        Answer::https(Ok(records))
    }

    #[test]
    fn hints_are_dialed_until_the_target_names_answer_replaces_them() {
        let mut plan = plan();
        let hinted = ServiceRecord::new(1, "pool.test")
            .with_ipv4_hints(["127.0.0.1".parse().unwrap(), "127.0.0.2".parse().unwrap()]);
        let planned = plan.hear(records(vec![hinted]));
        assert_eq!(planned.query, Query::Https);
        assert_eq!(planned.added, addrs(&["127.0.0.1:443", "127.0.0.2:443"]));
        let answer =
            Answer::ipv4(Ok(addrs(&["127.0.0.2:443", "127.0.0.3:443"]))).for_name("POOL.test.");
        let planned = plan.hear(answer);
        assert_eq!(planned.query, Query::TargetName);
        assert_eq!(planned.added, addrs(&["127.0.0.3:443"]));
        assert_eq!(planned.withdrawn, addrs(&["127.0.0.1:443"]));
        // A failed query for the name keeps what is there.
        let failed = Answer::ipv4(Err(io::ErrorKind::TimedOut.into())).for_name("pool.test");
        let planned = plan.hear(failed);
        assert!(planned.added.is_empty() && planned.withdrawn.is_empty());
    }

    #[test]
    fn records_order_by_priority_with_their_port_and_the_own_addresses_last() {
        let mut plan = plan();
        let own = Answer::ipv6(Ok(addrs(&["[::1]:443"])));
        assert_eq!(plan.hear(own).added, addrs(&["[::1]:443"]));
        let second = ServiceRecord::new(2, ".").with_port(8002);
        let first = ServiceRecord::new(1, ".").with_port(8001);
        let planned = plan.hear(records(vec![second, first]));
        assert_eq!(planned.added, addrs(&["[::1]:8001", "[::1]:8002"]));
        let ranks: Vec<u32> = ["[::1]:8001", "[::1]:8002", "[::1]:443"]
            .iter()
            .map(|a| plan.endpoints().rank(&a.parse().unwrap()))
            .collect();
        assert_eq!(ranks, [1, 2, u32::MAX]);
        let own_v4 = Answer::ipv4(Ok(addrs(&["127.0.0.1:443"])));
        let planned = plan.hear(own_v4);
        assert_eq!(
            planned.added,
            addrs(&["127.0.0.1:8001", "127.0.0.1:8002", "127.0.0.1:443"])
        );
        let endpoint = plan.endpoints().endpoint("127.0.0.1:8002".parse().unwrap());
        assert_eq!(endpoint.record().map(ServiceRecord::priority), Some(2));
        assert!(
            plan.endpoints()
                .endpoint("127.0.0.1:443".parse().unwrap())
                .record()
                .is_none()
        );
    }

    #[test]
    fn an_address_the_own_answer_had_takes_its_records_place() {
        let mut plan = plan();
        plan.hear(Answer::ipv4(Ok(addrs(&["127.0.0.1:443"]))));
        let record = ServiceRecord::new(1, "SVC.test.").with_alpn(["h2"]);
        let planned = plan.hear(records(vec![record]));
        assert!(
            planned.added.is_empty(),
            "the same address at the same port"
        );
        let endpoint = plan.endpoints().endpoint("127.0.0.1:443".parse().unwrap());
        assert_eq!(endpoint.alpn(), [b"h2".as_slice(), b"http/1.1"]);
    }

    #[test]
    fn unusable_records_and_negative_or_failed_answers_leave_the_own_addresses() {
        for answer in [
            records(vec![
                ServiceRecord::new(1, ".")
                    .with_port(1)
                    .with_other_key(9)
                    .with_mandatory([9]),
            ]),
            records(vec![
                ServiceRecord::new(1, ".")
                    .with_alpn(["h3"])
                    .with_no_default_alpn()
                    .with_port(1),
            ]),
            records(Vec::new()),
            Answer::https(Err(io::Error::other("alias loop"))),
        ] {
            let mut plan = plan();
            plan.hear(Answer::ipv4(Ok(addrs(&["127.0.0.1:443"]))));
            let planned = plan.hear(answer);
            assert!(
                planned.added.is_empty() && planned.withdrawn.is_empty(),
                "{planned:?}"
            );
        }
    }

    /// Arbitrary answers in arbitrary order, duplicates and nonsense included: never a panic,
    /// no address given twice, nothing withdrawn that was not given, and in the end every
    /// address that belongs is one the plan wants, each once.
    mod hostile_answers {
        use super::*;
        use proptest::prelude::*;

        fn ip(n: u8) -> IpAddr {
            match n % 2 {
                0 => IpAddr::from([127, 0, 0, n]),
                _ => IpAddr::from([0, 0, 0, 0, 0, 0, 0, u16::from(n)]),
            }
        }

        fn names() -> impl Strategy<Value = &'static str> {
            prop::sample::select(vec![
                ".",
                "svc.test",
                "SVC.test.",
                "pool.test",
                "other.test",
            ])
        }

        fn record() -> impl Strategy<Value = ServiceRecord> {
            let keys =
                prop::collection::vec(prop::sample::select(vec![0u16, 1, 3, 4, 9, 65_000]), 0..3);
            let alpn =
                prop::collection::vec(prop::sample::select(vec!["h2", "h3", "http/1.1"]), 0..3);
            let hints = prop::collection::vec(0u8..8, 0..4);
            (
                0u16..4,
                names(),
                prop::option::of(1u16..4),
                hints,
                keys,
                alpn,
                any::<bool>(),
            )
                .prop_map(|(priority, target, port, hints, keys, alpn, no_default)| {
                    let (v6, v4): (Vec<IpAddr>, Vec<IpAddr>) =
                        hints.into_iter().map(ip).partition(IpAddr::is_ipv6);
                    let mut record = ServiceRecord::new(priority, target)
                        .with_alpn(alpn)
                        .with_mandatory(keys)
                        .with_other_key(9)
                        .with_ipv6_hints(v6.into_iter().filter_map(|ip| match ip {
                            IpAddr::V6(v6) => Some(v6),
                            IpAddr::V4(_) => None,
                        }))
                        .with_ipv4_hints(v4.into_iter().filter_map(|ip| match ip {
                            IpAddr::V4(v4) => Some(v4),
                            IpAddr::V6(_) => None,
                        }));
                    if let Some(port) = port {
                        record = record.with_port(port);
                    }
                    if no_default {
                        record = record.with_no_default_alpn();
                    }
                    record
                })
        }

        fn answer() -> impl Strategy<Value = Answer> {
            let addrs =
                prop::collection::vec((0u8..8).prop_map(|n| SocketAddr::new(ip(n), 443)), 0..4);
            prop_oneof![
                addrs.clone().prop_map(|a| Answer::ipv6(Ok(a))),
                addrs.clone().prop_map(|a| Answer::ipv4(Ok(a))),
                addrs.clone().prop_map(|a| Answer::all(Ok(a))),
                Just(Answer::ipv4(Err(io::Error::other("failed")))),
                prop::collection::vec(record(), 0..4).prop_map(|r| Answer::https(Ok(r))),
                Just(Answer::https(Err(io::Error::other("alias loop")))),
                (addrs.clone(), names()).prop_map(|(a, n)| Answer::ipv6(Ok(a)).for_name(n)),
                (addrs, names()).prop_map(|(a, n)| Answer::ipv4(Ok(a)).for_name(n)),
            ]
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(500))]
            #[test]
            fn the_plan_holds_for_any_answers(answers in prop::collection::vec(answer(), 0..8)) {
                let mut plan = plan();
                let mut belongs = std::collections::HashSet::new();
                let mut ever = std::collections::HashSet::new();
                for answer in answers {
                    let planned = plan.hear(answer);
                    for addr in &planned.withdrawn {
                        prop_assert!(belongs.remove(addr), "withdrew {addr}, which did not belong");
                    }
                    for addr in planned.added {
                        prop_assert!(ever.insert(addr), "gave {addr} twice");
                        belongs.insert(addr);
                    }
                }
                let wanted: std::collections::HashSet<_> =
                    plan.wanted().into_iter().map(|(addr, _)| addr).collect();
                prop_assert!(belongs.is_subset(&wanted), "{belongs:?} not all wanted: {wanted:?}");
            }
        }
    }
}
