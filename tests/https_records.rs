//! HTTPS service records (RFC 9460, Happy Eyeballs v3 §4-§6) on the paused clock: a scripted
//! resolver hands over the target's AAAA and A answers, the HTTPS records and the TargetNames'
//! answers at given times, and the race is checked to the millisecond.

mod common;

use std::io;
use std::net::{Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{Script, Step, TimedParts, ms};
use connect_any::{
    Answer, Answering, ConnectError, Connector, Endpoint, Resolve, Resolving, Service,
    ServiceRecord, Target,
};

/// A resolver that answers a service lookup on the clock; asked without a service, it gives
/// the target's own answers (`own`).
struct Https {
    service: TimedParts,
    own: TimedParts,
}

impl Resolve for Https {
    fn resolve<'a>(&'a self, _host: &'a str, _port: u16) -> Resolving<'a> {
        unreachable!("the connector asks for answers in parts")
    }

    fn resolve_in_parts<'a>(&'a self, _host: &'a str, _port: u16) -> Answering<'a> {
        self.own.answering()
    }

    fn resolve_https<'a>(&'a self, _host: &'a str, _port: u16) -> Option<Answering<'a>> {
        Some(self.service.answering())
    }
}

fn timed(parts: Vec<(u64, Answer)>, then_hangs: bool) -> TimedParts {
    let parts = parts
        .into_iter()
        .map(|(at, answer)| (ms(at), answer))
        .collect();
    TimedParts { parts, then_hangs }
}

fn https(parts: Vec<(u64, Answer)>, then_hangs: bool) -> Https {
    Https {
        service: timed(parts, then_hangs),
        own: TimedParts::default(),
    }
}

fn connector(resolver: Https) -> Connector {
    Connector::new()
        .resolver(resolver)
        .winner_memory(0, Duration::ZERO)
}

fn service_target() -> Target {
    Target::parse("svc.test:443")
        .unwrap()
        .with_service(Service::https().protocols(["h2", "http/1.1"]))
}

fn ip6(n: u16) -> Ipv6Addr {
    Ipv6Addr::new(0, 0, 0, 0, 0, 0, 0, n)
}

fn at(addr: &str, millis: u64) -> (SocketAddr, Duration) {
    (addr.parse().unwrap(), ms(millis))
}

fn own_none() -> Vec<(u64, Answer)> {
    vec![(5, Answer::ipv6(Ok(vec![]))), (5, Answer::ipv4(Ok(vec![])))]
}

/// A dialer for which `refused` refuses and `connects` connects, each after 1 ms.
fn refused_then_connects(refused: &str, connects: &str) -> Script {
    Script::new(&[
        (
            refused.parse().unwrap(),
            Step::Fail(ms(1), io::ErrorKind::ConnectionRefused),
        ),
        (connects.parse().unwrap(), Step::Connect(ms(1))),
    ])
}

/// Connects with every address hanging, for the attempts' start times.
async fn starts_of(resolver: Https, for_ms: u64) -> Vec<(SocketAddr, Duration)> {
    let script = Script::new(&[]);
    let connecting = connector(resolver).connect_with(service_target(), script.dialer());
    let _ = tokio::time::timeout(ms(for_ms), connecting).await;
    script.starts()
}

#[tokio::test(start_paused = true)]
async fn ipv6_hints_start_an_attempt_the_moment_the_record_arrives_at_its_port() {
    let record = ServiceRecord::new(1, ".")
        .with_port(8443)
        .with_ipv6_hints([ip6(9)]);
    let parts = vec![
        (10, Answer::https(Ok(vec![record]))),
        (200, Answer::ipv6(Ok(vec!["[::1]:443".parse().unwrap()]))),
        (200, Answer::ipv4(Ok(vec![]))),
    ];
    let starts = starts_of(https(parts, false), 300).await;
    // The hint at 10 ms, before any address answer; the AAAA answer at 200 ms replaces the
    // hint ([::9] is not listed, but has started), and its address at the record's port is
    // next at once: the running attempt's 250 ms have not passed, so at 260 ms.
    assert_eq!(starts[0], at("[::9]:8443", 10));
    assert_eq!(starts[1], at("[::1]:8443", 260));
}

#[tokio::test(start_paused = true)]
async fn ipv4_hints_wait_the_resolution_delay_for_the_aaaa_answer() {
    let record = ServiceRecord::new(1, ".").with_ipv4_hints(["127.0.0.9".parse().unwrap()]);
    let parts = vec![(10, Answer::https(Ok(vec![record])))];
    let starts = starts_of(https(parts, true), 300).await;
    assert_eq!(starts, [at("127.0.0.9:443", 60)]);
}

#[tokio::test(start_paused = true)]
async fn the_target_names_answer_replaces_the_hints_and_an_unlisted_hint_is_never_dialed() {
    let record = ServiceRecord::new(1, "pool.test").with_ipv6_hints([ip6(2), ip6(5)]);
    let mut parts = own_none();
    parts.push((10, Answer::https(Ok(vec![record]))));
    let pool = vec!["[::3]:443".parse().unwrap()];
    parts.push((100, Answer::ipv6(Ok(pool)).for_name("pool.test")));
    parts.push((100, Answer::ipv4(Ok(vec![])).for_name("pool.test")));
    let starts = starts_of(https(parts, false), 2_000).await;
    // [::2] started at 10 ms and is not aborted; [::5] is withdrawn before its turn at 260 ms,
    // and [::3] takes that turn.
    assert_eq!(starts, [at("[::2]:443", 10), at("[::3]:443", 260)]);
}

#[tokio::test(start_paused = true)]
async fn records_are_dialed_by_priority_each_interleaved_the_target_itself_last() {
    let records = vec![
        ServiceRecord::new(2, ".").with_port(2002),
        ServiceRecord::new(1, ".").with_port(1001),
    ];
    let parts = vec![
        (5, Answer::ipv6(Ok(vec!["[::1]:443".parse().unwrap()]))),
        (5, Answer::ipv4(Ok(vec!["127.0.0.1:443".parse().unwrap()]))),
        (5, Answer::https(Ok(records))),
    ];
    let starts = starts_of(https(parts, false), 2_000).await;
    let order: Vec<String> = starts.iter().map(|(addr, _)| addr.to_string()).collect();
    assert_eq!(
        order,
        [
            "[::1]:1001",
            "127.0.0.1:1001",
            "[::1]:2002",
            "127.0.0.1:2002",
            "[::1]:443",
            "127.0.0.1:443"
        ]
    );
    let times: Vec<Duration> = starts.iter().map(|(_, at)| *at).collect();
    assert_eq!(times, [5, 255, 505, 755, 1005, 1255].map(ms));
}

#[tokio::test(start_paused = true)]
async fn a_record_with_an_unknown_mandatory_key_or_no_common_protocol_is_skipped() {
    let records = vec![
        ServiceRecord::new(1, ".")
            .with_port(1001)
            .with_other_key(65_000)
            .with_mandatory([65_000]),
        ServiceRecord::new(1, ".")
            .with_port(1002)
            .with_alpn(["h3"])
            .with_no_default_alpn(),
        ServiceRecord::new(3, ".").with_port(3003),
    ];
    let parts = vec![
        (5, Answer::ipv6(Ok(vec!["[::1]:443".parse().unwrap()]))),
        (5, Answer::ipv4(Ok(vec![]))),
        (5, Answer::https(Ok(records))),
    ];
    let starts = starts_of(https(parts, false), 600).await;
    assert_eq!(starts, [at("[::1]:3003", 5), at("[::1]:443", 255)]);
}

#[tokio::test(start_paused = true)]
async fn a_negative_https_answer_changes_nothing() {
    let own = || {
        vec![
            (5, Answer::ipv6(Ok(vec!["[::1]:443".parse().unwrap()]))),
            (7, Answer::ipv4(Ok(vec!["127.0.0.1:443".parse().unwrap()]))),
        ]
    };
    let mut parts = own();
    parts.push((6, Answer::https(Ok(vec![]))));
    parts.sort_by_key(|(at, _)| *at);
    let with_records = starts_of(https(parts, false), 600).await;
    // The same target without a service: the race a plain connect runs.
    let script = Script::new(&[]);
    let resolver = Https {
        service: TimedParts::default(),
        own: timed(own(), false),
    };
    let plain = connector(resolver).connect_with("svc.test:443", script.dialer());
    let _ = tokio::time::timeout(ms(600), plain).await;
    assert_eq!(
        with_records[0],
        at("[::1]:443", 6),
        "started once HTTPS said no"
    );
    let addrs = |starts: &[(SocketAddr, Duration)]| starts.iter().map(|s| s.0).collect::<Vec<_>>();
    assert_eq!(addrs(&with_records), addrs(&script.starts()));
}

#[tokio::test(start_paused = true)]
async fn a_dropped_https_query_costs_at_most_the_resolution_delay() {
    let parts = vec![
        (5, Answer::ipv6(Ok(vec!["[::1]:443".parse().unwrap()]))),
        (5, Answer::ipv4(Ok(vec![]))),
    ];
    let starts = starts_of(https(parts, true), 300).await;
    assert_eq!(starts, [at("[::1]:443", 55)]);
}

#[tokio::test(start_paused = true)]
async fn a_failed_https_query_with_no_address_is_the_connects_error() {
    let mut parts = own_none();
    parts.push((
        5,
        Answer::https(Err(io::Error::other("HTTPS alias loop at a.test"))),
    ));
    let script = Script::new(&[]);
    let error = connector(https(parts, false))
        .connect_with(service_target(), script.dialer())
        .await
        .unwrap_err();
    assert!(matches!(error, ConnectError::Resolve { .. }), "{error:?}");
    assert!(format!("{error:#}").contains("alias loop"), "{error:#}");
}

#[tokio::test(start_paused = true)]
async fn the_endpoint_dialer_is_handed_the_records_alpn_and_ech_config() {
    let ech = vec![0xfe, 0x0d, 0x00, 0x01, 0x42];
    let record = ServiceRecord::new(1, ".")
        .with_alpn(["h2", "h3"])
        .with_ech_config_list(ech.clone())
        .with_ipv6_hints([ip6(1)]);
    let parts = vec![
        (5, Answer::https(Ok(vec![record]))),
        (5, Answer::ipv4(Ok(vec!["127.0.0.1:443".parse().unwrap()]))),
    ];
    let seen: Arc<Mutex<Vec<Endpoint>>> = Arc::default();
    let script = Script::new(&[("127.0.0.1:443".parse().unwrap(), Step::Connect(ms(1)))]);
    let mut dial = script.dialer();
    let record_of = seen.clone();
    let stream = connector(https(parts, true))
        .connect_endpoints_with(service_target(), move |endpoint: Endpoint| {
            record_of.lock().unwrap().push(endpoint.clone());
            dial(endpoint.addr())
        })
        .await
        .unwrap();
    assert_eq!(stream.addr, "127.0.0.1:443".parse().unwrap());
    let seen = seen.lock().unwrap();
    let hinted = &seen[0];
    assert_eq!(hinted.addr(), "[::1]:443".parse().unwrap());
    // h3 is the record's but not the caller's; http/1.1 is the default every record has.
    assert_eq!(hinted.alpn(), [b"h2".as_slice(), b"http/1.1"]);
    assert_eq!(
        hinted.ech_config_list(),
        Some(ech.as_slice()),
        "the bytes unchanged"
    );
    assert_eq!(hinted.target_name(), Some("."));
    // The A answer's address is the same record's (TargetName "."), at 255 ms.
    assert_eq!(seen[1].addr(), "127.0.0.1:443".parse().unwrap());
    assert_eq!(seen[1].record().map(ServiceRecord::priority), Some(1));
    assert_eq!(script.start_times(), [ms(5), ms(255)]);
}

#[tokio::test(start_paused = true)]
async fn a_resolver_that_cannot_ask_for_records_connects_as_without_a_service() {
    let script = Script::new(&[("[::1]:443".parse().unwrap(), Step::Connect(ms(3)))]);
    let resolver = common::FixedResolver::new("svc.test", &["[::1]:443".parse().unwrap()]);
    let connector = Connector::new().resolver(resolver);
    let mut dial = script.dialer();
    let stream = connector
        .connect_endpoints_with(service_target(), move |endpoint: Endpoint| {
            assert!(endpoint.record().is_none() && endpoint.alpn().is_empty());
            dial(endpoint.addr())
        })
        .await
        .unwrap();
    assert_eq!(stream.addr, "[::1]:443".parse().unwrap());
    assert_eq!(script.start_times(), [ms(0)]);
}

#[tokio::test(start_paused = true)]
async fn the_report_names_the_record_of_each_endpoint() {
    let records = vec![ServiceRecord::new(1, "pool.test").with_ipv6_hints([ip6(7)])];
    let parts = vec![
        (5, Answer::ipv6(Ok(vec![]))),
        (5, Answer::ipv4(Ok(vec!["127.0.0.1:443".parse().unwrap()]))),
        (5, Answer::https(Ok(records))),
    ];
    let script = refused_then_connects("[::7]:443", "127.0.0.1:443");
    let (_, report) = connector(https(parts, false))
        .connect_with_reported(service_target(), script.dialer())
        .await
        .unwrap();
    let named: Vec<Option<&str>> = report
        .attempts()
        .iter()
        .map(|attempt| attempt.record().map(ServiceRecord::target_name))
        .collect();
    assert_eq!(named, [Some("pool.test"), None], "{report:#}");
    assert!(
        format!("{report:#}").contains("(HTTPS record 1 pool.test)"),
        "{report:#}"
    );
}

#[tokio::test(start_paused = true)]
async fn with_a_resolver_that_cannot_ask_for_records_the_service_target_is_cached() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    struct Counting(Arc<AtomicUsize>);
    impl Resolve for Counting {
        fn resolve<'a>(&'a self, _host: &'a str, port: u16) -> Resolving<'a> {
            self.0.fetch_add(1, Ordering::SeqCst);
            Box::pin(async move { Ok(vec![SocketAddr::from(([127, 0, 0, 1], port))]) })
        }
    }
    let calls = Arc::new(AtomicUsize::new(0));
    let connector = Connector::new().resolver(Counting(calls.clone()));
    let script = Script::new(&[("127.0.0.1:443".parse().unwrap(), Step::Connect(ms(1)))]);
    for _ in 0..3 {
        let stream = connector
            .connect_with(service_target(), script.dialer())
            .await;
        assert_eq!(stream.unwrap().addr, "127.0.0.1:443".parse().unwrap());
    }
    assert_eq!(
        calls.load(Ordering::SeqCst),
        1,
        "the later connects were the cache's"
    );
}

#[tokio::test(start_paused = true)]
async fn the_winner_memory_puts_the_last_winner_first_across_priorities() {
    let parts = {
        let records = vec![
            ServiceRecord::new(1, ".").with_port(1001),
            ServiceRecord::new(2, ".").with_port(2002),
        ];
        vec![
            (5, Answer::ipv6(Ok(vec![]))),
            (5, Answer::ipv4(Ok(vec!["127.0.0.1:443".parse().unwrap()]))),
            (5, Answer::https(Ok(records))),
        ]
    };
    let script = refused_then_connects("127.0.0.1:1001", "127.0.0.1:2002");
    // The resolver's answers replay on every lookup; the winner memory is on.
    let connector = Connector::new().resolver(https(parts, false));
    for _ in 0..2 {
        let stream = connector
            .connect_with(service_target(), script.dialer())
            .await;
        assert_eq!(stream.unwrap().addr, "127.0.0.1:2002".parse().unwrap());
    }
    let order: Vec<u16> = script
        .starts()
        .iter()
        .map(|(addr, _)| addr.port())
        .collect();
    // The first connect: priority 1 fails, priority 2 wins; the second: the winner first.
    assert_eq!(order, [1001, 2002, 2002]);
}
