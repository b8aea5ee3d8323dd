//! The load generator against servers started in the test: echo servers
//! (one dropping every 10th datagram) and the real registry (core and
//! transport in a thread), on loopback with ports the OS picks. Bounded:
//! every run is a fraction of a second.

use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use p2pchat_core::{
    ClientMsg, Cookie, CookieKey, RegistryServer, RequestId, ServerConfig, encode_request,
};
use p2pchat_transport_mio::ServerLoop;

use crate::echo::{self, EchoConfig, EchoMode};
use crate::loadgen::{self, Expect, LoadResult, LoadShape, Requests};
use crate::registry_session::{Mix, bind_load_sockets, check, prepare, templates};
use crate::registry_users::login_users;

/// A time-out far beyond any scheduling stall of a busy machine: nothing
/// is counted lost unless it was.
const SHAPE: LoadShape = LoadShape {
    in_flight: 4,
    warmup: Duration::from_millis(50),
    duration: Duration::from_millis(300),
    timeout: Duration::from_secs(1),
};

/// For the lossy echo: each loss holds its slot for the time-out, so a
/// shorter one and a longer window give a few hundred requests.
const LOSSY_SHAPE: LoadShape = LoadShape {
    in_flight: 4,
    warmup: Duration::from_millis(50),
    duration: Duration::from_secs(1),
    timeout: Duration::from_millis(100),
};

struct Echo {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<std::io::Result<u64>>>,
}

impl Echo {
    fn start(config: EchoConfig) -> Self {
        let socket = UdpSocket::bind("127.0.0.1:0").expect("bind echo");
        let addr = socket.local_addr().expect("echo addr");
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || echo::serve(&socket, config, &flag));
        Self { addr, stop, thread: Some(thread) }
    }
}

impl Drop for Echo {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn echo_requests(n: usize) -> Vec<Requests> {
    let msg = ClientMsg::Logout { cookie: Cookie([9; 16]) };
    (0..n).map(|_| Requests { templates: vec![encode_request(RequestId(0), &msg)] }).collect()
}

fn load_echo(config: EchoConfig, shape: LoadShape) -> LoadResult {
    let echo = Echo::start(config);
    let sockets = bind_load_sockets(2, echo.addr).expect("load sockets");
    let mut requests = echo_requests(2);
    loadgen::run(&sockets, &mut requests, Expect::Echo, shape, None).expect("load run")
}

#[test]
fn every_request_sent_is_answered_or_lost_and_none_is_lost_to_a_perfect_echo() {
    for mode in [EchoMode::Plain, EchoMode::Batched] {
        let r = load_echo(EchoConfig { mode, reply_len: Some(1000), drop_every: None }, SHAPE);
        assert!(r.replies > 0 && r.sent > 0, "{mode:?}: {r:?}");
        assert_eq!(r.lost, 0, "{mode:?}: {r:?}");
        assert_eq!(r.answered, r.sent, "{mode:?}");
        assert_eq!((r.bad, r.late, r.challenged), (0, 0, 0), "{mode:?}");
        assert_eq!(r.reply_len, 1000, "{mode:?}: padded replies");
        let p50 = r.latency.quantile(0.5).expect("latencies recorded");
        assert!(p50 > 0 && p50 < SHAPE.timeout.as_nanos() as u64, "{mode:?}: p50 {p50}");
    }
}

#[test]
fn an_echo_dropping_every_tenth_datagram_shows_a_tenth_lost() {
    for mode in [EchoMode::Plain, EchoMode::Batched] {
        let r = load_echo(EchoConfig { mode, reply_len: None, drop_every: Some(10) }, LOSSY_SHAPE);
        assert!(r.sent > 300, "{mode:?}: only {} sent", r.sent);
        assert_eq!(r.answered + r.lost, r.sent, "{mode:?}: {r:?}");
        let share = r.lost as f64 / r.sent as f64;
        assert!((0.08..=0.12).contains(&share), "{mode:?}: lost {} of {}", r.lost, r.sent);
        assert_eq!(r.late, 0, "{mode:?}: no reply comes after its time-out");
    }
}

struct Registry {
    addr: SocketAddr,
    stop: p2pchat_transport_mio::StopHandle,
    thread: Option<JoinHandle<()>>,
}

impl Registry {
    fn start() -> Self {
        let socket = UdpSocket::bind("127.0.0.1:0").expect("bind registry");
        let addr = socket.local_addr().expect("registry addr");
        let config = ServerConfig {
            lease: Duration::from_secs(600),
            max_users: 1_000,
            max_per_address: 1_000,
            local_addr: Some(addr),
        };
        let core = RegistryServer::new(Instant::now(), CookieKey([7; 16]), config);
        let mut server = ServerLoop::new(socket, core).expect("server loop");
        let stop = server.stop_handle();
        let thread = std::thread::spawn(move || {
            server.run(|_| {}).expect("server loop runs");
        });
        Self { addr, stop, thread: Some(thread) }
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.stop.stop();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[test]
fn the_real_registry_answers_every_mix_after_the_cookie_exchange() {
    let registry = Registry::start();
    let users = 50;
    let logins = login_users(registry.addr, 0..users, Instant::now() + Duration::from_secs(10))
        .expect("bulk login");
    assert_eq!((logins.logged_in, logins.failed), (u64::from(users), 0));
    let (sockets, cookies) = prepare(2, registry.addr).expect("load sockets log in");
    for mix in [Mix::Keepalive, Mix::Lookup, Mix::ListPage] {
        let mut requests: Vec<Requests> =
            (0..2).map(|i| templates(mix, cookies[i], i, users)).collect();
        let (len, _) = check(&sockets[0], mix, &requests[0]).expect("checked once in full");
        let r = loadgen::run(&sockets, &mut requests, mix.expect(), SHAPE, None).expect("load run");
        assert!(r.replies > 0, "{mix:?}: {r:?}");
        assert_eq!((r.lost, r.bad, r.challenged), (0, 0, 0), "{mix:?}: {r:?}");
        assert_eq!(r.answered, r.sent, "{mix:?}");
        assert_eq!(r.reply_len, len, "{mix:?}: the same reply as the full decode");
        if mix == Mix::ListPage {
            // 50 users of 11-byte names fill a page of 21 entries.
            assert!(len > 1_100, "list page of {len} bytes");
        }
    }
}

#[test]
fn a_load_socket_with_a_stale_cookie_is_challenged_and_recovers() {
    let registry = Registry::start();
    let (sockets, _) = prepare(1, registry.addr).expect("load socket logs in");
    let mut requests = vec![templates(Mix::Keepalive, Cookie([0; 16]), 0, 1)];
    let r =
        loadgen::run(&sockets, &mut requests, Mix::Keepalive.expect(), SHAPE, None).expect("run");
    assert!(r.challenged >= 1, "{r:?}");
    assert!(r.replies > 0 && r.bad == 0, "{r:?}");
}
