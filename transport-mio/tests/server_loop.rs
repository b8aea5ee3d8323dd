//! The registry's server loop on loopback, against what it must never
//! answer twice: a UDP echo service that bounces its replies back.

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use p2pchat_core::{
    ClientMsg, Cookie, CookieKey, GET_COOKIE_LEN, RegistryServer, RequestId, ServerConfig,
    ServerMsg, decode_reply, encode_request,
};
use p2pchat_transport_mio::{SERVER_SOCKET_BUFFER, ServerLoop, size_buffers};

/// How long a test waits for a datagram that must come before it fails.
const PATIENCE: Duration = Duration::from_secs(10);

fn socket() -> UdpSocket {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.set_read_timeout(Some(PATIENCE)).unwrap();
    s
}

/// An echo service bounces the server's replies (a challenge, a refusal of
/// another version) back to it. Each bounced reply must go unanswered. A
/// sentinel request sent after each bounce is the barrier: the server reads
/// its socket in order, so once the sentinel's answer is back, the bounce
/// has been handled, and anything the server sent about it has already
/// reached the echo socket (loopback delivers during the send).
#[test]
fn replies_bounced_by_an_echo_service_are_not_answered() {
    let bound = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = bound.local_addr().unwrap();
    size_buffers(&bound, SERVER_SOCKET_BUFFER).unwrap();
    let config = ServerConfig { local_addr: Some(addr), ..ServerConfig::default() };
    let core = RegistryServer::new(Instant::now(), CookieKey([9; 16]), config);
    let mut server = ServerLoop::new(bound, core).unwrap();
    let stop = server.stop_handle();
    let thread = std::thread::spawn(move || {
        server.run(|_| {}).unwrap();
        server.core().stats()
    });
    let echo = socket();
    let sentinel = socket();
    let mut buf = [0; 2048];
    let get_cookie = ClientMsg::GetCookie { padding: vec![0; GET_COOKIE_LEN - 11] };
    let mut other_version =
        encode_request(RequestId(2), &ClientMsg::Logout { cookie: Cookie([0; 16]) });
    other_version[4] = 3;
    let probes = [encode_request(RequestId(1), &get_cookie), other_version];
    let mut bounced = 0;
    for (i, probe) in probes.iter().enumerate() {
        echo.send_to(probe, addr).unwrap();
        let (n, from) = echo.recv_from(&mut buf).unwrap();
        assert_eq!(from, addr);
        // The echo service: the same bytes back to where they came from.
        echo.send_to(&buf[..n], from).unwrap();
        bounced += 1;
        let id = RequestId(100 + i as u32);
        sentinel.send_to(&encode_request(id, &get_cookie), addr).unwrap();
        let (n, _) = sentinel.recv_from(&mut buf).unwrap();
        assert!(
            matches!(decode_reply(&buf[..n]), Ok((got, ServerMsg::Challenge { .. })) if got == id)
        );
        echo.set_nonblocking(true).unwrap();
        let after: Vec<SocketAddr> =
            std::iter::from_fn(|| echo.recv_from(&mut buf).ok().map(|(_, f)| f)).collect();
        echo.set_nonblocking(false).unwrap();
        assert_eq!(after, Vec::<SocketAddr>::new(), "the server answered a bounced reply");
    }
    stop.stop();
    let stats = thread.join().unwrap();
    assert_eq!(stats.looped, bounced);
}
