//! Loopback fixtures shared by the examples, tests and benches (each includes this file):
//! a listener that drops what it accepts, one that reads to EOF and counts, and a black-holed
//! address made without root.
#![allow(dead_code)]

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::net::{TcpListener, TcpSocket, TcpStream};

/// Binds `addr` and listens with `backlog`.
pub fn listen(addr: SocketAddr, backlog: u32) -> io::Result<TcpListener> {
    let socket = match addr {
        SocketAddr::V4(_) => TcpSocket::new_v4()?,
        SocketAddr::V6(_) => TcpSocket::new_v6()?,
    };
    socket.bind(addr)?;
    socket.listen(backlog)
}

/// Serves `addr` (port 0 picks one) by accepting and dropping every connection, with a backlog
/// deep enough for bursts; returns the bound address.
pub async fn serve_and_drop(addr: SocketAddr) -> io::Result<SocketAddr> {
    let listener = listen(addr, 4096)?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            drop(stream);
        }
    });
    Ok(addr)
}

/// An address whose connects hang like a black-holed route: a listener with backlog 0 whose
/// accept queue is filled by a client that is never accepted, so Linux drops further SYNs
/// (the client retransmits at 1 s, 3 s, 7 s, ...). It lasts as long as this value.
#[derive(Debug)]
pub struct BlackHole {
    /// The black-holed address.
    pub addr: SocketAddr,
    _listener: TcpListener,
    _fillers: Vec<TcpStream>,
}

impl BlackHole {
    /// A black hole on `addr` (port 0 picks one).
    pub async fn bind(addr: SocketAddr) -> io::Result<Self> {
        let listener = listen(addr, 0)?;
        let addr = listener.local_addr()?;
        // One queued connection fills a backlog-0 queue; allow for a kernel that admits one
        // more, and stop at the first connect that hangs.
        let mut fillers = Vec::new();
        for _ in 0..2 {
            let filler = TcpStream::connect(addr);
            match tokio::time::timeout(std::time::Duration::from_millis(200), filler).await {
                Ok(stream) => fillers.push(stream?),
                Err(_) => break,
            }
        }
        Ok(Self {
            addr,
            _listener: listener,
            _fillers: fillers,
        })
    }

    /// A black hole on a free port of `ip`.
    pub async fn on(ip: &str) -> io::Result<Self> {
        let ip: IpAddr = ip
            .parse()
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, ip.to_owned()))?;
        Self::bind(SocketAddr::new(ip, 0)).await
    }
}

/// A loopback listener that reads every accepted connection to EOF and counts connections
/// accepted and closed by the peer.
#[derive(Debug)]
pub struct EofServer {
    /// Its address.
    pub addr: SocketAddr,
    /// Connections accepted so far.
    pub accepted: Arc<AtomicUsize>,
    /// Connections the client has closed so far.
    pub closed: Arc<AtomicUsize>,
}

impl EofServer {
    /// Starts one on `ip`, any port.
    pub async fn start(ip: &str) -> Self {
        let listener = TcpListener::bind((ip, 0)).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let closed = Arc::new(AtomicUsize::new(0));
        let (accepted_, closed_) = (accepted.clone(), closed.clone());
        tokio::spawn(async move {
            use tokio::io::AsyncReadExt;
            while let Ok((mut stream, _)) = listener.accept().await {
                accepted_.fetch_add(1, Ordering::SeqCst);
                let closed = closed_.clone();
                tokio::spawn(async move {
                    let mut buf = [0u8; 16];
                    while stream.read(&mut buf).await.is_ok_and(|n| n > 0) {}
                    // Closed before it is counted, so that a count of 0 means no descriptor.
                    drop(stream);
                    closed.fetch_add(1, Ordering::SeqCst);
                });
            }
        });
        Self {
            addr,
            accepted,
            closed,
        }
    }

    /// Connections accepted and not yet closed by the client.
    pub fn open(&self) -> usize {
        self.accepted.load(Ordering::SeqCst) - self.closed.load(Ordering::SeqCst)
    }
}
