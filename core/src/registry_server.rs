//! The registry server: the online-user list as a sans-IO state machine.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::codec::{DecodeError, MAX_DATAGRAM_LEN};
use crate::cookie::{CookieJar, CookieKey};
use crate::key::PublicKey;
use crate::name::UserName;
use crate::outbox::Outbox;
use crate::registry_addr::Addr;
use crate::registry_config::{MAX_LEASE, RESERVED_USERS, ServerConfig, ServerEvent, ServerStats};
use crate::registry_intro::{Introducer, RelayOffer, entry_of};
use crate::registry_msg::{
    ClientMsgRef, Entry, GET_COOKIE_LEN, RefuseReason, RequestId, ServerMsg,
};
use crate::registry_table::UserTable;
use crate::relay::{RelayKey, TokenMint};
use crate::server_codec;
use crate::transmit::Transmit;

mod answers;

/// The registry: who is online, and where to reach them.
///
/// # Driver contract
/// Feed every datagram received on the registry's socket to
/// [`handle_datagram`](Self::handle_datagram) with the address it came from.
/// After each call (and after [`handle_timeout`](Self::handle_timeout)):
/// send everything [`poll_transmit`](Self::poll_transmit) returns, drain
/// [`poll_event`](Self::poll_event), then sleep until
/// [`poll_timeout`](Self::poll_timeout) or the next datagram, whichever comes
/// first, and call `handle_timeout` when the deadline passes.
///
/// # Guarantees
/// - A sender without a valid cookie never causes any state to be kept and
///   never gets a reply longer than the datagram it sent.
/// - An entry is only ever created, refreshed or removed by a datagram from
///   the address it lists, or by its lease running out.
/// - No two listed names are equal without regard to case, and no address
///   holds two names; one IPv4 address or IPv6 /64 holds at most
///   [`ServerConfig::max_per_address`].
/// - A listed name keeps the key it logged in with: a login under it with
///   another key is refused; one with the same key from a new address moves
///   the entry there.
/// - Replies are never answered: the server drops every datagram whose
///   header marks it as a reply, and everything from its own address, so
///   neither an echo service, nor another registry, nor a datagram forged
///   with the server's own address as source can start a loop.
/// - Memory is bounded by [`ServerConfig::max_users`] entries of 104 bytes
///   each (an IPv6 user 16 more), plus two 4-byte index entries and a count
///   per IPv4 address or IPv6 /64, and
///   [`MAX_PENDING_INTROS`](crate::MAX_PENDING_INTROS) introductions; each
///   datagram queues at most one transmit (an `Introduce`: the callee's
///   copy to its validated address; an `IntroAck`: the caller's held
///   answer to the caller's validated address).
/// - Answering a request allocates nothing once the reply buffer has grown
///   to a burst's size (drain it with
///   [`poll_transmit_into`](Self::poll_transmit_into)); a keepalive (a
///   `Login` repeating the sender's listed name and key) does no Unicode
///   work at all.
/// - The list comes in pages in the order of the table's rows, not sorted:
///   clients sort what they show. A user listed throughout a paged listing
///   is on exactly one of its pages.
pub struct RegistryServer {
    config: ServerConfig,
    cookies: CookieJar,
    table: UserTable,
    /// The clock's origin: ticks are milliseconds since it.
    origin: Instant,
    /// The latest tick the server was given, in full.
    now_ms: u64,
    /// Whether the latest time was past `now_ms` by a part of a tick.
    now_frac: bool,
    /// The lease in ticks.
    lease_ms: u32,
    out: Outbox,
    intros: Introducer,
    events: VecDeque<ServerEvent>,
    stats: ServerStats,
}

impl RegistryServer {
    /// A registry with an empty list. `key` is the secret for cookies (and,
    /// derived from it, for the table's hashes): pick it at random for each
    /// start.
    pub fn new(now: Instant, key: CookieKey, config: ServerConfig) -> Self {
        let mut config = config;
        config.lease = config.lease.min(MAX_LEASE);
        let lease_ms =
            u32::try_from(config.lease.as_nanos().div_ceil(1_000_000)).unwrap_or(u32::MAX);
        let secret = key.0;
        Self {
            config,
            cookies: CookieJar::new(key, now),
            table: UserTable::new(config.max_users, RESERVED_USERS, secret),
            origin: now,
            now_ms: 0,
            now_frac: false,
            lease_ms,
            out: Outbox::default(),
            intros: Introducer::default(),
            events: VecDeque::new(),
            stats: ServerStats::default(),
        }
    }

    /// Hands out relay tokens in introductions: the relay listens on TCP
    /// `port` at the registry's IP and checks hellos with `key`, counting
    /// expiries from this server's time origin (the relay must be given
    /// the same [`origin`](Self::origin)).
    pub fn offer_relay(&mut self, port: u16, key: &RelayKey) {
        let mint = TokenMint::new(key, self.origin);
        self.intros.set_relay(RelayOffer { port, mint });
    }

    /// The server's time origin (the `now` it was made with).
    pub fn origin(&self) -> Instant {
        self.origin
    }

    /// Handles one datagram received from `from`.
    pub fn handle_datagram(&mut self, now: Instant, from: SocketAddr, bytes: &[u8]) {
        if self.is_own(from) {
            tracing::debug!(%from, "dropped a datagram from our own address");
            self.stats.looped += 1;
            return;
        }
        let (id, msg) = match server_codec::decode_request_ref(bytes) {
            Ok(decoded) => decoded,
            Err(DecodeError::UnsupportedVersion { id, version }) => {
                tracing::debug!(%from, version, "request of an unsupported version");
                let reply = ServerMsg::Refused { reason: RefuseReason::UnsupportedVersion };
                // Strictly shorter than what provoked it: a version-1 server
                // answers our replies with refusals as long as ours, and
                // this is what ends that exchange after one round.
                self.reply_unvalidated(from, bytes.len().saturating_sub(1), id, &reply);
                return;
            }
            Err(DecodeError::WrongDirection) => {
                tracing::debug!(%from, "dropped a reply sent to the server");
                self.stats.looped += 1;
                return;
            }
            Err(
                e @ (DecodeError::TooShort
                | DecodeError::TooLong
                | DecodeError::BadMagic
                | DecodeError::Malformed
                | DecodeError::TrailingBytes),
            ) => {
                tracing::trace!(%from, error = %e, "dropped a malformed datagram");
                self.stats.malformed += 1;
                return;
            }
        };
        if matches!(msg, ClientMsgRef::GetCookie { .. }) && bytes.len() < GET_COOKIE_LEN {
            tracing::trace!(%from, len = bytes.len(), "dropped a short cookie request");
            self.stats.too_short += 1;
            return;
        }
        // The time since the origin, worked out once for the cookie and the
        // lease (the cookie jar shares the server's origin).
        let since = now.saturating_duration_since(self.origin);
        let valid = msg.cookie().is_some_and(|c| self.cookies.check_since(since, from, c));
        if !valid {
            let reply = ServerMsg::Challenge { cookie: self.cookies.mint(now, from) };
            if self.reply_unvalidated(from, bytes.len(), id, &reply) {
                self.stats.challenged += 1;
            }
            return;
        }
        self.set_now(since);
        match msg {
            ClientMsgRef::Login { name, chat_port, key, .. } => {
                self.login(from, id, name, chat_port, key)
            }
            ClientMsgRef::List { after, .. } => self.page(from, id, after),
            ClientMsgRef::Lookup { name, .. } => self.lookup(from, id, name),
            ClientMsgRef::Introduce { name, locals, .. } => {
                self.introduce(now, from, id, name, locals)
            }
            ClientMsgRef::IntroAck { nonce, locals, .. } => {
                self.stats.replied += self.intros.acknowledged(&mut self.out, from, nonce, locals);
            }
            ClientMsgRef::Logout { .. } => {
                if let Some(i) = self.table.find_addr(&Addr::of(from)) {
                    self.remove(i, Removal::LoggedOut);
                }
                self.send(from, id, &ServerMsg::LoggedOut);
            }
            // A cookie request never carries a cookie, so it never gets here.
            ClientMsgRef::GetCookie { .. } => {}
        }
    }

    /// The next datagram to send, as an owned [`Transmit`].
    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.out.pop()
    }

    /// Appends the next datagram to send to `buf` and returns where it goes:
    /// the allocation-free form of [`poll_transmit`](Self::poll_transmit).
    #[must_use]
    pub fn poll_transmit_into(&mut self, buf: &mut Vec<u8>) -> Option<SocketAddr> {
        self.out.pop_into(buf)
    }

    /// The next thing that happened to the list.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<ServerEvent> {
        self.events.pop_front()
    }

    /// When the next lease runs out, an introduction is due again, or a
    /// held answer to one is due.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        let lease = self.table.first_to_expire().map(|i| {
            let at = self.full_ticks(self.table.row(i).expires());
            self.origin + Duration::from_millis(at)
        });
        [lease, self.intros.poll_timeout()].into_iter().flatten().min()
    }

    /// Removes every entry whose lease has run out by `now`; sends again
    /// the introductions that are due, and the answers held past
    /// [`INTRO_HOLD`](crate::INTRO_HOLD).
    pub fn handle_timeout(&mut self, now: Instant) {
        let since = now.saturating_duration_since(self.origin);
        self.set_now(since);
        self.stats.replied += self.intros.handle_timeout(now, &self.table, &mut self.out);
        while let Some(i) = self.table.first_to_expire() {
            let at = self.full_ticks(self.table.row(i).expires());
            if Duration::from_millis(at) > since {
                break;
            }
            self.remove(i, Removal::TimedOut);
        }
    }

    /// The users online now, in no particular order.
    pub fn users(&self) -> impl Iterator<Item = Entry> + '_ {
        self.table.iter().map(|i| entry_of(&self.table, i))
    }

    /// How many users are online.
    pub fn user_count(&self) -> usize {
        self.table.len()
    }

    /// What the server has done with its input so far.
    pub fn stats(&self) -> ServerStats {
        self.stats
    }

    /// Whether `from` is the server's own socket address (see
    /// [`ServerConfig::local_addr`]).
    fn is_own(&self, from: SocketAddr) -> bool {
        let Some(local) = self.config.local_addr else {
            return false;
        };
        let ip = from.ip().to_canonical();
        let any_local = ip.is_loopback() || ip.is_unspecified();
        from == local || (local.ip().is_unspecified() && from.port() == local.port() && any_local)
    }

    /// Takes the time `since` the origin as the latest: whole milliseconds,
    /// and whether a part of one is left over.
    fn set_now(&mut self, since: Duration) {
        // In u64, not `as_millis`'s u128: cheaper, and exact for 584
        // million years.
        let sub = since.subsec_nanos();
        self.now_ms =
            since.as_secs().saturating_mul(1000).saturating_add(u64::from(sub / 1_000_000));
        self.now_frac = sub % 1_000_000 != 0;
    }

    /// A row's expiry tick in full: within 2³¹ ms of the latest tick, since
    /// every lease is at most [`MAX_LEASE`] long.
    fn full_ticks(&self, tick: u32) -> u64 {
        // Truncating `now_ms` to its low 32 bits is the modular arithmetic
        // intended; the difference is signed and small.
        let delta = i64::from(tick.wrapping_sub(self.now_ms as u32) as i32);
        self.now_ms.saturating_add_signed(delta)
    }

    /// The tick at which a lease given at the latest time ends: rounded
    /// up, so that no entry leaves before its full lease.
    fn lease_end(&self) -> u32 {
        // Modulo 2³² on purpose (see `full_ticks`); `now_frac` rounds up the
        // part of a millisecond that `now_ms` dropped.
        (self.now_ms as u32).wrapping_add(self.lease_ms).wrapping_add(u32::from(self.now_frac))
    }

    /// Checked in the order of `docs/PROTOCOL.md` section 6.
    fn login(
        &mut self,
        from: SocketAddr,
        id: RequestId,
        name: &str,
        chat_port: u16,
        key: PublicKey,
    ) {
        let addr = Addr::of(from);
        let held = self.table.find_addr(&addr);
        let expires = self.lease_end();
        // The keepalive: the sender's own name, as listed, with its key.
        if let Some(i) = held {
            let row = self.table.row(i);
            if row.name() == name.as_bytes() && *row.key() == key.0 {
                self.table.refresh(i, expires, chat_port);
                return self.welcome(from, id);
            }
        }
        let Ok(name) = UserName::new(name) else {
            return self.send(from, id, &refused(RefuseReason::NameInvalid));
        };
        // Valid, so this is `Some`; the fast path spares the key's String.
        let Some(name_id) = self.table.name_id_of(name.as_str()) else {
            return self.send(from, id, &refused(RefuseReason::NameInvalid));
        };
        let holder = self.table.find_name(name_id);
        // Where the name is listed now, when that is not `from`: a roam.
        let roams_from = match holder.map(|h| (h, self.table.row(h))) {
            Some((_, row)) if *row.key() != key.0 => {
                return self.send(from, id, &refused(RefuseReason::NameTaken));
            }
            Some((h, _)) if held == Some(h) => None,
            Some((h, _)) => Some(h),
            None => None,
        };
        if let Some(i) = held.filter(|&i| Some(i) == holder) {
            // A refresh that writes the name differently.
            self.table.rename(i, name.as_str());
            self.table.refresh(i, expires, chat_port);
            return self.welcome(from, id);
        }
        if held.is_none() {
            // A new entry for `from`, less the one that roams away.
            let mut here = self.table.prefix_count(&addr);
            if let Some(h) = roams_from {
                if self.table.addr(h).same_prefix(&addr) {
                    // The roaming entry is counted in `here`.
                    here = here.saturating_sub(1);
                }
            }
            if here >= self.config.max_per_address {
                return self.send(from, id, &refused(RefuseReason::TooManyFromAddress));
            }
            if self.table.len() - usize::from(roams_from.is_some()) >= self.config.max_users {
                return self.send(from, id, &refused(RefuseReason::ServerFull));
            }
        }
        match roams_from {
            Some(h) => {
                let old = self.table.addr(h).socket_addr();
                self.events.push_back(ServerEvent::Roamed {
                    name: name.clone(),
                    from: old,
                    to: from,
                });
                if let Some(old) = held {
                    self.remove(old, Removal::LoggedOut);
                }
                self.table.move_to(h, addr);
                self.table.rename(h, name.as_str());
                self.table.refresh(h, expires, chat_port);
            }
            None => {
                let chat_addr = SocketAddr::new(from.ip(), chat_port);
                self.events.push_back(ServerEvent::LoggedIn {
                    name: name.clone(),
                    addr: from,
                    chat_addr,
                });
                if let Some(old) = held {
                    self.remove(old, Removal::LoggedOut);
                }
                let row = self.table.insert(name.as_str(), name_id, addr, chat_port, &key, expires);
                // Room was checked above, or `held` made room.
                debug_assert!(row.is_some(), "no room after the checks");
            }
        }
        self.welcome(from, id);
    }

    fn welcome(&mut self, to: SocketAddr, id: RequestId) {
        let lease_secs = u32::try_from(self.config.lease.as_secs()).unwrap_or(u32::MAX);
        let (buf, start) = self.out.begin();
        server_codec::write_welcome(buf, id, to, lease_secs);
        self.out.commit(to, start);
        self.stats.replied += 1;
    }

    /// Introduces the sender, if listed, to `name`, if listed and not the
    /// sender; else answers `Introduced { None }`.
    fn introduce(
        &mut self,
        now: Instant,
        from: SocketAddr,
        id: RequestId,
        name: &str,
        locals: &[u8],
    ) {
        let caller = self.table.find_addr(&Addr::of(from));
        let callee = self.table.name_id_of(name).and_then(|id| self.table.find_name(id));
        let (Some(caller), Some(callee)) = (caller, callee.filter(|&c| Some(c) != caller)) else {
            self.send(from, id, &ServerMsg::Introduced { intro: None });
            return;
        };
        let (table, out) = (&self.table, &mut self.out);
        match self.intros.introduce(now, table, out, from, id, (caller, locals), callee) {
            Ok(sent) => self.stats.replied += sent,
            Err(reason) => self.send(from, id, &refused(reason)),
        }
    }

    fn remove(&mut self, i: u32, why: Removal) {
        let (row, addr) = self.table.remove(i);
        let name = UserName::from_listed(row.name());
        let addr = addr.socket_addr();
        self.events.push_back(match why {
            Removal::LoggedOut => ServerEvent::LoggedOut { name, addr },
            Removal::TimedOut => ServerEvent::TimedOut { name, addr },
        });
    }

    /// Queues `reply` to a sender whose address is not validated, only if it
    /// is no longer than `max_len` (at most the bytes that sender sent).
    fn reply_unvalidated(
        &mut self,
        to: SocketAddr,
        max_len: usize,
        id: RequestId,
        reply: &ServerMsg,
    ) -> bool {
        let (buf, start) = self.out.begin();
        server_codec::encode_reply_into(buf, id, reply);
        if self.out.len_since(start) > max_len {
            self.out.abort(start);
            self.stats.too_short += 1;
            return false;
        }
        self.out.commit(to, start);
        self.stats.replied += 1;
        true
    }

    fn send(&mut self, to: SocketAddr, id: RequestId, reply: &ServerMsg) {
        let (buf, start) = self.out.begin();
        server_codec::encode_reply_into(buf, id, reply);
        debug_assert!(self.out.len_since(start) <= MAX_DATAGRAM_LEN);
        self.out.commit(to, start);
        self.stats.replied += 1;
    }
}

enum Removal {
    LoggedOut,
    TimedOut,
}

fn refused(reason: RefuseReason) -> ServerMsg {
    ServerMsg::Refused { reason }
}
