//! Resolver faults, on the paused clock: a resolver that hangs, errors, answers nothing, or
//! repeats one address 1,000 times.

mod common;

use std::io::{self, ErrorKind};
use std::sync::atomic::Ordering;

use common::{FixedResolver, Script, Step, ms, v4};
use connect_any::{ConnectError, Connector, Resolve, Resolving, Stage};

#[derive(Debug)]
struct Hangs;

impl Resolve for Hangs {
    fn resolve<'a>(&'a self, _: &'a str, _: u16) -> Resolving<'a> {
        Box::pin(std::future::pending())
    }
}

#[derive(Debug)]
struct Fails;

impl Resolve for Fails {
    fn resolve<'a>(&'a self, host: &'a str, _: u16) -> Resolving<'a> {
        Box::pin(async move {
            Err(io::Error::new(
                ErrorKind::NotFound,
                format!("{host}: no such name"),
            ))
        })
    }
}

#[tokio::test(start_paused = true)]
async fn a_hanging_resolver_is_bounded_by_the_resolve_timeout() {
    let script = Script::new(&[]);
    let connector = Connector::new()
        .resolver(Hangs)
        .resolve_timeout(Some(ms(1500)));
    let error = connector
        .connect_with("hangs.test:1", script.dialer())
        .await
        .unwrap_err();
    let ConnectError::TimedOut {
        stage,
        elapsed,
        attempts,
        ..
    } = &error
    else {
        panic!("expected a timeout, got {error:?}");
    };
    assert_eq!((*stage, *elapsed), (Stage::Resolve, ms(1500)));
    assert!(attempts.is_empty());
    assert_eq!(
        error.to_string(),
        "timed out resolving hangs.test:1 after 1.5 s"
    );
    assert_eq!(io::Error::from(error).kind(), ErrorKind::TimedOut);
}

#[tokio::test(start_paused = true)]
async fn a_hanging_resolver_is_bounded_by_the_overall_timeout() {
    let script = Script::new(&[]);
    let connector = Connector::new()
        .resolver(Hangs)
        .resolve_timeout(Some(ms(5000)))
        .timeout(Some(ms(700)));
    let error = connector
        .connect_with("hangs.test:1", script.dialer())
        .await
        .unwrap_err();
    assert!(
        matches!(error, ConnectError::TimedOut { stage: Stage::Resolve, elapsed, .. } if elapsed == ms(700)),
        "{error:?}"
    );
    assert!(script.starts().is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_failing_resolver_is_a_resolve_error_with_its_cause() {
    let script = Script::new(&[]);
    let error = Connector::new()
        .resolver(Fails)
        .connect_with("fails.test:1", script.dialer())
        .await;
    let error = error.unwrap_err();
    assert_eq!(
        format!("{error:#}"),
        "failed to resolve fails.test:1: fails.test: no such name"
    );
    assert_eq!(error.to_string(), "failed to resolve fails.test:1");
    let source = std::error::Error::source(&error).expect("the cause is the source");
    assert_eq!(
        source.downcast_ref::<io::Error>().map(io::Error::kind),
        Some(ErrorKind::NotFound),
        "retry code walking source() finds the resolver's io::Error"
    );
    let ConnectError::Resolve { cause, .. } = &error else {
        panic!("{error:?}");
    };
    assert_eq!(cause.to_string(), "fails.test: no such name");
    assert_eq!(io::Error::from(error).kind(), ErrorKind::NotFound);
}

#[tokio::test(start_paused = true)]
async fn an_empty_answer_is_no_addresses() {
    let script = Script::new(&[]);
    let connector = Connector::new().resolver(FixedResolver::new("empty.test", &[]));
    let error = connector
        .connect_with("empty.test:1", script.dialer())
        .await
        .unwrap_err();
    assert!(matches!(&error, ConnectError::NoAddresses { host, .. } if host == "empty.test:1"));
    assert_eq!(io::Error::from(error).kind(), ErrorKind::NotFound);
    assert!(script.starts().is_empty());
}

#[tokio::test(start_paused = true)]
async fn one_address_a_thousand_times_is_dialed_once() {
    let script = Script::new(&[(v4(1), Step::Fail(ms(10), ErrorKind::ConnectionRefused))]);
    let resolver = FixedResolver::new("echo.test", &[v4(1); 1000]);
    let connector = Connector::new().resolver(resolver);
    let error = connector
        .connect_with("echo.test:1", script.dialer())
        .await
        .unwrap_err();
    assert_eq!(error.attempts().len(), 1);
    assert_eq!(script.start_times(), [ms(0)]);
    assert_eq!(io::Error::from(error).kind(), ErrorKind::ConnectionRefused);
}

#[tokio::test(start_paused = true)]
async fn ip_literals_and_lists_never_reach_the_resolver() {
    let resolver = std::sync::Arc::new(FixedResolver::new("x.test", &[v4(9)]));
    let script = Script::new(&[
        (v4(1), Step::Connect(ms(1))),
        (v4(2), Step::Connect(ms(1))),
        (v4(9), Step::Fail(ms(1), ErrorKind::ConnectionRefused)),
    ]);
    let connector = Connector::new().resolver(resolver.clone());
    connector
        .connect_with("127.0.0.1:1", script.dialer())
        .await
        .unwrap();
    connector
        .connect_with(("127.0.0.1", 2), script.dialer())
        .await
        .unwrap();
    connector
        .connect_with(vec![v4(2)], script.dialer())
        .await
        .unwrap();
    assert_eq!(resolver.calls.load(Ordering::SeqCst), 0);
    connector
        .connect_with("x.test:1", script.dialer())
        .await
        .unwrap_err();
    assert_eq!(resolver.calls.load(Ordering::SeqCst), 1);
}

/// A resolver that floods the connector with 40,000 distinct addresses, half of them repeated:
/// admitting them is linear, so the first attempt starts at once rather than after seconds of
/// pairwise comparisons.
#[tokio::test]
async fn a_flood_of_addresses_is_admitted_in_linear_time() {
    let distinct: Vec<_> = (0..40_000u32)
        .map(|n| std::net::SocketAddr::from(([127, 1, (n >> 8) as u8, n as u8], 1)))
        .collect();
    let flood: Vec<_> = distinct
        .iter()
        .chain(&distinct[..20_000])
        .copied()
        .collect();
    let connector = Connector::new().resolver(FixedResolver::new("flood.test", &flood));
    let began = std::time::Instant::now();
    let mut first = None;
    let mut dialed = Vec::new();
    connector
        .connect_with("flood.test:1", |addr| {
            first.get_or_insert_with(std::time::Instant::now);
            dialed.push(addr);
            async { Ok(()) }
        })
        .await
        .unwrap();
    let took = first.unwrap() - began;
    println!("40,000 addresses: first attempt after {took:?}");
    assert_eq!(dialed, [distinct[0]]);
    // Quadratic admission took over 10 s here in a debug build; linear takes milliseconds.
    assert!(took < std::time::Duration::from_secs(3), "{took:?}");
}
