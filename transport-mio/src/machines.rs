//! The core's machines, seen through the driver traits.

use std::net::SocketAddr;
use std::time::Instant;

use p2pchat_core::{
    ChatSession, ClientEvent, RegistryClient, RegistryServer, ServerEvent, Transmit,
};

use crate::stream::StreamCore;
use crate::udp::DatagramCore;

impl DatagramCore for RegistryServer {
    type Event = ServerEvent;
    fn handle_datagram(&mut self, now: Instant, from: SocketAddr, bytes: &[u8]) {
        RegistryServer::handle_datagram(self, now, from, bytes);
    }
    fn poll_transmit(&mut self) -> Option<Transmit> {
        RegistryServer::poll_transmit(self)
    }
    fn poll_transmit_into(&mut self, buf: &mut Vec<u8>) -> Option<SocketAddr> {
        RegistryServer::poll_transmit_into(self, buf)
    }
    fn poll_event(&mut self) -> Option<ServerEvent> {
        RegistryServer::poll_event(self)
    }
    fn poll_timeout(&self) -> Option<Instant> {
        RegistryServer::poll_timeout(self)
    }
    fn handle_timeout(&mut self, now: Instant) {
        RegistryServer::handle_timeout(self, now);
    }
}

impl DatagramCore for RegistryClient {
    type Event = ClientEvent;
    fn handle_datagram(&mut self, now: Instant, from: SocketAddr, bytes: &[u8]) {
        RegistryClient::handle_datagram(self, now, from, bytes);
    }
    fn poll_transmit(&mut self) -> Option<Transmit> {
        RegistryClient::poll_transmit(self)
    }
    fn poll_event(&mut self) -> Option<ClientEvent> {
        RegistryClient::poll_event(self)
    }
    fn poll_timeout(&self) -> Option<Instant> {
        RegistryClient::poll_timeout(self)
    }
    fn handle_timeout(&mut self, now: Instant) {
        RegistryClient::handle_timeout(self, now);
    }
}

impl StreamCore for ChatSession {
    fn handle_input(&mut self, now: Instant, bytes: &[u8]) {
        if let Err(e) = ChatSession::handle_input(self, now, bytes) {
            // The session reports it too, as `Closed { reason: Error(..) }`.
            tracing::debug!(error = %e, "chat stream broke the protocol");
        }
    }
    fn handle_eof(&mut self, now: Instant) {
        ChatSession::handle_eof(self, now);
    }
    fn pending_output(&mut self) -> &[u8] {
        ChatSession::pending_output(self)
    }
    fn consume(&mut self, n: usize) {
        ChatSession::consume(self, n);
    }
    fn wants_read(&self) -> bool {
        ChatSession::wants_read(self)
    }
    fn is_finished(&self) -> bool {
        ChatSession::is_finished(self)
    }
}
