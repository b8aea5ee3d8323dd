//! Filling a registry with users: user `u` logs in from its own endpoint
//! (a loopback address 127.a.b.c of its own, and a port), with the cookie
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

/// Lowest port a user logs in from (users' ports run over
/// `PORT_BASE..PORT_BASE + PORTS`).
const PORT_BASE: u16 = 20_000;
/// How many ports users' endpoints spread over.
const PORTS: u32 = 40_000;
/// Host numbers per /24 a user address takes (127.a.b.1 to 127.a.b.250).
const HOSTS_PER_24: u32 = 250;
/// Most users the bench can give addresses of their own: 127.1.0.0 to
/// 127.254.255.0, 250 per /24.
pub const MAX_BENCH_USERS: u32 = 254 * 256 * HOSTS_PER_24;
/// Users whose requests are in flight at once.
const CHUNK: usize = 256;
/// Wait for a reply before sending again.
const RETRY: Duration = Duration::from_millis(250);
/// Sends per request before the user counts as failed.
const TRIES: u32 = 8;

/// The endpoint user `u` logs in from: an IPv4 address of its own,
/// 127.a.b.c (a from 1, c from 1 to 250), as users from a million homes
/// would come, and a port from `PORT_BASE`. Defined for `u` below
/// [`MAX_BENCH_USERS`].
pub fn user_endpoint(u: u32) -> SocketAddr {
    let host = u % HOSTS_PER_24;
    let net = u / HOSTS_PER_24;
    let ip = Ipv4Addr::new(127, 1 + (net / 256) as u8, (net % 256) as u8, 1 + host as u8);
    SocketAddr::V4(SocketAddrV4::new(ip, PORT_BASE + (u % PORTS) as u16))
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
        bail!("bulk logins use 127.a.b.c addresses: the server must be on IPv4 loopback");
    }
    if users.end > MAX_BENCH_USERS {
        bail!("the bench gives at most {MAX_BENCH_USERS} users addresses of their own");
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
