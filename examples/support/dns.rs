//! A DNS server for tests and examples, on 127.0.0.1 (any port): the answer per record type
//! can be delayed, dropped, NODATA, NXDOMAIN, SERVFAIL, truncated or garbage. Each example and
//! test that uses it includes this file.
#![allow(dead_code)]

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hickory_proto::op::{Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::rdata::svcb::SVCB;
use hickory_proto::rr::rdata::{A, AAAA, HTTPS, NULL, SOA};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use tokio::net::UdpSocket;

/// What the server does with one record type's queries.
#[derive(Clone, Debug)]
pub enum Behaviour {
    /// Answers with these addresses after this long.
    Answer(Duration, Vec<IpAddr>),
    /// Never answers.
    Drop,
    /// NOERROR with no records.
    NoData,
    NxDomain,
    ServFail,
    /// An empty answer with the truncation bit set, which asks the client to retry over TCP.
    Truncated,
    /// Bytes that are not a DNS message.
    Garbage,
}

/// What the server does with a name's HTTPS queries.
#[derive(Clone, Debug)]
pub enum HttpsBehaviour {
    /// Answers with these records (ServiceMode or AliasMode) after this long.
    Records(Duration, Vec<SVCB>),
    /// Never answers.
    Drop,
    /// NOERROR with no records (the default).
    NoData,
    /// One HTTPS record whose data is not a valid SVCB record.
    Malformed,
}

/// What the server answers (changeable while it runs), with what TTL, and how many queries it
/// has had. The AAAA and A behaviours are every name's but those set with
/// [`Zone::set_name`]; HTTPS queries get [`HttpsBehaviour::NoData`] but for names set with
/// [`Zone::set_https`].
#[derive(Debug)]
pub struct Zone {
    aaaa: Mutex<Behaviour>,
    a: Mutex<Behaviour>,
    /// Other names' AAAA and A behaviours, by lower-case name without the trailing dot.
    names: Mutex<HashMap<String, (Behaviour, Behaviour)>>,
    https: Mutex<HashMap<String, HttpsBehaviour>>,
    /// Every query's name and type, in arrival order.
    asked: Mutex<Vec<(String, RecordType)>>,
    ttl: AtomicU32,
    queries: AtomicUsize,
    /// Whether negative answers carry an SOA record (so that resolvers may cache them).
    soa: AtomicBool,
}

impl Zone {
    /// Answers with a TTL of 60 s.
    pub fn new(aaaa: Behaviour, a: Behaviour) -> Arc<Self> {
        Arc::new(Self {
            aaaa: Mutex::new(aaaa),
            a: Mutex::new(a),
            names: Mutex::default(),
            https: Mutex::default(),
            asked: Mutex::default(),
            ttl: AtomicU32::new(60),
            queries: AtomicUsize::new(0),
            soa: AtomicBool::new(false),
        })
    }

    /// What the next queries are answered with.
    pub fn set(&self, aaaa: Behaviour, a: Behaviour) {
        *self.aaaa.lock().unwrap() = aaaa;
        *self.a.lock().unwrap() = a;
    }

    /// What `name`'s AAAA and A queries are answered with, in place of every name's.
    pub fn set_name(&self, name: &str, aaaa: Behaviour, a: Behaviour) {
        self.names.lock().unwrap().insert(key(name), (aaaa, a));
    }

    /// What `name`'s HTTPS queries are answered with.
    pub fn set_https(&self, name: &str, https: HttpsBehaviour) {
        self.https.lock().unwrap().insert(key(name), https);
    }

    /// The queries so far, as `(name, type)`, the name lower-case without its trailing dot.
    pub fn asked(&self) -> Vec<(String, RecordType)> {
        self.asked.lock().unwrap().clone()
    }

    fn behaviour(&self, name: &str, record_type: RecordType) -> Answering {
        let named = self.names.lock().unwrap().get(name).cloned();
        let (aaaa, a) = match named {
            Some(both) => both,
            None => (
                self.aaaa.lock().unwrap().clone(),
                self.a.lock().unwrap().clone(),
            ),
        };
        match record_type {
            RecordType::AAAA => Answering::Plain(aaaa),
            RecordType::A => Answering::Plain(a),
            RecordType::HTTPS => match self.https.lock().unwrap().get(name).cloned() {
                Some(HttpsBehaviour::Records(after, records)) => Answering::Https(after, records),
                Some(HttpsBehaviour::Drop) => Answering::Plain(Behaviour::Drop),
                Some(HttpsBehaviour::Malformed) => Answering::Malformed,
                Some(HttpsBehaviour::NoData) | None => Answering::Plain(Behaviour::NoData),
            },
            _ => Answering::Plain(Behaviour::NoData),
        }
    }

    /// The TTL of the next answers' records, in seconds.
    pub fn set_ttl(&self, seconds: u32) {
        self.ttl.store(seconds, Ordering::SeqCst);
    }

    /// Negative answers carry an SOA record whose minimum is the TTL, as a real zone's do, so
    /// that a resolver may cache them.
    pub fn with_soa(&self) {
        self.soa.store(true, Ordering::SeqCst);
    }

    /// How many queries have come so far.
    pub fn queries(&self) -> usize {
        self.queries.load(Ordering::SeqCst)
    }
}

/// A name as the zone keys it: lower-case, without the trailing dot.
fn key(name: &str) -> String {
    name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase()
}

/// What one query is answered with.
#[derive(Clone, Debug)]
enum Answering {
    Plain(Behaviour),
    Https(Duration, Vec<SVCB>),
    Malformed,
}

/// Serves queries on 127.0.0.1 (any port) until dropped with the test's runtime.
pub async fn dns_server(aaaa: Behaviour, a: Behaviour) -> SocketAddr {
    dns_server_on("127.0.0.1:0".parse().unwrap(), aaaa, a).await
}

/// Serves queries on `addr` until dropped with the runtime.
pub async fn dns_server_on(addr: SocketAddr, aaaa: Behaviour, a: Behaviour) -> SocketAddr {
    serve_zone(addr, Zone::new(aaaa, a)).await
}

/// Serves `zone` on `addr` from a thread of its own, with a runtime of its own, so that the
/// server's work does not share the runtime being measured; for benches.
pub fn serve_zone_on_a_thread(addr: SocketAddr, zone: Arc<Zone>) -> SocketAddr {
    let (sender, served) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            sender.send(serve_zone(addr, zone).await).unwrap();
            std::future::pending::<()>().await;
        });
    });
    served.recv().unwrap()
}

/// Serves `zone` on `addr` until dropped with the runtime.
pub async fn serve_zone(addr: SocketAddr, zone: Arc<Zone>) -> SocketAddr {
    let socket = Arc::new(UdpSocket::bind(addr).await.unwrap());
    let addr = socket.local_addr().unwrap();
    tokio::spawn(async move {
        let mut buf = vec![0u8; 4096];
        while let Ok((len, peer)) = socket.recv_from(&mut buf).await {
            let Ok(query) = Message::from_vec(&buf[..len]) else {
                continue;
            };
            let Some(question) = query.queries.first() else {
                continue;
            };
            zone.queries.fetch_add(1, Ordering::SeqCst);
            let name = key(&question.name().to_ascii());
            let record_type = question.query_type();
            zone.asked.lock().unwrap().push((name.clone(), record_type));
            let answering = zone.behaviour(&name, record_type);
            let ttl = zone.ttl.load(Ordering::SeqCst);
            let soa = zone.soa.load(Ordering::SeqCst);
            let socket = socket.clone();
            // A task per query, so a delayed answer holds up only itself.
            tokio::spawn(async move {
                let bytes = match answering {
                    Answering::Plain(behaviour) => {
                        if let Behaviour::Answer(after, _) = &behaviour {
                            tokio::time::sleep(*after).await;
                        }
                        respond(&query, &behaviour, ttl, soa)
                    }
                    Answering::Https(after, records) => {
                        tokio::time::sleep(after).await;
                        let rdata = records.into_iter().map(|svcb| RData::HTTPS(HTTPS(svcb)));
                        respond_with(&query, rdata.collect(), ttl)
                    }
                    Answering::Malformed => {
                        // Type HTTPS, but the data ends inside its TargetName.
                        let rdata = RData::Unknown {
                            code: RecordType::HTTPS,
                            rdata: NULL::with(vec![0, 1, 7, b'b', b'r']),
                        };
                        respond_with(&query, vec![rdata], ttl)
                    }
                };
                if let Some(bytes) = bytes {
                    let _ = socket.send_to(&bytes, peer).await;
                }
            });
        }
    });
    addr
}

/// An empty NOERROR response to `query`, its questions copied.
fn response_to(query: &Message) -> Message {
    let mut response = Message::new(query.metadata.id, MessageType::Response, OpCode::Query);
    response.metadata.recursion_desired = query.metadata.recursion_desired;
    response.metadata.recursion_available = true;
    for question in &query.queries {
        response.add_query(question.clone());
    }
    response
}

/// A NOERROR response to `query` with these records at the question's name.
fn respond_with(query: &Message, records: Vec<RData>, ttl: u32) -> Option<Vec<u8>> {
    let mut response = response_to(query);
    let name = query.queries[0].name().clone();
    for rdata in records {
        response.add_answer(Record::from_rdata(name.clone(), ttl, rdata));
    }
    response.to_vec().ok()
}

fn respond(query: &Message, behaviour: &Behaviour, ttl: u32, soa: bool) -> Option<Vec<u8>> {
    let mut response = response_to(query);
    let name = query.queries[0].name().clone();
    match behaviour {
        Behaviour::Drop => return None,
        Behaviour::Garbage => return Some(b"\x13\x37 this is not DNS".to_vec()),
        Behaviour::Answer(_, ips) if ips.is_empty() && soa => add_soa(&mut response, ttl),
        Behaviour::Answer(_, ips) => {
            for ip in ips {
                let rdata = match ip {
                    IpAddr::V4(v4) => RData::A(A(*v4)),
                    IpAddr::V6(v6) => RData::AAAA(AAAA(*v6)),
                };
                response.add_answer(Record::from_rdata(name.clone(), ttl, rdata));
            }
        }
        Behaviour::NoData if soa => add_soa(&mut response, ttl),
        Behaviour::NoData => {}
        Behaviour::NxDomain => {
            response.metadata.response_code = ResponseCode::NXDomain;
            if soa {
                add_soa(&mut response, ttl);
            }
        }
        Behaviour::ServFail => response.metadata.response_code = ResponseCode::ServFail,
        Behaviour::Truncated => response.metadata.truncation = true,
    }
    response.to_vec().ok()
}

/// An SOA record for the zone `test.`, whose minimum (the negative TTL) is `ttl`.
fn add_soa(response: &mut Message, ttl: u32) {
    let zone = Name::from_ascii("test.").unwrap();
    let host = Name::from_ascii("ns.test.").unwrap();
    let soa = SOA::new(host.clone(), host, 1, 3600, 600, 86_400, ttl);
    response.add_authority(Record::from_rdata(zone, ttl, RData::SOA(soa)));
}

/// A resolver that asks only the test server, over UDP, waiting at most 600 ms per query.
#[cfg(feature = "hickory")]
pub fn resolver(server: SocketAddr) -> connect_any::HickoryResolver {
    resolver_waiting(server, Duration::from_millis(600))
}

/// A resolver that asks only the test server, over UDP, waiting at most `timeout` per query.
#[cfg(feature = "hickory")]
pub fn resolver_waiting(server: SocketAddr, timeout: Duration) -> connect_any::HickoryResolver {
    use hickory_resolver::config::{NameServerConfig, ResolveHosts, ResolverConfig, ResolverOpts};
    let mut name_server = NameServerConfig::udp(server.ip());
    name_server.connections[0].port = server.port();
    let config = ResolverConfig::from_parts(None, vec![], vec![name_server]);
    let mut options = ResolverOpts::default();
    options.timeout = timeout;
    options.attempts = 1;
    options.use_hosts_file = ResolveHosts::Never;
    connect_any::HickoryResolver::with_config(config, options).unwrap()
}
