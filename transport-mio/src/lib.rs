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
//!   whether it is a terminal, a pipe or a regular file.
//! - [`ServerLoop`] is the whole registry server loop; [`fetch_list`] one
//!   list request from start to finish.

#![warn(clippy::unwrap_used, clippy::expect_used)]

mod input;
mod machines;
mod oneshot;
mod server;
mod stream;
mod udp;

pub use input::{INPUT_CHUNK, InputDecoder, InputItem, LineSplitter, MAX_LINE_LEN, UserInput};
pub use oneshot::{ListError, any_addr_for, fetch_list};
pub use server::{ServerLoop, StopHandle};
pub use stream::{READ_CHUNK, StreamConn, StreamCore, StreamState};
pub use udp::{DatagramCore, MAX_QUEUED_DATAGRAMS, UdpDriver};
