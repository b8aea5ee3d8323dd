//! The menu client: the transport's [`ClientNode`] runs the loop (the
//! registry socket, the chat listener and streams, standard input, signals);
//! [`App`] decides what it all means; this module joins them to the terminal
//! ([`Term`]), the wall clock and the history file.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use anyhow::Context as _;
use p2pchat_core::{PublicKey, UserName};
use p2pchat_transport_mio::{
    ClientNode, InputItem, InputSource, NodeConfig, NodeEvent, NodeHandler, UserOutput,
};
use time::{OffsetDateTime, UtcOffset};

use crate::app::{Action, App, AppConfig, EXIT_ERROR, EXIT_OK, KeyCheck, chat_line_parts};
use crate::history::{Direction, History, LocalSecond, escape_for_display, local_second};
use crate::identity::Identity;
use crate::known_peers::{KnownPeers, PeerStatus, changed_key_warning, describe};
use crate::term::Term;
use crate::typed::Typed;

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
    /// The user's key pair, from `--identity` or the default file.
    pub identity: Identity,
    /// `--bench-cleartext` (benchmark builds only): chats in clear after
    /// the handshake.
    #[cfg(feature = "bench-cleartext")]
    pub bench_cleartext: bool,
}

/// Runs the client until the app exits; returns the exit status.
pub fn run(opts: ClientOptions, interactive: bool) -> anyhow::Result<i32> {
    // Read the local offset while the process has one thread.
    let offset = UtcOffset::current_local_offset().unwrap_or(UtcOffset::UTC);
    let history = History::open(&opts.history)
        .with_context(|| format!("cannot open the history file {}", opts.history.display()))?;
    // The node takes the signals before the terminal is made raw, so that
    // none of them finds it raw with its default action.
    let mut node = ClientNode::new(NodeConfig {
        server: opts.server,
        listen: opts.listen,
        seed: random_u64(),
        identity: opts.identity.private_key().clone(),
        input: InputSource::Stdin,
        terminal_signals: Term::wants_editor(interactive),
    })?;
    #[cfg(feature = "bench-cleartext")]
    if opts.bench_cleartext {
        node.bench_cleartext();
    }
    // From here on the terminal may be raw: `term` puts it back when dropped,
    // on every return, `?` included, and when a panic unwinds.
    let term = Typed::new(Term::stdio(interactive), Term::wants_editor(interactive));
    let app = App::new(AppConfig {
        name: opts.name,
        server: opts.server,
        history: opts.history,
        utc_offset: offset,
    });
    let mut client = Client {
        app,
        keyboard: term,
        history,
        history_failed: false,
        identity_path: opts.identity.path().to_owned(),
        known_peers: opts.identity.known_peers_path(),
        exit: None,
        utc_offset: offset,
        stopped_at: None,
        give_up_at: None,
        turn: None,
        times: LocalTimes::default(),
    };
    client.app.tick(SystemTime::now());
    client.app.start();
    client.run_actions(Instant::now(), &mut node);
    client.keyboard.set_scope(client.app.scope(), client.app.waiting());
    let result = node.run(&mut client);
    // The sockets close before the terminal is set back.
    drop(node);
    result?;
    Ok(client.exit.unwrap_or(EXIT_ERROR))
}

/// The node's handler: feeds the app what the node reports and carries out
/// the app's actions, on the node or on the terminal and the history file.
struct Client {
    app: App,
    /// The terminal, whose input lines carry the scope they were typed in.
    keyboard: Typed<Term>,
    history: History,
    history_failed: bool,
    /// The identity file in use, for the command a key warning names.
    identity_path: PathBuf,
    /// The known-peers file beside it.
    known_peers: PathBuf,
    /// The status of [`Action::Exit`], once the app asked.
    exit: Option<i32>,
    /// The local time zone's offset, for the history's times.
    utc_offset: UtcOffset,
    /// When the process was stopped (Ctrl-Z), until it continues.
    stopped_at: Option<SystemTime>,
    /// After Ctrl-C or SIGTERM, when to stop waiting for the registry's
    /// answer to the logout and exit anyway.
    give_up_at: Option<Instant>,
    /// The turn's instant and wall-clock time, for [`Client::wall_clock`].
    turn: Option<(Instant, SystemTime)>,
    /// The last chat line's time in local time, and its `HH:MM:SS`.
    times: LocalTimes,
}

/// The local time of the last chat line and the start of the screen lines,
/// `[HH:MM:SS] WHO: `, one for our own lines and one for the peer's, worked
/// out again only when they change: the lines of a burst share the turn's
/// wall-clock time, and a conversation alternates between the two.
#[derive(Debug, Default)]
struct LocalTimes {
    last: Option<(SystemTime, OffsetDateTime)>,
    /// Ours (`you`), then the peer's.
    starts: [LineStart; 2],
}

/// `[HH:MM:SS] WHO: ` and the second and sender it was made for.
#[derive(Debug, Default)]
struct LineStart {
    /// The local second it was made for ([`local_second`]).
    second: Option<LocalSecond>,
    who: String,
    text: String,
}

impl LocalTimes {
    /// `at` in the local time of `offset`.
    fn local(&mut self, at: SystemTime, offset: UtcOffset) -> OffsetDateTime {
        match self.last {
            Some((t, local)) if t == at => local,
            _ => {
                let local = OffsetDateTime::from(at).to_offset(offset);
                self.last = Some((at, local));
                local
            }
        }
    }

    /// The start of a chat line from `who` at `local`: `[HH:MM:SS] WHO: `;
    /// `ours`: our own line (else the peer's).
    fn line_start(&mut self, local: OffsetDateTime, who: &str, ours: bool) -> &str {
        let start = &mut self.starts[usize::from(!ours)];
        let second = local_second(local);
        if start.second != Some(second) || start.who != who {
            let [h, m, s] = second.1;
            let mut clock = [0u8; 8];
            for (i, v) in [h, m, s].into_iter().enumerate() {
                clock[3 * i] = b'0' + v / 10;
                clock[3 * i + 1] = b'0' + v % 10;
            }
            clock[2] = b':';
            clock[5] = b':';
            let clock = std::str::from_utf8(&clock).unwrap_or("??:??:??");
            start.text.clear();
            for part in chat_line_parts(clock, who, "") {
                start.text.push_str(part);
            }
            start.who.clear();
            start.who.push_str(who);
            start.second = Some(second);
        }
        &start.text
    }
}

/// How long Ctrl-C or SIGTERM waits for the registry to confirm the logout
/// before the client exits anyway (the logout was sent; if it is lost, the
/// entry expires with its lease).
pub const SIGNAL_LOGOUT_WAIT: Duration = Duration::from_millis(500);

impl NodeHandler for Client {
    type Decoder = Typed<Term>;

    fn decoder(&self) -> &Typed<Term> {
        &self.keyboard
    }

    fn decoder_mut(&mut self) -> &mut Typed<Term> {
        &mut self.keyboard
    }

    fn accepts(&self, item: &InputItem) -> bool {
        self.app.accepts_from(item, self.keyboard.peek_scope())
    }

    fn output(&mut self) -> Option<&mut UserOutput> {
        Some(self.term().output())
    }

    /// What is about to be shown is in the history file first.
    fn before_output(&mut self) {
        self.write_history();
    }

    fn handle(&mut self, now: Instant, event: NodeEvent, node: &mut ClientNode) {
        tracing::trace!(?event, "app input");
        // The node may fire the timers that ran out while the process was
        // stopped before it reads the SIGCONT: any event means it runs.
        self.continued();
        let wall = self.wall_clock(now);
        self.app.tick(wall);
        if let NodeEvent::Signal(_) = event {
            self.give_up_at.get_or_insert(now.checked_add(SIGNAL_LOGOUT_WAIT).unwrap_or(now));
        }
        match event {
            NodeEvent::Input(item) => {
                self.term().input_taken();
                let origin = self.keyboard.popped_scope();
                self.app.typed(item, origin);
            }
            event => self.app.handle(event),
        }
        self.run_actions(now, node);
        self.keyboard.set_scope(self.app.scope(), self.app.waiting());
    }

    /// Ctrl-Z: the terminal is restored while the process is stopped.
    fn suspend(&mut self) {
        self.stopped_at = Some(SystemTime::now());
        self.write_history();
        self.term().suspend();
    }

    /// `fg`: the terminal is set up again, and the app told how long the
    /// process was stopped.
    fn resume(&mut self) {
        self.term().resume();
        self.continued();
    }

    fn deadline(&self) -> Option<Instant> {
        self.give_up_at.filter(|_| self.exit.is_none())
    }

    /// The registry did not confirm the logout in time after a signal: the
    /// client exits anyway, as asked.
    fn on_deadline(&mut self, _now: Instant, node: &mut ClientNode) {
        self.give_up_at = None;
        if self.exit.is_none() {
            self.term().line("Exiting without waiting for the registry.");
            self.exit = Some(EXIT_OK);
            node.stop();
        }
    }

    /// The terminal changed size: the input line is drawn again for it.
    fn resize(&mut self) {
        self.term().resize();
    }
}

/// Bytes of screen output that a turn of the loop gathers before it writes
/// them (after the history lines they show) without waiting for the turn's
/// end; far below [`p2pchat_transport_mio::MAX_PENDING_OUTPUT`], so that a
/// long burst of messages is shown, not left out.
pub const OUTPUT_FLUSH_AT: usize = 256 * 1024;

impl Drop for Client {
    /// The history's last lines are written before the terminal shows its
    /// last output (when `term` drops).
    fn drop(&mut self) {
        self.write_history();
    }
}

impl Client {
    /// The wall-clock time of the loop's turn that `now` stands for: read
    /// once per turn, not once per event (a burst of a thousand lines is
    /// one turn).
    fn wall_clock(&mut self, now: Instant) -> SystemTime {
        match self.turn {
            Some((at, wall)) if at == now => wall,
            _ => {
                let wall = SystemTime::now();
                self.turn = Some((now, wall));
                wall
            }
        }
    }

    /// Writes the buffered history lines: before anything they record is
    /// shown.
    fn write_history(&mut self) {
        let result = self.history.flush();
        self.history_result(result);
    }

    /// Says once that the history file cannot be written.
    fn history_result(&mut self, result: std::io::Result<()>) {
        if let Err(e) = result {
            if !self.history_failed {
                self.history_failed = true;
                self.term().line(&format!("warning: cannot write the history file: {e}"));
            }
        }
    }

    /// The process runs again after a stop: the app is told how long it
    /// was stopped (once).
    fn continued(&mut self) {
        if let Some(at) = self.stopped_at.take() {
            let now = SystemTime::now();
            self.app.resumed(now, now.duration_since(at).unwrap_or_default());
        }
    }

    fn term(&mut self) -> &mut Term {
        self.keyboard.inner_mut()
    }

    fn run_actions(&mut self, now: Instant, node: &mut ClientNode) {
        while let Some(action) = self.app.poll_action() {
            self.act(action, now, node);
        }
        // A long burst is shown in pieces, each after its history lines
        // (an event's lines are all recorded by now).
        if self.term().output().pending() >= OUTPUT_FLUSH_AT {
            self.write_history();
            self.term().output().flush();
        }
    }

    fn act(&mut self, action: Action, now: Instant, node: &mut ClientNode) {
        tracing::trace!(?action, "app action");
        match action {
            Action::Print(line) => self.term().line(&line),
            Action::Prompt(p) => self.term().prompt(&p),
            Action::Login(name) => node.login(now, name),
            Action::Refresh => node.refresh_list(now),
            Action::Lookup(name) => node.lookup(now, name),
            Action::Logout => node.logout(now),
            Action::CheckKey { peer, key } => {
                let check = self.check_key(&peer, &key);
                self.app.key_checked(check);
            }
            Action::Connect { peer, key, addr } => node.connect(now, peer, key, addr),
            Action::Accept => node.accept(now),
            Action::Reject => node.reject(),
            Action::Decline => node.decline(now),
            Action::CancelCall => node.cancel_call(now),
            Action::Send(text) => node.send_text(now, text),
            Action::CloseChat => node.close_chat(now),
            Action::FinishChat => node.finish_chat(now),
            Action::ChatText { at, direction, text } => self.chat_text(at, direction, &text),
            Action::Record { at, direction, peer, text } => {
                let at = OffsetDateTime::from(at).to_offset(self.utc_offset);
                let result = self.history.record(at, direction, &peer, &text);
                self.history_result(result);
            }
            Action::Exit(code) => {
                self.exit = Some(code);
                node.stop();
            }
        }
    }
}

impl Client {
    /// A chat text recorded, then shown (both only buffered here; the
    /// history is written first, see [`NodeHandler::before_output`]).
    fn chat_text(&mut self, at: SystemTime, direction: Direction, text: &str) {
        // Queued for the event just handled, so the app is still in its chat.
        let Some(peer) = self.app.chat_peer_ref() else { return };
        let local = self.times.local(at, self.utc_offset);
        let escaped = escape_for_display(text);
        let result = self.history.record_escaped(local, direction, peer, &escaped);
        let who = match direction {
            Direction::Sent => "you",
            Direction::Received
            | Direction::Undelivered
            | Direction::Unacknowledged
            | Direction::Failed
            | Direction::Started
            | Direction::Ended => peer.as_str(),
        };
        let ours = direction == Direction::Sent;
        let start = self.times.line_start(local, who, ours);
        self.keyboard.inner_mut().chat_line(start, &escaped);
        self.history_result(result);
    }

    /// What the known-peers file says of `key` for `peer` (pinning it when
    /// the name is new).
    fn check_key(&self, peer: &UserName, key: &PublicKey) -> KeyCheck {
        match KnownPeers::observe(&self.known_peers, peer, key) {
            Ok(PeerStatus::Changed { pinned, seen, verified }) => KeyCheck::Refused(
                changed_key_warning(peer, &pinned, &seen, verified, &self.identity_path),
            ),
            Ok(status) => KeyCheck::Trusted(describe(&status, key)),
            Err(e) => KeyCheck::Refused(format!("error: no chat with {peer}: {e}")),
        }
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
    fn line_starts_follow_the_second_and_the_sender() {
        let mut times = LocalTimes::default();
        let offset = UtcOffset::from_hms(1, 0, 0).unwrap();
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let cases = [
            (t0, "you", "[23:13:20] you: "),
            (t0, "you", "[23:13:20] you: "),
            (t0, "Bob", "[23:13:20] Bob: "),
            (t0 + Duration::from_millis(999), "Bob", "[23:13:20] Bob: "),
            (t0 + Duration::from_millis(1000), "Bob", "[23:13:21] Bob: "),
            (t0 + Duration::from_millis(1000), "you", "[23:13:21] you: "),
        ];
        for (at, who, want) in cases {
            let local = times.local(at, offset);
            assert_eq!(times.line_start(local, who, who == "you"), want);
        }
        // Alternating, as a conversation does.
        let local = times.local(t0, offset);
        for _ in 0..3 {
            assert_eq!(times.line_start(local, "you", true), "[23:13:20] you: ");
            assert_eq!(times.line_start(local, "Bob", false), "[23:13:20] Bob: ");
        }
        // 23:59:59 UTC, past midnight in the local time.
        let midnight = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000 - 83_600 + 3599);
        let local = times.local(midnight, offset);
        assert_eq!(times.line_start(local, "Bob", false), "[00:59:59] Bob: ");
    }
}
