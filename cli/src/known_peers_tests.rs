use std::os::unix::fs::PermissionsExt;
use std::sync::{Arc, Barrier};

use p2pchat_core::{KEY_LEN, PrivateKey};

use super::*;
use crate::identity::tests::temp_dir;

fn key(byte: u8) -> PublicKey {
    PrivateKey::from_bytes([byte; KEY_LEN]).public_key()
}

fn name(s: &str) -> UserName {
    UserName::new(s).unwrap()
}

/// The known-peers file in a fresh directory, which lives as long as the
/// returned guard.
fn file(test: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = temp_dir(test);
    let path = dir.path().join(KNOWN_PEERS_FILE_NAME);
    (dir, path)
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap()
}

#[test]
fn new_then_pinned_then_verified() {
    let (_dir, path) = file("kp-tofu");
    let bob = name("Bob");
    assert!(KnownPeers::load(&path).unwrap().is_empty(), "a missing file is empty");
    assert_eq!(KnownPeers::observe(&path, &bob, &key(1)).unwrap(), PeerStatus::New);
    assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
    assert_eq!(read(&path), format!("p2pchat known peers v1\nbob pinned {}\n", to_hex(&key(1).0)));
    // The name key ignores case.
    assert_eq!(KnownPeers::observe(&path, &name("BOB"), &key(1)).unwrap(), PeerStatus::Pinned);
    let fp = key(1).fingerprint();
    assert_eq!(KnownPeers::trust(&path, &bob, &fp).unwrap(), TrustOutcome::Verified);
    assert_eq!(KnownPeers::trust(&path, &bob, &fp).unwrap(), TrustOutcome::AlreadyVerified);
    assert_eq!(KnownPeers::observe(&path, &bob, &key(1)).unwrap(), PeerStatus::Verified);
    let peers = KnownPeers::load(&path).unwrap();
    assert_eq!(peers.len(), 1);
    assert_eq!(
        peers.get(&bob),
        Some(&Record { key: key(1), trust: Trust::Verified, refused: Vec::new() })
    );
}

#[test]
fn changed_key_is_refused_remembered_and_accepted_only_by_trust() {
    let (_dir, path) = file("kp-changed");
    let bob = name("bob");
    KnownPeers::observe(&path, &bob, &key(1)).unwrap();
    let changed = PeerStatus::Changed { pinned: key(1), seen: key(2), verified: false };
    assert_eq!(KnownPeers::observe(&path, &bob, &key(2)).unwrap(), changed);
    // Seen again: still refused, remembered once.
    assert_eq!(KnownPeers::observe(&path, &bob, &key(2)).unwrap(), changed);
    assert_eq!(KnownPeers::load(&path).unwrap().get(&bob).unwrap().refused, vec![key(2)]);
    assert!(read(&path).ends_with(&format!("bob refused {}\n", to_hex(&key(2).0))));
    // The pinned key still passes.
    assert_eq!(KnownPeers::observe(&path, &bob, &key(1)).unwrap(), PeerStatus::Pinned);

    // A fingerprint that is neither: an error listing what is known.
    let before = read(&path);
    let err = KnownPeers::trust(&path, &bob, &key(3).fingerprint()).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "{} is not a key seen for bob; nothing changed. Known for bob:\n  \
             pinned (not verified): {}\n  refused: {}",
            key(3).fingerprint(),
            key(1).fingerprint(),
            key(2).fingerprint()
        )
    );
    assert_eq!(read(&path), before);

    // The refused key's fingerprint replaces the pin, verified.
    let outcome = KnownPeers::trust(&path, &bob, &key(2).fingerprint()).unwrap();
    assert_eq!(outcome, TrustOutcome::Replaced { old: key(1) });
    assert_eq!(KnownPeers::observe(&path, &bob, &key(2)).unwrap(), PeerStatus::Verified);
    assert_eq!(
        KnownPeers::observe(&path, &bob, &key(1)).unwrap(),
        PeerStatus::Changed { pinned: key(2), seen: key(1), verified: true }
    );
}

#[test]
fn refused_keys_are_bounded_newest_kept() {
    let (_dir, path) = file("kp-bounded");
    let bob = name("bob");
    KnownPeers::observe(&path, &bob, &key(1)).unwrap();
    for b in 2..=7 {
        KnownPeers::observe(&path, &bob, &key(b)).unwrap();
    }
    let refused = KnownPeers::load(&path).unwrap().get(&bob).unwrap().refused.clone();
    assert_eq!(refused, (4..=7).map(key).collect::<Vec<_>>());
    assert_eq!(refused.len(), MAX_REFUSED_PER_NAME);
    // The dropped key can no longer be accepted.
    assert!(matches!(
        KnownPeers::trust(&path, &bob, &key(2).fingerprint()),
        Err(KnownPeersError::NoMatch { .. })
    ));
}

#[test]
fn a_full_store_refuses_new_names() {
    let mut peers = KnownPeers::default();
    // Computing a public key is slow in debug builds: once.
    let (one, two) = (key(1), key(2));
    for i in 0..MAX_KNOWN_PEERS {
        let record = Record { key: one, trust: Trust::Pinned, refused: Vec::new() };
        peers.records.insert(format!("user{i}"), record);
    }
    let path = Path::new("/nonexistent/known_peers");
    let err = peers.seen(path, &name("one-more"), &two).unwrap_err();
    assert!(matches!(err, KnownPeersError::Full { .. }), "{err}");
    // Names already known still work.
    assert_eq!(peers.seen(path, &name("user7"), &one).unwrap(), (PeerStatus::Pinned, false));
    // The full store writes and reads back.
    assert_eq!(parse(peers.to_text().as_bytes()).unwrap(), peers);
}

#[test]
fn forget_removes_everything_for_the_name() {
    let (_dir, path) = file("kp-forget");
    KnownPeers::observe(&path, &name("bob"), &key(1)).unwrap();
    KnownPeers::observe(&path, &name("bob"), &key(2)).unwrap();
    KnownPeers::observe(&path, &name("ann"), &key(3)).unwrap();
    let record = KnownPeers::forget(&path, &name("Bob")).unwrap();
    assert_eq!(record.refused, vec![key(2)]);
    assert_eq!(KnownPeers::observe(&path, &name("bob"), &key(2)).unwrap(), PeerStatus::New);
    assert_eq!(KnownPeers::observe(&path, &name("ann"), &key(3)).unwrap(), PeerStatus::Pinned);
    assert!(matches!(
        KnownPeers::forget(&path, &name("cid")),
        Err(KnownPeersError::Unknown { .. })
    ));
    assert!(matches!(
        KnownPeers::trust(&path, &name("cid"), &key(1).fingerprint()),
        Err(KnownPeersError::Unknown { .. })
    ));
}

#[test]
fn odd_name_keys_stay_one_field() {
    let mut peers = KnownPeers::default();
    // Names cannot hold `%` or white space any more (docs/PROTOCOL.md §8),
    // but their keys are not ASCII: they must stay one field and round-trip.
    let (a, b) = (name("名前"), name("Zoë"));
    let path = Path::new("/unused");
    peers.seen(path, &a, &key(1)).unwrap();
    peers.seen(path, &b, &key(2)).unwrap();
    let text = peers.to_text();
    let line = |n: &UserName| format!("{} pinned", n.key().as_str());
    assert!(text.contains(&line(&a)) && text.contains(&line(&b)), "{text}");
    assert_eq!(parse(text.as_bytes()).unwrap(), peers);
    assert_eq!(peers.status(&a, &key(1)), PeerStatus::Pinned);
}

#[test]
fn corrupt_lines_name_the_file_and_line() {
    let dir = temp_dir("kp-corrupt");
    let k = to_hex(&key(1).0);
    let h = KNOWN_PEERS_HEADER;
    let cases = [
        ("empty", String::new(), 1, "expected `p2pchat known peers v1`"),
        ("no-header", format!("bob pinned {k}\n"), 1, "expected `p2pchat known peers v1`"),
        ("v2", format!("p2pchat known peers v2\nbob pinned {k}\n"), 1, "expected"),
        ("cut", format!("{h}\nbob pinned {}", &k[..10]), 2, "the file ends inside this line"),
        ("status", format!("{h}\nbob trusted {k}\n"), 2, "unknown status `trusted`"),
        (
            "fields",
            format!("{h}\nbob pinned {k} extra\n"),
            2,
            "expected `NAME pinned|verified|refused KEY`",
        ),
        ("blank", format!("{h}\n\n"), 2, "expected `NAME"),
        ("hex", format!("{h}\nbob pinned {}\n", &k[1..]), 2, "the key is not 64 hex digits"),
        (
            "orphan",
            format!("{h}\nbob refused {k}\n"),
            2,
            "a refused key for bob before its pinned key",
        ),
        (
            "twice",
            format!("{h}\nbob pinned {k}\nbob verified {k}\n"),
            3,
            "a second pinned key for bob",
        ),
        (
            "same",
            format!("{h}\nbob pinned {k}\nbob refused {k}\n"),
            3,
            "this key is listed for bob already",
        ),
        (
            "long",
            format!("{h}\n{} pinned {k}\n", "x".repeat(MAX_LINE_LEN)),
            2,
            &format!("longer than {MAX_LINE_LEN} bytes"),
        ),
        (
            "control",
            format!("{h}\nbob pinned {k}\nb\u{7}b pinned {k}\n"),
            3,
            "the name is empty or holds a control character",
        ),
    ];
    for (label, text, line, reason) in cases {
        let path = dir.path().join(label);
        std::fs::write(&path, &text).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let message = KnownPeers::load(&path).unwrap_err().to_string();
        let expected = format!("known peers file {}, line {line}: {reason}", path.display());
        assert!(message.starts_with(&expected), "{label}: {message}");
        // Never silently rewritten.
        assert!(KnownPeers::observe(&path, &name("ann"), &key(2)).is_err(), "{label}");
        assert_eq!(read(&path), text, "{label}");
    }
    let path = dir.path().join("not-utf8");
    std::fs::write(&path, [h.as_bytes(), b"\nbob \xff\n"].concat()).unwrap();
    let message = KnownPeers::load(&path).unwrap_err().to_string();
    assert!(message.ends_with("line 2: not UTF-8 text"), "{message}");
}

#[test]
fn a_file_others_may_write_is_refused() {
    let (_dir, path) = file("kp-mode");
    KnownPeers::observe(&path, &name("bob"), &key(1)).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    assert_eq!(KnownPeers::load(&path).unwrap().len(), 1, "readable by others is allowed");
    for bits in [0o664, 0o646, 0o666] {
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(bits)).unwrap();
        let message = KnownPeers::load(&path).unwrap_err().to_string();
        let shown = path.display();
        assert_eq!(
            message,
            format!(
                "known peers file {shown} is writable by group or others (mode 0{bits:o}); \
                 run `chmod 600 {shown}`"
            )
        );
    }
}

#[test]
fn concurrent_observers_lose_no_pin() {
    let (_dir, path) = file("kp-threads");
    let path = Arc::new(path);
    let start = Arc::new(Barrier::new(8));
    let handles: Vec<_> = (0..8u8)
        .map(|i| {
            let (path, start) = (Arc::clone(&path), Arc::clone(&start));
            std::thread::spawn(move || {
                start.wait();
                KnownPeers::observe(&path, &name(&format!("user{i}")), &key(i)).unwrap()
            })
        })
        .collect();
    for h in handles {
        assert_eq!(h.join().unwrap(), PeerStatus::New);
    }
    assert_eq!(KnownPeers::load(&path).unwrap().len(), 8);
}

#[test]
fn banner_lines_and_the_warning() {
    let fp = key(1).fingerprint();
    assert_eq!(describe(&PeerStatus::New, &key(1)), format!("fingerprint {fp} (new, now pinned)"));
    assert_eq!(
        describe(&PeerStatus::Pinned, &key(1)),
        format!("fingerprint {fp} (pinned, not verified)")
    );
    assert_eq!(describe(&PeerStatus::Verified, &key(1)), format!("fingerprint {fp} (verified)"));
    let changed = PeerStatus::Changed { pinned: key(2), seen: key(1), verified: true };
    assert_eq!(describe(&changed, &key(1)), format!("fingerprint {fp} (CHANGED, refused)"));

    let identity = Path::new("/tmp/my ids/identity");
    let text = changed_key_warning(&name("Bob"), &key(2), &key(1), true, identity);
    assert!(text.contains("WARNING: THE KEY OF BOB HAS CHANGED"), "{text}");
    assert!(text.contains("is not\nthe key you verified."), "{text}");
    assert!(text.contains(&format!("pinned key: fingerprint {}", key(2).fingerprint())), "{text}");
    assert!(text.contains(&format!("key now:    fingerprint {fp}")), "{text}");
    assert!(
        text.contains(&format!("  p2pchat trust --identity '/tmp/my ids/identity' Bob {fp}\n")),
        "{text}"
    );
    assert!(text.ends_with("The pins are kept in /tmp/my ids/known_peers."), "{text}");
}

#[test]
fn the_longest_name_key_is_pinned_and_read_back() {
    // A valid 30-byte name whose key is 210 bytes (see core's names tests).
    let long = name(&"\u{cb86}".repeat(10));
    assert!(long.key().as_str().len() > 200);
    let (_dir, path) = file("kp-longest-key");
    assert_eq!(KnownPeers::observe(&path, &long, &key(1)).unwrap(), PeerStatus::New);
    assert_eq!(KnownPeers::observe(&path, &long, &key(1)).unwrap(), PeerStatus::Pinned);
    // A changed key is remembered too, and the file still reads.
    let changed = KnownPeers::observe(&path, &long, &key(2)).unwrap();
    assert!(matches!(changed, PeerStatus::Changed { .. }), "{changed:?}");
    assert!(KnownPeers::load(&path).is_ok());
}
