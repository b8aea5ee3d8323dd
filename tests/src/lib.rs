//! Test support for p2pchat: the deterministic network simulator.
//!
//! - [`net`]: datagrams between a registry and its clients, with one virtual
//!   clock and seeded loss, duplication, delay and reordering.

pub mod net;
