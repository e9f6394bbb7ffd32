//! Runtimes the crate may be called from: one built without a time driver.

use std::net::SocketAddr;
use std::time::Duration;

use connect_any::{ConnectError, Connector};

fn io_only() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .unwrap()
}

/// Whether a connect needs a timer depends on the data (a slow first address starts the
/// stagger timer), so a runtime without timers gets a clear error up front for every connect
/// that may need one, never a panic halfway through.
#[test]
fn a_runtime_without_timers_gets_a_clear_error_whatever_the_data() {
    let runtime = io_only();
    let hangs = |_addr: SocketAddr| std::future::pending::<std::io::Result<()>>();
    let connector = Connector::new();
    let list = vec![
        "127.0.0.1:1".parse::<SocketAddr>().unwrap(),
        "127.0.0.2:1".parse().unwrap(),
    ];
    let slow_list = runtime.block_on(connector.connect_with(list, hangs));
    let with_timeout = connector.clone().timeout(Some(Duration::from_secs(1)));
    let slow_literal = runtime.block_on(with_timeout.connect_with("127.0.0.1:1", hangs));
    let name = runtime.block_on(connector.connect_with("localhost:1", hangs));
    for result in [slow_list, slow_literal, name] {
        let error = result.unwrap_err();
        assert!(
            matches!(error, ConnectError::NoTimeDriver { .. }),
            "{error:?}"
        );
        assert_eq!(error.kind(), std::io::ErrorKind::Unsupported);
        assert!(error.to_string().contains("enable_all()"), "{error}");
    }
}

/// One literal with no timeout needs no timer, and works there as `TcpStream::connect` does.
#[test]
fn one_literal_without_a_timeout_connects_on_such_a_runtime() {
    let runtime = io_only();
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let stream = Connector::new().connect(addr).await.unwrap();
        assert_eq!(stream.peer_addr().unwrap(), addr);
    });
}
