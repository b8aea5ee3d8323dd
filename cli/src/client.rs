//! The client's event loop: one `mio::Poll` for the registry socket, the
//! chat listener, the chat streams, standard input and signals, on one
//! thread. It carries out what [`App`] decides and feeds it what happens.
//!
//! Chats: at most one *active* chat (the one the user types into) and at most
//! one *held* incoming chat (connected, its `Hello` read, waiting for the user
//! to enter `2`; our own `Hello` is held back until then, so the caller
//! knows it has not been accepted). Any further incoming connection is
//! closed at once, which its side reports as the peer being busy. Texts that arrive on the held
//! chat are kept (at most [`MAX_HELD_EVENTS`]) and shown on accepting, even
//! if the peer has left meanwhile; a held chat that goes away without a text
//! is reported as withdrawn.

use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use mio::net::TcpListener;
use mio::{Events, Interest, Poll, Token};
use p2pchat_core::{
    ChatConfig, ChatEvent, ChatSession, CloseReason, RegistryClient, SendError, UserName,
};
use p2pchat_transport_mio::{
    InputDecoder as _, StreamConn, StreamCore, StreamState, UdpDriver, UserInput,
};
use signal_hook::consts::{SIGCONT, SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGTSTP};
use signal_hook_mio::v1_0::Signals;
use time::{OffsetDateTime, UtcOffset};

use crate::app::{Action, App, AppConfig, Input};
use crate::history::History;
use crate::term::Term;

const UDP: Token = Token(0);
const LISTENER: Token = Token(1);
const STDIN: Token = Token(2);
const SIGNALS: Token = Token(3);
/// Chat streams get tokens from here on, one new token per stream.
const FIRST_STREAM: usize = 16;

/// How long a TCP connect to a peer may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Most events of a held (not yet accepted) chat kept for when the user
/// accepts it; past that the held stream is not read, so a peer that types
/// ahead is slowed down by TCP, not buffered here.
pub const MAX_HELD_EVENTS: usize = 256;

/// Most input lines handed to the app in one turn of the loop, so that a
/// long script does not starve the sockets.
const MAX_LINES_PER_TURN: usize = 64;

/// Rounds of "move bytes, collect events, decide" per turn before sleeping.
const MAX_SETTLE_ROUNDS: usize = 16;

/// Readiness events taken per poll.
const EVENTS_CAPACITY: usize = 64;

/// What the client needs to start.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// `--name`.
    pub name: Option<UserName>,
    /// `--server`.
    pub server: SocketAddr,
    /// Where to listen for chats.
    pub listen: SocketAddr,
    /// `--history`.
    pub history: PathBuf,
}

/// A chat stream and its session.
struct Chat {
    conn: Option<StreamConn>,
    session: ChatSession,
    /// A text refused with `Backpressure`, sent as soon as there is room;
    /// no more input is read meanwhile.
    blocked: Option<String>,
    /// Until when the connect may take.
    connect_deadline: Option<Instant>,
}

/// An incoming chat waiting for the user.
struct Held {
    chat: Chat,
    peer: Option<UserName>,
    events: VecDeque<(ChatEvent, String)>,
}

/// A held (not yet accepted) session: it reads while its holder has room, and
/// writes nothing. Its `Hello` goes out when the user accepts, and that is
/// the acceptance: until then the caller's session is not `Connected`, so it
/// sends no texts (the protocol forbids any frame before the peer's `Hello`)
/// and tells its user it is waiting.
struct Gated<'a> {
    session: &'a mut ChatSession,
    open: bool,
}

impl StreamCore for Gated<'_> {
    fn handle_input(&mut self, now: Instant, bytes: &[u8]) {
        StreamCore::handle_input(self.session, now, bytes);
    }
    fn handle_eof(&mut self, now: Instant) {
        self.session.handle_eof(now);
    }
    fn pending_output(&self) -> &[u8] {
        &[]
    }
    fn consume(&mut self, _n: usize) {}
    fn wants_read(&self) -> bool {
        self.open && self.session.wants_read()
    }
    fn is_finished(&self) -> bool {
        self.session.is_finished()
    }
}

/// Runs the client until the app exits; returns the exit status.
pub fn run(opts: ClientOptions, interactive: bool) -> anyhow::Result<i32> {
    // Read the local offset while the process has one thread.
    let offset = UtcOffset::current_local_offset().unwrap_or(UtcOffset::UTC);
    let history = History::open(&opts.history)
        .with_context(|| format!("cannot open the history file {}", opts.history.display()))?;
    let poll = Poll::new()?;
    let mut listener = TcpListener::bind(opts.listen)
        .with_context(|| format!("cannot listen for chats on {}", opts.listen))?;
    poll.registry().register(&mut listener, LISTENER, Interest::READABLE)?;
    let chat_port = listener.local_addr()?.port();
    let udp_bind = SocketAddr::new(opts.listen.ip(), 0);
    let socket = std::net::UdpSocket::bind(udp_bind)
        .with_context(|| format!("cannot open a UDP socket on {udp_bind}"))?;
    let udp = UdpDriver::new(socket, poll.registry(), UDP)?;
    let input = UserInput::stdin(poll.registry(), STDIN)?;
    // Handled before the terminal is made raw, so that none of them finds it
    // raw with its default action. Ctrl-\ still raises SIGQUIT, whose default
    // would leave the terminal raw; a hangup likewise: both end the client
    // like SIGINT. Ctrl-Z stops the process once the terminal is restored;
    // `fg` sets it up again.
    let mut signals = if Term::wants_editor(interactive) {
        Signals::new([SIGINT, SIGTERM, SIGQUIT, SIGHUP, SIGTSTP, SIGCONT])?
    } else {
        Signals::new([SIGINT, SIGTERM])?
    };
    poll.registry().register(&mut signals, SIGNALS, Interest::READABLE)?;
    // From here on the terminal may be raw: `term` puts it back when dropped,
    // on every return, `?` included, and when a panic unwinds.
    let term = Term::stdio(interactive);
    tracing::info!(listen = %listener.local_addr()?, "taking chats");
    let app = App::new(AppConfig { name: opts.name, server: opts.server, history: opts.history });
    let mut client = Client {
        registry: RegistryClient::new(opts.server, random_u64()),
        poll,
        udp,
        listener,
        signals,
        input,
        chat_port,
        active: None,
        held: None,
        app,
        term,
        history,
        history_failed: false,
        offset,
        me: None,
        next_token: FIRST_STREAM,
        inbox: VecDeque::new(),
        exit: None,
    };
    client.run()
}

struct Client {
    poll: Poll,
    udp: UdpDriver,
    registry: RegistryClient,
    listener: TcpListener,
    signals: Signals,
    input: UserInput,
    chat_port: u16,
    active: Option<Chat>,
    held: Option<Held>,
    app: App,
    term: Term,
    history: History,
    history_failed: bool,
    offset: UtcOffset,
    me: Option<UserName>,
    next_token: usize,
    inbox: VecDeque<Input>,
    exit: Option<i32>,
}

impl Client {
    fn run(&mut self) -> anyhow::Result<i32> {
        let mut events = Events::with_capacity(EVENTS_CAPACITY);
        self.app.start();
        self.run_actions(Instant::now());
        loop {
            let now = Instant::now();
            self.fire_timers(now);
            for _ in 0..MAX_SETTLE_ROUNDS {
                self.pump_chats(now);
                self.collect_events();
                let fed = self.feed_input(now);
                if self.inbox.is_empty() && !fed {
                    break;
                }
                self.process(now);
            }
            self.udp.flush(&mut self.registry, self.poll.registry())?;
            if let Some(code) = self.exit {
                self.pump_chats(Instant::now());
                return Ok(code);
            }
            let timeout = self.next_timeout();
            match self.poll.poll(&mut events, timeout) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e.into()),
            }
            let now = Instant::now();
            for event in events.iter() {
                match event.token() {
                    UDP => {
                        if event.is_readable() {
                            self.udp.read_all(&mut self.registry, now);
                        }
                    }
                    LISTENER => self.accept(now),
                    STDIN => self.input.on_event(),
                    SIGNALS => {
                        for signal in self.signals.pending() {
                            match signal {
                                SIGTSTP => self.stop(),
                                SIGCONT => self.term.resume(),
                                _ => self.inbox.push_back(Input::Signal),
                            }
                        }
                    }
                    token => {
                        for chat in self.chats_mut() {
                            if let Some(conn) = chat.conn.as_mut().filter(|c| c.token() == token) {
                                conn.on_event(event);
                            }
                        }
                    }
                }
            }
        }
    }

    /// Ctrl-Z: stops the process as the default action would, with the
    /// terminal restored meanwhile. It goes on here when continued.
    fn stop(&mut self) {
        self.term.suspend();
        if let Err(e) = signal_hook::low_level::emulate_default_handler(SIGTSTP) {
            tracing::warn!(error = %e, "cannot stop the process");
        }
    }

    fn chats_mut(&mut self) -> impl Iterator<Item = &mut Chat> {
        self.active.iter_mut().chain(self.held.iter_mut().map(|h| &mut h.chat))
    }

    fn next_timeout(&mut self) -> Option<Duration> {
        let input_now = self.input_ready_now() || self.input.wants_zero_timeout(&self.term);
        if input_now || !self.inbox.is_empty() {
            return Some(Duration::ZERO);
        }
        let chats = self.active.iter().chain(self.held.iter().map(|h| &h.chat));
        let deadline = chats
            .flat_map(|c| [c.session.poll_timeout(), c.connect_deadline])
            .chain([self.registry.poll_timeout()])
            .flatten()
            .min();
        deadline.map(|d| d.saturating_duration_since(Instant::now()))
    }

    /// Whether a line is waiting that the app takes now.
    fn input_ready_now(&mut self) -> bool {
        if self.active.as_ref().is_some_and(|c| c.blocked.is_some()) {
            return false;
        }
        let registry = self.poll.registry();
        match self.input.peek(registry, &mut self.term) {
            Some(item) => self.app.accepts(item),
            None => false,
        }
    }

    fn fire_timers(&mut self, now: Instant) {
        if self.registry.poll_timeout().is_some_and(|t| t <= now) {
            self.registry.handle_timeout(now);
        }
        for chat in self.chats_mut() {
            if chat.session.poll_timeout().is_some_and(|t| t <= now) {
                chat.session.handle_timeout(now);
            }
        }
        let connect_expired =
            |c: &Chat| c.conn.is_some() && c.connect_deadline.is_some_and(|t| t <= now);
        if self.active.as_ref().is_some_and(connect_expired) {
            self.inbox.push_back(Input::ConnectFailed { reason: "timed out".to_owned() });
            if let Some(chat) = self.active.as_mut() {
                Self::drop_conn(&self.poll, chat, now);
            }
        }
    }

    /// Gives up on a chat's stream: the session hears of it as an end of
    /// stream.
    fn drop_conn(poll: &Poll, chat: &mut Chat, now: Instant) {
        if let Some(conn) = chat.conn.take() {
            conn.close(poll.registry());
        }
        chat.connect_deadline = None;
        chat.session.handle_eof(now);
    }

    fn pump_chats(&mut self, now: Instant) {
        if let Some(chat) = self.active.as_mut() {
            if let Some(conn) = chat.conn.as_mut() {
                match conn.pump(&mut chat.session, now) {
                    Ok(StreamState::Connecting) => {}
                    Ok(StreamState::Open) => chat.connect_deadline = None,
                    Ok(StreamState::Done) => {
                        if let Some(conn) = chat.conn.take() {
                            conn.close(self.poll.registry());
                        }
                    }
                    Err(e) => {
                        self.inbox.push_back(Input::ConnectFailed { reason: e.to_string() });
                        Self::drop_conn(&self.poll, chat, now);
                    }
                }
            }
            if let Some(text) = chat.blocked.take() {
                match chat.session.send_text(now, &text) {
                    Ok(_) => self.inbox.push_back(Input::Sent { text }),
                    Err(SendError::Backpressure) => chat.blocked = Some(text),
                    Err(reason) => self.inbox.push_back(Input::SendFailed { text, reason }),
                }
            }
        }
        if let Some(held) = self.held.as_mut() {
            let open = held.events.len() < MAX_HELD_EVENTS;
            if let Some(conn) = held.chat.conn.as_mut() {
                let mut gated = Gated { session: &mut held.chat.session, open };
                match conn.pump(&mut gated, now) {
                    Ok(StreamState::Connecting | StreamState::Open) => {}
                    Ok(StreamState::Done) | Err(_) => {
                        if let Some(conn) = held.chat.conn.take() {
                            conn.close(self.poll.registry());
                        }
                        held.chat.session.handle_eof(now);
                    }
                }
            }
        }
    }

    fn collect_events(&mut self) {
        while let Some(ev) = self.registry.poll_event() {
            self.inbox.push_back(Input::Registry(ev));
        }
        let clock = self.clock();
        if let Some(chat) = self.active.as_mut() {
            while let Some(event) = chat.session.poll_event() {
                self.inbox.push_back(Input::Chat { event, clock: clock.clone() });
            }
            if chat.session.is_finished() && chat.conn.is_none() {
                self.active = None;
            } else if chat.session.is_finished() && chat.session.pending_output().is_empty() {
                if let Some(conn) = chat.conn.take() {
                    conn.close(self.poll.registry());
                }
                self.active = None;
            }
        }
        let mut gone = false;
        if let Some(held) = self.held.as_mut() {
            while held.events.len() < MAX_HELD_EVENTS {
                let Some(event) = held.chat.session.poll_event() else {
                    break;
                };
                match event {
                    ChatEvent::Connected { peer } => {
                        held.peer = Some(peer.clone());
                        self.inbox.push_back(Input::ChatRequest { peer });
                    }
                    ChatEvent::Closed { reason } => {
                        tracing::debug!(?reason, "held chat ended before it was accepted");
                        let texts = held
                            .events
                            .iter()
                            .any(|(e, _)| matches!(e, ChatEvent::Received { .. }));
                        match held.peer.clone() {
                            // The peer said something and left: keep it all
                            // for the user to see on accepting, so that no
                            // received text goes unshown.
                            Some(_) if texts => {
                                held.events
                                    .push_back((ChatEvent::Closed { reason }, clock.clone()));
                            }
                            Some(peer) => {
                                self.inbox.push_back(Input::ChatRequestGone { peer });
                                gone = true;
                            }
                            None => gone = true,
                        }
                        break;
                    }
                    other => held.events.push_back((other, clock.clone())),
                }
            }
        }
        if gone {
            if let Some(mut held) = self.held.take() {
                if let Some(conn) = held.chat.conn.take() {
                    conn.close(self.poll.registry());
                }
            }
        }
    }

    /// Hands the app the input it can take now. Returns whether any was.
    fn feed_input(&mut self, now: Instant) -> bool {
        let mut fed = false;
        for _ in 0..MAX_LINES_PER_TURN {
            if self.exit.is_some() || !self.input_ready_now() {
                break;
            }
            let Some(item) = self.term.pop() else { break };
            self.term.input_taken();
            self.app.handle(Input::User(item));
            self.run_actions(now);
            fed = true;
        }
        fed
    }

    /// Feeds the inbox to the app and carries out its actions.
    fn process(&mut self, now: Instant) {
        while let Some(input) = self.inbox.pop_front() {
            tracing::trace!(?input, "app input");
            self.app.handle(input);
            self.run_actions(now);
        }
    }

    fn run_actions(&mut self, now: Instant) {
        while let Some(action) = self.app.poll_action() {
            self.act(action, now);
        }
    }

    fn act(&mut self, action: Action, now: Instant) {
        tracing::trace!(?action, "app action");
        match action {
            Action::Print(line) => self.term.line(&line),
            Action::Prompt(p) => self.term.prompt(&p),
            Action::Login(name) => {
                self.me = Some(name.clone());
                self.registry.login(now, name, self.chat_port);
            }
            Action::Refresh => self.registry.refresh_list(now),
            Action::Lookup(name) => self.registry.lookup(now, name),
            Action::Logout => self.registry.logout(now),
            Action::Connect { peer, addr } => self.connect(peer, addr, now),
            Action::Accept => self.accept_held(),
            Action::Send(text) => match self.active.as_mut() {
                Some(chat) => match chat.session.send_text(now, &text) {
                    Ok(_) => self.inbox.push_back(Input::Sent { text }),
                    Err(SendError::Backpressure) => chat.blocked = Some(text),
                    Err(reason) => self.inbox.push_back(Input::SendFailed { text, reason }),
                },
                None => self.inbox.push_back(Input::SendFailed { text, reason: SendError::Closed }),
            },
            Action::CloseChat => {
                if let Some(chat) = self.active.as_mut() {
                    if let Some(text) = chat.blocked.take() {
                        self.inbox.push_back(Input::SendFailed { text, reason: SendError::Closed });
                    }
                    chat.session.close(now);
                }
            }
            Action::Record { direction, peer, text } => {
                let at = OffsetDateTime::now_utc();
                if let Err(e) = self.history.record(at, direction, &peer, &text) {
                    if !self.history_failed {
                        self.history_failed = true;
                        self.term.line(&format!("warning: cannot write the history file: {e}"));
                    }
                }
            }
            Action::Exit(code) => self.exit = Some(code),
        }
    }

    fn connect(&mut self, peer: UserName, addr: SocketAddr, now: Instant) {
        let Some(me) = self.me.clone() else { return };
        tracing::debug!(%peer, %addr, "connecting");
        let mut session = ChatSession::new(now, me, ChatConfig::default());
        let token = self.token();
        let conn = match StreamConn::connect(addr, self.poll.registry(), token) {
            Ok(conn) => Some(conn),
            Err(e) => {
                self.inbox.push_back(Input::ConnectFailed { reason: e.to_string() });
                session.handle_eof(now);
                None
            }
        };
        if let Some(old) = self.active.take() {
            if let Some(conn) = old.conn {
                conn.close(self.poll.registry());
            }
        }
        let connect_deadline = conn.as_ref().map(|_| now + CONNECT_TIMEOUT);
        self.active = Some(Chat { conn, session, blocked: None, connect_deadline });
    }

    fn accept_held(&mut self) {
        let Some(held) = self.held.take() else {
            // Withdrawn just now: the app hears the chat is over.
            self.inbox.push_back(Input::Chat {
                event: ChatEvent::Closed { reason: CloseReason::PeerVanished },
                clock: self.clock(),
            });
            return;
        };
        for (event, clock) in held.events {
            self.inbox.push_back(Input::Chat { event, clock });
        }
        self.active = Some(held.chat);
    }

    fn accept(&mut self, now: Instant) {
        loop {
            let (stream, from) = match self.listener.accept() {
                Ok(s) => s,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    tracing::warn!(error = %e, "accepting a chat failed");
                    return;
                }
            };
            let Some(me) = self.me.clone().filter(|_| self.held.is_none()) else {
                // Busy (one request already held) or not logged in yet: close
                // at once; the other side reports that we did not take it.
                tracing::info!(%from, "refused a chat connection");
                drop(stream);
                continue;
            };
            let token = self.token();
            match StreamConn::accepted(stream, self.poll.registry(), token) {
                Ok(conn) => {
                    tracing::debug!(%from, "holding an incoming chat");
                    let session = ChatSession::new(now, me, ChatConfig::default());
                    let chat =
                        Chat { conn: Some(conn), session, blocked: None, connect_deadline: None };
                    self.held = Some(Held { chat, peer: None, events: VecDeque::new() });
                }
                Err(e) => tracing::warn!(error = %e, "registering a chat connection failed"),
            }
        }
    }

    fn token(&mut self) -> Token {
        let t = Token(self.next_token);
        self.next_token += 1;
        t
    }

    /// The local time of day, `HH:MM:SS`.
    fn clock(&self) -> String {
        let t = OffsetDateTime::now_utc().to_offset(self.offset);
        format!("{:02}:{:02}:{:02}", t.hour(), t.minute(), t.second())
    }
}

/// A random 64-bit value from the OS.
pub fn random_u64() -> u64 {
    let mut b = [0u8; 8];
    if let Err(e) = getrandom::fill(&mut b) {
        tracing::warn!(error = %e, "no OS randomness; request ids are predictable");
    }
    u64::from_le_bytes(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_chat_writes_nothing_until_accepted() {
        let now = Instant::now();
        let me = UserName::new("John").unwrap();
        let mut session = ChatSession::new(now, me, ChatConfig::default());
        assert!(!session.pending_output().is_empty(), "the session has its Hello queued");
        let mut held = Gated { session: &mut session, open: true };
        assert!(StreamCore::pending_output(&held).is_empty());
        held.consume(5);
        assert!(!session.pending_output().is_empty(), "the Hello waits for the acceptance");
    }
}
