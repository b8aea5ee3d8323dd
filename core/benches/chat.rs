//! What a chat costs without I/O, with encryption and without it in one
//! run: framing, encoding, sealing, sequencing and acknowledgement, both
//! ends. `cargo bench -p p2pchat-core --bench chat --features bench-cleartext`
//! (the feature only lets the benchmark build the unencrypted pair).

use std::hint::black_box;
use std::time::Instant;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use p2pchat_core::{
    ChatConfig, ChatEvent, ChatRole, ChatSession, ChatSetup, PrivateKey, SendError, UserName,
};

/// Messages per measured batch.
const BATCH: usize = 1000;

/// Moves every pending byte from `from` to `to`.
fn carry(now: Instant, from: &mut ChatSession, to: &mut ChatSession) {
    let n = from.pending_output().len();
    if n > 0 {
        to.handle_input(now, from.pending_output()).expect("a valid stream");
        from.consume(n);
    }
}

fn name(n: &str) -> UserName {
    UserName::new(n).expect("a valid name")
}

/// Alice and bob past the handshake and both `Hello`s, encrypted or not.
fn connected(now: Instant, encrypted: bool) -> (ChatSession, ChatSession) {
    let (mut a, mut b) = if encrypted {
        let key = |n: u8| PrivateKey::from_bytes([n; 32]);
        let role = ChatRole::Caller { callee: name("bob"), callee_key: key(2).public_key() };
        let a = ChatSession::new(
            now,
            ChatSetup { name: name("alice"), key: key(1), role, seed: [3; 32] },
            ChatConfig::default(),
        );
        let mut b = ChatSession::new(
            now,
            ChatSetup { name: name("bob"), key: key(2), role: ChatRole::Callee, seed: [4; 32] },
            ChatConfig::default(),
        );
        b.accept(now);
        (a, b)
    } else {
        ChatSession::cleartext_pair(now, name("alice"), name("bob"), ChatConfig::default())
    };
    for _ in 0..4 {
        carry(now, &mut a, &mut b);
        carry(now, &mut b, &mut a);
    }
    while a.poll_event().is_some() {}
    while b.poll_event().is_some() {}
    (a, b)
}

/// Sends `BATCH` texts from a to b, delivering and acknowledging them all;
/// when a's output is full (backpressure), moves the bytes along first, as a
/// driver would.
fn exchange(now: Instant, a: &mut ChatSession, b: &mut ChatSession, text: &str) -> usize {
    let mut received = 0;
    let mut sent = 0;
    while received < BATCH {
        while sent < BATCH {
            match a.send_text(now, text) {
                Ok(_) => sent += 1,
                Err(SendError::Backpressure) => break,
                Err(e) => panic!("cannot send: {e}"),
            }
        }
        carry(now, a, b);
        while let Some(e) = b.poll_event() {
            if let ChatEvent::Received { .. } = e {
                received += 1;
            }
        }
        carry(now, b, a);
        while a.poll_event().is_some() {}
    }
    received
}

/// One text from a to b and its acknowledgement back: a round trip.
fn round_trip(now: Instant, a: &mut ChatSession, b: &mut ChatSession) {
    a.send_text(now, "ping, one line in flight").expect("room");
    carry(now, a, b);
    assert!(matches!(b.poll_event(), Some(ChatEvent::Received { .. })));
    carry(now, b, a);
    assert!(matches!(a.poll_event(), Some(ChatEvent::Delivered { .. })));
}

fn bench(c: &mut Criterion) {
    let now = Instant::now();
    let mut g = c.benchmark_group("chat");
    for (mode, encrypted) in [("encrypted", true), ("cleartext", false)] {
        for (label, len) in [("100 B texts", 100), ("4 KiB texts", 4096)] {
            let text = "x".repeat(len);
            g.throughput(Throughput::Elements(BATCH as u64));
            g.bench_function(
                format!("{mode}: {label}, sent, received and acknowledged"),
                |bench| {
                    bench.iter_batched_ref(
                        || connected(now, encrypted),
                        |(a, b)| assert_eq!(black_box(exchange(now, a, b, &text)), BATCH),
                        BatchSize::SmallInput,
                    )
                },
            );
        }
        g.throughput(Throughput::Elements(1));
        let (mut a, mut b) = connected(now, encrypted);
        g.bench_function(format!("{mode}: round trip, one text and its ack"), |bench| {
            bench.iter(|| round_trip(now, &mut a, &mut b))
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
