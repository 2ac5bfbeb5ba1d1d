//! The relational store: department records and record links, on SQLite (the
//! embedded default) or PostgreSQL (several hub instances), each through a bb8
//! pool of diesel-async connections.

use std::collections::{BTreeSet, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use diesel::migration::MigrationSource;
use diesel::ConnectionError;
use diesel_async::async_connection_wrapper::AsyncConnectionWrapper;
use diesel_async::pooled_connection::bb8::{Pool, RunError};
use diesel_async::pooled_connection::{
    AsyncDieselConnectionManager, ManagerConfig, PoolError, RecyclingMethod,
};
use diesel_async::{AsyncConnection, SimpleAsyncConnection};
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};
use matching::{DepartmentRecord, MatchingDataset, RecordId};

use crate::error::{redact_url, StoreError};
use crate::queries::{self, KeyedRecord, LinkRow, UnkeyedRow};
use crate::verification_log::AppendState;

type SqliteConn = queries::sqlite::Conn;
type PgConn = queries::pg::Conn;

/// The schema, compiled into the binary so an operator never needs the SQL
/// files. The same set serves SQLite and PostgreSQL: the SQL in `/migrations`
/// sticks to what both accept (TEXT, BIGINT, composite primary keys, plain
/// indexes).
const MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations");

/// Run on every new SQLite connection. `busy_timeout` first so that switching
/// to WAL waits for other connections instead of failing; WAL lets readers
/// proceed while an import writes; foreign keys are off by default in SQLite.
const CONNECTION_PRAGMAS: &str =
    "PRAGMA busy_timeout = 5000; PRAGMA journal_mode = WAL; PRAGMA foreign_keys = ON;";

/// Pool sizing. The defaults suit one hub instance on a local SQLite file.
#[derive(Debug, Clone)]
pub struct DatabaseOptions {
    /// Most connections open at once (SQLite still allows one writer at a time). On
    /// PostgreSQL each thread that queries has a pool of its own (connections stay on
    /// the runtime that drives them), and this is shared out among `query_threads`,
    /// rounded up: each thread's pool holds up to `max_connections / query_threads`.
    pub max_connections: u32,
    /// How long a request waits for a free connection (and how long opening or
    /// migrating waits to connect to PostgreSQL) before failing with
    /// [`StoreError::Unavailable`], which the web layer turns into a 503.
    pub acquire_timeout: Duration,
    /// Threads expected to query concurrently (a server's request workers), among
    /// which PostgreSQL's `max_connections` is shared out. Default: one per CPU core.
    pub query_threads: u32,
}

impl Default for DatabaseOptions {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Self {
            max_connections: 8,
            acquire_timeout: Duration::from_secs(5),
            query_threads: u32::try_from(cores).unwrap_or(u32::MAX),
        }
    }
}

/// What [`Database::link_or_candidates`] found.
#[derive(Debug)]
pub enum LinkOrCandidates {
    /// Matched before (cycle 0): the linked record.
    Linked(RecordId),
    /// No link: the candidates for cycle 1 (one more than the limit when there are more).
    Candidates(Vec<DepartmentRecord>),
}

/// Connections in the pool right now, for metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PoolState {
    /// Connections open (in use or idle).
    pub connections: u32,
    /// Open connections not checked out.
    pub idle: u32,
}

/// How the database's schema compares with the migrations built into this hub.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SchemaStatus {
    /// Every known migration is applied and nothing else is.
    UpToDate,
    /// Versions this build knows that the database has not applied yet
    /// (all of them for a fresh database), oldest first.
    Pending(Vec<String>),
    /// Versions applied to the database that this build does not know: a newer
    /// hub migrated it. Takes precedence over pending ones.
    Newer(Vec<String>),
}

/// Handle to the hub's database; cheap to clone (clones share the pools).
#[derive(Clone)]
pub struct Database {
    pub(crate) pools: Pools,
    location: Location,
    acquire_timeout: Duration,
}

/// One pool per backend; every query is written for both (`store::queries`,
/// `store::verification_log::sql`).
#[derive(Clone)]
pub(crate) enum Pools {
    Sqlite(Pool<SqliteConn>),
    /// `url` opens the dedicated migration connection.
    Postgres {
        pools: ThreadPools,
        url: PgUrl,
        /// Where this handle's (and its clones') last audit append left the
        /// log; the lock also makes their appends take turns, which the head
        /// row's lock would impose anyway.
        audit_tip: Arc<tokio::sync::Mutex<AppendState>>,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Location {
    File(PathBuf),
    /// A private in-memory database (tests): the pool holds exactly one
    /// connection and never recycles it, since the data lives in it.
    Memory,
    Postgres(PgUrl),
}

/// A PostgreSQL URL. `Debug` hides the password.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct PgUrl(String);

impl fmt::Debug for PgUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&redact_url(&self.0))
    }
}

impl fmt::Debug for Database {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.pool_state();
        let backend = match self.pools {
            Pools::Sqlite(_) => "sqlite",
            Pools::Postgres { .. } => "postgres",
        };
        f.debug_struct("Database")
            .field("backend", &backend)
            .field("location", &self.location)
            .field("connections", &state.connections)
            .field("idle_connections", &state.idle)
            .finish()
    }
}

/// Runs `$body` with `$conn` a pooled connection and `$q` the backend's
/// module of `$statements` (a module with `sqlite` and `pg` submodules:
/// `queries` when not given), whichever backend this database is.
macro_rules! with_conn {
    ($db:expr, |$conn:ident, $q:ident| $body:expr) => {
        $crate::database::with_conn!($db, queries, |$conn, $q| $body)
    };
    ($db:expr, $statements:ident, |$conn:ident, $q:ident| $body:expr) => {
        match &$db.pools {
            $crate::database::Pools::Sqlite(pool) => {
                let mut $conn = pool.get().await.map_err($crate::database::pool_error)?;
                use $statements::sqlite as $q;
                $body
            }
            $crate::database::Pools::Postgres { pools, .. } => {
                let mut $conn = pools.get().await.map_err($crate::database::pool_error)?;
                use $statements::pg as $q;
                $body
            }
        }
    };
}
pub(crate) use with_conn;

mod thread_pools;

use thread_pools::ThreadPools;

impl Database {
    /// Opens the database at `url` with default pool options.
    ///
    /// Accepts `postgres://…` or `postgresql://…` (PostgreSQL, through the
    /// pure-Rust tokio-postgres driver: no libpq needed), or for SQLite
    /// `sqlite://path/to/hub.db`, `sqlite:path`, a bare path, or
    /// `sqlite::memory:` for a throwaway in-memory database (a SQLite file and
    /// its parent directory are created). Fails fast, with
    /// [`StoreError::Unavailable`], if the first connection cannot be made, so
    /// a misconfigured hub does not start. Does not migrate: call
    /// [`Database::migrate`], or [`Database::require_current_schema`] to refuse
    /// to run on the wrong schema.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        Self::open_with(url, DatabaseOptions::default()).await
    }

    /// [`Database::open`] with explicit pool options.
    pub async fn open_with(url: &str, options: DatabaseOptions) -> Result<Self, StoreError> {
        let location = parse_url(url)?;
        if options.max_connections == 0 {
            return Err(StoreError::InvalidInput(
                "max_connections must be at least 1".into(),
            ));
        }
        if options.acquire_timeout.is_zero() {
            return Err(StoreError::InvalidInput(
                "acquire_timeout must be non-zero".into(),
            ));
        }
        let pools = match &location {
            Location::Postgres(url) => Pools::Postgres {
                pools: open_postgres(url, &options).await?,
                url: url.clone(),
                audit_tip: Arc::default(),
            },
            Location::File(path) => {
                if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                    tokio::fs::create_dir_all(parent).await?;
                }
                let path = path.to_str().ok_or_else(|| {
                    StoreError::InvalidUrl("database path is not valid UTF-8".into())
                })?;
                Pools::Sqlite(open_sqlite(path, false, &options).await?)
            }
            Location::Memory => Pools::Sqlite(open_sqlite(":memory:", true, &options).await?),
        };
        let db = Database {
            pools,
            location,
            acquire_timeout: options.acquire_timeout,
        };
        db.ping().await?;
        Ok(db)
    }

    /// Applies any pending embedded migrations; a no-op when the schema is current.
    ///
    /// Diesel's migration harness is synchronous, so it runs inside a blocking
    /// task: on SQLite on one pooled connection; on PostgreSQL on a dedicated
    /// connection wrapped in `AsyncConnectionWrapper`, holding an advisory lock
    /// so that hub instances migrating at the same moment apply each migration
    /// once. Safe to call at every start-up and from several instances.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        let outcome = match &self.pools {
            Pools::Sqlite(pool) => {
                let mut conn = pool.get().await.map_err(pool_error)?;
                conn.spawn_blocking(|c| Ok(run_migrations(c)))
                    .await
                    .map_err(StoreError::from)?
            }
            Pools::Postgres { url, .. } => migrate_postgres(url, self.acquire_timeout).await?,
        };
        match outcome {
            Ok(applied) if applied.is_empty() => {
                tracing::debug!("database schema is up to date");
            }
            Ok(applied) => {
                tracing::info!(migrations = ?applied, "applied database migrations");
            }
            Err(message) if crate::error::is_lock_timeout(&message) => {
                return Err(StoreError::Unavailable(message));
            }
            Err(message) => return Err(StoreError::Migration(message)),
        }
        self.backfill_blocking_keys().await
    }

    /// Derives the blocking keys of records stored before the keys table
    /// existed (migration `matching_blocking_keys` marks them `keyed = 0`), a
    /// batch per transaction, so that they become candidates like imported
    /// ones. Part of [`Database::migrate`]: a no-op (one probe of an empty
    /// partial index) once done, and resumed where it stopped if interrupted.
    /// A stored record that does not decode stops it with
    /// [`StoreError::Corrupt`]: keying it with nothing would silently drop a
    /// candidate.
    async fn backfill_blocking_keys(&self) -> Result<(), StoreError> {
        let mut keyed = 0_usize;
        loop {
            let done = with_conn!(self, |conn, q| {
                q::backfill_keys(&mut conn, BACKFILL_BATCH, derive_stored_keys).await?
            });
            if done == 0 {
                break;
            }
            keyed += done;
            tracing::info!(records = keyed, "derived blocking keys of stored records");
        }
        Ok(())
    }

    /// Compares the migrations applied to the database with those built into
    /// this hub. Read-only: it does not create diesel's migration table.
    pub async fn schema_status(&self) -> Result<SchemaStatus, StoreError> {
        let applied = with_conn!(self, |conn, q| {
            if q::migrations_table_exists(&mut conn).await? {
                q::applied_migrations(&mut conn).await?
            } else {
                Vec::new()
            }
        });
        Ok(compare_schema(&known_migrations()?, &applied))
    }

    /// Fails with [`StoreError::Schema`] unless [`Database::schema_status`] is
    /// [`SchemaStatus::UpToDate`] and every record has its blocking keys (the
    /// backfill in [`Database::migrate`] ran to the end): `hub serve` calls it
    /// so that it never runs against a database it was not built for (missing
    /// tables, columns a newer hub relies on, records matching cannot find).
    pub async fn require_current_schema(&self) -> Result<(), StoreError> {
        match self.schema_status().await? {
            SchemaStatus::UpToDate => {
                let unkeyed =
                    with_conn!(self, |conn, q| q::unkeyed_record_exists(&mut conn).await?);
                if unkeyed {
                    return Err(StoreError::Schema(
                        "department records imported before blocking keys have no keys yet: \
                         run `hub migrate`"
                            .into(),
                    ));
                }
                Ok(())
            }
            SchemaStatus::Pending(pending) => Err(StoreError::Schema(format!(
                "database is not migrated: run `hub migrate` (pending migrations: {})",
                pending.join(", ")
            ))),
            SchemaStatus::Newer(unknown) => Err(StoreError::Schema(format!(
                "database schema is newer than this hub (unknown migrations {}): upgrade the hub",
                unknown.join(", ")
            ))),
        }
    }

    /// Checks a connection can be obtained and answers a trivial query (health checks).
    pub async fn ping(&self) -> Result<(), StoreError> {
        with_conn!(self, |conn, q| Ok(q::ping(&mut conn).await?))
    }

    /// Connections open and idle in the pool right now (metrics).
    pub fn pool_state(&self) -> PoolState {
        let states: Vec<_> = match &self.pools {
            Pools::Sqlite(pool) => vec![pool.state()],
            Pools::Postgres { pools, .. } => pools.all().map(|p| p.state()).collect(),
        };
        states
            .iter()
            .fold(PoolState::default(), |sum, state| PoolState {
                connections: sum.connections + state.connections,
                idle: sum.idle + state.idle_connections,
            })
    }

    /// Inserts or replaces the RP's department records with their blocking
    /// keys, all in one transaction (an import either lands entirely or not at
    /// all).
    ///
    /// Each record is stored under [`matching::record_blocking_keys`] of its
    /// dataset; a record with an existing `(rp_id, record_id)` is replaced,
    /// and so are all its keys (old keys no longer find it). When a batch
    /// repeats a `record_id` the last occurrence wins; a record stored with
    /// the same dataset is left as it is. Returns the number of distinct
    /// records in the batch. Records without any key (no usable date of
    /// birth, surname or postcode) are stored but can never be candidates. A
    /// huge batch holds SQLite's write lock (or one PostgreSQL transaction)
    /// for its whole duration: callers importing millions of rows should split
    /// them into batches of some thousands.
    pub async fn import_records(
        &self,
        rp_id: &str,
        records: &[DepartmentRecord],
    ) -> Result<usize, StoreError> {
        non_empty("rp_id", rp_id)?;
        self.import_prepared(rp_id, PreparedRecords::new(records)?)
            .await
    }

    /// [`Database::import_records`] for a batch prepared beforehand, e.g. on
    /// the thread that reads the file, so that encoding and key derivation
    /// overlap with the previous batch's write.
    pub async fn import_prepared(
        &self,
        rp_id: &str,
        records: PreparedRecords,
    ) -> Result<usize, StoreError> {
        non_empty("rp_id", rp_id)?;
        let PreparedRecords { rows, unkeyed } = records;
        let rp = rp_id.to_owned();
        let written = with_conn!(self, |conn, q| q::import_records(
            &mut conn,
            rp,
            rows,
            stored_keys
        )
        .await?);
        tracing::debug!(rp_id, records = written, "imported department records");
        if unkeyed > 0 {
            tracing::warn!(
                rp_id,
                records = unkeyed,
                "imported records without a usable date of birth, surname or postcode can never be matched"
            );
        }
        Ok(written)
    }

    /// The RP's records stored under any of these blocking keys (from
    /// [`matching::query_blocking_keys`]): the candidate set for matching cycles 1 and 3.
    ///
    /// One SQL statement per 10,000 keys (any number of keys works), reading only
    /// the key index entries of `keys` and those records. Returns at most `limit + 1` records, so a caller can
    /// tell "exactly `limit`" from "more than `limit`" (the engine refuses to
    /// decide on a truncated set). Each record appears once, in `record_id`
    /// order. A stored record that no longer decodes fails the whole call
    /// ([`StoreError::Corrupt`]) rather than being skipped, because silently
    /// dropping a candidate could turn an ambiguity into a false match.
    pub async fn candidates_by_blocking_keys(
        &self,
        rp_id: &str,
        keys: &[String],
        limit: usize,
    ) -> Result<Vec<DepartmentRecord>, StoreError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let wanted = limit.saturating_add(1);
        let sql_limit = i64::try_from(wanted).unwrap_or(i64::MAX);
        let rows = with_conn!(self, |conn, q| {
            let mut rows = Vec::new();
            for chunk in keys.chunks(KEYS_PER_STATEMENT) {
                rows.extend(q::candidate_rows(&mut conn, rp_id, chunk, sql_limit).await?);
            }
            rows
        });
        first_by_record_id(rows, wanted)
            .into_iter()
            .map(|(record_id, json)| {
                let dataset = decode_dataset(rp_id, &record_id, &json)?;
                Ok(DepartmentRecord {
                    record_id: RecordId(record_id),
                    dataset,
                })
            })
            .collect()
    }

    /// The record this IdP subject was matched to before at this RP (matching
    /// cycle 0), if any.
    pub async fn record_link(
        &self,
        rp_id: &str,
        idp_id: &str,
        idp_subject: &str,
    ) -> Result<Option<RecordId>, StoreError> {
        let found = with_conn!(self, |conn, q| {
            q::record_link(&mut conn, rp_id, idp_id, idp_subject).await?
        });
        Ok(found.map(RecordId))
    }

    /// Matching cycles 0 and 1 in one statement: the record this IdP subject was matched
    /// to before at this RP, or, when there is none, the candidates
    /// [`Database::candidates_by_blocking_keys`] would return.
    pub async fn link_or_candidates(
        &self,
        rp_id: &str,
        idp_id: &str,
        idp_subject: &str,
        keys: &[String],
        limit: usize,
    ) -> Result<LinkOrCandidates, StoreError> {
        // Without keys, no candidate: the link alone (an empty `IN ()` list is not SQL).
        if keys.is_empty() {
            let link = self.record_link(rp_id, idp_id, idp_subject).await?;
            return Ok(link.map_or(
                LinkOrCandidates::Candidates(Vec::new()),
                LinkOrCandidates::Linked,
            ));
        }
        let wanted = limit.saturating_add(1);
        let sql_limit = i64::try_from(wanted).unwrap_or(i64::MAX);
        let found = with_conn!(self, |conn, q| {
            let mut rows = Vec::new();
            for chunk in keys.chunks(KEYS_PER_STATEMENT) {
                let chunk_rows = q::link_or_candidate_rows(
                    &mut conn,
                    rp_id,
                    idp_id,
                    idp_subject,
                    chunk,
                    sql_limit,
                )
                .await?;
                rows.extend(chunk_rows);
                // A link row means the statement returned no candidates: done.
                if rows.iter().any(|(_, dataset)| dataset.is_none()) {
                    break;
                }
            }
            rows
        });
        let mut rows = Vec::with_capacity(found.len());
        for (record_id, dataset) in found {
            let Some(json) = dataset else {
                return Ok(LinkOrCandidates::Linked(RecordId(record_id)));
            };
            rows.push((record_id, json));
        }
        // In `record_id` order, as `candidates_by_blocking_keys` gives them (a union's
        // order is not guaranteed; the engine's decisions do not depend on it).
        let candidates = first_by_record_id(rows, wanted)
            .into_iter()
            .map(|(record_id, json)| {
                let dataset = decode_dataset(rp_id, &record_id, &json)?;
                Ok(DepartmentRecord {
                    record_id: RecordId(record_id),
                    dataset,
                })
            })
            .collect::<Result<_, StoreError>>()?;
        Ok(LinkOrCandidates::Candidates(candidates))
    }

    /// Remembers that this IdP subject matched `record` at this RP, replacing
    /// any earlier link (and its `created_at`) for the same `(rp, idp, subject)`.
    pub async fn save_record_link(
        &self,
        rp_id: &str,
        idp_id: &str,
        idp_subject: &str,
        record: &RecordId,
    ) -> Result<(), StoreError> {
        non_empty("rp_id", rp_id)?;
        non_empty("idp_id", idp_id)?;
        non_empty("idp_subject", idp_subject)?;
        non_empty("record_id", &record.0)?;
        let row = LinkRow {
            rp_id,
            idp_id,
            idp_subject,
            record_id: &record.0,
            created_at: unix_now(),
        };
        with_conn!(self, |conn, q| Ok(
            q::upsert_record_link(&mut conn, &row).await?
        ))
    }

    /// Runs one SQL statement as given, on a pooled connection, and returns
    /// the rows it affected: for tests that tamper with the database behind
    /// the store's back (feature `test-support`; never used by the hub).
    #[cfg(feature = "test-support")]
    pub async fn execute_raw(&self, sql: &str) -> Result<usize, StoreError> {
        with_conn!(self, |conn, q| Ok(q::execute_raw(&mut conn, sql).await?))
    }

    /// How many department records the RP has (import reports, health pages).
    pub async fn count_records(&self, rp_id: &str) -> Result<i64, StoreError> {
        with_conn!(
            self,
            |conn, q| Ok(q::count_records(&mut conn, rp_id).await?)
        )
    }
}

/// Blocking keys per candidate statement. SQLite binds each key of the `IN` list as a
/// variable of its own and refuses a statement with more than 32,766 of them, so a query
/// with more keys (a dataset with hundreds of surnames and postcodes) is looked up in
/// chunks whose results are merged. PostgreSQL binds the list as one array
/// (`= ANY($n)`), so its statement keeps its one prepared shape whatever the chunk; the
/// same chunks there keep one code path and bound each array.
const KEYS_PER_STATEMENT: usize = 10_000;

/// The first `wanted` rows by `record_id`, each record once: the merge of per-chunk
/// results, each of which is already its chunk's first `wanted` (so the merge's first
/// `wanted` are the same as one statement over all keys would give).
fn first_by_record_id<T>(mut rows: Vec<(String, T)>, wanted: usize) -> Vec<(String, T)> {
    rows.sort_by(|a, b| a.0.cmp(&b.0));
    rows.dedup_by(|a, b| a.0 == b.0);
    rows.truncate(wanted);
    rows
}

/// A batch of department records encoded for storage with their blocking
/// keys ([`PreparedRecords::new`]), ready for [`Database::import_prepared`].
#[derive(Debug)]
pub struct PreparedRecords {
    rows: Vec<KeyedRecord>,
    unkeyed: usize,
}

impl PreparedRecords {
    /// Encodes each record's dataset and derives its
    /// [`matching::record_blocking_keys`]. When `records` repeats a
    /// `record_id`, the last occurrence wins. [`StoreError::InvalidInput`] for
    /// a blank `record_id` (naming its index, not the record).
    pub fn new(records: &[DepartmentRecord]) -> Result<Self, StoreError> {
        let mut seen = HashSet::with_capacity(records.len());
        let mut rows = Vec::with_capacity(records.len());
        // Walk backwards so the last occurrence of a record_id is the one kept.
        for (index, record) in records.iter().enumerate().rev() {
            let record_id = record.record_id.0.as_str();
            if record_id.trim().is_empty() {
                return Err(StoreError::InvalidInput(format!(
                    "record at index {index} has an empty record_id"
                )));
            }
            if !seen.insert(record_id) {
                continue;
            }
            let dataset = serde_json::to_string(&record.dataset).map_err(|e| {
                StoreError::InvalidInput(format!("record {record_id} cannot be encoded: {e}"))
            })?;
            rows.push(KeyedRecord {
                record_id: record_id.to_owned(),
                dataset,
                keys: matching::record_blocking_keys(&record.dataset),
            });
        }
        rows.reverse();
        let unkeyed = rows.iter().filter(|r| r.keys.is_empty()).count();
        Ok(Self { rows, unkeyed })
    }

    /// Distinct records in the batch.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// True when the batch holds no record.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }
}

/// Records keyed per backfill transaction: big enough that a million
/// pre-existing records take a few hundred transactions, small enough that
/// each holds the write lock only briefly.
const BACKFILL_BATCH: i64 = 5_000;

/// Decodes a stored dataset; [`StoreError::Corrupt`] (naming the record, not
/// quoting it) when it does not.
fn decode_dataset(rp_id: &str, record_id: &str, json: &str) -> Result<MatchingDataset, StoreError> {
    serde_json::from_str::<MatchingDataset>(json).map_err(|e| {
        StoreError::Corrupt(format!(
            "dataset of record {record_id} (rp {rp_id}) does not decode: {:?} error at column {}",
            e.classify(),
            e.column()
        ))
    })
}

/// The backfill's `DeriveKeys` (`queries::records`): the keys import would have written.
fn derive_stored_keys(rows: &[UnkeyedRow]) -> Result<Vec<Vec<String>>, StoreError> {
    rows.iter()
        .map(|(rp_id, record_id, json)| {
            decode_dataset(rp_id, record_id, json).map(|d| matching::record_blocking_keys(&d))
        })
        .collect()
}

/// The import's `StoredKeys` (`queries::records`): the keys a stored record was written
/// under, derived again from its dataset.
fn stored_keys(json: &str) -> Option<Vec<String>> {
    serde_json::from_str::<MatchingDataset>(json)
        .ok()
        .map(|d| matching::record_blocking_keys(&d))
}

/// A pool of SQLite connections to `conn_str` (a path or `:memory:`).
async fn open_sqlite(
    conn_str: &str,
    memory: bool,
    options: &DatabaseOptions,
) -> Result<Pool<SqliteConn>, StoreError> {
    // Open the first connection ourselves: the pool only reports connection
    // failures to its error sink and makes callers wait out the timeout, but a
    // misconfigured hub should stop at start-up with SQLite's own message.
    let first = establish_sqlite(conn_str)
        .await
        .map_err(|e| StoreError::Unavailable(format!("cannot open the database: {e}")))?;

    let mut config = ManagerConfig::<SqliteConn>::default();
    config.custom_setup = Box::new(|url| Box::pin(establish_sqlite(url)));
    // SQLite is a local file: a checkout needs no round trip to prove it is alive.
    config.recycling_method = RecyclingMethod::Fast;
    let manager = AsyncDieselConnectionManager::<SqliteConn>::new_with_config(conn_str, config);

    let builder = Pool::builder()
        .connection_timeout(options.acquire_timeout)
        .error_sink(Box::new(TracingErrorSink));
    let builder = if memory {
        // The data lives in the one connection: never close it.
        builder.max_size(1).idle_timeout(None).max_lifetime(None)
    } else {
        builder.max_size(options.max_connections)
    };
    let pool = builder
        .build(manager)
        .await
        .map_err(|e| pool_error(RunError::User(e)))?;
    // Only fails when the pool is already full (it starts empty): then the
    // connection is simply closed.
    drop(first);
    Ok(pool)
}

async fn open_postgres(url: &PgUrl, options: &DatabaseOptions) -> Result<ThreadPools, StoreError> {
    // As for SQLite: connect once ourselves so a wrong URL or a down server
    // stops start-up at once with the driver's message. The connection then
    // serves this thread.
    let first = connect_postgres(url, options.acquire_timeout).await?;
    let pools = ThreadPools::new(url.clone(), options);
    let _ = pools.local().add(first);
    Ok(pools)
}

/// One PostgreSQL connection, within `timeout` (tokio-postgres itself would
/// wait for the operating system's TCP timeout on an unresponsive host).
async fn connect_postgres(url: &PgUrl, timeout: Duration) -> Result<PgConn, StoreError> {
    match tokio::time::timeout(timeout, PgConn::establish(&url.0)).await {
        Ok(Ok(conn)) => Ok(conn),
        Ok(Err(e)) => Err(StoreError::Unavailable(format!(
            "cannot connect to PostgreSQL at {url:?}: {e}"
        ))),
        Err(_) => Err(StoreError::Unavailable(format!(
            "timed out after {timeout:?} connecting to PostgreSQL at {url:?}"
        ))),
    }
}

/// Opens one SQLite connection and applies the per-connection pragmas.
async fn establish_sqlite(url: &str) -> Result<SqliteConn, ConnectionError> {
    let mut conn = SqliteConn::establish(url).await?;
    conn.batch_execute(CONNECTION_PRAGMAS)
        .await
        .map_err(ConnectionError::CouldntSetupConfiguration)?;
    Ok(conn)
}

/// Applied migration versions, or the harness's error message.
type MigrationOutcome = Result<Vec<String>, String>;

/// Runs the embedded migrations on a synchronous connection (any backend).
fn run_migrations<C>(conn: &mut C) -> MigrationOutcome
where
    C: MigrationHarness<C::Backend> + diesel::Connection,
{
    conn.run_pending_migrations(MIGRATIONS)
        .map(|applied| applied.iter().map(ToString::to_string).collect())
        .map_err(|e| e.to_string())
}

/// Migrates PostgreSQL on a dedicated connection: its session-level advisory
/// lock is released when the connection closes, whatever happens, so it is
/// never handed back to the pool still locked.
async fn migrate_postgres(url: &PgUrl, timeout: Duration) -> Result<MigrationOutcome, StoreError> {
    let mut conn = connect_postgres(url, timeout).await?;
    queries::pg::lock_migrations(&mut conn).await?;
    tokio::task::spawn_blocking(move || {
        // Inside `spawn_blocking` the wrapper drives the async connection with
        // the runtime's handle; outside it, it would block a runtime thread.
        let mut conn = AsyncConnectionWrapper::<PgConn>::from(conn);
        run_migrations(&mut conn)
    })
    .await
    .map_err(|e| StoreError::Migration(format!("migration task failed: {e}")))
}

/// The versions of the migrations built into this hub, oldest first.
fn known_migrations() -> Result<Vec<String>, StoreError> {
    let migrations = MigrationSource::<diesel::sqlite::Sqlite>::migrations(&MIGRATIONS)
        .map_err(|e| StoreError::Migration(e.to_string()))?;
    let mut versions: Vec<String> = migrations
        .iter()
        .map(|m| m.name().version().to_string())
        .collect();
    versions.sort();
    Ok(versions)
}

fn compare_schema(known: &[String], applied: &[String]) -> SchemaStatus {
    let known_set: BTreeSet<&String> = known.iter().collect();
    let applied_set: BTreeSet<&String> = applied.iter().collect();
    let newer: Vec<String> = applied_set
        .difference(&known_set)
        .map(|v| (*v).clone())
        .collect();
    if !newer.is_empty() {
        return SchemaStatus::Newer(newer);
    }
    let pending: Vec<String> = known_set
        .difference(&applied_set)
        .map(|v| (*v).clone())
        .collect();
    if pending.is_empty() {
        SchemaStatus::UpToDate
    } else {
        SchemaStatus::Pending(pending)
    }
}

/// Every pool failure means "no connection right now".
pub(crate) fn pool_error(e: RunError) -> StoreError {
    match e {
        RunError::User(PoolError::ConnectionError(e)) => StoreError::Unavailable(e.to_string()),
        RunError::User(PoolError::QueryError(e)) => StoreError::Unavailable(e.to_string()),
        RunError::TimedOut => {
            StoreError::Unavailable("timed out waiting for a database connection".into())
        }
    }
}

fn parse_url(url: &str) -> Result<Location, StoreError> {
    let url = url.trim();
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        // Checked here so a typo is a configuration error, not "unavailable".
        url::Url::parse(url)
            .map_err(|e| StoreError::InvalidUrl(format!("not a valid PostgreSQL url ({e})")))?;
        return Ok(Location::Postgres(PgUrl(url.to_owned())));
    }
    let path = if let Some(rest) = url.strip_prefix("sqlite://") {
        rest
    } else if let Some(rest) = url.strip_prefix("sqlite:") {
        rest
    } else if let Some((scheme, _)) = url.split_once("://") {
        return Err(StoreError::InvalidUrl(format!(
            "unsupported scheme {scheme:?}: use sqlite://path or postgres://user@host/database"
        )));
    } else {
        url
    };
    match path {
        "" => Err(StoreError::InvalidUrl("no database path given".into())),
        ":memory:" => Ok(Location::Memory),
        path => Ok(Location::File(Path::new(path).to_path_buf())),
    }
}

fn non_empty(what: &str, value: &str) -> Result<(), StoreError> {
    if value.trim().is_empty() {
        Err(StoreError::InvalidInput(format!(
            "{what} must not be empty"
        )))
    } else {
        Ok(())
    }
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Sends errors the pool hits in the background (e.g. replenishing
/// connections) to the log instead of dropping them.
#[derive(Debug, Clone, Copy)]
struct TracingErrorSink;

impl bb8::ErrorSink<PoolError> for TracingErrorSink {
    fn sink(&self, error: PoolError) {
        tracing::warn!(%error, "database pool error");
    }

    fn boxed_clone(&self) -> Box<dyn bb8::ErrorSink<PoolError>> {
        Box::new(*self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    impl Database {
        /// The SQLite pool, for tests that hold connections directly.
        fn sqlite_pool(&self) -> &Pool<SqliteConn> {
            match &self.pools {
                Pools::Sqlite(pool) => pool,
                Pools::Postgres { .. } => panic!("not a SQLite database"),
            }
        }
    }

    #[test]
    fn parses_urls() {
        assert_eq!(
            parse_url("sqlite://data/hub.db").unwrap(),
            Location::File(PathBuf::from("data/hub.db"))
        );
        assert_eq!(
            parse_url("sqlite:///var/lib/hub.db").unwrap(),
            Location::File(PathBuf::from("/var/lib/hub.db"))
        );
        assert_eq!(
            parse_url("hub.db").unwrap(),
            Location::File(PathBuf::from("hub.db"))
        );
        assert_eq!(parse_url("sqlite::memory:").unwrap(), Location::Memory);
        assert_eq!(
            parse_url("postgres://x/y").unwrap(),
            Location::Postgres(PgUrl("postgres://x/y".into()))
        );
        assert_eq!(
            parse_url(" postgresql://u:p@h:5433/db ").unwrap(),
            Location::Postgres(PgUrl("postgresql://u:p@h:5433/db".into()))
        );
        for bad in ["sqlite://", "mysql://x/y", "postgres://[bad/db"] {
            assert!(
                matches!(parse_url(bad), Err(StoreError::InvalidUrl(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn postgres_url_debug_hides_the_password() {
        let shown = format!(
            "{:?}",
            parse_url("postgres://hub:s3cret@db:5432/hub").unwrap()
        );
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(shown.contains("db:5432/hub"), "{shown}");
    }

    #[test]
    fn schema_comparison() {
        let v = |s: &[&str]| s.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        let known = v(&["1", "2"]);
        assert_eq!(
            compare_schema(&known, &v(&["1", "2"])),
            SchemaStatus::UpToDate
        );
        assert_eq!(
            compare_schema(&known, &[]),
            SchemaStatus::Pending(v(&["1", "2"]))
        );
        assert_eq!(
            compare_schema(&known, &v(&["1"])),
            SchemaStatus::Pending(v(&["2"]))
        );
        assert_eq!(
            compare_schema(&known, &v(&["1", "3"])),
            SchemaStatus::Newer(v(&["3"])),
            "unknown versions win over pending ones"
        );
    }

    #[test]
    fn known_migrations_are_embedded() {
        let known = known_migrations().unwrap();
        assert!(!known.is_empty());
        assert!(known.windows(2).all(|w| w[0] < w[1]), "{known:?}");
    }

    #[tokio::test]
    async fn exhausted_pool_is_unavailable() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("p.db").display());
        let options = DatabaseOptions {
            max_connections: 1,
            acquire_timeout: Duration::from_millis(100),
            ..DatabaseOptions::default()
        };
        let db = Database::open_with(&url, options).await.unwrap();
        db.migrate().await.unwrap();
        let held = db.sqlite_pool().get_owned().await.unwrap();
        assert_eq!(
            db.pool_state(),
            PoolState {
                connections: 1,
                idle: 0
            }
        );
        let err = db.count_records("rp").await.unwrap_err();
        assert!(err.is_unavailable(), "{err:?}");
        drop(held);
        assert_eq!(db.count_records("rp").await.unwrap(), 0);
        assert_eq!(db.pool_state().idle, 1);
    }

    #[tokio::test]
    async fn every_connection_gets_the_pragmas() {
        use diesel::dsl::sql;
        use diesel::sql_types::{BigInt, Text};
        use diesel_async::RunQueryDsl;

        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("p.db").display());
        let db = Database::open(&url).await.unwrap();
        // Hold several connections at once so more than one gets set up.
        let mut conns = Vec::new();
        for _ in 0..3 {
            conns.push(db.sqlite_pool().get_owned().await.unwrap());
        }
        for conn in &mut conns {
            let conn = &mut **conn;
            let fk: i64 = diesel::select(sql::<BigInt>(
                "(SELECT foreign_keys FROM pragma_foreign_keys())",
            ))
            .get_result(conn)
            .await
            .unwrap();
            let busy: i64 =
                diesel::select(sql::<BigInt>("(SELECT timeout FROM pragma_busy_timeout())"))
                    .get_result(conn)
                    .await
                    .unwrap();
            let mode: String = diesel::select(sql::<Text>(
                "(SELECT journal_mode FROM pragma_journal_mode())",
            ))
            .get_result(conn)
            .await
            .unwrap();
            assert_eq!((fk, busy, mode.as_str()), (1, 5000, "wal"));
        }
    }
}
