//! Matching cycle 1 as the hub runs it in-process (`matching_service::decide_locally`):
//! blocking keys, one indexed candidate query against SQLite, one decision. The records
//! (100,000 from `devkit::corpus`, the synthetic department file the matching figures use)
//! are imported once into a temporary database before anything is timed; queries rotate
//! over every corpus set, so the figures are a mix of matches, ambiguities and misses.
//! `crates/matching/benches/decision.rs` measures the decision alone on hand-made sets.
//!
//! Under `cargo test --all-targets` (criterion's test mode: no `--bench` argument) only
//! 2,000 records are imported, so `make test` stays fast. `HUB_BENCH_RECORDS` overrides.

use std::cell::Cell;
use std::hint::black_box;
use std::time::Instant;

use criterion::{criterion_group, criterion_main, Criterion};
use devkit::corpus::{generate, CorpusSpec};
use matching::{match_cycle1, query_blocking_keys, DepartmentRecord, MatchPolicy, MatchingDataset};
use store::Database;

const RP: &str = "rp-bench";
const IMPORT_BATCH: usize = 50_000;

fn record_count() -> usize {
    if let Some(n) = std::env::var("HUB_BENCH_RECORDS")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        return n;
    }
    if std::env::args().any(|a| a == "--bench") {
        100_000
    } else {
        2_000
    }
}

/// Takes the next query of the rotation.
fn next<'q>(queries: &'q [MatchingDataset], i: &Cell<usize>) -> &'q MatchingDataset {
    let query = &queries[i.get() % queries.len()];
    i.set(i.get() + 1);
    query
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let records = record_count();
    let began = Instant::now();
    let corpus = generate(&CorpusSpec {
        seed: 7,
        records,
        queries_per_set: 20,
    });
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("bench.db").display());
    let db = rt.block_on(async {
        let db = Database::open(&url).await.expect("open");
        db.migrate().await.expect("migrate");
        for batch in corpus.records.chunks(IMPORT_BATCH) {
            db.import_records(RP, batch).await.expect("import");
        }
        db
    });
    let queries: Vec<MatchingDataset> = corpus.queries.into_iter().map(|q| q.dataset).collect();
    let policy = MatchPolicy::default();
    let retrieve = |query: &MatchingDataset| -> Vec<DepartmentRecord> {
        let keys = query_blocking_keys(query);
        rt.block_on(db.candidates_by_blocking_keys(RP, &keys, policy.max_candidates))
            .expect("candidates")
    };
    let candidate_sets: Vec<Vec<DepartmentRecord>> = queries.iter().map(retrieve).collect();
    let mean = candidate_sets.iter().map(Vec::len).sum::<usize>() as f64 / queries.len() as f64;
    eprintln!(
        "matching_retrieval: {} records imported into SQLite, {} queries, {mean:.1} candidates \
         per query on average (setup {:.1} s)",
        corpus.records.len(),
        queries.len(),
        began.elapsed().as_secs_f64()
    );

    let name = |what: &str| format!("cycle1 {}k SQLite/{what}", corpus.records.len() / 1000);
    let i = Cell::new(0);
    c.bench_function(&name("candidates_by_blocking_keys"), |b| {
        b.iter(|| retrieve(black_box(next(&queries, &i))))
    });
    let decide = |query: &MatchingDataset, candidates: &[DepartmentRecord]| {
        match_cycle1(query, candidates, &policy)
    };
    let i = Cell::new(0);
    c.bench_function(&name("decision over retrieved candidates"), |b| {
        b.iter(|| {
            let n = i.get() % queries.len();
            i.set(i.get() + 1);
            decide(black_box(&queries[n]), &candidate_sets[n])
        })
    });
    let i = Cell::new(0);
    c.bench_function(&name("keys + retrieval + decision"), |b| {
        b.iter(|| {
            let query = next(&queries, &i);
            decide(query, &retrieve(black_box(query)))
        })
    });
}

criterion_group! {
    name = benches;
    // One iteration is a database round trip: fewer samples keep a run short.
    config = Criterion::default().sample_size(20);
    targets = bench
}
criterion_main!(benches);
