//! The suite's minimal relay (`p2pchat-bench relay`, run by the suite as
//! a child process): what a client's loop does for a round trip, and
//! nothing else. One `mio::Poll` on one thread over standard input and one
//! loopback TCP stream; each line read from the input goes out as a frame
//! (a 4-byte big-endian length, then the line), each frame received is
//! written to standard output as a line.
//!
//! No encryption, no history, no echo of one's own line, no session, no
//! escaping: two of these relaying a round trip are the floor of the
//! design (an epoll loop and non-blocking descriptors), against which what
//! the client adds shows.

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::os::fd::AsRawFd;

use anyhow::Context as _;
use mio::net::TcpStream;
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};
use p2pchat_core::{FrameDecoder, write_frame};

const INPUT: Token = Token(0);
const STREAM: Token = Token(1);

/// Bytes read from the input or the stream at once.
const READ_CHUNK: usize = 64 * 1024;

/// Relays until the input or the stream ends. `listen`: take one
/// connection on `addr` (printing `Relay listening on ADDR` first), else
/// connect to `addr`.
pub fn run(listen: bool, addr: SocketAddr) -> anyhow::Result<()> {
    let stream = if listen {
        let listener = std::net::TcpListener::bind(addr).with_context(|| format!("bind {addr}"))?;
        println!("Relay listening on {}", listener.local_addr()?);
        io::stdout().flush()?;
        listener.accept()?.0
    } else {
        std::net::TcpStream::connect(addr).with_context(|| format!("connect {addr}"))?
    };
    stream.set_nodelay(true)?;
    stream.set_nonblocking(true)?;
    let mut stream = TcpStream::from_std(stream);
    // The pipe is the suite's, made for this process alone.
    let stdin = io::stdin();
    let fd = stdin.as_raw_fd();
    let flags = rustix::fs::fcntl_getfl(&stdin)?;
    rustix::fs::fcntl_setfl(&stdin, flags | rustix::fs::OFlags::NONBLOCK)?;
    let mut poll = Poll::new()?;
    poll.registry().register(&mut SourceFd(&fd), INPUT, Interest::READABLE)?;
    poll.registry().register(&mut stream, STREAM, Interest::READABLE)?;
    let mut events = Events::with_capacity(8);
    let mut buf = vec![0; READ_CHUNK];
    let mut typed = Vec::new();
    let mut received = FrameDecoder::new();
    let mut out = io::stdout().lock();
    loop {
        match poll.poll(&mut events, None) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => other?,
        }
        for event in &events {
            match event.token() {
                INPUT => {
                    if !read(&mut stdin.lock(), &mut buf, |b| typed.extend_from_slice(b))? {
                        return Ok(());
                    }
                    let frames = lines_to_frames(&mut typed);
                    // Loopback takes a line at once; a reference need not wait.
                    stream.write_all(&frames)?;
                }
                _ => {
                    if !read(&mut stream, &mut buf, |b| received.push(b))? {
                        return Ok(());
                    }
                    let mut lines = Vec::new();
                    while let Some(line) = received.next_frame_ref()? {
                        lines.extend_from_slice(line);
                        lines.push(b'\n');
                    }
                    out.write_all(&lines)?;
                    out.flush()?;
                }
            }
        }
    }
}

/// Reads what `from` has, handing each piece to `into`, stopping at a short
/// read as the client does (the next bytes raise a new edge). `false` at
/// its end.
fn read(from: &mut impl Read, buf: &mut [u8], mut into: impl FnMut(&[u8])) -> io::Result<bool> {
    loop {
        match from.read(buf) {
            Ok(0) => return Ok(false),
            Ok(n) => {
                into(&buf[..n]);
                if n < buf.len() {
                    return Ok(true);
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(true),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// The whole lines of `typed` as frames, taken out of it.
fn lines_to_frames(typed: &mut Vec<u8>) -> Vec<u8> {
    let mut frames = Vec::new();
    let mut start = 0;
    while let Some(end) = memchr::memchr(b'\n', &typed[start..]) {
        write_frame(&mut frames, &typed[start..start + end]);
        start += end + 1;
    }
    typed.drain(..start);
    frames
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_lines_become_frames_and_a_partial_one_waits() {
        let mut typed = b"hello\nworld\npart".to_vec();
        let frames = lines_to_frames(&mut typed);
        assert_eq!(typed, b"part");
        let mut decoder = FrameDecoder::new();
        decoder.push(&frames);
        assert_eq!(decoder.next_frame().unwrap().as_deref(), Some(&b"hello"[..]));
        assert_eq!(decoder.next_frame().unwrap().as_deref(), Some(&b"world"[..]));
        assert_eq!(decoder.next_frame().unwrap(), None);
    }
}
