//! The registry client: logging in, staying listed, fetching the list.

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::codec::{self, HEADER_LEN};
use crate::name::UserName;
use crate::registry_msg::{ClientMsg, Cookie, Cursor, Entry, RefuseReason, RequestId, ServerMsg};
use crate::transmit::Transmit;

/// Wait before the first retransmission of an unanswered request.
pub const INITIAL_RETRY: Duration = Duration::from_millis(500);

/// Longest wait between two transmissions of one request (the wait doubles
/// from [`INITIAL_RETRY`] up to this).
pub const MAX_RETRY: Duration = Duration::from_secs(2);

/// Transmissions of one request before the registry is declared unreachable:
/// with the defaults, about 7.5 s after the first one.
pub const MAX_TRANSMISSIONS: u32 = 5;

/// Fresh cookies one request may be sent with before the client gives up on
/// it; a server that keeps refusing its own cookies is broken.
pub const MAX_CHALLENGES: u32 = 3;

/// Total length of a `GetCookie` datagram, padding included: enough that the
/// server's `Challenge` is never longer than the request that asked for it.
pub const GET_COOKIE_LEN: usize = 64;

/// Shortest interval between keepalives, whatever lease the server grants.
pub const MIN_KEEPALIVE_INTERVAL: Duration = Duration::from_secs(1);

/// The most entries the client collects while paging through one list; a
/// longer list is cut there.
pub const MAX_LIST_ENTRIES: usize = 100_000;

/// What the client was asked to do, as named in events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operation {
    /// The first login under a name.
    Login,
    /// A refresh of the lease (a login re-sent every lease/3).
    Keepalive,
    /// Fetching the whole list.
    List,
    /// Looking up one user.
    Lookup,
    /// Logging out.
    Logout,
}

/// What the application needs to know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientEvent {
    /// The registry lists us. The client now keeps the lease alive itself.
    LoggedIn {
        /// The address the registry sees us at.
        observed: SocketAddr,
        /// How long an entry lives without a refresh.
        lease: Duration,
    },
    /// The registry refused an operation. After a refused `Login` or
    /// `Keepalive` we are not listed and the client stops refreshing.
    Refused {
        /// What was refused.
        op: Operation,
        /// Why.
        reason: RefuseReason,
    },
    /// The whole online list, sorted by case-folded name.
    List {
        /// Every user online, ourselves included.
        entries: Vec<Entry>,
    },
    /// The answer to a lookup.
    Found {
        /// The name asked for.
        name: UserName,
        /// Its entry, or `None` when no such user is online.
        entry: Option<Entry>,
    },
    /// We are no longer listed, as asked.
    LoggedOut,
    /// The registry did not answer an operation. An unanswered keepalive is
    /// tried again at the next keepalive time; other operations are dropped.
    Unreachable {
        /// What got no answer.
        op: Operation,
    },
}

#[derive(Debug, Clone)]
enum Op {
    GetCookie,
    Login { keepalive: bool },
    List { after: Option<Cursor> },
    Lookup { name: UserName },
    Logout,
}

impl Op {
    fn operation(&self) -> Option<Operation> {
        match self {
            Op::GetCookie => None,
            Op::Login { keepalive: false } => Some(Operation::Login),
            Op::Login { keepalive: true } => Some(Operation::Keepalive),
            Op::List { .. } => Some(Operation::List),
            Op::Lookup { .. } => Some(Operation::Lookup),
            Op::Logout => Some(Operation::Logout),
        }
    }
}

struct Pending {
    op: Op,
    payload: Vec<u8>,
    sent: u32,
    challenges: u32,
    retry_at: Instant,
    wait: Duration,
}

struct Identity {
    name: UserName,
    chat_port: u16,
    /// When to send the next keepalive; `None` until the first `Welcome`.
    keepalive_at: Option<Instant>,
}

/// A client of the registry.
///
/// It fetches a cookie before its first request, retransmits unanswered
/// requests (after [`INITIAL_RETRY`], doubling up to [`MAX_RETRY`],
/// [`MAX_TRANSMISSIONS`] times), matches replies by request id, ignoring
/// duplicates, stale replies and datagrams from anyone but the server, keeps
/// its lease alive once logged in, and pages through the list.
///
/// # Driver contract
/// After every command ([`login`](Self::login), [`refresh_list`](Self::refresh_list),
/// [`lookup`](Self::lookup), [`logout`](Self::logout)) and every
/// `handle_*` call: send everything [`poll_transmit`](Self::poll_transmit)
/// returns to its `dst`, drain [`poll_event`](Self::poll_event), and call
/// [`handle_timeout`](Self::handle_timeout) once
/// [`poll_timeout`](Self::poll_timeout) has passed.
pub struct RegistryClient {
    server: SocketAddr,
    next_id: u32,
    cookie: Option<Cookie>,
    in_flight: BTreeMap<RequestId, Pending>,
    /// Operations waiting for a cookie.
    waiting: VecDeque<(Op, u32)>,
    identity: Option<Identity>,
    logged_in: bool,
    lease: Duration,
    list: Vec<Entry>,
    transmits: VecDeque<Transmit>,
    events: VecDeque<ClientEvent>,
}

impl RegistryClient {
    /// A client of the registry at `server`. `seed` picks the first request
    /// id, so that an off-path attacker cannot guess ids: pass a random value.
    pub fn new(server: SocketAddr, seed: u64) -> Self {
        Self {
            server,
            next_id: (seed ^ (seed >> 32)) as u32,
            cookie: None,
            in_flight: BTreeMap::new(),
            waiting: VecDeque::new(),
            identity: None,
            logged_in: false,
            lease: crate::registry_server::DEFAULT_LEASE,
            list: Vec::new(),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
        }
    }

    /// Whether the registry has confirmed our login and we have not logged
    /// out or been refused since.
    pub fn is_logged_in(&self) -> bool {
        self.logged_in
    }

    /// Logs in as `name`, taking chats on TCP port `chat_port`, and keeps the
    /// lease alive from then on. Replaces any earlier identity.
    pub fn login(&mut self, now: Instant, name: UserName, chat_port: u16) {
        self.cancel(|op| matches!(op, Op::Login { .. } | Op::Logout));
        self.identity = Some(Identity { name, chat_port, keepalive_at: None });
        self.logged_in = false;
        self.start(now, Op::Login { keepalive: false });
    }

    /// Fetches the whole list, page by page; ends in one
    /// [`ClientEvent::List`]. A refresh already under way is restarted.
    pub fn refresh_list(&mut self, now: Instant) {
        self.cancel(|op| matches!(op, Op::List { .. }));
        self.list.clear();
        self.start(now, Op::List { after: None });
    }

    /// Looks up one user; ends in one [`ClientEvent::Found`].
    pub fn lookup(&mut self, now: Instant, name: UserName) {
        self.start(now, Op::Lookup { name });
    }

    /// Stops the keepalives and asks to be removed; ends in
    /// [`ClientEvent::LoggedOut`].
    pub fn logout(&mut self, now: Instant) {
        self.cancel(|op| matches!(op, Op::Login { .. } | Op::Logout));
        self.identity = None;
        self.logged_in = false;
        self.start(now, Op::Logout);
    }

    /// Handles one datagram received from `from`.
    pub fn handle_datagram(&mut self, now: Instant, from: SocketAddr, bytes: &[u8]) {
        if from != self.server {
            tracing::trace!(%from, "ignored a datagram from someone other than the registry");
            return;
        }
        let (id, msg) = match codec::decode_reply(bytes) {
            Ok(decoded) => decoded,
            // A registry of another version answers in its own version: the
            // header still carries our request id.
            Err(codec::DecodeError::UnsupportedVersion { id, version }) => {
                tracing::debug!(version, "the registry speaks another protocol version");
                if let Some(pending) = self.in_flight.remove(&id) {
                    self.refused(pending.op, RefuseReason::UnsupportedVersion);
                }
                return;
            }
            Err(e) => {
                tracing::trace!(error = %e, "ignored a malformed reply");
                return;
            }
        };
        let Some(pending) = self.in_flight.remove(&id) else {
            tracing::trace!(id = id.0, "ignored a duplicate or stale reply");
            return;
        };
        match (pending.op, msg) {
            (op, ServerMsg::Challenge { cookie }) => {
                self.cookie = Some(cookie);
                match op {
                    Op::GetCookie => self.release_waiting(now),
                    op if pending.challenges + 1 >= MAX_CHALLENGES => self.fail(op),
                    op => self.send(now, op, pending.challenges + 1),
                }
            }
            (op, ServerMsg::Refused { reason }) => self.refused(op, reason),
            (Op::Login { .. }, ServerMsg::Welcome { observed, lease_secs }) => {
                self.lease = Duration::from_secs(lease_secs.into());
                let interval = self.keepalive_interval();
                if let Some(identity) = &mut self.identity {
                    identity.keepalive_at = Some(now + interval);
                    if !self.logged_in {
                        self.logged_in = true;
                        self.events
                            .push_back(ClientEvent::LoggedIn { observed, lease: self.lease });
                    }
                }
            }
            (Op::List { .. }, ServerMsg::ListPage { entries, next }) => {
                let room = MAX_LIST_ENTRIES - self.list.len();
                let full = entries.len() >= room;
                let empty = entries.is_empty();
                self.list.extend(entries.into_iter().take(room));
                match next {
                    // A page that made no progress would make the next one the
                    // same request again: stop there rather than loop.
                    Some(after) if !full && !empty => {
                        self.start(now, Op::List { after: Some(after) })
                    }
                    Some(_) | None => {
                        let entries = std::mem::take(&mut self.list);
                        self.events.push_back(ClientEvent::List { entries });
                    }
                }
            }
            (Op::Lookup { name }, ServerMsg::Found { entry }) => {
                self.events.push_back(ClientEvent::Found { name, entry });
            }
            (Op::Logout, ServerMsg::LoggedOut) => self.events.push_back(ClientEvent::LoggedOut),
            (op, msg) => {
                tracing::debug!(?op, ?msg, "ignored a reply that does not answer its request");
                self.in_flight.insert(id, Pending { op, ..pending });
            }
        }
    }

    /// The next datagram to send.
    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// The next thing the application needs to know.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<ClientEvent> {
        self.events.pop_front()
    }

    /// When [`handle_timeout`](Self::handle_timeout) is next due: the next
    /// retransmission or keepalive.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        let retry = self.in_flight.values().map(|p| p.retry_at).min();
        let keepalive = self.identity.as_ref().and_then(|i| i.keepalive_at);
        retry.into_iter().chain(keepalive).min()
    }

    /// Retransmits, gives up, and sends keepalives, as due by `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        let due: Vec<RequestId> =
            self.in_flight.iter().filter(|(_, p)| p.retry_at <= now).map(|(id, _)| *id).collect();
        for id in due {
            let Some(mut p) = self.in_flight.remove(&id) else {
                continue;
            };
            if p.sent >= MAX_TRANSMISSIONS {
                self.fail(p.op);
                continue;
            }
            p.sent += 1;
            p.wait = (p.wait * 2).min(MAX_RETRY);
            p.retry_at = now + p.wait;
            self.transmits.push_back(Transmit { dst: self.server, payload: p.payload.clone() });
            self.in_flight.insert(id, p);
        }
        let interval = self.keepalive_interval();
        let keepalive_due =
            self.identity.as_mut().and_then(|i| i.keepalive_at.filter(|at| *at <= now).map(|_| i));
        if let Some(identity) = keepalive_due {
            identity.keepalive_at = Some(now + interval);
            let busy = self.in_flight.values().any(|p| matches!(p.op, Op::Login { .. }))
                || self.waiting.iter().any(|(op, _)| matches!(op, Op::Login { .. }));
            if !busy {
                self.start(now, Op::Login { keepalive: true });
            }
        }
    }

    fn keepalive_interval(&self) -> Duration {
        (self.lease / 3).max(MIN_KEEPALIVE_INTERVAL)
    }

    fn start(&mut self, now: Instant, op: Op) {
        self.send(now, op, 0);
    }

    /// Sends `op` with the current cookie, or queues it behind a cookie
    /// request when there is none.
    fn send(&mut self, now: Instant, op: Op, challenges: u32) {
        let msg = match (&op, self.cookie) {
            (Op::GetCookie, _) => ClientMsg::GetCookie { padding: Vec::new() },
            (_, None) => {
                self.waiting.push_back((op, challenges));
                if !self.in_flight.values().any(|p| matches!(p.op, Op::GetCookie)) {
                    self.send(now, Op::GetCookie, 0);
                }
                return;
            }
            (Op::Login { .. }, Some(cookie)) => match &self.identity {
                Some(identity) => ClientMsg::Login {
                    cookie,
                    name: identity.name.as_str().to_owned(),
                    chat_port: identity.chat_port,
                },
                // Logged out meanwhile: nothing to log in as.
                None => return,
            },
            (Op::List { after }, Some(cookie)) => ClientMsg::List { cookie, after: after.clone() },
            (Op::Lookup { name }, Some(cookie)) => {
                ClientMsg::Lookup { cookie, name: name.as_str().to_owned() }
            }
            (Op::Logout, Some(cookie)) => ClientMsg::Logout { cookie },
        };
        let id = RequestId(self.next_id);
        self.next_id = self.next_id.wrapping_add(1);
        let mut payload = codec::encode_request(id, &msg);
        if let ClientMsg::GetCookie { .. } = msg {
            // Padding: tag (1 byte) and length varint (1 byte) come first.
            let padding = vec![0; GET_COOKIE_LEN.saturating_sub(HEADER_LEN + 2)];
            payload = codec::encode_request(id, &ClientMsg::GetCookie { padding });
        }
        self.transmits.push_back(Transmit { dst: self.server, payload: payload.clone() });
        let pending = Pending {
            op,
            payload,
            sent: 1,
            challenges,
            retry_at: now + INITIAL_RETRY,
            wait: INITIAL_RETRY,
        };
        self.in_flight.insert(id, pending);
    }

    fn release_waiting(&mut self, now: Instant) {
        for (op, challenges) in std::mem::take(&mut self.waiting) {
            self.send(now, op, challenges);
        }
    }

    fn refused(&mut self, op: Op, reason: RefuseReason) {
        if let Op::GetCookie = op {
            // Only an unsupported version refuses a cookie: every operation
            // waiting for one fails with the same reason.
            for (op, _) in std::mem::take(&mut self.waiting) {
                self.refused(op, reason);
            }
            return;
        }
        if let Op::Login { .. } = op {
            self.identity = None;
            self.logged_in = false;
        }
        if let Op::List { .. } = op {
            self.list.clear();
        }
        if let Some(op) = op.operation() {
            self.events.push_back(ClientEvent::Refused { op, reason });
        }
    }

    fn fail(&mut self, op: Op) {
        match op {
            Op::GetCookie => {
                for (op, _) in std::mem::take(&mut self.waiting) {
                    self.fail(op);
                }
                return;
            }
            Op::Login { keepalive: false } => self.identity = None,
            Op::List { .. } => self.list.clear(),
            Op::Login { keepalive: true } | Op::Lookup { .. } | Op::Logout => {}
        }
        if let Some(op) = op.operation() {
            self.events.push_back(ClientEvent::Unreachable { op });
        }
    }

    /// Forgets in-flight and waiting operations that `matches` picks.
    fn cancel(&mut self, matches: impl Fn(&Op) -> bool) {
        self.in_flight.retain(|_, p| !matches(&p.op));
        self.waiting.retain(|(op, _)| !matches(op));
    }
}
