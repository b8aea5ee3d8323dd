//! The registry's security properties, each as a test: cookies cannot be
//! forged or kept past their life, nobody can act for another address or
//! take a name bound to another key, one address cannot fill the registry,
//! an unvalidated sender never gets more bytes than it sent, and no reply,
//! echo or forged self-addressed datagram is ever answered.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use p2pchat_core::{
    COOKIE_EPOCH, ClientMsg, Cookie, CookieKey, Cursor, Entry, GET_COOKIE_LEN, PublicKey,
    REGISTRY_VERSION, REPLY_BIT, RefuseReason, RegistryServer, RequestId, ServerConfig,
    ServerEvent, ServerMsg, UserName, decode_reply, encode_reply, encode_request,
};

fn alice() -> SocketAddr {
    "198.51.100.1:4000".parse().unwrap()
}

fn mallory() -> SocketAddr {
    "203.0.113.9:4000".parse().unwrap()
}

fn server(now: Instant) -> RegistryServer {
    RegistryServer::new(now, CookieKey([42; 16]), ServerConfig::default())
}

/// Sends `msg` from `from`; returns the reply, if any.
fn ask(
    s: &mut RegistryServer,
    now: Instant,
    from: SocketAddr,
    msg: &ClientMsg,
) -> Option<ServerMsg> {
    s.handle_datagram(now, from, &encode_request(RequestId(77), msg));
    let t = s.poll_transmit()?;
    assert_eq!(t.dst, from, "a reply goes to the observed source address");
    let (id, reply) = decode_reply(&t.payload).unwrap();
    assert_eq!(id, RequestId(77), "the reply echoes the request id");
    Some(reply)
}

/// A `GetCookie` padded to the length clients send.
fn get_cookie() -> ClientMsg {
    ClientMsg::GetCookie { padding: vec![0; GET_COOKIE_LEN - 11] }
}

fn cookie(s: &mut RegistryServer, now: Instant, from: SocketAddr) -> Cookie {
    match ask(s, now, from, &get_cookie()) {
        Some(ServerMsg::Challenge { cookie }) => cookie,
        other => panic!("expected a challenge, got {other:?}"),
    }
}

/// Alice's key, unless a test says otherwise.
fn key_a() -> PublicKey {
    PublicKey([0xa1; 32])
}

fn key_m() -> PublicKey {
    PublicKey([0x3e; 32])
}

fn login_with(
    s: &mut RegistryServer,
    now: Instant,
    from: SocketAddr,
    name: &str,
    key: PublicKey,
) -> Option<ServerMsg> {
    let c = cookie(s, now, from);
    ask(s, now, from, &ClientMsg::Login { cookie: c, name: name.into(), chat_port: 7000, key })
}

fn login(s: &mut RegistryServer, now: Instant, from: SocketAddr, name: &str) -> Option<ServerMsg> {
    login_with(s, now, from, name, key_a())
}

/// The listed users, sorted (the server keeps no order).
fn listed(s: &RegistryServer) -> Vec<(String, SocketAddr)> {
    let mut users: Vec<_> = s.users().map(|e| (e.name.to_string(), e.addr)).collect();
    users.sort();
    users
}

#[test]
fn a_forged_cookie_gets_a_challenge_and_changes_nothing() {
    let now = Instant::now();
    let mut s = server(now);
    let forged = Cookie([0xAB; 16]);
    let reply = ask(
        &mut s,
        now,
        alice(),
        &ClientMsg::Login { cookie: forged, name: "alice".into(), chat_port: 7000, key: key_a() },
    );
    let Some(ServerMsg::Challenge { cookie }) = reply else { panic!("got {reply:?}") };
    assert_ne!(cookie, forged);
    assert_eq!(s.user_count(), 0);
    // The fresh cookie works.
    let reply = ask(
        &mut s,
        now,
        alice(),
        &ClientMsg::Login { cookie, name: "alice".into(), chat_port: 7000, key: key_a() },
    );
    assert!(matches!(reply, Some(ServerMsg::Welcome { .. })), "got {reply:?}");
}

#[test]
fn a_cookie_from_another_server_key_is_refused() {
    let now = Instant::now();
    let mut other = RegistryServer::new(now, CookieKey([1; 16]), ServerConfig::default());
    let foreign = cookie(&mut other, now, alice());
    let mut s = server(now);
    let reply = ask(&mut s, now, alice(), &ClientMsg::Logout { cookie: foreign });
    assert!(matches!(reply, Some(ServerMsg::Challenge { .. })), "got {reply:?}");
}

#[test]
fn an_expired_cookie_gets_a_fresh_challenge() {
    let t0 = Instant::now();
    let mut s = server(t0);
    let old = cookie(&mut s, t0, alice());
    // Still good in the next epoch...
    let later = t0 + COOKIE_EPOCH;
    let reply = ask(&mut s, later, alice(), &ClientMsg::List { cookie: old, after: None });
    assert!(matches!(reply, Some(ServerMsg::ListPage { .. })), "got {reply:?}");
    // ...and not after that.
    let expired = t0 + 2 * COOKIE_EPOCH;
    let reply = ask(&mut s, expired, alice(), &ClientMsg::List { cookie: old, after: None });
    let Some(ServerMsg::Challenge { cookie }) = reply else { panic!("got {reply:?}") };
    assert_ne!(cookie, old);
}

#[test]
fn a_stolen_cookie_does_not_work_from_another_address() {
    let now = Instant::now();
    let mut s = server(now);
    assert!(matches!(login(&mut s, now, alice(), "alice"), Some(ServerMsg::Welcome { .. })));
    let stolen = cookie(&mut s, now, alice());
    let reply = ask(&mut s, now, mallory(), &ClientMsg::Logout { cookie: stolen });
    assert!(matches!(reply, Some(ServerMsg::Challenge { .. })), "got {reply:?}");
    assert_eq!(listed(&s), vec![("alice".to_owned(), alice())]);
}

#[test]
fn another_address_cannot_log_a_user_out() {
    let now = Instant::now();
    let mut s = server(now);
    login(&mut s, now, alice(), "alice");
    let c = cookie(&mut s, now, mallory());
    // Mallory's own, valid, logout only ever touches Mallory's entry.
    assert_eq!(
        ask(&mut s, now, mallory(), &ClientMsg::Logout { cookie: c }),
        Some(ServerMsg::LoggedOut)
    );
    assert_eq!(listed(&s), vec![("alice".to_owned(), alice())]);
}

#[test]
fn another_key_cannot_take_over_a_name() {
    let now = Instant::now();
    let mut s = server(now);
    login(&mut s, now, alice(), "alice");
    for name in ["alice", "ALICE", "Alice"] {
        // Neither from another address nor from Alice's own.
        assert_eq!(
            login_with(&mut s, now, alice(), name, key_m()),
            Some(ServerMsg::Refused { reason: RefuseReason::NameTaken })
        );
        let reply = login_with(&mut s, now, mallory(), name, key_m());
        assert_eq!(
            reply,
            Some(ServerMsg::Refused { reason: p2pchat_core::RefuseReason::NameTaken })
        );
    }
    assert_eq!(listed(&s), vec![("alice".to_owned(), alice())]);
    // The address in a payload is never used: entries carry the observed one.
    let entry = s.users().next().unwrap();
    assert_eq!(entry.addr, alice());
}

#[test]
fn a_name_frees_up_once_its_lease_runs_out() {
    let now = Instant::now();
    let mut s = server(now);
    login(&mut s, now, alice(), "alice");
    let later = now + ServerConfig::default().lease;
    s.handle_timeout(later);
    assert_eq!(s.user_count(), 0);
    assert!(matches!(login(&mut s, later, mallory(), "alice"), Some(ServerMsg::Welcome { .. })));
}

/// Every kind of request, from a sender without a valid cookie, at every
/// length the encoding allows: no reply is ever longer than the request.
#[test]
fn an_unvalidated_sender_never_gets_more_bytes_than_it_sent() {
    let now = Instant::now();
    let mut s = server(now);
    for _ in 0..5 {
        login(&mut s, now, alice(), "alice");
    }
    let forged = Cookie([9; 16]);
    let mut requests = Vec::new();
    for pad in 0..80 {
        requests.push(ClientMsg::GetCookie { padding: vec![0; pad] });
    }
    for len in 1..=32 {
        let name = "n".repeat(len);
        requests.push(ClientMsg::Login {
            cookie: forged,
            name: name.clone(),
            chat_port: 1,
            key: key_m(),
        });
        requests.push(ClientMsg::Lookup { cookie: forged, name: name.clone() });
        requests.push(ClientMsg::List { cookie: forged, after: Some(Cursor(name)) });
    }
    requests.push(ClientMsg::List { cookie: forged, after: None });
    requests.push(ClientMsg::Lookup { cookie: forged, name: String::new() });
    requests.push(ClientMsg::Logout { cookie: forged });
    let mut answered = 0;
    for msg in &requests {
        let bytes = encode_request(RequestId(u32::MAX), msg);
        s.handle_datagram(now, mallory(), &bytes);
        while let Some(t) = s.poll_transmit() {
            answered += 1;
            assert!(
                t.payload.len() <= bytes.len(),
                "{} > {} for {msg:?}",
                t.payload.len(),
                bytes.len()
            );
        }
        // The same with another protocol version in the header.
        let mut other = bytes.clone();
        other[4] = REGISTRY_VERSION + 1;
        s.handle_datagram(now, mallory(), &other);
        while let Some(t) = s.poll_transmit() {
            answered += 1;
            assert!(t.payload.len() <= other.len());
        }
    }
    // Most of them were answered (with challenges or refusals), so the
    // bound above was really exercised.
    assert!(answered > requests.len(), "only {answered} answers");
    assert!(s.stats().too_short > 0, "short requests were dropped, not answered in full");
    assert_eq!(listed(&s), vec![("alice".to_owned(), alice())], "no state for unvalidated senders");
}

#[test]
fn garbage_is_dropped_and_counted() {
    let now = Instant::now();
    let mut s = server(now);
    for bytes in [&b""[..], b"hello", b"p2pc\x02\0\0\0\x01\xff\xff", &[0u8; 1201]] {
        s.handle_datagram(now, mallory(), bytes);
        assert!(s.poll_transmit().is_none());
    }
    assert_eq!(s.stats().malformed, 4);
}

#[test]
fn the_lease_refresh_keeps_a_user_past_one_lease() {
    let t0 = Instant::now();
    let mut s = server(t0);
    login(&mut s, t0, alice(), "alice");
    let lease = ServerConfig::default().lease;
    let refresh = t0 + lease - Duration::from_secs(1);
    login(&mut s, refresh, alice(), "alice");
    s.handle_timeout(t0 + lease);
    assert_eq!(s.user_count(), 1);
    s.handle_timeout(refresh + lease);
    assert_eq!(s.user_count(), 0);
}

#[test]
fn the_same_key_from_a_new_address_moves_the_entry() {
    let now = Instant::now();
    let mut s = server(now);
    let laptop_home = alice();
    let laptop_cafe: SocketAddr = "192.0.2.77:5555".parse().unwrap();
    login(&mut s, now, laptop_home, "alice");
    while s.poll_event().is_some() {}
    let reply = login(&mut s, now, laptop_cafe, "Alice");
    assert!(matches!(reply, Some(ServerMsg::Welcome { .. })), "got {reply:?}");
    assert_eq!(listed(&s), vec![("Alice".to_owned(), laptop_cafe)]);
    let name = UserName::new("Alice").unwrap();
    assert_eq!(
        std::iter::from_fn(|| s.poll_event()).collect::<Vec<_>>(),
        vec![ServerEvent::Roamed { name, from: laptop_home, to: laptop_cafe }]
    );
    // The old address holds nothing now: its own logout changes nothing,
    // and it may log in under another name.
    let c = cookie(&mut s, now, laptop_home);
    assert_eq!(
        ask(&mut s, now, laptop_home, &ClientMsg::Logout { cookie: c }),
        Some(ServerMsg::LoggedOut)
    );
    assert_eq!(s.user_count(), 1);
    // Lookups return the key the name is bound to.
    let c = cookie(&mut s, now, mallory());
    let found = ask(&mut s, now, mallory(), &ClientMsg::Lookup { cookie: c, name: "alice".into() });
    let Some(ServerMsg::Found { entry: Some(Entry { key, .. }) }) = found else {
        panic!("{found:?}")
    };
    assert_eq!(key, key_a());
}

#[test]
fn one_address_cannot_fill_the_registry() {
    let now = Instant::now();
    let config = ServerConfig { max_per_address: 3, ..ServerConfig::default() };
    let mut s = RegistryServer::new(now, CookieKey([42; 16]), config);
    let refused = Some(ServerMsg::Refused { reason: RefuseReason::TooManyFromAddress });
    // IPv4: one address, any ports; its IPv4-mapped IPv6 form is the same.
    for port in 1..=3 {
        let from = SocketAddr::from(([203, 0, 113, 9], port));
        let key = PublicKey([port as u8; 32]);
        assert!(matches!(
            login_with(&mut s, now, from, &format!("m{port}"), key),
            Some(ServerMsg::Welcome { .. })
        ));
    }
    let same_v4 = SocketAddr::from(([203, 0, 113, 9], 4));
    assert_eq!(login_with(&mut s, now, same_v4, "m4", key_m()), refused);
    let mapped: SocketAddr = "[::ffff:203.0.113.9]:5".parse().unwrap();
    assert_eq!(login_with(&mut s, now, mapped, "m5", key_m()), refused);
    // A neighbour address is not affected, and a rename is not a new name.
    let neighbour = SocketAddr::from(([203, 0, 113, 10], 1));
    assert!(matches!(login(&mut s, now, neighbour, "n"), Some(ServerMsg::Welcome { .. })));
    let first = SocketAddr::from(([203, 0, 113, 9], 1));
    let reply = login_with(&mut s, now, first, "renamed", PublicKey([1; 32]));
    assert!(matches!(reply, Some(ServerMsg::Welcome { .. })), "got {reply:?}");
    // IPv6: one /64 counts as one address; the next /64 does not.
    for i in 1..=3u16 {
        let from = SocketAddr::new(format!("2001:db8:0:7::{i}").parse().unwrap(), 9);
        assert!(matches!(
            login_with(&mut s, now, from, &format!("v{i}"), key_m()),
            Some(ServerMsg::Welcome { .. })
        ));
    }
    let same_64 = SocketAddr::new("2001:db8:0:7:ffff::1".parse().unwrap(), 9);
    assert_eq!(login_with(&mut s, now, same_64, "v4", key_m()), refused);
    let next_64 = SocketAddr::new("2001:db8:0:8::1".parse().unwrap(), 9);
    assert!(matches!(
        login_with(&mut s, now, next_64, "v4", key_m()),
        Some(ServerMsg::Welcome { .. })
    ));
    // A name that leaves frees its place.
    let c = cookie(&mut s, now, first);
    ask(&mut s, now, first, &ClientMsg::Logout { cookie: c });
    assert!(matches!(
        login_with(&mut s, now, same_v4, "m4", key_m()),
        Some(ServerMsg::Welcome { .. })
    ));
}

/// Every reply the server can send, as the server encodes it.
fn every_reply(id: RequestId) -> Vec<Vec<u8>> {
    let entry = Entry {
        name: UserName::new("alice").unwrap(),
        addr: alice(),
        chat_port: 7000,
        key: key_a(),
    };
    [
        ServerMsg::Challenge { cookie: Cookie([0x0f; 16]) },
        ServerMsg::Welcome { observed: alice(), lease_secs: 60 },
        ServerMsg::Refused { reason: RefuseReason::UnsupportedVersion },
        ServerMsg::ListPage { entries: vec![entry.clone()], next: None },
        ServerMsg::Found { entry: Some(entry) },
        ServerMsg::LoggedOut,
    ]
    .iter()
    .map(|m| encode_reply(id, m))
    .collect()
}

/// The review finding: a `Challenge` whose cookie starts with 0f decoded as
/// a `GetCookie` in version 1, so a reply bounced back (by an echo service,
/// another registry, or a forged source) was answered, forever.
#[test]
fn a_reply_is_never_answered() {
    let now = Instant::now();
    let mut s = server(now);
    for reply in every_reply(RequestId(77)) {
        s.handle_datagram(now, mallory(), &reply);
        assert_eq!(s.poll_transmit(), None, "answered {reply:02x?}");
        // Nor a reply of any other version: the reply bit is frozen.
        for version in 0..0x80 {
            let mut other = reply.clone();
            other[4] = REPLY_BIT | version;
            s.handle_datagram(now, mallory(), &other);
            assert_eq!(s.poll_transmit(), None, "answered version byte {:02x}", other[4]);
        }
    }
    assert!(s.stats().looped > 0);
}

#[test]
fn a_datagram_from_the_servers_own_address_is_dropped() {
    let now = Instant::now();
    let own: SocketAddr = "192.0.2.5:5000".parse().unwrap();
    let config = ServerConfig { local_addr: Some(own), ..ServerConfig::default() };
    let mut s = RegistryServer::new(now, CookieKey([42; 16]), config);
    let request = encode_request(RequestId(5), &get_cookie());
    s.handle_datagram(now, own, &request);
    assert_eq!(s.poll_transmit(), None);
    // The same request from anyone else is answered.
    s.handle_datagram(now, mallory(), &request);
    assert!(s.poll_transmit().is_some());
    // Bound to the unspecified address, loopback with our port is us too.
    let config = ServerConfig { local_addr: Some("[::]:5000".parse().unwrap()), ..config };
    let mut s = RegistryServer::new(now, CookieKey([42; 16]), config);
    for from in ["127.0.0.1:5000", "[::1]:5000", "0.0.0.0:5000"] {
        s.handle_datagram(now, from.parse().unwrap(), &request);
        assert_eq!(s.poll_transmit(), None, "answered {from}");
    }
    s.handle_datagram(now, "127.0.0.1:5001".parse().unwrap(), &request);
    assert!(s.poll_transmit().is_some());
    assert_eq!(s.stats().looped, 3);
}

#[test]
fn a_short_cookie_request_is_dropped() {
    let now = Instant::now();
    let mut s = server(now);
    let short = ClientMsg::GetCookie { padding: vec![0; GET_COOKIE_LEN - 12] };
    s.handle_datagram(now, mallory(), &encode_request(RequestId(1), &short));
    assert_eq!(s.poll_transmit(), None);
    s.handle_datagram(now, mallory(), &encode_request(RequestId(1), &get_cookie()));
    assert!(s.poll_transmit().is_some());
}

/// A version-1 registry answers anything of another version that is at
/// least 11 bytes long with an 11-byte refusal in version 1. We answer a
/// datagram of another version only with fewer bytes than it has, so the
/// two stop after one round instead of trading refusals forever.
#[test]
fn a_foreign_refusal_is_not_answered() {
    let now = Instant::now();
    let mut s = server(now);
    // A version-1 refusal: "p2pc" 01, id, Refused, UnsupportedVersion.
    let v1_refusal = [0x70, 0x32, 0x70, 0x63, 0x01, 0, 0, 0, 7, 0x02, 0x03];
    s.handle_datagram(now, mallory(), &v1_refusal);
    assert_eq!(s.poll_transmit(), None);
    // A longer request of another version is refused, in fewer bytes.
    let mut v1_request =
        encode_request(RequestId(7), &ClientMsg::Logout { cookie: Cookie([0; 16]) });
    v1_request[4] = 0x01;
    s.handle_datagram(now, mallory(), &v1_request);
    let t = s.poll_transmit().expect("a refusal");
    assert!(t.payload.len() < v1_request.len());
}
