//! The registry's security properties, each as a test: cookies cannot be
//! forged or kept past their life, nobody can act for another address, and
//! an unvalidated sender never gets more bytes than it sent.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use p2pchat_core::{
    COOKIE_EPOCH, ClientMsg, Cookie, CookieKey, Cursor, PROTOCOL_VERSION, RegistryServer,
    RequestId, ServerConfig, ServerMsg, decode_reply, encode_request,
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

fn cookie(s: &mut RegistryServer, now: Instant, from: SocketAddr) -> Cookie {
    match ask(s, now, from, &ClientMsg::GetCookie { padding: vec![0; 50] }) {
        Some(ServerMsg::Challenge { cookie }) => cookie,
        other => panic!("expected a challenge, got {other:?}"),
    }
}

fn login(s: &mut RegistryServer, now: Instant, from: SocketAddr, name: &str) -> Option<ServerMsg> {
    let c = cookie(s, now, from);
    ask(s, now, from, &ClientMsg::Login { cookie: c, name: name.into(), chat_port: 7000 })
}

fn listed(s: &RegistryServer) -> Vec<(String, SocketAddr)> {
    s.users().map(|e| (e.name.to_string(), e.addr)).collect()
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
        &ClientMsg::Login { cookie: forged, name: "alice".into(), chat_port: 7000 },
    );
    let Some(ServerMsg::Challenge { cookie }) = reply else { panic!("got {reply:?}") };
    assert_ne!(cookie, forged);
    assert_eq!(s.user_count(), 0);
    // The fresh cookie works.
    let reply = ask(
        &mut s,
        now,
        alice(),
        &ClientMsg::Login { cookie, name: "alice".into(), chat_port: 7000 },
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
fn another_address_cannot_take_over_a_name() {
    let now = Instant::now();
    let mut s = server(now);
    login(&mut s, now, alice(), "alice");
    for name in ["alice", "ALICE", "Alice"] {
        let reply = login(&mut s, now, mallory(), name);
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
        requests.push(ClientMsg::Login { cookie: forged, name: name.clone(), chat_port: 1 });
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
        other[4] = PROTOCOL_VERSION + 1;
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
    for bytes in [&b""[..], b"hello", b"p2pc\x01\0\0\0\x01\xff\xff", &[0u8; 1201]] {
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
