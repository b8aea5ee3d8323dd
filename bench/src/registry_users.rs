//! Filling a registry with users: user `u` logs in from its own endpoint
//! (a loopback address 127.1.x.y and a port of its own), with the cookie
//! exchange, then its socket is closed; the entry stays for the lease.
//! Sockets work in chunks, all of a chunk's requests in flight at once.

use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket};
use std::ops::Range;
use std::time::{Duration, Instant};

use anyhow::bail;
use p2pchat_core::{ClientMsg, RequestId, ServerMsg, decode_reply, encode_request};
use rustix::event::{PollFd, PollFlags, Timespec, poll};

use crate::registry_session::{CHAT_PORT, get_cookie_msg, user_key, user_name};

/// First port of each user address.
const PORT_BASE: u16 = 20_000;
/// Users per loopback address (ports `PORT_BASE..PORT_BASE + this`).
pub const USERS_PER_ADDR: u32 = 40_000;
/// Users whose requests are in flight at once.
const CHUNK: usize = 256;
/// Wait for a reply before sending again.
const RETRY: Duration = Duration::from_millis(250);
/// Sends per request before the user counts as failed.
const TRIES: u32 = 8;

/// The endpoint user `u` logs in from: 127.1.b.c, port from `PORT_BASE`.
pub fn user_endpoint(u: u32) -> SocketAddr {
    let a = u / USERS_PER_ADDR;
    let ip = Ipv4Addr::new(127, 1 + (a / 250) as u8, (a % 250) as u8, 1);
    SocketAddr::V4(SocketAddrV4::new(ip, PORT_BASE + (u % USERS_PER_ADDR) as u16))
}

/// How a bulk login went.
#[derive(Debug, Clone, Copy, Default)]
pub struct LoginStats {
    /// Users welcomed.
    pub logged_in: u64,
    /// Users that could not bind, were refused or got no answer.
    pub failed: u64,
    /// Wall time, seconds.
    pub seconds: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Cookie,
    Login,
    Done,
}

struct Pending {
    u: u32,
    socket: UdpSocket,
    step: Step,
    request: Vec<u8>,
    id: u32,
    sent: Option<Instant>,
    tries: u32,
}

/// Logs in users `users` to the IPv4 `server` within `within`; an error
/// unless every one of them is listed.
pub fn login_all(server: SocketAddr, users: Range<u32>, within: Duration) -> anyhow::Result<()> {
    let count = users.len();
    let logins = login_users(server, users, Instant::now() + within)?;
    anyhow::ensure!(logins.failed == 0, "{} of {count} users failed to log in", logins.failed);
    Ok(())
}

/// Logs in users `users` to the IPv4 `server`, stopping at `deadline`.
pub fn login_users(
    server: SocketAddr,
    users: Range<u32>,
    deadline: Instant,
) -> anyhow::Result<LoginStats> {
    if !server.is_ipv4() {
        bail!("bulk logins use 127.1.x.y addresses: the server must be on IPv4 loopback");
    }
    let start = Instant::now();
    let mut stats = LoginStats::default();
    let mut next = users.start;
    let mut buf = [0u8; 2048];
    while next < users.end {
        if Instant::now() > deadline {
            stats.failed += u64::from(users.end - next);
            break;
        }
        let end = users.end.min(next + CHUNK as u32);
        let mut chunk = Vec::with_capacity(CHUNK);
        for u in next..end {
            match bind(u, server) {
                Ok(socket) => chunk.push(Pending {
                    u,
                    socket,
                    step: Step::Cookie,
                    request: encode_request(RequestId(u.wrapping_mul(2)), &get_cookie_msg()),
                    id: u.wrapping_mul(2),
                    sent: None,
                    tries: 0,
                }),
                Err(_) => stats.failed += 1,
            }
        }
        next = end;
        run_chunk(&mut chunk, &mut buf, &mut stats)?;
    }
    stats.seconds = start.elapsed().as_secs_f64();
    Ok(stats)
}

fn bind(u: u32, server: SocketAddr) -> io::Result<UdpSocket> {
    let socket = UdpSocket::bind(user_endpoint(u))?;
    socket.connect(server)?;
    socket.set_nonblocking(true)?;
    Ok(socket)
}

fn run_chunk(chunk: &mut [Pending], buf: &mut [u8], stats: &mut LoginStats) -> io::Result<()> {
    let sleep = Timespec { tv_sec: 0, tv_nsec: 20_000_000 };
    loop {
        let now = Instant::now();
        for p in chunk.iter_mut().filter(|p| p.step != Step::Done) {
            if p.sent.is_none_or(|at| now.duration_since(at) >= RETRY) {
                if p.tries == TRIES {
                    p.step = Step::Done;
                    stats.failed += 1;
                    continue;
                }
                p.tries += 1;
                p.sent = Some(now);
                let _ = p.socket.send(&p.request);
            }
        }
        let open: Vec<usize> = (0..chunk.len()).filter(|&i| chunk[i].step != Step::Done).collect();
        if open.is_empty() {
            return Ok(());
        }
        let mut fds: Vec<PollFd<'_>> =
            open.iter().map(|&i| PollFd::new(&chunk[i].socket, PollFlags::IN)).collect();
        poll(&mut fds, Some(&sleep)).map_err(io::Error::from)?;
        let ready: Vec<usize> = open
            .iter()
            .zip(&fds)
            .filter(|(_, f)| !f.revents().is_empty())
            .map(|(&i, _)| i)
            .collect();
        drop(fds);
        for i in ready {
            let p = &mut chunk[i];
            while let Ok(n) = p.socket.recv(buf) {
                let Ok((RequestId(id), reply)) = decode_reply(&buf[..n]) else { continue };
                if id != p.id {
                    continue;
                }
                match (p.step, reply) {
                    (Step::Cookie, ServerMsg::Challenge { cookie })
                    | (Step::Login, ServerMsg::Challenge { cookie }) => {
                        let msg = ClientMsg::Login {
                            cookie,
                            name: user_name(p.u),
                            chat_port: CHAT_PORT,
                            key: user_key(p.u),
                        };
                        p.id = p.id.wrapping_add(1);
                        p.request = encode_request(RequestId(p.id), &msg);
                        p.step = Step::Login;
                        p.tries = 1;
                        p.sent = Some(Instant::now());
                        let _ = p.socket.send(&p.request);
                    }
                    (Step::Login, ServerMsg::Welcome { .. }) => {
                        p.step = Step::Done;
                        stats.logged_in += 1;
                    }
                    (Step::Login, ServerMsg::Refused { .. }) => {
                        p.step = Step::Done;
                        stats.failed += 1;
                    }
                    (
                        Step::Cookie | Step::Login | Step::Done,
                        ServerMsg::Welcome { .. }
                        | ServerMsg::Refused { .. }
                        | ServerMsg::ListPage { .. }
                        | ServerMsg::Found { .. }
                        | ServerMsg::LoggedOut
                        | ServerMsg::Introduced { .. }
                        | ServerMsg::Challenge { .. },
                    ) => {}
                }
            }
        }
    }
}
