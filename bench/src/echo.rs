//! The reference the registry is measured against: a minimal UDP echo
//! server, plain (`recv_from` / `send_to`, one datagram per system call)
//! or batched (`recvmmsg` / `sendmmsg`), optionally padding each reply to
//! a fixed size (a list page's) and dropping every Nth datagram (for the
//! suite's own tests).
//!
//! It sets the reply bit in the fifth byte, so a registry request comes
//! back looking like a reply; the load generator checks the same header
//! bytes of both.

use std::io;
use std::net::UdpSocket;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use p2pchat_core::REPLY_BIT;

use crate::batch_io::{BUF_LEN, Batch};

/// Socket buffers of the echo server, each way, as the registry's
/// (`SERVER_SOCKET_BUFFER` in transport-mio), so that both absorb the same
/// bursts.
pub const ECHO_SOCKET_BUFFER: usize = 4 << 20;

/// Datagrams one batched call takes or sends at most.
pub const ECHO_BATCH: usize = 64;

/// How often a blocked echo server checks whether it should stop.
const STOP_CHECK: Duration = Duration::from_millis(50);

/// One datagram per system call, or a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum EchoMode {
    /// `recv_from` and `send_to`.
    Plain,
    /// `recvmmsg` and `sendmmsg`, up to [`ECHO_BATCH`] at a time.
    Batched,
}

/// What the echo server does with each datagram.
#[derive(Debug, Clone, Copy)]
pub struct EchoConfig {
    /// Plain or batched system calls.
    pub mode: EchoMode,
    /// Pads (never shortens) each reply to this many bytes (at most
    /// [`BUF_LEN`]).
    pub reply_len: Option<usize>,
    /// Drops every Nth datagram received instead of answering it.
    pub drop_every: Option<u64>,
}

/// Sizes `socket`'s buffers as the registry's; a system limit below the
/// request is noted on stderr, not an error.
pub fn size_buffers(socket: &UdpSocket, bytes: usize) {
    use rustix::net::sockopt;
    if sockopt::set_socket_recv_buffer_size_force(socket, bytes).is_err() {
        let _ = sockopt::set_socket_recv_buffer_size(socket, bytes);
    }
    if sockopt::set_socket_send_buffer_size_force(socket, bytes).is_err() {
        let _ = sockopt::set_socket_send_buffer_size(socket, bytes);
    }
}

/// Answers datagrams on `socket` until `stop` is set (checked every
/// [`STOP_CHECK`]); returns how many it answered.
pub fn serve(socket: &UdpSocket, config: EchoConfig, stop: &AtomicBool) -> io::Result<u64> {
    socket.set_read_timeout(Some(STOP_CHECK))?;
    size_buffers(socket, ECHO_SOCKET_BUFFER);
    let reply_len = config.reply_len.unwrap_or(0).min(BUF_LEN);
    let mut received: u64 = 0;
    let mut answered: u64 = 0;
    let keep = |received: &mut u64| {
        *received += 1;
        config.drop_every.is_none_or(|n| n == 0 || *received % n != 0)
    };
    match config.mode {
        EchoMode::Plain => {
            let mut buf = vec![0u8; BUF_LEN];
            while !stop.load(Ordering::Relaxed) {
                let (len, from) = match socket.recv_from(&mut buf) {
                    Ok(x) => x,
                    Err(e) if is_timeout(&e) => continue,
                    Err(e) => return Err(e),
                };
                if !keep(&mut received) {
                    continue;
                }
                let len = make_reply(&mut buf, len, reply_len);
                socket.send_to(&buf[..len], from)?;
                answered += 1;
            }
        }
        EchoMode::Batched => {
            let mut batch = Batch::new(ECHO_BATCH);
            let mut kept = Batch::new(ECHO_BATCH);
            while !stop.load(Ordering::Relaxed) {
                let n = match batch.recv(socket, true) {
                    Ok(n) => n,
                    Err(e) if is_timeout(&e) => continue,
                    Err(e) => return Err(e),
                };
                let out = if config.drop_every.is_none() {
                    &mut batch
                } else {
                    for i in 0..n {
                        if keep(&mut received) {
                            kept.push(batch.get(i), batch.addr(i));
                        }
                    }
                    &mut kept
                };
                for i in 0..out.len() {
                    let (buf, len) = out.get_mut(i);
                    *len = make_reply(buf, *len, reply_len);
                }
                answered += out.send(socket)? as u64;
            }
        }
    }
    Ok(answered)
}

/// Turns the request in `buf[..len]` into its reply in place: the reply
/// bit set, padded with zeros to `reply_len`. Returns the reply's length.
fn make_reply(buf: &mut [u8], len: usize, reply_len: usize) -> usize {
    if len > 4 {
        buf[4] |= REPLY_BIT;
    }
    if reply_len > len {
        buf[len..reply_len].fill(0);
        reply_len
    } else {
        len
    }
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut | io::ErrorKind::Interrupted
    )
}
