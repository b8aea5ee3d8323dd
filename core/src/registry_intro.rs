//! The registry's introductions: a caller asks to be introduced to a
//! listed user; the callee gets the caller's candidates unprompted, through
//! the mapping its keepalives keep open, again and again until it
//! acknowledges them, and the caller gets the callee's in the reply.
//!
//! Local addresses travel in the exchange itself, not in the table: the
//! caller's in its `Introduce`, passed on in the callee's copy; the
//! callee's in its `IntroAck`. The caller's answer is held until that
//! acknowledgement comes (its candidates then lead with the callee's local
//! addresses) or [`INTRO_HOLD`] passes without one (then it carries the
//! callee's observed address only).
//!
//! Both addresses are validated: the caller's by its cookie, the callee's
//! because it logged in from it. Only the caller, listed itself, may ask.
//! What waits for an acknowledgement is bounded in all
//! ([`MAX_PENDING_INTROS`], remembered for [`INTRO_MEMORY`]) and per callee
//! ([`MAX_INTROS_PER_CALLEE`]), and each is sent at most [`INTRO_SENDS`]
//! times. A retransmitted `Introduce` (same caller, same request id) makes
//! no second introduction: while the answer is held it is dropped, once
//! answered it gets the same answer again.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use crate::key::PublicKey;
use crate::name::UserName;
use crate::outbox::Outbox;
use crate::registry_addr::Addr;
use crate::registry_msg::{
    Entry, Introduction, MAX_LOCAL_ADDRS, RefuseReason, RelayTicket, RequestId, ServerMsg,
};
use crate::registry_table::UserTable;
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

/// How long the registry holds the caller's answer for the callee's
/// acknowledgement (which carries the callee's local addresses) before it
/// answers without them: two sends of the introduction ([`INTRO_RETRY`])
/// and the round trip of the second, so one lost copy or acknowledgement
/// still brings the local addresses. A caller whose callee is gone (listed
/// but not answering) waits this long for its answer.
pub const INTRO_HOLD: Duration = Duration::from_secs(1);

/// How long the registry remembers an introduction, so that the caller's
/// retransmitted `Introduce` (its answer was lost) gets the same answer
/// rather than a second introduction: as long as a client retransmits
/// (`GIVE_UP_AFTER`).
pub const INTRO_MEMORY: Duration = Duration::from_secs(30);

/// The caller's answer.
#[derive(Debug)]
enum Answer {
    /// Waiting for the callee's acknowledgement until `until`: the
    /// callee's side, with its observed address as the only candidate.
    Held { intro: Introduction, until: Instant },
    /// Sent, as encoded: sent again to a retransmitted `Introduce`.
    Sent(Vec<u8>),
}

/// An introduction made in the last [`INTRO_MEMORY`].
#[derive(Debug)]
struct Pending {
    nonce: u64,
    /// The caller, the id of its request and its answer.
    caller: SocketAddr,
    id: RequestId,
    answer: Answer,
    /// The callee and its unprompted copy.
    to: SocketAddr,
    datagram: Vec<u8>,
    sends: u32,
    /// When to send the copy again; `None` once acknowledged or sent
    /// [`INTRO_SENDS`] times.
    next: Option<Instant>,
    forget_at: Instant,
}

impl Pending {
    /// Sends the caller its answer, if held, with the callee's local
    /// addresses `locals` (4 octets each) before its observed address.
    /// Returns whether it sent it.
    fn answer(&mut self, out: &mut Outbox, locals: &[u8]) -> bool {
        let Answer::Held { intro, .. } = &mut self.answer else {
            return false;
        };
        let mut intro = intro.clone();
        intro.candidates = candidates(intro.peer.chat_addr(), locals);
        let mut answer = Vec::new();
        let msg = ServerMsg::Introduced { intro: Some(intro) };
        server_codec::encode_reply_into(&mut answer, self.id, &msg);
        out.push(self.caller, &answer);
        self.answer = Answer::Sent(answer);
        true
    }

    fn held_until(&self) -> Option<Instant> {
        match self.answer {
            Answer::Held { until, .. } => Some(until),
            Answer::Sent(_) => None,
        }
    }
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

    /// Introduces the caller in row `caller` (at `from`, with the local
    /// addresses `locals`, 4 octets each) to the user in row `callee`: the
    /// callee's copy goes to the callee now and at each retry; the answer
    /// to request `id` waits for the callee's acknowledgement (see
    /// [`acknowledged`](Self::acknowledged)) or [`INTRO_HOLD`]. Returns how
    /// many datagrams it queued.
    #[allow(clippy::too_many_arguments)] // The server's parts, passed down.
    pub(crate) fn introduce(
        &mut self,
        now: Instant,
        table: &UserTable,
        out: &mut Outbox,
        from: SocketAddr,
        id: RequestId,
        (caller, locals): (u32, &[u8]),
        callee: u32,
    ) -> Result<u64, RefuseReason> {
        // A retransmission: nothing new for the callee, and the same answer
        // once there is one.
        if let Some(p) = self.pending.iter().find(|p| p.caller == from && p.id == id) {
            let Answer::Sent(answer) = &p.answer else { return Ok(0) };
            out.push(from, answer);
            return Ok(1);
        }
        let callee_addr = table.addr(callee).socket_addr();
        let waiting =
            self.pending.iter().filter(|p| p.to == callee_addr && p.next.is_some()).count();
        if self.pending.len() >= MAX_PENDING_INTROS || waiting >= MAX_INTROS_PER_CALLEE {
            return Err(RefuseReason::TooManyIntroductions);
        }
        self.next_nonce = self.next_nonce.wrapping_add(1);
        let nonce = self.next_nonce;
        let (caller_key, callee_key) =
            (table.row(caller).public_key(), table.row(callee).public_key());
        let (caller_ticket, callee_ticket) = match &self.relay {
            Some(relay) => {
                let (a, b) = relay.mint.issue(now, caller_key, callee_key, nonce);
                let ticket = |hello: crate::RelayHello| RelayTicket {
                    port: relay.port,
                    hello: hello.encode(),
                };
                (Some(ticket(a)), Some(ticket(b)))
            }
            None => (None, None),
        };
        let to_caller = introduction(nonce, table, callee, &[], caller_ticket);
        let to_callee = introduction(nonce, table, caller, locals, callee_ticket);
        // The callee's copy carries the nonce's low bits as its id: it
        // answers no request of the callee's.
        let mut datagram = Vec::new();
        let msg = ServerMsg::Introduced { intro: Some(to_callee) };
        server_codec::encode_reply_into(&mut datagram, RequestId(nonce as u32), &msg);
        out.push(callee_addr, &datagram);
        self.pending.push(Pending {
            nonce,
            caller: from,
            id,
            answer: Answer::Held { intro: to_caller, until: now + INTRO_HOLD },
            to: callee_addr,
            datagram,
            sends: 1,
            next: Some(now + INTRO_RETRY),
            forget_at: now + INTRO_MEMORY,
        });
        Ok(1)
    }

    /// The callee at `from` acknowledged introduction `nonce`, announcing
    /// the local addresses `locals` (4 octets each): the caller gets its
    /// answer now, if it was held. Returns how many datagrams it queued.
    pub(crate) fn acknowledged(
        &mut self,
        out: &mut Outbox,
        from: SocketAddr,
        nonce: u64,
        locals: &[u8],
    ) -> u64 {
        let mut sent = 0;
        for p in self.pending.iter_mut().filter(|p| p.nonce == nonce && p.to == from) {
            p.next = None;
            sent += u64::from(p.answer(out, locals));
        }
        sent
    }

    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        let each = |p: &Pending| [p.next, p.held_until(), Some(p.forget_at)].into_iter().flatten();
        self.pending.iter().flat_map(each).min()
    }

    /// Answers the callers whose callee did not acknowledge in time, sends
    /// again what is due, to callees still listed at the address, and
    /// forgets what was sent [`INTRO_SENDS`] times. Returns how many
    /// answers it queued.
    pub(crate) fn handle_timeout(
        &mut self,
        now: Instant,
        table: &UserTable,
        out: &mut Outbox,
    ) -> u64 {
        let mut answered = 0;
        self.pending.retain_mut(|p| {
            if p.held_until().is_some_and(|t| t <= now) {
                answered += u64::from(p.answer(out, &[]));
            }
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
            out.push(p.to, &p.datagram);
            p.sends += 1;
            p.next = Some(now + INTRO_RETRY);
            true
        });
        answered
    }
}

/// The introduction that tells one side about the user in row `i`, who
/// announced the local addresses `locals` (4 octets each).
fn introduction(
    nonce: u64,
    table: &UserTable,
    i: u32,
    locals: &[u8],
    relay: Option<RelayTicket>,
) -> Introduction {
    let peer = entry_of(table, i);
    let observed = peer.chat_addr();
    Introduction { nonce, peer, candidates: candidates(observed, locals), relay }
}

/// Where to reach a user: the first [`MAX_LOCAL_ADDRS`] of its local
/// addresses `locals` (4 octets each), then its `observed` IP, each with
/// its chat port (the observed address's port); a local address equal to
/// the observed one is left out.
fn candidates(observed: SocketAddr, locals: &[u8]) -> Vec<SocketAddr> {
    let port = observed.port();
    let mut out: Vec<SocketAddr> = locals
        .chunks_exact(4)
        .take(MAX_LOCAL_ADDRS)
        .map(|ip| SocketAddr::new(IpAddr::V4(Ipv4Addr::new(ip[0], ip[1], ip[2], ip[3])), port))
        .filter(|a| *a != observed)
        .collect();
    out.push(observed);
    out
}

/// Row `i`'s entry.
pub(crate) fn entry_of(table: &UserTable, i: u32) -> Entry {
    let row = table.row(i);
    Entry {
        name: UserName::from_listed(row.name()),
        addr: table.addr(i).socket_addr(),
        chat_port: row.chat_port(),
        key: PublicKey(*row.key()),
    }
}
