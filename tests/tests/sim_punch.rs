//! Hole punching in virtual time: two punch machines behind modelled NATs
//! (see `p2pchat_tests::punch_sim`), with SYN loss and the two sides
//! learning of the call at different moments.

use std::time::Duration;

use p2pchat_core::{CALLEE_GRACE, CandidateKind, PUNCH_TIMEOUT, PathKind, PunchEvent};
use p2pchat_tests::punch_sim::{Nat, Outcome, Scenario, run};

const SEEDS: u64 = 200;

fn scenario(caller_nat: Nat, callee_nat: Nat) -> Scenario {
    Scenario {
        caller_nat,
        callee_nat,
        same_nat: false,
        caller_start: Duration::ZERO,
        callee_start: Duration::ZERO,
        syn_loss: 0.0,
        min_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(40),
    }
}

/// Every run keeps exactly one socket per side when it ends on a
/// connection, none when it ends on the relay, and both sides agree.
fn check_consistent(o: &Outcome, what: &str) {
    let chosen = o.chosen_conn.iter().filter(|c| c.is_some()).count();
    assert!(
        o.same_connection() || o.both_relay(),
        "{what}: the sides disagree: {:?} / {:?}",
        o.events,
        o.chosen_conn
    );
    let expect = if chosen == 2 { [1, 1] } else { [0, 0] };
    assert_eq!(o.live_paths, expect, "{what}: sockets left open: {o:?}");
}

/// Varies the callee's start over 0-4.5 s and the loss over 0-30%.
fn varied(base: Scenario, seed: u64) -> Scenario {
    Scenario {
        callee_start: Duration::from_millis(seed * 4500 / SEEDS),
        syn_loss: (seed % 4) as f64 * 0.1,
        ..base
    }
}

#[test]
fn two_endpoint_independent_nats_punch_through() {
    let base = scenario(Nat::EndpointIndependent, Nat::EndpointIndependent);
    let mut direct = 0;
    for seed in 0..SEEDS {
        let s = varied(base, seed);
        let o = run(s, seed);
        check_consistent(&o, &format!("seed {seed}"));
        if o.same_connection() {
            direct += 1;
            // Only the observed addresses work across two NATs.
            assert!(
                matches!(
                    o.caller_kind(),
                    Some(PathKind::Attempt(CandidateKind::Observed) | PathKind::Accepted)
                ),
                "seed {seed}: {o:?}"
            );
        }
    }
    // Loss can defeat a few; the rest must punch through. Without loss,
    // every one does (checked next).
    assert!(direct >= SEEDS * 9 / 10, "only {direct} of {SEEDS} punched through");
    for seed in 0..50 {
        let s = Scenario { syn_loss: 0.0, ..varied(base, seed * 4) };
        let o = run(s, seed);
        assert!(o.same_connection(), "lossless seed {seed} did not punch: {o:?}");
    }
}

#[test]
fn symmetric_or_two_syn_dropping_nats_fall_back_to_the_relay() {
    for (a, b) in [
        (Nat::Symmetric, Nat::EndpointIndependent),
        (Nat::EndpointIndependent, Nat::Symmetric),
        (Nat::Symmetric, Nat::Symmetric),
        (Nat::DropsInboundSyn, Nat::DropsInboundSyn),
        (Nat::DropsInboundSyn, Nat::Symmetric),
    ] {
        for seed in 0..40 {
            let s = varied(scenario(a, b), seed * 5);
            let o = run(s, seed);
            check_consistent(&o, &format!("{a:?}/{b:?} seed {seed}"));
            assert!(o.both_relay(), "{a:?}/{b:?} seed {seed}: {o:?}");
            // The caller waits its timeout, the callee its grace longer,
            // each from when it learnt of the call.
            assert_eq!(o.events[0].map(|e| e.0), Some(PUNCH_TIMEOUT));
            assert_eq!(
                o.events[1].map(|e| e.0),
                Some(s.callee_start + PUNCH_TIMEOUT + CALLEE_GRACE)
            );
        }
    }
}

/// One SYN getting in is enough: the side it reaches answers with a
/// SYN-ACK, which the other NAT lets through as part of its own attempt.
#[test]
fn one_syn_dropping_nat_is_punched_from_the_other_side() {
    connects_without_loss(&[
        (Nat::DropsInboundSyn, Nat::EndpointIndependent),
        (Nat::EndpointIndependent, Nat::DropsInboundSyn),
    ]);
}

#[test]
fn a_public_host_is_reached_directly() {
    connects_without_loss(&[
        (Nat::None, Nat::None),
        (Nat::EndpointIndependent, Nat::None),
        (Nat::None, Nat::Symmetric),
    ]);
}

/// With no SYN lost, each pair of NATs, over 40 seeds of varied delays,
/// ends with both sides on one connection.
fn connects_without_loss(pairs: &[(Nat, Nat)]) {
    for &(a, b) in pairs {
        for seed in 0..40 {
            let s = Scenario { syn_loss: 0.0, ..varied(scenario(a, b), seed * 5) };
            let o = run(s, seed);
            check_consistent(&o, &format!("{a:?}/{b:?} seed {seed}"));
            assert!(o.same_connection(), "{a:?}/{b:?} seed {seed}: {o:?}");
        }
    }
}

#[test]
fn behind_the_same_nat_the_lan_is_used_and_nothing_goes_public() {
    for nat in [Nat::EndpointIndependent, Nat::Symmetric, Nat::DropsInboundSyn] {
        for seed in 0..40 {
            let s = Scenario {
                same_nat: true,
                min_delay: Duration::from_micros(100),
                max_delay: Duration::from_millis(2),
                ..varied(scenario(nat, nat), seed * 5)
            };
            let s = Scenario { syn_loss: 0.0, ..s };
            let o = run(s, seed);
            check_consistent(&o, &format!("{nat:?} seed {seed}"));
            assert!(o.same_connection(), "{nat:?} seed {seed}: {o:?}");
            assert_eq!(o.public_syns, 0, "{nat:?} seed {seed}: a SYN left the LAN");
            assert!(!matches!(o.caller_kind(), Some(PathKind::Attempt(CandidateKind::Observed))));
        }
    }
}

#[test]
fn a_connection_picked_at_the_last_moment_still_reaches_the_callee() {
    // The callee learns of the call 1-2 s before the caller, and most SYNs
    // are lost: the caller often picks a connection after the
    // callee's own punch timeout, and the callee must still be waiting for
    // it (CALLEE_GRACE) when the caller's bytes arrive.
    let base = scenario(Nat::EndpointIndependent, Nat::EndpointIndependent);
    let mut late = 0;
    for seed in 0..SEEDS {
        let s = Scenario {
            caller_start: Duration::from_millis(1000 + (seed % 100) * 10),
            syn_loss: 0.8,
            ..base
        };
        let o = run(s, seed);
        check_consistent(&o, &format!("seed {seed}"));
        if let Some((at, PunchEvent::Chosen { .. })) = o.events[0] {
            late += usize::from(at > s.callee_start + PUNCH_TIMEOUT);
        }
    }
    assert!(late > 0, "no run picked a connection after the callee's own timeout");
}
