use std::os::unix::fs::PermissionsExt;
use std::sync::{Arc, Barrier};

use super::*;

/// A fresh, empty directory for one test, removed when it is dropped.
pub(crate) fn temp_dir(test: &str) -> tempfile::TempDir {
    tempfile::Builder::new().prefix(&format!("p2pchat-{test}-")).tempdir().unwrap()
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// Writes `text` as an owner-only file.
fn write_file(path: &Path, text: &[u8]) {
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

fn key(byte: u8) -> PrivateKey {
    PrivateKey::from_bytes([byte; KEY_LEN])
}

#[test]
fn missing_file_is_created_owner_only_then_loaded() {
    let dir = temp_dir("id-create");
    let path = dir.path().join("nested/deeper/identity");
    let (first, created) = Identity::load_or_create(&path).unwrap();
    assert_eq!(created, Created::New);
    assert_eq!(mode(&path), 0o600);
    assert_eq!(mode(path.parent().unwrap()), 0o700);
    assert_eq!(mode(&dir.path().join("nested")), 0o700);
    let (again, created) = Identity::load_or_create(&path).unwrap();
    assert_eq!(created, Created::Existing);
    assert_eq!(again.public_key(), first.public_key());
    assert_eq!(again.private_key(), first.private_key());
    assert_eq!(first.public_key(), first.private_key().public_key());
    assert_eq!(first.known_peers_path(), path.with_file_name("known_peers"));
    // Only the file is left: no temporary files.
    let names: Vec<_> = std::fs::read_dir(path.parent().unwrap()).unwrap().collect();
    assert_eq!(names.len(), 1);
}

#[test]
fn format_is_three_lines_and_reads_back() {
    let text = format(&key(1));
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[0], "p2pchat identity v1");
    assert_eq!(lines[1], format!("private {}", "01".repeat(32)));
    assert_eq!(lines[2], format!("public {}", to_hex(&key(1).public_key().0)));
    assert_eq!(parse(text.as_bytes()).unwrap(), key(1));
    // Upper-case hex, as a person might retype it, reads too.
    let text = format(&key(0xab));
    let upper = text.replace(&"ab".repeat(32), &"AB".repeat(32));
    assert_ne!(upper, text);
    assert_eq!(parse(upper.as_bytes()).unwrap(), key(0xab));
}

/// Every bad file is an error naming the path, on one line, and the file is
/// left as it was.
#[test]
fn bad_files_are_errors_never_replaced() {
    let dir = temp_dir("id-bad");
    let good = format(&key(2));
    let other_public = to_hex(&key(3).public_key().0);
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("empty", Vec::new(), "is truncated: it is empty"),
        ("header-cut", b"p2pchat iden".to_vec(), "is truncated: it ends inside line 1"),
        ("header-only", b"p2pchat identity v1".to_vec(), "is truncated: it ends inside line 1"),
        ("one-line", good.as_bytes()[..20].to_vec(), "is truncated: it ends after line 1"),
        ("cut-in-key", good.as_bytes()[..60].to_vec(), "is truncated: it ends inside line 2"),
        (
            "no-public",
            good.as_bytes()[..good.find("public").unwrap()].to_vec(),
            "is truncated: it ends after line 2",
        ),
        ("no-newline", good.trim_end().as_bytes().to_vec(), "is truncated: it ends inside line 3"),
        (
            "bad-hex",
            good.replacen("private 0", "private g", 1).into_bytes(),
            "is corrupt: line 2 is not `private <64 hex digits>`",
        ),
        (
            "short-key",
            good.replacen("private 02", "private ", 1).into_bytes(),
            "is corrupt: line 2 is not `private <64 hex digits>`",
        ),
        (
            "swapped",
            good.replacen("private", "secret", 1).into_bytes(),
            "is corrupt: line 2 is not",
        ),
        (
            "extra-line",
            format!("{good}more\n").into_bytes(),
            "is corrupt: it has more than 3 lines",
        ),
        (
            "mismatch",
            format!("{IDENTITY_HEADER}\nprivate {}\npublic {other_public}\n", "02".repeat(32))
                .into_bytes(),
            "is corrupt: its public key does not match its private key",
        ),
        (
            "ssh-key",
            b"-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n".to_vec(),
            "is not a p2pchat identity file (its first line is not `p2pchat identity v1`)",
        ),
        (
            "binary",
            vec![0xff, 0xfe, 0, 1, 2, b'\n'],
            "is not a p2pchat identity file (it is not text)",
        ),
        (
            "huge",
            vec![b'a'; MAX_IDENTITY_FILE_LEN + 1],
            "is not a p2pchat identity file (it is larger than an identity file)",
        ),
        ("crlf", good.replace('\n', "\r\n").into_bytes(), "is not a p2pchat identity file"),
        ("v2", good.replace("v1", "v2").into_bytes(), "has version v2; this p2pchat reads only v1"),
    ];
    for (name, bytes, expected) in cases {
        let path = dir.path().join(name);
        write_file(&path, &bytes);
        let err = Identity::load_or_create(&path).unwrap_err();
        let message = err.to_string();
        assert!(message.contains(expected), "{name}: {message}");
        assert!(message.contains(&path.display().to_string()), "{name}: {message}");
        assert!(!message.contains('\n'), "{name}: {message}");
        assert_eq!(std::fs::read(&path).unwrap(), bytes, "{name}: the file was changed");
    }
}

#[test]
fn files_others_may_access_are_refused_with_the_fix() {
    let dir = temp_dir("id-mode");
    for bits in [0o644, 0o640, 0o604, 0o620, 0o660, 0o666, 0o601] {
        let path = dir.path().join(format!("identity-{bits:o}"));
        write_file(&path, format(&key(4)).as_bytes());
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(bits)).unwrap();
        let message = Identity::load_or_create(&path).map(|_| ()).unwrap_err().to_string();
        let shown = path.display();
        assert_eq!(
            message,
            format!(
                "identity file {shown} is accessible by group or others (mode 0{bits:o}); \
                 only its owner may read it: run `chmod 600 {shown}`"
            )
        );
        assert_eq!(mode(&path), bits, "the mode was changed");
    }
    // Owner-only modes other than 0600 are accepted.
    for bits in [0o400, 0o700] {
        let path = dir.path().join(format!("identity-{bits:o}"));
        write_file(&path, format(&key(4)).as_bytes());
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(bits)).unwrap();
        assert_eq!(Identity::load(&path).unwrap().unwrap().public_key(), key(4).public_key());
    }
}

#[test]
fn the_chmod_hint_quotes_odd_paths() {
    assert_eq!(private_file::chmod_600_hint(Path::new("/a/b-c_d.e")), "chmod 600 /a/b-c_d.e");
    assert_eq!(private_file::chmod_600_hint(Path::new("/a b/it's")), r"chmod 600 '/a b/it'\''s'");
}

#[test]
fn a_directory_or_a_fifo_is_an_error() {
    let dir = temp_dir("id-dir");
    let message = Identity::load_or_create(dir.path()).unwrap_err().to_string();
    assert!(message.contains("cannot read: not a regular file"), "{message}");
    let fifo = dir.path().join("fifo");
    rustix::fs::mkfifoat(rustix::fs::CWD, &fifo, rustix::fs::Mode::from_raw_mode(0o600)).unwrap();
    let message = Identity::load_or_create(&fifo).unwrap_err().to_string();
    assert!(message.contains("cannot read: not a regular file"), "{message}");
}

/// Two creators that both wrote their temporary file before either took the
/// name: the second one ends with the first one's identity.
#[test]
fn racing_creators_end_with_one_identity() {
    let dir = temp_dir("id-race");
    let path = dir.path().join("identity");
    let first = TempFile::write(&path, format(&key(5)).as_bytes()).unwrap();
    let second = TempFile::write(&path, format(&key(6)).as_bytes()).unwrap();
    let (a, created_a) = Identity::publish(&path, key(5), first).unwrap();
    let (b, created_b) = Identity::publish(&path, key(6), second).unwrap();
    assert_eq!((created_a, created_b), (Created::New, Created::Existing));
    assert_eq!(a.public_key(), key(5).public_key());
    assert_eq!(b.public_key(), key(5).public_key(), "the loser must take the winner's key");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1, "temporary files left behind");
}

#[test]
fn concurrent_first_runs_share_one_identity() {
    let dir = temp_dir("id-threads");
    let path = Arc::new(dir.path().join("identity"));
    let start = Arc::new(Barrier::new(8));
    let handles: Vec<_> = (0..8)
        .map(|_| {
            let (path, start) = (Arc::clone(&path), Arc::clone(&start));
            std::thread::spawn(move || {
                start.wait();
                Identity::load_or_create(&path).unwrap()
            })
        })
        .collect();
    let results: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let on_disk = Identity::load(&path).unwrap().unwrap().public_key();
    assert!(results.iter().all(|(id, _)| id.public_key() == on_disk));
    assert_eq!(results.iter().filter(|(_, c)| *c == Created::New).count(), 1);
}

#[test]
fn debug_hides_the_private_key() {
    let dir = temp_dir("id-debug");
    let path = dir.path().join("identity");
    let (id, _) = Identity::load_or_create(&path).unwrap();
    let shown = format!("{id:?}");
    assert!(!shown.contains(&to_hex(id.private_key().as_bytes())), "{shown}");
}

#[test]
fn hex_round_trips_and_rejects() {
    let bytes: [u8; KEY_LEN] = std::array::from_fn(|i| (i * 37) as u8);
    assert_eq!(from_hex(&to_hex(&bytes)), Some(bytes));
    assert_eq!(from_hex(&"0".repeat(63)), None);
    assert_eq!(from_hex(&"0".repeat(65)), None);
    assert_eq!(from_hex(&format!("+{}", "0".repeat(63))), None);
    assert_eq!(from_hex(&format!("é{}", "0".repeat(62))), None);
}
