//! The system's `getaddrinfo(3)`, called directly so that its error codes survive: the standard
//! library turns them all into one unstable error kind and a message.

#[cfg(unix)]
use std::ffi::CStr;
use std::io;
use std::net::SocketAddr;

/// Looks `host` up with `getaddrinfo(host, NULL, {ai_socktype = SOCK_STREAM})`, as the standard
/// library does, and returns its addresses in the system's order (RFC 6724), with port 0.
///
/// Blocks: call it on a blocking thread.
#[cfg(unix)]
pub(crate) fn lookup(host: &str) -> io::Result<Vec<SocketAddr>> {
    with_c_str(host, lookup_c_str)
}

/// Calls `call` with `host` as a C string, built on the stack unless it is long (DNS names
/// never are), as the standard library does.
#[cfg(unix)]
fn with_c_str<T>(host: &str, call: impl FnOnce(&CStr) -> io::Result<T>) -> io::Result<T> {
    fn no_nul<E>(_: E) -> io::Error {
        io::Error::new(io::ErrorKind::InvalidInput, "NUL byte in host name")
    }
    let mut buffer = [0_u8; 256];
    if host.len() < buffer.len() {
        buffer[..host.len()].copy_from_slice(host.as_bytes());
        return call(CStr::from_bytes_with_nul(&buffer[..=host.len()]).map_err(no_nul)?);
    }
    call(&std::ffi::CString::new(host).map_err(no_nul)?)
}

#[cfg(unix)]
fn lookup_c_str(host: &CStr) -> io::Result<Vec<SocketAddr>> {
    use std::ptr;

    // SAFETY: `addrinfo` is plain data; all-zero is its documented "no hints" value.
    let mut hints: libc::addrinfo = unsafe { std::mem::zeroed() };
    hints.ai_socktype = libc::SOCK_STREAM;
    let mut list: *mut libc::addrinfo = ptr::null_mut();
    // SAFETY: `host` is a valid C string, `hints` a valid addrinfo, `list` a valid out pointer.
    let code = unsafe { libc::getaddrinfo(host.as_ptr(), ptr::null(), &hints, &mut list) };
    if code != 0 {
        return Err(error(code));
    }
    let mut addrs = Vec::new();
    let mut entry = list;
    while !entry.is_null() {
        // SAFETY: `entry` is a node of the list getaddrinfo returned, not yet freed.
        let info = unsafe { &*entry };
        // SAFETY: `ai_addr` points to `ai_addrlen` bytes of a socket address of its family.
        addrs.extend(unsafe { socket_addr(info.ai_addr, info.ai_addrlen) });
        entry = info.ai_next;
    }
    // SAFETY: `list` came from a successful getaddrinfo and is freed once.
    unsafe { libc::freeaddrinfo(list) };
    Ok(addrs)
}

/// Reads an IPv4 or IPv6 socket address; `None` for any other family.
///
/// # Safety
///
/// `addr` must point to `len` readable bytes holding a socket address of the family it names.
#[cfg(unix)]
unsafe fn socket_addr(addr: *const libc::sockaddr, len: libc::socklen_t) -> Option<SocketAddr> {
    use std::net::{Ipv4Addr, Ipv6Addr, SocketAddrV6};

    if addr.is_null() {
        return None;
    }
    let len = len as usize;
    // SAFETY: the caller vouches for the bytes; each read checks the length for its family
    // first, and `read_unaligned` needs no alignment.
    unsafe {
        match i32::from((*addr).sa_family) {
            libc::AF_INET if len >= size_of::<libc::sockaddr_in>() => {
                let v4 = addr.cast::<libc::sockaddr_in>().read_unaligned();
                let ip = Ipv4Addr::from(u32::from_be(v4.sin_addr.s_addr));
                Some(SocketAddr::from((ip, 0)))
            }
            libc::AF_INET6 if len >= size_of::<libc::sockaddr_in6>() => {
                let v6 = addr.cast::<libc::sockaddr_in6>().read_unaligned();
                let ip = Ipv6Addr::from(v6.sin6_addr.s6_addr);
                // The standard library keeps `sin6_flowinfo` as it is in the structure, and
                // writes it back the same way when it connects, so no byte swap here.
                Some(SocketAddr::V6(SocketAddrV6::new(
                    ip,
                    0,
                    v6.sin6_flowinfo,
                    v6.sin6_scope_id,
                )))
            }
            _ => None,
        }
    }
}

/// An `io::Error` for a `getaddrinfo` failure, with a kind callers can match: `NotFound` for a
/// name that does not exist, `TimedOut` for a temporary failure (no answer in time), the OS
/// error for `EAI_SYSTEM`. The message is the system's `gai_strerror` text.
#[cfg(unix)]
fn error(code: i32) -> io::Error {
    use io::ErrorKind::*;

    if code == libc::EAI_SYSTEM {
        return io::Error::last_os_error();
    }
    let kind = match code {
        libc::EAI_NONAME => NotFound,
        libc::EAI_AGAIN => TimedOut,
        libc::EAI_MEMORY => OutOfMemory,
        libc::EAI_FAMILY | libc::EAI_SOCKTYPE | libc::EAI_SERVICE | libc::EAI_BADFLAGS => {
            InvalidInput
        }
        _ if is_no_data(code) => NotFound,
        _ => Other,
    };
    // SAFETY: gai_strerror returns a pointer to a static, NUL-terminated string.
    let text = unsafe { std::ffi::CStr::from_ptr(libc::gai_strerror(code)) };
    io::Error::new(kind, text.to_string_lossy().into_owned())
}

/// glibc's `EAI_NODATA`: the name exists but has no address.
#[cfg(all(unix, target_os = "linux", target_env = "gnu"))]
fn is_no_data(code: i32) -> bool {
    code == libc::EAI_NODATA
}

#[cfg(all(unix, not(all(target_os = "linux", target_env = "gnu"))))]
fn is_no_data(_code: i32) -> bool {
    false
}

/// Elsewhere the standard library's lookup, whose errors carry no code to map.
#[cfg(not(unix))]
pub(crate) fn lookup(host: &str) -> io::Result<Vec<SocketAddr>> {
    use std::net::ToSocketAddrs;
    Ok((host, 0).to_socket_addrs()?.collect())
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    #[test]
    fn names_of_any_length_reach_the_call_and_nul_bytes_do_not() {
        for len in [0, 1, 254, 255, 256, 257, 1000] {
            let host = "a".repeat(len);
            let seen = with_c_str(&host, |c| Ok(c.to_bytes().len())).unwrap();
            assert_eq!(seen, len);
        }
        for host in ["a\0b", &format!("{}\0", "a".repeat(300))] {
            let error = with_c_str(host, |_| Ok(())).unwrap_err();
            assert_eq!(error.kind(), io::ErrorKind::InvalidInput);
        }
    }

    #[test]
    fn literals_and_localhost_resolve() {
        assert_eq!(
            lookup("127.0.0.1").unwrap(),
            ["127.0.0.1:0".parse().unwrap()]
        );
        let localhost = lookup("localhost").unwrap();
        assert!(
            localhost
                .iter()
                .all(|a| a.ip().is_loopback() && a.port() == 0)
        );
        assert!(!localhost.is_empty());
    }

    /// A link-local answer (mDNS, `/etc/hosts`) keeps its zone, and the flow info is kept as
    /// the standard library keeps it, so that the address dialed is the one answered.
    #[test]
    fn ipv6_scope_and_flow_info_are_kept_as_the_standard_library_keeps_them() {
        let wanted: std::net::SocketAddrV6 = "[fe80::1%7]:0".parse().unwrap();
        let wanted = std::net::SocketAddrV6::new(*wanted.ip(), 0, 0x0001_2345, 7);
        // SAFETY: all-zero is a valid sockaddr_in6.
        let mut raw: libc::sockaddr_in6 = unsafe { std::mem::zeroed() };
        raw.sin6_family = libc::AF_INET6 as libc::sa_family_t;
        raw.sin6_addr.s6_addr = wanted.ip().octets();
        raw.sin6_flowinfo = wanted.flowinfo();
        raw.sin6_scope_id = wanted.scope_id();
        let len = size_of::<libc::sockaddr_in6>() as libc::socklen_t;
        // SAFETY: `raw` is a sockaddr_in6 of `len` bytes.
        let read = unsafe { socket_addr((&raw const raw).cast(), len) };
        assert_eq!(read, Some(SocketAddr::V6(wanted)));
        // And the standard library's own conversion agrees, through a socket it binds.
        let bound = socket2::SockAddr::from(SocketAddr::V6(wanted));
        // SAFETY: a SockAddr holds a valid socket address of `len()` bytes.
        let through_std = unsafe { socket_addr(bound.as_ptr().cast(), bound.len()) };
        assert_eq!(through_std, Some(SocketAddr::V6(wanted)));
    }

    #[test]
    fn errors_have_kinds_callers_can_match() {
        assert_eq!(error(libc::EAI_NONAME).kind(), io::ErrorKind::NotFound);
        assert_eq!(error(libc::EAI_AGAIN).kind(), io::ErrorKind::TimedOut);
        assert_eq!(error(libc::EAI_FAIL).kind(), io::ErrorKind::Other);
        assert!(!error(libc::EAI_NONAME).to_string().is_empty());
        let nul = lookup("a\0b").unwrap_err();
        assert_eq!(nul.kind(), io::ErrorKind::InvalidInput);
    }
}
