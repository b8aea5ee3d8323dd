//! The relay's limits and configuration.

use std::time::Duration;

/// How many connections the relay holds at once, unless configured; one
/// beyond it is refused with [`RelayStatus::Busy`](super::RelayStatus::Busy).
pub const DEFAULT_RELAY_CONNECTIONS: usize = 1024;

/// How many connections one IP address may hold at once, unless
/// configured; one beyond it is refused with
/// [`RelayStatus::TooManyFromAddress`](super::RelayStatus::TooManyFromAddress). A user needs one per relayed chat.
pub const DEFAULT_RELAY_PER_ADDRESS: usize = 8;

/// Bytes a second one pair may move (both directions together), unless
/// configured: far beyond typing, far below what a relay's link carries.
pub const DEFAULT_PAIR_RATE: u64 = 64 * 1024;

/// Bytes a pair may move at once before the rate applies, unless
/// configured: a chat's largest burst (a full send window of long texts)
/// passes without waiting.
pub const DEFAULT_PAIR_BURST: u64 = 512 * 1024;

/// Refused connections held beyond the configured maximum while their
/// refusal is written; past it a connection is closed without a reply.
pub const REFUSAL_HEADROOM: usize = 64;

/// How long a new connection has to send its whole hello.
pub const RELAY_HELLO_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a connection with a valid hello waits for the other side.
pub const UNPAIRED_TIMEOUT: Duration = Duration::from_secs(20);

/// How long a pair may stay silent both ways before both are closed. A
/// chat pings every 10 s, so only a dead pair gets there.
pub const RELAY_IDLE_TIMEOUT: Duration = Duration::from_secs(120);

/// Most bytes waiting to be written to one connection; reading its
/// partner stops until it drains.
pub const MAX_RELAY_BUFFER: usize = 64 * 1024;

/// How long a closing connection may take to write what waits for it.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// Most pairs remembered (until their tokens expire) to refuse a reused
/// token; past it new pairings are refused with [`RelayStatus::Busy`](super::RelayStatus::Busy).
pub const MAX_REMEMBERED_PAIRS: usize = 4096;

/// How the relay behaves; [`Default`] gives the documented defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RelayConfig {
    /// [`DEFAULT_RELAY_CONNECTIONS`].
    pub max_connections: usize,
    /// [`DEFAULT_RELAY_PER_ADDRESS`].
    pub max_per_address: usize,
    /// [`DEFAULT_PAIR_RATE`].
    pub pair_rate: u64,
    /// [`DEFAULT_PAIR_BURST`].
    pub pair_burst: u64,
}

impl Default for RelayConfig {
    fn default() -> Self {
        Self {
            max_connections: DEFAULT_RELAY_CONNECTIONS,
            max_per_address: DEFAULT_RELAY_PER_ADDRESS,
            pair_rate: DEFAULT_PAIR_RATE,
            pair_burst: DEFAULT_PAIR_BURST,
        }
    }
}
