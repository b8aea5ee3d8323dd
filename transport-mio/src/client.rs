//! The client node: the registry socket, the chat listener, the chat
//! streams, the user's input and signals, all in one `mio::Poll` on one
//! thread. What it all means is up to a [`NodeHandler`].

mod chats;
mod handler;
mod incoming;
mod punch_node;
mod punching;
mod relay_link;

use std::collections::VecDeque;
use std::fs::File;
use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime};

use mio::net::TcpListener;
use mio::{Events, Interest, Poll, Token};
use p2pchat_core::{ChatEvent, ClientEvent, PrivateKey, PublicKey, RegistryClient, UserName};
use signal_hook::consts::{SIGCONT, SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGTSTP, SIGWINCH};
use signal_hook_mio::v1_0::Signals;

use crate::input::{InputDecoder as _, UserInput};
use crate::udp::UdpDriver;
use chats::{Answer, Chats};

pub use chats::{ACK_DELAY, CONNECT_TIMEOUT, FINISH_STALL_LIMIT, MAX_HELD_EVENTS};
pub use handler::{NodeEvent, NodeHandler};
pub use incoming::{MAX_INCOMING, VERIFY_TIMEOUT};
pub use punching::MAX_ANSWERED;
pub use relay_link::RELAY_PAIR_TIMEOUT;

const UDP: Token = Token(0);
const LISTENER: Token = Token(1);
const INPUT: Token = Token(2);
const SIGNALS: Token = Token(3);
const OUTPUT: Token = Token(4);

/// Most input items handed to the handler in one round, so that a long
/// script does not starve the sockets. A round's texts are written to the
/// chat stream together, so this is also the piece a burst is sent in: the
/// peer wakes once per piece, and shows and records each piece with one
/// write each (a quarter of the session's window, [`MAX_UNACKED`], so that
/// the sender does not wait for the acknowledgements; see
/// docs/PERFORMANCE.md).
///
/// [`MAX_UNACKED`]: p2pchat_core::MAX_UNACKED
const MAX_LINES_PER_ROUND: usize = 1024;
const _: () = assert!(4 * MAX_LINES_PER_ROUND <= p2pchat_core::MAX_UNACKED);

/// Rounds of "move bytes, collect events, hand them over" per turn before
/// sleeping.
const MAX_SETTLE_ROUNDS: usize = 16;

/// Readiness events taken per poll.
const EVENTS_CAPACITY: usize = 64;

/// Where a [`ClientNode`] reads the user's input.
#[derive(Debug)]
pub enum InputSource {
    /// Standard input: a terminal, a pipe or a regular file.
    Stdin,
    /// This file (a pipe, a socket, a regular file), as [`UserInput::from_file`].
    File(File),
}

/// What a [`ClientNode`] needs to start.
#[derive(Debug)]
pub struct NodeConfig {
    /// The registry server's address.
    pub server: SocketAddr,
    /// Where to listen for chats (TCP); its port is what the node registers.
    /// The registry socket binds to the same IP, on a port the OS picks.
    pub listen: SocketAddr,
    /// Seeds the registry request ids (pass a random value).
    pub seed: u64,
    /// The user's long-term identity: its public half is what the node logs
    /// in to the registry with, and every chat's handshake proves it.
    pub identity: PrivateKey,
    /// The user's input.
    pub input: InputSource,
    /// Whether the user's terminal is in a mode that the default actions of
    /// job control would leave broken (a raw terminal): SIGQUIT and SIGHUP
    /// then end the client like SIGINT, and SIGTSTP and SIGCONT go through
    /// [`NodeHandler::suspend`] and [`NodeHandler::resume`], SIGWINCH
    /// through [`NodeHandler::resize`].
    pub terminal_signals: bool,
}

/// Why a [`ClientNode`] could not start.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// The chat listener could not be bound.
    #[error("cannot listen for chats on {addr}")]
    Listen {
        /// The address asked for.
        addr: SocketAddr,
        /// The bind error.
        #[source]
        source: io::Error,
    },
    /// The registry socket could not be bound.
    #[error("cannot open a UDP socket on {addr}")]
    Udp {
        /// The address asked for.
        addr: SocketAddr,
        /// The bind error.
        #[source]
        source: io::Error,
    },
    /// Setting up the poll, the input or the signals failed.
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// The client's side of p2pchat over real sockets: a [`RegistryClient`] on
/// a UDP socket, a TCP listener for incoming chats, at most one active chat
/// and one held incoming chat (each a [`ChatSession`](p2pchat_core::ChatSession)
/// on a [`StreamConn`](crate::StreamConn)), the user's input and signals.
///
/// The node prints nothing: it reports what happens as [`NodeEvent`]s to a
/// [`NodeHandler`], which answers with the node's commands ([`login`],
/// [`connect`], [`accept`], [`send_text`], …).
///
/// # Chats
///
/// A connection that arrives while nothing is held (and after [`login`]) is
/// held: its session reads the peer's `Hello` and reports
/// [`NodeEvent::ChatRequest`], but writes nothing, not even our `Hello`,
/// until [`accept`]; the caller's session stays waiting meanwhile. Events of
/// the held chat (at most [`MAX_HELD_EVENTS`]) are reported on accepting,
/// even if the peer has left meanwhile; a held chat that goes away without
/// a text is reported as [`NodeEvent::ChatRequestGone`]. Any further
/// incoming connection is closed at once, which its side reports as the peer
/// being busy. [`connect`] makes a new active chat, replacing the old one.
///
/// # Driver contract
///
/// [`run`] loops until [`stop`]. Each turn:
///
/// 1. due timers fire: registry retransmissions and keepalives, chat
///    keepalives, the connect timeout (none is looked at before the
///    earliest one the last turn found);
/// 2. up to a few rounds (until one leaves every stream read empty, no
///    event queued and no input ready) of: move bytes on the chat streams
///    (write what waits, then read; the answers to what was read, such as
///    acknowledgements, wait for the next write); queue the registry's and
///    the chats' events; hand the handler the user input it
///    [`accepts`](NodeHandler::accepts) (none while a text waits for room),
///    and write the texts it sent to the chat stream at once; then every
///    queued event, in order. Commands the handler calls meanwhile
///    take effect at once, and what they report ([`NodeEvent::Sent`], …)
///    joins the queue and is handed over in the same round. After a round
///    that handed over texts the peer sent, the handler's
///    [`output`](NodeHandler::output) is written (after
///    [`before_output`](NodeHandler::before_output)): a text is shown
///    before the peer hears that it arrived;
/// 3. queued datagrams are sent, and the handler's output is written as far
///    as it is taken without waiting (once per turn: a burst of lines is one
///    write);
/// 4. the chat streams are written (the last round's acknowledgements) and
///    read; after [`stop`], [`run`] returns here;
/// 5. the loop sleeps until a socket, the input, the output (while some of
///    it waits) or a signal is ready, or the next deadline.
///
/// Nothing in a turn waits for the user's terminal: the input is read only
/// when it is readable now, and the output is never written with a write
/// that waits.
///
/// [`login`]: ClientNode::login
/// [`connect`]: ClientNode::connect
/// [`accept`]: ClientNode::accept
/// [`send_text`]: ClientNode::send_text
/// [`run`]: ClientNode::run
/// [`stop`]: ClientNode::stop
pub struct ClientNode {
    poll: Poll,
    udp: UdpDriver,
    registry: RegistryClient,
    listener: TcpListener,
    signals: Signals,
    input: UserInput,
    chat_port: u16,
    me: Option<UserName>,
    chats: Chats,
    punching: punching::Punching,
    events: VecDeque<NodeEvent>,
    /// When the node's next timer is due, as the last turn left it: a turn
    /// whose readiness came before it fires none (checking every timer is
    /// a walk over the chats, the registry and the punching, on the round
    /// trip's critical path).
    next_timer: NextTimer,
    stopping: bool,
}

/// What a [`ClientNode`] knows of its next timer.
#[derive(Debug, Clone, Copy)]
enum NextTimer {
    /// Not known (a turn ended early, or none has run): check them all.
    Unknown,
    /// None is due before this instant.
    At(Instant),
    /// No timer is set.
    Never,
}

impl NextTimer {
    fn due(self, now: Instant) -> bool {
        match self {
            NextTimer::Unknown => true,
            NextTimer::At(t) => t <= now,
            NextTimer::Never => false,
        }
    }
}

impl ClientNode {
    /// Binds the chat listener and the registry socket, and takes the input
    /// and the signals. Call it before the terminal is made raw: from here on
    /// the signals no longer have their default actions.
    pub fn new(config: NodeConfig) -> Result<Self, NodeError> {
        let poll = Poll::new()?;
        let mut listener = punch_node::bind_listener(config.listen)
            .map_err(|source| NodeError::Listen { addr: config.listen, source })?;
        poll.registry().register(&mut listener, LISTENER, Interest::READABLE)?;
        let chat_port = listener.local_addr()?.port();
        let udp_bind = SocketAddr::new(config.listen.ip(), 0);
        let socket = std::net::UdpSocket::bind(udp_bind)
            .map_err(|source| NodeError::Udp { addr: udp_bind, source })?;
        let udp = UdpDriver::new(socket, poll.registry(), UDP)?;
        let input = match config.input {
            InputSource::Stdin => UserInput::stdin(poll.registry(), INPUT)?,
            InputSource::File(file) => UserInput::from_file(file, poll.registry(), INPUT)?,
        };
        // Ctrl-\ raises SIGQUIT, whose default would leave a raw terminal
        // raw; a hangup likewise: both end the client like SIGINT. Ctrl-Z
        // stops the process once the handler has restored the terminal.
        let mut signals = if config.terminal_signals {
            Signals::new([SIGINT, SIGTERM, SIGQUIT, SIGHUP, SIGTSTP, SIGCONT, SIGWINCH])?
        } else {
            Signals::new([SIGINT, SIGTERM])?
        };
        poll.registry().register(&mut signals, SIGNALS, Interest::READABLE)?;
        let chat_addr = listener.local_addr()?;
        tracing::info!(listen = %chat_addr, "taking chats");
        let public_key = config.identity.public_key();
        let mut registry = RegistryClient::new(config.server, config.seed, public_key);
        registry.set_locals(&punch_node::local_ipv4s(chat_addr.ip()));
        Ok(Self {
            poll,
            udp,
            registry,
            listener,
            signals,
            input,
            chat_port,
            me: None,
            chats: Chats::new(config.identity),
            punching: punching::Punching::new(chat_addr, config.server, public_key),
            events: VecDeque::new(),
            next_timer: NextTimer::Unknown,
            stopping: false,
        })
    }

    /// Every chat from now on goes in clear once its handshake is done:
    /// only in builds with the `bench-cleartext` feature, for the benchmark
    /// that measures what encryption costs end to end. The peer must do
    /// the same, else the chat fails.
    #[cfg(feature = "bench-cleartext")]
    pub fn bench_cleartext(&mut self) {
        self.chats.cleartext = true;
    }

    /// The address the chat listener is bound to.
    pub fn listen_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Logs in as `name`, registering the listener's port; the outcome is a
    /// [`NodeEvent::Registry`]. Incoming chats are taken from now on.
    pub fn login(&mut self, now: Instant, name: UserName) {
        self.me = Some(name.clone());
        self.registry.login(now, name, self.chat_port);
    }

    /// Asks the registry for the online list.
    pub fn refresh_list(&mut self, now: Instant) {
        self.registry.refresh_list(now);
    }

    /// Asks the registry where `name` is.
    pub fn lookup(&mut self, now: Instant, name: UserName) {
        self.registry.lookup(now, name);
    }

    /// Logs out of the registry.
    pub fn logout(&mut self, now: Instant) {
        self.registry.logout(now);
    }

    /// Opens a chat with `peer`, whose chat address is `addr` and whose key
    /// is `key` (as the registry lists it; the handshake refuses any other);
    /// it becomes the active chat (an old one is dropped). Does nothing
    /// before [`ClientNode::login`], which gives our name.
    ///
    /// The call goes through the registry's introduction, hole punching and,
    /// failing those, the relay (see `client/punching.rs`); a
    /// [`NodeEvent::Route`] says which before the chat's `Connected`.
    pub fn connect(&mut self, now: Instant, peer: UserName, key: PublicKey, addr: SocketAddr) {
        if self.me.is_none() {
            return;
        }
        tracing::debug!(%addr, %peer, "calling");
        self.call(now, peer, key, addr);
    }

    /// Makes the held chat the active one and answers it. If it went away
    /// just now, a `Closed` chat event says so.
    pub fn accept(&mut self, now: Instant) {
        self.chats.accept_held(now, &mut self.events);
    }

    /// Closes the held chat request without accepting it (its caller hears
    /// that it was not taken), for instance when its key is not the one the
    /// user pinned for that name.
    pub fn reject(&mut self) {
        self.chats.reject_held(self.poll.registry());
    }

    /// Declines the held chat request: its caller is told the user said no.
    pub fn decline(&mut self, now: Instant) {
        self.chats.decline_held(now);
    }

    /// Gives up the call under way, if it has not started: it ends at once
    /// (its `Closed` event follows) and the callee sees it withdrawn.
    pub fn cancel_call(&mut self, now: Instant) {
        self.cancel_punching(now);
        self.chats.cancel_call(now, self.poll.registry(), &mut self.events);
    }

    /// Sends a text in the active chat: [`NodeEvent::Sent`] or
    /// [`NodeEvent::SendFailed`] follows. A text that finds the session full
    /// waits (and no user input is taken) until there is room.
    pub fn send_text(&mut self, now: Instant, text: String) {
        self.on_chat(now, punching::Deferred::Text(text));
    }

    /// Ends the active chat politely once the peer has acknowledged every
    /// text sent in it, or once [`FINISH_STALL_LIMIT`] passes without an
    /// acknowledgement advancing (then as [`ClientNode::close_chat`]). The
    /// chat goes on meanwhile. For the end of a script: its last texts may
    /// wait out a TCP retransmission stall.
    pub fn finish_chat(&mut self, now: Instant) {
        self.on_chat(now, punching::Deferred::Finish);
    }

    /// Ends the active chat politely; its `Closed` event follows.
    pub fn close_chat(&mut self, now: Instant) {
        self.on_chat(now, punching::Deferred::Close);
    }

    /// Makes [`ClientNode::run`] return at the end of this turn, after
    /// sending what is queued. Final: a later `run` returns after one turn.
    pub fn stop(&mut self) {
        self.stopping = true;
    }

    /// Runs the loop (see the type's driver contract) until
    /// [`ClientNode::stop`]. `Err` only when polling or the registry socket
    /// fails.
    pub fn run<H: NodeHandler>(&mut self, handler: &mut H) -> io::Result<()> {
        let mut events = Events::with_capacity(EVENTS_CAPACITY);
        // Commands given since the last run may have set timers.
        self.next_timer = NextTimer::Unknown;
        loop {
            let now = Instant::now();
            if self.next_timer.due(now) {
                self.fire_timers(now);
            }
            if handler.deadline().is_some_and(|t| t <= now) {
                handler.on_deadline(now, self);
            }
            for _ in 0..MAX_SETTLE_ROUNDS {
                // What the peer sent is shown before it is acknowledged:
                // the acknowledgements wait for the next pump.
                self.chats.pump(now, self.poll.registry(), &mut self.events, Answer::Later);
                self.collect_events(now);
                let fed = self.feed_input(now, handler);
                if fed {
                    // The texts just typed go out before their echo and
                    // history lines are made (the round trip's critical
                    // path); a line the handler shows is not lost meanwhile.
                    self.chats.pump(now, self.poll.registry(), &mut self.events, Answer::Later);
                }
                if self.events.is_empty() && !fed {
                    break;
                }
                if self.process(now, handler) {
                    show(handler);
                }
                // Another round would find nothing: every stream was read
                // until it was empty, no event waits and no input is ready.
                // (What the handler's commands gave the sessions to write
                // is written below, before the loop sleeps.)
                if self.events.is_empty() && self.chats.drained() && !self.input_ready_now(handler)
                {
                    break;
                }
            }
            self.udp.flush(&mut self.registry, self.poll.registry())?;
            show(handler);
            if let Some(output) = handler.output() {
                output.update_interest(self.poll.registry(), OUTPUT);
            }
            // The acknowledgements of what was just shown. What this reads
            // is queued as events, so the loop does not sleep on them.
            let now = Instant::now();
            self.chats.pump(now, self.poll.registry(), &mut self.events, Answer::Now);
            self.collect_events(now);
            if self.stopping {
                return Ok(());
            }
            let timeout = self.next_timeout(handler);
            match self.poll.poll(&mut events, timeout) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
            let now = Instant::now();
            for event in events.iter() {
                match event.token() {
                    UDP => {
                        if event.is_readable() {
                            self.udp.read_all(&mut self.registry, now);
                        }
                    }
                    LISTENER => self.take_incoming(now),
                    INPUT => {
                        self.input.on_event();
                        if event.is_read_closed() || event.is_error() {
                            self.input.on_hangup();
                        }
                    }
                    // Written before the next sleep.
                    OUTPUT => {}
                    SIGNALS => {
                        for signal in self.signals.pending() {
                            match signal {
                                SIGTSTP => {
                                    handler.suspend();
                                    stop_process();
                                }
                                SIGCONT => handler.resume(),
                                SIGWINCH => handler.resize(),
                                _ => self.events.push_back(NodeEvent::Signal(signal)),
                            }
                        }
                    }
                    _ => {
                        self.punching.on_event(event);
                        self.chats.on_event(event);
                    }
                }
            }
        }
    }

    fn fire_timers(&mut self, now: Instant) {
        if self.registry.poll_timeout().is_some_and(|t| t <= now) {
            self.registry.handle_timeout(now);
        }
        self.chats.fire_timers(now, self.poll.registry(), &mut self.events);
        self.drive_punching(now);
    }

    fn collect_events(&mut self, now: Instant) {
        while let Some(ev) = self.registry.poll_event() {
            let Some(ev) = self.punching_event(now, ev) else { continue };
            // The registry's answers about callers are the admission's.
            if let ClientEvent::Found { name, entry } = &ev {
                let registry = self.poll.registry();
                if self.chats.verify(now, name, entry.as_ref(), registry, &mut self.events) {
                    continue;
                }
            }
            self.events.push_back(NodeEvent::from(ev));
        }
        self.drive_punching(now);
        self.chats.collect(now, SystemTime::now(), self.poll.registry(), &mut self.events);
        let lookups = self.chats.take_lookups();
        self.punching_heard(&lookups);
        for name in lookups {
            self.registry.lookup(now, name);
        }
    }

    /// Whether an input item is waiting that the handler takes now.
    fn input_ready_now<H: NodeHandler>(&mut self, handler: &mut H) -> bool {
        if self.chats.blocked() {
            return false;
        }
        // Reads a chunk into the decoder if it wants one.
        let _ = self.input.peek(self.poll.registry(), handler.decoder_mut());
        let handler = &*handler;
        handler.decoder().peek().is_some_and(|item| handler.accepts(item))
    }

    /// Hands the handler the input it takes now. Returns whether any was.
    fn feed_input<H: NodeHandler>(&mut self, now: Instant, handler: &mut H) -> bool {
        let mut fed = false;
        for _ in 0..MAX_LINES_PER_ROUND {
            if self.stopping || !self.input_ready_now(handler) {
                break;
            }
            let Some(item) = handler.decoder_mut().pop() else { break };
            handler.handle(now, NodeEvent::Input(item), self);
            fed = true;
        }
        fed
    }

    /// Hands the handler the queued events, and those its commands add.
    /// Returns whether any was a text the peer sent, which the handler may
    /// have shown, and which the next pump acknowledges: it must be shown
    /// first. (What else the handler printed waits for the turn's end, or
    /// for its output to reach a flush of its own: a burst of our own
    /// texts is written in larger pieces, which costs the kernel less per
    /// byte, see docs/PERFORMANCE.md.)
    fn process<H: NodeHandler>(&mut self, now: Instant, handler: &mut H) -> bool {
        let mut received = false;
        while let Some(event) = self.events.pop_front() {
            tracing::trace!(?event, "node event");
            received |= matches!(event, NodeEvent::Chat { event: ChatEvent::Received { .. }, .. });
            handler.handle(now, event, self);
        }
        received
    }

    fn next_timeout<H: NodeHandler>(&mut self, handler: &mut H) -> Option<Duration> {
        let input_now =
            self.input_ready_now(handler) || self.input.wants_zero_timeout(handler.decoder());
        if input_now || !self.events.is_empty() {
            self.next_timer = NextTimer::Unknown;
            return Some(Duration::ZERO);
        }
        let timer = [self.chats.deadline(), self.registry.poll_timeout(), self.punching.deadline()]
            .into_iter()
            .flatten()
            .min();
        self.next_timer = timer.map_or(NextTimer::Never, NextTimer::At);
        let deadline = timer.into_iter().chain(handler.deadline()).min();
        deadline.map(|d| d.saturating_duration_since(Instant::now()))
    }
}

/// Writes what the handler printed, after what must come first
/// ([`NodeHandler::before_output`]), as far as it is taken without waiting.
fn show<H: NodeHandler>(handler: &mut H) {
    handler.before_output();
    if let Some(output) = handler.output() {
        output.flush();
    }
}

/// Stops the process as SIGTSTP's default action would; it goes on from
/// here when continued.
fn stop_process() {
    if let Err(e) = signal_hook::low_level::emulate_default_handler(SIGTSTP) {
        tracing::warn!(error = %e, "cannot stop the process");
    }
}
