//! Look-alike names through the simulated network: while the first of a pair
//! is online the registry refuses the second with `NameTaken`, through loss,
//! duplication and reordering; once the first logs out the second gets in.
//! `core/tests/names.rs` has the full tables; names refused outright never
//! leave a client, because `UserName::new` refuses them first.

use std::time::Duration;

use p2pchat_core::{ClientEvent, NameError, Operation, RefuseReason, ServerConfig, UserName};
use p2pchat_tests::net::{Faults, Net};

/// The first name of each pair is online; the second looks like it.
const PAIRS: &[(&str, &str)] = &[
    ("John", "JOHN"),
    ("Straße", "STRASSE"),
    ("ΟΔΥΣΣΕΥΣ", "οδυσσευσ"),
    ("Zoë", "Zoe\u{308}"),
    ("Joe", "Јое"),
    ("scope", "ѕсоре"),
    ("JOHN0", "J0HNO"),
    ("paypal", "paypa1"),
    ("mert", "rnert"),
];

fn answered_login(e: &ClientEvent) -> bool {
    matches!(e, ClientEvent::LoggedIn { .. } | ClientEvent::Refused { op: Operation::Login, .. })
}

fn login(net: &mut Net, who: &[usize]) -> Vec<ClientEvent> {
    net.until_all(
        who,
        |net, i| {
            let name = net.clients[i].name.clone();
            net.command(i, |c, now| c.login(now, name, 7000));
        },
        answered_login,
    )
}

fn scenario(seed: u64) {
    let config =
        ServerConfig { lease: Duration::from_secs(60), max_users: 100, ..ServerConfig::default() };
    let mut net = Net::new(seed, Faults::lossy(), config, 2 * PAIRS.len());
    for (k, &(first, later)) in PAIRS.iter().enumerate() {
        net.clients[2 * k].name = UserName::new(first).expect("a valid name");
        net.clients[2 * k + 1].name = UserName::new(later).expect("a valid name");
    }
    let firsts: Vec<usize> = (0..PAIRS.len()).map(|k| 2 * k).collect();
    let laters: Vec<usize> = (0..PAIRS.len()).map(|k| 2 * k + 1).collect();

    for (k, e) in login(&mut net, &firsts).into_iter().enumerate() {
        assert!(matches!(e, ClientEvent::LoggedIn { .. }), "{:?}: {e:?}", PAIRS[k].0);
    }
    for (k, e) in login(&mut net, &laters).into_iter().enumerate() {
        let taken = ClientEvent::Refused { op: Operation::Login, reason: RefuseReason::NameTaken };
        assert_eq!(e, taken, "{:?} while {:?} is online (seed {seed})", PAIRS[k].1, PAIRS[k].0);
    }
    assert_eq!(net.server.user_count(), PAIRS.len());

    net.until_all(
        &firsts,
        |net, i| net.command(i, |c, now| c.logout(now)),
        |e| matches!(e, ClientEvent::LoggedOut),
    );
    for (k, e) in login(&mut net, &laters).into_iter().enumerate() {
        assert!(matches!(e, ClientEvent::LoggedIn { .. }), "{:?}: {e:?}", PAIRS[k].1);
    }
    let mut online: Vec<String> = net.server.users().map(|e| e.name.to_string()).collect();
    let mut expected: Vec<String> =
        laters.iter().map(|&i| net.clients[i].name.to_string()).collect();
    online.sort();
    expected.sort();
    assert_eq!(online, expected);
}

#[test]
fn a_look_alike_is_taken_through_a_lossy_network() {
    for seed in 0..4 {
        scenario(seed);
    }
}

#[test]
fn invisible_and_mixed_script_names_never_leave_the_client() {
    assert_eq!(UserName::new("J\u{200B}ohn"), Err(NameError::Invisible));
    assert_eq!(UserName::new("\u{202E}nhoJ"), Err(NameError::Invisible));
    assert_eq!(UserName::new("Јohn"), Err(NameError::MixedScript));
}
