//! Descriptor exhaustion: with the open-file limit reached, every attempt fails at once with
//! EMFILE, the connect returns without spinning, and it works again once descriptors are free.
//!
//! The limit is lowered in a child process (this same test binary, re-run under `ulimit -n`)
//! so that the other tests never run short.

use std::fs::File;
use std::net::SocketAddr;
use std::process::Command;
use std::time::{Duration, Instant};

use connect_any::{ConnectError, connect_any};
use tokio::net::TcpListener;

const CHILD_ENV: &str = "CONNECT_ANY_EMFILE_CHILD";
const EMFILE: i32 = 24;

#[test]
fn exhausted_descriptors_give_emfile_for_each_attempt_and_recover() {
    if std::env::var_os(CHILD_ENV).is_some() {
        return exhaust_and_connect();
    }
    let exe = std::env::current_exe().unwrap();
    let output = Command::new("sh")
        .arg("-c")
        .arg(r#"ulimit -n 64 && exec "$0" "$@""#)
        .arg(exe)
        .args([
            "exhausted_descriptors_give_emfile_for_each_attempt_and_recover",
            "--exact",
        ])
        .args(["--nocapture", "--test-threads", "1"])
        .env(CHILD_ENV, "1")
        .output()
        .expect("the child test runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "the child failed:\n{stdout}\n{stderr}"
    );
    let report = stdout
        .lines()
        .find_map(|l| l.find("emfile:").map(|at| &l[at..]));
    println!("{}", report.expect("the child reported its figures"));
}

fn exhaust_and_connect() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let mut listeners = Vec::new();
        let mut addrs: Vec<SocketAddr> = Vec::new();
        for ip in ["127.0.0.1", "127.0.0.2", "127.0.0.3"] {
            let listener = TcpListener::bind((ip, 0)).await.unwrap();
            addrs.push(listener.local_addr().unwrap());
            listeners.push(listener);
        }
        let mut fillers = Vec::new();
        loop {
            match File::open("/dev/null") {
                Ok(file) => fillers.push(file),
                Err(error) if error.raw_os_error() == Some(EMFILE) => break,
                Err(error) => panic!("unexpected error filling descriptors: {error}"),
            }
        }

        let began = Instant::now();
        let error = connect_any(addrs.clone()).await.unwrap_err();
        let took = began.elapsed();
        let ConnectError::AllAttemptsFailed { attempts, .. } = &error else {
            panic!("expected all attempts failed, got {error:?}");
        };
        let seen: Vec<_> = attempts
            .iter()
            .map(|a| (a.addr(), a.error().raw_os_error()))
            .collect();
        let expected: Vec<_> = addrs.iter().map(|&a| (a, Some(EMFILE))).collect();
        assert_eq!(seen, expected, "one EMFILE attempt per address, in order");
        assert!(
            took < Duration::from_millis(200),
            "failed at once, without waiting: {took:?}"
        );
        let count = attempts.len();
        let message = format!("{error:#}");
        assert!(
            message.contains("(3 attempts, most relevant ")
                && message.ends_with("Too many open files (os error 24)"),
            "{message}"
        );
        println!("emfile: {count} attempts in {took:?}; {message}");

        drop(fillers);
        let stream = connect_any(addrs[0])
            .await
            .expect("works again once descriptors are free");
        assert_eq!(stream.peer_addr().unwrap(), addrs[0]);
    });
}
