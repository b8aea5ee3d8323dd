//! The registry's introductions: a caller asks to be introduced to a
//! listed user; the caller gets the callee's candidates in the reply, and
//! the callee gets the caller's, unprompted, through the mapping its
//! keepalives keep open, again and again until it acknowledges them.
//!
//! Both addresses are validated: the caller's by its cookie, the callee's
//! because it logged in from it. Only the caller, listed itself, may ask.
//! What waits for an acknowledgement is bounded in all
//! ([`MAX_PENDING_INTROS`], remembered for [`INTRO_MEMORY`]) and per callee
//! ([`MAX_INTROS_PER_CALLEE`]), and each is sent at most [`INTRO_SENDS`]
//! times. A retransmitted `Introduce` (same caller, same request id) gets
//! the same answer again and makes no second introduction.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use crate::key::PublicKey;
use crate::name::UserName;
use crate::outbox::Outbox;
use crate::registry_addr::Addr;
use crate::registry_msg::{Entry, Introduction, RefuseReason, RelayTicket, RequestId, ServerMsg};
use crate::registry_table::{Row, UserTable};
use crate::relay::TokenMint;
use crate::server_codec;

/// Most unprompted introductions waiting for their callee's
/// acknowledgement, in all; a caller past it is refused with
/// [`RefuseReason::TooManyIntroductions`].
pub const MAX_PENDING_INTROS: usize = 1024;

/// Most unprompted introductions waiting for one callee's acknowledgement;
/// a caller past it is refused with [`RefuseReason::TooManyIntroductions`].
pub const MAX_INTROS_PER_CALLEE: usize = 4;

/// How long the registry waits for a callee's acknowledgement before it
/// sends the introduction again.
pub const INTRO_RETRY: Duration = Duration::from_millis(500);

/// How many times an unprompted introduction is sent at most.
pub const INTRO_SENDS: u32 = 5;

/// How long the registry remembers an introduction, so that the caller's
/// retransmitted `Introduce` (its answer was lost) gets the same answer
/// rather than a second introduction: as long as a client retransmits
/// (`GIVE_UP_AFTER`).
pub const INTRO_MEMORY: Duration = Duration::from_secs(30);

/// An introduction made in the last [`INTRO_MEMORY`].
#[derive(Debug)]
struct Pending {
    nonce: u64,
    /// The caller, the id of its request and the answer it got.
    caller: SocketAddr,
    id: RequestId,
    answer: Vec<u8>,
    /// The callee and its unprompted copy.
    to: SocketAddr,
    datagram: Vec<u8>,
    sends: u32,
    /// When to send the copy again; `None` once acknowledged or sent
    /// [`INTRO_SENDS`] times.
    next: Option<Instant>,
    forget_at: Instant,
}

/// The relay the registry hands out tokens for.
#[derive(Debug, Clone)]
pub(crate) struct RelayOffer {
    /// Its TCP port, at the registry's IP.
    pub(crate) port: u16,
    /// The mint the relay checks hellos with.
    pub(crate) mint: TokenMint,
}

/// The introductions under way.
#[derive(Debug, Default)]
pub(crate) struct Introducer {
    pending: Vec<Pending>,
    next_nonce: u64,
    relay: Option<RelayOffer>,
}

impl Introducer {
    pub(crate) fn set_relay(&mut self, relay: RelayOffer) {
        self.relay = Some(relay);
    }

    /// Introduces the caller in row `caller` (at `from`) to the user in row
    /// `callee`: the reply to request `id` goes to `from` now, the callee's
    /// introduction to the callee now and at each retry.
    #[allow(clippy::too_many_arguments)] // The server's parts, passed down.
    pub(crate) fn introduce(
        &mut self,
        now: Instant,
        table: &UserTable,
        out: &mut Outbox,
        from: SocketAddr,
        id: RequestId,
        caller: u32,
        callee: u32,
    ) -> Result<(), RefuseReason> {
        // A retransmission: the same answer, and nothing new for the callee.
        if let Some(p) = self.pending.iter().find(|p| p.caller == from && p.id == id) {
            let (buf, start) = out.begin();
            buf.extend_from_slice(&p.answer);
            out.commit(from, start);
            return Ok(());
        }
        let callee_row = table.row(callee);
        let callee_addr = callee_row.addr().socket_addr();
        let waiting =
            self.pending.iter().filter(|p| p.to == callee_addr && p.next.is_some()).count();
        if self.pending.len() >= MAX_PENDING_INTROS || waiting >= MAX_INTROS_PER_CALLEE {
            return Err(RefuseReason::TooManyIntroductions);
        }
        self.next_nonce = self.next_nonce.wrapping_add(1);
        let nonce = self.next_nonce;
        let caller_row = table.row(caller);
        let (caller_ticket, callee_ticket) = match &self.relay {
            Some(relay) => {
                let (a, b) =
                    relay.mint.issue(now, caller_row.public_key(), callee_row.public_key(), nonce);
                let ticket = |hello: crate::RelayHello| RelayTicket {
                    port: relay.port,
                    hello: hello.encode(),
                };
                (Some(ticket(a)), Some(ticket(b)))
            }
            None => (None, None),
        };
        let to_caller = introduction(nonce, callee_row, caller_ticket);
        let to_callee = introduction(nonce, caller_row, callee_ticket);
        let mut answer = Vec::new();
        server_codec::encode_reply_into(&mut answer, id, &to_caller);
        let (buf, start) = out.begin();
        buf.extend_from_slice(&answer);
        out.commit(from, start);
        // The callee's copy carries the nonce's low bits as its id: it
        // answers no request of the callee's.
        let mut datagram = Vec::new();
        server_codec::encode_reply_into(&mut datagram, RequestId(nonce as u32), &to_callee);
        let (buf, start) = out.begin();
        buf.extend_from_slice(&datagram);
        out.commit(callee_addr, start);
        self.pending.push(Pending {
            nonce,
            caller: from,
            id,
            answer,
            to: callee_addr,
            datagram,
            sends: 1,
            next: Some(now + INTRO_RETRY),
            forget_at: now + INTRO_MEMORY,
        });
        Ok(())
    }

    /// The callee at `from` acknowledged introduction `nonce`.
    pub(crate) fn acknowledged(&mut self, from: SocketAddr, nonce: u64) {
        for p in self.pending.iter_mut().filter(|p| p.nonce == nonce && p.to == from) {
            p.next = None;
        }
    }

    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        self.pending.iter().map(|p| p.next.unwrap_or(p.forget_at)).min()
    }

    /// Sends again what is due, to callees still listed at the address;
    /// forgets what was sent [`INTRO_SENDS`] times.
    pub(crate) fn handle_timeout(&mut self, now: Instant, table: &UserTable, out: &mut Outbox) {
        self.pending.retain_mut(|p| {
            if p.forget_at <= now {
                return false;
            }
            if p.next.is_none_or(|t| t > now) {
                return true;
            }
            if p.sends >= INTRO_SENDS || table.find_addr(&Addr::of(p.to)).is_none() {
                p.next = None;
                return true;
            }
            let (buf, start) = out.begin();
            buf.extend_from_slice(&p.datagram);
            out.commit(p.to, start);
            p.sends += 1;
            p.next = Some(now + INTRO_RETRY);
            true
        });
    }
}

/// The introduction that tells one side about the user in `row`.
fn introduction(nonce: u64, row: &Row, relay: Option<RelayTicket>) -> ServerMsg {
    ServerMsg::Introduced {
        intro: Some(Introduction {
            nonce,
            peer: entry_of(row),
            candidates: candidates(row),
            relay,
        }),
    }
}

/// Where to reach the user in `row`: its local addresses, then its
/// observed IP, each with its chat port.
pub(crate) fn candidates(row: &Row) -> Vec<SocketAddr> {
    let port = row.chat_port();
    let observed = SocketAddr::new(row.addr().socket_addr().ip(), port);
    let locals =
        row.locals().iter().map(|&ip| SocketAddr::new(IpAddr::V4(Ipv4Addr::from(ip)), port));
    let mut out: Vec<SocketAddr> = locals.filter(|a| *a != observed).collect();
    out.push(observed);
    out
}

pub(crate) fn entry_of(row: &Row) -> Entry {
    Entry {
        name: UserName::from_listed(row.name()),
        addr: row.addr().socket_addr(),
        chat_port: row.chat_port(),
        key: PublicKey(*row.key()),
    }
}
