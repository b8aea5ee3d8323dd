//! What the app shows: prompts, the list, the menu, and the wording of a
//! chat's end.

use p2pchat_core::{CloseReason, DeclineReason, Entry, UserName};

use super::{Action, App, EXIT_OK, State};

impl App {
    pub(super) fn ask_name(&mut self) {
        self.state = State::AskName;
        self.push(Action::Prompt("Enter your username:".to_owned()));
    }

    pub(super) fn print_list(&mut self, entries: &[Entry]) {
        self.print("-----[ONLINE USERS]-----".to_owned());
        for e in entries {
            self.print(format!("| {} : {}", e.name, e.chat_addr()));
        }
        self.print("-----".to_owned());
    }

    /// Back to the menu, quietly: only its prompt.
    pub(super) fn menu(&mut self) {
        self.state = State::Menu;
        if self.input_ended || self.quit {
            return self.logout(EXIT_OK);
        }
        self.reprompt();
    }

    /// Back to the menu with the full list of commands: at the start, when
    /// a chat ends, and when asked (`?`, `/help`).
    pub(super) fn menu_with_commands(&mut self) {
        self.state = State::Menu;
        if self.input_ended || self.quit {
            return self.logout(EXIT_OK);
        }
        let missed = std::mem::take(&mut self.missed);
        if !missed.is_empty() {
            let names: Vec<&str> = missed.iter().map(UserName::as_str).collect();
            self.print(format!("Missed calls during the chat: {}", names.join(", ")));
        }
        self.print_commands();
        self.reprompt();
    }

    pub(super) fn print_commands(&mut self) {
        for line in [
            "-----[COMMANDS]-----",
            "- Enter [1] to connect to peer",
            "- Enter [2] to wait P2P connection",
            "- Enter [3] to logout",
            "- Enter [4] to refresh online user list",
            "- /back command is closing the active chat session and enabling the menu",
            "- Enter ? or /help to show these commands again",
        ] {
            self.print(line.to_owned());
        }
        self.print(format!(
            "**** Your messages automatically saved into [{}] file",
            self.config.history.display()
        ));
    }

    /// Shows the current state's prompt again, if it has one.
    pub(super) fn reprompt(&mut self) {
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
    pub(super) fn async_line(&mut self, line: String) {
        self.print(line);
        self.reprompt();
    }

    pub(super) fn print(&mut self, line: String) {
        self.push(Action::Print(line));
    }
}

/// Why a chat ended, as a sentence's end.
pub(super) fn close_reason(reason: &CloseReason, peer: &UserName) -> String {
    match reason {
        CloseReason::LocalClose => "you left the chat".to_owned(),
        CloseReason::PeerClose => format!("{peer} left the chat"),
        CloseReason::PeerVanished => format!("the connection to {peer} was lost"),
        CloseReason::PeerSilent => format!("{peer} stopped answering"),
        CloseReason::HandshakeTimeout => {
            format!("{peer} did not finish the encrypted handshake in time")
        }
        CloseReason::Declined(DeclineReason::Declined) => format!("{peer} declined the chat"),
        CloseReason::Declined(DeclineReason::Busy) => {
            format!("{peer} is busy (another call is waiting for an answer)")
        }
        CloseReason::Declined(DeclineReason::Crossed) => {
            format!("{peer} called you at the same time; that call goes on")
        }
        CloseReason::Error(e) => format!("protocol error ({e})"),
    }
}

/// At most `max` characters of `s`, with an ellipsis when cut.
pub(super) fn truncate(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}...", &s[..i]),
        None => s.to_owned(),
    }
}

/// The local time of day of `at`, `HH:MM:SS`, as chat lines show it.
pub(super) fn clock(at: std::time::SystemTime, offset: time::UtcOffset) -> String {
    let t = time::OffsetDateTime::from(at).to_offset(offset);
    format!("{:02}:{:02}:{:02}", t.hour(), t.minute(), t.second())
}

/// A chat line as shown, `[HH:MM:SS] WHO: TEXT` (`text` already escaped),
/// in the pieces that are written one after the other: no `String` is
/// built for the line ([`Action::ChatText`](super::Action::ChatText)).
pub fn chat_line_parts<'a>(clock: &'a str, who: &'a str, text: &'a str) -> [&'a str; 6] {
    ["[", clock, "] ", who, ": ", text]
}
