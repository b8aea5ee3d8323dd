//! Test support: the deterministic network simulator (skeleton).
//!
//! - [`pipe`]: two chat sessions joined by a simulated TCP connection cut at
//!   random points, one virtual clock.

pub mod pipe;
