//! Real sockets on loopback only (127.0.0.0/8 and ::1), with generous time bounds.

mod common;

use std::io::ErrorKind;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::{BlackHole, has_ipv6_loopback, listener, refused_addr};
use connect_any::{ConnectError, Connector, Strategy, connect_any};
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

#[tokio::test]
async fn connects_over_ipv4() {
    let (listener, addr) = listener("127.0.0.1").await;
    let stream = connect_any(addr).await.unwrap();
    assert_eq!(stream.peer_addr().unwrap(), addr);
    let (_, peer) = listener.accept().await.unwrap();
    assert_eq!(peer, stream.local_addr().unwrap());
}

#[tokio::test]
async fn connects_over_ipv6() {
    if !has_ipv6_loopback() {
        common::skip("this machine cannot bind [::1]");
        return;
    }
    let (_listener, addr) = listener("::1").await;
    let stream = connect_any(format!("[::1]:{}", addr.port())).await.unwrap();
    assert_eq!(stream.peer_addr().unwrap(), addr);
}

#[tokio::test]
async fn connects_to_localhost_by_name() {
    let (_listener, addr) = listener("127.0.0.1").await;
    let connector = Connector::new().ip_families(connect_any::IpFamilies::V4Only);
    let stream = connector.connect(("localhost", addr.port())).await.unwrap();
    assert_eq!(stream.peer_addr().unwrap(), addr);
}

#[tokio::test]
async fn dual_stack_list_connects_to_the_first_family() {
    if !has_ipv6_loopback() {
        common::skip("this machine cannot bind [::1]");
        return;
    }
    let (_v4, addr4) = listener("127.0.0.1").await;
    let v6 = TcpListener::bind(("::1", addr4.port())).await;
    let Ok(_v6) = v6 else {
        common::skip(&format!("port {} is taken on [::1]", addr4.port()));
        return;
    };
    let addr6 = SocketAddr::from(([0, 0, 0, 0, 0, 0, 0, 1], addr4.port()));
    let stream = connect_any(vec![addr6, addr4]).await.unwrap();
    assert_eq!(stream.peer_addr().unwrap(), addr6);
}

#[tokio::test]
async fn a_refused_port_is_reported_as_refused() {
    let addr = refused_addr("127.0.0.1");
    let error = connect_any(addr).await.unwrap_err();
    let ConnectError::AllAttemptsFailed { attempts, .. } = &error else {
        panic!("expected all attempts failed, got {error:?}");
    };
    assert_eq!(attempts.len(), 1);
    assert_eq!(attempts[0].addr(), addr);
    assert_eq!(attempts[0].error().kind(), ErrorKind::ConnectionRefused);
    assert_eq!(
        std::io::Error::from(error).kind(),
        ErrorKind::ConnectionRefused
    );
}

#[tokio::test]
async fn a_black_hole_really_hangs() {
    let hole = BlackHole::on("127.0.0.1").await.unwrap();
    let attempt = tokio::time::timeout(Duration::from_millis(700), TcpStream::connect(hole.addr));
    assert!(
        attempt.await.is_err(),
        "a connect to the black hole must hang"
    );
}

#[tokio::test]
async fn happy_eyeballs_reaches_the_working_address_in_about_the_attempt_delay() {
    let hole_ip = if has_ipv6_loopback() {
        "::1"
    } else {
        "127.0.0.2"
    };
    let hole = BlackHole::on(hole_ip).await.unwrap();
    let (_listener, working) = listener("127.0.0.1").await;
    let began = Instant::now();
    let stream = connect_any(vec![hole.addr, working]).await.unwrap();
    let took = began.elapsed();
    assert_eq!(stream.peer_addr().unwrap(), working);
    assert!(took >= Duration::from_millis(240), "took {took:?}");
    assert!(took < Duration::from_millis(2000), "took {took:?}");
}

#[tokio::test]
async fn sequential_moves_on_after_the_attempt_timeout() {
    let hole = BlackHole::on("127.0.0.1").await.unwrap();
    let (_listener, working) = listener("127.0.0.1").await;
    let connector = Connector::new()
        .strategy(Strategy::Sequential)
        .attempt_timeout(Some(Duration::from_millis(400)));
    let began = Instant::now();
    let stream = connector.connect(vec![hole.addr, working]).await.unwrap();
    let took = began.elapsed();
    assert_eq!(stream.peer_addr().unwrap(), working);
    assert!(took >= Duration::from_millis(390), "took {took:?}");
    assert!(took < Duration::from_millis(2500), "took {took:?}");
}

#[tokio::test]
async fn black_holed_only_times_out_with_every_attempt_listed() {
    let hole = BlackHole::on("127.0.0.1").await.unwrap();
    let refused = refused_addr("127.0.0.1");
    let connector = Connector::new().timeout(Some(Duration::from_millis(600)));
    let error = connector
        .connect(vec![hole.addr, refused])
        .await
        .unwrap_err();
    assert!(matches!(error, ConnectError::TimedOut { .. }), "{error:?}");
    let kinds: Vec<_> = error
        .attempts()
        .iter()
        .map(|a| (a.addr(), a.error().kind()))
        .collect();
    assert_eq!(
        kinds,
        [
            (hole.addr, ErrorKind::TimedOut),
            (refused, ErrorKind::ConnectionRefused)
        ]
    );
}

/// Attempt 1 connects at once but stalls in a handshake of its own (a stand-in for TLS), so
/// attempt 2 wins; the server must then read EOF on attempt 1's connection.
#[tokio::test]
async fn losers_that_had_connected_are_closed() {
    let (slow_listener, slow) = listener("127.0.0.1").await;
    let (_fast_listener, fast) = listener("127.0.0.2").await;
    let connector = Connector::new().attempt_delay(Duration::from_millis(50));
    let stream = connector
        .connect_with(vec![slow, fast], |addr| {
            common::connect_stalling(addr, slow)
        })
        .await
        .unwrap();
    assert_eq!(stream.peer_addr().unwrap(), fast);
    let (mut loser, _) = slow_listener.accept().await.unwrap();
    let mut buf = [0u8; 1];
    let read = tokio::time::timeout(Duration::from_secs(5), loser.read(&mut buf)).await;
    assert_eq!(
        read.expect("the loser must be closed, not left open")
            .unwrap(),
        0
    );
}

#[tokio::test]
async fn a_remembered_winner_skips_the_black_hole_on_later_connects() {
    let (hole_ip, working_ip) = if has_ipv6_loopback() {
        ("::1", "127.0.0.1")
    } else {
        ("127.0.0.2", "127.0.0.1")
    };
    let hole = BlackHole::on(hole_ip).await.unwrap();
    let (_listener, working) = listener(working_ip).await;
    let resolver = common::FixedResolver::new("upstream.test", &[hole.addr, working]);
    let connector = Connector::new().resolver(resolver);

    let began = Instant::now();
    let stream = connector.connect("upstream.test:1").await.unwrap();
    let first = began.elapsed();
    assert_eq!(stream.peer_addr().unwrap(), working);
    assert!(
        first >= Duration::from_millis(240),
        "first connect took {first:?}"
    );

    let mut later = Vec::new();
    for _ in 0..20 {
        let began = Instant::now();
        let stream = connector.connect("upstream.test:1").await.unwrap();
        later.push(began.elapsed());
        assert_eq!(stream.peer_addr().unwrap(), working);
    }
    let slowest = later.iter().max().unwrap();
    println!("winner memory: first connect {first:?}, the next 20 at most {slowest:?}");
    // Had the black hole been dialed first, the working address would have started only at
    // the 250 ms attempt delay: every later connect finishing before that proves it was not.
    assert!(
        *slowest < Duration::from_millis(240),
        "later connects: {later:?}"
    );
}

#[tokio::test]
async fn socket_options_apply_to_real_connects() {
    let (listener, addr) = listener("127.0.0.1").await;
    let local = std::net::Ipv4Addr::new(127, 0, 0, 5);
    let connector = Connector::new()
        .local_address_v4(Some(local))
        .nodelay(true)
        .keepalive(Some(connect_any::Keepalive::new()))
        .recv_buffer_size(Some(256 * 1024));
    let stream = connector.connect(addr).await.unwrap();
    assert!(stream.nodelay().unwrap());
    let (_, peer) = listener.accept().await.unwrap();
    assert_eq!(peer.ip(), local, "the server sees the bound local address");
}

#[cfg(target_os = "linux")]
#[tokio::test]
async fn bind_device_reaches_the_socket() {
    let (_listener, addr) = listener("127.0.0.1").await;
    let on_lo = Connector::new().bind_device(Some("lo")).connect(addr).await;
    match on_lo {
        Ok(stream) => assert_eq!(stream.peer_addr().unwrap(), addr),
        Err(error)
            if error
                .most_relevant()
                .is_some_and(|a| a.error().kind() == ErrorKind::PermissionDenied) =>
        {
            common::skip("SO_BINDTODEVICE needs CAP_NET_RAW here");
            return;
        }
        Err(error) => panic!("binding to lo failed: {error}"),
    }
    let error = Connector::new()
        .bind_device(Some("nosuchdev0"))
        .connect(addr)
        .await
        .unwrap_err();
    assert_eq!(error.attempts().len(), 1);
    assert_eq!(
        error.attempts()[0].error().raw_os_error(),
        Some(19),
        "ENODEV: {error}"
    );
}

/// The connect future owns what it needs: it can be spawned, and outlives the connector and
/// the target string it was made from.
#[tokio::test]
async fn a_connect_can_be_spawned() {
    let (listener, addr) = listener("127.0.0.1").await;
    let connector = Connector::new();
    let target = addr.to_string();
    let task = tokio::spawn(connector.connect(target.as_str()));
    drop((connector, target));
    let stream = task.await.unwrap().unwrap();
    assert_eq!(stream.peer_addr().unwrap(), addr);
    drop(listener);
}

/// A token given to one call cancels that call only; the connector's own token still applies.
#[tokio::test]
async fn a_per_call_token_cancels_that_call() {
    let hole = BlackHole::on("127.0.0.2").await.unwrap();
    let (_listener, working) = listener("127.0.0.1").await;
    let connector = Connector::new();
    let token = CancellationToken::new();
    let cancel_soon = {
        let token = token.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(100)).await;
            token.cancel();
        })
    };
    let began = Instant::now();
    let error = connector
        .connect_cancellable(hole.addr, &token)
        .await
        .unwrap_err();
    let took = began.elapsed();
    cancel_soon.await.unwrap();
    assert!(matches!(error, ConnectError::Cancelled { .. }), "{error:?}");
    assert_eq!(error.attempts().len(), 1);
    assert_eq!(error.attempts()[0].addr(), hole.addr);
    assert!(took >= Duration::from_millis(100), "{took:?}");
    assert!(took < Duration::from_secs(5), "{took:?}");

    let already = connector
        .connect_cancellable(working, &token)
        .await
        .unwrap_err();
    assert!(
        matches!(already, ConnectError::Cancelled { .. }),
        "{already:?}"
    );
    let other_call = connector.connect(working).await.unwrap();
    assert_eq!(
        other_call.peer_addr().unwrap(),
        working,
        "other calls are not cancelled"
    );

    let connector_token = CancellationToken::new();
    connector_token.cancel();
    let cancelled_connector = connector.cancellation_token(Some(connector_token));
    let fresh = CancellationToken::new();
    let error = cancelled_connector
        .connect_cancellable(working, &fresh)
        .await
        .unwrap_err();
    assert!(matches!(error, ConnectError::Cancelled { .. }), "{error:?}");
}
