//! Test support: the deterministic network simulator (skeleton).
