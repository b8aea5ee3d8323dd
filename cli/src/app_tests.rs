use super::*;
use p2pchat_core::{
    ChatEvent, ClientEvent, CloseReason, Entry, MAX_TEXT_LEN, Operation, PrivateKey, PublicKey,
    RefuseReason, SendError, Seq,
};
use p2pchat_transport_mio::{InputItem, MAX_LINE_LEN};
use std::time::Duration;

fn name(s: &str) -> UserName {
    UserName::new(s).unwrap()
}

fn config(n: Option<&str>) -> AppConfig {
    AppConfig {
        name: n.map(name),
        server: "127.0.0.1:5000".parse().unwrap(),
        history: PathBuf::from("messages.txt"),
        // The epoch shows as 12:34:56 in this zone.
        utc_offset: time::UtcOffset::from_hms(12, 34, 56).unwrap(),
    }
}

/// Each test user's key.
fn key_of(n: &str) -> PublicKey {
    PrivateKey::from_bytes([n.len() as u8; 32]).public_key()
}

const TRUSTED: &str = "fingerprint 1 (pinned)";

/// The lookup of `peer` finds it and the key check passes: the app connects.
fn found_and_trusted(app: &mut App, peer: &str) -> Vec<Action> {
    let found = ClientEvent::Found { name: name(peer), entry: Some(entry(peer, 7000)) };
    let a = feed(app, NodeEvent::from(found));
    assert_eq!(a, vec![Action::CheckKey { peer: name(peer), key: key_of(peer) }]);
    app.key_checked(KeyCheck::Trusted(TRUSTED.into()));
    drain(app)
}

/// `peer` calls: the app checks its key, the check passes.
fn request(app: &mut App, peer: &str) -> Vec<Action> {
    let a = feed(app, NodeEvent::ChatRequest { peer: name(peer), key: key_of(peer) });
    assert_eq!(a, vec![Action::CheckKey { peer: name(peer), key: key_of(peer) }]);
    app.key_checked(KeyCheck::Trusted(TRUSTED.into()));
    drain(app)
}

fn entry(n: &str, port: u16) -> Entry {
    Entry {
        name: name(n),
        addr: "127.0.0.1:40000".parse().unwrap(),
        chat_port: port,
        key: key_of(n),
    }
}

fn drain(app: &mut App) -> Vec<Action> {
    std::iter::from_fn(|| app.poll_action()).collect()
}

/// When every test input happens: 12:34:56 in the tests' time zone.
const T: std::time::SystemTime = std::time::UNIX_EPOCH;

fn feed(app: &mut App, input: NodeEvent) -> Vec<Action> {
    app.tick(T);
    app.handle(input);
    drain(app)
}

fn line(app: &mut App, s: &str) -> Vec<Action> {
    let item = InputItem::Line(s.to_owned());
    assert!(app.accepts(&item), "app must accept {s:?} now");
    feed(app, NodeEvent::Input(item))
}

fn printed(actions: &[Action]) -> Vec<String> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Print(l) => Some(l.clone()),
            _ => None,
        })
        .collect()
}

fn logged_in(entries: Vec<Entry>) -> (App, Vec<Action>) {
    let mut app = App::new(config(Some("Ann")));
    app.start();
    assert_eq!(
        drain(&mut app),
        vec![
            Action::Print("Connecting to the registry at 127.0.0.1:5000…".into()),
            Action::Login(name("Ann"))
        ]
    );
    let a = feed(
        &mut app,
        NodeEvent::from(ClientEvent::LoggedIn {
            observed: "127.0.0.1:1".parse().unwrap(),
            lease: Duration::from_secs(60),
        }),
    );
    assert_eq!(a, vec![Action::Print("Logged in as Ann.".into()), Action::Refresh]);
    let a = feed(&mut app, NodeEvent::from(ClientEvent::List { entries }));
    (app, a)
}

/// A chat event at 12:34:56 UTC (the tests' time zone).
fn chat_ev(event: ChatEvent) -> NodeEvent {
    NodeEvent::Chat { event, at: T }
}

/// Ann connects to Bob and the chat is up.
fn chatting() -> App {
    let (mut app, _) = logged_in(vec![]);
    line(&mut app, "1");
    assert_eq!(line(&mut app, "Bob"), vec![Action::Lookup(name("Bob"))]);
    let a = feed(
        &mut app,
        NodeEvent::from(ClientEvent::Found { name: name("bob"), entry: Some(entry("Bob", 7000)) }),
    );
    assert_eq!(a, vec![Action::CheckKey { peer: name("Bob"), key: key_of("Bob") }]);
    app.key_checked(KeyCheck::Trusted(TRUSTED.into()));
    let a = drain(&mut app);
    assert_eq!(
        a.last(),
        Some(&Action::Connect {
            peer: name("Bob"),
            key: key_of("Bob"),
            addr: "127.0.0.1:7000".parse().unwrap()
        })
    );
    assert_eq!(printed(&a)[0], format!("Connecting to Bob at 127.0.0.1:7000, {TRUSTED}"));
    let a = feed(&mut app, chat_ev(ChatEvent::Connected { peer: name("Bob") }));
    assert_eq!(printed(&a)[0], format!("[12:34:56] Chat with Bob started, {TRUSTED}."));
    assert!(a.contains(&Action::Record {
        at: T,
        direction: Direction::Started,
        peer: name("Bob"),
        text: "Ann".into()
    }));
    app
}

#[test]
fn first_screen_is_list_and_menu() {
    let (_, a) = logged_in(vec![entry("Ann", 41000), entry("Bob", 42000)]);
    assert_eq!(
        printed(&a),
        vec![
            "-----[ONLINE USERS]-----",
            "| Ann : 127.0.0.1:41000",
            "| Bob : 127.0.0.1:42000",
            "-----",
            "-----[COMMANDS]-----",
            "- Enter [1] to connect to peer",
            "- Enter [2] to wait P2P connection",
            "- Enter [3] to logout",
            "- Enter [4] to refresh online user list",
            "- /back command is closing the active chat session and enabling the menu",
            "- Enter ? or /help to show these commands again",
            "**** Your messages automatically saved into [messages.txt] file",
        ]
    );
    assert_eq!(a.last(), Some(&Action::Prompt("Enter choice:".into())));
}

#[test]
fn asks_for_a_name_until_one_is_taken() {
    let mut app = App::new(config(None));
    app.start();
    assert_eq!(drain(&mut app), vec![Action::Prompt("Enter your username:".into())]);
    let a = line(&mut app, "two words");
    assert!(printed(&a)[0].starts_with("error: invalid name"));
    assert_eq!(a.last(), Some(&Action::Prompt("Enter your username:".into())));
    assert_eq!(
        line(&mut app, " Mert "),
        vec![
            Action::Print("Connecting to the registry at 127.0.0.1:5000…".into()),
            Action::Login(name("Mert"))
        ]
    );
    assert!(!app.accepts(&InputItem::Line("x".into())), "no input while logging in");
    let a = feed(
        &mut app,
        NodeEvent::from(ClientEvent::Refused {
            op: Operation::Login,
            reason: RefuseReason::NameTaken,
        }),
    );
    assert_eq!(printed(&a), vec!["error: cannot log in as 'Mert': the name is taken"]);
    assert_eq!(a.last(), Some(&Action::Prompt("Enter your username:".into())));
}

#[test]
fn refused_or_unreachable_login_with_flag_exits_1() {
    let mut app = App::new(config(Some("Mert")));
    app.start();
    drain(&mut app);
    let a = feed(
        &mut app,
        NodeEvent::from(ClientEvent::Refused {
            op: Operation::Login,
            reason: RefuseReason::NameTaken,
        }),
    );
    assert_eq!(a.last(), Some(&Action::Exit(EXIT_ERROR)));

    let mut app = App::new(config(Some("Mert")));
    app.start();
    drain(&mut app);
    let a = feed(&mut app, NodeEvent::from(ClientEvent::Unreachable { op: Operation::Login }));
    assert_eq!(
        a,
        vec![
            Action::Print(
                "error: the registry at 127.0.0.1:5000 is unreachable: is p2pchat server running \
                 there?"
                    .into()
            ),
            Action::Exit(EXIT_ERROR)
        ]
    );
}

#[test]
fn menu_choices() {
    let (mut app, _) = logged_in(vec![]);
    let a = line(&mut app, "9");
    assert_eq!(
        printed(&a),
        vec!["error: unknown choice '9': enter 1, 2, 3 or 4 (? shows the commands)"]
    );
    assert_eq!(line(&mut app, "4"), vec![Action::Refresh]);
    assert!(!app.accepts(&InputItem::Line("3".into())));
    let a = feed(&mut app, NodeEvent::from(ClientEvent::List { entries: vec![entry("Bob", 1)] }));
    assert_eq!(printed(&a)[1], "| Bob : 127.0.0.1:1");
    let a = feed(&mut app, NodeEvent::Input(InputItem::TooLong));
    assert_eq!(printed(&a), vec![format!("error: line longer than {MAX_LINE_LEN} bytes ignored")]);
    assert_eq!(line(&mut app, "3"), vec![Action::Logout]);
    let a = feed(&mut app, NodeEvent::from(ClientEvent::LoggedOut));
    assert_eq!(a, vec![Action::Print("Logged out.".into()), Action::Exit(EXIT_OK)]);
}

#[test]
fn lookup_failures_return_to_menu() {
    let (mut app, _) = logged_in(vec![]);
    line(&mut app, "1");
    let a = line(&mut app, "Ann");
    assert_eq!(printed(&a)[0], "error: you cannot chat with yourself");
    line(&mut app, "1");
    line(&mut app, "Zed");
    let a = feed(&mut app, NodeEvent::from(ClientEvent::Found { name: name("Zed"), entry: None }));
    assert_eq!(printed(&a)[0], "error: no user named 'Zed' is online");
    assert_eq!(a.last(), Some(&Action::Prompt("Enter choice:".into())));
    line(&mut app, "1");
    line(&mut app, "Zed");
    let a = feed(&mut app, NodeEvent::from(ClientEvent::Unreachable { op: Operation::Lookup }));
    assert_eq!(printed(&a)[0], "error: the registry at 127.0.0.1:5000 did not answer");
    assert_eq!(a.last(), Some(&Action::Prompt("Enter choice:".into())));
}

#[test]
fn lines_typed_while_connecting_are_sent() {
    let (mut app, _) = logged_in(vec![]);
    line(&mut app, "1");
    line(&mut app, "Bob");
    assert!(!app.accepts(&InputItem::Line("early".into())), "waits for the lookup");
    found_and_trusted(&mut app, "Bob");
    assert_eq!(line(&mut app, "early"), vec![Action::Send("early".into())]);
    let a = feed(&mut app, NodeEvent::Sent { text: "early".into() });
    assert_eq!(
        a,
        vec![Action::ChatText { at: T, direction: Direction::Sent, text: "early".into() }]
    );
}

#[test]
fn chat_shows_records_and_ends_with_back() {
    let mut app = chatting();
    let a =
        feed(&mut app, chat_ev(ChatEvent::Received { seq: Seq(1), text: "hi\u{1b}[2J".into() }));
    assert_eq!(
        a,
        vec![Action::ChatText {
            at: T,
            direction: Direction::Received,
            text: "hi\u{1b}[2J".into()
        }]
    );
    assert_eq!(app.chat_peer_ref(), Some(&name("Bob")), "the peer the line is shown with");
    assert_eq!(line(&mut app, "hello"), vec![Action::Send("hello".into())]);
    assert_eq!(line(&mut app, " /back "), vec![Action::CloseChat]);
    assert!(!app.accepts(&InputItem::Line("3".into())), "closing: the menu is not back yet");
    // Reported with the end: our linger ran out, so Bob may have seen it.
    let a = feed(&mut app, chat_ev(ChatEvent::Undelivered { seq: Seq(1), text: "hello".into() }));
    assert_eq!(a, vec![]);
    let a = feed(&mut app, chat_ev(ChatEvent::Closed { reason: CloseReason::LocalClose }));
    assert_eq!(
        printed(&a)[..2],
        [
            "warning: not acknowledged by Bob (it may have been seen): hello",
            "[12:34:56] Chat with Bob ended: you left the chat."
        ]
    );
    assert_eq!(
        a[1],
        Action::Record {
            at: T,
            direction: Direction::Unacknowledged,
            peer: name("Bob"),
            text: "hello".into()
        }
    );
    assert_eq!(
        a[3],
        Action::Record {
            at: T,
            direction: Direction::Ended,
            peer: name("Bob"),
            text: "you left the chat".into()
        }
    );
    assert_eq!(a.last(), Some(&Action::Prompt("Enter choice:".into())));
}

#[test]
fn texts_after_the_peers_goodbye_are_not_delivered() {
    let mut app = chatting();
    assert_eq!(line(&mut app, "late"), vec![Action::Send("late".into())]);
    feed(&mut app, chat_ev(ChatEvent::Undelivered { seq: Seq(1), text: "late".into() }));
    let a = feed(&mut app, chat_ev(ChatEvent::Closed { reason: CloseReason::PeerClose }));
    assert_eq!(printed(&a)[0], "warning: not delivered to Bob: late");
    assert_eq!(
        a[1],
        Action::Record {
            at: T,
            direction: Direction::Undelivered,
            peer: name("Bob"),
            text: "late".into()
        }
    );
}

#[test]
fn peer_leaving_returns_to_menu() {
    let mut app = chatting();
    let a = feed(&mut app, chat_ev(ChatEvent::Closed { reason: CloseReason::PeerClose }));
    assert_eq!(printed(&a)[0], "[12:34:56] Chat with Bob ended: Bob left the chat.");
    assert!(app.accepts(&InputItem::Line("1".into())));
}

#[test]
fn failed_connect_is_one_error_line() {
    let (mut app, _) = logged_in(vec![]);
    line(&mut app, "1");
    line(&mut app, "Bob");
    found_and_trusted(&mut app, "Bob");
    feed(&mut app, NodeEvent::ConnectFailed { reason: "connection refused".into() });
    let a = feed(&mut app, chat_ev(ChatEvent::Closed { reason: CloseReason::PeerVanished }));
    assert_eq!(printed(&a)[0], "error: could not connect to Bob: connection refused");
}

#[test]
fn request_at_menu_waits_for_2() {
    let (mut app, _) = logged_in(vec![]);
    let a = request(&mut app, "Bob");
    assert_eq!(
        a,
        vec![
            Action::Print(format!(
                "Bob wants to chat, {TRUSTED}: enter 2 (or y) to accept, n to decline"
            )),
            Action::Prompt("Enter choice:".into())
        ]
    );
    let a = line(&mut app, "2");
    assert_eq!(a[0], Action::Accept);
    assert!(app.in_chat());
    let a = feed(&mut app, chat_ev(ChatEvent::Received { seq: Seq(1), text: "yo".into() }));
    assert_eq!(
        a,
        vec![Action::ChatText { at: T, direction: Direction::Received, text: "yo".into() }]
    );
    assert_eq!(app.chat_peer_ref(), Some(&name("Bob")));
}

#[test]
fn withdrawn_request_is_forgotten() {
    let (mut app, _) = logged_in(vec![]);
    request(&mut app, "Bob");
    let a = feed(&mut app, NodeEvent::ChatRequestGone { peer: name("Bob") });
    assert_eq!(printed(&a), vec!["Bob withdrew the chat request"]);
    let a = line(&mut app, "2");
    assert!(printed(&a)[0].starts_with("Waiting for a peer"));
}

#[test]
fn waiting_takes_only_back_and_accepts_at_once() {
    let (mut app, _) = logged_in(vec![]);
    line(&mut app, "2");
    assert!(!app.accepts(&InputItem::Line("hello".into())));
    assert!(!app.accepts(&InputItem::Eof));
    assert!(app.accepts(&InputItem::Line("/back".into())));
    let a = request(&mut app, "Bob");
    assert_eq!(a[0], Action::Accept);
    assert_eq!(line(&mut app, "hello"), vec![Action::Send("hello".into())]);
    // Cancel a wait.
    let (mut app, _) = logged_in(vec![]);
    line(&mut app, "2");
    let a = line(&mut app, "/back");
    assert_eq!(printed(&a)[0], "Stopped waiting.");
}

#[test]
fn end_of_input_finishes_the_chat_then_logs_out() {
    let mut app = chatting();
    let a = feed(&mut app, NodeEvent::Input(InputItem::Eof));
    assert_eq!(a, vec![Action::FinishChat]);
    let a = feed(&mut app, chat_ev(ChatEvent::Closed { reason: CloseReason::LocalClose }));
    assert_eq!(a.last(), Some(&Action::Logout));
    let a = feed(&mut app, NodeEvent::from(ClientEvent::LoggedOut));
    assert_eq!(a.last(), Some(&Action::Exit(EXIT_OK)));
}

#[test]
fn end_of_input_at_menu_logs_out() {
    let (mut app, _) = logged_in(vec![]);
    assert_eq!(feed(&mut app, NodeEvent::Input(InputItem::Eof)), vec![Action::Logout]);
    let a = feed(&mut app, NodeEvent::from(ClientEvent::Unreachable { op: Operation::Logout }));
    assert_eq!(a.last(), Some(&Action::Exit(EXIT_OK)));
}

#[test]
fn signal_closes_chat_and_logs_out_at_once() {
    let mut app = chatting();
    assert_eq!(feed(&mut app, NodeEvent::Signal(2)), vec![Action::CloseChat, Action::Logout]);
    let a = feed(&mut app, NodeEvent::from(ClientEvent::LoggedOut));
    assert_eq!(a.last(), Some(&Action::Exit(EXIT_OK)));
}

#[test]
fn oversize_send_is_reported() {
    let mut app = chatting();
    let a = feed(
        &mut app,
        NodeEvent::SendFailed { text: "x".repeat(5000), reason: SendError::TooLong },
    );
    assert!(printed(&a)[0].starts_with(&format!(
        "error: message not sent (the message is longer than {MAX_TEXT_LEN} bytes)"
    )));
    assert_eq!(
        a.last(),
        Some(&Action::Record {
            at: T,
            direction: Direction::Failed,
            peer: name("Bob"),
            text: "x".repeat(5000)
        })
    );
}

#[test]
fn keepalive_trouble_is_reported_not_fatal() {
    let (mut app, _) = logged_in(vec![]);
    let a = feed(&mut app, NodeEvent::from(ClientEvent::Unreachable { op: Operation::Keepalive }));
    assert!(
        printed(&a)[0]
            .starts_with("warning: the registry at 127.0.0.1:5000 did not answer the keepalive")
    );
    assert!(app.accepts(&InputItem::Line("1".into())));
}

#[test]
fn a_changed_key_stops_a_call_with_the_warning() {
    let (mut app, _) = logged_in(vec![]);
    line(&mut app, "1");
    line(&mut app, "Bob");
    let found = ClientEvent::Found { name: name("Bob"), entry: Some(entry("Bob", 7000)) };
    let a = feed(&mut app, NodeEvent::from(found));
    assert_eq!(a, vec![Action::CheckKey { peer: name("Bob"), key: key_of("Bob") }]);
    app.key_checked(KeyCheck::Refused("WARNING: THE KEY OF BOB HAS CHANGED\nrun this".into()));
    let a = drain(&mut app);
    assert!(!a.iter().any(|a| matches!(a, Action::Connect { .. })), "{a:?}");
    assert_eq!(printed(&a)[..2], ["WARNING: THE KEY OF BOB HAS CHANGED", "run this"]);
    assert_eq!(a.last(), Some(&Action::Prompt("Enter choice:".into())));
    assert!(!app.in_chat());
}

#[test]
fn a_changed_key_rejects_a_request_unannounced() {
    let (mut app, _) = logged_in(vec![]);
    feed(&mut app, NodeEvent::ChatRequest { peer: name("Bob"), key: key_of("Eve") });
    app.key_checked(KeyCheck::Refused("WARNING: THE KEY OF BOB HAS CHANGED".into()));
    let a = drain(&mut app);
    assert_eq!(a[0], Action::Reject);
    assert!(!printed(&a).iter().any(|l| l.contains("wants to chat")), "{a:?}");
    // Nothing is held: 2 waits.
    let a = line(&mut app, "2");
    assert!(printed(&a)[0].starts_with("Waiting for a peer"));
}

#[test]
fn still_trying_is_said_once_until_the_registry_answers() {
    let mut app = App::new(config(Some("Mert")));
    app.start();
    drain(&mut app);
    let still = |op| NodeEvent::from(ClientEvent::StillTrying { op });
    let line = "Still trying to reach the registry at 127.0.0.1:5000…".to_owned();
    assert_eq!(printed(&feed(&mut app, still(Operation::Login))), vec![line.clone()]);
    assert!(printed(&feed(&mut app, still(Operation::Login))).is_empty());
    feed(
        &mut app,
        NodeEvent::from(ClientEvent::LoggedIn {
            observed: "127.0.0.1:1".parse().unwrap(),
            lease: Duration::from_secs(60),
        }),
    );
    // Keepalives run unseen; a later wait the user sees is said again.
    assert!(printed(&feed(&mut app, still(Operation::Keepalive))).is_empty());
    assert_eq!(printed(&feed(&mut app, still(Operation::List))), vec![line]);
}

/// `s` typed at a terminal, its first key pressed in `origin`.
fn typed(app: &mut App, s: &str, origin: Scope) -> Vec<Action> {
    let item = InputItem::Line(s.to_owned());
    assert!(app.accepts_from(&item, Some(origin)), "app must accept {s:?} now");
    app.tick(T);
    app.typed(item, Some(origin));
    drain(app)
}

#[test]
fn a_chat_reply_finished_after_the_chat_ended_is_not_a_menu_choice() {
    let mut app = chatting();
    let in_chat = app.scope();
    assert!(matches!(in_chat, Scope::Call(_)));
    // `3` typed as a reply; Bob leaves; then Enter.
    feed(&mut app, chat_ev(ChatEvent::Closed { reason: CloseReason::PeerClose }));
    assert_eq!(app.scope(), Scope::Menu);
    let a = typed(&mut app, "3", in_chat);
    assert!(!a.contains(&Action::Logout), "{a:?}");
    assert_eq!(printed(&a), vec!["Not sent: the chat with Bob ended before you pressed Enter: 3"]);
    assert_eq!(a.last(), Some(&Action::Prompt("Enter choice:".into())));
    // A `/back` that came too late did what it asked: nothing to say.
    assert_eq!(typed(&mut app, "/back", in_chat), vec![Action::Prompt("Enter choice:".into())]);
    // A line begun at the menu is a choice.
    assert_eq!(typed(&mut app, "3", Scope::Menu), vec![Action::Logout]);
}

#[test]
fn a_line_typed_while_a_call_is_set_up_goes_to_its_chat_or_nowhere() {
    // Typed during the lookup: sent once connecting.
    let (mut app, _) = logged_in(vec![]);
    line(&mut app, "1");
    line(&mut app, "Bob");
    let call = app.scope();
    assert!(!app.accepts_from(&InputItem::Line("hi".into()), Some(call)));
    found_and_trusted(&mut app, "Bob");
    assert_eq!(typed(&mut app, "hi", call), vec![Action::Send("hi".into())]);
    // Typed during a lookup that fails: not run at the menu.
    let (mut app, _) = logged_in(vec![]);
    line(&mut app, "1");
    line(&mut app, "Zed");
    let call = app.scope();
    feed(&mut app, NodeEvent::from(ClientEvent::Found { name: name("Zed"), entry: None }));
    let a = typed(&mut app, "3", call);
    assert_eq!(printed(&a), vec!["Not sent: the chat did not start: 3"]);
    assert!(!a.contains(&Action::Logout));
}

#[test]
fn lines_typed_while_waiting_are_held_for_the_chat_and_back_still_works() {
    let (mut app, _) = logged_in(vec![]);
    line(&mut app, "2");
    let wait = app.scope();
    assert_eq!(typed(&mut app, "early", wait), vec![]);
    let a = request(&mut app, "Bob");
    assert_eq!(a[0], Action::Accept);
    assert_eq!(a.last(), Some(&Action::Send("early".into())));
    // Cancelled: a held line is shown back, and /back behind it works.
    let (mut app, _) = logged_in(vec![]);
    line(&mut app, "2");
    let wait = app.scope();
    typed(&mut app, "3", wait);
    let a = typed(&mut app, "/back", wait);
    assert_eq!(printed(&a)[..2], ["Stopped waiting.", "Not sent: the chat did not start: 3"]);
    assert!(!a.contains(&Action::Logout));
    assert_eq!(app.scope(), Scope::Menu);
}

#[test]
fn a_terminal_end_of_input_while_waiting_stops_the_wait_and_logs_out() {
    let (mut app, _) = logged_in(vec![]);
    line(&mut app, "2");
    let wait = app.scope();
    assert!(!app.accepts(&InputItem::Eof), "a script's end waits for the chat");
    assert!(app.accepts_from(&InputItem::Eof, Some(wait)));
    app.typed(InputItem::Eof, Some(wait));
    let a = drain(&mut app);
    assert_eq!(printed(&a)[0], "Stopped waiting.");
    assert_eq!(a.last(), Some(&Action::Logout));
}

#[test]
fn commands_in_a_chat_never_reach_the_peer() {
    let mut app = chatting();
    let a = line(&mut app, "/help");
    assert!(!a.iter().any(|a| matches!(a, Action::Send(_))), "{a:?}");
    assert!(printed(&a).iter().any(|l| l.starts_with("/quit ")), "{a:?}");
    let a = line(&mut app, " /bakc now");
    assert_eq!(
        printed(&a),
        vec![
            "error: unknown command '/bakc' (not sent): /help lists the commands; start with // \
             to send a text that starts with /"
        ]
    );
    assert_eq!(a.len(), 1);
    assert_eq!(line(&mut app, "//x"), vec![Action::Send("/x".into())]);
    assert_eq!(line(&mut app, "  //back"), vec![Action::Send("/back".into())]);
    for text in ["/", "/ ok", ":-/", "/3 apples", "a /back"] {
        assert_eq!(line(&mut app, text), vec![Action::Send(text.into())]);
    }
    // /quit: the chat ends, then the client logs out and exits.
    assert_eq!(line(&mut app, "/quit"), vec![Action::CloseChat]);
    let a = feed(&mut app, chat_ev(ChatEvent::Closed { reason: CloseReason::LocalClose }));
    assert_eq!(a.last(), Some(&Action::Logout));
    let a = feed(&mut app, NodeEvent::from(ClientEvent::LoggedOut));
    assert_eq!(a.last(), Some(&Action::Exit(EXIT_OK)));
}

#[test]
fn quit_while_waiting_logs_out() {
    let (mut app, _) = logged_in(vec![]);
    line(&mut app, "2");
    let wait = app.scope();
    let a = typed(&mut app, "/quit", wait);
    assert_eq!(printed(&a)[0], "Stopped waiting.");
    assert_eq!(a.last(), Some(&Action::Logout));
}

const COMMANDS: &str = "-----[COMMANDS]-----";

#[test]
fn the_menu_is_quiet_but_at_the_start_on_request_and_after_a_chat() {
    let (mut app, a) = logged_in(vec![]);
    assert!(printed(&a).contains(&COMMANDS.to_owned()), "at the start");
    // An error, a refresh, a failed lookup: the prompt only.
    let a = line(&mut app, "9");
    assert_eq!(a.len(), 2);
    assert_eq!(a[1], Action::Prompt("Enter choice:".into()));
    line(&mut app, "4");
    let a = feed(&mut app, NodeEvent::from(ClientEvent::List { entries: vec![] }));
    assert!(!printed(&a).contains(&COMMANDS.to_owned()), "{a:?}");
    assert_eq!(a.last(), Some(&Action::Prompt("Enter choice:".into())));
    line(&mut app, "1");
    line(&mut app, "Zed");
    let a = feed(&mut app, NodeEvent::from(ClientEvent::Found { name: name("Zed"), entry: None }));
    assert_eq!(
        a,
        vec![
            Action::Print("error: no user named 'Zed' is online".into()),
            Action::Prompt("Enter choice:".into())
        ]
    );
    line(&mut app, "2");
    let a = line(&mut app, "/back");
    assert_eq!(
        a,
        vec![Action::Print("Stopped waiting.".into()), Action::Prompt("Enter choice:".into())]
    );
    // Asked for.
    for ask in ["?", "/help", " ? "] {
        let a = line(&mut app, ask);
        assert_eq!(printed(&a)[0], COMMANDS);
        assert_eq!(a.last(), Some(&Action::Prompt("Enter choice:".into())));
    }
    // After a chat.
    let mut app = chatting();
    let a = feed(&mut app, chat_ev(ChatEvent::Closed { reason: CloseReason::PeerClose }));
    assert!(printed(&a).contains(&COMMANDS.to_owned()), "{a:?}");
    // /quit at the menu logs out.
    assert_eq!(line(&mut app, "/quit"), vec![Action::Logout]);
}

#[test]
fn a_chat_that_timed_out_while_stopped_blames_the_stop() {
    let mut app = chatting();
    app.resumed(T, Duration::from_secs(95));
    let a = feed(&mut app, chat_ev(ChatEvent::Closed { reason: CloseReason::PeerSilent }));
    assert_eq!(
        printed(&a)[0],
        "[12:34:56] Chat with Bob ended: this client was stopped (Ctrl-Z) for 95 s, longer than \
         a chat waits for an answer."
    );
    // Long after the stop, the peer is to blame again.
    let mut app = chatting();
    app.resumed(T - Duration::from_secs(60), Duration::from_secs(95));
    let a = feed(&mut app, chat_ev(ChatEvent::Closed { reason: CloseReason::PeerSilent }));
    assert_eq!(printed(&a)[0], "[12:34:56] Chat with Bob ended: Bob stopped answering.");
}

#[test]
fn a_request_is_declined_with_n_and_accepted_with_y() {
    let (mut app, _) = logged_in(vec![]);
    request(&mut app, "Bob");
    let a = line(&mut app, "n");
    assert_eq!(a[0], Action::Decline);
    assert_eq!(printed(&a), ["Declined the chat with Bob."]);
    // Nothing is held any more: n is no choice now.
    let a = line(&mut app, "n");
    assert!(printed(&a)[0].starts_with("error: unknown choice 'n'"), "{a:?}");
    request(&mut app, "Bob");
    assert_eq!(line(&mut app, "y")[0], Action::Accept);
    assert!(app.in_chat());
}

#[test]
fn back_at_the_terminal_cancels_a_call_at_once() {
    let (mut app, _) = logged_in(vec![]);
    line(&mut app, "1");
    line(&mut app, "Bob");
    found_and_trusted(&mut app, "Bob");
    let scope = app.scope();
    assert_eq!(typed(&mut app, "/back", scope), vec![Action::CancelCall]);
    let a = feed(&mut app, chat_ev(ChatEvent::Closed { reason: CloseReason::LocalClose }));
    assert_eq!(printed(&a)[0], "Call to Bob cancelled.");
    // A script's /back waits for the chat instead (it closes it once started).
    let (mut app, _) = logged_in(vec![]);
    line(&mut app, "1");
    line(&mut app, "Bob");
    found_and_trusted(&mut app, "Bob");
    assert_eq!(line(&mut app, "/back"), vec![Action::CloseChat]);
}

#[test]
fn a_line_longer_than_a_message_goes_as_several() {
    let mut app = chatting();
    let long = "ab".repeat(MAX_TEXT_LEN);
    let a = line(&mut app, &long);
    let sent: Vec<String> = a
        .iter()
        .filter_map(|a| match a {
            Action::Send(t) => Some(t.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(sent.len(), 2);
    assert!(sent.iter().all(|t| t.len() <= MAX_TEXT_LEN));
    assert_eq!(sent.concat(), long);
    assert_eq!(
        printed(&a),
        [format!("(a long line: sent as 2 messages of at most {MAX_TEXT_LEN} bytes)")]
    );
}

#[test]
fn calls_missed_in_a_chat_are_listed_after_it() {
    let mut app = chatting();
    let a = feed(&mut app, NodeEvent::MissedCall { peer: name("Cid"), key: key_of("Cid") });
    assert_eq!(printed(&a), ["Cid called, but another call was waiting: missed"]);
    let a = feed(&mut app, chat_ev(ChatEvent::Closed { reason: CloseReason::PeerClose }));
    assert!(printed(&a).contains(&"Missed calls during the chat: Cid".to_owned()), "{a:?}");
}

#[test]
fn chat_lines_are_shown_with_clock_and_sender() {
    assert_eq!(
        super::chat_line_parts("12:34:56", "Bob", "hi\\u{1b}[2J").concat(),
        "[12:34:56] Bob: hi\\u{1b}[2J"
    );
}
