//! The CPU part of appending one event to the log, without a database: canonical bytes
//! and leaf hash of a typical event, then the tree nodes the leaf completes (on average
//! one more SHA-256 per append). `proofs.rs` measures roots and proofs; the SQLite append
//! is in `crates/store/benches/audit_sqlite.rs`.

use std::hint::black_box;
use std::time::{Duration, Instant};

use audit::{Event, EventType, MemoryTree};
use criterion::{criterion_group, criterion_main, Criterion};

/// The tree is started afresh beyond this size, so a long run cannot exhaust memory
/// (the cost of a push does not depend on the size).
const MAX_LEAVES: u64 = 1 << 20;

fn typical_event() -> Event {
    Event {
        id: "6f1c1d2e-8a54-4c1b-9b7e-0a4f3c2d1e0f".into(),
        time: "2025-03-01T10:15:30.123Z".into(),
        journey_id: Some("0b7e4c52-1d7f-4f1e-a0c3-93a1d2f6b8e4".into()),
        rp: Some("rp-tax-service".into()),
        idp: Some("idp-post-office".into()),
        level_requested: Some("LEVEL_2".into()),
        level_achieved: Some("LEVEL_2".into()),
        outcome: Some("matched".into()),
        subject: Some("Qm9vbGVhbiBwYWlyd2lzZSBpZCwgNDMgY2hhcnM".into()),
        match_cycle: Some(1),
        reasons: vec!["surname_exact".into(), "dob_exact".into()],
        ..Event::new(EventType::Matching, "hub-7c9f")
    }
}

fn bench(c: &mut Criterion) {
    let event = typical_event();
    let mut tree = MemoryTree::new();
    c.bench_function("append: leaf hash + MemoryTree::push", |b| {
        b.iter_custom(|iters| {
            let mut spent = Duration::ZERO;
            let mut left = iters;
            while left > 0 {
                if tree.size() >= MAX_LEAVES {
                    tree = MemoryTree::new();
                }
                let n = left.min(MAX_LEAVES - tree.size());
                let began = Instant::now();
                for _ in 0..n {
                    tree.push(black_box(&event).leaf_hash());
                }
                spent += began.elapsed();
                left -= n;
            }
            spent
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
