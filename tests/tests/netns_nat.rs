//! The NAT topology itself, checked with plain sockets: what each NAT kind
//! maps, that routers drop unsolicited packets silently, that TCP
//! simultaneous open works through two endpoint-independent NATs and not
//! through symmetric or SYN-dropping ones, and that two hosts behind one NAT
//! reach each other on their LAN but not through the router.
//!
//! Each test builds its own topology in network namespaces and deletes it
//! (see `p2pchat_tests::netns_nat`); where namespaces are not allowed, each
//! prints one line saying so and returns.

use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Barrier};
use std::time::Duration;

use p2pchat_tests::netns_nat::{NatKind, NatNet, NatTopology};
use socket2::{Domain, Protocol, Socket, Type};

/// The chat port every home host binds (with reuse) in these tests.
const PORT: u16 = 7000;

/// How long a punch attempt may take: a SYN the far router dropped is
/// retransmitted after 1 s, so 4 s leaves room for two retransmissions.
const PUNCH_BOUND: Duration = Duration::from_secs(4);

/// How long an attempt that must fail is given before it counts as failed.
const FAIL_BOUND: Duration = Duration::from_secs(3);

/// A TCP socket bound to `port` with address and port reuse, as a punching
/// client binds its chat port beside its listener.
fn reuse_socket(port: u16) -> Socket {
    let s = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP)).expect("socket");
    s.set_reuse_address(true).expect("SO_REUSEADDR");
    s.set_reuse_port(true).expect("SO_REUSEPORT");
    let any = SocketAddr::from((Ipv4Addr::UNSPECIFIED, port));
    s.bind(&any.into()).expect("bind the chat port");
    s
}

/// Connects from `port` to `to`, bounded by `bound`.
fn connect_from(port: u16, to: SocketAddr, bound: Duration) -> std::io::Result<TcpStream> {
    let s = reuse_socket(port);
    s.connect_timeout(&to.into(), bound)?;
    Ok(s.into())
}

/// Both hosts connect to each other's public mapping at the same moment
/// (released together by a barrier); returns both results, and checks
/// that successful streams are one connection.
fn simultaneous_open(net: &NatNet, a: (&str, &str), b: (&str, &str)) -> [bool; 2] {
    let barrier = Arc::new(Barrier::new(2));
    let spawn = |me: &str, peer_home: &str, send: &'static [u8], expect: &'static [u8]| {
        let to = SocketAddr::from((net.public_ip(peer_home), PORT));
        let barrier = Arc::clone(&barrier);
        net.host(me).spawn_in(move || {
            barrier.wait();
            let mut s = match connect_from(PORT, to, PUNCH_BOUND) {
                Ok(s) => s,
                Err(_) => return false,
            };
            s.set_read_timeout(Some(PUNCH_BOUND)).expect("timeout");
            s.write_all(send).expect("write on the punched connection");
            let mut got = vec![0; expect.len()];
            s.read_exact(&mut got).expect("read on the punched connection");
            assert_eq!(got, expect, "the punched connection carries the peer's bytes");
            true
        })
    };
    let ta = spawn(a.0, b.1, b"from a", b"from b");
    let tb = spawn(b.0, a.1, b"from b", b"from a");
    [ta.join().expect("side a"), tb.join().expect("side b")]
}

/// A public host that reports the source address of each connection it
/// takes; returns its listening addresses.
fn observers(net: &NatNet, host: &str, ports: &[u16]) -> Vec<std::thread::JoinHandle<SocketAddr>> {
    let ip = net.host(host).addr;
    ports
        .iter()
        .map(|&port| {
            let listener = net
                .host(host)
                .spawn_in(move || TcpListener::bind((ip, port)).expect("bind observer"))
                .join()
                .expect("listener");
            std::thread::spawn(move || listener.accept().expect("accept").1)
        })
        .collect()
}

fn mappings(kind: NatKind) -> Vec<SocketAddr> {
    let topology = NatTopology::new()
        .public_host("registry")
        .home("home", "192.0.2.0/25", kind)
        .host("alice", "home");
    let Some(net) = NatNet::build_or_skip("netns_nat mapping", &topology) else { return vec![] };
    let registry = net.host("registry").addr;
    let ports = [5000, 5001, 5002];
    let seen = observers(&net, "registry", &ports);
    net.host("alice")
        .spawn_in(move || {
            for port in ports {
                let to = SocketAddr::from((registry, port));
                connect_from(PORT, to, FAIL_BOUND).expect("reach the public host");
            }
        })
        .join()
        .expect("alice");
    let seen: Vec<SocketAddr> = seen.into_iter().map(|t| t.join().expect("observer")).collect();
    for s in &seen {
        assert_eq!(s.ip(), net.public_ip("home"), "the public side sees the router's address");
    }
    seen
}

#[test]
fn masquerade_keeps_the_port_for_every_destination() {
    let seen = mappings(NatKind::EndpointIndependent);
    for s in &seen {
        assert_eq!(s.port(), PORT, "endpoint-independent: one port-preserving mapping");
    }
}

#[test]
fn masquerade_random_maps_each_destination_apart() {
    let seen = mappings(NatKind::Symmetric);
    if seen.is_empty() {
        return;
    }
    let ports: std::collections::BTreeSet<u16> = seen.iter().map(|s| s.port()).collect();
    assert!(ports.len() > 1, "symmetric: a new mapping per destination, got {seen:?}");
}

#[test]
fn routers_drop_unsolicited_packets_silently() {
    for kind in [NatKind::EndpointIndependent, NatKind::Symmetric, NatKind::DropsInboundSyn] {
        let topology = NatTopology::new()
            .public_host("registry")
            .home("home", "198.51.100.0/24", kind)
            .host("bob", "home");
        let Some(net) = NatNet::build_or_skip("netns_nat drop", &topology) else { return };
        let router = SocketAddr::from((net.public_ip("home"), PORT));
        let result = net
            .host("registry")
            .spawn_in(move || TcpStream::connect_timeout(&router, FAIL_BOUND).map(|_| ()))
            .join()
            .expect("registry");
        let err = result.expect_err("an unsolicited connection must not get through");
        // Refused would mean a RST came back: the router answered.
        assert_eq!(err.kind(), ErrorKind::TimedOut, "{kind:?}: {err}");
    }
}

/// Through two masquerades; and when only one NAT drops inbound SYNs, the
/// other side's SYN gets in and its SYN-ACK goes back out through the
/// dropping NAT's own mapping (what `punch_sim` models, checked for real).
#[test]
fn simultaneous_open_punches_through_endpoint_independent_nats() {
    for (k1, k2) in [
        (NatKind::EndpointIndependent, NatKind::EndpointIndependent),
        (NatKind::DropsInboundSyn, NatKind::EndpointIndependent),
    ] {
        let topology = alice_and_bob_at_home(k1, k2);
        let Some(net) = NatNet::build_or_skip("netns_nat punch", &topology) else { return };
        let [a, b] = simultaneous_open(&net, ("alice", "home1"), ("bob", "home2"));
        assert!(a && b, "{k1:?}/{k2:?}: alice {a}, bob {b}: simultaneous open must work");
    }
}

/// A public registry; alice behind a NAT of kind `k1`, bob behind one of
/// kind `k2`.
fn alice_and_bob_at_home(k1: NatKind, k2: NatKind) -> NatTopology {
    NatTopology::new()
        .public_host("registry")
        .home("home1", "192.0.2.0/25", k1)
        .home("home2", "198.51.100.0/24", k2)
        .host("alice", "home1")
        .host("bob", "home2")
}

#[test]
fn simultaneous_open_fails_behind_symmetric_or_syn_dropping_nats() {
    for (k1, k2) in [
        (NatKind::Symmetric, NatKind::Symmetric),
        (NatKind::Symmetric, NatKind::EndpointIndependent),
        (NatKind::DropsInboundSyn, NatKind::DropsInboundSyn),
    ] {
        let topology = alice_and_bob_at_home(k1, k2);
        let Some(net) = NatNet::build_or_skip("netns_nat no punch", &topology) else { return };
        let [a, b] = simultaneous_open(&net, ("alice", "home1"), ("bob", "home2"));
        assert!(!a && !b, "{k1:?}/{k2:?}: alice {a}, bob {b}: punching must fail");
    }
}

#[test]
fn two_hosts_behind_one_nat_meet_on_the_lan_not_through_the_router() {
    let topology = NatTopology::new()
        .public_host("registry")
        .home("home", "192.0.2.0/25", NatKind::EndpointIndependent)
        .host("alice", "home")
        .host("carol", "home");
    let Some(net) = NatNet::build_or_skip("netns_nat same nat", &topology) else { return };
    let carol = net.host("carol").addr;
    let listener = net
        .host("carol")
        .spawn_in(move || TcpListener::bind((carol, PORT)).expect("carol listens"))
        .join()
        .expect("carol");
    let accept = std::thread::spawn(move || listener.accept().map(|(_, from)| from));
    let public = SocketAddr::from((net.public_ip("home"), PORT));
    let lan = SocketAddr::from((carol, PORT));
    let (hairpin, direct) = net
        .host("alice")
        .spawn_in(move || {
            let hairpin = TcpStream::connect_timeout(&public, FAIL_BOUND).map(|_| ());
            let direct = TcpStream::connect_timeout(&lan, FAIL_BOUND).map(|_| ());
            (hairpin, direct)
        })
        .join()
        .expect("alice");
    assert!(hairpin.is_err(), "the router must not hairpin");
    direct.expect("carol on the LAN");
    let from = accept.join().expect("accept thread").expect("accept");
    assert_eq!(from.ip(), net.host("alice").addr, "straight from alice, not translated");
}
