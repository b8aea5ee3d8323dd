//! Test support for p2pchat.
//!
//! - [`net`]: the deterministic datagram network simulator: a registry and
//!   its clients, one virtual clock, seeded loss, duplication, delay and
//!   reordering.
//! - [`pipe`]: TCP as byte pipes between two chat sessions, cut at random
//!   points, with the same virtual clock.
//! - [`fuzz`]: what the cargo-fuzz targets in `fuzz/` run; the test suite
//!   runs it too.

pub mod fuzz;
pub mod net;
pub mod pipe;
