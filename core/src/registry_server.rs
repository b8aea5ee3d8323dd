//! The registry server: the online-user list as a sans-IO state machine.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::ops::Bound;
use std::time::{Duration, Instant};

use crate::codec::{self, DecodeError, HEADER_LEN, MAX_DATAGRAM_LEN};
use crate::cookie::{CookieJar, CookieKey};
use crate::key::PublicKey;
use crate::name::{NameKey, UserName};
use crate::registry_msg::{
    ClientMsg, Cursor, Entry, GET_COOKIE_LEN, RefuseReason, RequestId, ServerMsg,
};
use crate::transmit::Transmit;

/// How long an entry stays listed without a refresh, unless configured.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(60);

/// How many users may be online at once, unless configured.
pub const DEFAULT_MAX_USERS: usize = 10_000;

/// How many names one address may hold at once, unless configured: an IPv4
/// address, or an IPv6 /64 (what one site or one host usually gets). Enough
/// for a household or an office behind one NAT, far below
/// [`DEFAULT_MAX_USERS`], so that one address cannot fill the registry.
pub const DEFAULT_MAX_PER_ADDRESS: usize = 64;

/// How the server behaves; [`Default`] gives the documented defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerConfig {
    /// How long an entry stays listed after its last login or refresh.
    pub lease: Duration,
    /// The most users listed at once; a login beyond it is refused.
    pub max_users: usize,
    /// The most names listed from one IPv4 address or one IPv6 /64 (an
    /// IPv4-mapped IPv6 address counts as its IPv4 address); a login beyond
    /// it is refused with [`RefuseReason::TooManyFromAddress`].
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
    /// shorter), and `GetCookie`s shorter than [`GET_COOKIE_LEN`].
    pub too_short: u64,
    /// Datagrams that could only be a loop, dropped unanswered: replies (of
    /// any version, reflected by an echo service or sent by another
    /// registry) and anything from the server's own address.
    pub looped: u64,
}

struct User {
    entry: Entry,
    expires: Instant,
}

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
/// - Memory is bounded by [`ServerConfig::max_users`] entries; each call
///   queues at most one transmit.
pub struct RegistryServer {
    config: ServerConfig,
    cookies: CookieJar,
    users: BTreeMap<NameKey, User>,
    by_addr: HashMap<SocketAddr, NameKey>,
    by_prefix: HashMap<Prefix, usize>,
    expiry: BTreeSet<(Instant, NameKey)>,
    transmits: VecDeque<Transmit>,
    events: VecDeque<ServerEvent>,
    stats: ServerStats,
}

impl RegistryServer {
    /// A registry with an empty list. `key` is the secret for cookies: pick
    /// it at random for each start.
    pub fn new(now: Instant, key: CookieKey, config: ServerConfig) -> Self {
        Self {
            config,
            cookies: CookieJar::new(key, now),
            users: BTreeMap::new(),
            by_addr: HashMap::new(),
            by_prefix: HashMap::new(),
            expiry: BTreeSet::new(),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            stats: ServerStats::default(),
        }
    }

    /// Handles one datagram received from `from`.
    pub fn handle_datagram(&mut self, now: Instant, from: SocketAddr, bytes: &[u8]) {
        if self.is_own(from) {
            tracing::debug!(%from, "dropped a datagram from our own address");
            self.stats.looped += 1;
            return;
        }
        let (id, msg) = match codec::decode_request(bytes) {
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
        if matches!(msg, ClientMsg::GetCookie { .. }) && bytes.len() < GET_COOKIE_LEN {
            tracing::trace!(%from, len = bytes.len(), "dropped a short cookie request");
            self.stats.too_short += 1;
            return;
        }
        let valid = msg.cookie().is_some_and(|c| self.cookies.check(now, from, c));
        if !valid {
            let reply = ServerMsg::Challenge { cookie: self.cookies.mint(now, from) };
            if self.reply_unvalidated(from, bytes.len(), id, &reply) {
                self.stats.challenged += 1;
            }
            return;
        }
        let reply = match msg {
            ClientMsg::Login { name, chat_port, key, .. } => {
                self.login(now, from, &name, chat_port, key)
            }
            ClientMsg::List { after, .. } => self.page(after),
            ClientMsg::Lookup { name, .. } => ServerMsg::Found {
                entry: UserName::new(&name)
                    .ok()
                    .and_then(|n| self.users.get(&n.key()))
                    .map(|u| u.entry.clone()),
            },
            ClientMsg::Logout { .. } => {
                if let Some(key) = self.by_addr.get(&from).cloned() {
                    self.remove(&key, Removal::LoggedOut);
                }
                ServerMsg::LoggedOut
            }
            // A cookie request never carries a cookie, so it never gets here.
            ClientMsg::GetCookie { .. } => return,
        };
        self.send(from, id, &reply);
    }

    /// The next datagram to send.
    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// The next thing that happened to the list.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<ServerEvent> {
        self.events.pop_front()
    }

    /// When the next lease runs out.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.expiry.first().map(|(at, _)| *at)
    }

    /// Removes every entry whose lease has run out by `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some((at, key)) = self.expiry.first().cloned() {
            if at > now {
                break;
            }
            self.remove(&key, Removal::TimedOut);
        }
    }

    /// The users online now, sorted by case-folded name.
    pub fn users(&self) -> impl Iterator<Item = &Entry> {
        self.users.values().map(|u| &u.entry)
    }

    /// How many users are online.
    pub fn user_count(&self) -> usize {
        self.users.len()
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

    /// Checked in the order of `docs/PROTOCOL.md` section 6.
    fn login(
        &mut self,
        now: Instant,
        from: SocketAddr,
        name: &str,
        chat_port: u16,
        public: PublicKey,
    ) -> ServerMsg {
        let Ok(name) = UserName::new(name) else {
            return refused(RefuseReason::NameInvalid);
        };
        let key = name.key();
        let held = self.by_addr.get(&from).cloned();
        // Where the name is listed now, when that is not `from`: a roam.
        let roams_from = match self.users.get(&key) {
            Some(holder) if holder.entry.key != public => return refused(RefuseReason::NameTaken),
            Some(holder) if holder.entry.addr == from => None,
            Some(holder) => Some(holder.entry.addr),
            None => None,
        };
        let refresh = held.as_ref() == Some(&key);
        if !refresh {
            if held.is_none() {
                // A new entry for `from`, less the one that roams away.
                let mut here = self.by_prefix.get(&Prefix::of(from)).copied().unwrap_or(0);
                if roams_from.is_some_and(|old| Prefix::of(old) == Prefix::of(from)) {
                    // The roaming entry is counted in `here`.
                    here = here.saturating_sub(1);
                }
                if here >= self.config.max_per_address {
                    return refused(RefuseReason::TooManyFromAddress);
                }
                if self.users.len() - usize::from(roams_from.is_some()) >= self.config.max_users {
                    return refused(RefuseReason::ServerFull);
                }
            }
            match roams_from {
                Some(_) => self.remove(&key, Removal::Roamed { name: name.clone(), to: from }),
                None => {
                    let chat_addr = SocketAddr::new(from.ip(), chat_port);
                    self.events.push_back(ServerEvent::LoggedIn {
                        name: name.clone(),
                        addr: from,
                        chat_addr,
                    });
                }
            }
            if let Some(old) = held {
                self.remove(&old, Removal::LoggedOut);
            }
            self.by_addr.insert(from, key.clone());
            *self.by_prefix.entry(Prefix::of(from)).or_insert(0) += 1;
        }
        let expires = now + self.config.lease;
        let entry = Entry { name, addr: from, chat_port, key: public };
        if let Some(old) = self.users.insert(key.clone(), User { entry, expires }) {
            self.expiry.remove(&(old.expires, key.clone()));
        }
        self.expiry.insert((expires, key));
        ServerMsg::Welcome {
            observed: from,
            lease_secs: u32::try_from(self.config.lease.as_secs()).unwrap_or(u32::MAX),
        }
    }

    /// One page of the list, resuming strictly after `after`, as long as fits
    /// in one datagram.
    fn page(&self, after: Option<Cursor>) -> ServerMsg {
        let start = match after {
            Some(Cursor(key)) => Bound::Excluded(NameKey::from_folded(key)),
            None => Bound::Unbounded,
        };
        // Header, variant tag and the entry count (a varint of at most 2
        // bytes: a page holds far fewer than 16,384 entries).
        let mut used = HEADER_LEN + 1 + 2;
        let mut entries = Vec::new();
        let mut last = None;
        let mut rest = self.users.range((start, Bound::Unbounded)).peekable();
        while let Some((key, user)) = rest.peek() {
            // The cursor that would follow this entry: `Some`, a length varint
            // of at most 2 bytes, and the key.
            let cursor_len = 1 + 2 + key.as_str().len();
            let entry_len = codec::body_len(&user.entry);
            if used + entry_len + cursor_len > MAX_DATAGRAM_LEN {
                break;
            }
            used += entry_len;
            entries.push(user.entry.clone());
            last = Some((*key).clone());
            rest.next();
        }
        let next = match (rest.peek(), last) {
            (Some(_), Some(key)) => Some(Cursor(key.as_str().to_owned())),
            // Every entry fits in an empty page, so a page stops early only
            // after taking at least one.
            (Some(_), None) | (None, _) => None,
        };
        ServerMsg::ListPage { entries, next }
    }

    fn remove(&mut self, key: &NameKey, why: Removal) {
        let Some(user) = self.users.remove(key) else {
            return;
        };
        self.expiry.remove(&(user.expires, key.clone()));
        self.by_addr.remove(&user.entry.addr);
        let prefix = Prefix::of(user.entry.addr);
        if let Some(n) = self.by_prefix.get_mut(&prefix) {
            *n -= 1;
            if *n == 0 {
                self.by_prefix.remove(&prefix);
            }
        }
        let Entry { name, addr, .. } = user.entry;
        self.events.push_back(match why {
            Removal::LoggedOut => ServerEvent::LoggedOut { name, addr },
            Removal::TimedOut => ServerEvent::TimedOut { name, addr },
            Removal::Roamed { name, to } => ServerEvent::Roamed { name, from: addr, to },
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
        let payload = codec::encode_reply(id, reply);
        if payload.len() > max_len {
            self.stats.too_short += 1;
            return false;
        }
        self.stats.replied += 1;
        self.transmits.push_back(Transmit { dst: to, payload });
        true
    }

    fn send(&mut self, to: SocketAddr, id: RequestId, reply: &ServerMsg) {
        let payload = codec::encode_reply(id, reply);
        debug_assert!(payload.len() <= MAX_DATAGRAM_LEN);
        self.stats.replied += 1;
        self.transmits.push_back(Transmit { dst: to, payload });
    }
}

enum Removal {
    LoggedOut,
    TimedOut,
    Roamed { name: UserName, to: SocketAddr },
}

/// What [`ServerConfig::max_per_address`] counts by: an IPv4 address, or the
/// first 64 bits of an IPv6 address. An IPv4-mapped IPv6 address counts as
/// its IPv4 address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Prefix {
    V4([u8; 4]),
    V6([u8; 8]),
}

impl Prefix {
    fn of(addr: SocketAddr) -> Self {
        match addr.ip().to_canonical() {
            IpAddr::V4(ip) => Prefix::V4(ip.octets()),
            IpAddr::V6(ip) => {
                let mut net = [0; 8];
                net.copy_from_slice(&ip.octets()[..8]);
                Prefix::V6(net)
            }
        }
    }
}

fn refused(reason: RefuseReason) -> ServerMsg {
    ServerMsg::Refused { reason }
}
