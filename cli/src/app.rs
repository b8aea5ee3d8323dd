//! The client's menu logic as a pure state machine: which input means what
//! in which state, and what to print.
//!
//! It touches no socket, no terminal and no clock. The client loop feeds it
//! [`Input`]s (the user's lines, registry and chat events, signals) and
//! carries out the [`Action`]s it returns, in order. Input the app cannot
//! use yet (a line typed while a lookup is under way) is left where it is:
//! the loop asks [`App::accepts`] before handing over each line, so a script
//! piped in runs at the pace of the chat.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::path::PathBuf;

use p2pchat_core::{
    ChatEvent, ClientEvent, CloseReason, Entry, MAX_TEXT_LEN, Operation, RefuseReason, SendError,
    UserName,
};
use p2pchat_transport_mio::{InputItem, MAX_LINE_LEN};

use crate::history::{Direction, escape_for_display};

/// The line that ends the current chat (and cancels waiting for one).
pub const BACK: &str = "/back";

/// Exit status: everything went as asked.
pub const EXIT_OK: i32 = 0;
/// Exit status: a runtime error (registry unreachable, name refused, …).
pub const EXIT_ERROR: i32 = 1;

/// What the loop tells the app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// The next unit of user input; only given when [`App::accepts`] said yes.
    User(InputItem),
    /// SIGINT or SIGTERM.
    Signal,
    /// An event of the registry client.
    Registry(ClientEvent),
    /// An event of the active chat session; `clock` is the local time of day
    /// it happened, `"HH:MM:SS"`.
    Chat {
        /// The event.
        event: ChatEvent,
        /// Local time of day, `HH:MM:SS`.
        clock: String,
    },
    /// The TCP connect of the active chat failed; the session's
    /// `Undelivered` and `Closed` events follow.
    ConnectFailed {
        /// What went wrong.
        reason: String,
    },
    /// A peer connected and said who it is; the loop holds the connection
    /// until [`Action::Accept`].
    ChatRequest {
        /// The name from the peer's `Hello`.
        peer: UserName,
    },
    /// The held chat request went away before it was accepted.
    ChatRequestGone {
        /// Who had asked.
        peer: UserName,
    },
    /// [`Action::Send`] was queued in the session.
    Sent {
        /// The text.
        text: String,
    },
    /// [`Action::Send`] was refused.
    SendFailed {
        /// The text.
        text: String,
        /// Why (never `Backpressure`: the loop waits that out itself).
        reason: SendError,
    },
}

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
    /// Open a chat with `peer` at `addr`; becomes the active chat.
    Connect {
        /// Whom we expect.
        peer: UserName,
        /// Their chat address.
        addr: SocketAddr,
    },
    /// Make the held chat request the active chat.
    Accept,
    /// Send a text in the active chat.
    Send(String),
    /// End the active chat politely.
    CloseChat,
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

/// Fixed facts the app shows or checks.
#[derive(Debug, Clone)]
pub struct AppConfig {
    /// The name from `--name`, if given (then a refused name is fatal).
    pub name: Option<UserName>,
    /// The registry's address, for error messages.
    pub server: SocketAddr,
    /// The history file, as given.
    pub history: PathBuf,
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
    /// The held incoming chat request.
    request: Option<UserName>,
    /// The user's input has ended: log out when back at the menu.
    input_ended: bool,
    /// Why the active chat's connect failed, if it did.
    connect_error: Option<String>,
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
            input_ended: false,
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
    pub fn handle(&mut self, input: Input) {
        match input {
            Input::User(item) => self.user(item),
            Input::Signal => self.signal(),
            Input::Registry(ev) => self.registry(ev),
            Input::Chat { event, clock } => self.chat(event, &clock),
            Input::ConnectFailed { reason } => self.connect_error = Some(reason),
            Input::ChatRequest { peer } => self.chat_request(peer),
            Input::ChatRequestGone { peer } => {
                if self.request.take().is_some() {
                    self.async_line(format!("{peer} withdrew the chat request"));
                }
            }
            Input::Sent { text } => {
                if let Some(peer) = self.chat_peer() {
                    self.push(Action::Record { direction: Direction::Sent, peer, text });
                }
            }
            Input::SendFailed { text, reason } => {
                let why = match reason {
                    SendError::TooLong => {
                        format!("the message is longer than {MAX_TEXT_LEN} bytes")
                    }
                    SendError::Closed => "the chat is closed".to_owned(),
                    SendError::Backpressure => "too many messages are waiting".to_owned(),
                };
                let shown = escape_for_display(&text);
                self.print(format!("error: message not sent ({why}): {}", truncate(&shown, 60)));
            }
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
            State::Connecting { .. } | State::Chat { .. } => self.end_chat(),
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
                if let Some(peer) = self.request.take() {
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

    // ----- registry -----

    fn registry(&mut self, ev: ClientEvent) {
        match ev {
            ClientEvent::LoggedIn { .. } => {
                if self.state == State::LoggingIn {
                    if let Some(me) = &self.me {
                        self.print(format!("Logged in as {me}."));
                    }
                    self.state = State::FirstList;
                    self.push(Action::Refresh);
                }
            }
            ClientEvent::Refused { op, reason } => self.refused(op, reason),
            ClientEvent::List { entries } => {
                if matches!(self.state, State::FirstList | State::Refreshing) {
                    self.print_list(&entries);
                    self.menu();
                }
            }
            ClientEvent::Found { name, entry } => {
                let State::LookingUp { peer } = &self.state else {
                    return;
                };
                if peer.key() != name.key() {
                    return;
                }
                match entry {
                    None => {
                        self.print(format!("error: no user named '{name}' is online"));
                        self.menu();
                    }
                    Some(Entry { name, .. })
                        if self.me.as_ref().is_some_and(|me| me.key() == name.key()) =>
                    {
                        self.print("error: you cannot chat with yourself".to_owned());
                        self.menu();
                    }
                    Some(entry) => {
                        let addr = entry.chat_addr();
                        let name = &entry.name;
                        self.print(format!(
                            "Connecting to {name} at {addr}; waiting for {name} to accept..."
                        ));
                        self.connect_error = None;
                        self.state = State::Connecting { peer: entry.name.clone() };
                        self.push(Action::Connect { peer: entry.name, addr });
                    }
                }
            }
            ClientEvent::LoggedOut => {
                if let State::LoggingOut { code } = self.state {
                    self.print("Logged out.".to_owned());
                    self.exit(code);
                }
            }
            ClientEvent::Unreachable { op } => self.unreachable(op),
        }
    }

    fn refused(&mut self, op: Operation, reason: RefuseReason) {
        match op {
            Operation::Login => {
                let name = self.me.take().map(|n| n.to_string()).unwrap_or_default();
                self.print(format!("error: cannot log in as '{name}': {reason}"));
                let retry = matches!(reason, RefuseReason::NameTaken | RefuseReason::NameInvalid);
                if retry && self.config.name.is_none() && !self.input_ended {
                    self.ask_name();
                } else {
                    self.exit(EXIT_ERROR);
                }
            }
            Operation::Keepalive => {
                self.async_line(format!(
                    "error: the registry dropped our entry ({reason}); you are no longer listed"
                ));
            }
            Operation::List | Operation::Lookup | Operation::Logout => {
                self.print(format!("error: the registry refused the request: {reason}"));
                self.unanswered(op);
            }
        }
    }

    fn unreachable(&mut self, op: Operation) {
        let server = self.config.server;
        match op {
            Operation::Login => {
                if self.state == State::LoggingIn {
                    self.print(format!("error: the registry at {server} is unreachable"));
                    self.exit(EXIT_ERROR);
                }
            }
            Operation::Keepalive => {
                self.async_line(format!(
                    "warning: the registry at {server} did not answer the keepalive; still trying"
                ));
            }
            Operation::List | Operation::Lookup | Operation::Logout => {
                self.print(format!("error: the registry at {server} did not answer"));
                self.unanswered(op);
            }
        }
    }

    /// Moves on after a request that failed.
    fn unanswered(&mut self, op: Operation) {
        match (op, &self.state) {
            (Operation::List, State::FirstList | State::Refreshing)
            | (Operation::Lookup, State::LookingUp { .. }) => self.menu(),
            (Operation::Logout, State::LoggingOut { code }) => {
                let code = *code;
                self.print(
                    "Logged out locally; the registry forgets us when our lease ends.".to_owned(),
                );
                self.exit(code);
            }
            _ => {}
        }
    }

    // ----- chat -----

    fn chat_request(&mut self, peer: UserName) {
        if self.state == State::Waiting {
            return self.accept(peer);
        }
        self.request = Some(peer.clone());
        if self.in_chat() {
            self.print(format!("{peer} wants to chat: enter 2 at the menu to accept"));
        } else {
            self.async_line(format!("{peer} wants to chat: enter 2 to accept"));
        }
    }

    fn accept(&mut self, peer: UserName) {
        self.push(Action::Accept);
        self.chat_started(peer);
    }

    fn chat_started(&mut self, peer: UserName) {
        self.print(format!(
            "Chat with {peer} started: type a message and press Enter; {BACK} ends the chat."
        ));
        self.state = State::Chat { peer };
    }

    fn end_chat(&mut self) {
        if let Some(peer) = self.chat_peer() {
            self.state = State::Closing { peer };
            self.push(Action::CloseChat);
        }
    }

    fn chat(&mut self, event: ChatEvent, clock: &str) {
        match event {
            ChatEvent::Connected { peer } => {
                if let State::Connecting { peer: expected } = &self.state {
                    if expected.key() != peer.key() {
                        self.print(format!(
                            "warning: expected {expected}, but the peer says it is {peer}"
                        ));
                    }
                    self.chat_started(peer);
                }
            }
            ChatEvent::Received { text, .. } => {
                let Some(peer) = self.chat_peer() else { return };
                self.print(format!("[{clock}] {peer}: {}", escape_for_display(&text)));
                self.push(Action::Record { direction: Direction::Received, peer, text });
            }
            ChatEvent::Delivered { .. } => {}
            ChatEvent::Undelivered { text, .. } => {
                let Some(peer) = self.chat_peer() else { return };
                self.print(format!(
                    "warning: not delivered to {peer}: {}",
                    escape_for_display(&text)
                ));
                self.push(Action::Record { direction: Direction::Undelivered, peer, text });
            }
            ChatEvent::Closed { reason } => self.chat_closed(reason),
        }
    }

    fn chat_closed(&mut self, reason: CloseReason) {
        let state = std::mem::replace(&mut self.state, State::Menu);
        let connect_error = self.connect_error.take();
        match state {
            State::Connecting { peer } => {
                let why = match (connect_error, reason) {
                    (Some(e), _) => format!("could not connect to {peer}: {e}"),
                    (None, CloseReason::PeerVanished) => {
                        format!("{peer} did not take the chat (busy or gone)")
                    }
                    (None, CloseReason::PeerSilent) => {
                        format!("{peer} did not accept the chat in time")
                    }
                    (None, r) => {
                        format!("the chat with {peer} did not start: {}", close_reason(&r, &peer))
                    }
                };
                self.print(format!("error: {why}"));
            }
            State::Chat { peer } | State::Closing { peer } => {
                self.print(format!("Chat with {peer} ended: {}.", close_reason(&reason, &peer)));
            }
            State::LoggingOut { .. } | State::Done => {
                self.state = state;
                return;
            }
            other => {
                self.state = other;
                return;
            }
        }
        if self.input_ended {
            self.logout(EXIT_OK);
        } else {
            self.menu();
        }
    }

    fn chat_peer(&self) -> Option<UserName> {
        match &self.state {
            State::Connecting { peer } | State::Chat { peer } | State::Closing { peer } => {
                Some(peer.clone())
            }
            _ => None,
        }
    }

    // ----- output helpers -----

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

    fn ask_name(&mut self) {
        self.state = State::AskName;
        self.push(Action::Prompt("Enter your username:".to_owned()));
    }

    fn print_list(&mut self, entries: &[Entry]) {
        self.print("-----[ONLINE USERS]-----".to_owned());
        for e in entries {
            self.print(format!("| {} : {}", e.name, e.chat_addr()));
        }
        self.print("-----".to_owned());
    }

    fn menu(&mut self) {
        self.state = State::Menu;
        if self.input_ended {
            return self.logout(EXIT_OK);
        }
        for line in [
            "-----[COMMANDS]-----",
            "- Enter [1] to connect to peer",
            "- Enter [2] to wait P2P connection",
            "- Enter [3] to logout",
            "- Enter [4] to refresh online user list",
            "- /back command is closing the active chat session and enabling the menu",
        ] {
            self.print(line.to_owned());
        }
        self.print(format!(
            "**** Your messages automatically saved into [{}] file",
            self.config.history.display()
        ));
        self.reprompt();
    }

    /// Shows the current state's prompt again, if it has one.
    fn reprompt(&mut self) {
        let prompt = match self.state {
            State::AskName => "Enter your username:",
            State::Menu => "Enter choice:",
            State::AskPeer => "Peer username:",
            _ => return,
        };
        self.push(Action::Prompt(prompt.to_owned()));
    }

    /// A line that arrives on its own (not in answer to input): the prompt
    /// it interrupted is shown again below it.
    fn async_line(&mut self, line: String) {
        self.print(line);
        self.reprompt();
    }

    fn print(&mut self, line: String) {
        self.push(Action::Print(line));
    }

    fn push(&mut self, action: Action) {
        self.actions.push_back(action);
    }
}

fn close_reason(reason: &CloseReason, peer: &UserName) -> String {
    match reason {
        CloseReason::LocalClose => "you left the chat".to_owned(),
        CloseReason::PeerClose => format!("{peer} left the chat"),
        CloseReason::PeerVanished => format!("the connection to {peer} was lost"),
        CloseReason::PeerSilent => format!("{peer} stopped answering"),
        CloseReason::Error(e) => format!("protocol error ({e})"),
    }
}

/// At most `max` characters of `s`, with an ellipsis when cut.
fn truncate(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}...", &s[..i]),
        None => s.to_owned(),
    }
}

#[cfg(test)]
#[path = "app_tests.rs"]
mod tests;
