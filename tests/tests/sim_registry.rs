//! The registry under a lossy, duplicating, reordering network, in virtual
//! time: many clients log in, page through the list, log out, vanish, roam,
//! and survive a registry restart; and an echo service or a forged
//! self-addressed datagram gets no stream of replies.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::Duration;

use p2pchat_core::{
    ClientEvent, ClientMsg, GET_COOKIE_LEN, GIVE_UP_AFTER, RequestId, ServerConfig, ServerEvent,
    encode_request,
};
use p2pchat_tests::net::{Faults, Net, SERVER_ADDR};

const CLIENTS: usize = 200;
const LEASE: Duration = Duration::from_secs(60);

fn config() -> ServerConfig {
    ServerConfig {
        lease: LEASE,
        max_users: 1000,
        local_addr: Some(SERVER_ADDR),
        ..ServerConfig::default()
    }
}

/// Drives every client in `who` through `command` until each reports an
/// event that `done` accepts, retrying after `Unreachable` as an application
/// would. Returns the events index at which each client's answer starts.
fn login_all(net: &mut Net, who: &[usize]) {
    net.until_all(
        who,
        |net, i| {
            let name = net.clients[i].name.clone();
            net.command(i, |c, now| c.login(now, name, 7000));
        },
        |e| matches!(e, ClientEvent::LoggedIn { .. }),
    );
}

/// Every client in `who` fetches the whole list; returns each one's names.
fn lists(net: &mut Net, who: &[usize]) -> Vec<BTreeSet<String>> {
    let lists = net.until_all(
        who,
        |net, i| net.command(i, |c, now| c.refresh_list(now)),
        |e| matches!(e, ClientEvent::List { .. }),
    );
    lists
        .into_iter()
        .map(|e| {
            let ClientEvent::List { entries } = e else { unreachable!("until_all saw a List") };
            let names: BTreeSet<String> = entries.iter().map(|e| e.name.to_string()).collect();
            assert_eq!(names.len(), entries.len(), "a name is listed twice");
            names
        })
        .collect()
}

fn names(net: &Net, who: impl IntoIterator<Item = usize>) -> BTreeSet<String> {
    who.into_iter().map(|i| net.clients[i].name.to_string()).collect()
}

/// The whole story from the issue, on one seed. Returns a digest of the run
/// so that two runs can be compared.
fn scenario(seed: u64) -> Vec<String> {
    let mut net = Net::new(seed, Faults::lossy(), config(), CLIENTS);
    let everyone: Vec<usize> = (0..CLIENTS).collect();

    // 200 clients log in through 20% loss and 5% duplication.
    login_all(&mut net, &everyone);
    assert_eq!(net.server.user_count(), CLIENTS);
    for names_seen in lists(&mut net, &everyone) {
        assert_eq!(names_seen, names(&net, 0..CLIENTS));
    }

    // 100 log out; the rest see exactly the other 100.
    let leaving: Vec<usize> = (0..100).collect();
    let staying: Vec<usize> = (100..CLIENTS).collect();
    net.until_all(
        &leaving,
        |net, i| net.command(i, |c, now| c.logout(now)),
        |e| matches!(e, ClientEvent::LoggedOut),
    );
    for names_seen in lists(&mut net, &staying) {
        assert_eq!(names_seen, names(&net, staying.iter().copied()));
    }

    // 50 vanish without a word; after one lease they are gone.
    let vanishing: Vec<usize> = (100..150).collect();
    let alive: Vec<usize> = (150..CLIENTS).collect();
    for &i in &vanishing {
        net.clients[i].crashed = true;
    }
    let crash = net.elapsed();
    let gone =
        net.run_until(LEASE + Duration::from_millis(100), |net| net.server.user_count() == 50);
    assert!(gone, "vanished clients still listed after one lease: {}", net.server.user_count());
    assert!(net.elapsed() - crash > LEASE / 3, "entries went before their lease ran out");
    for names_seen in lists(&mut net, &alive) {
        assert_eq!(names_seen, names(&net, alive.iter().copied()));
    }

    // A cold restart of the registry is healed within one keepalive period
    // (plus the retransmissions that 20% loss may cost).
    net.restart_server();
    assert_eq!(net.server.user_count(), 0);
    let heal = LEASE / 3 + Duration::from_millis(7_500);
    let healed = net.run_until(heal, |net| net.server.user_count() == alive.len());
    assert!(healed, "only {} of {} re-registered", net.server.user_count(), alive.len());
    for names_seen in lists(&mut net, &alive) {
        assert_eq!(names_seen, names(&net, alive.iter().copied()));
    }

    // The digest: every event every node reported, with its virtual time.
    let mut digest: Vec<String> =
        net.server_events.iter().map(|(t, e)| format!("{t:?} server {e:?}")).collect();
    for c in &net.clients {
        digest.extend(c.events.iter().map(|(t, e)| format!("{t:?} {} {e:?}", c.name)));
    }
    digest.push(format!("sent {}", net.sent));
    digest
}

#[test]
fn two_hundred_clients_through_loss_logout_vanishing_and_restart() {
    let digest = scenario(1);
    let unreachable = digest.iter().filter(|l| l.contains("Unreachable")).count();
    eprintln!("events: {}, unreachable reports: {unreachable}", digest.len());
}

#[test]
fn the_same_seed_gives_the_same_run() {
    let a = scenario(7);
    let b = scenario(7);
    assert_eq!(a, b);
    let c = scenario(8);
    assert_ne!(a, c, "a different seed should give a different run");
}

#[test]
fn keepalives_hold_the_lease_over_many_leases() {
    let mut net = Net::new(3, Faults::lossy(), config(), 20);
    let everyone: Vec<usize> = (0..20).collect();
    login_all(&mut net, &everyone);
    net.run_for(LEASE * 5);
    assert_eq!(net.server.user_count(), 20);
    let timed_out =
        net.server_events.iter().filter(|(_, e)| matches!(e, ServerEvent::TimedOut { .. })).count();
    assert_eq!(timed_out, 0);
}

/// A cookie request, as a client sends it.
fn get_cookie(id: u32) -> Vec<u8> {
    encode_request(RequestId(id), &ClientMsg::GetCookie { padding: vec![0; GET_COOKIE_LEN - 11] })
}

/// The loop of version 1: a request forged with an echo service's address
/// as its source. The registry answers once; the echo bounces the answer
/// back; the registry must not answer that.
#[test]
fn an_echo_service_gets_one_answer_per_probe() {
    let mut net = Net::new(11, Faults::none(), config(), 0);
    let echo: SocketAddr = "10.9.9.9:7".parse().unwrap();
    net.echo = Some(echo);
    for id in 0..50 {
        let before = net.server_sent;
        net.inject(echo, SERVER_ADDR, get_cookie(id));
        net.run_until(Duration::from_secs(5), |_| false);
        assert!(net.server_sent - before <= 1, "{} answers to one probe", net.server_sent - before);
    }
    assert_eq!(net.server.stats().looped, 50, "every bounced reply was recognised");
}

/// A request forged with the registry's own address as its source is not
/// answered at all.
#[test]
fn a_self_addressed_request_is_not_answered() {
    let mut net = Net::new(12, Faults::none(), config(), 0);
    net.inject(SERVER_ADDR, SERVER_ADDR, get_cookie(1));
    net.run_until(Duration::from_secs(5), |_| false);
    assert_eq!(net.server_sent, 0);
}

/// 30% loss each way: every login and every list still gets through on the
/// first try, because the client keeps trying for half a minute.
#[test]
fn thirty_percent_loss_needs_no_second_try() {
    let heavy = Faults { loss: 0.30, ..Faults::lossy() };
    let mut net = Net::new(13, heavy, config(), 50);
    for i in 0..50 {
        let name = net.clients[i].name.clone();
        net.command(i, |c, now| c.login(now, name, 7000));
    }
    let all_in = net.run_until(GIVE_UP_AFTER + Duration::from_secs(1), |net| {
        net.clients.iter().all(|c| c.machine.is_logged_in())
    });
    assert!(all_in, "only {} of 50 logged in", net.server.user_count());
    for i in 0..50 {
        net.command(i, |c, now| c.refresh_list(now));
    }
    let listed = |net: &Net| {
        net.clients
            .iter()
            .all(|c| c.events.iter().any(|(_, e)| matches!(e, ClientEvent::List { .. })))
    };
    assert!(net.run_until(GIVE_UP_AFTER * 4, listed), "some list never came");
    let unreachable = net
        .clients
        .iter()
        .flat_map(|c| &c.events)
        .filter(|(_, e)| matches!(e, ClientEvent::Unreachable { .. }))
        .count();
    assert_eq!(unreachable, 0);
}

/// A laptop that changes networks keeps its name: its next keepalive comes
/// from the new address, is challenged, and moves the entry there.
#[test]
fn a_client_that_changes_address_keeps_its_name() {
    let mut net = Net::new(14, Faults::none(), config(), 2);
    login_all(&mut net, &[0, 1]);
    let old = net.clients[0].addr;
    let new: SocketAddr = "10.200.0.1:41000".parse().unwrap();
    net.clients[0].addr = new;
    let moved = net.run_until(LEASE, |net| net.server.users().any(|e| e.addr == new));
    assert!(moved, "the entry never moved");
    assert_eq!(net.server.user_count(), 2);
    let name = net.clients[0].name.clone();
    assert!(
        net.server_events
            .iter()
            .any(|(_, e)| { *e == ServerEvent::Roamed { name: name.clone(), from: old, to: new } })
    );
    assert!(net.clients[0].machine.is_logged_in());
}
