//! The p2pchat command (skeleton).
fn main() {}
