//! Matching load benchmark: imports a synthetic department file of N records (default
//! 1,000,000) into a fresh SQLite file or PostgreSQL database, then runs the corpus's
//! labelled queries for a fixed time with K concurrent tasks. Each query is what the hub
//! does at cycle 1: blocking keys, one candidate query, one decision.
//!
//! ```sh
//! cargo run --release --example matching_load -- --backend sqlite
//! cargo run --release --example matching_load -- --backend postgres --concurrency 4
//! ```
//!
//! Prints import time, per-query latency percentiles (whole query, candidate retrieval,
//! decision), queries per second and candidates per query. Not a test: run by hand, see
//! docs/matching.md for the figures.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::{Parser, ValueEnum};
use devkit::corpus::{generate, CorpusSpec};
use hdrhistogram::Histogram;
use matching::{MatchPolicy, MatchingDataset};
use store::Database;

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Backend {
    Sqlite,
    Postgres,
}

#[derive(Parser, Debug)]
struct Args {
    #[arg(long, value_enum, default_value = "sqlite")]
    backend: Backend,
    /// Department records to import.
    #[arg(long, default_value_t = 1_000_000)]
    records: usize,
    /// Queries per corpus set (ten sets).
    #[arg(long, default_value_t = 500)]
    queries_per_set: usize,
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// How long to run queries.
    #[arg(long, default_value_t = 20)]
    seconds: u64,
    /// Concurrent query tasks.
    #[arg(long, default_value_t = 2)]
    concurrency: usize,
    /// PostgreSQL to create the scratch database in.
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/test"
    )]
    postgres: String,
}

const RP: &str = "rp-load";
const IMPORT_BATCH: usize = 50_000;

/// Latencies of one task, in microseconds.
struct Latencies {
    total: Histogram<u64>,
    retrieval: Histogram<u64>,
    decision: Histogram<u64>,
    candidates: u64,
    queries: u64,
}

impl Latencies {
    fn new() -> anyhow::Result<Self> {
        let h = || Histogram::<u64>::new_with_bounds(1, 60_000_000, 3);
        Ok(Self {
            total: h()?,
            retrieval: h()?,
            decision: h()?,
            candidates: 0,
            queries: 0,
        })
    }

    fn add(&mut self, other: &Latencies) -> anyhow::Result<()> {
        self.total.add(&other.total)?;
        self.retrieval.add(&other.retrieval)?;
        self.decision.add(&other.decision)?;
        self.candidates += other.candidates;
        self.queries += other.queries;
        Ok(())
    }
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX).max(1)
}

async fn open(args: &Args) -> anyhow::Result<(Database, Option<String>, tempfile::TempDir)> {
    let dir = tempfile::tempdir()?;
    let (url, scratch) = match args.backend {
        Backend::Sqlite => (
            format!("sqlite://{}", dir.path().join("load.db").display()),
            None,
        ),
        Backend::Postgres => {
            let url = store::test_support::scratch_postgres_database(&args.postgres).await?;
            (url.clone(), Some(url))
        }
    };
    let db = Database::open(&url).await?;
    db.migrate().await?;
    Ok((db, scratch, dir))
}

async fn run_queries(
    db: Arc<Database>,
    queries: Arc<Vec<MatchingDataset>>,
    start: usize,
    step: usize,
    until: Instant,
) -> anyhow::Result<Latencies> {
    let policy = MatchPolicy::default();
    let mut latencies = Latencies::new()?;
    let mut i = start;
    while Instant::now() < until {
        let query = &queries[i % queries.len()];
        i += step;
        let began = Instant::now();
        let keys = matching::query_blocking_keys(query);
        let candidates = db
            .candidates_by_blocking_keys(RP, &keys, policy.max_candidates)
            .await?;
        let retrieved = Instant::now();
        let decision = matching::match_cycle1(query, &candidates, &policy);
        let done = Instant::now();
        std::hint::black_box(decision);
        latencies.total.record(micros(done - began))?;
        latencies.retrieval.record(micros(retrieved - began))?;
        latencies.decision.record(micros(done - retrieved))?;
        latencies.candidates += candidates.len() as u64;
        latencies.queries += 1;
    }
    Ok(latencies)
}

fn report(name: &str, h: &Histogram<u64>) {
    let ms = |v: u64| v as f64 / 1000.0;
    println!(
        "{name:<22} p50 {:>7.3} ms  p95 {:>7.3} ms  p99 {:>7.3} ms  max {:>8.3} ms",
        ms(h.value_at_quantile(0.50)),
        ms(h.value_at_quantile(0.95)),
        ms(h.value_at_quantile(0.99)),
        ms(h.max()),
    );
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let began = Instant::now();
    let corpus = generate(&CorpusSpec {
        seed: args.seed,
        records: args.records,
        queries_per_set: args.queries_per_set,
    });
    println!(
        "corpus: {} records, {} queries (seed {}) in {:.1} s",
        corpus.records.len(),
        corpus.queries.len(),
        args.seed,
        began.elapsed().as_secs_f64()
    );

    let (db, scratch, _dir) = open(&args).await?;
    let began = Instant::now();
    for batch in corpus.records.chunks(IMPORT_BATCH) {
        db.import_records(RP, batch).await.context("import")?;
    }
    let import = began.elapsed().as_secs_f64();
    println!(
        "import ({:?}): {} records in {:.1} s ({:.0} records/s)",
        args.backend,
        corpus.records.len(),
        import,
        corpus.records.len() as f64 / import
    );
    if matches!(args.backend, Backend::Postgres) {
        db.execute_raw("ANALYZE").await?;
    }

    let db = Arc::new(db);
    let queries: Arc<Vec<MatchingDataset>> =
        Arc::new(corpus.queries.into_iter().map(|q| q.dataset).collect());
    let until = Instant::now() + Duration::from_secs(args.seconds);
    let began = Instant::now();
    let tasks: Vec<_> = (0..args.concurrency)
        .map(|t| {
            tokio::spawn(run_queries(
                db.clone(),
                queries.clone(),
                t,
                args.concurrency,
                until,
            ))
        })
        .collect();
    let mut all = Latencies::new()?;
    for task in tasks {
        all.add(&task.await??)?;
    }
    let elapsed = began.elapsed().as_secs_f64();
    println!(
        "queries: {} in {:.1} s with {} tasks: {:.0} queries/s, {:.1} candidates per query",
        all.queries,
        elapsed,
        args.concurrency,
        all.queries as f64 / elapsed,
        all.candidates as f64 / all.queries.max(1) as f64
    );
    report("query (cycle 1)", &all.total);
    report("  candidate retrieval", &all.retrieval);
    report("  decision", &all.decision);

    if let Some(url) = scratch {
        drop(db);
        store::test_support::drop_scratch_postgres_database(&args.postgres, &url).await?;
    }
    Ok(())
}
