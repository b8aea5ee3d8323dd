//! N registry requests of one kind against 10,000 users, for counting
//! instructions per request with callgrind, which a busy machine does not
//! disturb the way it disturbs timings:
//!
//! ```text
//! cargo build --release -p p2pchat-core --example registry_ops
//! valgrind --tool=callgrind target/release/examples/registry_ops keepalive 2000
//! valgrind --tool=callgrind target/release/examples/registry_ops keepalive 4000
//! ```
//!
//! The difference of the two totals, divided by 2000, is the cost of one
//! request (setup cancels out). OP is `keepalive`, `list`, `lookup` or
//! `none`. It uses only the API that the registry has had from the start,
//! so the same file measures older versions too.
use p2pchat_core::{
    ClientMsg, Cookie, CookieKey, Cursor, PublicKey, RegistryServer, RequestId, ServerConfig,
    ServerMsg, decode_reply, encode_request,
};
use std::net::SocketAddr;
use std::time::{Duration, Instant};
const USERS: u32 = 10_000;
fn addr(i: u32) -> SocketAddr {
    SocketAddr::from(([10, (i >> 16) as u8, (i >> 8) as u8, i as u8], 4000))
}
fn cookie(s: &mut RegistryServer, now: Instant, from: SocketAddr) -> Cookie {
    let get = encode_request(RequestId(0), &ClientMsg::GetCookie { padding: vec![0; 60] });
    s.handle_datagram(now, from, &get);
    match s.poll_transmit().map(|t| decode_reply(&t.payload)) {
        Some(Ok((_, ServerMsg::Challenge { cookie }))) => cookie,
        o => panic!("{o:?}"),
    }
}
fn main() {
    let a: Vec<String> = std::env::args().collect();
    let op = a[1].clone();
    let n: u32 = a[2].parse().unwrap();
    let now = Instant::now();
    let config = ServerConfig {
        lease: Duration::from_secs(60),
        max_users: USERS as usize,
        ..ServerConfig::default()
    };
    let mut s = RegistryServer::new(now, CookieKey([1; 16]), config);
    let mut logins = Vec::new();
    for i in 0..USERS {
        let c = cookie(&mut s, now, addr(i));
        let msg = ClientMsg::Login {
            cookie: c,
            name: format!("user-{i:05}"),
            chat_port: 7000,
            key: PublicKey([i as u8; 32]),
        };
        let b = encode_request(RequestId(i), &msg);
        s.handle_datagram(now, addr(i), &b);
        while s.poll_transmit().is_some() {}
        logins.push(b);
    }
    while s.poll_event().is_some() {}
    let c0 = cookie(&mut s, now, addr(0));
    let list = encode_request(RequestId(9), &ClientMsg::List { cookie: c0, after: None });
    let lookups: Vec<Vec<u8>> = (0..USERS)
        .map(|i| {
            encode_request(
                RequestId(i),
                &ClientMsg::Lookup { cookie: c0, name: format!("USER-{i:05}") },
            )
        })
        .collect();
    let _ = Cursor(String::new());
    let mut bytes = 0usize;
    for k in 0..n {
        let i = k % USERS;
        match op.as_str() {
            "keepalive" => s.handle_datagram(now, addr(i), &logins[i as usize]),
            "list" => s.handle_datagram(now, addr(0), &list),
            "lookup" => s.handle_datagram(now, addr(0), &lookups[i as usize]),
            _ => {}
        }
        if let Some(t) = s.poll_transmit() {
            bytes += t.payload.len();
        }
    }
    println!("{op} {n} bytes {bytes}");
}
