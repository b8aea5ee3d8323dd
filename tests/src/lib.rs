//! Test support for p2pchat.
//!
//! - [`net`]: the deterministic datagram network simulator: a registry and
//!   its clients, one virtual clock, seeded loss, duplication, delay and
//!   reordering.
//! - [`pipe`]: TCP as byte pipes between two chat sessions, cut at random
//!   points, with the same virtual clock.
//! - [`noise_peer`]: a scripted chat peer that does the handshake right and
//!   then seals anything, to reach a session's logic past its encryption.
//! - [`punch_sim`]: TCP hole punching between two punch machines behind
//!   modelled NATs, in virtual time with SYN loss.
//! - [`raw_conn`]: a [`noise_peer::RawPeer`] driven over a real TCP stream.
//! - [`registry_proxy`]: a UDP proxy in front of the registry that records
//!   requests and may rewrite replies (a lying registry).
//! - [`netns`]: real network paths for end-to-end tests: network
//!   namespaces joined by veth pairs, with loss from nftables.
//! - [`netns_nat`]: home networks behind NATs (endpoint-independent,
//!   symmetric, dropping inbound SYNs) on a public segment, in namespaces.
//! - [`fuzz`]: what the cargo-fuzz targets in `fuzz/` run; the test suite
//!   runs it too.

pub mod fuzz;
pub mod net;
pub mod netns;
pub mod netns_nat;
pub mod noise_peer;
pub mod pipe;
pub mod punch_sim;
pub mod raw_conn;
pub mod registry_proxy;
