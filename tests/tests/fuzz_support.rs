//! Runs the fuzz targets' code on seeded random input, so that it builds and
//! holds on every `cargo test`, not only under a nightly fuzzer.

use arbitrary::{Arbitrary, Unstructured};
use p2pchat_tests::fuzz;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn inputs(seed: u64, count: usize) -> Vec<Vec<u8>> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..count)
        .map(|_| {
            let len = rng.random_range(0..2048);
            (0..len).map(|_| rng.random()).collect()
        })
        .collect()
}

/// Inputs the fuzzers once found: over-long varints, which decode but do not
/// re-encode to the same bytes.
#[test]
fn past_fuzzer_findings() {
    fuzz::datagram(b"p2pc\x01\x02\0\0p\x80\0\0\x08\xff\xff\xff\xff\xff\0\0\0\x0e\0\x10\x01\x02\0");
    fuzz::chat_stream(b"\0\0\0\x03\x82\0\0\0\xa1\x02");
}

#[test]
fn datagram_and_chat_decoders() {
    for data in inputs(1, 500) {
        fuzz::datagram(&data);
        fuzz::chat_stream(&data);
    }
}

#[test]
fn registry_operation_sequences() {
    let mut steps = 0;
    for data in inputs(2, 300) {
        let mut u = Unstructured::new(&data);
        if let Ok(ops) = Vec::<fuzz::RegistryOp>::arbitrary(&mut u) {
            steps += ops.len();
            fuzz::registry(&ops);
        }
    }
    assert!(steps > 300, "the generator made too few steps ({steps}) to mean anything");
}

/// A sequence the random one seldom makes: two users listed, introduced
/// to each other with too many local addresses, acknowledged (also with a
/// wrong nonce and from the wrong side), retransmitted and waited out.
#[test]
fn registry_introductions_keep_the_invariants() {
    use fuzz::{FuzzRequest, RegistryOp};
    let req = |from: u8, msg: FuzzRequest| RegistryOp::Request { from, msg, forge: false };
    let locals = vec![[192, 0, 2, 1]; 9];
    let login = |which: u8| FuzzRequest::LoginLookAlike { which, chat_port: 7000 };
    let intro = |which: u8| FuzzRequest::Introduce { which, locals: locals.clone() };
    let ack = |nonce: u8| FuzzRequest::IntroAck { nonce, locals: locals.clone() };
    // John (0) at address 1, Joe (4) at address 2, Zoë (7) at address 3.
    let ops = vec![
        req(1, login(0)),
        req(2, login(4)),
        req(3, login(7)),
        req(1, intro(4)),
        req(1, intro(4)),
        req(1, ack(1)),
        req(2, ack(9)),
        req(2, ack(1)),
        req(2, ack(1)),
        req(3, intro(0)),
        req(3, intro(3)),
        RegistryOp::Wait { secs: 1 },
        req(2, intro(7)),
        RegistryOp::Wait { secs: 40 },
        req(1, intro(7)),
        RegistryOp::Wait { secs: 61 },
        req(1, intro(7)),
    ];
    fuzz::registry(&ops);
}

#[test]
fn registry_client_input() {
    for (i, data) in inputs(3, 200).into_iter().enumerate() {
        let datagrams: Vec<Vec<u8>> = data.chunks(1 + i % 97).map(<[u8]>::to_vec).collect();
        fuzz::registry_client(&datagrams);
    }
}

#[test]
fn chat_session_operation_sequences() {
    let mut steps = 0;
    for data in inputs(4, 600) {
        let mut u = Unstructured::new(&data);
        if let Ok(ops) = Vec::<fuzz::ChatOp>::arbitrary(&mut u) {
            steps += ops.len();
            fuzz::chat_session(&ops);
        }
    }
    assert!(steps > 300, "the generator made too few steps ({steps}) to mean anything");
}

#[test]
fn any_unicode_as_a_user_name() {
    let mut rng = ChaCha8Rng::seed_from_u64(6);
    for data in inputs(5, 300) {
        fuzz::user_name(&String::from_utf8_lossy(&data));
    }
    // Short strings of any code points, and of code points from one block
    // (with an occasional mark, zero-width or bidi control) to make many
    // valid names: Latin, Greek, Cyrillic, Armenian, Hangul.
    let blocks = [0..0x11_0000, 0x41..0x250, 0x370..0x530, 0xAC00..0xD7A4];
    let extras = [0x300..0x370, 0x2000..0x2070];
    let mut valid = 0;
    for _ in 0..30_000 {
        let len = rng.random_range(1..12);
        let block = blocks[rng.random_range(0..blocks.len())].clone();
        let s: String = (0..len)
            .filter_map(|_| {
                let range = if rng.random_bool(0.1) {
                    extras[rng.random_range(0..extras.len())].clone()
                } else {
                    block.clone()
                };
                char::from_u32(rng.random_range(range))
            })
            .collect();
        valid += usize::from(p2pchat_core::UserName::new(&s).is_ok());
        fuzz::user_name(&s);
    }
    assert!(valid > 1000, "too few valid names ({valid}) to mean anything");
    for name in fuzz::LOOK_ALIKES {
        fuzz::user_name(name);
    }
}

/// What a fuzz target does with one input.
type Replay = fn(&[u8]);

/// Every fuzz target in `fuzz/fuzz_targets/`, with what it does to one input:
/// the same call as the target's one-liner, after the same decoding
/// (`libfuzzer-sys` hands an `Arbitrary` argument
/// `arbitrary_take_rest(Unstructured::new(bytes))`, and skips inputs that are
/// shorter than its size hint or fail to decode).
const TARGETS: &[(&str, Replay)] = &[
    ("chat_session", |data| take_rest(data, |ops: Vec<fuzz::ChatOp>| fuzz::chat_session(&ops))),
    ("chat_stream", fuzz::chat_stream),
    ("datagram", fuzz::datagram),
    ("registry_client", |data| take_rest(data, |d: Vec<Vec<u8>>| fuzz::registry_client(&d))),
    ("registry_ops", |data| take_rest(data, |ops: Vec<fuzz::RegistryOp>| fuzz::registry(&ops))),
    ("user_name", |data| take_rest(data, fuzz::user_name)),
];

/// Decodes `data` as `libfuzzer_sys::fuzz_target!` does and runs `f` on it.
fn take_rest<'a, T: Arbitrary<'a>>(data: &'a [u8], f: impl FnOnce(T)) {
    if data.len() < T::size_hint(0).0 {
        return;
    }
    if let Ok(input) = T::arbitrary_take_rest(Unstructured::new(data)) {
        f(input);
    }
}

/// The committed corpus of `target`, sorted by file name; panics if the
/// directory is missing or empty, so that a replay never passes vacuously.
fn corpus(target: &str) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus").join(target);
    let entries = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("no corpus for fuzz target {target} at {}: {e}", dir.display()));
    let mut files: Vec<_> = entries
        .map(|e| e.expect("a readable directory entry").path())
        .filter(|p| p.is_file())
        .map(|p| {
            let bytes = std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            (p, bytes)
        })
        .collect();
    files.sort();
    assert!(!files.is_empty(), "the corpus of fuzz target {target} at {} is empty", dir.display());
    files
}

/// Runs every file of `target`'s committed corpus through the target's code,
/// naming the file that fails.
fn replay(target: &str) {
    let (_, run) = TARGETS.iter().find(|(name, _)| *name == target).expect("a listed target");
    for (path, data) in corpus(target) {
        if std::panic::catch_unwind(|| run(&data)).is_err() {
            panic!("fuzz target {target} fails on {}", path.display());
        }
    }
}

/// Every target in `fuzz/fuzz_targets/` is listed in [`TARGETS`] (so has a
/// corpus replay below), and every listed one exists.
#[test]
fn every_fuzz_target_has_a_corpus_replay() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/fuzz_targets");
    let mut found: Vec<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| {
            let name = e.expect("a readable directory entry").file_name();
            name.to_str()?.strip_suffix(".rs").map(str::to_owned)
        })
        .collect();
    found.sort();
    let listed: Vec<&str> = TARGETS.iter().map(|(name, _)| *name).collect();
    assert_eq!(found, listed, "fuzz/fuzz_targets and TARGETS differ");
}

#[test]
fn corpus_chat_session() {
    replay("chat_session");
}

#[test]
fn corpus_chat_stream() {
    replay("chat_stream");
}

#[test]
fn corpus_datagram() {
    replay("datagram");
}

#[test]
fn corpus_registry_client() {
    replay("registry_client");
}

#[test]
fn corpus_registry_ops() {
    replay("registry_ops");
}

#[test]
fn corpus_user_name() {
    replay("user_name");
}
