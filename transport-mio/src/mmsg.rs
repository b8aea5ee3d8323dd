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

/// One received datagram: its length in its buffer, and its sender (a
/// datagram socket always reports one; a datagram without is dropped).
pub(crate) type Received = (usize, Option<SocketAddr>);

#[cfg(target_os = "linux")]
mod linux {
    use std::io::{IoSlice, IoSliceMut};
    use std::net::{SocketAddr, SocketAddrV4, SocketAddrV6};
    use std::os::fd::AsRawFd;

    use nix::sys::socket::{
        ControlMessage, MsgFlags, MultiHeaders, SockaddrStorage, recvmmsg, sendmmsg,
    };

    use std::ops::Range;

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
    /// `len`-byte chunk of `bufs`; replaces what `got` holds with them and
    /// returns how many came.
    pub(crate) fn recv_batch(
        socket: &UdpSocket,
        rx: &mut Receiver,
        bufs: &mut [u8],
        len: usize,
        got: &mut Vec<Received>,
    ) -> io::Result<usize> {
        let mut chunks = bufs.chunks_mut(len);
        let mut iovs: [[IoSliceMut<'_>; 1]; BATCH] =
            std::array::from_fn(|_| [IoSliceMut::new(chunks.next().unwrap_or_default())]);
        let results =
            recvmmsg(socket.as_raw_fd(), &mut rx.headers, iovs.iter_mut(), MsgFlags::empty(), None)
                .map_err(io::Error::from)?;
        got.clear();
        got.extend(results.map(|msg| (msg.bytes, msg.address.as_ref().and_then(std_addr))));
        Ok(got.len())
    }

    /// The destinations of one `sendmmsg`, kept between calls so that a
    /// call writes only as many as it sends.
    #[derive(Debug, Default)]
    pub(crate) struct Destinations(Vec<Option<SockaddrStorage>>);

    /// Sends up to [`BATCH`] of `msgs` (each a destination and where its
    /// bytes are in `bytes`) with one system call; returns how many the
    /// kernel took (at least one, or an error about the first).
    pub(crate) fn send_batch(
        socket: &UdpSocket,
        dsts: &mut Destinations,
        bytes: &[u8],
        msgs: impl Iterator<Item = (SocketAddr, Range<usize>)>,
    ) -> io::Result<usize> {
        let mut iovs: [[IoSlice<'_>; 1]; BATCH] = [[IoSlice::new(&[])]; BATCH];
        dsts.0.clear();
        for (slot, (dst, range)) in iovs.iter_mut().zip(msgs) {
            *slot = [IoSlice::new(&bytes[range])];
            dsts.0.push(Some(SockaddrStorage::from(dst)));
        }
        let n = dsts.0.len();
        let mut headers = MultiHeaders::<SockaddrStorage>::preallocate(n, None);
        let cmsgs: [ControlMessage<'_>; 0] = [];
        let sent = sendmmsg(
            socket.as_raw_fd(),
            &mut headers,
            &iovs[..n],
            &dsts.0,
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
    use std::ops::Range;

    use super::{Received, UdpSocket, io};

    /// Nothing to keep without `recvmmsg`.
    pub(crate) struct Receiver;

    impl Receiver {
        pub(crate) fn new() -> Self {
            Self
        }
    }

    /// Nothing to keep without `sendmmsg`.
    #[derive(Debug, Default)]
    pub(crate) struct Destinations;

    /// One `recv_from`: a batch of one.
    pub(crate) fn recv_batch(
        socket: &UdpSocket,
        _rx: &mut Receiver,
        bufs: &mut [u8],
        len: usize,
        got: &mut Vec<Received>,
    ) -> io::Result<usize> {
        let (n, from) = socket.recv_from(&mut bufs[..len])?;
        got.clear();
        got.push((n, Some(from)));
        Ok(1)
    }

    /// One `send_to`: the first datagram only.
    pub(crate) fn send_batch(
        socket: &UdpSocket,
        _dsts: &mut Destinations,
        bytes: &[u8],
        mut msgs: impl Iterator<Item = (SocketAddr, Range<usize>)>,
    ) -> io::Result<usize> {
        match msgs.next() {
            Some((dst, range)) => socket.send_to(&bytes[range], dst).map(|_| 1),
            None => Ok(0),
        }
    }
}

#[cfg(target_os = "linux")]
pub(crate) use linux::{Destinations, Receiver, recv_batch, send_batch};
#[cfg(not(target_os = "linux"))]
pub(crate) use other::{Destinations, Receiver, recv_batch, send_batch};
