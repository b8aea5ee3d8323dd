//! What the registry's answers mean in each state.

use p2pchat_core::{ClientEvent, Entry, Operation, RefuseReason};

use super::{Action, App, Check, EXIT_ERROR, State};

impl App {
    /// A registry event: what it means depends on the state.
    pub(super) fn registry(&mut self, ev: ClientEvent) {
        if !matches!(ev, ClientEvent::StillTrying { .. } | ClientEvent::Unreachable { .. }) {
            self.said_still_trying = false;
        }
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
            ClientEvent::List { entries } => match self.state {
                State::FirstList => {
                    self.print_list(&entries);
                    self.menu_with_commands();
                }
                State::Refreshing => {
                    self.print_list(&entries);
                    self.menu();
                }
                _ => {}
            },
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
                        let (peer, key) = (entry.name.clone(), entry.key);
                        self.checking = Some(Check::Call(entry));
                        self.push(Action::CheckKey { peer, key });
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
            ClientEvent::StillTrying { op } => self.still_trying(op),
            // The node's own business: it punches, and reports the chat.
            ClientEvent::Introduced { .. } | ClientEvent::Called { .. } => {}
        }
    }

    /// Says once, until the registry answers again, why nothing happens yet.
    /// Keepalives run unseen and have their own warning when they fail.
    fn still_trying(&mut self, op: Operation) {
        match op {
            Operation::Login | Operation::List | Operation::Lookup | Operation::Logout => {
                if !self.said_still_trying {
                    self.said_still_trying = true;
                    let server = self.config.server;
                    self.print(format!("Still trying to reach the registry at {server}…"));
                }
            }
            Operation::Keepalive | Operation::Introduce => {}
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
            // The node's: a call without an introduction is tried directly.
            Operation::Introduce => {}
        }
    }

    fn unreachable(&mut self, op: Operation) {
        let server = self.config.server;
        match op {
            Operation::Login => {
                if self.state == State::LoggingIn {
                    self.print(format!(
                        "error: the registry at {server} is unreachable: is p2pchat server \
                         running there?"
                    ));
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
            Operation::Introduce => {}
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
}
