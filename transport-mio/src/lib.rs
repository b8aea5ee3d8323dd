//! # p2pchat-transport-mio
//!
//! Drives the sans-IO machines of `p2pchat-core` over real sockets with mio,
//! on one thread: no other threads, no async runtime. IPv4 and IPv6 alike.
//!
//! - [`UdpDriver`] moves datagrams between one UDP socket and a
//!   [`DatagramCore`] (registry server or client), with a bounded send queue.
//! - [`StreamConn`] moves bytes between one TCP stream and a [`StreamCore`]
//!   (a chat session), keeping partial writes and pushing back on a peer that
//!   does not read.
//! - [`UserInput`] reads standard input as lines without blocking the loop,
//!   whether it is a terminal, a pipe or a regular file; [`UserOutput`]
//!   writes standard output through a bounded buffer, never waiting for a
//!   terminal or pipe that does not take it.
//! - [`ClientNode`] is the whole client loop: the registry socket, the chat
//!   listener (its port is what the client registers), the chat streams, the
//!   user's input and signals in one `mio::Poll`. It prints nothing: it
//!   reports [`NodeEvent`]s to a [`NodeHandler`] (the CLI's menu is one, a
//!   test is another), which answers with the node's commands.
//! - [`ServerLoop`] is the whole registry server loop; [`size_buffers`]
//!   gives its socket room for bursts; [`fetch_list`] is one list request
//!   from start to finish. [`SharedCore`] and [`reuse_port_sockets`] run
//!   one registry on several loops, each on its own thread and socket.
//! - [`RelayDriver`] drives the chat relay (`p2pchat_core::Relay`) over a
//!   TCP listener and its connections, inside the registry's [`ServerLoop`]
//!   ([`ServerLoop::add_relay`]).

#![warn(clippy::unwrap_used, clippy::expect_used)]

mod client;
mod fd;
mod input;
mod machines;
mod mmsg;
mod oneshot;
mod output;
mod relay;
mod server;
mod shared;
mod sockbuf;
mod stream;
mod udp;

pub use client::{
    ACK_DELAY, CONNECT_TIMEOUT, ClientNode, FINISH_STALL_LIMIT, InputSource, MAX_ANSWERED,
    MAX_HELD_EVENTS, MAX_INCOMING, NodeConfig, NodeError, NodeEvent, NodeHandler,
    RELAY_PAIR_TIMEOUT, VERIFY_TIMEOUT,
};
pub use fd::PIPE_SIZE;
pub use input::{INPUT_CHUNK, InputDecoder, InputItem, LineSplitter, MAX_LINE_LEN, UserInput};
pub use mmsg::BATCH;
pub use oneshot::{ListError, fetch_list, local_addr_for};
pub use output::{EXIT_DRAIN_TIMEOUT, MAX_PENDING_OUTPUT, PIPE_BUF, UserOutput};
pub use relay::{RELAY_READ_CHUNK, RelayDriver, RelayRecorder};
pub use server::{RelayEvents, ServerLoop, StopHandle};
pub use shared::{MAX_SERVER_THREADS, SharedCore, reuse_port_sockets};
pub use sockbuf::{BufferSizes, SERVER_SOCKET_BUFFER, size_buffers};
pub use stream::{READ_CHUNK, StreamConn, StreamCore, StreamState};
pub use udp::{DatagramCore, MAX_QUEUED_DATAGRAMS, UdpDriver};
