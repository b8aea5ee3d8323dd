//! Many datagrams per system call: `recvmmsg` and `sendmmsg` through `nix`
//! (the workspace forbids `unsafe`), over a fixed set of reused buffers.

use std::io::{self, IoSlice, IoSliceMut};
use std::os::fd::{AsFd, AsRawFd};

use nix::sys::socket::{MsgFlags, MultiHeaders, SockaddrStorage, recvmmsg, sendmmsg};

/// Room for one datagram: more than the registry's largest (1200 bytes)
/// and the echo's largest reply.
pub const BUF_LEN: usize = 2048;

/// A batch of datagrams: received by one `recvmmsg`, or queued to go out
/// by one `sendmmsg`.
pub struct Batch {
    // Two sets of headers: `sendmmsg` points each header's name at the
    // address it sends to, and nix's `recvmmsg` does not point it back at
    // its own storage, so a shared set would report stale source addresses.
    recv_headers: MultiHeaders<SockaddrStorage>,
    send_headers: MultiHeaders<SockaddrStorage>,
    bufs: Vec<Vec<u8>>,
    lens: Vec<usize>,
    addrs: Vec<Option<SockaddrStorage>>,
    len: usize,
}

impl std::fmt::Debug for Batch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Batch").field("len", &self.len).field("capacity", &self.bufs.len()).finish()
    }
}

impl Batch {
    /// A batch of at most `capacity` datagrams (at least one).
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        Self {
            recv_headers: MultiHeaders::preallocate(capacity, None),
            send_headers: MultiHeaders::preallocate(capacity, None),
            bufs: vec![vec![0; BUF_LEN]; capacity],
            lens: vec![0; capacity],
            addrs: vec![None; capacity],
            len: 0,
        }
    }

    /// How many datagrams the batch holds.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether it holds as many as it can.
    pub fn is_full(&self) -> bool {
        self.len == self.bufs.len()
    }

    /// The `i`th datagram's bytes.
    pub fn get(&self, i: usize) -> &[u8] {
        &self.bufs[i][..self.lens[i]]
    }

    /// The `i`th datagram's buffer (all [`BUF_LEN`] bytes) and length, to
    /// rewrite it in place.
    pub fn get_mut(&mut self, i: usize) -> (&mut [u8], &mut usize) {
        (&mut self.bufs[i], &mut self.lens[i])
    }

    /// The `i`th datagram's peer address (`None` on a connected socket).
    pub fn addr(&self, i: usize) -> Option<SockaddrStorage> {
        self.addrs[i]
    }

    /// Queues `bytes` (at most [`BUF_LEN`]) to `addr`, `None` for a
    /// connected socket. Returns false, queueing nothing, when full.
    pub fn push(&mut self, bytes: &[u8], addr: Option<SockaddrStorage>) -> bool {
        if self.is_full() || bytes.len() > BUF_LEN {
            return false;
        }
        self.bufs[self.len][..bytes.len()].copy_from_slice(bytes);
        self.lens[self.len] = bytes.len();
        self.addrs[self.len] = addr;
        self.len += 1;
        true
    }

    /// Receives as many datagrams as are waiting, up to the capacity,
    /// replacing what the batch held. With `wait`, blocks (within the
    /// socket's read timeout) for the first one; otherwise an empty socket
    /// is `WouldBlock`.
    pub fn recv(&mut self, socket: &impl AsFd, wait: bool) -> io::Result<usize> {
        self.len = 0;
        let flags = if wait { MsgFlags::MSG_WAITFORONE } else { MsgFlags::MSG_DONTWAIT };
        let fd = socket.as_fd().as_raw_fd();
        let mut iovs: Vec<[IoSliceMut<'_>; 1]> =
            self.bufs.iter_mut().map(|b| [IoSliceMut::new(b)]).collect();
        let results = recvmmsg(fd, &mut self.recv_headers, iovs.iter_mut(), flags, None)
            .map_err(io::Error::from)?;
        for (i, msg) in results.enumerate() {
            self.lens[i] = msg.bytes;
            self.addrs[i] = msg.address;
            self.len = i + 1;
        }
        Ok(self.len)
    }

    /// Sends everything queued, in as few calls as the kernel allows, and
    /// empties the batch. Returns how many datagrams went out; on an error
    /// (`WouldBlock` on a full send buffer included) the rest are dropped.
    pub fn send(&mut self, socket: &impl AsFd) -> io::Result<usize> {
        let fd = socket.as_fd().as_raw_fd();
        let mut done = 0;
        let result = loop {
            if done == self.len {
                break Ok(done);
            }
            let slices: Vec<[IoSlice<'_>; 1]> =
                (done..self.len).map(|i| [IoSlice::new(&self.bufs[i][..self.lens[i]])]).collect();
            let sent = sendmmsg(
                fd,
                &mut self.send_headers,
                slices.iter(),
                &self.addrs[done..self.len],
                [],
                MsgFlags::empty(),
            )
            .map(Iterator::count);
            match sent {
                Ok(0) => break Err(io::Error::new(io::ErrorKind::WriteZero, "sendmmsg sent 0")),
                Ok(n) => done += n,
                Err(nix::errno::Errno::EINTR) => {}
                Err(e) => break Err(io::Error::from(e)),
            }
        };
        self.len = 0;
        result
    }
}
