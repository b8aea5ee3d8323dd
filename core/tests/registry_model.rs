//! The registry agrees with a plain map after any sequence of logins,
//! refreshes, renames, logouts and expiries from many endpoints, and any
//! bytes at all leave it standing.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use p2pchat_core::{
    ClientMsg, Cookie, CookieKey, RefuseReason, RegistryServer, RequestId, ServerConfig, ServerMsg,
    decode_reply, encode_request,
};
use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;

const LEASE: Duration = Duration::from_secs(60);
const MAX_USERS: usize = 5;
/// Names that collide without regard to case, and one invalid name.
const NAMES: [&str; 11] =
    ["ann", "Ann", "ANN", "bob", "Bob", "carl", "dave", "eve", "fay", "gus", "bad name"];

#[derive(Debug, Clone)]
enum Op {
    Login { ep: u8, name: usize, port: u16 },
    Logout { ep: u8 },
    Wait { secs: u16 },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..8u8, 0..NAMES.len(), 1..4u16).prop_map(|(ep, name, port)| Op::Login { ep, name, port }),
        1 => (0..8u8).prop_map(|ep| Op::Logout { ep }),
        1 => (0..90u16).prop_map(|secs| Op::Wait { secs }),
    ]
}

fn addr(ep: u8) -> SocketAddr {
    SocketAddr::from(([192, 0, 2, ep], 4000 + u16::from(ep)))
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
    match ask(server, now, from, ClientMsg::GetCookie { padding: vec![0; 40] }) {
        ServerMsg::Challenge { cookie } => cookie,
        other => panic!("expected a challenge, got {other:?}"),
    }
}

/// The model: folded name → (name as written, endpoint, chat port, expiry).
type Model = BTreeMap<String, (String, u8, u16, Instant)>;

fn expected_login(model: &mut Model, now: Instant, ep: u8, name: &str, port: u16) -> ServerMsg {
    if name.contains(' ') {
        return ServerMsg::Refused { reason: RefuseReason::NameInvalid };
    }
    let key = name.to_lowercase();
    let held = model.iter().find(|(_, v)| v.1 == ep).map(|(k, _)| k.clone());
    match model.get(&key) {
        Some(v) if v.1 != ep => {
            return ServerMsg::Refused { reason: RefuseReason::NameTaken };
        }
        Some(_) => {}
        None if held.is_none() && model.len() >= MAX_USERS => {
            return ServerMsg::Refused { reason: RefuseReason::ServerFull };
        }
        None => {
            if let Some(old) = held {
                model.remove(&old);
            }
        }
    }
    model.insert(key, (name.to_owned(), ep, port, now + LEASE));
    ServerMsg::Welcome { observed: addr(ep), lease_secs: LEASE.as_secs() as u32 }
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
        let config = ServerConfig { lease: LEASE, max_users: MAX_USERS };
        let mut server = RegistryServer::new(now, CookieKey([3; 16]), config);
        let mut model = Model::new();
        for op in ops {
            match op {
                Op::Login { ep, name, port } => {
                    let c = cookie(&mut server, now, addr(ep));
                    let msg = ClientMsg::Login { cookie: c, name: NAMES[name].to_owned(), chat_port: port };
                    let got = ask(&mut server, now, addr(ep), msg);
                    prop_assert_eq!(got, expected_login(&mut model, now, ep, NAMES[name], port));
                }
                Op::Logout { ep } => {
                    let c = cookie(&mut server, now, addr(ep));
                    let got = ask(&mut server, now, addr(ep), ClientMsg::Logout { cookie: c });
                    prop_assert_eq!(got, ServerMsg::LoggedOut);
                    model.retain(|_, v| v.1 != ep);
                }
                Op::Wait { secs } => {
                    now += Duration::from_secs(secs.into());
                    while server.poll_timeout().is_some_and(|t| t <= now) {
                        server.handle_timeout(now);
                    }
                    model.retain(|_, v| v.3 > now);
                }
            }
            while server.poll_event().is_some() {}
            let listed: Vec<(String, SocketAddr, u16)> =
                server.users().map(|e| (e.name.to_string(), e.addr, e.chat_port)).collect();
            let modelled: Vec<(String, SocketAddr, u16)> =
                model.values().map(|(n, ep, port, _)| (n.clone(), addr(*ep), *port)).collect();
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
        let mut client = p2pchat_core::RegistryClient::new(server, 9);
        client.refresh_list(now);
        for d in &datagrams {
            client.handle_datagram(now, server, d);
        }
        while client.poll_transmit().is_some() {}
        while client.poll_event().is_some() {}
        client.handle_timeout(now + Duration::from_secs(10));
    }
}
