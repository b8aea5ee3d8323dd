//! How fast two chat sessions move text messages between them, with no I/O:
//! framing, encoding, sequencing and acknowledgement, both ends.
//! `cargo bench -p p2pchat-core --bench chat`.

use std::hint::black_box;
use std::time::Instant;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use p2pchat_core::{ChatConfig, ChatEvent, ChatSession, SendError, UserName};

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

fn connected(now: Instant) -> (ChatSession, ChatSession) {
    let name = |n: &str| UserName::new(n).expect("a valid name");
    let mut a = ChatSession::new(now, name("alice"), ChatConfig::default());
    let mut b = ChatSession::new(now, name("bob"), ChatConfig::default());
    carry(now, &mut a, &mut b);
    carry(now, &mut b, &mut a);
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

fn bench(c: &mut Criterion) {
    let now = Instant::now();
    let mut g = c.benchmark_group("chat");
    for (label, len) in [("short texts (32 B)", 32), ("full texts (4 KiB)", 4096)] {
        let text = "x".repeat(len);
        g.throughput(Throughput::Elements(BATCH as u64));
        g.bench_function(format!("{label}, sent, received and acknowledged"), |bench| {
            bench.iter_batched_ref(
                || connected(now),
                |(a, b)| assert_eq!(black_box(exchange(now, a, b, &text)), BATCH),
                BatchSize::SmallInput,
            )
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
