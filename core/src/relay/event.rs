//! What the relay and its driver say to each other: connection ids,
//! statuses on the wire, events.

use super::token::{RELAY_MAGIC, RELAY_REPLY_LEN};

/// A connection, numbered by the driver; never reused while the relay
/// holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(pub u64);

/// The status byte of the relay's reply to a hello.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RelayStatus {
    /// Paired: every later byte is the other side's.
    Paired,
    /// The tag is not the relay's: forged or for another relay.
    Forged,
    /// The token expired.
    Expired,
    /// The token was used already (paired before, or this side is waiting
    /// on another connection).
    Reused,
    /// Too many connections from this address.
    TooManyFromAddress,
    /// The relay is full.
    Busy,
    /// The hello is not well-formed.
    Malformed,
    /// No hello, or no partner, in time.
    Timeout,
}

impl RelayStatus {
    /// The byte on the wire.
    pub fn byte(self) -> u8 {
        match self {
            RelayStatus::Paired => 0,
            RelayStatus::Forged => 1,
            RelayStatus::Expired => 2,
            RelayStatus::Reused => 3,
            RelayStatus::TooManyFromAddress => 4,
            RelayStatus::Busy => 5,
            RelayStatus::Malformed => 6,
            RelayStatus::Timeout => 7,
        }
    }

    /// The reply bytes carrying this status.
    pub fn reply(self) -> [u8; RELAY_REPLY_LEN] {
        let [a, b, c, d] = RELAY_MAGIC;
        [a, b, c, d, self.byte()]
    }
}

/// Why the relay closed a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RelayCloseReason {
    /// Refused with this status (written to it first).
    Refused(RelayStatus),
    /// It or its partner ended its stream, or its partner's socket failed.
    Ended,
    /// Its pair was silent for [`RELAY_IDLE_TIMEOUT`](super::RELAY_IDLE_TIMEOUT).
    Idle,
    /// What waited for it was not written within [`DRAIN_TIMEOUT`](super::DRAIN_TIMEOUT).
    DrainTimeout,
}

/// What the relay reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RelayEvent {
    /// Two connections were paired.
    Paired {
        /// The caller's connection.
        caller: ConnId,
        /// The callee's connection.
        callee: ConnId,
    },
    /// The relay is done with `conn`: the driver drops its socket now. The
    /// relay has forgotten it.
    Close {
        /// The connection.
        conn: ConnId,
        /// Why.
        reason: RelayCloseReason,
    },
}
