//! The registry server: the online-user list as a sans-IO state machine.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::net::SocketAddr;
use std::ops::Bound;
use std::time::{Duration, Instant};

use crate::codec::{self, DecodeError, HEADER_LEN, MAX_DATAGRAM_LEN};
use crate::cookie::{CookieJar, CookieKey};
use crate::name::{NameKey, UserName};
use crate::registry_msg::{ClientMsg, Cursor, Entry, RefuseReason, RequestId, ServerMsg};
use crate::transmit::Transmit;

/// How long an entry stays listed without a refresh, unless configured.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(60);

/// How many users may be online at once, unless configured.
pub const DEFAULT_MAX_USERS: usize = 10_000;

/// How the server behaves; [`Default`] gives the documented defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerConfig {
    /// How long an entry stays listed after its last login or refresh.
    pub lease: Duration,
    /// The most users listed at once; a login beyond it is refused.
    pub max_users: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self { lease: DEFAULT_LEASE, max_users: DEFAULT_MAX_USERS }
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
    /// have been longer than the datagram.
    pub too_short: u64,
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
///   holds two names.
/// - Memory is bounded by [`ServerConfig::max_users`] entries; each call
///   queues at most one transmit.
pub struct RegistryServer {
    config: ServerConfig,
    cookies: CookieJar,
    users: BTreeMap<NameKey, User>,
    by_addr: HashMap<SocketAddr, NameKey>,
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
            expiry: BTreeSet::new(),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            stats: ServerStats::default(),
        }
    }

    /// Handles one datagram received from `from`.
    pub fn handle_datagram(&mut self, now: Instant, from: SocketAddr, bytes: &[u8]) {
        let (id, msg) = match codec::decode_request(bytes) {
            Ok(decoded) => decoded,
            Err(DecodeError::UnsupportedVersion { id, version }) => {
                tracing::debug!(%from, version, "request of an unsupported version");
                let reply = ServerMsg::Refused { reason: RefuseReason::UnsupportedVersion };
                self.reply_unvalidated(from, bytes.len(), id, &reply);
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
        let valid = msg.cookie().is_some_and(|c| self.cookies.check(now, from, c));
        if !valid {
            let reply = ServerMsg::Challenge { cookie: self.cookies.mint(now, from) };
            if self.reply_unvalidated(from, bytes.len(), id, &reply) {
                self.stats.challenged += 1;
            }
            return;
        }
        let reply = match msg {
            ClientMsg::Login { name, chat_port, .. } => self.login(now, from, &name, chat_port),
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

    fn login(&mut self, now: Instant, from: SocketAddr, name: &str, chat_port: u16) -> ServerMsg {
        let Ok(name) = UserName::new(name) else {
            return refused(RefuseReason::NameInvalid);
        };
        let key = name.key();
        let held = self.by_addr.get(&from).cloned();
        match self.users.get(&key) {
            Some(holder) if holder.entry.addr != from => return refused(RefuseReason::NameTaken),
            Some(_) => {}
            None if held.is_none() && self.users.len() >= self.config.max_users => {
                return refused(RefuseReason::ServerFull);
            }
            None => {
                if let Some(old) = held {
                    self.remove(&old, Removal::LoggedOut);
                }
                self.events.push_back(ServerEvent::LoggedIn { name: name.clone(), addr: from });
                self.by_addr.insert(from, key.clone());
            }
        }
        let expires = now + self.config.lease;
        let entry = Entry { name, addr: from, chat_port };
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
        let Entry { name, addr, .. } = user.entry;
        self.events.push_back(match why {
            Removal::LoggedOut => ServerEvent::LoggedOut { name, addr },
            Removal::TimedOut => ServerEvent::TimedOut { name, addr },
        });
    }

    /// Queues `reply` to a sender whose address is not validated, only if it
    /// is no longer than the `request_len` bytes that sender sent.
    fn reply_unvalidated(
        &mut self,
        to: SocketAddr,
        request_len: usize,
        id: RequestId,
        reply: &ServerMsg,
    ) -> bool {
        let payload = codec::encode_reply(id, reply);
        if payload.len() > request_len {
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

#[derive(Clone, Copy)]
enum Removal {
    LoggedOut,
    TimedOut,
}

fn refused(reason: RefuseReason) -> ServerMsg {
    ServerMsg::Refused { reason }
}
