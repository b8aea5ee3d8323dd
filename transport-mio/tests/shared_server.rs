//! One registry on two loops (two threads, two sockets on one port): users
//! who log in through either loop are found through the other, and the
//! kernel spreads the senders over both.

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use p2pchat_core::{
    ClientMsg, CookieKey, GET_COOKIE_LEN, PublicKey, RegistryServer, RequestId, ServerConfig,
    ServerMsg, decode_reply, encode_request,
};
use p2pchat_transport_mio::{ServerLoop, SharedCore, reuse_port_sockets};

/// How long a test waits for a datagram that must come before it fails.
const PATIENCE: Duration = Duration::from_secs(10);

/// Users, each on its own socket (its own source port): with two loops,
/// the chance that the kernel's hash puts them all on one is 2⁻³¹.
const USERS: usize = 32;

/// Sends `msg` and returns the answer to it (skipping nothing: each
/// socket has one request in flight).
fn ask(socket: &UdpSocket, server: SocketAddr, id: u32, msg: &ClientMsg) -> ServerMsg {
    socket.send_to(&encode_request(RequestId(id), msg), server).unwrap();
    let mut buf = [0; 2048];
    let (n, from) = socket.recv_from(&mut buf).unwrap();
    assert_eq!(from, server, "the reply comes from the registry's address");
    let (got, reply) = decode_reply(&buf[..n]).unwrap();
    assert_eq!(got, RequestId(id));
    reply
}

fn name(i: usize) -> String {
    format!("user{i}")
}

#[test]
fn two_loops_serve_one_list() {
    let mut sockets = reuse_port_sockets("127.0.0.1:0".parse().unwrap(), 2).unwrap();
    let addr = sockets[0].local_addr().unwrap();
    assert_eq!(sockets[1].local_addr().unwrap(), addr, "both on one port");
    let config = ServerConfig { local_addr: Some(addr), ..ServerConfig::default() };
    let shared = SharedCore::new(RegistryServer::new(Instant::now(), CookieKey([3; 16]), config));
    let follower_core = shared.follower();
    let loops = [
        ServerLoop::new(sockets.remove(0), shared).unwrap(),
        ServerLoop::new(sockets.remove(0), follower_core).unwrap(),
    ];
    let stops = loops.each_ref().map(ServerLoop::stop_handle);
    let threads = loops.map(|mut l| {
        std::thread::spawn(move || {
            l.run(|_| {}).unwrap();
            l.received()
        })
    });

    let users: Vec<UdpSocket> = (0..USERS)
        .map(|_| {
            let s = UdpSocket::bind("127.0.0.1:0").unwrap();
            s.set_read_timeout(Some(PATIENCE)).unwrap();
            s
        })
        .collect();
    let mut cookies = Vec::new();
    for (i, s) in users.iter().enumerate() {
        let get = ClientMsg::GetCookie { padding: vec![0; GET_COOKIE_LEN - 11] };
        let ServerMsg::Challenge { cookie } = ask(s, addr, 1, &get) else {
            panic!("no cookie for user {i}");
        };
        let login = ClientMsg::Login {
            cookie,
            name: name(i),
            chat_port: 7000 + i as u16,
            key: PublicKey([i as u8; 32]),
        };
        let reply = ask(s, addr, 2, &login);
        assert!(matches!(reply, ServerMsg::Welcome { .. }), "user {i}: {reply:?}");
        cookies.push(cookie);
    }
    // Each looks up the next one, whichever loop took that one's login.
    for (i, s) in users.iter().enumerate() {
        let next = (i + 1) % USERS;
        let lookup = ClientMsg::Lookup { cookie: cookies[i], name: name(next) };
        match ask(s, addr, 3, &lookup) {
            ServerMsg::Found { entry: Some(entry) } => {
                assert_eq!(entry.name.as_str(), name(next));
                assert_eq!(entry.addr, users[next].local_addr().unwrap());
            }
            other => panic!("user {i} did not find {}: {other:?}", name(next)),
        }
    }
    for stop in &stops {
        stop.stop();
    }
    let counts = threads.map(|t| t.join().unwrap());
    assert_eq!(counts.iter().sum::<u64>(), 3 * USERS as u64, "every request handled once");
    assert!(counts.iter().all(|&n| n > 0), "the kernel used both sockets: {counts:?}");
}
