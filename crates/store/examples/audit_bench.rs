//! Benchmark of the verification log on PostgreSQL at scale.
//!
//! ```text
//! cargo run -p store --features test-support --release --example audit_bench -- --events 10000000
//! ```
//!
//! 1. Creates a scratch database on the server of `DATABASE_URL` (default
//!    `postgres://postgres@127.0.0.1:5432/test`), migrates it, and loads
//!    `--events` synthetic events: 20 RPs with Zipf-like volumes, 5 IdPs,
//!    interleaved journeys of the real event types, times spread over the
//!    year before now, in order but with a third of them lagging behind by up
//!    to 2 s or 4 event intervals, whichever is longer (instances stamp events
//!    before they append them), so that neighbours are out of time order at
//!    any N and `max_time`/`max_lag_ms` are exercised.
//!
//!    `--loader bulk` (default) computes each event's canonical body, leaf
//!    hash and every tree node (level >= 1) in Rust with the `audit` crate,
//!    and inserts them as multi-row `INSERT`s through
//!    `Database::execute_raw` (the store exposes no `COPY`), from two
//!    connections; the secondary indexes and the `id` unique constraint of
//!    `audit_events` are dropped for the load and rebuilt afterwards, exactly
//!    as the catalog defined them. `--loader api` appends through
//!    `Database::append_audit_events` in batches of `--api-batch` instead:
//!    measured at about 26,000 events/s on the 2-core machine (2M events in
//!    77 s, slowing as the indexes grow), against about 48,000 for the bulk
//!    loader including its index rebuild, so 10M would take 7 minutes or more.
//!    Either way the root read back from the database is compared with the
//!    one computed while loading, and `--check` runs the store's own
//!    `audit_self_check` after the load and again after the append phase.
//! 2. Measures auditor queries, proofs and roots at the full size, and
//!    append throughput from 1, 4 and 8 concurrent tasks, each with its own
//!    `Database` (as separate hub instances would), with batches of 1 and 32.
//!    Every proof and root is compared, outside the timed section, with the
//!    one computed in memory; every page is checked against its filter.
//! 3. Prints a Markdown table and the same figures as JSON lines, then drops
//!    the scratch database (unless `--keep`).

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, ensure, Context, Result};
use audit::{Event, EventType, Hash, MemoryTree};
use chrono::{DateTime, SecondsFormat, Utc};
use clap::{Parser, ValueEnum};
use hdrhistogram::Histogram;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::json;
use store::test_support::{drop_scratch_postgres_database, scratch_postgres_database};
use store::{AuditFilter, Database, DatabaseOptions};

const DAY_MS: i64 = 86_400_000;
const YEAR_MS: i64 = 365 * DAY_MS;
/// Largest lag of an event's time behind its place in the sequence (at
/// least; see [`Synth::time_ms`]).
const MAX_JITTER_MS: i64 = 2_000;
/// Auditor page size.
const PAGE: u32 = 100;
/// Journeys in flight at once, whose events interleave.
const ACTIVE_JOURNEYS: usize = 256;

const RPS: [&str; 20] = [
    "rp-tax",
    "rp-benefits",
    "rp-vehicles",
    "rp-passports",
    "rp-pensions",
    "rp-student-loans",
    "rp-land-registry",
    "rp-companies",
    "rp-health",
    "rp-housing",
    "rp-courts",
    "rp-elections",
    "rp-licensing",
    "rp-childcare",
    "rp-veterans",
    "rp-fishing",
    "rp-charities",
    "rp-archives",
    "rp-heritage",
    "rp-weather",
];
const IDPS: [(&str, f64); 5] = [
    ("idp-post", 0.40),
    ("idp-bank", 0.25),
    ("idp-telco", 0.15),
    ("idp-gov", 0.12),
    ("idp-experian", 0.08),
];
const INSTANCES: [&str; 3] = ["hub-a", "hub-b", "hub-c"];

#[derive(Parser, Debug)]
#[command(about = "Loads a large synthetic audit log into scratch PostgreSQL and benchmarks it")]
struct Args {
    /// Events to load before measuring.
    #[arg(long, default_value_t = 1_000_000)]
    events: u64,
    /// Run the store's `audit_self_check` after the load and after the appends.
    #[arg(long)]
    check: bool,
    /// How to load the events.
    #[arg(long, value_enum, default_value_t = Loader::Bulk)]
    loader: Loader,
    /// Events per multi-row INSERT (bulk loader).
    #[arg(long, default_value_t = 5_000)]
    chunk: usize,
    /// Connections inserting concurrently (bulk loader).
    #[arg(long, default_value_t = 2)]
    writers: usize,
    /// Events per `append_audit_events` call (api loader).
    #[arg(long, default_value_t = 1_000)]
    api_batch: usize,
    /// Auditor queries per query benchmark, and inclusion proofs / roots.
    #[arg(long, default_value_t = 1_000)]
    queries: usize,
    /// Consistency proofs.
    #[arg(long, default_value_t = 200)]
    consistency: usize,
    /// Seconds per append throughput configuration (0 skips the append phase).
    #[arg(long, default_value_t = 5.0)]
    append_secs: f64,
    /// Seed of the synthetic data and of the query parameters.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Keep the scratch database (its URL is printed) instead of dropping it.
    #[arg(long)]
    keep: bool,
    /// PostgreSQL server to create the scratch database on (any database
    /// there that a role allowed to CREATE DATABASE can connect to).
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/test"
    )]
    database_url: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Loader {
    /// Multi-row INSERTs of precomputed rows and nodes (`Database::execute_raw`).
    Bulk,
    /// `Database::append_audit_events`, the hub's own path.
    Api,
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    ensure!(args.chunk > 0 && args.writers > 0 && args.api_batch > 0);
    let url = scratch_postgres_database(&args.database_url)
        .await
        .context("creating the scratch database")?;
    eprintln!("scratch database: {}", redacted(&url));
    let outcome = run(&args, &url).await;
    if args.keep {
        eprintln!("kept scratch database {}", redacted(&url));
    } else {
        drop_scratch_postgres_database(&args.database_url, &url)
            .await
            .context("dropping the scratch database")?;
    }
    outcome
}

/// `url` without its password, for messages.
fn redacted(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        _ => url.to_owned(),
    }
}

async fn run(args: &Args, url: &str) -> Result<()> {
    let db = Database::open_with(
        url,
        DatabaseOptions {
            max_connections: u32::try_from(args.writers + 2)?,
            acquire_timeout: Duration::from_secs(60),
            ..DatabaseOptions::default()
        },
    )
    .await?;
    db.migrate().await?;

    let n = args.events;
    // The synthetic year ends an hour ago, so events appended now come after it.
    let end_ms = Utc::now().timestamp_millis() - 3_600_000;
    let plan = Plan {
        n,
        start_ms: end_ms - YEAR_MS,
        span_ms: YEAR_MS,
        seed: args.seed,
    };
    let mut report = Report::new(n);

    let started = Instant::now();
    let tree = match args.loader {
        Loader::Bulk => bulk_load(&db, args, &plan).await?,
        Loader::Api => api_load(&db, args, &plan).await?,
    };
    let load_secs = started.elapsed().as_secs_f64();
    ensure!(tree.size() == n, "loaded {} events, not {n}", tree.size());
    let size = db.audit_size().await?;
    ensure!(size == n, "the log has {size} events, not {n}");
    let expected_root = audit::root(n, &tree)?;
    ensure!(
        db.audit_root(n).await? == expected_root,
        "the stored root differs from the root computed while loading"
    );
    // The bulk loader writes rows, not through appends: seal the head as the hub would
    // a log from before seals, so that appends (which verify the seal) can extend it.
    db.seal_unsealed_head(seal()).await?;
    eprintln!(
        "loaded {n} events in {load_secs:.1} s ({:.0} events/s), root verified",
        n as f64 / load_secs.max(1e-9)
    );
    report.load(args.loader, load_secs);

    if args.check {
        self_check(&db, "after the load", &mut report).await?;
    }

    let mut rng = StdRng::seed_from_u64(args.seed ^ 0x5eed_f00d);
    if n > 0 {
        bench_rp_time(&db, &plan, args.queries, &mut rng, &mut report).await?;
        bench_rp_paging(&db, n, args.queries, &mut rng, &mut report).await?;
        bench_inclusion(&db, &tree, args.queries, &mut rng, &mut report).await?;
        bench_consistency(&db, &tree, args.consistency, &mut rng, &mut report).await?;
        bench_root(&db, &tree, args.queries, &mut report).await?;
    }
    drop(tree);

    if args.append_secs > 0.0 {
        let window = Duration::from_secs_f64(args.append_secs);
        for tasks in [1usize, 4, 8] {
            for batch in [1usize, 32] {
                bench_appends(url, tasks, batch, window, args.seed, &mut report).await?;
            }
        }
        let size = db.audit_size().await?;
        let root = db.audit_root(size).await?;
        let proof = db.audit_consistency_proof(n, size).await?;
        audit::verify_consistency(n, size, &expected_root, &root, &proof)
            .context("the log after the appends is not consistent with the loaded one")?;
        eprintln!("appends verified: size {size} is consistent with the loaded {n}");
    }
    if args.check && args.append_secs > 0.0 {
        self_check(&db, "after the appends", &mut report).await?;
    }

    report.print();
    Ok(())
}

/// What to generate.
#[derive(Debug, Clone, Copy)]
struct Plan {
    n: u64,
    start_ms: i64,
    span_ms: i64,
    seed: u64,
}

// ---------------------------------------------------------------- synthetic data

/// One journey's remaining script.
#[derive(Debug)]
struct Journey {
    id: String,
    rp: usize,
    idp: usize,
    instance: usize,
    subject: String,
    steps: Vec<(EventType, Option<&'static str>)>,
    next: usize,
}

/// Generates events in seq order: interleaved journeys, plus a few events
/// that belong to no journey.
#[derive(Debug)]
struct Synth {
    rng: StdRng,
    rp_cumulative: Vec<f64>,
    idp_cumulative: Vec<f64>,
    active: Vec<Journey>,
    plan: Plan,
    /// Events generated so far.
    seq: u64,
}

impl Synth {
    fn new(plan: Plan) -> Self {
        let rp_weights: Vec<f64> = (0..RPS.len()).map(|k| 1.0 / (k as f64 + 1.0)).collect();
        let idp_weights: Vec<f64> = IDPS.iter().map(|i| i.1).collect();
        let mut synth = Self {
            rng: StdRng::seed_from_u64(plan.seed),
            rp_cumulative: cumulative(&rp_weights),
            idp_cumulative: cumulative(&idp_weights),
            active: Vec::with_capacity(ACTIVE_JOURNEYS),
            plan,
            seq: 0,
        };
        for _ in 0..ACTIVE_JOURNEYS {
            let j = synth.journey();
            synth.active.push(j);
        }
        synth
    }

    fn uuid(&mut self) -> String {
        uuid::Builder::from_random_bytes(self.rng.gen())
            .into_uuid()
            .to_string()
    }

    fn pick(&mut self, cumulative: &[f64]) -> usize {
        let x: f64 = self.rng.gen();
        cumulative
            .iter()
            .position(|&c| x < c)
            .unwrap_or(cumulative.len() - 1)
    }

    fn journey(&mut self) -> Journey {
        let rp_cumulative = std::mem::take(&mut self.rp_cumulative);
        let rp = self.pick(&rp_cumulative);
        self.rp_cumulative = rp_cumulative;
        let idp_cumulative = std::mem::take(&mut self.idp_cumulative);
        let idp = self.pick(&idp_cumulative);
        self.idp_cumulative = idp_cumulative;
        let mut steps = vec![
            (EventType::JourneyStarted, None),
            (EventType::IdpSelected, None),
        ];
        let r: f64 = self.rng.gen();
        if r < 0.04 {
            steps.push((EventType::JourneyFailed, Some("user_cancelled")));
        } else if r < 0.07 {
            steps.push((EventType::IdpReturned, Some("failed")));
            steps.push((EventType::JourneyFailed, Some("idp_error")));
        } else {
            steps.push((EventType::IdpReturned, Some("success")));
            let m: f64 = self.rng.gen();
            if m < 0.80 {
                steps.push((EventType::Matching, Some("matched")));
            } else if m < 0.92 {
                steps.push((EventType::Matching, Some("no_match")));
                steps.push((EventType::Cycle3Asked, None));
                steps.push((EventType::Cycle3Answered, Some("matched")));
            } else if m < 0.97 {
                steps.push((EventType::Matching, Some("no_match")));
                steps.push((EventType::AccountCreated, Some("success")));
            } else {
                steps.push((EventType::Matching, Some("no_match")));
                steps.push((EventType::JourneyFailed, Some("no_match")));
            }
            if steps.last().map(|s| s.0) != Some(EventType::JourneyFailed) {
                steps.push((EventType::AssertionIssued, Some("success")));
                steps.push((EventType::TokensIssued, Some("success")));
                if self.rng.gen_bool(0.9) {
                    steps.push((EventType::UserinfoServed, Some("success")));
                }
            }
        }
        let subject = format!("pw-{:016x}", self.rng.gen::<u64>());
        Journey {
            id: self.uuid(),
            rp,
            idp,
            instance: self.rng.gen_range(0..INSTANCES.len()),
            subject,
            steps,
            next: 0,
        }
    }

    /// The time of the next event: in order over the span, a third of them
    /// lagging behind by up to MAX_JITTER_MS or 4 event intervals, whichever
    /// is longer (so some are out of order whatever the density).
    fn time_ms(&mut self) -> i64 {
        let offset =
            i128::from(self.seq) * i128::from(self.plan.span_ms) / i128::from(self.plan.n.max(1));
        let base = self.plan.start_ms + i64::try_from(offset).unwrap_or(self.plan.span_ms);
        let interval = self.plan.span_ms / i64::try_from(self.plan.n.max(1)).unwrap_or(i64::MAX);
        let lag = if self.rng.gen_bool(0.3) {
            self.rng.gen_range(0..=MAX_JITTER_MS.max(4 * interval))
        } else {
            0
        };
        (base - lag).max(self.plan.start_ms)
    }

    fn next_event(&mut self) -> Event {
        let time = millis_text(self.time_ms());
        self.seq += 1;
        let id = self.uuid();
        let r: f64 = self.rng.gen();
        if r < 0.005 {
            // Outside any journey: refused token requests and auditors.
            let rp_cumulative = std::mem::take(&mut self.rp_cumulative);
            let rp = self.pick(&rp_cumulative);
            self.rp_cumulative = rp_cumulative;
            let (event_type, rp, outcome) = if r < 0.0045 {
                (EventType::TokenRejected, Some(rp), "invalid_grant")
            } else if r < 0.00475 {
                (EventType::AuditorTokenIssued, None, "success")
            } else {
                (EventType::AuditExported, Some(rp), "success")
            };
            return Event {
                id,
                time,
                journey_id: None,
                event_type,
                rp: rp.map(|k| RPS[k].to_owned()),
                idp: None,
                level_requested: None,
                level_achieved: None,
                outcome: Some(outcome.to_owned()),
                subject: None,
                match_cycle: None,
                reasons: Vec::new(),
                instance: INSTANCES[self.rng.gen_range(0..INSTANCES.len())].to_owned(),
                checkpoint: None,
                pruned_below: None,
                actor: None,
                fields: None,
            };
        }
        let slot = self.rng.gen_range(0..self.active.len());
        let (event_type, outcome) = self.active[slot].steps[self.active[slot].next];
        let step = self.active[slot].next;
        let cycle = match self.rng.gen_range(0..10) {
            0..=5 => 0,
            6..=8 => 1,
            _ => 3,
        };
        let j = &mut self.active[slot];
        j.next += 1;
        let returned = step >= 2;
        let event = Event {
            id,
            time,
            journey_id: Some(j.id.clone()),
            event_type,
            rp: Some(RPS[j.rp].to_owned()),
            idp: (step >= 1).then(|| IDPS[j.idp].0.to_owned()),
            level_requested: Some("LEVEL_2".to_owned()),
            level_achieved: (returned && outcome != Some("failed")).then(|| "LEVEL_2".to_owned()),
            outcome: outcome.map(str::to_owned),
            subject: (returned && event_type != EventType::IdpReturned).then(|| j.subject.clone()),
            match_cycle: (event_type == EventType::Matching).then_some(cycle),
            reasons: if event_type == EventType::Matching {
                vec!["surname_exact".to_owned(), "date_of_birth_exact".to_owned()]
            } else {
                Vec::new()
            },
            instance: INSTANCES[j.instance].to_owned(),
            checkpoint: None,
            pruned_below: None,
            actor: None,
            fields: None,
        };
        if j.next == j.steps.len() {
            let fresh = self.journey();
            self.active[slot] = fresh;
        }
        event
    }
}

fn cumulative(weights: &[f64]) -> Vec<f64> {
    let total: f64 = weights.iter().sum();
    let mut acc = 0.0;
    weights
        .iter()
        .map(|w| {
            acc += w / total;
            acc
        })
        .collect()
}

/// Milliseconds since the epoch as the log stores times (RFC 3339 UTC, millis).
fn millis_text(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(SecondsFormat::Millis, true)
}

// ---------------------------------------------------------------- loading

/// The head's time bookkeeping, as the store keeps it (`audit_head.max_time`,
/// `max_lag_ms`, `audit_events.max_time`).
#[derive(Debug, Default)]
struct Mark {
    max: Option<(i64, String)>,
    max_lag_ms: i64,
    /// Events older than an event before them.
    behind: u64,
}

impl Mark {
    /// Advances past an event at `ms` (stored text `time`); returns its `max_time`.
    fn advance<'a>(&'a mut self, ms: i64, time: &'a str) -> &'a str {
        match &self.max {
            Some((max, _)) if *max >= ms => {
                self.max_lag_ms = self.max_lag_ms.max(max - ms);
                self.behind += u64::from(*max > ms);
            }
            _ => self.max = Some((ms, time.to_owned())),
        }
        self.max.as_ref().map_or(time, |m| m.1.as_str())
    }
}

/// One INSERT of events and one of the nodes they complete.
#[derive(Debug)]
struct Chunk {
    events: String,
    nodes: String,
    rows: u64,
}

/// Bulk loader: generation, hashing and SQL text on a thread, INSERTs from
/// `args.writers` connections.
async fn bulk_load(db: &Database, args: &Args, plan: &Plan) -> Result<MemoryTree> {
    if plan.n == 0 {
        return Ok(MemoryTree::new());
    }
    let t = Instant::now();
    db.execute_raw(DROP_INDEXES)
        .await
        .context("dropping indexes")?;
    eprintln!(
        "dropped secondary indexes in {:.1} s",
        t.elapsed().as_secs_f64()
    );

    let (tx, rx) = tokio::sync::mpsc::channel::<Chunk>(args.writers * 2);
    let rx = Arc::new(tokio::sync::Mutex::new(rx));
    let (plan_copy, chunk) = (*plan, args.chunk);
    let generator = std::thread::spawn(move || generate(plan_copy, chunk, &tx));
    let inserted = Arc::new(AtomicU64::new(0));
    let mut writers = Vec::new();
    for _ in 0..args.writers {
        let (db, rx, inserted) = (db.clone(), rx.clone(), inserted.clone());
        writers.push(tokio::spawn(async move {
            let result = async {
                loop {
                    let next = rx.lock().await.recv().await;
                    let Some(chunk) = next else {
                        return Ok(());
                    };
                    let rows = db.execute_raw(&chunk.events).await?;
                    ensure!(
                        rows as u64 == chunk.rows,
                        "inserted {rows} of {}",
                        chunk.rows
                    );
                    if !chunk.nodes.is_empty() {
                        db.execute_raw(&chunk.nodes).await?;
                    }
                    inserted.fetch_add(chunk.rows, Ordering::Relaxed);
                }
            }
            .await;
            if result.is_err() {
                // Stops the generator (its sends fail) and the other writers.
                rx.lock().await.close();
            }
            result
        }));
    }
    let progress = {
        let inserted = inserted.clone();
        let n = plan.n;
        tokio::spawn(async move {
            let start = Instant::now();
            let mut shown = 0;
            loop {
                tokio::time::sleep(Duration::from_secs(10)).await;
                let done = inserted.load(Ordering::Relaxed);
                if done >= n {
                    break;
                }
                if done > shown {
                    let secs = start.elapsed().as_secs_f64();
                    eprintln!(
                        "  {done} / {n} events inserted, {:.0} events/s",
                        done as f64 / secs
                    );
                    shown = done;
                }
            }
        })
    };
    let mut failure = None;
    for w in writers {
        if let Err(e) = w.await.map_err(anyhow::Error::from).and_then(|r| r) {
            failure.get_or_insert(e);
        }
    }
    progress.abort();
    let generated = generator
        .join()
        .map_err(|_| anyhow!("the generator thread panicked"));
    if let Some(e) = failure {
        return Err(e.context("inserting"));
    }
    let (tree, mark) = generated??;
    let insert_secs = t.elapsed().as_secs_f64();
    eprintln!(
        "inserted {} events and {} nodes in {insert_secs:.1} s",
        plan.n,
        plan.n - u64::from(plan.n.count_ones())
    );

    let (max_time, max_lag_ms) = match &mark.max {
        Some((_, text)) => (text.clone(), mark.max_lag_ms),
        None => bail!("no events generated"),
    };
    eprintln!(
        "{} events ({:.1}%) are older than one before them; largest lag {max_lag_ms} ms",
        mark.behind,
        100.0 * mark.behind as f64 / plan.n as f64
    );
    let mut head = String::new();
    write!(head, "UPDATE audit_head SET size = {}, max_time = ", plan.n)?;
    push_text(&mut head, &max_time);
    write!(
        head,
        ", max_lag_ms = {max_lag_ms} WHERE id = 1 AND size = 0"
    )?;
    ensure!(
        db.execute_raw(&head).await? == 1,
        "audit_head was not at size 0"
    );

    let t = Instant::now();
    db.execute_raw(RESTORE_INDEXES)
        .await
        .context("rebuilding indexes")?;
    eprintln!("rebuilt indexes in {:.1} s", t.elapsed().as_secs_f64());
    let t = Instant::now();
    for table in ["audit_events", "audit_nodes", "audit_head"] {
        db.execute_raw(&format!("VACUUM (ANALYZE) {table}"))
            .await
            .with_context(|| format!("VACUUM ANALYZE {table}"))?;
    }
    eprintln!(
        "vacuumed and analysed in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    Ok(tree)
}

/// Saves the definitions of `audit_events`' unique constraints and
/// secondary indexes (whatever the migrations made them) in a table, then
/// drops them, so that the load only maintains the primary key.
const DROP_INDEXES: &str = r#"
DO $bench$
DECLARE r record;
BEGIN
  CREATE TABLE audit_bench_saved_ddl (ord serial PRIMARY KEY, ddl text NOT NULL);
  FOR r IN SELECT conname, pg_get_constraintdef(oid) AS def FROM pg_constraint
           WHERE conrelid = 'audit_events'::regclass AND contype = 'u' ORDER BY conname LOOP
    INSERT INTO audit_bench_saved_ddl (ddl)
      VALUES (format('ALTER TABLE audit_events ADD CONSTRAINT %I %s', r.conname, r.def));
    EXECUTE format('ALTER TABLE audit_events DROP CONSTRAINT %I', r.conname);
  END LOOP;
  FOR r IN SELECT indexrelid::regclass::text AS name, pg_get_indexdef(indexrelid) AS def
           FROM pg_index WHERE indrelid = 'audit_events'::regclass AND NOT indisprimary
           ORDER BY 1 LOOP
    INSERT INTO audit_bench_saved_ddl (ddl) VALUES (r.def);
    EXECUTE format('DROP INDEX %s', r.name);
  END LOOP;
END
$bench$
"#;

/// Recreates what [`DROP_INDEXES`] dropped, with room to sort in memory.
const RESTORE_INDEXES: &str = r#"
DO $bench$
DECLARE r record;
BEGIN
  PERFORM set_config('maintenance_work_mem', '1GB', true);
  FOR r IN SELECT ddl FROM audit_bench_saved_ddl ORDER BY ord LOOP
    EXECUTE r.ddl;
  END LOOP;
  DROP TABLE audit_bench_saved_ddl;
END
$bench$
"#;

/// The generator thread: events in seq order, their rows and nodes as SQL
/// text, `chunk` events per INSERT. Returns the tree and time bookkeeping.
fn generate(
    plan: Plan,
    chunk: usize,
    tx: &tokio::sync::mpsc::Sender<Chunk>,
) -> Result<(MemoryTree, Mark)> {
    let mut synth = Synth::new(plan);
    let mut tree = MemoryTree::new();
    let mut mark = Mark::default();
    let mut events = String::new();
    let mut nodes = String::new();
    let mut rows = 0u64;
    for seq in 0..plan.n {
        let event = synth.next_event();
        let body = String::from_utf8(event.canonical_bytes())?;
        let leaf = audit::leaf_hash(body.as_bytes());
        let completed = audit::nodes_completed_by(seq, leaf, &tree)?;
        tree.push(leaf);
        let ms = DateTime::parse_from_rfc3339(&event.time)?.timestamp_millis();
        let max_time = mark.advance(ms, &event.time);

        events.push_str(if rows == 0 {
            "INSERT INTO audit_events (seq, id, time, max_time, journey_id, event_type, \
             rp_id, idp_id, outcome, body, leaf_hash) VALUES ("
        } else {
            ",("
        });
        write!(events, "{seq},")?;
        push_text(&mut events, &event.id);
        events.push(',');
        push_text(&mut events, &event.time);
        events.push(',');
        push_text(&mut events, max_time);
        events.push(',');
        push_opt(&mut events, event.journey_id.as_deref());
        events.push(',');
        push_text(&mut events, event.event_type.as_str());
        events.push(',');
        push_opt(&mut events, event.rp.as_deref());
        events.push(',');
        push_opt(&mut events, event.idp.as_deref());
        events.push(',');
        push_opt(&mut events, event.outcome.as_deref());
        events.push(',');
        push_text(&mut events, &body);
        events.push(',');
        push_text(&mut events, &hex(&leaf));
        events.push(')');

        for (level, idx, hash) in completed.into_iter().filter(|c| c.0 >= 1) {
            nodes.push_str(if nodes.is_empty() {
                "INSERT INTO audit_nodes (level, idx, hash) VALUES ("
            } else {
                ",("
            });
            write!(nodes, "{level},{idx},'{}')", hex(&hash))?;
        }
        rows += 1;
        if rows as usize == chunk || seq + 1 == plan.n {
            let full = Chunk {
                events: std::mem::take(&mut events),
                nodes: std::mem::take(&mut nodes),
                rows,
            };
            events.reserve(full.events.len());
            nodes.reserve(full.nodes.len());
            rows = 0;
            if tx.blocking_send(full).is_err() {
                bail!("the writers stopped");
            }
        }
    }
    Ok((tree, mark))
}

/// A SQL string literal (standard_conforming_strings: only quotes double).
fn push_text(sql: &mut String, value: &str) {
    sql.push('\'');
    if value.contains('\'') {
        sql.push_str(&value.replace('\'', "''"));
    } else {
        sql.push_str(value);
    }
    sql.push('\'');
}

fn push_opt(sql: &mut String, value: Option<&str>) {
    match value {
        Some(v) => push_text(sql, v),
        None => sql.push_str("NULL"),
    }
}

/// Lowercase hex, as the store writes hashes.
fn hex(hash: &Hash) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(64);
    for b in hash {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    s
}

/// One key seals every database of the run, as one hub would.
fn seal() -> &'static store::LogSeal {
    static SEAL: std::sync::OnceLock<store::LogSeal> = std::sync::OnceLock::new();
    #[allow(clippy::expect_used)]
    SEAL.get_or_init(|| store::LogSeal::generate().expect("a fresh key"))
}

/// The hub's own append path, `args.api_batch` events per call.
async fn api_load(db: &Database, args: &Args, plan: &Plan) -> Result<MemoryTree> {
    let mut synth = Synth::new(*plan);
    let mut tree = MemoryTree::new();
    let start = Instant::now();
    let mut next_report = 1_000_000;
    let mut done = 0u64;
    while done < plan.n {
        let len = (plan.n - done).min(args.api_batch as u64);
        let batch: Vec<Event> = (0..len).map(|_| synth.next_event()).collect();
        let seal = seal();
        for e in &batch {
            tree.push(e.leaf_hash());
        }
        let range = db.append_audit_events(&batch, seal).await?;
        ensure!(range.first_seq == done, "appended at {}", range.first_seq);
        done = range.size;
        if done >= next_report {
            eprintln!(
                "  {done} / {} events appended, {:.0} events/s",
                plan.n,
                done as f64 / start.elapsed().as_secs_f64()
            );
            next_report += 1_000_000;
        }
    }
    let t = Instant::now();
    for table in ["audit_events", "audit_nodes", "audit_head"] {
        db.execute_raw(&format!("VACUUM (ANALYZE) {table}")).await?;
    }
    eprintln!(
        "vacuumed and analysed in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    Ok(tree)
}

async fn self_check(db: &Database, when: &str, report: &mut Report) -> Result<()> {
    let t = Instant::now();
    let check = db
        .audit_self_check(seal().published().verification_keys())
        .await?;
    let secs = t.elapsed().as_secs_f64();
    eprintln!(
        "self-check {when}: {} events, {} nodes checked in {secs:.1} s, {} problems",
        check.events_checked,
        check.nodes_checked,
        check.problems.len()
    );
    ensure!(
        check.is_clean(),
        "self-check {when} found problems: {:?}",
        &check.problems[..check.problems.len().min(5)]
    );
    report.checks.push(json!({
        "bench": "self_check",
        "when": when,
        "events_checked": check.events_checked,
        "nodes_checked": check.nodes_checked,
        "seconds": round3(secs),
        "clean": true,
    }));
    Ok(())
}

// ---------------------------------------------------------------- measuring

fn histogram() -> Result<Histogram<u64>> {
    // Microseconds, 1 µs to 1 h, 3 significant digits.
    Ok(Histogram::new_with_bounds(1, 3_600_000_000, 3)?)
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX).max(1)
}

/// (a) Random RP, random 1-7 day window, first page.
async fn bench_rp_time(
    db: &Database,
    plan: &Plan,
    count: usize,
    rng: &mut StdRng,
    report: &mut Report,
) -> Result<()> {
    let mut h = histogram()?;
    let mut rows = 0u64;
    for i in 0..count + WARMUP {
        let rp = RPS[rng.gen_range(0..RPS.len())];
        let days = rng.gen_range(1..=7);
        let from_ms = plan.start_ms + rng.gen_range(0..=(plan.span_ms - days * DAY_MS));
        let (from, to) = (millis_text(from_ms), millis_text(from_ms + days * DAY_MS));
        let filter = AuditFilter {
            rp: Some(rp.to_owned()),
            from: Some(from.clone()),
            to: Some(to.clone()),
            ..AuditFilter::default()
        };
        let t = Instant::now();
        let page = db.audit_events(&filter, None, PAGE).await?;
        let elapsed = t.elapsed();
        check_page(&page, rp, None, Some((&from, &to)))?;
        if i >= WARMUP {
            h.saturating_record(micros(elapsed));
            rows += page.len() as u64;
        }
    }
    report.latency(
        "a",
        "auditor query: RP + 1-7 day window, first page of 100",
        &h,
        Some(rows as f64 / count.max(1) as f64),
    );
    Ok(())
}

/// Queries to run, unmeasured, before each query benchmark.
const WARMUP: usize = 20;

/// (b) Random RP, from a random cursor, 5 pages.
async fn bench_rp_paging(
    db: &Database,
    n: u64,
    count: usize,
    rng: &mut StdRng,
    report: &mut Report,
) -> Result<()> {
    let mut per_page = histogram()?;
    let mut per_walk = histogram()?;
    let mut rows = 0u64;
    for i in 0..count + WARMUP {
        let rp = RPS[rng.gen_range(0..RPS.len())];
        let filter = AuditFilter {
            rp: Some(rp.to_owned()),
            ..AuditFilter::default()
        };
        let mut cursor = Some(rng.gen_range(0..n));
        let walk = Instant::now();
        for _ in 0..5 {
            let t = Instant::now();
            let page = db.audit_events(&filter, cursor, PAGE).await?;
            let elapsed = t.elapsed();
            check_page(&page, rp, cursor, None)?;
            if i >= WARMUP {
                per_page.saturating_record(micros(elapsed));
                rows += page.len() as u64;
            }
            match page.last() {
                Some((seq, _)) => cursor = Some(*seq),
                None => break,
            }
        }
        if i >= WARMUP {
            per_walk.saturating_record(micros(walk.elapsed()));
        }
    }
    report.latency(
        "b",
        "auditor query: RP only, random cursor, each of 5 pages of 100",
        &per_page,
        Some(rows as f64 / per_page.len().max(1) as f64),
    );
    report.latency(
        "b",
        "auditor query: RP only, the 5-page walk",
        &per_walk,
        None,
    );
    Ok(())
}

/// Checks a page against its filter: RP, order, cursor, time range.
fn check_page(
    page: &[(u64, Event)],
    rp: &str,
    after: Option<u64>,
    range: Option<(&str, &str)>,
) -> Result<()> {
    let mut last = after;
    for (seq, event) in page {
        ensure!(last.is_none_or(|l| *seq > l), "page out of order at {seq}");
        ensure!(
            event.rp.as_deref() == Some(rp),
            "event {seq} is not of {rp}"
        );
        if let Some((from, to)) = range {
            ensure!(
                event.time.as_str() >= from && event.time.as_str() < to,
                "event {seq} is outside {from}..{to}"
            );
        }
        last = Some(*seq);
    }
    Ok(())
}

/// (c) Inclusion proofs of random events at the full size.
async fn bench_inclusion(
    db: &Database,
    tree: &MemoryTree,
    count: usize,
    rng: &mut StdRng,
    report: &mut Report,
) -> Result<()> {
    let n = tree.size();
    let mut h = histogram()?;
    for i in 0..count + WARMUP {
        let seq = rng.gen_range(0..n);
        let t = Instant::now();
        let proof = db.audit_inclusion_proof(seq, n).await?;
        let elapsed = t.elapsed();
        ensure!(
            proof == audit::inclusion_proof(seq, n, tree)?,
            "inclusion proof of {seq} differs from the one computed while loading"
        );
        if i >= WARMUP {
            h.saturating_record(micros(elapsed));
        }
    }
    report.latency("c", "inclusion proof, random event, full size", &h, None);
    Ok(())
}

/// (d) Consistency proofs from a random earlier size to the full size.
async fn bench_consistency(
    db: &Database,
    tree: &MemoryTree,
    count: usize,
    rng: &mut StdRng,
    report: &mut Report,
) -> Result<()> {
    let n = tree.size();
    let mut h = histogram()?;
    for i in 0..count + WARMUP {
        let first = rng.gen_range(1..=n);
        let t = Instant::now();
        let proof = db.audit_consistency_proof(first, n).await?;
        let elapsed = t.elapsed();
        ensure!(
            proof == audit::consistency_proof(first, n, tree)?,
            "consistency proof {first}..{n} differs from the one computed while loading"
        );
        if i >= WARMUP {
            h.saturating_record(micros(elapsed));
        }
    }
    report.latency("d", "consistency proof, random size to full size", &h, None);
    Ok(())
}

/// (e) The root at the full size.
async fn bench_root(
    db: &Database,
    tree: &MemoryTree,
    count: usize,
    report: &mut Report,
) -> Result<()> {
    let n = tree.size();
    let expected = audit::root(n, tree)?;
    let mut h = histogram()?;
    for i in 0..count + WARMUP {
        let t = Instant::now();
        let root = db.audit_root(n).await?;
        let elapsed = t.elapsed();
        ensure!(root == expected, "root at {n} differs");
        if i >= WARMUP {
            h.saturating_record(micros(elapsed));
        }
    }
    report.latency("e", "root at full size", &h, None);
    Ok(())
}

/// (f) `tasks` concurrent appenders, each with its own `Database` (one
/// connection), appending `batch` events per call for `window`.
async fn bench_appends(
    url: &str,
    tasks: usize,
    batch: usize,
    window: Duration,
    seed: u64,
    report: &mut Report,
) -> Result<()> {
    let mut dbs = Vec::with_capacity(tasks);
    for _ in 0..tasks {
        dbs.push(
            Database::open_with(
                url,
                DatabaseOptions {
                    max_connections: 1,
                    acquire_timeout: Duration::from_secs(60),
                    ..DatabaseOptions::default()
                },
            )
            .await?,
        );
    }
    let barrier = Arc::new(tokio::sync::Barrier::new(tasks + 1));
    let mut handles = Vec::with_capacity(tasks);
    for (k, db) in dbs.into_iter().enumerate() {
        let barrier = barrier.clone();
        let seed = seed ^ ((tasks * 1000 + batch * 10 + k) as u64).rotate_left(32);
        handles.push(tokio::spawn(async move {
            let mut rng = StdRng::seed_from_u64(seed);
            let mut h = histogram()?;
            let instance = format!("bench-{k}");
            barrier.wait().await;
            let deadline = Instant::now() + window;
            let mut appended = 0u64;
            while Instant::now() < deadline {
                let events: Vec<Event> = (0..batch)
                    .map(|_| live_event(&mut rng, &instance))
                    .collect();
                let t = Instant::now();
                let range = db.append_audit_events(&events, seal()).await?;
                h.saturating_record(micros(t.elapsed()));
                ensure!(range.size - range.first_seq == batch as u64);
                appended += batch as u64;
            }
            Ok::<_, anyhow::Error>((h, appended))
        }));
    }
    barrier.wait().await;
    let start = Instant::now();
    let mut latency = histogram()?;
    let mut events = 0u64;
    for handle in handles {
        let (h, appended) = handle.await??;
        latency.add(&h)?;
        events += appended;
    }
    let secs = start.elapsed().as_secs_f64();
    report.appends.push(AppendResult {
        tasks,
        batch,
        secs,
        appends: latency.len(),
        events,
        latency,
    });
    eprintln!(
        "appends: {tasks} tasks x batch {batch}: {:.0} events/s",
        events as f64 / secs
    );
    Ok(())
}

/// An event as a live hub would record it now.
fn live_event(rng: &mut StdRng, instance: &str) -> Event {
    let rp = RPS[rng.gen_range(0..RPS.len())];
    let idp = IDPS[rng.gen_range(0..IDPS.len())].0;
    Event {
        id: uuid::Builder::from_random_bytes(rng.gen())
            .into_uuid()
            .to_string(),
        journey_id: Some(
            uuid::Builder::from_random_bytes(rng.gen())
                .into_uuid()
                .to_string(),
        ),
        rp: Some(rp.to_owned()),
        idp: Some(idp.to_owned()),
        level_requested: Some("LEVEL_2".to_owned()),
        outcome: Some("success".to_owned()),
        ..Event::new(EventType::IdpSelected, instance)
    }
}

// ---------------------------------------------------------------- report

#[derive(Debug)]
struct AppendResult {
    tasks: usize,
    batch: usize,
    secs: f64,
    appends: u64,
    events: u64,
    latency: Histogram<u64>,
}

#[derive(Debug)]
struct Report {
    n: u64,
    lines: Vec<(String, String, Histogram<u64>, Option<f64>)>,
    appends: Vec<AppendResult>,
    checks: Vec<serde_json::Value>,
    load: Option<serde_json::Value>,
}

fn ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

impl Report {
    fn new(n: u64) -> Self {
        Self {
            n,
            lines: Vec::new(),
            appends: Vec::new(),
            checks: Vec::new(),
            load: None,
        }
    }

    fn load(&mut self, loader: Loader, secs: f64) {
        self.load = Some(json!({
            "bench": "load",
            "loader": format!("{loader:?}").to_lowercase(),
            "events": self.n,
            "seconds": round3(secs),
            "events_per_s": (self.n as f64 / secs.max(1e-9)).round(),
        }));
    }

    fn latency(&mut self, key: &str, what: &str, h: &Histogram<u64>, rows: Option<f64>) {
        self.lines
            .push((key.to_owned(), what.to_owned(), h.clone(), rows));
    }

    fn print(&self) {
        println!();
        println!("## Audit log benchmark: {} events (PostgreSQL)", self.n);
        println!();
        if let Some(load) = &self.load {
            println!(
                "Load ({}): {} s, {} events/s",
                load["loader"].as_str().unwrap_or("?"),
                load["seconds"],
                load["events_per_s"]
            );
            println!();
        }
        println!("| | measurement | count | p50 ms | p95 ms | p99 ms | max ms | rows/query |");
        println!("|---|---|---:|---:|---:|---:|---:|---:|");
        for (key, what, h, rows) in &self.lines {
            println!(
                "| {key} | {what} | {} | {:.3} | {:.3} | {:.3} | {:.3} | {} |",
                h.len(),
                ms(h.value_at_quantile(0.50)),
                ms(h.value_at_quantile(0.95)),
                ms(h.value_at_quantile(0.99)),
                ms(h.max()),
                rows.map_or_else(String::new, |r| format!("{r:.1}")),
            );
        }
        if !self.appends.is_empty() {
            println!();
            println!(
                "| f: append tasks | batch | seconds | appends | events | appends/s | events/s | p50 ms | p95 ms | p99 ms | max ms |"
            );
            println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
            for a in &self.appends {
                let h = &a.latency;
                println!(
                    "| {} | {} | {:.2} | {} | {} | {:.0} | {:.0} | {:.3} | {:.3} | {:.3} | {:.3} |",
                    a.tasks,
                    a.batch,
                    a.secs,
                    a.appends,
                    a.events,
                    a.appends as f64 / a.secs,
                    a.events as f64 / a.secs,
                    ms(h.value_at_quantile(0.50)),
                    ms(h.value_at_quantile(0.95)),
                    ms(h.value_at_quantile(0.99)),
                    ms(h.max()),
                );
            }
        }
        println!();
        if let Some(load) = &self.load {
            println!("{load}");
        }
        for check in &self.checks {
            println!("{check}");
        }
        for (key, what, h, rows) in &self.lines {
            println!(
                "{}",
                json!({
                    "bench": key,
                    "what": what,
                    "events": self.n,
                    "count": h.len(),
                    "p50_ms": ms(h.value_at_quantile(0.50)),
                    "p95_ms": ms(h.value_at_quantile(0.95)),
                    "p99_ms": ms(h.value_at_quantile(0.99)),
                    "max_ms": ms(h.max()),
                    "rows_per_query": rows,
                })
            );
        }
        for a in &self.appends {
            let h = &a.latency;
            println!(
                "{}",
                json!({
                    "bench": "f",
                    "what": "append",
                    "events": self.n,
                    "tasks": a.tasks,
                    "batch": a.batch,
                    "seconds": round3(a.secs),
                    "appends": a.appends,
                    "appended_events": a.events,
                    "appends_per_s": (a.appends as f64 / a.secs).round(),
                    "events_per_s": (a.events as f64 / a.secs).round(),
                    "p50_ms": ms(h.value_at_quantile(0.50)),
                    "p95_ms": ms(h.value_at_quantile(0.95)),
                    "p99_ms": ms(h.value_at_quantile(0.99)),
                    "max_ms": ms(h.max()),
                })
            );
        }
    }
}
