//! Socket setup: a `TcpSocket` with the configured options, then `connect`.

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};

use tokio::net::{TcpSocket, TcpStream};

/// Options applied to each attempt's socket before it connects.
#[derive(Clone, Debug, Default)]
pub(crate) struct SocketOptions {
    pub(crate) nodelay: bool,
    pub(crate) keepalive: bool,
    pub(crate) send_buffer_size: Option<u32>,
    pub(crate) recv_buffer_size: Option<u32>,
    pub(crate) local_v4: Option<Ipv4Addr>,
    pub(crate) local_v6: Option<Ipv6Addr>,
    #[cfg(any(target_os = "android", target_os = "fuchsia", target_os = "linux"))]
    pub(crate) device: Option<Vec<u8>>,
}

impl SocketOptions {
    /// Opens a socket of `addr`'s family, applies the options and connects.
    ///
    /// Dropping the returned future closes the socket.
    pub(crate) async fn connect(&self, addr: SocketAddr) -> io::Result<TcpStream> {
        let socket = self.socket_for(addr)?;
        socket.connect(addr).await
    }

    fn socket_for(&self, addr: SocketAddr) -> io::Result<TcpSocket> {
        let (socket, local) = match addr {
            SocketAddr::V4(_) => (TcpSocket::new_v4()?, self.local_v4.map(Into::into)),
            SocketAddr::V6(_) => (TcpSocket::new_v6()?, self.local_v6.map(Into::into)),
        };
        if self.nodelay {
            socket.set_nodelay(true)?;
        }
        if self.keepalive {
            socket.set_keepalive(true)?;
        }
        if let Some(size) = self.send_buffer_size {
            socket.set_send_buffer_size(size)?;
        }
        if let Some(size) = self.recv_buffer_size {
            socket.set_recv_buffer_size(size)?;
        }
        #[cfg(any(target_os = "android", target_os = "fuchsia", target_os = "linux"))]
        if let Some(device) = &self.device {
            socket.bind_device(Some(device))?;
        }
        if let Some(ip) = local {
            socket.bind(SocketAddr::new(ip, 0))?;
        }
        Ok(socket)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn options_reach_the_socket() {
        let options = SocketOptions {
            nodelay: true,
            keepalive: true,
            send_buffer_size: Some(64 * 1024),
            local_v4: Some(Ipv4Addr::new(127, 0, 0, 1)),
            ..SocketOptions::default()
        };
        let socket = options.socket_for("127.0.0.2:9".parse().unwrap()).unwrap();
        assert!(socket.nodelay().unwrap());
        assert!(socket.keepalive().unwrap());
        // Linux doubles the requested size for bookkeeping; either way it is at least that.
        assert!(socket.send_buffer_size().unwrap() >= 64 * 1024);
        assert_eq!(
            socket.local_addr().unwrap().ip(),
            Ipv4Addr::new(127, 0, 0, 1)
        );
    }
}
