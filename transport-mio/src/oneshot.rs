//! One registry request, start to finish: for `p2pchat list`.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Instant;

use mio::{Events, Poll, Token};
use p2pchat_core::{ClientEvent, Entry, Operation, RegistryClient};

use crate::udp::UdpDriver;

const SOCKET: Token = Token(0);

/// Why [`fetch_list`] found no list.
#[derive(Debug, thiserror::Error)]
pub enum ListError {
    /// The registry did not answer (after the client's retransmissions,
    /// about 7.5 s).
    #[error("the registry at {0} did not answer")]
    Unreachable(SocketAddr),
    /// A socket operation failed.
    #[error("socket error: {0}")]
    Io(#[from] io::Error),
}

/// The unspecified address of `server`'s family, port 0: where a client
/// socket for it binds.
pub fn any_addr_for(server: SocketAddr) -> SocketAddr {
    let ip = match server.ip() {
        IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
    };
    SocketAddr::new(ip, 0)
}

/// Fetches the whole online list from the registry at `server`, without
/// logging in. `seed` seeds the request ids (pass a random value).
pub fn fetch_list(server: SocketAddr, seed: u64) -> Result<Vec<Entry>, ListError> {
    let mut poll = Poll::new()?;
    let socket = std::net::UdpSocket::bind(any_addr_for(server))?;
    let mut udp = UdpDriver::new(socket, poll.registry(), SOCKET)?;
    let mut client = RegistryClient::new(server, seed);
    client.refresh_list(Instant::now());
    let mut events = Events::with_capacity(8);
    loop {
        let now = Instant::now();
        if client.poll_timeout().is_some_and(|t| t <= now) {
            client.handle_timeout(now);
        }
        udp.flush(&mut client, poll.registry())?;
        while let Some(ev) = client.poll_event() {
            match ev {
                ClientEvent::List { entries } => return Ok(entries),
                ClientEvent::Unreachable { op: Operation::List } => {
                    return Err(ListError::Unreachable(server));
                }
                other => tracing::debug!(?other, "unexpected registry event"),
            }
        }
        let timeout = client.poll_timeout().map(|t| t.saturating_duration_since(Instant::now()));
        match poll.poll(&mut events, timeout) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e.into()),
        }
        if !events.is_empty() {
            udp.read_all(&mut client, Instant::now());
        }
    }
}
