//! The verification log on SQLite as the embedded deployment runs it: appending (one
//! transaction per batch, `synchronous = FULL` in WAL mode, so each commit waits for the
//! disk) and serving an inclusion proof from the stored nodes of a log of 100,000 events.
//! The in-memory costs are in `crates/audit/benches`; PostgreSQL at scale is
//! `examples/audit_bench.rs`.
//!
//! Under `cargo test --all-targets` (criterion's test mode: no `--bench` argument) the log
//! starts with 200 events, so `make test` stays fast.

use std::cell::Cell;
use std::hint::black_box;

use audit::{Event, EventType};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use store::Database;

const PRELOAD_BATCH: u64 = 1000;

fn preload_size() -> u64 {
    if std::env::args().any(|a| a == "--bench") {
        100_000
    } else {
        200
    }
}

/// A typical event (as `audit/benches`), with a unique id: the log refuses duplicates.
fn event(n: u64) -> Event {
    Event {
        id: format!("00000000-0000-4000-8000-{n:012}"),
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
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("audit.db").display());
    let size = preload_size();
    let seal = store::LogSeal::generate().expect("seal");
    let db = rt.block_on(async {
        let db = Database::open(&url).await.expect("open");
        db.migrate().await.expect("migrate");
        for start in (0..size).step_by(PRELOAD_BATCH as usize) {
            let batch: Vec<Event> = (start..(start + PRELOAD_BATCH).min(size))
                .map(event)
                .collect();
            db.append_audit_events(&batch, &seal)
                .await
                .expect("preload");
        }
        db
    });
    let next_id = Cell::new(size);
    let take = |n: u64| {
        let first = next_id.get();
        next_id.set(first + n);
        (first..first + n).map(event).collect::<Vec<_>>()
    };

    let mut group = c.benchmark_group("audit SQLite");
    group.sample_size(20);
    for n in [1u64, 32] {
        group.throughput(Throughput::Elements(n));
        group.bench_function(format!("append_audit_events (batch of {n})"), |b| {
            b.iter_batched(
                || take(n),
                |events| {
                    rt.block_on(db.append_audit_events(&events, &seal))
                        .expect("append")
                },
                criterion::BatchSize::SmallInput,
            )
        });
    }
    group.throughput(Throughput::Elements(1));
    let seq = size * 3 / 4;
    group.bench_function(format!("audit_inclusion_proof (log of {size})"), |b| {
        b.iter(|| {
            rt.block_on(db.audit_inclusion_proof(black_box(seq), size))
                .expect("proof")
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
