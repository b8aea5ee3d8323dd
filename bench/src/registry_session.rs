//! Setting up the load generator's sockets against a registry: the cookie
//! exchange (a `GetCookie` padded to `GET_COOKIE_LEN`, then the
//! `Challenge`), each socket's own login, and the request templates of
//! each mix. Everything here uses `p2pchat_core`'s codec and message types,
//! and decodes one reply of each kind in full before the load starts.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::time::Duration;

use anyhow::{Context as _, bail};
use p2pchat_core::{
    ClientMsg, Cookie, Entry, GET_COOKIE_LEN, HEADER_LEN, PublicKey, RequestId, ServerMsg,
    body_len, decode_reply, encode_request,
};

use crate::echo::{ECHO_SOCKET_BUFFER, size_buffers};
use crate::loadgen::{Expect, KIND_FOUND, KIND_LIST_PAGE, KIND_WELCOME, Requests};

/// The load sockets bind 127.0.0.(`LOAD_ADDR_BASE` + i): distinct source
/// addresses, none of them the server's 127.0.0.1.
pub const LOAD_ADDR_BASE: u8 = 10;

/// Most load sockets (one loopback address each).
pub const MAX_LOAD_SOCKETS: usize = 200;

/// Wait for one reply during set-up before sending again.
const SETUP_RETRY: Duration = Duration::from_millis(200);

/// Sends during set-up before giving up.
const SETUP_TRIES: u32 = 15;

/// Lookups each socket cycles through (each a listed name).
const LOOKUPS_PER_SOCKET: usize = 64;

/// The chat port every benchmark user declares.
pub const CHAT_PORT: u16 = 7000;

/// What the load asks the registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mix {
    /// The socket's own `Login` again: a keepalive.
    Keepalive,
    /// `Lookup` of a listed user.
    Lookup,
    /// `List` from the start: a full page.
    ListPage,
}

impl Mix {
    /// Its name in records.
    pub fn name(self) -> &'static str {
        match self {
            Mix::Keepalive => "keepalive",
            Mix::Lookup => "lookup",
            Mix::ListPage => "list-page",
        }
    }

    /// The reply kind it expects.
    pub fn expect(self) -> Expect {
        Expect::Registry(match self {
            Mix::Keepalive => KIND_WELCOME,
            Mix::Lookup => KIND_FOUND,
            Mix::ListPage => KIND_LIST_PAGE,
        })
    }
}

/// A benchmark user's name: short ASCII names, sorted as numbered.
pub fn user_name(u: u32) -> String {
    format!("user{u:07}")
}

/// A benchmark user's public key (only its uniqueness matters here).
pub fn user_key(u: u32) -> PublicKey {
    let mut key = [0x55; 32];
    key[..4].copy_from_slice(&u.to_le_bytes());
    key[31] = 0xbe;
    PublicKey(key)
}

/// The load socket `i`'s own user: numbered above every bulk user.
pub fn load_user(i: usize) -> u32 {
    9_000_000 + i as u32
}

/// Binds `n` load sockets, each on its own loopback address (IPv4) or on
/// `::1` (IPv6), connected to `target`, with 4 MiB buffers.
pub fn bind_load_sockets(n: usize, target: SocketAddr) -> anyhow::Result<Vec<UdpSocket>> {
    if n > MAX_LOAD_SOCKETS {
        bail!("at most {MAX_LOAD_SOCKETS} load sockets");
    }
    (0..n)
        .map(|i| {
            let ip = match target.ip() {
                IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::new(127, 0, 0, LOAD_ADDR_BASE + i as u8)),
                IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::LOCALHOST),
            };
            let socket = UdpSocket::bind((ip, 0)).with_context(|| format!("bind {ip}:0"))?;
            socket.connect(target).with_context(|| format!("connect to {target}"))?;
            size_buffers(&socket, ECHO_SOCKET_BUFFER);
            Ok(socket)
        })
        .collect()
}

/// Sends `msg` as request `id` on the connected, blocking `socket` until a
/// reply with that id comes (retrying), and decodes it in full.
pub fn exchange(
    socket: &UdpSocket,
    id: u32,
    msg: &ClientMsg,
) -> anyhow::Result<(ServerMsg, usize)> {
    socket.set_nonblocking(false)?;
    socket.set_read_timeout(Some(SETUP_RETRY))?;
    let bytes = encode_request(RequestId(id), msg);
    let mut buf = [0u8; 2048];
    for _ in 0..SETUP_TRIES {
        socket.send(&bytes)?;
        loop {
            match socket.recv(&mut buf) {
                Ok(n) => match decode_reply(&buf[..n]) {
                    Ok((RequestId(got), reply)) if got == id => return Ok((reply, n)),
                    Ok(_) | Err(_) => continue,
                },
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    break;
                }
                Err(e) => return Err(e.into()),
            }
        }
    }
    bail!("no reply from {:?} after {SETUP_TRIES} tries", socket.peer_addr().ok())
}

/// A `GetCookie` padded so that its datagram is exactly `GET_COOKIE_LEN`.
pub fn get_cookie_msg() -> ClientMsg {
    let empty = ClientMsg::GetCookie { padding: Vec::new() };
    // The padding's length prefix is one byte either way (< 128).
    let pad = GET_COOKIE_LEN.saturating_sub(HEADER_LEN + body_len(&empty));
    ClientMsg::GetCookie { padding: vec![0; pad] }
}

/// The cookie exchange.
pub fn get_cookie(socket: &UdpSocket, id: u32) -> anyhow::Result<Cookie> {
    match exchange(socket, id, &get_cookie_msg())? {
        (ServerMsg::Challenge { cookie }, _) => Ok(cookie),
        (other, _) => bail!("GetCookie answered by {other:?}"),
    }
}

/// Logs `u` in from `socket` (after the cookie exchange); returns the
/// cookie.
pub fn login(socket: &UdpSocket, u: u32) -> anyhow::Result<Cookie> {
    let cookie = get_cookie(socket, u.wrapping_mul(4))?;
    match exchange(socket, u.wrapping_mul(4) + 1, &login_msg(cookie, u))? {
        (ServerMsg::Welcome { observed, .. }, _) if Some(observed) == socket.local_addr().ok() => {
            Ok(cookie)
        }
        (other, _) => bail!("Login of {} answered by {other:?}", user_name(u)),
    }
}

fn login_msg(cookie: Cookie, u: u32) -> ClientMsg {
    ClientMsg::Login { cookie, name: user_name(u), chat_port: CHAT_PORT, key: user_key(u) }
}

/// The request templates of load socket `i` for `mix`; lookups cycle
/// through listed users among `0..listed`.
pub fn templates(mix: Mix, cookie: Cookie, i: usize, listed: u32) -> Requests {
    let msgs: Vec<ClientMsg> = match mix {
        Mix::Keepalive => vec![login_msg(cookie, load_user(i))],
        Mix::ListPage => vec![ClientMsg::List { cookie, after: None }],
        Mix::Lookup => (0..LOOKUPS_PER_SOCKET)
            .map(|k| {
                // A spread over the whole population, different per socket.
                let pick =
                    (k as u64 * 2_654_435_761 + i as u64 * 40_503) % u64::from(listed.max(1));
                ClientMsg::Lookup { cookie, name: user_name(pick as u32) }
            })
            .collect(),
    };
    Requests { templates: msgs.iter().map(|m| encode_request(RequestId(0), m)).collect() }
}

/// Sends one request of each template of `requests` as a check, decoding
/// the replies in full: a keepalive must be welcomed, a lookup must find
/// its user, a list page must hold entries. Returns the longest reply's
/// length and, for a list page, its entry count.
pub fn check(socket: &UdpSocket, mix: Mix, requests: &Requests) -> anyhow::Result<(usize, usize)> {
    let mut longest = (0, 0);
    for (k, t) in requests.templates.iter().enumerate().take(4) {
        let (_, msg) = p2pchat_core::decode_request(t).context("our own template")?;
        let (reply, len) = exchange(socket, 0x00c0_0000 + k as u32, &msg)?;
        let entries = match (mix, reply) {
            (Mix::Keepalive, ServerMsg::Welcome { .. }) => 0,
            (Mix::Lookup, ServerMsg::Found { entry: Some(Entry { .. }) }) => 1,
            (Mix::ListPage, ServerMsg::ListPage { entries, .. }) if !entries.is_empty() => {
                entries.len()
            }
            (mix, other) => bail!("{} answered by {other:?}", mix.name()),
        };
        longest = longest.max((len, entries));
    }
    Ok(longest)
}

/// Binds `n` load sockets to `server`, logs each one's own user in, and
/// checks every mix once. Returns the sockets and their cookies.
pub fn prepare(n: usize, server: SocketAddr) -> anyhow::Result<(Vec<UdpSocket>, Vec<Cookie>)> {
    let sockets = bind_load_sockets(n, server)?;
    let cookies = sockets
        .iter()
        .enumerate()
        .map(|(i, s)| login(s, load_user(i)))
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok((sockets, cookies))
}
