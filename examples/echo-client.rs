//! Sends each line of stdin to an echo server through connect-any and prints the echo.
//!
//! ```text
//! cargo run --example echo-client                      # embedded server on [::1] and 127.0.0.1
//! echo hello | cargo run --example echo-client         # prints "hello"
//! cargo run --example echo-client -- --blackhole-v6    # watch Happy Eyeballs fall back to IPv4
//! cargo run --example echo-client -- --blackhole-v6 -v # the connect's report as a table
//! RUST_LOG=connect_any=debug cargo run --example echo-client -- --blackhole-v6
//! cargo run --example echo-client -- localhost:7007    # a real server (see echo-server)
//! cargo run --example echo-client --features hickory -- --slow-aaaa 1000
//! ```

mod support;

use std::io::IsTerminal;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::process::ExitCode;
use std::time::Duration;

use connect_any::{Connector, Strategy, Target};
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::TcpListener;
use tokio_util::codec::{Framed, LinesCodec};

const USAGE: &str = "\
usage: echo-client [HOST:PORT] [options]

Without HOST:PORT, starts an echo server on [::1]:P and 127.0.0.1:P and connects to both.

options:
  --strategy happy-eyeballs|sequential   how addresses are tried (default happy-eyeballs)
  --attempt-delay MS                     Happy Eyeballs attempt delay (default 250)
  --attempt-timeout MS                   limit for one attempt (default none)
  --timeout MS                           limit for the whole connect (default none)
  --blackhole-v6                         make the embedded server's IPv6 side a black hole
  -v, --verbose                          print the connect's report as a table, not a line
  --slow-aaaa MS                         (feature hickory) connect by name through an embedded
                                         DNS server whose AAAA answer comes after MS ms
";

type Error = Box<dyn std::error::Error + Send + Sync>;

#[derive(Debug, Default)]
struct Options {
    target: Option<String>,
    connector: Connector,
    blackhole_v6: bool,
    slow_aaaa: Option<Duration>,
    verbose: bool,
}

fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Options, Error> {
    let mut options = Options::default();
    let millis = |value: Option<String>, flag: &str| -> Result<Duration, Error> {
        let value = value.ok_or_else(|| format!("{flag} needs a value"))?;
        let ms = value
            .parse()
            .map_err(|_| format!("{flag}: not a number of milliseconds: {value}"))?;
        Ok(Duration::from_millis(ms))
    };
    while let Some(arg) = args.next() {
        let connector = std::mem::take(&mut options.connector);
        options.connector = match arg.as_str() {
            "--strategy" => match args.next().as_deref() {
                Some("happy-eyeballs") => connector.strategy(Strategy::HappyEyeballs),
                Some("sequential") => connector.strategy(Strategy::Sequential),
                other => return Err(format!("--strategy: unknown strategy {other:?}").into()),
            },
            "--attempt-delay" => connector.attempt_delay(millis(args.next(), &arg)?),
            "--attempt-timeout" => connector.attempt_timeout(Some(millis(args.next(), &arg)?)),
            "--timeout" => connector.timeout(Some(millis(args.next(), &arg)?)),
            "--blackhole-v6" => {
                options.blackhole_v6 = true;
                connector
            }
            "-v" | "--verbose" => {
                options.verbose = true;
                connector
            }
            "--slow-aaaa" if cfg!(feature = "hickory") => {
                options.slow_aaaa = Some(millis(args.next(), &arg)?);
                connector
            }
            "--slow-aaaa" => return Err("--slow-aaaa needs --features hickory".into()),
            "-h" | "--help" => {
                print!("{USAGE}");
                std::process::exit(0);
            }
            flag if flag.starts_with('-') => {
                return Err(format!("unknown flag {flag}\n{USAGE}").into());
            }
            _ if options.target.is_none() => {
                options.target = Some(arg);
                connector
            }
            _ => return Err(format!("unexpected argument {arg}\n{USAGE}").into()),
        };
    }
    if (options.blackhole_v6 || options.slow_aaaa.is_some()) && options.target.is_some() {
        return Err("--blackhole-v6 and --slow-aaaa apply to the embedded server only".into());
    }
    Ok(options)
}

/// Starts the embedded echo server on both families and returns the addresses to race, plus
/// what must stay alive while it serves.
async fn embedded_server(blackhole_v6: bool) -> Result<(Target, Vec<Box<dyn Send>>), Error> {
    let v4 = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
    let v4_addr = v4.local_addr()?;
    tokio::spawn(support::serve_echo(v4));
    let v6_addr = SocketAddr::from((Ipv6Addr::LOCALHOST, v4_addr.port()));
    let mut keep: Vec<Box<dyn Send>> = Vec::new();
    let v6_ready = if blackhole_v6 {
        support::loopback::BlackHole::bind(v6_addr)
            .await
            .map(|hole| keep.push(Box::new(hole)))
    } else {
        TcpListener::bind(v6_addr).await.map(|v6| {
            tokio::spawn(support::serve_echo(v6));
        })
    };
    match v6_ready {
        Ok(()) => {
            let state = if blackhole_v6 {
                "black-holed"
            } else {
                "serving"
            };
            eprintln!("embedded echo server: {v6_addr} ({state}) and {v4_addr} (serving)");
            Ok((Target::from(vec![v6_addr, v4_addr]), keep))
        }
        Err(error) => {
            eprintln!("embedded echo server: {v4_addr} only; no IPv6 side ({error})");
            Ok((Target::from(v4_addr), keep))
        }
    }
}

/// Serves the embedded server's addresses under a name from an embedded DNS server whose AAAA
/// answer comes after `delay`, and resolves it with `HickoryResolver`.
#[cfg(feature = "hickory")]
async fn by_name(
    target: &Target,
    connector: Connector,
    delay: Duration,
) -> Result<(Target, Connector), Error> {
    use support::dns::{Behaviour, dns_server, resolver};
    let ips = |v6: bool| {
        let addrs = target.addrs().iter().filter(move |a| a.is_ipv6() == v6);
        addrs.map(SocketAddr::ip).collect::<Vec<_>>()
    };
    let port = target.addrs()[0].port();
    let aaaa = Behaviour::Answer(delay, ips(true));
    let a = Behaviour::Answer(Duration::ZERO, ips(false));
    let server = dns_server(aaaa, a).await;
    eprintln!("embedded DNS server on {server}: echo.test has A now and AAAA after {delay:?}");
    let target = Target::from_host_port("echo.test", port)?;
    Ok((target, connector.resolver(resolver(server))))
}

#[cfg(not(feature = "hickory"))]
async fn by_name(_: &Target, _: Connector, _: Duration) -> Result<(Target, Connector), Error> {
    unreachable!("--slow-aaaa is refused without the hickory feature")
}

#[tokio::main]
async fn main() -> ExitCode {
    support::init_logging();
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("echo-client: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), Error> {
    let options = parse_args(std::env::args().skip(1))?;
    let (mut target, _server) = match options.target {
        Some(text) => (Target::parse(&text)?, Vec::new()),
        None => embedded_server(options.blackhole_v6).await?,
    };
    let mut connector = options.connector;
    if let Some(delay) = options.slow_aaaa {
        (target, connector) = by_name(&target, connector, delay).await?;
    }

    // The report goes to stderr with the other notes; stdout carries only the echo.
    let (stream, report) = match connector.connect_reported(&target).await {
        Ok(connected) => connected,
        Err(error) => {
            if let (true, Some(report)) = (options.verbose, error.report()) {
                eprintln!("{report:#}");
            }
            return Err(error.into());
        }
    };
    match options.verbose {
        true => eprintln!("{report:#}"),
        false => eprintln!("{report}"),
    }

    let interactive = std::io::stdin().is_terminal();
    if interactive {
        eprintln!("type lines to send; Ctrl-D ends");
    }
    let mut server = Framed::new(stream, LinesCodec::new_with_max_length(64 * 1024));
    let mut stdin = BufReader::new(tokio::io::stdin()).lines();
    while let Some(line) = stdin.next_line().await? {
        server.send(line).await?;
        match server.next().await {
            Some(echo) => println!("{}", echo?),
            None => return Err("the server closed the connection".into()),
        }
    }
    Ok(())
}
