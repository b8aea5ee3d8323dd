//! Many datagrams per system call: `recvmmsg` and `sendmmsg` on Linux
//! (through `nix`), one `recv_from` / `send_to` at a time elsewhere.
//!
//! A registry answers tiny requests: one system call per datagram each way
//! costs more than the answer. Taking up to [`BATCH`] datagrams per call,
//! and sending the answers to one batch with one call, is most of what
//! separates a loop of `recv_from` and `send_to` from the machine's limit.

use std::io;
use std::net::SocketAddr;

use mio::net::UdpSocket;

/// Most datagrams received, or sent, by one system call.
pub const BATCH: usize = 64;

/// One received datagram: its length in its buffer, and its sender.
pub(crate) type Received = (usize, SocketAddr);

#[cfg(target_os = "linux")]
mod linux {
    use std::io::{IoSlice, IoSliceMut};
    use std::net::{SocketAddr, SocketAddrV4, SocketAddrV6};
    use std::os::fd::AsRawFd;

    use nix::sys::socket::{
        ControlMessage, MsgFlags, MultiHeaders, SockaddrStorage, recvmmsg, sendmmsg,
    };

    use super::{BATCH, Received, UdpSocket, io};

    /// The kernel's message headers for receiving, kept for one wakeup (they
    /// hold raw pointers, so they are made where they are used rather than
    /// stored in a driver that may move between threads).
    pub(crate) struct Receiver {
        headers: MultiHeaders<SockaddrStorage>,
    }

    impl Receiver {
        pub(crate) fn new() -> Self {
            Self { headers: MultiHeaders::preallocate(BATCH, None) }
        }
    }

    fn std_addr(s: &SockaddrStorage) -> Option<SocketAddr> {
        if let Some(v4) = s.as_sockaddr_in() {
            return Some(SocketAddr::V4(SocketAddrV4::from(*v4)));
        }
        s.as_sockaddr_in6().map(|v6| SocketAddr::V6(SocketAddrV6::from(*v6)))
    }

    /// Receives up to [`BATCH`] datagrams, the `i`th into the `i`th
    /// `len`-byte chunk of `bufs`; fills `got` and returns how many came.
    pub(crate) fn recv_batch(
        socket: &UdpSocket,
        rx: &mut Receiver,
        bufs: &mut [u8],
        len: usize,
        got: &mut [Received; BATCH],
    ) -> io::Result<usize> {
        let mut chunks = bufs.chunks_mut(len);
        let mut iovs: [[IoSliceMut<'_>; 1]; BATCH] =
            std::array::from_fn(|_| [IoSliceMut::new(chunks.next().unwrap_or_default())]);
        let results =
            recvmmsg(socket.as_raw_fd(), &mut rx.headers, iovs.iter_mut(), MsgFlags::empty(), None)
                .map_err(io::Error::from)?;
        let mut n = 0;
        for msg in results {
            // A datagram socket always reports its sender; one that did not
            // would be skipped.
            if let Some(from) = msg.address.as_ref().and_then(std_addr) {
                got[n] = (msg.bytes, from);
                n += 1;
            }
        }
        Ok(n)
    }

    /// Sends `msgs` (at most [`BATCH`]) with one system call; returns how
    /// many the kernel took (at least one, or an error about the first).
    pub(crate) fn send_batch(
        socket: &UdpSocket,
        msgs: &[(SocketAddr, &[u8])],
    ) -> io::Result<usize> {
        let msgs = &msgs[..msgs.len().min(BATCH)];
        let n = msgs.len();
        let mut headers = MultiHeaders::<SockaddrStorage>::preallocate(n, None);
        let iovs: [[IoSlice<'_>; 1]; BATCH] =
            std::array::from_fn(|i| [IoSlice::new(msgs.get(i).map_or(&[][..], |m| m.1))]);
        let addrs: [Option<SockaddrStorage>; BATCH] =
            std::array::from_fn(|i| msgs.get(i).map(|m| SockaddrStorage::from(m.0)));
        let cmsgs: [ControlMessage<'_>; 0] = [];
        let sent = sendmmsg(
            socket.as_raw_fd(),
            &mut headers,
            &iovs[..n],
            &addrs[..n],
            cmsgs,
            MsgFlags::empty(),
        )
        .map_err(io::Error::from)?;
        Ok(sent.count())
    }
}

#[cfg(not(target_os = "linux"))]
mod other {
    use std::net::SocketAddr;

    use super::{BATCH, Received, UdpSocket, io};

    /// Nothing to keep without `recvmmsg`.
    pub(crate) struct Receiver;

    impl Receiver {
        pub(crate) fn new() -> Self {
            Self
        }
    }

    /// One `recv_from`: a batch of one.
    pub(crate) fn recv_batch(
        socket: &UdpSocket,
        _rx: &mut Receiver,
        bufs: &mut [u8],
        len: usize,
        got: &mut [Received; BATCH],
    ) -> io::Result<usize> {
        let (n, from) = socket.recv_from(&mut bufs[..len])?;
        got[0] = (n, from);
        Ok(1)
    }

    /// One `send_to`: the first datagram only.
    pub(crate) fn send_batch(
        socket: &UdpSocket,
        msgs: &[(SocketAddr, &[u8])],
    ) -> io::Result<usize> {
        match msgs.first() {
            Some((dst, bytes)) => socket.send_to(bytes, *dst).map(|_| 1),
            None => Ok(0),
        }
    }
}

#[cfg(target_os = "linux")]
pub(crate) use linux::{Receiver, recv_batch, send_batch};
#[cfg(not(target_os = "linux"))]
pub(crate) use other::{Receiver, recv_batch, send_batch};
