//! Paging through the list while it changes: every user listed throughout
//! is on exactly one page, whatever leaves and joins between pages (and
//! reuses the rows of those who left); a cursor the server cannot have
//! handed out ends the listing.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Instant;

use p2pchat_core::{
    ClientMsg, Cookie, CookieKey, Cursor, GET_COOKIE_LEN, PublicKey, RegistryServer, RequestId,
    ServerConfig, ServerMsg, decode_reply, encode_request,
};

fn addr(i: u32) -> SocketAddr {
    SocketAddr::from(([198, 51, 100, (i % 200) as u8], 1000 + i as u16))
}

fn ask(s: &mut RegistryServer, now: Instant, from: SocketAddr, msg: &ClientMsg) -> ServerMsg {
    s.handle_datagram(now, from, &encode_request(RequestId(1), msg));
    let t = s.poll_transmit().expect("a reply");
    decode_reply(&t.payload).expect("well-formed").1
}

fn cookie(s: &mut RegistryServer, now: Instant, from: SocketAddr) -> Cookie {
    let padding = vec![0; GET_COOKIE_LEN - 11];
    match ask(s, now, from, &ClientMsg::GetCookie { padding }) {
        ServerMsg::Challenge { cookie } => cookie,
        other => panic!("expected a challenge, got {other:?}"),
    }
}

fn login(s: &mut RegistryServer, now: Instant, i: u32) {
    let cookie = cookie(s, now, addr(i));
    let msg = ClientMsg::Login {
        cookie,
        name: format!("user{i}"),
        chat_port: 7,
        key: PublicKey([1; 32]),
    };
    assert!(matches!(ask(s, now, addr(i), &msg), ServerMsg::Welcome { .. }));
}

fn logout(s: &mut RegistryServer, now: Instant, i: u32) {
    let cookie = cookie(s, now, addr(i));
    assert_eq!(ask(s, now, addr(i), &ClientMsg::Logout { cookie }), ServerMsg::LoggedOut);
}

fn page(
    s: &mut RegistryServer,
    now: Instant,
    after: Option<Cursor>,
) -> (Vec<String>, Option<Cursor>) {
    let cookie = cookie(s, now, addr(9999));
    match ask(s, now, addr(9999), &ClientMsg::List { cookie, after }) {
        ServerMsg::ListPage { entries, next } => {
            (entries.into_iter().map(|e| e.name.to_string()).collect(), next)
        }
        other => panic!("expected a page, got {other:?}"),
    }
}

#[test]
fn users_listed_throughout_are_on_exactly_one_page() {
    let now = Instant::now();
    let config = ServerConfig { max_users: 1000, max_per_address: 1000, ..ServerConfig::default() };
    let mut s = RegistryServer::new(now, CookieKey([4; 16]), config);
    for i in 0..200 {
        login(&mut s, now, i);
    }
    // Users 0-99 stay; 100-199 leave one by one between pages, and their
    // rows go to newcomers 1000, 1001, ...
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let (mut leaving, mut joining) = (100, 1000);
    let mut after = None;
    let mut pages = 0;
    loop {
        let (names, next) = page(&mut s, now, after.take());
        pages += 1;
        for name in names {
            *seen.entry(name).or_default() += 1;
        }
        for _ in 0..3 {
            if leaving < 200 {
                logout(&mut s, now, leaving);
                leaving += 1;
                login(&mut s, now, joining);
                joining += 1;
            }
        }
        match next {
            Some(cursor) => after = Some(cursor),
            None => break,
        }
    }
    assert!(pages > 5, "several pages: {pages}");
    for i in 0..100 {
        assert_eq!(seen.get(&format!("user{i}")), Some(&1), "user{i}");
    }
    assert!(seen.values().all(|&n| n == 1), "nobody twice: {seen:?}");
}

#[test]
fn a_cursor_the_server_never_hands_out_ends_the_listing() {
    let now = Instant::now();
    let mut s = RegistryServer::new(now, CookieKey([4; 16]), ServerConfig::default());
    for i in 0..50 {
        login(&mut s, now, i);
    }
    let (first, next) = page(&mut s, now, None);
    assert!(!first.is_empty() && next.is_some());
    for bad in ["mert", "", "-1", "+3", "1e3", "99999999999", "4294967296"] {
        assert_eq!(page(&mut s, now, Some(Cursor(bad.into()))), (vec![], None), "{bad:?}");
    }
    // Past the last row: the end.
    assert_eq!(page(&mut s, now, Some(Cursor("4294967295".into()))), (vec![], None));
}
