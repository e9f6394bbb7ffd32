//! NAT64 on real sockets, in network namespaces of the tests' own (Linux, root): the
//! synthesized address of 192.0.2.1 under `64:ff9b::/96` on loopback with a listener, and a
//! DNS server on `[::1]` answering `ipv4only.arpa` as a DNS64 server; loopback without
//! 127.0.0.1 (an IPv6-only host), or with an IPv4 address but no default route. Never on the
//! machine's own interfaces: each test runs itself again under `unshare -n` and sets up only
//! that namespace. Where the namespace cannot be made, it says it skipped.
#![cfg(all(target_os = "linux", feature = "hickory"))]

mod common;
#[path = "../examples/support/dns.rs"]
mod dns;

use std::net::{IpAddr, SocketAddr};
use std::process::Command;
use std::time::Duration;

use connect_any::Connector;
use dns::{Behaviour, dns_server_on, resolver};
use tokio::net::TcpListener;

/// Set in the run inside the namespace.
const INSIDE: &str = "CONNECT_ANY_NAT64_NAMESPACE";

/// Loopback's IPv4 side in each namespace.
#[derive(Clone, Copy)]
enum Ipv4 {
    /// None: an IPv6-only host.
    Nothing,
    /// 10.1.0.1/32 besides 127.0.0.1, and no default route.
    NoDefaultRoute,
}

#[test]
fn an_ipv6_only_host_reaches_ipv4_through_nat64() {
    in_a_namespace(
        "an_ipv6_only_host_reaches_ipv4_through_nat64",
        Ipv4::Nothing,
    );
}

#[test]
fn a_host_without_a_default_route_reaches_the_rest_through_nat64() {
    in_a_namespace(
        "a_host_without_a_default_route_reaches_the_rest_through_nat64",
        Ipv4::NoDefaultRoute,
    );
}

/// Runs `test` again in a new network namespace, where it sets loopback up as `ipv4` says.
fn in_a_namespace(test: &str, ipv4: Ipv4) {
    if std::env::var_os(INSIDE).is_some() {
        return inside_the_namespace(ipv4);
    }
    // One namespace at a time: under gVisor, setting up two at once now and then left an
    // address missing in one of them.
    static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _turn = ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let exe = std::env::current_exe().expect("the test binary");
    let run = Command::new("unshare")
        .arg("-n")
        .arg(exe)
        .args(["--exact", test, "--nocapture", "--test-threads=1"])
        .env(INSIDE, "1")
        .output();
    let output = match run {
        Ok(output) => output,
        Err(error) => return common::skip(&format!("no unshare(1) here: {error}")),
    };
    let stderr = String::from_utf8_lossy(&output.stderr);
    let stdout = String::from_utf8_lossy(&output.stdout);
    if stderr.contains("unshare failed") || stdout.contains("NAMESPACE-SETUP-FAILED") {
        return common::skip(&format!(
            "cannot make a network namespace: {stderr}{stdout}"
        ));
    }
    assert!(
        output.status.success(),
        "inside the namespace:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("reached through NAT64"), "{stdout}");
    println!("{stdout}");
}

/// Sets up the namespace's loopback, then connects with a connector's defaults (but for its
/// resolver, the namespace's DNS server).
fn inside_the_namespace(ipv4: Ipv4) {
    let ipv4_setup = match ipv4 {
        Ipv4::Nothing => "ip addr del 127.0.0.1/8 dev lo",
        Ipv4::NoDefaultRoute => "ip addr add 10.1.0.1/32 dev lo",
    };
    for command in [
        "ip link set lo up",
        ipv4_setup,
        "ip -6 addr add 64:ff9b::c000:201/128 dev lo",
    ] {
        let mut words = command.split(' ');
        let program = words.next().unwrap_or_default();
        let status = Command::new(program).args(words).status();
        if !status.is_ok_and(|status| status.success()) {
            println!("NAMESPACE-SETUP-FAILED: {command}");
            return;
        }
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let listener = match TcpListener::bind("[64:ff9b::c000:201]:0").await {
            Ok(listener) => listener,
            // Seen once in a full run, not since: say what the namespace's loopback held.
            Err(error) => {
                let shown = Command::new("ip")
                    .args(["addr", "show", "dev", "lo"])
                    .output();
                let shown = shown.map(|o| String::from_utf8_lossy(&o.stdout).into_owned());
                panic!("bind to the NAT64 address: {error}; lo: {shown:?}");
            }
        };
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                drop(stream);
            }
        });
        let ip = |text: &str| text.parse::<IpAddr>().unwrap();
        // AAAA for every name: what a DNS64 server synthesizes for ipv4only.arpa's
        // 192.0.0.170; A for every name: 192.0.2.1.
        let aaaa = Behaviour::Answer(Duration::ZERO, vec![ip("64:ff9b::c000:aa")]);
        let a = Behaviour::Answer(Duration::ZERO, vec![ip("192.0.2.1")]);
        let server = dns_server_on("[::1]:0".parse().unwrap(), aaaa, a).await;
        let connector = Connector::new().resolver(resolver(server));
        let synthesized = SocketAddr::new(ip("64:ff9b::c000:201"), port);

        let literal = format!("192.0.2.1:{port}");
        let stream = connector.connect(literal.as_str()).await;
        let stream = stream.unwrap_or_else(|error| panic!("{literal}: {error:#}"));
        assert_eq!(stream.peer_addr().unwrap(), synthesized);
        println!("{literal} reached through NAT64 at {synthesized}");

        // A name whose A answer is 192.0.2.1 (its AAAA answer leads nowhere).
        let named = format!("a.test:{port}");
        let (stream, report) = connector.connect_reported(named.as_str()).await.unwrap();
        assert_eq!(stream.peer_addr().unwrap(), synthesized, "{report:#}");
        println!("{named} reached through NAT64 at {synthesized}\n{report:#}");

        if let Ipv4::NoDefaultRoute = ipv4 {
            // An IPv4 address with a route is dialed as it is.
            let local = TcpListener::bind("10.1.0.1:0").await.unwrap();
            let direct = local.local_addr().unwrap();
            tokio::spawn(async move { while local.accept().await.is_ok() {} });
            let stream = connector.connect(direct).await.unwrap();
            assert_eq!(stream.peer_addr().unwrap(), direct);
            println!("{direct} reached directly");
        }
    });
}
