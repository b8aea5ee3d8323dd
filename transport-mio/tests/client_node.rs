//! Two client nodes and a registry on loopback, each on its own thread: a
//! chat request is held, unanswered, until accepted (a third caller meanwhile
//! is turned away; a text typed meanwhile waits), then texts go both ways
//! and the chat ends politely.
//!
//! The test types into each node's input through a socket pair and waits
//! for what the nodes report; nothing sleeps.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::net::UnixStream;
use std::sync::mpsc::{Receiver, Sender, channel};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use p2pchat_core::{
    CHAT_VERSION, ChatEvent, ClientEvent, CloseReason, CookieKey, PREAMBLE_MARKER, PrivateKey,
    RegistryServer, ServerConfig, UserName,
};
use p2pchat_transport_mio::{
    ClientNode, InputItem, InputSource, LineSplitter, NodeConfig, NodeEvent, NodeHandler,
    ServerLoop,
};

const TIMEOUT: Duration = Duration::from_secs(10);

/// A scripted user: looks `target` up once logged in and connects; a typed
/// `/accept` accepts the held chat, any other line is sent, the end of input
/// closes the chat; a closed chat logs out, and logging out stops the node.
/// Reports every event to the test.
struct Peer {
    target: Option<UserName>,
    lines: LineSplitter,
    tx: Sender<NodeEvent>,
}

impl NodeHandler for Peer {
    type Decoder = LineSplitter;

    fn decoder(&self) -> &LineSplitter {
        &self.lines
    }

    fn decoder_mut(&mut self) -> &mut LineSplitter {
        &mut self.lines
    }

    fn accepts(&self, _item: &InputItem) -> bool {
        true
    }

    fn handle(&mut self, now: Instant, event: NodeEvent, node: &mut ClientNode) {
        match &event {
            NodeEvent::Input(InputItem::Line(line)) if line == "/accept" => node.accept(now),
            NodeEvent::Input(InputItem::Line(line)) => node.send_text(now, line.clone()),
            NodeEvent::Input(InputItem::Eof) => node.close_chat(now),
            NodeEvent::Registry(ClientEvent::LoggedIn { .. }) => {
                if let Some(target) = &self.target {
                    node.lookup(now, target.clone());
                }
            }
            NodeEvent::Registry(ClientEvent::Found { entry: Some(entry), .. }) => {
                node.connect(now, entry.name.clone(), entry.key, entry.chat_addr());
            }
            NodeEvent::Chat { event: ChatEvent::Closed { .. }, .. } => node.logout(now),
            NodeEvent::Registry(ClientEvent::LoggedOut) => node.stop(),
            _ => {}
        }
        let _ = self.tx.send(event);
    }
}

fn name(s: &str) -> UserName {
    UserName::new(s).unwrap()
}

/// Starts a node logged in as `me`; returns its events, the keyboard that
/// types into it, and its thread.
fn start(
    me: &str,
    target: Option<&str>,
    server: SocketAddr,
) -> (Receiver<NodeEvent>, UnixStream, JoinHandle<()>) {
    let (keyboard, input) = UnixStream::pair().unwrap();
    let (tx, rx) = channel();
    let me = name(me);
    let mut peer = Peer { target: target.map(name), lines: LineSplitter::new(), tx };
    let config = NodeConfig {
        server,
        listen: "127.0.0.1:0".parse().unwrap(),
        seed: 7,
        identity: PrivateKey::from_bytes([me.as_str().as_bytes()[0]; 32]),
        input: InputSource::File(std::fs::File::from(std::os::fd::OwnedFd::from(input))),
        terminal_signals: false,
    };
    let thread = std::thread::spawn(move || {
        let mut node = ClientNode::new(config).unwrap();
        assert_eq!(node.listen_addr().unwrap().ip().to_string(), "127.0.0.1");
        node.login(Instant::now(), me);
        node.run(&mut peer).unwrap();
    });
    (rx, keyboard, thread)
}

/// Waits for the first event that `pred` picks, skipping others.
fn wait_for(rx: &Receiver<NodeEvent>, what: &str, pred: impl Fn(&NodeEvent) -> bool) -> NodeEvent {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(event) if pred(&event) => return event,
            Ok(_) => {}
            Err(e) => panic!("waiting for {what}: {e}"),
        }
    }
}

fn chat_event(event: &NodeEvent) -> Option<&ChatEvent> {
    match event {
        NodeEvent::Chat { event, .. } => Some(event),
        _ => None,
    }
}

#[test]
fn two_nodes_chat_through_a_registry() {
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let core = RegistryServer::new(Instant::now(), CookieKey([7; 16]), ServerConfig::default());
    let mut server = ServerLoop::new(socket, core).unwrap();
    let server_addr = server.local_addr().unwrap();
    let stop_server = server.stop_handle();
    let server_thread = std::thread::spawn(move || server.run(|_| {}).unwrap());

    let (bob, mut bob_keys, bob_thread) = start("Bob", None, server_addr);
    wait_for(&bob, "Bob logged in", |e| {
        matches!(e, NodeEvent::Registry(ClientEvent::LoggedIn { .. }))
    });
    let (ann, mut ann_keys, ann_thread) = start("Ann", Some("Bob"), server_addr);
    let found = wait_for(&ann, "Ann found Bob", |e| {
        matches!(e, NodeEvent::Registry(ClientEvent::Found { entry: Some(_), .. }))
    });
    let NodeEvent::Registry(ClientEvent::Found { entry: Some(bob_entry), .. }) = found else {
        unreachable!()
    };

    // Ann's call is held: Bob hears who it is; Ann's chat does not start,
    // and what she types meanwhile waits in her session. (Bob's `Hello`, had
    // it been sent, would have reached Ann before her typing did.)
    wait_for(
        &bob,
        "Ann's chat request",
        |e| matches!(e, NodeEvent::ChatRequest { peer, .. } if peer.as_str() == "Ann"),
    );
    ann_keys.write_all(b"hello Bob\n").unwrap();
    wait_for(&ann, "Ann's text queued", |e| {
        assert!(
            !matches!(chat_event(e), Some(ChatEvent::Connected { .. })),
            "Ann's chat started before Bob accepted it: {e:?}"
        );
        matches!(e, NodeEvent::Sent { text } if text == "hello Bob")
    });

    // A stranger who connects meanwhile gets Bob's cleartext preamble (the
    // version) and nothing more until it proves who it is; Bob hears of it
    // not at all (checked by the events below).
    let mut third = TcpStream::connect(bob_entry.chat_addr()).unwrap();
    third.set_read_timeout(Some(TIMEOUT)).unwrap();
    let mut buf = [0u8; 6];
    third.read_exact(&mut buf).unwrap();
    assert_eq!(buf, [0, 0, 0, 2, PREAMBLE_MARKER, CHAT_VERSION], "only the preamble");

    bob_keys.write_all(b"/accept\n").unwrap();
    wait_for(
        &ann,
        "Ann connected",
        |e| matches!(chat_event(e), Some(ChatEvent::Connected { peer }) if peer.as_str() == "Bob"),
    );
    wait_for(
        &bob,
        "Bob got Ann's text",
        |e| matches!(chat_event(e), Some(ChatEvent::Received { text, .. }) if text == "hello Bob"),
    );
    wait_for(&ann, "Ann's text delivered", |e| {
        matches!(chat_event(e), Some(ChatEvent::Delivered { .. }))
    });
    bob_keys.write_all(b"hi Ann\n").unwrap();
    wait_for(
        &ann,
        "Ann got Bob's text",
        |e| matches!(chat_event(e), Some(ChatEvent::Received { text, .. }) if text == "hi Ann"),
    );

    // Ann's input ends: she closes the chat, both log out and stop.
    drop(ann_keys);
    wait_for(&ann, "Ann's chat closed", |e| {
        matches!(chat_event(e), Some(ChatEvent::Closed { reason: CloseReason::LocalClose }))
    });
    wait_for(&bob, "Bob's chat closed", |e| {
        matches!(chat_event(e), Some(ChatEvent::Closed { reason: CloseReason::PeerClose }))
    });
    for (rx, who) in [(&ann, "Ann"), (&bob, "Bob")] {
        wait_for(rx, &format!("{who} logged out"), |e| {
            matches!(e, NodeEvent::Registry(ClientEvent::LoggedOut))
        });
    }
    ann_thread.join().unwrap();
    bob_thread.join().unwrap();
    drop(bob_keys);
    stop_server.stop();
    server_thread.join().unwrap();
}
