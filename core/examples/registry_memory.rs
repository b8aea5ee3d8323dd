//! How much memory the registry holds per online user: logs in USERS users
//! (default 1,000,000, or the first argument) from distinct addresses and
//! prints the process's resident memory before and after, per user.
//!
//! `cargo run --release -p p2pchat-core --example registry_memory [USERS] [distinct]`
//!
//! Linux only (reads `/proc/self/statm`). The users come from 16 IPv4
//! addresses, each with many ports, as a load generator on loopback would;
//! with `distinct`, each from an IPv4 address of its own, as users on the
//! internet mostly are (the server then also counts users per address for
//! every one of them).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use p2pchat_core::{
    ClientMsg, CookieKey, GET_COOKIE_LEN, PublicKey, RegistryServer, RequestId, ServerConfig,
    ServerMsg, decode_reply, encode_request,
};

/// Resident set size in bytes.
fn rss() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("Linux /proc");
    let pages: u64 = statm.split_whitespace().nth(1).and_then(|s| s.parse().ok()).expect("statm");
    pages * 4096
}

fn addr(i: u32, distinct: bool) -> SocketAddr {
    if distinct {
        // One IPv4 address each, as users on the internet mostly are (the
        // address is only a number here: nothing is sent).
        return SocketAddr::from(((0x0a00_0000 + i).to_be_bytes(), 5000));
    }
    // 16 addresses in 127.0.0.0/8, 65,000 ports each at most.
    let ip = [127, 0, 1, (i % 16) as u8 + 1];
    SocketAddr::from((ip, 1024 + (i / 16) as u16))
}

fn main() {
    let users: u32 = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(1_000_000);
    let distinct = std::env::args().nth(2).as_deref() == Some("distinct");
    let now = Instant::now();
    let config = ServerConfig {
        lease: Duration::from_secs(60),
        max_users: users as usize,
        max_per_address: users as usize,
        local_addr: None,
    };
    let before_server = rss();
    let mut s = RegistryServer::new(now, CookieKey([7; 16]), config);
    let before = rss();
    let get = encode_request(
        RequestId(0),
        &ClientMsg::GetCookie { padding: vec![0; GET_COOKIE_LEN - 11] },
    );
    let mut out = Vec::with_capacity(2048);
    let started = Instant::now();
    for i in 0..users {
        let from = addr(i, distinct);
        s.handle_datagram(now, from, &get);
        out.clear();
        let _ = s.poll_transmit_into(&mut out);
        let Ok((_, ServerMsg::Challenge { cookie })) = decode_reply(&out) else {
            panic!("no challenge for user {i}");
        };
        let mut key = [0; 32];
        key[..4].copy_from_slice(&i.to_le_bytes());
        let login = ClientMsg::Login {
            cookie,
            name: format!("u{i}"),
            chat_port: 7000,
            key: PublicKey(key),
        };
        s.handle_datagram(now, from, &encode_request(RequestId(i), &login));
        out.clear();
        let _ = s.poll_transmit_into(&mut out);
        while s.poll_event().is_some() {}
    }
    let took = started.elapsed();
    let after = rss();
    assert_eq!(s.user_count(), users as usize);
    let per_user = |bytes: u64| bytes as f64 / f64::from(users);
    println!("users: {users}");
    println!("logins: {:.0}/s (cookie exchange included)", f64::from(users) / took.as_secs_f64());
    println!("RSS before the server: {} KiB", before_server / 1024);
    println!("RSS of the empty server: {} KiB", (before - before_server) / 1024);
    println!("RSS after: {} KiB", after / 1024);
    println!("bytes per user (growth since the empty server): {:.1}", per_user(after - before));
    println!("bytes per user (the whole process): {:.1}", per_user(after));
}
