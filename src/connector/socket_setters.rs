//! The socket settings of a [`Connector`]: one setter per option, each naming the system call.

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use crate::connector::Connector;
use crate::connector::socket::Keepalive;

/// Socket options: each is applied to every attempt's socket before `connect(2)`.
impl Connector {
    /// Sets `TCP_NODELAY` (`setsockopt(IPPROTO_TCP, TCP_NODELAY)`) on each socket before it
    /// connects. Default is `false`, the operating system's default.
    pub fn nodelay(self, nodelay: bool) -> Self {
        self.with(|s| s.socket.nodelay = nodelay)
    }

    /// TCP keepalive: `setsockopt(SOL_SOCKET, SO_KEEPALIVE)` and the probe timings of
    /// [`Keepalive`] (`TCP_KEEPIDLE`, `TCP_KEEPINTVL`, `TCP_KEEPCNT`). Default is `None`: off.
    pub fn keepalive(self, keepalive: impl Into<Option<Keepalive>>) -> Self {
        let keepalive = keepalive.into();
        self.with(|s| s.socket.keepalive = keepalive)
    }

    /// How long data sent may stay unacknowledged before the connection is dropped:
    /// `setsockopt(IPPROTO_TCP, TCP_USER_TIMEOUT)` in milliseconds (Linux, Android, Fuchsia).
    /// It bounds how long a write to a dead peer can hang, which keepalive does not while data
    /// is queued. A timeout longer than the kernel takes (an `int` of milliseconds, about 24.8
    /// days; `Duration::MAX`, say) is lowered to that. Default is `None`: the system's
    /// (retransmissions for about 15 minutes).
    #[cfg(any(target_os = "android", target_os = "fuchsia", target_os = "linux"))]
    #[cfg_attr(
        docsrs,
        doc(cfg(any(target_os = "android", target_os = "fuchsia", target_os = "linux")))
    )]
    pub fn tcp_user_timeout(self, timeout: impl Into<Option<Duration>>) -> Self {
        let timeout = timeout.into();
        self.with(|s| s.socket.tcp_user_timeout = timeout)
    }

    /// Sets `SO_REUSEADDR` (`setsockopt(SOL_SOCKET, SO_REUSEADDR)`) before any `bind`, where it
    /// has an effect (so a local address in TIME_WAIT can be bound again). Default is `false`.
    pub fn reuse_address(self, reuse: bool) -> Self {
        self.with(|s| s.socket.reuse_address = reuse)
    }

    /// Sets `SO_SNDBUF` (`setsockopt(SOL_SOCKET, SO_SNDBUF)`). Default is `None`: the system's.
    pub fn send_buffer_size(self, size: impl Into<Option<u32>>) -> Self {
        let size = size.into();
        self.with(|s| s.socket.send_buffer_size = size)
    }

    /// Sets `SO_RCVBUF` (`setsockopt(SOL_SOCKET, SO_RCVBUF)`), before `connect` so that the
    /// TCP window scale is negotiated for it. Default is `None`: the system's.
    pub fn recv_buffer_size(self, size: impl Into<Option<u32>>) -> Self {
        let size = size.into();
        self.with(|s| s.socket.recv_buffer_size = size)
    }

    /// The local address IPv4 attempts `bind(2)` to, with port 0. On Linux the socket first
    /// gets `setsockopt(IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT)` (Linux 4.2 and later), so the
    /// port is chosen at `connect` for the destination and a client that binds one source
    /// address for many connects does not run out of ephemeral ports; a kernel without it
    /// (`ENOPROTOOPT`) binds as before. Default is `None`: the system picks.
    pub fn local_address_v4(self, addr: impl Into<Option<Ipv4Addr>>) -> Self {
        let addr = addr.into();
        self.with(|s| s.socket.local_v4 = addr)
    }

    /// The local address IPv6 attempts `bind(2)` to, with port 0, after
    /// `IP_BIND_ADDRESS_NO_PORT` as for [`local_address_v4`](Self::local_address_v4). Default
    /// is `None`: the system picks.
    pub fn local_address_v6(self, addr: impl Into<Option<Ipv6Addr>>) -> Self {
        let addr = addr.into();
        self.with(|s| s.socket.local_v6 = addr)
    }

    /// Binds each socket to a network interface by name (`setsockopt(SOL_SOCKET,
    /// SO_BINDTODEVICE)`); usually needs `CAP_NET_RAW`. Default is `None`.
    #[cfg(any(target_os = "android", target_os = "fuchsia", target_os = "linux"))]
    #[cfg_attr(
        docsrs,
        doc(cfg(any(target_os = "android", target_os = "fuchsia", target_os = "linux")))
    )]
    pub fn bind_device<'a>(self, interface: impl Into<Option<&'a str>>) -> Self {
        let device = interface.into().map(|name| name.as_bytes().to_vec());
        self.with(|s| s.socket.device = device)
    }

    /// Binds each socket to a network interface by index on Apple platforms
    /// (`setsockopt(IPPROTO_IP, IP_BOUND_IF)` or `setsockopt(IPPROTO_IPV6, IPV6_BOUND_IF)`),
    /// as `bind_device` does on Linux. Compiled for Apple targets only and not tested by this
    /// project's CI, which runs on Linux. Default is `None`.
    // Shown in docs built elsewhere too (docs.rs builds on Linux), with its condition.
    #[cfg(any(target_vendor = "apple", docsrs))]
    #[cfg_attr(docsrs, doc(cfg(target_vendor = "apple")))]
    pub fn interface_index(self, index: impl Into<Option<std::num::NonZeroU32>>) -> Self {
        let index = index.into();
        self.with(|s| s.socket.interface_index = index)
    }

    /// A callback given each attempt's socket and destination just before `connect(2)`, after
    /// every other option, as Go's `Dialer.Control`: for settings this connector has no setter
    /// for (`SO_MARK`, `IP_TOS`, `TCP_CONGESTION`, ...), through `socket2::SockRef::from(socket)`
    /// (so `socket2` must be a direct dependency of your crate, as in the example). It runs once
    /// per attempt, so several times per connect when several addresses are tried, and on the
    /// runtime's thread: keep it short. An error fails that attempt with the callback's error,
    /// reported like any other attempt error. A [`connect_with`](Self::connect_with) dialer
    /// gets it through [`tcp_dialer`](Self::tcp_dialer). Default is none.
    ///
    /// ```
    /// use connect_any::Connector;
    ///
    /// let connector = Connector::new().before_connect(|socket, _addr| {
    ///     socket2::SockRef::from(socket).set_tos_v4(0x10) // low delay
    /// });
    /// # drop(connector);
    /// ```
    pub fn before_connect(
        self,
        hook: impl Fn(&tokio::net::TcpSocket, SocketAddr) -> io::Result<()> + Send + Sync + 'static,
    ) -> Self {
        self.with(|s| s.socket.before_connect = Some(Arc::new(hook)))
    }
}
