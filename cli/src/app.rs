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

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::path::PathBuf;

use p2pchat_core::{Entry, PublicKey, UserName};
use p2pchat_transport_mio::{InputItem, MAX_LINE_LEN, NodeEvent};
use time::UtcOffset;

use crate::history::{Direction, escape_for_display};

mod chat;
mod registry;
mod screen;

use screen::truncate;

/// The line that ends the current chat (and cancels waiting for one).
pub const BACK: &str = "/back";

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
    /// Send a text in the active chat.
    Send(String),
    /// End the active chat politely.
    CloseChat,
    /// End the active chat politely once the peer has acknowledged every
    /// text (the input ended), or once acknowledgements stop coming.
    FinishChat,
    /// Log out of the registry.
    Logout,
    /// Append a line to the history file.
    Record {
        /// Sent, received or undelivered.
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
    /// Why the active chat's connect failed, if it did.
    connect_error: Option<String>,
    /// "Still trying to reach the registry" was shown, and the registry has
    /// not answered since.
    said_still_trying: bool,
    actions: VecDeque<Action>,
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
            said_still_trying: false,
            connect_error: None,
            actions: VecDeque::new(),
        }
    }

    /// Logs in with the configured name or asks for one.
    pub fn start(&mut self) {
        match self.config.name.clone() {
            Some(name) => self.login(name),
            None => self.ask_name(),
        }
    }

    /// The next action, in order.
    #[must_use]
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// Whether the app can act on `item` now. The loop keeps it (and stops
    /// reading more input) until the answer is yes.
    pub fn accepts(&self, item: &InputItem) -> bool {
        match &self.state {
            State::AskName
            | State::Menu
            | State::AskPeer
            | State::Connecting { .. }
            | State::Chat { .. } => true,
            // Waiting: only a `/back` first in line cancels; anything else
            // is for the chat that is awaited.
            State::Waiting => matches!(item, InputItem::Line(l) if l.trim() == BACK),
            State::LoggingIn
            | State::FirstList
            | State::Refreshing
            | State::LookingUp { .. }
            | State::Closing { .. }
            | State::LoggingOut { .. }
            | State::Done => false,
        }
    }

    /// Whether the active chat exists in the loop's view (connecting, open
    /// or closing).
    pub fn in_chat(&self) -> bool {
        matches!(self.state, State::Connecting { .. } | State::Chat { .. } | State::Closing { .. })
    }

    /// Feeds one input.
    pub fn handle(&mut self, input: NodeEvent) {
        match input {
            NodeEvent::Input(item) => self.user(item),
            NodeEvent::Signal(_) => self.signal(),
            NodeEvent::Registry(ev) => self.registry(ev),
            NodeEvent::Chat { event, at } => {
                let clock = screen::clock(at, self.config.utc_offset);
                self.chat(event, &clock);
            }
            NodeEvent::ConnectFailed { reason } => self.connect_error = Some(reason),
            NodeEvent::ChatRequest { peer, key } => {
                self.checking = Some(Check::Request(peer.clone()));
                self.push(Action::CheckKey { peer, key });
            }
            NodeEvent::MissedCall { peer, .. } => {
                let line = format!("{peer} called, but another call was waiting: missed");
                if self.in_chat() { self.print(line) } else { self.async_line(line) }
            }
            NodeEvent::ChatRequestGone { peer } => {
                if self.request.take().is_some() {
                    self.async_line(format!("{peer} withdrew the chat request"));
                }
            }
            NodeEvent::Sent { text } => {
                if let Some(peer) = self.chat_peer() {
                    self.push(Action::Record { direction: Direction::Sent, peer, text });
                }
            }
            NodeEvent::SendFailed { text, reason } => self.send_failed(&text, reason),
        }
    }

    // ----- user input -----

    fn user(&mut self, item: InputItem) {
        let line = match item {
            InputItem::Line(line) => line,
            InputItem::TooLong => {
                self.print(format!("error: line longer than {MAX_LINE_LEN} bytes ignored"));
                self.reprompt();
                return;
            }
            InputItem::Eof => return self.input_end(),
        };
        match self.state.clone() {
            State::AskName => self.name_line(&line),
            State::Menu => self.menu_line(line.trim()),
            State::AskPeer => self.peer_line(line.trim()),
            State::Connecting { .. } | State::Chat { .. } => {
                if line.trim() == BACK {
                    self.end_chat();
                } else {
                    self.push(Action::Send(line));
                }
            }
            State::Waiting => {
                self.print("Stopped waiting.".to_owned());
                self.menu();
            }
            State::LoggingIn
            | State::FirstList
            | State::Refreshing
            | State::LookingUp { .. }
            | State::Closing { .. }
            | State::LoggingOut { .. }
            | State::Done => {}
        }
    }

    fn input_end(&mut self) {
        self.input_ended = true;
        match self.state.clone() {
            State::AskName => {
                self.print("Input ended before a name was given.".to_owned());
                self.exit(EXIT_OK);
            }
            State::Menu | State::AskPeer => self.logout(EXIT_OK),
            State::Connecting { .. } | State::Chat { .. } => self.finish_chat(),
            // Not accepted in these states; nothing to do if it happens.
            State::Waiting
            | State::LoggingIn
            | State::FirstList
            | State::Refreshing
            | State::LookingUp { .. }
            | State::Closing { .. }
            | State::LoggingOut { .. }
            | State::Done => {}
        }
    }

    fn name_line(&mut self, line: &str) {
        match UserName::new(line.trim()) {
            Ok(name) => self.login(name),
            Err(e) => {
                self.print(format!("error: invalid name: {e}"));
                self.ask_name();
            }
        }
    }

    fn menu_line(&mut self, choice: &str) {
        match choice {
            "1" => {
                self.state = State::AskPeer;
                self.push(Action::Prompt("Peer username:".to_owned()));
            }
            "2" => {
                if let Some((peer, trust)) = self.request.take() {
                    self.peer_trust = Some(trust);
                    self.accept(peer);
                } else {
                    self.state = State::Waiting;
                    self.print(format!("Waiting for a peer to connect ({BACK} cancels)..."));
                }
            }
            "3" => self.logout(EXIT_OK),
            "4" => {
                self.state = State::Refreshing;
                self.push(Action::Refresh);
            }
            "" => self.reprompt(),
            other => {
                let shown = escape_for_display(other);
                self.print(format!(
                    "error: unknown choice '{}': enter 1, 2, 3 or 4",
                    truncate(&shown, 20)
                ));
                self.reprompt();
            }
        }
    }

    fn peer_line(&mut self, line: &str) {
        if line.is_empty() || line == BACK {
            return self.menu();
        }
        match UserName::new(line) {
            Ok(peer) if self.me.as_ref().is_some_and(|me| me.key() == peer.key()) => {
                self.print("error: you cannot chat with yourself".to_owned());
                self.menu();
            }
            Ok(peer) => {
                self.state = State::LookingUp { peer: peer.clone() };
                self.push(Action::Lookup(peer));
            }
            Err(e) => {
                self.print(format!("error: invalid user name: {e}"));
                self.menu();
            }
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

    fn push(&mut self, action: Action) {
        self.actions.push_back(action);
    }
}

#[cfg(test)]
#[path = "app_tests.rs"]
mod tests;
