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
//!
//! Each user sends what a real client sends to log in (a padded
//! `GetCookie`, then `Login`). A client announces its local addresses only
//! in introductions, so one user in 100 then calls the next one as a real
//! client does: `Introduce` with 4 local addresses, the callee's `IntroAck`
//! with 4 of its own (each after a fresh cookie exchange), in batches of
//! 1,000 separated by `INTRO_MEMORY` of virtual time so that the registry
//! forgets them; the resident memory is printed after the logins and again
//! after the introductions.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use p2pchat_core::{
    ClientMsg, Cookie, CookieKey, GET_COOKIE_LEN, INTRO_MEMORY, MAX_LOCAL_ADDRS, PublicKey,
    RegistryServer, RequestId, ServerConfig, ServerMsg, decode_reply, encode_request,
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

/// Introductions per batch: below `MAX_PENDING_INTROS`.
const INTRO_BATCH: u32 = 1_000;

/// What the server sent, decoded, with where it went.
fn drain(s: &mut RegistryServer, out: &mut Vec<u8>) -> Vec<(SocketAddr, ServerMsg)> {
    let mut got = Vec::new();
    loop {
        out.clear();
        let Some(to) = s.poll_transmit_into(out) else { return got };
        let (_, msg) = decode_reply(out).expect("the server's datagrams decode");
        got.push((to, msg));
    }
}

/// A fresh cookie for `from`, as a client gets one.
fn cookie(s: &mut RegistryServer, now: Instant, from: SocketAddr, out: &mut Vec<u8>) -> Cookie {
    let get = encode_request(
        RequestId(0),
        &ClientMsg::GetCookie { padding: vec![0; GET_COOKIE_LEN - 11] },
    );
    s.handle_datagram(now, from, &get);
    match drain(s, out).pop() {
        Some((_, ServerMsg::Challenge { cookie })) => cookie,
        other => panic!("no challenge for {from}: {other:?}"),
    }
}

/// Four local addresses, as a client with several interfaces announces.
fn locals(i: u32) -> Vec<Ipv4Addr> {
    (0..MAX_LOCAL_ADDRS as u32).map(|k| Ipv4Addr::from(0xc000_0200 + (i * 4 + k) % 256)).collect()
}

fn main() {
    let users: u32 = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(1_000_000);
    let distinct = std::env::args().nth(2).as_deref() == Some("distinct");
    let mut now = Instant::now();
    let config = ServerConfig {
        // An hour, as the benchmark suite's: nobody expires while the
        // introductions move the clock on.
        lease: Duration::from_secs(3600),
        max_users: users as usize,
        max_per_address: users as usize,
        local_addr: None,
    };
    let before_server = rss();
    let mut s = RegistryServer::new(now, CookieKey([7; 16]), config);
    let before = rss();
    let mut out = Vec::with_capacity(2048);
    let started = Instant::now();
    for i in 0..users {
        let from = addr(i, distinct);
        let cookie = cookie(&mut s, now, from, &mut out);
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
    let intros = users / 100;
    let name = |i: u32| format!("u{i}");
    for k in 0..intros {
        if k % INTRO_BATCH == 0 && k > 0 {
            now += INTRO_MEMORY + Duration::from_secs(1);
            s.handle_timeout(now);
            drain(&mut s, &mut out);
        }
        let caller = k * 100;
        let callee = (caller + 1) % users;
        let (from, to) = (addr(caller, distinct), addr(callee, distinct));
        let c = cookie(&mut s, now, from, &mut out);
        let ask = ClientMsg::Introduce { cookie: c, name: name(callee), locals: locals(caller) };
        s.handle_datagram(now, from, &encode_request(RequestId(k), &ask));
        let nonce = match drain(&mut s, &mut out).pop() {
            Some((dst, ServerMsg::Introduced { intro: Some(intro) })) if dst == to => intro.nonce,
            other => panic!("no introduction for user {callee}: {other:?}"),
        };
        let c = cookie(&mut s, now, to, &mut out);
        let ack = ClientMsg::IntroAck { cookie: c, nonce, locals: locals(callee) };
        s.handle_datagram(now, to, &encode_request(RequestId(k), &ack));
        match drain(&mut s, &mut out).pop() {
            Some((dst, ServerMsg::Introduced { intro: Some(intro) })) if dst == from => {
                assert_eq!(intro.candidates.len(), MAX_LOCAL_ADDRS + 1, "the callee's locals");
            }
            other => panic!("no answer for user {caller}: {other:?}"),
        }
    }
    let after_intros = rss();
    assert_eq!(s.user_count(), users as usize);
    let per_user = |bytes: u64| bytes as f64 / f64::from(users);
    println!("users: {users}");
    println!("logins: {:.0}/s (cookie exchange included)", f64::from(users) / took.as_secs_f64());
    println!("RSS before the server: {} KiB", before_server / 1024);
    println!("RSS of the empty server: {} KiB", (before - before_server) / 1024);
    println!("RSS after: {} KiB", after / 1024);
    println!("bytes per user (growth since the empty server): {:.1}", per_user(after - before));
    println!("bytes per user (the whole process): {:.1}", per_user(after));
    println!("introductions with local addresses both ways: {intros}");
    println!("RSS after them: {} KiB", after_intros / 1024);
    println!("bytes per user after them (the whole process): {:.1}", per_user(after_intros));
}
