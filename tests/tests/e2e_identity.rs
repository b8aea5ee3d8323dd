//! End to end: `whoami`, `trust` and the identity file checks, with the real
//! binary. Every run gets its own `HOME` and `XDG_CONFIG_HOME` in a temp
//! directory, so nothing touches the real home.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use common::{binary, temp_dir};
use p2pchat_core::PublicKey;

/// Runs `p2pchat args…` to completion with its config under `dir/config`.
fn run(dir: &Path, args: &[&str]) -> Output {
    Command::new(binary())
        .args(args)
        .current_dir(dir)
        .env("HOME", dir)
        .env("XDG_CONFIG_HOME", dir.join("config"))
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .output()
        .expect("run p2pchat")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).expect("UTF-8 output")
}

/// The default identity file for [`run`] in `dir`.
fn identity_path(dir: &Path) -> PathBuf {
    dir.join("config/p2pchat/identity")
}

/// Lower-case hex of a key, as the known-peers file holds it.
fn hex(key: &PublicKey) -> String {
    key.0.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn whoami_creates_once_then_prints_the_same_fingerprint() {
    let dir = temp_dir("whoami");
    let first = run(&dir, &["whoami"]);
    assert!(first.status.success(), "{first:?}");
    let fingerprint = text(&first.stdout);
    let groups: Vec<&str> = fingerprint.trim_end().split(' ').collect();
    assert_eq!(fingerprint.lines().count(), 1, "{fingerprint:?}");
    assert_eq!(groups.len(), 6, "{fingerprint:?}");
    assert!(groups.iter().all(|g| g.len() == 5 && g.bytes().all(|b| b.is_ascii_digit())));
    let path = identity_path(&dir);
    assert_eq!(
        text(&first.stderr),
        format!(
            "Created a new identity in {}; your fingerprint is {}",
            path.display(),
            fingerprint
        )
    );
    let mode = std::fs::metadata(&path).expect("identity file").permissions().mode();
    assert_eq!(mode & 0o777, 0o600);

    let second = run(&dir, &["whoami"]);
    assert!(second.status.success(), "{second:?}");
    assert_eq!(text(&second.stdout), fingerprint);
    assert_eq!(text(&second.stderr), "", "nothing is created the second time");

    // `--identity` is another identity.
    let other = run(&dir, &["whoami", "--identity", "elsewhere/id"]);
    assert!(other.status.success(), "{other:?}");
    assert_ne!(text(&other.stdout), fingerprint);
    assert!(dir.join("elsewhere/id").exists());
}

#[test]
fn an_identity_others_can_read_is_one_line_and_exit_1() {
    let dir = temp_dir("identity-mode");
    assert!(run(&dir, &["whoami"]).status.success());
    let path = identity_path(&dir);
    let before = std::fs::read(&path).expect("identity file");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let expected = format!(
        "error: identity file {0} is accessible by group or others (mode 0644); \
         only its owner may read it: run `chmod 600 {0}`\n",
        path.display()
    );
    for args in [&["whoami"][..], &["client", "--name", "Ann", "--server", "127.0.0.1:9"]] {
        let out = run(&dir, args);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {out:?}");
        assert_eq!(text(&out.stderr), expected, "{args:?}");
        assert_eq!(text(&out.stdout), "", "{args:?}");
    }
    assert_eq!(std::fs::read(&path).expect("identity file"), before, "never replaced");
}

#[test]
fn a_foreign_identity_file_is_one_line_and_exit_1() {
    let dir = temp_dir("identity-foreign");
    let path = dir.join("id");
    std::fs::write(&path, "-----BEGIN OPENSSH PRIVATE KEY-----\n").expect("write");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let out = run(&dir, &["whoami", "--identity", "id"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert_eq!(
        text(&out.stderr),
        "error: id is not a p2pchat identity file \
         (its first line is not `p2pchat identity v1`)\n"
    );
}

#[test]
fn trust_verifies_accepts_a_refused_key_and_refuses_a_wrong_fingerprint() {
    let dir = temp_dir("trust");
    let (pinned, refused, stranger) = (PublicKey([1; 32]), PublicKey([2; 32]), PublicKey([3; 32]));
    let file = dir.join("config/p2pchat/known_peers");
    std::fs::create_dir_all(file.parent().expect("parent")).expect("mkdir");
    std::fs::write(
        &file,
        format!(
            "p2pchat known peers v1\nbob pinned {}\nbob refused {}\n",
            hex(&pinned),
            hex(&refused)
        ),
    )
    .expect("write known_peers");
    let fp = |k: &PublicKey| k.fingerprint().to_string();

    // A wrong fingerprint: exit 1, what is known for the name, no change.
    let before = std::fs::read(&file).expect("read");
    let out = run(&dir, &["trust", "Bob", &fp(&stranger)]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert_eq!(
        text(&out.stderr),
        format!(
            "error: {} is not a key seen for Bob; nothing changed. Known for Bob:\n  \
             pinned (not verified): {}\n  refused: {}\n",
            fp(&stranger),
            fp(&pinned),
            fp(&refused)
        )
    );
    assert_eq!(std::fs::read(&file).expect("read"), before);

    // Not a fingerprint at all: a usage error.
    let out = run(&dir, &["trust", "Bob", "12345"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");

    // An unknown name: exit 1.
    let out = run(&dir, &["trust", "Cid", &fp(&pinned)]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");

    // The pinned key's fingerprint, typed as seven words: verified.
    let words: Vec<String> = fp(&pinned).split(' ').map(str::to_owned).collect();
    let mut args = vec!["trust", "bob"];
    args.extend(words.iter().map(String::as_str));
    let out = run(&dir, &args);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(text(&out.stdout), format!("bob: {} is now verified\n", fp(&pinned)));
    let now = std::fs::read_to_string(&file).expect("read");
    assert!(now.contains(&format!("bob verified {}\n", hex(&pinned))), "{now}");

    // The refused key's fingerprint: it replaces the pin, verified.
    let out = run(&dir, &["trust", "BOB", &fp(&refused).replace(' ', "-")]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        text(&out.stdout),
        format!("BOB: {} replaces {} and is verified\n", fp(&refused), fp(&pinned))
    );
    assert_eq!(
        std::fs::read_to_string(&file).expect("read"),
        format!("p2pchat known peers v1\nbob verified {}\n", hex(&refused))
    );
    let mode = std::fs::metadata(&file).expect("known_peers").permissions().mode();
    assert_eq!(mode & 0o777, 0o600);

    // forget, then nothing is known.
    assert!(run(&dir, &["forget", "bob"]).status.success());
    assert_eq!(run(&dir, &["forget", "bob"]).status.code(), Some(1));
}
