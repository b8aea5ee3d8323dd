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
