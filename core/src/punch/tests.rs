//! The punching rules, one test each. The simulator in
//! `tests/tests/sim_punch.rs` runs two machines against NATs.

use super::*;

fn local(port: u16) -> Candidate {
    Candidate { addr: SocketAddr::from(([192, 0, 2, 10], port)), kind: CandidateKind::Local }
}

fn observed(port: u16) -> Candidate {
    Candidate { addr: SocketAddr::from(([203, 0, 113, 2], port)), kind: CandidateKind::Observed }
}

fn actions(p: &mut Punch) -> Vec<PunchAction> {
    std::iter::from_fn(|| p.poll_action()).collect()
}

fn connects(actions: &[PunchAction]) -> Vec<SocketAddr> {
    actions
        .iter()
        .filter_map(|a| match a {
            PunchAction::Connect { addr, .. } => Some(*addr),
            PunchAction::Close { .. } => None,
        })
        .collect()
}

#[test]
fn local_candidates_first_then_the_observed_one() {
    let t0 = test_origin();
    let mut p = Punch::new(t0, PunchRole::Caller, &[local(1), observed(2)]).unwrap();
    assert_eq!(connects(&actions(&mut p)), vec![local(1).addr]);
    assert_eq!(p.poll_timeout(), Some(t0 + LOCAL_HEAD_START));
    p.handle_timeout(t0 + LOCAL_HEAD_START);
    assert_eq!(connects(&actions(&mut p)), vec![observed(2).addr]);
    // Without local candidates the observed one starts at once.
    let mut p = Punch::new(t0, PunchRole::Caller, &[observed(2)]).unwrap();
    assert_eq!(connects(&actions(&mut p)), vec![observed(2).addr]);
}

#[test]
fn the_caller_keeps_the_first_connection_and_closes_the_rest() {
    let t0 = test_origin();
    let mut p = Punch::new(t0, PunchRole::Caller, &[local(1), observed(2)]).unwrap();
    p.handle_timeout(t0 + LOCAL_HEAD_START);
    let _ = actions(&mut p);
    let accepted = p.handle_accepted(t0 + LOCAL_HEAD_START, observed(9).addr);
    assert_eq!(
        p.poll_event(),
        Some(PunchEvent::Chosen {
            path: accepted,
            addr: observed(9).addr,
            kind: PathKind::Accepted
        })
    );
    assert_eq!(
        actions(&mut p),
        vec![PunchAction::Close { path: PathId(0) }, PunchAction::Close { path: PathId(1) }]
    );
    // A late success is closed, and nothing more is reported.
    p.handle_connected(t0 + PUNCH_TIMEOUT, PathId(0));
    let late = p.handle_accepted(t0 + PUNCH_TIMEOUT, local(1).addr);
    assert_eq!(actions(&mut p), vec![PunchAction::Close { path: late }]);
    assert_eq!(p.poll_event(), None);
    assert_eq!(p.poll_timeout(), None);
}

#[test]
fn the_callee_keeps_the_connection_the_caller_speaks_on() {
    let t0 = test_origin();
    let mut p = Punch::new(t0, PunchRole::Callee, &[local(1), observed(2)]).unwrap();
    let _ = actions(&mut p);
    p.handle_connected(t0, PathId(0));
    let accepted = p.handle_accepted(t0, observed(9).addr);
    assert_eq!(p.poll_event(), None, "the callee does not pick");
    // No new attempt starts while a connection is open.
    assert_eq!(p.poll_timeout(), Some(t0 + PUNCH_TIMEOUT + CALLEE_GRACE));
    p.handle_timeout(t0 + LOCAL_HEAD_START);
    assert_eq!(actions(&mut p), vec![]);
    p.handle_peer_bytes(t0, accepted);
    assert!(matches!(p.poll_event(), Some(PunchEvent::Chosen { path, .. }) if path == accepted));
    assert_eq!(actions(&mut p), vec![PunchAction::Close { path: PathId(0) }]);
}

#[test]
fn a_failed_attempt_is_retried_a_bounded_number_of_times() {
    let t0 = test_origin();
    let mut p = Punch::new(t0, PunchRole::Caller, &[local(1)]).unwrap();
    let mut now = t0;
    let mut tries = 0;
    while let Some(PunchAction::Connect { path, .. }) = p.poll_action() {
        tries += 1;
        p.handle_failed(now, path);
        match p.poll_timeout() {
            Some(t) if t < t0 + PUNCH_TIMEOUT => {
                assert_eq!(t, now + RETRY_DELAY);
                now = t;
                p.handle_timeout(now);
            }
            _ => break,
        }
    }
    assert_eq!(tries, MAX_TRIES);
}

#[test]
fn nothing_in_time_means_the_relay_with_every_socket_closed() {
    let t0 = test_origin();
    for (role, deadline) in [
        (PunchRole::Caller, t0 + PUNCH_TIMEOUT),
        (PunchRole::Callee, t0 + PUNCH_TIMEOUT + CALLEE_GRACE),
    ] {
        let mut p = Punch::new(t0, role, &[local(1), observed(2)]).unwrap();
        let mut all = actions(&mut p);
        // Unanswered attempts are restarted every ATTEMPT_RESTART, a fresh
        // socket each time, until the deadline.
        while let Some(t) = p.poll_timeout() {
            assert!(t <= deadline);
            p.handle_timeout(t);
            all.extend(actions(&mut p));
            if let Some(e) = p.poll_event() {
                assert_eq!(e, PunchEvent::UseRelay);
                assert_eq!(t, deadline);
                break;
            }
        }
        assert!(p.is_done());
        let opened = connects(&all).len();
        let closed = all.iter().filter(|a| matches!(a, PunchAction::Close { .. })).count();
        assert_eq!(opened, closed, "every socket opened is closed");
        let per_candidate = (PUNCH_TIMEOUT.as_millis() / ATTEMPT_RESTART.as_millis()) as usize;
        assert!(opened >= per_candidate, "{opened} attempts");
        assert!(opened <= 2 * (deadline - t0).as_millis() as usize / 500 + 2, "{opened} attempts");
    }
}

#[test]
fn candidates_are_bounded() {
    let t0 = test_origin();
    assert_eq!(Punch::new(t0, PunchRole::Caller, &[]).err(), Some(PunchError::NoCandidates));
    let many = vec![local(1); MAX_CANDIDATES + 1];
    assert_eq!(
        Punch::new(t0, PunchRole::Caller, &many).err(),
        Some(PunchError::TooManyCandidates(MAX_CANDIDATES + 1))
    );
}
