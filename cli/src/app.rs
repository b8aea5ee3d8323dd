//! The client's menu logic as a pure state machine: which input means what
//! in which state, and what to print.
//!
//! It touches no socket, no terminal and no clock. The client loop feeds it
//! [`NodeEvent`]s (the user's lines, registry and chat events, signals) and
//! carries out the [`Action`]s it returns, in order. Input the app cannot
//! use yet (a line typed while a lookup is under way) is left where it is:
//! the loop asks [`App::accepts`] before handing over each line, so a script
//! piped in runs at the pace of the chat.
//!
//! This file holds the interface, the states and the user's input;
//! `registry.rs` and `chat.rs` what the registry's answers and the chat's
//! events mean; `screen.rs` the prompts, the list and the menu.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use p2pchat_core::{Entry, PublicKey, UserName};
use p2pchat_transport_mio::NodeEvent;
use time::UtcOffset;

use crate::history::Direction;

mod chat;
mod input;
mod registry;
mod screen;

pub use input::Scope;
pub use screen::chat_line_parts;

/// Most missed callers remembered during one chat, to list after it.
pub const MAX_MISSED_SHOWN: usize = 16;

/// The line that ends the current chat (and cancels waiting for one).
pub const BACK: &str = "/back";
/// The line that shows the commands.
pub const HELP: &str = "/help";
/// The line that leaves the chat, logs out and exits.
pub const QUIT: &str = "/quit";

/// Exit status: everything went as asked.
pub const EXIT_OK: i32 = 0;
/// Exit status: a runtime error (registry unreachable, name refused, …).
pub const EXIT_ERROR: i32 = 1;

/// What the app asks the loop to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Print one line.
    Print(String),
    /// Show a prompt (the terminal decides whether a line end follows).
    Prompt(String),
    /// Log in under this name.
    Login(UserName),
    /// Fetch the online list.
    Refresh,
    /// Look a user up.
    Lookup(UserName),
    /// Compare `key` with what the known-peers file says of `peer` (pinning
    /// it if new), and answer with [`App::key_checked`] before anything else.
    CheckKey {
        /// The user.
        peer: UserName,
        /// The key the registry lists for them (and, for a caller, the one
        /// its handshake proved).
        key: PublicKey,
    },
    /// Open a chat with `peer` at `addr`; becomes the active chat. The
    /// handshake refuses any key but `key`.
    Connect {
        /// Whom we expect.
        peer: UserName,
        /// The key the registry lists for them.
        key: PublicKey,
        /// Their chat address.
        addr: SocketAddr,
    },
    /// Make the held chat request the active chat.
    Accept,
    /// Close the held chat request unanswered.
    Reject,
    /// Tell the held request's caller that the user said no.
    Decline,
    /// Give up the call under way (not yet started); its end follows.
    CancelCall,
    /// Send a text in the active chat.
    Send(String),
    /// End the active chat politely.
    CloseChat,
    /// End the active chat politely once the peer has acknowledged every
    /// text (the input ended), or once acknowledgements stop coming.
    FinishChat,
    /// Log out of the registry.
    Logout,
    /// A text of the chat, sent ([`Direction::Sent`], shown as `you`) or
    /// received ([`Direction::Received`], shown with the peer's name):
    /// recorded in the history and shown as `[HH:MM:SS] WHO: TEXT`
    /// ([`chat_line_parts`]), with the peer [`App::chat_peer_ref`] names, the
    /// time `at` in local time, the text escaped once for both. Carried out
    /// right after the event that queued it, so the peer is the one it was
    /// queued for. One action rather than a `Print` and a `Record`: the line
    /// goes straight into the output and history buffers, without a
    /// `String` of its own, a copy of the peer's name or of the clock.
    ChatText {
        /// When, as the screen and the history show it.
        at: SystemTime,
        /// [`Direction::Sent`] or [`Direction::Received`].
        direction: Direction,
        /// The text, unescaped.
        text: String,
    },
    /// Append a line to the history file.
    Record {
        /// When, as the screen shows it too.
        at: SystemTime,
        /// What happened: a text sent, received, not delivered, a chat's
        /// start or end.
        direction: Direction,
        /// The other side.
        peer: UserName,
        /// The text.
        text: String,
    },
    /// Exit with this status.
    Exit(i32),
}

/// What the known-peers file said of a key ([`Action::CheckKey`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyCheck {
    /// New (now pinned), pinned or verified: the chat may go on. The text
    /// shows the fingerprint and which of the three it is.
    Trusted(String),
    /// Not the pinned key, or the file could not be read: no chat. The text
    /// is the warning to show, with how to accept the key deliberately.
    Refused(String),
}

/// A key check under way, and what it is for.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Check {
    /// We want to call this user.
    Call(Entry),
    /// This user calls us (the node holds the request).
    Request(UserName),
}

/// Fixed facts the app shows or checks.
#[derive(Debug, Clone)]
pub struct AppConfig {
    /// The name from `--name`, if given (then a refused name is fatal).
    pub name: Option<UserName>,
    /// The registry's address, for error messages.
    pub server: SocketAddr,
    /// The history file, as given.
    pub history: PathBuf,
    /// The local time zone's offset, for the `HH:MM:SS` of chat lines.
    pub utc_offset: UtcOffset,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    AskName,
    LoggingIn,
    FirstList,
    Menu,
    Refreshing,
    AskPeer,
    LookingUp { peer: UserName },
    Connecting { peer: UserName },
    Waiting,
    Chat { peer: UserName },
    Closing { peer: UserName },
    LoggingOut { code: i32 },
    Done,
}

/// The menu state machine. See the module documentation.
#[derive(Debug)]
pub struct App {
    config: AppConfig,
    state: State,
    me: Option<UserName>,
    /// The held incoming chat request, and how its key was judged.
    request: Option<(UserName, String)>,
    /// The key check waiting for [`App::key_checked`].
    checking: Option<Check>,
    /// How the current (or requesting) peer's key was judged, for banners.
    peer_trust: Option<String>,
    /// The user's input has ended: log out when back at the menu.
    input_ended: bool,
    /// The active chat's peer sent its `Hello` (the chat started).
    chat_connected: bool,
    /// The active chat's texts the peer did not acknowledge, reported when
    /// it ends (its reason says whether the peer may have seen them).
    unconfirmed: Vec<String>,
    /// The user asked to log out and exit (`/quit`) once the chat is over.
    quit: bool,
    /// Why the active chat's connect failed, if it did.
    connect_error: Option<String>,
    /// The user cancelled the call under way: its end says so.
    cancelled: bool,
    /// How the latest chat's connection was made, and with whom: through
    /// the relay (`true`) or direct.
    route: Option<(UserName, bool)>,
    /// Callers turned away as busy during the chat, listed after it.
    missed: Vec<UserName>,
    /// The wall-clock time of the input being handled (see [`App::tick`]).
    now: SystemTime,
    /// The number of the current (or last) call; see [`Scope`].
    calls: u64,
    /// The last call whose chat started, and with whom.
    last_chat: Option<(u64, UserName)>,
    /// Lines typed while waiting for a chat, sent when it starts.
    held: Vec<String>,
    /// When the process was last continued after a stop (Ctrl-Z), and how
    /// long it had been stopped.
    resumed: Option<(SystemTime, Duration)>,
    /// "Connecting to the registry" was shown.
    said_connecting: bool,
    /// "Still trying to reach the registry" was shown, and the registry has
    /// not answered since.
    said_still_trying: bool,
    actions: VecDeque<Action>,
    /// The last second shown as `HH:MM:SS`, and its text.
    clock_cache: RefCell<Option<(u64, String)>>,
}

impl App {
    /// A new app; call [`App::start`] next.
    pub fn new(config: AppConfig) -> Self {
        Self {
            config,
            state: State::AskName,
            me: None,
            request: None,
            checking: None,
            peer_trust: None,
            input_ended: false,
            chat_connected: false,
            unconfirmed: Vec::new(),
            quit: false,
            said_still_trying: false,
            connect_error: None,
            cancelled: false,
            route: None,
            missed: Vec::new(),
            now: SystemTime::UNIX_EPOCH,
            calls: 0,
            last_chat: None,
            held: Vec::new(),
            resumed: None,
            said_connecting: false,
            actions: VecDeque::new(),
            clock_cache: RefCell::new(None),
        }
    }

    /// Logs in with the configured name or asks for one.
    pub fn start(&mut self) {
        match self.config.name.clone() {
            Some(name) => self.login(name),
            None => self.ask_name(),
        }
    }

    /// The wall-clock time of the inputs that follow (a chat event carries
    /// its own): what the screen's `HH:MM:SS` and the history show.
    pub fn tick(&mut self, now: SystemTime) {
        self.now = now;
    }

    /// The process was continued at `now` after being stopped (Ctrl-Z) for
    /// `stopped_for`: a chat that times out right after is blamed on the
    /// stop, not on the peer.
    pub fn resumed(&mut self, now: SystemTime, stopped_for: Duration) {
        self.resumed = Some((now, stopped_for));
    }

    /// The next action, in order.
    #[must_use]
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// Whether the app can act on `item` now, for input without a scope
    /// (see [`App::accepts_from`]). The loop keeps it (and stops reading
    /// more input) until the answer is yes.
    #[cfg(test)]
    pub fn accepts(&self, item: &p2pchat_transport_mio::InputItem) -> bool {
        self.accepts_from(item, None)
    }

    /// Whether the active chat exists in the loop's view (connecting, open
    /// or closing).
    pub fn in_chat(&self) -> bool {
        matches!(self.state, State::Connecting { .. } | State::Chat { .. } | State::Closing { .. })
    }

    /// Feeds one input.
    pub fn handle(&mut self, input: NodeEvent) {
        match input {
            NodeEvent::Input(item) => self.typed(item, None),
            NodeEvent::Signal(_) => self.signal(),
            NodeEvent::Registry(ev) => self.registry(*ev),
            NodeEvent::Chat { event, at } => {
                self.now = at;
                self.chat(event);
            }
            NodeEvent::ConnectFailed { reason } => self.connect_error = Some(reason),
            NodeEvent::ChatRequest { peer, key } => {
                self.checking = Some(Check::Request(peer.clone()));
                self.push(Action::CheckKey { peer, key });
            }
            NodeEvent::MissedCall { peer, .. } => {
                let line = format!("{peer} called, but another call was waiting: missed");
                if self.in_chat() {
                    self.print(line);
                    if self.missed.len() < MAX_MISSED_SHOWN {
                        self.missed.push(peer);
                    }
                } else {
                    self.async_line(line);
                }
            }
            NodeEvent::ChatRequestGone { peer } => {
                if self.request.take().is_some() {
                    self.async_line(format!("{peer} withdrew the chat request"));
                }
            }
            NodeEvent::Route { peer, relayed } => self.route = Some((peer, relayed)),
            NodeEvent::Sent { text } => {
                if self.chat_peer_ref().is_some() {
                    self.push(Action::ChatText { at: self.now, direction: Direction::Sent, text });
                }
            }
            NodeEvent::SendFailed { text, reason } => self.send_failed(&text, reason),
        }
    }

    fn signal(&mut self) {
        match self.state.clone() {
            State::AskName => self.exit(EXIT_OK),
            State::LoggingOut { .. } | State::Done => {
                self.print(
                    "Interrupted again: exiting without waiting for the registry.".to_owned(),
                );
                self.exit(EXIT_ERROR);
            }
            State::Connecting { .. } | State::Chat { .. } | State::Closing { .. } => {
                self.push(Action::CloseChat);
                self.logout(EXIT_OK);
            }
            State::LoggingIn
            | State::FirstList
            | State::Menu
            | State::Refreshing
            | State::AskPeer
            | State::LookingUp { .. }
            | State::Waiting => self.logout(EXIT_OK),
        }
    }

    // ----- transitions -----

    fn login(&mut self, name: UserName) {
        if !std::mem::replace(&mut self.said_connecting, true) {
            let server = self.config.server;
            self.print(format!("Connecting to the registry at {server}…"));
        }
        self.me = Some(name.clone());
        self.state = State::LoggingIn;
        self.push(Action::Login(name));
    }

    fn logout(&mut self, code: i32) {
        self.state = State::LoggingOut { code };
        self.push(Action::Logout);
    }

    fn exit(&mut self, code: i32) {
        self.state = State::Done;
        self.push(Action::Exit(code));
    }

    fn record(&mut self, direction: Direction, peer: UserName, text: String) {
        self.push(Action::Record { at: self.now, direction, peer, text });
    }

    /// The time of the input being handled, `HH:MM:SS` in local time.
    fn clock(&self) -> String {
        // The lines of a burst share their second: formatted once.
        let Ok(since) = self.now.duration_since(SystemTime::UNIX_EPOCH) else {
            return screen::clock(self.now, self.config.utc_offset);
        };
        let secs = since.as_secs();
        let mut cache = self.clock_cache.borrow_mut();
        match &*cache {
            Some((at, text)) if *at == secs => text.clone(),
            _ => {
                let text = screen::clock(self.now, self.config.utc_offset);
                *cache = Some((secs, text.clone()));
                text
            }
        }
    }

    fn push(&mut self, action: Action) {
        self.actions.push_back(action);
    }
}

#[cfg(test)]
#[path = "app_tests.rs"]
mod tests;
