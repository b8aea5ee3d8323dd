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
    for data in inputs(4, 300) {
        let mut u = Unstructured::new(&data);
        if let Ok(ops) = Vec::<fuzz::ChatOp>::arbitrary(&mut u) {
            steps += ops.len();
            fuzz::chat_session(&ops);
        }
    }
    assert!(steps > 300, "the generator made too few steps ({steps}) to mean anything");
}
