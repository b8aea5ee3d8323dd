//! The user's input: what a line means in each state, and which state a
//! line belongs to.
//!
//! A line typed at a terminal belongs to the state its first key was
//! pressed in (its [`Scope`]), not to the state it happens to arrive in:
//! a `3` typed as a chat reply, finished with Enter after the peer left,
//! is not a menu choice. A line typed during a call (looking the peer up,
//! connecting, waiting, chatting) that arrives once that call is over is
//! shown back as not sent and not run. Lines typed while a call is set up
//! or awaited are sent when its chat starts. Input without a scope (a
//! script piped in) keeps the order-only rule: each line waits for the
//! state that can take it.

use p2pchat_core::{MAX_TEXT_LEN, UserName};
use p2pchat_transport_mio::{InputItem, MAX_LINE_LEN};

use super::screen::truncate;
use super::{Action, App, BACK, EXIT_OK, HELP, QUIT, State};
use crate::history::escape_for_display;
use crate::split::split_for_sending;

/// Where the user was when they began typing a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// The menu, or a prompt of the menu's (a name, a peer's name), or
    /// between those (a list being fetched, a chat being left).
    Menu,
    /// Call number `n`: a peer being looked up or connected to, a chat
    /// awaited (`2`), or the chat itself.
    Call(u64),
}

impl App {
    /// Which scope a line begun now belongs to.
    pub fn scope(&self) -> Scope {
        match self.state {
            State::LookingUp { .. }
            | State::Connecting { .. }
            | State::Waiting
            | State::Chat { .. } => Scope::Call(self.calls),
            State::AskName
            | State::LoggingIn
            | State::FirstList
            | State::Menu
            | State::Refreshing
            | State::AskPeer
            | State::Closing { .. }
            | State::LoggingOut { .. }
            | State::Done => Scope::Menu,
        }
    }

    /// Whether the app waits for a chat (`2`), where Ctrl-D on an empty
    /// line at a terminal stops waiting instead of ending the input.
    pub fn waiting(&self) -> bool {
        self.state == State::Waiting
    }

    /// Whether the app can act on `item`, typed in `origin` (`None`: input
    /// without a scope, such as a script), now.
    pub fn accepts_from(&self, item: &InputItem, origin: Option<Scope>) -> bool {
        match &self.state {
            State::AskName
            | State::Menu
            | State::AskPeer
            | State::Connecting { .. }
            | State::Chat { .. } => true,
            // At a terminal the wait takes every line: `/back` and Ctrl-D
            // stop it, other lines are held for the chat. A script's lines
            // wait in line for the chat, but for a `/back` first in line.
            State::Waiting => {
                origin.is_some() || matches!(item, InputItem::Line(l) if l.trim() == BACK)
            }
            State::LoggingIn
            | State::FirstList
            | State::Refreshing
            | State::LookingUp { .. }
            | State::Closing { .. }
            | State::LoggingOut { .. }
            | State::Done => false,
        }
    }

    /// Feeds one item of the user's input, typed in `origin` (see
    /// [`App::accepts_from`]).
    pub fn typed(&mut self, item: InputItem, origin: Option<Scope>) {
        let line = match item {
            InputItem::Line(line) => line,
            InputItem::TooLong => {
                self.print(format!("error: line longer than {MAX_LINE_LEN} bytes ignored"));
                self.reprompt();
                return;
            }
            InputItem::Eof => return self.input_end(),
        };
        if let Some(Scope::Call(n)) = origin {
            if self.scope() != Scope::Call(n) {
                return self.stale_line(&line, n);
            }
        }
        // The state's kind only: cloning it would copy the peer's name for
        // every line of a chat.
        match &self.state {
            State::AskName => self.name_line(&line),
            State::Menu => self.menu_line(line.trim()),
            State::AskPeer => self.peer_line(line.trim()),
            State::Connecting { .. } | State::Chat { .. } => self.chat_line(line, origin.is_some()),
            State::Waiting => match line.trim() {
                BACK => self.stop_waiting(),
                _ if origin.is_none() => self.stop_waiting(),
                QUIT => {
                    self.quit = true;
                    self.stop_waiting();
                }
                HELP => self.print(format!(
                    "Waiting for a peer to connect: {BACK} or Ctrl-D stops waiting, {QUIT} logs \
                     out and exits; what you type meanwhile is sent when the chat starts."
                )),
                _ => self.held.push(line),
            },
            State::LoggingIn
            | State::FirstList
            | State::Refreshing
            | State::LookingUp { .. }
            | State::Closing { .. }
            | State::LoggingOut { .. }
            | State::Done => {}
        }
    }

    /// A line begun in call `n`, which is over: shown back, neither sent
    /// nor run. (A `/back` did what it asked already.)
    fn stale_line(&mut self, line: &str, n: u64) {
        if line.trim().is_empty() || line.trim() == BACK {
            return self.reprompt();
        }
        let shown = truncate(&escape_for_display(line), 60);
        match &self.last_chat {
            Some((call, peer)) if *call == n => self.print(format!(
                "Not sent: the chat with {peer} ended before you pressed Enter: {shown}"
            )),
            _ => self.print(format!("Not sent: the chat did not start: {shown}")),
        }
        self.reprompt();
    }

    fn stop_waiting(&mut self) {
        self.print("Stopped waiting.".to_owned());
        for line in std::mem::take(&mut self.held) {
            let shown = truncate(&escape_for_display(&line), 60);
            self.print(format!("Not sent: the chat did not start: {shown}"));
        }
        self.menu();
    }

    /// A line in a chat (or one being set up): a command, or a text to
    /// send. Commands never reach the peer.
    /// `at_terminal`: typed at the terminal (a script's lines wait for the
    /// chat instead: its `/back` closes the chat once it has started).
    fn chat_line(&mut self, line: String, at_terminal: bool) {
        // Most lines are a text that fits one message: sent as they are.
        let whole = matches!(chat_command(&line), ChatLine::Text(t) if t.len() == line.len());
        if whole && line.len() <= MAX_TEXT_LEN {
            return self.push(Action::Send(line));
        }
        match chat_command(&line) {
            ChatLine::Text(text) => {
                let pieces = split_for_sending(text);
                if pieces.len() > 1 {
                    self.print(format!(
                        "(a long line: sent as {} messages of at most {MAX_TEXT_LEN} bytes)",
                        pieces.len()
                    ));
                }
                for piece in pieces {
                    self.push(Action::Send(piece));
                }
            }
            ChatLine::Back if at_terminal && matches!(self.state, State::Connecting { .. }) => {
                self.cancelled = true;
                self.push(Action::CancelCall);
            }
            ChatLine::Back => self.end_chat(),
            ChatLine::Quit => {
                self.quit = true;
                self.end_chat();
            }
            ChatLine::Help => self.chat_help(),
            ChatLine::Unknown(word) => {
                let shown = truncate(&escape_for_display(word), 20);
                self.print(format!(
                    "error: unknown command '{shown}' (not sent): {HELP} lists the commands; \
                     start with // to send a text that starts with /"
                ));
            }
        }
    }

    fn chat_help(&mut self) {
        for line in [
            format!("{BACK}  ends the chat and returns to the menu"),
            format!("{QUIT}  ends the chat, logs out and exits"),
            format!("{HELP}  shows this"),
            "//text sends /text (a text that starts with /)".to_owned(),
            "Anything else is sent as you typed it.".to_owned(),
        ] {
            self.print(line);
        }
    }

    /// The chat awaited started: the lines typed meanwhile go now.
    pub(super) fn send_held(&mut self) {
        for line in std::mem::take(&mut self.held) {
            self.chat_line(line, true);
        }
    }

    /// Starts a new call: lines typed from now on belong to it.
    pub(super) fn new_call(&mut self) {
        self.calls += 1;
    }

    fn input_end(&mut self) {
        self.input_ended = true;
        match self.state.clone() {
            State::AskName => {
                self.print("Input ended before a name was given.".to_owned());
                self.exit(EXIT_OK);
            }
            State::Menu | State::AskPeer => self.logout(EXIT_OK),
            // The chat ends once the peer has acknowledged what was sent
            // (or stops making progress), then the client logs out.
            State::Connecting { .. } | State::Chat { .. } => self.finish_chat(),
            // Only a terminal's end of input is taken here: the wait stops
            // and, the keyboard being gone, the client logs out.
            State::Waiting => self.stop_waiting(),
            // Not accepted in these states; nothing to do if it happens.
            State::LoggingIn
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
            "n" | "N" if self.request.is_some() => {
                if let Some((peer, _)) = self.request.take() {
                    self.push(Action::Decline);
                    self.print(format!("Declined the chat with {peer}."));
                }
                self.reprompt();
            }
            "2" | "y" | "Y" => {
                self.new_call();
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
            "?" | HELP => self.menu_with_commands(),
            QUIT => self.logout(EXIT_OK),
            other => {
                let shown = escape_for_display(other);
                self.print(format!(
                    "error: unknown choice '{}': enter 1, 2, 3 or 4 (? shows the commands)",
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
                self.new_call();
                self.state = State::LookingUp { peer: peer.clone() };
                self.push(Action::Lookup(peer));
            }
            Err(e) => {
                self.print(format!("error: invalid user name: {e}"));
                self.menu();
            }
        }
    }
}

/// What a line typed in a chat is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ChatLine<'a> {
    /// A text to send (a leading `//` sent as `/`).
    Text(&'a str),
    Back,
    Quit,
    Help,
    /// `/word` that is no command: a typo, never sent.
    Unknown(&'a str),
}

/// A line is a command when it starts, after blanks, with `/` and a
/// letter; `//` escapes a text's leading `/`; anything else is a text,
/// sent as typed (`/`, `/ ok`, `:-/` included).
fn chat_command(line: &str) -> ChatLine<'_> {
    // The first word decides: what ends the line does not matter.
    let trimmed = line.trim_start();
    if trimmed.starts_with("//") {
        return ChatLine::Text(&line.trim_start()[1..]);
    }
    let Some(rest) = trimmed.strip_prefix('/') else { return ChatLine::Text(line) };
    if !rest.starts_with(|c: char| c.is_alphabetic()) {
        return ChatLine::Text(line);
    }
    // A command's first word decides; what follows it is ignored.
    let word = trimmed.split_whitespace().next().unwrap_or(trimmed);
    match word {
        BACK => ChatLine::Back,
        QUIT => ChatLine::Quit,
        HELP => ChatLine::Help,
        _ => ChatLine::Unknown(word),
    }
}
