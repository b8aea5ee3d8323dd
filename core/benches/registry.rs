//! How fast the registry state machine handles its requests, with no I/O:
//! the ceiling the transport can reach. `cargo bench -p p2pchat-core`.

use std::hint::black_box;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use p2pchat_core::{
    ClientMsg, Cookie, CookieKey, Cursor, PublicKey, RegistryServer, RequestId, ServerConfig,
    ServerMsg, decode_reply, decode_request, encode_request,
};

const USERS: u32 = 10_000;

fn addr(i: u32) -> SocketAddr {
    SocketAddr::from(([10, (i >> 16) as u8, (i >> 8) as u8, i as u8], 4000))
}

fn cookie(s: &mut RegistryServer, now: Instant, from: SocketAddr) -> Cookie {
    let get = encode_request(RequestId(0), &ClientMsg::GetCookie { padding: vec![0; 60] });
    s.handle_datagram(now, from, &get);
    match s.poll_transmit().map(|t| decode_reply(&t.payload)) {
        Some(Ok((_, ServerMsg::Challenge { cookie }))) => cookie,
        other => panic!("no challenge: {other:?}"),
    }
}

/// A registry holding `USERS` users, and each user's login datagram.
fn full_registry(now: Instant) -> (RegistryServer, Vec<Vec<u8>>) {
    let config = ServerConfig {
        lease: Duration::from_secs(60),
        max_users: USERS as usize,
        ..ServerConfig::default()
    };
    let mut s = RegistryServer::new(now, CookieKey([1; 16]), config);
    let mut logins = Vec::new();
    for i in 0..USERS {
        let c = cookie(&mut s, now, addr(i));
        let key = PublicKey([i as u8; 32]);
        let msg =
            ClientMsg::Login { cookie: c, name: format!("user-{i:05}"), chat_port: 7000, key };
        let bytes = encode_request(RequestId(i), &msg);
        s.handle_datagram(now, addr(i), &bytes);
        while s.poll_transmit().is_some() {}
        logins.push(bytes);
    }
    while s.poll_event().is_some() {}
    assert_eq!(s.user_count(), USERS as usize);
    (s, logins)
}

fn bench(c: &mut Criterion) {
    let now = Instant::now();
    let (mut s, logins) = full_registry(now);
    let mut g = c.benchmark_group("registry");
    g.throughput(Throughput::Elements(1));

    let mut i = 0;
    let mut sent = Vec::with_capacity(2048);
    g.bench_function("keepalive (login refresh) among 10k users", |b| {
        b.iter(|| {
            i = (i + 1) % USERS;
            s.handle_datagram(now, addr(i), &logins[i as usize]);
            sent.clear();
            black_box(s.poll_transmit_into(&mut sent))
        })
    });

    let c0 = cookie(&mut s, now, addr(0));
    let list = encode_request(RequestId(9), &ClientMsg::List { cookie: c0, after: None });
    g.bench_function("list page among 10k users", |b| {
        b.iter(|| {
            s.handle_datagram(now, addr(0), &list);
            sent.clear();
            black_box(s.poll_transmit_into(&mut sent))
        })
    });
    let mid = encode_request(
        RequestId(9),
        // The server's cursors are row numbers: this resumes mid-table.
        &ClientMsg::List { cookie: c0, after: Some(Cursor("5000".into())) },
    );
    g.bench_function("list page from a cursor among 10k users", |b| {
        b.iter(|| {
            s.handle_datagram(now, addr(0), &mid);
            sent.clear();
            black_box(s.poll_transmit_into(&mut sent))
        })
    });

    let mut j = 0;
    let lookups: Vec<Vec<u8>> = (0..USERS)
        .map(|i| {
            let msg = ClientMsg::Lookup { cookie: c0, name: format!("USER-{i:05}") };
            encode_request(RequestId(i), &msg)
        })
        .collect();
    g.bench_function("lookup among 10k users", |b| {
        b.iter(|| {
            j = (j + 7) % USERS;
            s.handle_datagram(now, addr(0), &lookups[j as usize]);
            black_box(s.poll_transmit())
        })
    });

    let forged = encode_request(RequestId(1), &ClientMsg::Logout { cookie: Cookie([0; 16]) });
    g.bench_function("challenge an unvalidated sender", |b| {
        b.iter(|| {
            s.handle_datagram(now, addr(USERS + 1), &forged);
            black_box(s.poll_transmit())
        })
    });

    g.bench_function("drop garbage", |b| {
        b.iter(|| {
            s.handle_datagram(now, addr(1), black_box(b"GET / HTTP/1.1\r\n\r\n"));
            black_box(s.poll_transmit())
        })
    });

    g.bench_function("decode a login datagram", |b| {
        b.iter(|| black_box(decode_request(black_box(&logins[7]))))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
