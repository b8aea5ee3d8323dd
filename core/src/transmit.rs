//! A datagram for the driver to send.

use std::net::SocketAddr;

/// One datagram a state machine wants sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// Where to send it.
    pub dst: SocketAddr,
    /// The whole datagram, header included.
    pub payload: Vec<u8>,
}
