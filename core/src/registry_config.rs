//! What the registry server is told (its configuration) and what it tells
//! (its events and counters).

use std::net::SocketAddr;
use std::time::Duration;

use crate::name::UserName;

/// How long an entry stays listed without a refresh, unless configured.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(60);

/// The longest lease the server gives, 2³⁰ ms (about 12.4 days): a longer
/// [`ServerConfig::lease`] is cut to it. (The table keeps expiries as 32-bit
/// millisecond ticks, compared modulo 2³².)
pub const MAX_LEASE: Duration = Duration::from_millis(1 << 30);

/// How many users may be online at once, unless configured.
pub const DEFAULT_MAX_USERS: usize = 10_000;

/// The most users for whom room is reserved when the server starts
/// (2²¹): a [`ServerConfig::max_users`] up to it costs no reallocation
/// later; beyond it, the table grows as users come.
pub const RESERVED_USERS: usize = 1 << 21;

/// How many names one address may hold at once, unless configured: an IPv4
/// address, or an IPv6 /64 (what one site or one host usually gets). Enough
/// for a household or an office behind one NAT, far below
/// [`DEFAULT_MAX_USERS`], so that one address cannot fill the registry.
pub const DEFAULT_MAX_PER_ADDRESS: usize = 64;

/// How the server behaves; [`Default`] gives the documented defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerConfig {
    /// How long an entry stays listed after its last login or refresh (at
    /// most [`MAX_LEASE`]; rounded up to a whole millisecond).
    pub lease: Duration,
    /// The most users listed at once; a login beyond it is refused. Room
    /// for up to [`RESERVED_USERS`] of them is reserved at start.
    pub max_users: usize,
    /// The most names listed from one IPv4 address or one IPv6 /64 (an
    /// IPv4-mapped IPv6 address counts as its IPv4 address); a login beyond
    /// it is refused with [`RefuseReason::TooManyFromAddress`](crate::RefuseReason::TooManyFromAddress).
    pub max_per_address: usize,
    /// The address the server's own socket is bound to, if the driver knows
    /// it. A datagram from it, which only a forged source can produce, is
    /// dropped unanswered; with an unspecified IP (`0.0.0.0`, `[::]`), so is
    /// one from a loopback or unspecified IP with the same port. `None`
    /// checks nothing.
    pub local_addr: Option<SocketAddr>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            lease: DEFAULT_LEASE,
            max_users: DEFAULT_MAX_USERS,
            max_per_address: DEFAULT_MAX_PER_ADDRESS,
            local_addr: None,
        }
    }
}

/// What happened to the list, for the operator to see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerEvent {
    /// A user appeared in the list (a refresh of a listed user is not one).
    LoggedIn {
        /// The user's name.
        name: UserName,
        /// The address its datagrams come from.
        addr: SocketAddr,
        /// Where it takes chats: the address's IP and its chat port, as the
        /// list shows it.
        chat_addr: SocketAddr,
    },
    /// A user left the list by logging out, or by logging in under another
    /// name from the same address.
    LoggedOut {
        /// The user's name.
        name: UserName,
        /// The address its datagrams came from.
        addr: SocketAddr,
    },
    /// A user left the list because its lease ran out.
    TimedOut {
        /// The user's name.
        name: UserName,
        /// The address its datagrams came from.
        addr: SocketAddr,
    },
    /// A listed user logged in with the same name and key from another
    /// address (a laptop that changed networks): its entry moved there, and
    /// the old address no longer holds a name.
    Roamed {
        /// The user's name, as written in the new login.
        name: UserName,
        /// The address it was listed at.
        from: SocketAddr,
        /// The address it is listed at now.
        to: SocketAddr,
    },
}

/// Counters of what the server did with the datagrams it was given.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ServerStats {
    /// Datagrams answered.
    pub replied: u64,
    /// Datagrams that were not ours or did not decode, dropped unanswered.
    pub malformed: u64,
    /// Requests without a valid cookie that were answered with a challenge.
    pub challenged: u64,
    /// Datagrams from unvalidated senders dropped because the answer would
    /// have been longer than the datagram (or, for another version, not
    /// shorter), and `GetCookie`s shorter than [`GET_COOKIE_LEN`](crate::GET_COOKIE_LEN).
    pub too_short: u64,
    /// Datagrams that could only be a loop, dropped unanswered: replies (of
    /// any version, reflected by an echo service or sent by another
    /// registry) and anything from the server's own address.
    pub looped: u64,
}
