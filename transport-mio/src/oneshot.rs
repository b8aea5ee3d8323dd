//! One registry request, start to finish: for `p2pchat list`.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Instant;

use p2pchat_core::{
    ClientEvent, Entry, KEY_LEN, Operation, PublicKey, REGISTRY_VERSION, RefuseReason,
    RegistryClient,
};

use crate::server::ServerLoop;

/// Why [`fetch_list`] found no list.
#[derive(Debug, thiserror::Error)]
pub enum ListError {
    /// The registry did not answer (after the client's retransmissions,
    /// for [`GIVE_UP_AFTER`](p2pchat_core::GIVE_UP_AFTER)).
    #[error("the registry at {0} did not answer")]
    Unreachable(SocketAddr),
    /// The registry speaks another protocol version: it refused ours, or
    /// answered in its own.
    #[error(
        "the registry at {0} speaks another protocol version \
         (this client speaks registry protocol {REGISTRY_VERSION})"
    )]
    OtherVersion(SocketAddr),
    /// The registry refused the list.
    #[error("the registry at {server} refused the list: {reason}")]
    Refused {
        /// The registry's address.
        server: SocketAddr,
        /// Why.
        reason: RefuseReason,
    },
    /// A socket operation failed.
    #[error("socket error: {0}")]
    Io(#[from] io::Error),
}

/// Where a client of the registry at `server` binds its sockets by default,
/// port 0: loopback when the registry is on loopback (a local registry only
/// lists local peers, so nothing need be reachable from the network), else
/// every address of the registry's IP family.
pub fn local_addr_for(server: SocketAddr) -> SocketAddr {
    let ip = match (server.ip(), server.ip().is_loopback()) {
        (IpAddr::V4(_), true) => IpAddr::V4(Ipv4Addr::LOCALHOST),
        (IpAddr::V6(_), true) => IpAddr::V6(Ipv6Addr::LOCALHOST),
        (IpAddr::V4(_), false) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        (IpAddr::V6(_), false) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
    };
    SocketAddr::new(ip, 0)
}

/// Fetches the whole online list from the registry at `server`, without
/// logging in. `seed` seeds the request ids (pass a random value).
/// `still_trying` is called when the registry has not answered for
/// [`STILL_TRYING_AFTER`](p2pchat_core::STILL_TRYING_AFTER) (once per page).
/// Ends at the list, or at the first refusal, or when the registry has not
/// answered for [`GIVE_UP_AFTER`](p2pchat_core::GIVE_UP_AFTER).
pub fn fetch_list(
    server: SocketAddr,
    seed: u64,
    mut still_trying: impl FnMut(),
) -> Result<Vec<Entry>, ListError> {
    let socket = std::net::UdpSocket::bind(local_addr_for(server))?;
    // A list needs no login, so the key is never sent.
    let mut client = RegistryClient::new(server, seed, PublicKey([0; KEY_LEN]));
    client.refresh_list(Instant::now());
    let mut run = ServerLoop::new(socket, client)?;
    let stop = run.stop_handle();
    let mut outcome = None;
    run.run(|event| match event {
        ClientEvent::List { entries } => {
            outcome = Some(Ok(entries));
            stop.stop();
        }
        ClientEvent::Unreachable { op: Operation::List } => {
            outcome = Some(Err(ListError::Unreachable(server)));
            stop.stop();
        }
        ClientEvent::Refused { op: Operation::List, reason } => {
            outcome = Some(Err(match reason {
                RefuseReason::UnsupportedVersion => ListError::OtherVersion(server),
                reason @ (RefuseReason::NameTaken
                | RefuseReason::NameInvalid
                | RefuseReason::ServerFull
                | RefuseReason::TooManyFromAddress
                | RefuseReason::TooManyIntroductions) => ListError::Refused { server, reason },
            }));
            stop.stop();
        }
        ClientEvent::StillTrying { op: Operation::List } => still_trying(),
        other => tracing::debug!(?other, "unexpected registry event"),
    })?;
    // The loop returns only when stopped, and only the arms above stop it;
    // the client reports every list that it starts as one of them.
    outcome.unwrap_or(Err(ListError::Unreachable(server)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binds_loopback_for_a_local_registry_and_everywhere_otherwise() {
        let bind = |server: &str| local_addr_for(server.parse().unwrap()).to_string();
        assert_eq!(bind("127.0.0.1:5000"), "127.0.0.1:0");
        assert_eq!(bind("127.4.5.6:5000"), "127.0.0.1:0");
        assert_eq!(bind("[::1]:5000"), "[::1]:0");
        assert_eq!(bind("192.0.2.7:5000"), "0.0.0.0:0");
        assert_eq!(bind("[2001:db8::1]:5000"), "[::]:0");
    }
}
