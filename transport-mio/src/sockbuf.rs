//! Kernel socket buffers sized for bursts.
//!
//! A registry gets its requests in bursts (every client's keepalive, a
//! crowd listing at once). With the kernel's default receive buffer (about
//! 208 KiB on Linux) a burst of 512 requests in flight loses a few in a
//! thousand before the loop reads them. [`size_buffers`] asks for
//! [`SERVER_SOCKET_BUFFER`] bytes each way.
//!
//! What the kernel grants: on Linux, an unprivileged `SO_RCVBUF` /
//! `SO_SNDBUF` is capped at `net.core.rmem_max` / `net.core.wmem_max`
//! (often 208 KiB, so the request has little effect until an operator raises
//! them with sysctl); a process with `CAP_NET_ADMIN` (root) may exceed the
//! caps with `SO_RCVBUFFORCE` / `SO_SNDBUFFORCE`, which is tried first.
//! Linux doubles the value for its bookkeeping, so the size read back is
//! twice what was granted. Other systems grant what they grant; nothing
//! here fails because a buffer came out smaller than asked.

use std::io;
use std::net::UdpSocket;

use socket2::SockRef;

/// Bytes asked for in each of the registry socket's kernel buffers (receive
/// and send): room for about 3,000 queued requests of up to 1,200 bytes
/// (the kernel also counts its own overhead per datagram).
pub const SERVER_SOCKET_BUFFER: usize = 4 * 1024 * 1024;

/// The buffer sizes the kernel reports after [`size_buffers`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BufferSizes {
    /// `SO_RCVBUF` as read back.
    pub recv: usize,
    /// `SO_SNDBUF` as read back.
    pub send: usize,
}

/// Asks for `bytes` of kernel receive and send buffer on `socket` (forcing
/// past the system caps where allowed) and returns what the kernel reports.
/// A size smaller than asked is not an error; a failing socket option is.
pub fn size_buffers(socket: &UdpSocket, bytes: usize) -> io::Result<BufferSizes> {
    let sock = SockRef::from(socket);
    if !force_recv(socket, bytes) {
        sock.set_recv_buffer_size(bytes)?;
    }
    if !force_send(socket, bytes) {
        sock.set_send_buffer_size(bytes)?;
    }
    let sizes = BufferSizes { recv: sock.recv_buffer_size()?, send: sock.send_buffer_size()? };
    if sizes.recv < bytes {
        tracing::warn!(
            asked = bytes,
            got = sizes.recv,
            "the kernel capped the UDP receive buffer (raise net.core.rmem_max)"
        );
    }
    Ok(sizes)
}

/// `SO_RCVBUFFORCE`: whether it worked (it needs `CAP_NET_ADMIN`).
#[cfg(target_os = "linux")]
fn force_recv(socket: &UdpSocket, bytes: usize) -> bool {
    rustix::net::sockopt::set_socket_recv_buffer_size_force(socket, bytes).is_ok()
}

/// `SO_SNDBUFFORCE`: whether it worked (it needs `CAP_NET_ADMIN`).
#[cfg(target_os = "linux")]
fn force_send(socket: &UdpSocket, bytes: usize) -> bool {
    rustix::net::sockopt::set_socket_send_buffer_size_force(socket, bytes).is_ok()
}

#[cfg(not(target_os = "linux"))]
fn force_recv(_socket: &UdpSocket, _bytes: usize) -> bool {
    false
}

#[cfg(not(target_os = "linux"))]
fn force_send(_socket: &UdpSocket, _bytes: usize) -> bool {
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What an unprivileged process can get at most: the sysctl cap, where
    /// the system says.
    fn cap(path: &str) -> usize {
        std::fs::read_to_string(path)
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(SERVER_SOCKET_BUFFER)
    }

    #[test]
    fn buffers_grow_to_what_the_kernel_allows() {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        let default = SockRef::from(&socket).recv_buffer_size().unwrap();
        let sizes = size_buffers(&socket, SERVER_SOCKET_BUFFER).unwrap();
        let read_back = BufferSizes {
            recv: SockRef::from(&socket).recv_buffer_size().unwrap(),
            send: SockRef::from(&socket).send_buffer_size().unwrap(),
        };
        assert_eq!(sizes, read_back);
        // At least the request, or the system's cap on it, whichever is
        // smaller (Linux reports twice what it granted).
        let want_recv = SERVER_SOCKET_BUFFER.min(cap("/proc/sys/net/core/rmem_max"));
        let want_send = SERVER_SOCKET_BUFFER.min(cap("/proc/sys/net/core/wmem_max"));
        assert!(sizes.recv >= want_recv, "{sizes:?}, default {default}");
        assert!(sizes.send >= want_send, "{sizes:?}");
        if want_recv > default {
            assert!(sizes.recv > default, "{sizes:?}, default {default}");
        } else {
            println!(
                "the system caps receive buffers at the default; only the read-back is checked"
            );
        }
    }
}
