//! Every socket option on a real loopback connect, read back from the kernel with
//! `getsockopt(2)`, and the pre-connect hook.
#![cfg(target_os = "linux")]

mod common;

use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::os::fd::AsRawFd;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use connect_any::{ConnectError, Connector, Keepalive};
use socket2::SockRef;
use tokio::net::TcpListener;

/// `getsockopt(IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT)`.
fn bind_address_no_port(socket: &impl AsRawFd) -> libc::c_int {
    let mut value: libc::c_int = -1;
    let mut len = size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: a valid descriptor, and a pointer to a c_int with its size.
    let done = unsafe {
        libc::getsockopt(
            socket.as_raw_fd(),
            libc::IPPROTO_IP,
            libc::IP_BIND_ADDRESS_NO_PORT,
            (&raw mut value).cast(),
            &mut len,
        )
    };
    assert_eq!(done, 0, "{}", io::Error::last_os_error());
    value
}

#[tokio::test]
async fn every_option_reads_back_from_the_kernel() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let local = Ipv4Addr::new(127, 0, 0, 5);
    // What the hook saw: the destination, and the local port after bind, before connect.
    let seen: Arc<Mutex<Vec<(SocketAddr, u16)>>> = Arc::default();
    let hook_seen = seen.clone();
    let connector = Connector::new()
        .nodelay(true)
        .keepalive(Some(
            Keepalive::new()
                .idle(Duration::from_secs(60))
                .interval(Duration::from_secs(10))
                .retries(5),
        ))
        .tcp_user_timeout(Some(Duration::from_secs(30)))
        .reuse_address(true)
        .send_buffer_size(Some(128 * 1024))
        .recv_buffer_size(Some(256 * 1024))
        .local_address_v4(Some(local))
        .before_connect(move |socket, destination| {
            let port = socket.local_addr()?.port();
            hook_seen.lock().unwrap().push((destination, port));
            SockRef::from(socket).set_tos_v4(0x10)
        });
    let stream = connector.connect(addr).await.unwrap();
    let socket = SockRef::from(&stream);

    let read = [
        ("TCP_NODELAY", format!("{}", socket.tcp_nodelay().unwrap())),
        ("SO_KEEPALIVE", format!("{}", socket.keepalive().unwrap())),
        (
            "TCP_KEEPIDLE",
            format!("{:?}", socket.tcp_keepalive_time().unwrap()),
        ),
        (
            "TCP_KEEPINTVL",
            format!("{:?}", socket.tcp_keepalive_interval().unwrap()),
        ),
        (
            "TCP_KEEPCNT",
            format!("{}", socket.tcp_keepalive_retries().unwrap()),
        ),
        (
            "TCP_USER_TIMEOUT",
            format!("{:?}", socket.tcp_user_timeout().unwrap()),
        ),
        (
            "SO_REUSEADDR",
            format!("{}", socket.reuse_address().unwrap()),
        ),
        (
            "SO_SNDBUF",
            format!("{}", socket.send_buffer_size().unwrap()),
        ),
        (
            "SO_RCVBUF",
            format!("{}", socket.recv_buffer_size().unwrap()),
        ),
        ("IP_TOS (hook)", format!("{:#x}", socket.tos_v4().unwrap())),
        (
            "IP_BIND_ADDRESS_NO_PORT",
            format!("{}", bind_address_no_port(&stream)),
        ),
        ("local address", format!("{}", stream.local_addr().unwrap())),
    ];
    for (option, value) in &read {
        println!("{option:<24} {value}");
    }
    assert!(socket.tcp_nodelay().unwrap());
    assert!(socket.keepalive().unwrap());
    assert_eq!(
        socket.tcp_keepalive_time().unwrap(),
        Duration::from_secs(60)
    );
    assert_eq!(
        socket.tcp_keepalive_interval().unwrap(),
        Duration::from_secs(10)
    );
    assert_eq!(socket.tcp_keepalive_retries().unwrap(), 5);
    assert_eq!(
        socket.tcp_user_timeout().unwrap(),
        Some(Duration::from_secs(30))
    );
    assert!(socket.reuse_address().unwrap());
    // Linux doubles a requested buffer size for its own bookkeeping.
    assert!(socket.send_buffer_size().unwrap() >= 128 * 1024);
    assert!(socket.recv_buffer_size().unwrap() >= 256 * 1024);
    assert_eq!(socket.tos_v4().unwrap(), 0x10);
    assert_eq!(bind_address_no_port(&stream), 1);
    assert_eq!(stream.local_addr().unwrap().ip(), local);
    let (_, peer) = listener.accept().await.unwrap();
    assert_eq!(peer.ip(), local, "the server sees the bound source address");
    assert_eq!(
        *seen.lock().unwrap(),
        [(addr, 0)],
        "the hook ran once, for the destination, and no port was reserved at bind"
    );
}

#[tokio::test]
async fn without_options_the_kernel_defaults_stand() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let stream = Connector::new()
        .connect(listener.local_addr().unwrap())
        .await
        .unwrap();
    let socket = SockRef::from(&stream);
    assert!(!socket.tcp_nodelay().unwrap());
    assert!(!socket.keepalive().unwrap());
    assert_eq!(socket.tcp_user_timeout().unwrap(), None);
    assert!(!socket.reuse_address().unwrap());
    assert_eq!(bind_address_no_port(&stream), 0);
}

/// A hook's error fails that attempt like any other error, and nothing is dialed.
#[tokio::test]
async fn a_failing_hook_fails_the_attempt_with_its_error() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let connector = Connector::new().before_connect(|_, _| {
        Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            "refused by the pre-connect hook",
        ))
    });
    let error = connector.connect(addr).await.unwrap_err();
    assert!(
        matches!(error, ConnectError::AllAttemptsFailed { .. }),
        "{error:?}"
    );
    assert_eq!(error.attempts().len(), 1);
    assert_eq!(error.kind(), io::ErrorKind::PermissionDenied);
    assert!(
        format!("{error:#}").contains("refused by the pre-connect hook"),
        "{error}"
    );
    let accepted = tokio::time::timeout(Duration::from_millis(50), listener.accept()).await;
    assert!(accepted.is_err(), "nothing reached the listener");
}

/// Many connects from one bound source address to one destination: with the port chosen at
/// connect time the kernel may reuse ports across destinations; here it is enough that each
/// connect gets a distinct port and none fails with EADDRINUSE.
#[tokio::test]
async fn many_connects_from_one_bound_address() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let connector = Connector::new().local_address_v4(Some(Ipv4Addr::new(127, 0, 0, 6)));
    let mut streams = Vec::new();
    for _ in 0..200 {
        streams.push(connector.connect(addr).await.unwrap());
        drop(listener.accept().await.unwrap());
    }
    let mut ports: Vec<u16> = streams
        .iter()
        .map(|s| s.local_addr().unwrap().port())
        .collect();
    ports.sort_unstable();
    ports.dedup();
    assert_eq!(ports.len(), 200);
}

/// The longest durations a user can write, and counts out of range, are brought into what the
/// kernel accepts: the connect succeeds, and the kernel holds its own limits.
#[tokio::test]
async fn extreme_keepalive_and_user_timeout_values_never_fail_the_attempt() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let extreme = Keepalive::new()
        .idle(Duration::MAX)
        .interval(Duration::ZERO)
        .retries(u32::MAX);
    let connector = Connector::new()
        .keepalive(Some(extreme))
        .tcp_user_timeout(Some(Duration::MAX));
    let stream = connector.connect(addr).await.unwrap();
    let socket = SockRef::from(&stream);
    assert_eq!(
        socket.tcp_keepalive_time().unwrap(),
        Duration::from_secs(32_767)
    );
    assert_eq!(
        socket.tcp_keepalive_interval().unwrap(),
        Duration::from_secs(1)
    );
    assert_eq!(socket.tcp_keepalive_retries().unwrap(), 127);
    assert_eq!(
        socket.tcp_user_timeout().unwrap(),
        Some(Duration::from_millis(i32::MAX as u64))
    );
}
