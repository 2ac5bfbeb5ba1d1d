//! Costs of the tree operations at the scale of a busy log: root, inclusion
//! and consistency proofs over a MemoryTree of 1,000,000 leaves (each reads
//! O(log n) nodes), and hashing one typical event.

use audit::{
    consistency_proof, inclusion_proof, leaf_hash, root, verify_consistency, verify_inclusion,
    Event, EventType, MemoryTree,
};
use criterion::{black_box, criterion_group, criterion_main, Criterion};

const SIZE: u64 = 1_000_000;

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
    let tree: MemoryTree = (0..SIZE).map(|i| leaf_hash(&i.to_be_bytes())).collect();
    let full_root = root(SIZE, &tree).expect("root");

    c.bench_function("root 1M", |b| {
        b.iter(|| root(black_box(SIZE), &tree).expect("root"))
    });
    c.bench_function("root 999_999", |b| {
        b.iter(|| root(black_box(SIZE - 1), &tree).expect("root"))
    });

    let index = 765_432;
    c.bench_function("inclusion_proof 1M", |b| {
        b.iter(|| inclusion_proof(black_box(index), SIZE, &tree).expect("proof"))
    });
    let proof = inclusion_proof(index, SIZE, &tree).expect("proof");
    let leaf = leaf_hash(&index.to_be_bytes());
    c.bench_function("verify_inclusion 1M", |b| {
        b.iter(|| verify_inclusion(&leaf, black_box(index), SIZE, &proof, &full_root))
    });

    let first = 654_321;
    c.bench_function("consistency_proof 654_321 -> 1M", |b| {
        b.iter(|| consistency_proof(black_box(first), SIZE, &tree).expect("proof"))
    });
    let cproof = consistency_proof(first, SIZE, &tree).expect("proof");
    let first_root = root(first, &tree).expect("root");
    c.bench_function("verify_consistency 654_321 -> 1M", |b| {
        b.iter(|| verify_consistency(black_box(first), SIZE, &first_root, &full_root, &cproof))
    });

    let event = typical_event();
    c.bench_function("event leaf hash (canonical_bytes + SHA-256)", |b| {
        b.iter(|| black_box(&event).leaf_hash())
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
