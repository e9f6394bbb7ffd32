//! Socket setup: a `TcpSocket` with the configured options, then `connect`.

use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use socket2::{SockRef, TcpKeepalive};
use tokio::net::{TcpSocket, TcpStream};

/// TCP keepalive: `SO_KEEPALIVE` on, and the probe timings this sets (the system's for the
/// others).
///
/// Each timing is a `setsockopt(2)` at level `IPPROTO_TCP`, in whole seconds. Every value is
/// brought into the range Linux accepts, so that no setting fails an attempt as if the
/// destination had: durations to 1 s ..= 32,767 s (a fraction of a second rounds up, and
/// `Duration::MAX` is 32,767 s), retries to 1 ..= 127. Where a platform lacks one, setting it fails that platform's attempts rather than
/// being silently dropped: `retries` (`TCP_KEEPCNT`) and `interval` (`TCP_KEEPINTVL`) exist on
/// Linux, Android, the BSDs, Apple platforms, illumos and Windows, not on OpenBSD.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use connect_any::{Connector, Keepalive};
///
/// let connector = Connector::new().keepalive(Some(
///     Keepalive::new()
///         .idle(Duration::from_secs(60))
///         .interval(Duration::from_secs(10))
///         .retries(5),
/// ));
/// # drop(connector);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[must_use = "Keepalive's setters return the changed value"]
pub struct Keepalive {
    idle: Option<Duration>,
    interval: Option<Duration>,
    retries: Option<u32>,
}

impl Keepalive {
    /// Keepalive with the system's timings.
    pub fn new() -> Self {
        Self::default()
    }

    /// How long a connection stays idle before the first probe: `TCP_KEEPIDLE` (Linux,
    /// Android, BSDs), `TCP_KEEPALIVE` (Apple). Default is the system's (2 hours on Linux).
    pub fn idle(mut self, idle: Duration) -> Self {
        self.idle = Some(idle);
        self
    }

    /// Time between probes: `TCP_KEEPINTVL`. Default is the system's (75 s on Linux).
    pub fn interval(mut self, interval: Duration) -> Self {
        self.interval = Some(interval);
        self
    }

    /// Unanswered probes before the connection is dropped: `TCP_KEEPCNT`. Default is the
    /// system's (9 on Linux).
    pub fn retries(mut self, retries: u32) -> Self {
        self.retries = Some(retries);
        self
    }

    fn apply(&self, socket: &SockRef<'_>) -> io::Result<()> {
        socket.set_keepalive(true)?;
        if *self == Self::default() {
            return Ok(());
        }
        let mut params = TcpKeepalive::new();
        if let Some(idle) = self.idle {
            params = params.with_time(keepalive_seconds(idle));
        }
        if let Some(interval) = self.interval {
            params = params.with_interval(keepalive_seconds(interval));
        }
        if let Some(retries) = self.retries {
            params = params.with_retries(retries.clamp(1, MAX_KEEPALIVE_RETRIES));
        }
        socket.set_tcp_keepalive(&params)
    }
}

/// Linux's `MAX_TCP_KEEPIDLE` and `MAX_TCP_KEEPINTVL`, in seconds.
const MAX_KEEPALIVE_SECONDS: u64 = 32_767;
/// Linux's `MAX_TCP_KEEPCNT`.
const MAX_KEEPALIVE_RETRIES: u32 = 127;
/// `TCP_USER_TIMEOUT` is a C `int` of milliseconds; the kernel refuses a negative one.
#[cfg(any(target_os = "android", target_os = "fuchsia", target_os = "linux"))]
const MAX_USER_TIMEOUT: Duration = Duration::from_millis(i32::MAX as u64);

/// A keepalive timing in whole seconds that the kernel accepts: a fraction rounds up, zero is
/// one second, and anything beyond the kernel's limit is that limit.
fn keepalive_seconds(duration: Duration) -> Duration {
    let seconds = duration
        .as_secs()
        .saturating_add(u64::from(duration.subsec_nanos() > 0));
    Duration::from_secs(seconds.clamp(1, MAX_KEEPALIVE_SECONDS))
}

/// Called with each attempt's socket and destination just before `connect`.
pub(crate) type BeforeConnect = Arc<dyn Fn(&TcpSocket, SocketAddr) -> io::Result<()> + Send + Sync>;

/// Options applied to each attempt's socket before it connects.
#[derive(Clone, Default)]
pub(crate) struct SocketOptions {
    pub(crate) nodelay: bool,
    pub(crate) keepalive: Option<Keepalive>,
    pub(crate) send_buffer_size: Option<u32>,
    pub(crate) recv_buffer_size: Option<u32>,
    pub(crate) reuse_address: bool,
    pub(crate) local_v4: Option<Ipv4Addr>,
    pub(crate) local_v6: Option<Ipv6Addr>,
    #[cfg(any(target_os = "android", target_os = "fuchsia", target_os = "linux"))]
    pub(crate) tcp_user_timeout: Option<Duration>,
    #[cfg(any(target_os = "android", target_os = "fuchsia", target_os = "linux"))]
    pub(crate) device: Option<Vec<u8>>,
    #[cfg(any(target_vendor = "apple", docsrs))]
    pub(crate) interface_index: Option<std::num::NonZeroU32>,
    pub(crate) before_connect: Option<BeforeConnect>,
}

impl fmt::Debug for SocketOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut debug = f.debug_struct("SocketOptions");
        debug
            .field("nodelay", &self.nodelay)
            .field("keepalive", &self.keepalive)
            .field("send_buffer_size", &self.send_buffer_size)
            .field("recv_buffer_size", &self.recv_buffer_size)
            .field("reuse_address", &self.reuse_address)
            .field("local_v4", &self.local_v4)
            .field("local_v6", &self.local_v6);
        #[cfg(any(target_os = "android", target_os = "fuchsia", target_os = "linux"))]
        debug
            .field("tcp_user_timeout", &self.tcp_user_timeout)
            .field(
                "device",
                &self.device.as_deref().map(String::from_utf8_lossy),
            );
        debug
            .field(
                "before_connect",
                &self.before_connect.as_ref().map(|_| ".."),
            )
            .finish_non_exhaustive()
    }
}

impl SocketOptions {
    /// Opens a socket of `addr`'s family, applies the options and connects.
    ///
    /// Dropping the returned future closes the socket.
    pub(crate) async fn connect(&self, addr: SocketAddr) -> io::Result<TcpStream> {
        let socket = self.socket_for(addr)?;
        socket.connect(addr).await
    }

    #[inline]
    fn socket_for(&self, addr: SocketAddr) -> io::Result<TcpSocket> {
        let socket = match addr {
            SocketAddr::V4(_) => TcpSocket::new_v4()?,
            SocketAddr::V6(_) => TcpSocket::new_v6()?,
        };
        if !self.changes_nothing() {
            self.apply(&socket, addr)?;
        }
        Ok(socket)
    }

    /// Whether every option is left as the system has it: the default, with nothing to apply.
    /// One test in the connect's code, so that the options' own code stays out of its way.
    fn changes_nothing(&self) -> bool {
        // Destructured without `..`, so that an option added later must be counted here.
        let Self {
            nodelay,
            keepalive,
            send_buffer_size,
            recv_buffer_size,
            reuse_address,
            local_v4,
            local_v6,
            #[cfg(any(target_os = "android", target_os = "fuchsia", target_os = "linux"))]
            tcp_user_timeout,
            #[cfg(any(target_os = "android", target_os = "fuchsia", target_os = "linux"))]
            device,
            #[cfg(any(target_vendor = "apple", docsrs))]
            interface_index,
            before_connect,
        } = self;
        let mut unset = !nodelay
            && keepalive.is_none()
            && send_buffer_size.is_none()
            && recv_buffer_size.is_none()
            && !reuse_address
            && local_v4.is_none()
            && local_v6.is_none()
            && before_connect.is_none();
        #[cfg(any(target_os = "android", target_os = "fuchsia", target_os = "linux"))]
        {
            unset &= tcp_user_timeout.is_none() && device.is_none();
        }
        #[cfg(any(target_vendor = "apple", docsrs))]
        {
            unset &= interface_index.is_none();
        }
        unset
    }

    /// Applies the options to `socket`, bound for `addr`.
    #[inline(never)]
    fn apply(&self, socket: &TcpSocket, addr: SocketAddr) -> io::Result<()> {
        let local: Option<IpAddr> = match addr {
            SocketAddr::V4(_) => self.local_v4.map(Into::into),
            SocketAddr::V6(_) => self.local_v6.map(Into::into),
        };
        if self.nodelay {
            socket.set_nodelay(true)?;
        }
        if let Some(keepalive) = &self.keepalive {
            keepalive.apply(&SockRef::from(socket))?;
        }
        if let Some(size) = self.send_buffer_size {
            socket.set_send_buffer_size(size)?;
        }
        if let Some(size) = self.recv_buffer_size {
            socket.set_recv_buffer_size(size)?;
        }
        if self.reuse_address {
            socket.set_reuseaddr(true)?;
        }
        #[cfg(any(target_os = "android", target_os = "fuchsia", target_os = "linux"))]
        {
            if let Some(timeout) = self.tcp_user_timeout {
                let timeout = timeout.min(MAX_USER_TIMEOUT);
                SockRef::from(socket).set_tcp_user_timeout(Some(timeout))?;
            }
            if let Some(device) = &self.device {
                socket.bind_device(Some(device))?;
            }
        }
        #[cfg(target_vendor = "apple")]
        if let Some(index) = self.interface_index {
            let socket = SockRef::from(socket);
            match addr {
                SocketAddr::V4(_) => socket.bind_device_by_index_v4(Some(index))?,
                SocketAddr::V6(_) => socket.bind_device_by_index_v6(Some(index))?,
            }
        }
        if let Some(ip) = local {
            defer_port_choice(socket);
            socket.bind(SocketAddr::new(ip, 0))?;
        }
        if let Some(hook) = &self.before_connect {
            hook(socket, addr)?;
        }
        Ok(())
    }
}

/// Sets `IP_BIND_ADDRESS_NO_PORT` (Linux 4.2 and later), so that binding a source address with
/// port 0 reserves no port until `connect` picks one for the destination: without it each
/// bound socket holds an ephemeral port of its own and a busy client runs out of them. Best
/// effort: a kernel without it (`ENOPROTOOPT`) just binds as before.
#[cfg(target_os = "linux")]
fn defer_port_choice(socket: &TcpSocket) {
    use std::os::fd::AsRawFd;

    let on: libc::c_int = 1;
    // SAFETY: a valid descriptor, a pointer to a c_int that outlives the call, and its size.
    let _best_effort = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::IPPROTO_IP,
            libc::IP_BIND_ADDRESS_NO_PORT,
            (&raw const on).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
}

#[cfg(not(target_os = "linux"))]
fn defer_port_choice(_socket: &TcpSocket) {}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn options_reach_the_socket() {
        let options = SocketOptions {
            nodelay: true,
            keepalive: Some(Keepalive::new()),
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

    /// The default is the only setting with nothing to apply: each option set alone is applied.
    #[test]
    fn every_option_alone_is_something_to_apply() {
        let default = SocketOptions::default;
        assert!(default().changes_nothing());
        let each: Vec<SocketOptions> = vec![
            SocketOptions {
                nodelay: true,
                ..default()
            },
            SocketOptions {
                keepalive: Some(Keepalive::new()),
                ..default()
            },
            SocketOptions {
                send_buffer_size: Some(1),
                ..default()
            },
            SocketOptions {
                recv_buffer_size: Some(1),
                ..default()
            },
            SocketOptions {
                reuse_address: true,
                ..default()
            },
            SocketOptions {
                local_v4: Some(Ipv4Addr::LOCALHOST),
                ..default()
            },
            SocketOptions {
                local_v6: Some(Ipv6Addr::LOCALHOST),
                ..default()
            },
            #[cfg(any(target_os = "android", target_os = "fuchsia", target_os = "linux"))]
            SocketOptions {
                tcp_user_timeout: Some(Duration::from_secs(1)),
                ..default()
            },
            #[cfg(any(target_os = "android", target_os = "fuchsia", target_os = "linux"))]
            SocketOptions {
                device: Some(b"lo".to_vec()),
                ..default()
            },
            #[cfg(any(target_vendor = "apple", docsrs))]
            SocketOptions {
                interface_index: std::num::NonZeroU32::new(1),
                ..default()
            },
            SocketOptions {
                before_connect: Some(Arc::new(|_, _| Ok(()))),
                ..default()
            },
        ];
        for options in each {
            assert!(!options.changes_nothing(), "{options:?}");
        }
    }

    #[test]
    fn keepalive_timings_are_brought_into_the_kernels_range() {
        let secs = Duration::from_secs;
        assert_eq!(keepalive_seconds(Duration::MAX), secs(32_767));
        assert_eq!(keepalive_seconds(Duration::ZERO), secs(1));
        assert_eq!(keepalive_seconds(Duration::from_millis(1500)), secs(2));
        assert_eq!(keepalive_seconds(secs(60)), secs(60));
    }

    #[tokio::test]
    async fn a_failing_hook_fails_the_socket() {
        let options = SocketOptions {
            before_connect: Some(Arc::new(|_, _| Err(io::Error::other("hook says no")))),
            ..SocketOptions::default()
        };
        let error = options
            .socket_for("127.0.0.2:9".parse().unwrap())
            .unwrap_err();
        assert_eq!(error.to_string(), "hook says no");
    }
}
