//! The node's handling of the handler's output: what a turn that only took
//! input printed (the echo of a typed text) is written though nothing else
//! ever happens (no timer, no socket wakes the node again).
//!
//! The node runs on its own thread, typed into through a socket pair, and
//! prints to a pipe the test reads; nothing sleeps.

mod common;

use std::fs::File;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::sync::mpsc::channel;
use std::time::Instant;

use common::TIMEOUT;
use p2pchat_core::PrivateKey;
use p2pchat_transport_mio::{
    ClientNode, InputItem, InputSource, LineSplitter, NodeConfig, NodeEvent, NodeHandler,
    UserOutput,
};

/// Prints every line typed into it; stops at the end of input.
struct Echo {
    lines: LineSplitter,
    out: UserOutput,
}

impl NodeHandler for Echo {
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

    fn output(&mut self) -> Option<&mut UserOutput> {
        Some(&mut self.out)
    }

    fn handle(&mut self, _now: Instant, event: NodeEvent, node: &mut ClientNode) {
        match event {
            NodeEvent::Input(InputItem::Line(line)) => {
                assert!(self.out.write(format!("{line}\n").as_bytes()));
            }
            NodeEvent::Input(InputItem::Eof) => node.stop(),
            _ => {}
        }
    }
}

#[test]
fn what_a_typed_line_printed_is_written_though_nothing_else_happens() {
    // Nothing is logged in and nothing calls: no timer of the node's own
    // would wake it, only the held output's.
    let registry = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let (mut keyboard, input) = UnixStream::pair().unwrap();
    let (screen, out) = rustix::pipe::pipe().unwrap();
    let config = NodeConfig {
        server: registry.local_addr().unwrap(),
        listen: "127.0.0.1:0".parse().unwrap(),
        seed: 1,
        identity: PrivateKey::from_bytes([3; 32]),
        input: InputSource::File(File::from(std::os::fd::OwnedFd::from(input))),
        terminal_signals: false,
    };
    let node = std::thread::spawn(move || {
        let mut node = ClientNode::new(config).unwrap();
        let mut echo =
            Echo { lines: LineSplitter::new(), out: UserOutput::from_file(File::from(out)) };
        node.run(&mut echo).unwrap();
    });
    let (tx, shown) = channel();
    let reader = std::thread::spawn(move || {
        let mut screen = File::from(screen);
        let mut buf = [0u8; 256];
        loop {
            match screen.read(&mut buf) {
                Ok(0) | Err(_) => return,
                Ok(n) => tx.send(buf[..n].to_vec()).unwrap(),
            }
        }
    });
    let mut seen = Vec::new();
    for line in ["hello", "again"] {
        keyboard.write_all(format!("{line}\n").as_bytes()).unwrap();
        let want = format!("{line}\n");
        while !seen.ends_with(want.as_bytes()) {
            let chunk = shown.recv_timeout(TIMEOUT).unwrap_or_else(|e| {
                panic!(
                    "{line:?} was never written ({e}); shown: {:?}",
                    String::from_utf8_lossy(&seen)
                )
            });
            seen.extend(chunk);
        }
    }
    assert_eq!(seen, b"hello\nagain\n");
    drop(keyboard);
    node.join().unwrap();
    reader.join().unwrap();
}
