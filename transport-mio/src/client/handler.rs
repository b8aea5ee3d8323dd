//! What a [`ClientNode`] reports, and the application that takes it.

use std::time::{Instant, SystemTime};

use p2pchat_core::{ChatEvent, ClientEvent, PublicKey, SendError, UserName};

use super::ClientNode;
use crate::input::{InputDecoder, InputItem};
use crate::output::UserOutput;

/// Something that happened, as the node reports it to its [`NodeHandler`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeEvent {
    /// The next unit of user input. Only given when
    /// [`NodeHandler::accepts`] said yes to it.
    Input(InputItem),
    /// A signal that asks the client to end: SIGINT or SIGTERM (and, with
    /// [`NodeConfig::terminal_signals`](super::NodeConfig::terminal_signals),
    /// SIGQUIT and SIGHUP).
    Signal(i32),
    /// An event of the registry client. Boxed: registry events are few and
    /// some are large (an introduction), while a chat line makes several
    /// events that are moved from queue to handler; boxing the large ones
    /// keeps every event small to move (see docs/PERFORMANCE.md).
    Registry(Box<ClientEvent>),
    /// An event of the active chat session (or of the held chat, once
    /// accepted). Of the active chat's consecutive
    /// [`Delivered`](ChatEvent::Delivered) events only the last is
    /// reported: texts are acknowledged in order, so it stands for every
    /// text sent up to its sequence number.
    Chat {
        /// The event.
        event: ChatEvent,
        /// The wall-clock time the node took it from the session.
        at: SystemTime,
    },
    /// The TCP connect of the active chat failed (or took longer than
    /// [`CONNECT_TIMEOUT`](super::CONNECT_TIMEOUT)); the session's
    /// `Undelivered` and `Closed` events follow.
    ConnectFailed {
        /// What went wrong.
        reason: String,
    },
    /// A peer connected and proved, in its handshake, the key the registry
    /// lists for the name it gave; the node holds the connection, without
    /// answering, until [`ClientNode::accept`] (or [`ClientNode::reject`]).
    ChatRequest {
        /// The caller's name.
        peer: UserName,
        /// The key it proved: the one the registry lists for `peer`.
        key: PublicKey,
    },
    /// A caller proved its key while another request was waiting for the
    /// user: it was told the user is busy. The user may want to call back.
    MissedCall {
        /// Who called.
        peer: UserName,
        /// The key it proved (the one the registry lists for `peer`).
        key: PublicKey,
    },
    /// The held chat request went away before it was accepted.
    ChatRequestGone {
        /// Who had asked.
        peer: UserName,
    },
    /// How the connection of a chat with `peer` was made, once it is: for
    /// our call, before its `Connected`; for a call to us, before its
    /// request.
    Route {
        /// The other side.
        peer: UserName,
        /// Through the registry's relay (end to end encrypted still), or
        /// direct.
        relayed: bool,
    },
    /// A text given to [`ClientNode::send_text`] was queued in the session.
    Sent {
        /// The text.
        text: String,
    },
    /// A text given to [`ClientNode::send_text`] was refused.
    SendFailed {
        /// The text.
        text: String,
        /// Why. `Backpressure` only for texts moved from a call dropped for
        /// a crossed one, past the one that may wait for room: otherwise
        /// the node waits backpressure out itself, and takes no user input
        /// meanwhile.
        reason: SendError,
    },
}

impl From<ClientEvent> for NodeEvent {
    fn from(event: ClientEvent) -> Self {
        NodeEvent::Registry(Box::new(event))
    }
}

/// The application on top of a [`ClientNode`]: it decodes the user's input,
/// says which input it takes when, and acts on what the node reports by
/// calling the node's commands.
pub trait NodeHandler {
    /// What cuts the user's input bytes into [`InputItem`]s (a
    /// [`LineSplitter`](crate::LineSplitter), a line editor).
    type Decoder: InputDecoder;

    /// The decoder.
    fn decoder(&self) -> &Self::Decoder;

    /// The decoder, to feed it.
    fn decoder_mut(&mut self) -> &mut Self::Decoder;

    /// Whether the handler can act on `item` now. The node keeps the item
    /// (and reads no more input) until the answer is yes, so that a script
    /// piped in runs at the pace of the chat.
    fn accepts(&self, item: &InputItem) -> bool;

    /// Takes one event, in the order they happened; `now` is the time of the
    /// loop's turn, to pass on to the node's commands.
    fn handle(&mut self, now: Instant, event: NodeEvent, node: &mut ClientNode);

    /// Where the handler prints, if through a [`UserOutput`]: the node then
    /// writes what waits in it whenever the descriptor takes more, and wakes
    /// up for that. `None` (the default): the handler prints nothing, or
    /// sees to it itself.
    fn output(&mut self) -> Option<&mut UserOutput> {
        None
    }

    /// Called before the node writes [`NodeHandler::output`] (once per
    /// turn, before the loop sleeps): write here what must be durable
    /// before it is shown, such as a history file. Default: nothing.
    fn before_output(&mut self) {}

    /// The process is about to stop (SIGTSTP, with
    /// [`NodeConfig::terminal_signals`](super::NodeConfig::terminal_signals)):
    /// set the terminal back for the shell.
    fn suspend(&mut self) {}

    /// The process continues after a stop (SIGCONT).
    fn resume(&mut self) {}

    /// The terminal changed size (SIGWINCH, with
    /// [`NodeConfig::terminal_signals`](super::NodeConfig::terminal_signals)).
    fn resize(&mut self) {}

    /// When the handler wants [`NodeHandler::on_deadline`] called, if ever
    /// (default: never). The node wakes for it like for its own timers.
    fn deadline(&self) -> Option<Instant> {
        None
    }

    /// The instant [`NodeHandler::deadline`] named has come.
    fn on_deadline(&mut self, now: Instant, node: &mut ClientNode) {
        let _ = (now, node);
    }
}
