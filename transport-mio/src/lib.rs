//! Drives the p2pchat core over real sockets with mio (skeleton).
