//! The client node's side of punching: the sockets (the chat listener and
//! the punching sockets share its port) and the glue between the
//! [`Punching`] and the node's registry client and chats.

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Instant;

use mio::net::TcpStream;
use p2pchat_core::{ClientEvent, Operation, PublicKey, UserName};
use socket2::{Domain, Protocol, Socket, Type};

use super::chats::Dial;
use super::punching::{Deferred, Outcome};
use super::{ClientNode, NodeEvent};
use crate::stream::StreamConn;

/// The chat listener, bound with address and port reuse so that punching
/// sockets can share its port.
pub(super) fn bind_listener(addr: SocketAddr) -> io::Result<mio::net::TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    socket.bind(&addr.into())?;
    socket.listen(1024)?;
    socket.set_nonblocking(true)?;
    Ok(mio::net::TcpListener::from_std(socket.into()))
}

/// A non-blocking connect to `to` from `from` (the chat port), with reuse.
pub(super) fn punch_socket(from: SocketAddr, to: SocketAddr) -> io::Result<TcpStream> {
    let socket = Socket::new(Domain::for_address(to), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&from.into())?;
    match socket.connect(&to.into()) {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(nix::libc::EINPROGRESS) => {}
        Err(e) => return Err(e),
    }
    Ok(TcpStream::from_std(socket.into()))
}

/// Our local IPv4 addresses for the registry (host candidates): the
/// listener's own address when it is bound to one, else every up
/// interface's, loopback excluded.
pub(super) fn local_ipv4s(listen: IpAddr) -> Vec<Ipv4Addr> {
    match listen {
        IpAddr::V4(ip) if ip.is_loopback() => Vec::new(),
        IpAddr::V4(ip) if !ip.is_unspecified() => vec![ip],
        IpAddr::V6(_) => Vec::new(),
        IpAddr::V4(_) => {
            let Ok(addrs) = nix::ifaddrs::getifaddrs() else { return Vec::new() };
            let mut out: Vec<Ipv4Addr> = addrs
                .filter_map(|a| a.address?.as_sockaddr_in().map(|s| s.ip()))
                .filter(|ip| !ip.is_loopback() && !ip.is_unspecified())
                .collect();
            out.dedup();
            out
        }
    }
}

impl ClientNode {
    /// Carries out a command on the active chat, or keeps it for the chat
    /// of our call while that has no connection yet.
    pub(super) fn on_chat(&mut self, now: Instant, command: Deferred) {
        if self.punching.calling() {
            self.punching.held.push(command);
            return;
        }
        match command {
            Deferred::Text(text) => self.chats.send_text(now, text, &mut self.events),
            Deferred::Finish => self.chats.finish(now),
            Deferred::Close => self.chats.close(now, &mut self.events),
        }
    }

    /// Carries out what was held for our call's chat, in order.
    fn replay_held(&mut self, now: Instant) {
        for command in std::mem::take(&mut self.punching.held) {
            self.on_chat(now, command);
        }
    }

    /// Takes the listener's connections: while our call punches, one from
    /// the callee's candidate addresses is the call's (we are its Noise
    /// initiator), any other is admitted as always.
    pub(super) fn take_incoming(&mut self, now: Instant) {
        let registry = self.poll.registry();
        loop {
            let (stream, from) = match self.listener.accept() {
                Ok(s) => s,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    tracing::warn!(error = %e, "accepting a chat failed");
                    return;
                }
            };
            if self.punching.claims(from) {
                let token = self.punching.token();
                match StreamConn::accepted(stream, registry, token) {
                    Ok(conn) => self.punching.take_accepted(now, from, conn),
                    Err(e) => {
                        tracing::debug!(error = %e, "registering a punched connection failed")
                    }
                }
            } else {
                self.chats.take_incoming(now, stream, from, self.me.as_ref(), registry);
            }
        }
    }

    /// Starts a call through the registry's introduction.
    pub(super) fn call(&mut self, now: Instant, peer: UserName, key: PublicKey, addr: SocketAddr) {
        self.punching.call(peer.clone(), key, addr, self.poll.registry());
        self.registry.introduce(now, peer);
    }

    /// Gives up a call that is still punching. Returns whether one was.
    pub(super) fn cancel_punching(&mut self, now: Instant) -> bool {
        let Some((peer, key)) = self.punching.cancel(self.poll.registry()) else { return false };
        let Some(me) = self.me.clone() else { return true };
        let dial = Dial::Failed("cancelled".to_owned());
        self.chats.connect(now, me, peer, key, dial, self.poll.registry(), &mut self.events);
        self.replay_held(now);
        true
    }

    /// Takes the registry's events that are the punching's; returns the
    /// others.
    pub(super) fn punching_event(&mut self, now: Instant, ev: ClientEvent) -> Option<ClientEvent> {
        let registry = self.poll.registry();
        match ev {
            ClientEvent::Introduced { name, intro } => {
                self.punching.introduced(now, &name, intro, registry);
                None
            }
            ClientEvent::Called { intro } => {
                if self.me.is_some() {
                    self.punching.called(now, intro, registry);
                }
                None
            }
            ClientEvent::Refused { op: Operation::Introduce, .. }
            | ClientEvent::Unreachable { op: Operation::Introduce } => {
                self.punching.without_introduction();
                None
            }
            ClientEvent::StillTrying { op: Operation::Introduce } => None,
            other => Some(other),
        }
    }

    /// Callers that proved themselves on connections we admitted.
    pub(super) fn punching_heard(&mut self, names: &[UserName]) {
        for name in names {
            self.punching.authenticated(name, &mut self.events, self.poll.registry());
        }
    }

    /// Fires the punching's timers, moves its sockets, and hands what it
    /// made to the chats.
    pub(super) fn drive_punching(&mut self, now: Instant) {
        self.punching.drive(now, self.poll.registry());
        if self.punching.outcomes.is_empty() {
            return;
        }
        for outcome in std::mem::take(&mut self.punching.outcomes) {
            let registry = self.poll.registry();
            match outcome {
                Outcome::Call { peer, key, dial, relayed } => {
                    let Some(me) = self.me.clone() else { continue };
                    if let Some(relayed) = relayed {
                        self.events.push_back(NodeEvent::Route { peer: peer.clone(), relayed });
                    }
                    self.chats.connect(now, me, peer, key, dial, registry, &mut self.events);
                    self.replay_held(now);
                }
                Outcome::Admit { conn, early, relayed } => {
                    let Some(me) = self.me.clone() else {
                        conn.close(registry);
                        continue;
                    };
                    if let Some((peer, relayed)) = relayed {
                        self.events.push_back(NodeEvent::Route { peer, relayed });
                    }
                    self.chats.admit(now, conn, me, &early, registry);
                }
            }
        }
    }
}
