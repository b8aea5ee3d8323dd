//! `p2pchat-core` does no I/O: its source names no sockets, reads no clock,
//! spawns no thread, and it depends on nothing that does.
//!
//! Unit-test modules (everything after a file's `#[cfg(test)]`, which by
//! house style closes the file) may read the clock to get an origin.

use std::fs;
use std::path::{Path, PathBuf};

const FORBIDDEN: &[&str] = &[
    "UdpSocket",
    "TcpStream",
    "TcpListener",
    "UnixStream",
    "Instant::now",
    "SystemTime::now",
    "thread::spawn",
    "std::thread",
    "std::fs",
    "std::process",
    "stdin()",
    "stdout()",
    "println!",
    "eprintln!",
    "getrandom",
    "SystemRandom",
    "OsRng",
    "Rc<",
    "Arc<",
    "Mutex",
];

/// The only crates the core may depend on: encoding, errors, hashing, logs,
/// Noise (built without its OS random source, see `snow_takes_no_os_randomness`),
/// a seedable RNG for it, `ring` for the AEAD (whose own `SystemRandom` the
/// source check above forbids), and Unicode tables for user names (normalisation,
/// case folding, UTS #39 confusables and scripts: pure functions of a string).
const ALLOWED_DEPS: &[&str] = &[
    "serde",
    "postcard",
    "thiserror",
    "siphasher",
    // Without default features: tables only, no default hasher (so no
    // seed from the OS); the registry keys its own SipHash.
    "hashbrown",
    "tracing",
    "snow",
    "rand_chacha",
    "ring",
    "unicode-normalization",
    "unicode-security",
    "caseless",
];

fn core_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../core")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn core_source_does_no_io() {
    let mut files = Vec::new();
    rust_files(&core_dir().join("src"), &mut files);
    assert!(files.len() >= 5, "found only {files:?}");
    let mut offences = Vec::new();
    for file in &files {
        let text = fs::read_to_string(file).unwrap();
        let code = text.split("#[cfg(test)]").next().unwrap_or_default();
        for (n, line) in code.lines().enumerate() {
            let line = line.split("//").next().unwrap_or_default();
            for bad in FORBIDDEN {
                if line.contains(bad) {
                    offences.push(format!("{}:{}: {bad}", file.display(), n + 1));
                }
            }
        }
    }
    assert!(offences.is_empty(), "core does I/O:\n{}", offences.join("\n"));
}

#[test]
fn core_depends_only_on_pure_crates() {
    let manifest = fs::read_to_string(core_dir().join("Cargo.toml")).unwrap();
    let deps = manifest
        .split("[dependencies]")
        .nth(1)
        .expect("a [dependencies] table")
        .split("\n[")
        .next()
        .unwrap_or_default();
    let names: Vec<&str> = deps
        .lines()
        .filter_map(|l| l.split(['=', '.']).next())
        .map(str::trim)
        .filter(|n| !n.is_empty() && !n.starts_with('#'))
        .collect();
    assert!(!names.is_empty());
    for name in names {
        assert!(ALLOWED_DEPS.contains(&name), "core depends on {name}");
    }
}

#[test]
fn snow_takes_no_os_randomness() {
    let manifest = fs::read_to_string(core_dir().join("../Cargo.toml")).unwrap();
    let snow = manifest.lines().find(|l| l.starts_with("snow")).expect("snow in the workspace");
    assert!(snow.contains("default-features = false"), "{snow}");
    for feature in ["\"std\"", "getrandom", "default-resolver-crypto"] {
        assert!(!snow.contains(feature), "snow with {feature} reads OS randomness: {snow}");
    }
}
