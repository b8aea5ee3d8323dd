//! The registry agrees with a plain map after any sequence of logins,
//! refreshes, renames, roams, logouts and expiries from many endpoints with
//! a few keys, some of them sharing an address, and any bytes at all leave
//! it standing.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use p2pchat_core::{
    ClientMsg, Cookie, CookieKey, GET_COOKIE_LEN, PublicKey, RefuseReason, RegistryServer,
    RequestId, ServerConfig, ServerEvent, ServerMsg, decode_reply, encode_request,
};
use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;

const LEASE: Duration = Duration::from_secs(60);
const MAX_USERS: usize = 6;
const MAX_PER_ADDRESS: usize = 3;
/// Endpoints: 0-3 share one IPv4 address, 4-5 another, which 9 also has in
/// its IPv4-mapped IPv6 form; 6-7 share an IPv6 /64, 8 has its own.
const ENDPOINTS: u8 = 10;
const KEYS: u8 = 3;
/// Names that collide without regard to case, and one invalid name.
const NAMES: [&str; 11] =
    ["ann", "Ann", "ANN", "bob", "Bob", "carl", "dave", "eve", "fay", "gus", "bad name"];

#[derive(Debug, Clone)]
enum Op {
    Login { ep: u8, name: usize, port: u16, key: u8 },
    Logout { ep: u8 },
    Wait { secs: u16 },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..ENDPOINTS, 0..NAMES.len(), 1..4u16, 0..KEYS)
            .prop_map(|(ep, name, port, key)| Op::Login { ep, name, port, key }),
        1 => (0..ENDPOINTS).prop_map(|ep| Op::Logout { ep }),
        1 => (0..90u16).prop_map(|secs| Op::Wait { secs }),
    ]
}

fn addr(ep: u8) -> SocketAddr {
    let ip: IpAddr = match ep {
        0..=3 => [192, 0, 2, 1].into(),
        4 | 5 => [192, 0, 2, 2].into(),
        6 => "2001:db8::1".parse().unwrap(),
        7 => "2001:db8::2:3".parse().unwrap(),
        8 => "2001:db8:0:1::1".parse().unwrap(),
        _ => "::ffff:192.0.2.2".parse().unwrap(),
    };
    SocketAddr::new(ip, 4000 + u16::from(ep))
}

/// Which endpoints count together against the per-address cap.
fn prefix(ep: u8) -> u8 {
    match ep {
        0..=3 => 0,
        4 | 5 | 9 => 1,
        6 | 7 => 2,
        _ => 3,
    }
}

fn public(key: u8) -> PublicKey {
    PublicKey([key; 32])
}

/// Sends `msg` from `from` and returns the one reply.
fn ask(server: &mut RegistryServer, now: Instant, from: SocketAddr, msg: ClientMsg) -> ServerMsg {
    server.handle_datagram(now, from, &encode_request(RequestId(1), &msg));
    let t = server.poll_transmit().expect("a reply");
    assert_eq!(t.dst, from);
    assert!(server.poll_transmit().is_none());
    decode_reply(&t.payload).expect("a well-formed reply").1
}

fn cookie(server: &mut RegistryServer, now: Instant, from: SocketAddr) -> Cookie {
    let padding = vec![0; GET_COOKIE_LEN - 11];
    match ask(server, now, from, ClientMsg::GetCookie { padding }) {
        ServerMsg::Challenge { cookie } => cookie,
        other => panic!("expected a challenge, got {other:?}"),
    }
}

/// One listed user in the model.
#[derive(Debug, Clone)]
struct User {
    name: String,
    ep: u8,
    port: u16,
    key: u8,
    expires: Instant,
}

/// The model: folded name → user.
type Model = BTreeMap<String, User>;

/// What the server should answer, and the roam (old endpoint) it should
/// report.
fn expected_login(
    model: &mut Model,
    now: Instant,
    ep: u8,
    name: &str,
    port: u16,
    key: u8,
) -> (ServerMsg, Option<u8>) {
    if name.contains(' ') {
        return (ServerMsg::Refused { reason: RefuseReason::NameInvalid }, None);
    }
    let folded = name.to_lowercase();
    let held = model.iter().find(|(_, u)| u.ep == ep).map(|(k, _)| k.clone());
    let roam = match model.get(&folded) {
        Some(u) if u.key != key => {
            return (ServerMsg::Refused { reason: RefuseReason::NameTaken }, None);
        }
        Some(u) if u.ep == ep => None,
        Some(u) => Some(u.ep),
        None => None,
    };
    if held.is_none() {
        let others = |u: &&User| Some(u.ep) != roam;
        let here = model.values().filter(others).filter(|u| prefix(u.ep) == prefix(ep)).count();
        if here >= MAX_PER_ADDRESS {
            return (ServerMsg::Refused { reason: RefuseReason::TooManyFromAddress }, None);
        }
        if model.values().filter(others).count() >= MAX_USERS {
            return (ServerMsg::Refused { reason: RefuseReason::ServerFull }, None);
        }
    }
    if let Some(old) = held {
        model.remove(&old);
    }
    let user = User { name: name.to_owned(), ep, port, key, expires: now + LEASE };
    model.insert(folded, user);
    (ServerMsg::Welcome { observed: addr(ep), lease_secs: LEASE.as_secs() as u32 }, roam)
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 256,
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct("proptest-regressions/registry_model.txt"))),
        ..ProptestConfig::default()
    })]

    #[test]
    fn registry_matches_a_map(ops in prop::collection::vec(op(), 1..60)) {
        let mut now = Instant::now();
        let config = ServerConfig {
            lease: LEASE,
            max_users: MAX_USERS,
            max_per_address: MAX_PER_ADDRESS,
            local_addr: None,
        };
        let mut server = RegistryServer::new(now, CookieKey([3; 16]), config);
        let mut model = Model::new();
        for op in ops {
            match op {
                Op::Login { ep, name, port, key } => {
                    let c = cookie(&mut server, now, addr(ep));
                    let msg = ClientMsg::Login {
                        cookie: c,
                        name: NAMES[name].to_owned(),
                        chat_port: port,
                        key: public(key),
                    };
                    let got = ask(&mut server, now, addr(ep), msg);
                    let (want, roam) = expected_login(&mut model, now, ep, NAMES[name], port, key);
                    prop_assert_eq!(got, want);
                    let roams: Vec<(SocketAddr, SocketAddr)> = std::iter::from_fn(|| server.poll_event())
                        .filter_map(|e| match e {
                            ServerEvent::Roamed { from, to, .. } => Some((from, to)),
                            _ => None,
                        })
                        .collect();
                    prop_assert_eq!(roams, roam.map(|old| (addr(old), addr(ep))).into_iter().collect::<Vec<_>>());
                }
                Op::Logout { ep } => {
                    let c = cookie(&mut server, now, addr(ep));
                    let got = ask(&mut server, now, addr(ep), ClientMsg::Logout { cookie: c });
                    prop_assert_eq!(got, ServerMsg::LoggedOut);
                    model.retain(|_, u| u.ep != ep);
                }
                Op::Wait { secs } => {
                    now += Duration::from_secs(secs.into());
                    while server.poll_timeout().is_some_and(|t| t <= now) {
                        server.handle_timeout(now);
                    }
                    model.retain(|_, u| u.expires > now);
                }
            }
            while server.poll_event().is_some() {}
            // The server keeps no order; the model's is by folded name.
            let mut listed: Vec<(String, SocketAddr, u16, PublicKey)> =
                server.users().map(|e| (e.name.to_string(), e.addr, e.chat_port, e.key)).collect();
            listed.sort_by_key(|(name, ..)| name.to_lowercase());
            let modelled: Vec<(String, SocketAddr, u16, PublicKey)> = model
                .values()
                .map(|u| (u.name.clone(), addr(u.ep), u.port, public(u.key)))
                .collect();
            prop_assert_eq!(&listed, &modelled);
            let mut keys: Vec<String> = listed.iter().map(|(n, ..)| n.to_lowercase()).collect();
            keys.dedup();
            prop_assert_eq!(keys.len(), listed.len(), "a name is held twice");
        }
    }

    #[test]
    fn any_bytes_leave_the_server_standing(
        datagrams in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..1300), 1..20),
    ) {
        let now = Instant::now();
        let mut server = RegistryServer::new(now, CookieKey([3; 16]), ServerConfig::default());
        for (i, d) in datagrams.iter().enumerate() {
            server.handle_datagram(now, addr(i as u8), d);
            while let Some(t) = server.poll_transmit() {
                // Nobody sent a valid cookie, so no answer may be longer
                // than what provoked it.
                prop_assert!(t.payload.len() <= d.len());
            }
        }
        prop_assert_eq!(server.user_count(), 0);
    }

    #[test]
    fn any_bytes_leave_the_client_standing(
        datagrams in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..1300), 1..20),
    ) {
        let now = Instant::now();
        let server = addr(1);
        let mut client = p2pchat_core::RegistryClient::new(server, 9, public(1));
        client.refresh_list(now);
        for d in &datagrams {
            client.handle_datagram(now, server, d);
        }
        while client.poll_transmit().is_some() {}
        while client.poll_event().is_some() {}
        client.handle_timeout(now + Duration::from_secs(10));
    }
}
