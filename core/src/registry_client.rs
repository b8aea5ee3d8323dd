//! The registry client: logging in, staying listed, fetching the list.

use std::collections::{BTreeMap, VecDeque};
use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use crate::codec::{self, HEADER_LEN};
use crate::key::PublicKey;
use crate::name::UserName;
use crate::registry_msg::{
    ClientMsg, Cookie, Cursor, Entry, GET_COOKIE_LEN, Introduction, MAX_LOCAL_ADDRS, RefuseReason,
    RequestId, ServerMsg,
};
use crate::transmit::Transmit;

/// Wait before the first retransmission of an unanswered request.
pub const INITIAL_RETRY: Duration = Duration::from_millis(500);

/// Longest wait between two transmissions of one request (the wait doubles
/// from [`INITIAL_RETRY`] up to this).
pub const MAX_RETRY: Duration = Duration::from_secs(2);

/// How long an operation is tried without an answer before the registry is
/// declared unreachable, counted from the operation's first datagram (its
/// cookie request, if it needed one): about as long as a person waits for a
/// program before giving up on it. With the defaults a request is sent 17
/// times, at 0, 0.5, 1.5, 3.5 s and then every 2 s up to 29.5 s, so even at
/// 30% loss each way one of them comes back with near certainty. Each page
/// of a list is a new request with a new allowance.
pub const GIVE_UP_AFTER: Duration = Duration::from_secs(30);

/// How long an operation goes unanswered before the client reports
/// [`ClientEvent::StillTrying`] (once per operation), so that its user knows
/// why nothing happens yet.
pub const STILL_TRYING_AFTER: Duration = Duration::from_secs(4);

/// Fresh cookies one request may be sent with before the client gives up on
/// it; a server that keeps refusing its own cookies is broken.
pub const MAX_CHALLENGES: u32 = 3;

/// Shortest interval between keepalives, whatever lease the server grants.
pub const MIN_KEEPALIVE_INTERVAL: Duration = Duration::from_secs(1);

/// The most entries the client collects while paging through one list; a
/// longer list is cut there.
pub const MAX_LIST_ENTRIES: usize = 100_000;

/// How many nonces of unprompted introductions the client remembers, so
/// that the registry's retransmissions are acknowledged but reported once.
pub const REMEMBERED_INTROS: usize = 16;

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
    /// Asking for an introduction.
    Introduce,
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
    /// The whole online list, sorted by name key (see
    /// [`UserName::key`](crate::UserName::key)), whatever order the server
    /// paged it in.
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
    /// The answer to [`RegistryClient::introduce`]: the callee's side of
    /// the introduction (`None`: not online).
    Introduced {
        /// The name asked for.
        name: UserName,
        /// The callee's entry and candidates, and our relay ticket.
        intro: Option<Introduction>,
    },
    /// Someone asked the registry to introduce them to us: the caller's
    /// entry and candidates, and our relay ticket. Acknowledged already;
    /// reported once per introduction.
    Called {
        /// The introduction.
        intro: Introduction,
    },
    /// We are no longer listed, as asked.
    LoggedOut,
    /// An operation has gone unanswered for [`STILL_TRYING_AFTER`]; the
    /// client keeps trying until [`GIVE_UP_AFTER`]. Reported once per
    /// operation (once per page of a list).
    StillTrying {
        /// What has no answer yet.
        op: Operation,
    },
    /// The registry did not answer an operation for [`GIVE_UP_AFTER`]. An
    /// unanswered keepalive is tried again at the next keepalive time; other
    /// operations are dropped.
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
    Introduce { name: UserName },
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
            Op::Introduce { .. } => Some(Operation::Introduce),
        }
    }
}

/// What an operation carries from one request to the next (behind a cookie
/// request, after a challenge).
#[derive(Debug, Clone, Copy)]
struct Attempt {
    challenges: u32,
    /// When it fails as unreachable.
    deadline: Instant,
    /// When to report it as still trying; `None` once reported.
    still_trying_at: Option<Instant>,
}

impl Attempt {
    fn new(now: Instant) -> Self {
        Self {
            challenges: 0,
            deadline: now + GIVE_UP_AFTER,
            still_trying_at: Some(now + STILL_TRYING_AFTER),
        }
    }

    fn next_deadline(&self) -> Instant {
        self.still_trying_at.map_or(self.deadline, |at| at.min(self.deadline))
    }
}

struct Pending {
    op: Op,
    payload: Vec<u8>,
    attempt: Attempt,
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
/// requests (after [`INITIAL_RETRY`], doubling up to [`MAX_RETRY`], until
/// [`GIVE_UP_AFTER`], saying so after [`STILL_TRYING_AFTER`]), matches
/// replies by request id, ignoring
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
    public_key: PublicKey,
    next_id: u32,
    cookie: Option<Cookie>,
    in_flight: BTreeMap<RequestId, Pending>,
    /// Operations waiting for a cookie.
    waiting: VecDeque<(Op, Attempt)>,
    identity: Option<Identity>,
    logged_in: bool,
    lease: Duration,
    list: Vec<Entry>,
    /// Our local IPv4 addresses, told to the other side in introductions.
    locals: Vec<Ipv4Addr>,
    /// Nonces of the latest unprompted introductions.
    intros_seen: VecDeque<u64>,
    transmits: VecDeque<Transmit>,
    events: VecDeque<ClientEvent>,
}

impl RegistryClient {
    /// A client of the registry at `server` that logs in with `public_key`
    /// (the public half of the user's identity). `seed` picks the first
    /// request id, so that an off-path attacker cannot guess ids: pass a
    /// random value.
    pub fn new(server: SocketAddr, seed: u64, public_key: PublicKey) -> Self {
        Self {
            server,
            public_key,
            next_id: (seed ^ (seed >> 32)) as u32,
            cookie: None,
            in_flight: BTreeMap::new(),
            waiting: VecDeque::new(),
            identity: None,
            logged_in: false,
            lease: crate::registry_config::DEFAULT_LEASE,
            list: Vec::new(),
            locals: Vec::new(),
            intros_seen: VecDeque::new(),
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

    /// Our local IPv4 addresses (host candidates; at most
    /// [`MAX_LOCAL_ADDRS`] are kept), announced to the other side of each
    /// introduction: in our `Introduce` when we call, in our `IntroAck`
    /// when we are called. The registry keeps none of them.
    pub fn set_locals(&mut self, addrs: &[Ipv4Addr]) {
        self.locals = addrs.iter().copied().take(MAX_LOCAL_ADDRS).collect();
    }

    /// Asks the registry to introduce us to `name`; ends in one
    /// [`ClientEvent::Introduced`] (or a refusal).
    pub fn introduce(&mut self, now: Instant, name: UserName) {
        self.start(now, Op::Introduce { name });
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
            if let ServerMsg::Introduced { intro: Some(intro) } = msg {
                self.called(intro);
                return;
            }
            tracing::trace!(id = id.0, "ignored a duplicate or stale reply");
            return;
        };
        match (pending.op, msg) {
            (op, ServerMsg::Challenge { cookie }) => {
                self.cookie = Some(cookie);
                let attempt = pending.attempt;
                match op {
                    Op::GetCookie => self.release_waiting(now),
                    op if attempt.challenges + 1 >= MAX_CHALLENGES => self.fail(op),
                    op => {
                        let challenges = attempt.challenges + 1;
                        self.send(now, op, Attempt { challenges, ..attempt });
                    }
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
                        let mut entries = std::mem::take(&mut self.list);
                        // The server pages in its own order; we show the
                        // list sorted by name key, ties by name as written.
                        entries.sort_by_cached_key(|e| (e.name.key(), e.name.clone()));
                        self.events.push_back(ClientEvent::List { entries });
                    }
                }
            }
            (Op::Lookup { name }, ServerMsg::Found { entry }) => {
                self.events.push_back(ClientEvent::Found { name, entry });
            }
            (Op::Logout, ServerMsg::LoggedOut) => self.events.push_back(ClientEvent::LoggedOut),
            (Op::Introduce { name }, ServerMsg::Introduced { intro }) => {
                self.events.push_back(ClientEvent::Introduced { name, intro });
            }
            (op, ServerMsg::Introduced { intro: Some(intro) }) => {
                // An unprompted introduction whose id is one of ours.
                self.in_flight.insert(id, Pending { op, ..pending });
                self.called(intro);
            }
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
    /// retransmission, "still trying" report, give-up or keepalive.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        let retry = self.in_flight.values().map(|p| p.retry_at.min(p.attempt.next_deadline()));
        let waiting = self.waiting.iter().map(|(_, a)| a.next_deadline());
        let keepalive = self.identity.as_ref().and_then(|i| i.keepalive_at);
        retry.chain(waiting).chain(keepalive).min()
    }

    /// Retransmits, reports and gives up, and sends keepalives, as due by
    /// `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        let due: Vec<RequestId> = self
            .in_flight
            .iter()
            .filter(|(_, p)| p.retry_at.min(p.attempt.next_deadline()) <= now)
            .map(|(id, _)| *id)
            .collect();
        for id in due {
            let Some(mut p) = self.in_flight.remove(&id) else {
                continue;
            };
            if p.attempt.deadline <= now {
                self.fail(p.op);
                continue;
            }
            self.report_still_trying(now, &p.op, &mut p.attempt);
            if p.retry_at <= now {
                p.wait = (p.wait * 2).min(MAX_RETRY);
                p.retry_at = (now + p.wait).min(p.attempt.deadline);
                self.transmits.push_back(Transmit { dst: self.server, payload: p.payload.clone() });
            }
            self.in_flight.insert(id, p);
        }
        for (op, mut attempt) in std::mem::take(&mut self.waiting) {
            if attempt.deadline <= now {
                self.fail(op);
                continue;
            }
            self.report_still_trying(now, &op, &mut attempt);
            self.waiting.push_back((op, attempt));
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

    /// Reports `op` as still trying once its time has come.
    fn report_still_trying(&mut self, now: Instant, op: &Op, attempt: &mut Attempt) {
        if attempt.still_trying_at.is_some_and(|at| at <= now) {
            attempt.still_trying_at = None;
            if let Some(op) = op.operation() {
                self.events.push_back(ClientEvent::StillTrying { op });
            }
        }
    }

    fn start(&mut self, now: Instant, op: Op) {
        self.send(now, op, Attempt::new(now));
    }

    /// Sends `op` with the current cookie, or queues it behind a cookie
    /// request when there is none.
    fn send(&mut self, now: Instant, op: Op, attempt: Attempt) {
        let msg = match (&op, self.cookie) {
            (Op::GetCookie, _) => ClientMsg::GetCookie { padding: Vec::new() },
            (_, None) => {
                // The cookie request is tried for as long as anyone waits
                // for it.
                let cookie_request =
                    self.in_flight.values_mut().find(|p| matches!(p.op, Op::GetCookie));
                match cookie_request {
                    Some(p) => p.attempt.deadline = p.attempt.deadline.max(attempt.deadline),
                    None => {
                        let own = Attempt { still_trying_at: None, ..attempt };
                        self.send(now, Op::GetCookie, own);
                    }
                }
                self.waiting.push_back((op, attempt));
                return;
            }
            (Op::Login { .. }, Some(cookie)) => match &self.identity {
                Some(identity) => ClientMsg::Login {
                    cookie,
                    name: identity.name.as_str().to_owned(),
                    chat_port: identity.chat_port,
                    key: self.public_key,
                },
                // Logged out meanwhile: nothing to log in as.
                None => return,
            },
            (Op::List { after }, Some(cookie)) => ClientMsg::List { cookie, after: after.clone() },
            (Op::Lookup { name }, Some(cookie)) => {
                ClientMsg::Lookup { cookie, name: name.as_str().to_owned() }
            }
            (Op::Logout, Some(cookie)) => ClientMsg::Logout { cookie },
            (Op::Introduce { name }, Some(cookie)) => ClientMsg::Introduce {
                cookie,
                name: name.as_str().to_owned(),
                locals: self.locals.clone(),
            },
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
            attempt,
            retry_at: (now + INITIAL_RETRY).min(attempt.deadline),
            wait: INITIAL_RETRY,
        };
        self.in_flight.insert(id, pending);
    }

    fn release_waiting(&mut self, now: Instant) {
        for (op, attempt) in std::mem::take(&mut self.waiting) {
            self.send(now, op, attempt);
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
            Op::Login { keepalive: true }
            | Op::Lookup { .. }
            | Op::Logout
            | Op::Introduce { .. } => {}
        }
        if let Some(op) = op.operation() {
            self.events.push_back(ClientEvent::Unreachable { op });
        }
    }

    /// An unprompted introduction: acknowledged every time (the registry
    /// sends it until it hears), with our local addresses for the caller;
    /// reported once.
    fn called(&mut self, intro: Introduction) {
        if let Some(cookie) = self.cookie {
            let id = RequestId(self.next_id);
            self.next_id = self.next_id.wrapping_add(1);
            let locals = self.locals.clone();
            let ack = ClientMsg::IntroAck { cookie, nonce: intro.nonce, locals };
            let payload = codec::encode_request(id, &ack);
            self.transmits.push_back(Transmit { dst: self.server, payload });
        }
        if !self.logged_in || self.intros_seen.contains(&intro.nonce) {
            return;
        }
        if self.intros_seen.len() >= REMEMBERED_INTROS {
            self.intros_seen.pop_front();
        }
        self.intros_seen.push_back(intro.nonce);
        self.events.push_back(ClientEvent::Called { intro });
    }

    /// Forgets in-flight and waiting operations that `matches` picks.
    fn cancel(&mut self, matches: impl Fn(&Op) -> bool) {
        self.in_flight.retain(|_, p| !matches(&p.op));
        self.waiting.retain(|(op, _)| !matches(op));
    }
}
