//! The harness of the node tests: scripted users, each a node on its own
//! thread typed into through a socket pair, and a registry on loopback.
//! Nothing sleeps: tests wait for what the nodes report.

#![allow(dead_code)] // Each test file uses a part.

use std::net::SocketAddr;
use std::os::unix::net::UnixStream;
use std::sync::mpsc::{Receiver, Sender, channel};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use p2pchat_core::{
    ChatEvent, ClientEvent, CookieKey, PrivateKey, RegistryServer, ServerConfig, UserName,
};
use p2pchat_transport_mio::{
    ClientNode, InputItem, InputSource, LineSplitter, NodeConfig, NodeEvent, NodeHandler,
    ServerLoop, StopHandle,
};

pub const TIMEOUT: Duration = Duration::from_secs(10);

/// A scripted user: looks `target` up once logged in and connects; a typed
/// `/accept` accepts the held chat, `/decline` declines it, `/cancel` gives
/// up the call under way, `/call NAME` looks NAME up and calls, `/burst N`
/// sends N texts of 4,000 bytes at once; any other
/// line is sent, the end of input closes the chat; a closed chat logs out
/// (unless `stay` is set), and logging out stops the node. Reports every
/// event to the test.
pub struct Peer {
    target: Option<UserName>,
    /// Stay logged in when a chat closes.
    stay: bool,
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
            NodeEvent::Input(InputItem::Line(line)) if line == "/decline" => node.decline(now),
            NodeEvent::Input(InputItem::Line(line)) if line == "/cancel" => node.cancel_call(now),
            NodeEvent::Input(InputItem::Line(line)) if line.starts_with("/burst ") => {
                // N texts of 4,000 bytes in one go, as the app sends a long
                // line split into messages: more than the session takes.
                let n: usize = line["/burst ".len()..].parse().expect("a count");
                for i in 0..n {
                    node.send_text(now, format!("{i:04} {}", "x".repeat(3995)));
                }
            }
            NodeEvent::Input(InputItem::Line(line)) if line.starts_with("/call ") => {
                node.lookup(now, name(&line["/call ".len()..]));
            }
            NodeEvent::Input(InputItem::Line(line)) => node.send_text(now, line.clone()),
            NodeEvent::Input(InputItem::Eof) => node.close_chat(now),
            NodeEvent::Registry(ev) => match &**ev {
                ClientEvent::LoggedIn { .. } => {
                    if let Some(target) = &self.target {
                        node.lookup(now, target.clone());
                    }
                }
                ClientEvent::Found { entry: Some(entry), .. } => {
                    node.connect(now, entry.name.clone(), entry.key, entry.chat_addr());
                }
                ClientEvent::LoggedOut => node.stop(),
                _ => {}
            },
            NodeEvent::Chat { event: ChatEvent::Closed { .. }, .. } if !self.stay => {
                node.logout(now)
            }
            _ => {}
        }
        let _ = self.tx.send(event);
    }
}

pub fn name(s: &str) -> UserName {
    UserName::new(s).unwrap()
}

/// Starts a node logged in as `me`; returns its events, the keyboard that
/// types into it, and its thread.
pub fn start(
    me: &str,
    target: Option<&str>,
    server: SocketAddr,
) -> (Receiver<NodeEvent>, UnixStream, JoinHandle<()>) {
    start_with(me, target, false, server)
}

/// As [`start`]; with `stay`, the node stays logged in when a chat closes.
pub fn start_with(
    me: &str,
    target: Option<&str>,
    stay: bool,
    server: SocketAddr,
) -> (Receiver<NodeEvent>, UnixStream, JoinHandle<()>) {
    let (keyboard, input) = UnixStream::pair().unwrap();
    let (tx, rx) = channel();
    let me = name(me);
    let mut peer = Peer { target: target.map(name), stay, lines: LineSplitter::new(), tx };
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
pub fn wait_for(
    rx: &Receiver<NodeEvent>,
    what: &str,
    pred: impl Fn(&NodeEvent) -> bool,
) -> NodeEvent {
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

pub fn chat_event(event: &NodeEvent) -> Option<&ChatEvent> {
    match event {
        NodeEvent::Chat { event, .. } => Some(event),
        _ => None,
    }
}

pub fn registry_event(event: &NodeEvent) -> Option<&ClientEvent> {
    match event {
        NodeEvent::Registry(event) => Some(event),
        _ => None,
    }
}

/// A registry on loopback on its own thread: its address, the handle that
/// stops it, and the thread.
pub fn registry() -> (SocketAddr, StopHandle, JoinHandle<()>) {
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let core = RegistryServer::new(Instant::now(), CookieKey([7; 16]), ServerConfig::default());
    let mut server = ServerLoop::new(socket, core).unwrap();
    let addr = server.local_addr().unwrap();
    let stop = server.stop_handle();
    let thread = std::thread::spawn(move || server.run(|_| {}).unwrap());
    (addr, stop, thread)
}

/// Waits until `rx`'s node is logged in.
pub fn logged_in(rx: &Receiver<NodeEvent>, who: &str) {
    wait_for(rx, &format!("{who} logged in"), |e| {
        matches!(registry_event(e), Some(ClientEvent::LoggedIn { .. }))
    });
}
