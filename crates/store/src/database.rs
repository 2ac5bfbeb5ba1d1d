//! The relational store: department records and record links, on SQLite through
//! a bb8 pool of diesel-async connections.

use std::collections::HashSet;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use diesel::ConnectionError;
use diesel_async::pooled_connection::bb8::{Pool, PooledConnection, RunError};
use diesel_async::pooled_connection::{
    AsyncDieselConnectionManager, ManagerConfig, PoolError, RecyclingMethod,
};
use diesel_async::{AsyncConnection, SimpleAsyncConnection};
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};
use matching::{DepartmentRecord, MatchingDataset, RecordId};

use crate::error::StoreError;
use crate::queries::{self, Conn, LinkRow, RecordRow};

/// The schema, compiled into the binary so an operator never needs the SQL files.
const MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations");

/// Run on every new connection. `busy_timeout` first so that switching to WAL
/// waits for other connections instead of failing; WAL lets readers proceed
/// while an import writes; foreign keys are off by default in SQLite.
const CONNECTION_PRAGMAS: &str =
    "PRAGMA busy_timeout = 5000; PRAGMA journal_mode = WAL; PRAGMA foreign_keys = ON;";

/// Pool sizing. The defaults suit one hub instance on a local SQLite file.
#[derive(Debug, Clone)]
pub struct DatabaseOptions {
    /// Most connections open at once (SQLite still allows one writer at a time).
    pub max_connections: u32,
    /// How long a request waits for a free connection before failing with
    /// [`StoreError::Unavailable`], which the web layer turns into a 503.
    pub acquire_timeout: Duration,
}

impl Default for DatabaseOptions {
    fn default() -> Self {
        Self {
            max_connections: 8,
            acquire_timeout: Duration::from_secs(5),
        }
    }
}

/// Handle to the hub's database; cheap to clone (clones share one pool).
#[derive(Clone)]
pub struct Database {
    pool: Pool<Conn>,
    location: Location,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Location {
    File(PathBuf),
    /// A private in-memory database (tests): the pool holds exactly one
    /// connection and never recycles it, since the data lives in it.
    Memory,
}

impl fmt::Debug for Database {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.pool.state();
        f.debug_struct("Database")
            .field("backend", &"sqlite")
            .field("location", &self.location)
            .field("connections", &state.connections)
            .field("idle_connections", &state.idle_connections)
            .finish()
    }
}

impl Database {
    /// Opens (creating if needed) the database at `url` with default pool options.
    ///
    /// Accepts `sqlite://path/to/hub.db`, `sqlite:path`, a bare path, or
    /// `sqlite::memory:` for a throwaway in-memory database. The parent
    /// directory is created. Fails fast if the file cannot be opened, so a
    /// misconfigured hub does not start. Does not migrate: call [`Database::migrate`].
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        Self::open_with(url, DatabaseOptions::default()).await
    }

    /// [`Database::open`] with explicit pool options.
    pub async fn open_with(url: &str, options: DatabaseOptions) -> Result<Self, StoreError> {
        let location = parse_url(url)?;
        let conn_str = match &location {
            Location::File(path) => {
                if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                    tokio::fs::create_dir_all(parent).await?;
                }
                path.to_str()
                    .ok_or_else(|| {
                        StoreError::InvalidUrl("database path is not valid UTF-8".into())
                    })?
                    .to_owned()
            }
            Location::Memory => ":memory:".to_owned(),
        };
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

        // Open the first connection ourselves: the pool only reports connection
        // failures to its error sink and makes callers wait out the timeout, but a
        // misconfigured hub should stop at start-up with SQLite's own message.
        let first = establish(&conn_str)
            .await
            .map_err(|e| StoreError::Unavailable(format!("cannot open the database: {e}")))?;

        let mut config = ManagerConfig::<Conn>::default();
        config.custom_setup = Box::new(|url| Box::pin(establish(url)));
        // SQLite is a local file: a checkout needs no round trip to prove it is alive.
        config.recycling_method = RecyclingMethod::Fast;
        let manager = AsyncDieselConnectionManager::<Conn>::new_with_config(conn_str, config);

        let builder = Pool::builder()
            .connection_timeout(options.acquire_timeout)
            .error_sink(Box::new(TracingErrorSink));
        let builder = match location {
            Location::File(_) => builder.max_size(options.max_connections),
            // The data lives in the one connection: never close it.
            Location::Memory => builder.max_size(1).idle_timeout(None).max_lifetime(None),
        };
        let pool = builder
            .build(manager)
            .await
            .map_err(|e| pool_error(RunError::User(e)))?;
        // Only fails when the pool is already full (it starts empty): then the
        // connection is simply closed.
        let _ = pool.add(first);
        let db = Database { pool, location };
        db.ping().await?;
        Ok(db)
    }

    /// Applies any pending embedded migrations; a no-op when the schema is current.
    ///
    /// Runs on one pooled connection inside a blocking task (diesel's migration
    /// harness is synchronous). Safe to call at every start-up.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        let mut conn = self.conn().await?;
        let outcome = conn
            .spawn_blocking(|c| {
                Ok(c.run_pending_migrations(MIGRATIONS)
                    .map(|applied| applied.iter().map(ToString::to_string).collect::<Vec<_>>())
                    .map_err(|e| e.to_string()))
            })
            .await
            .map_err(StoreError::from)?;
        match outcome {
            Ok(applied) if applied.is_empty() => {
                tracing::debug!("database schema is up to date");
                Ok(())
            }
            Ok(applied) => {
                tracing::info!(migrations = ?applied, "applied database migrations");
                Ok(())
            }
            Err(message) if crate::error::is_lock_timeout(&message) => {
                Err(StoreError::Unavailable(message))
            }
            Err(message) => Err(StoreError::Migration(message)),
        }
    }

    /// Checks a connection can be obtained and answers a trivial query (health checks).
    pub async fn ping(&self) -> Result<(), StoreError> {
        let mut conn = self.conn().await?;
        Ok(queries::ping(&mut conn).await?)
    }

    /// Inserts or replaces the RP's department records, all in one transaction
    /// (an import either lands entirely or not at all).
    ///
    /// A record with an existing `(rp_id, record_id)` is replaced. When a batch
    /// repeats a `record_id` the last occurrence wins. Returns the number of
    /// distinct records written. The birth-date blocking key is computed with
    /// [`matching::blocking_date_of_birth`]; records without a usable date are
    /// stored but never returned as candidates. A huge batch holds SQLite's
    /// write lock for its whole duration: callers importing millions of rows
    /// should split them into batches of some thousands.
    pub async fn import_records(
        &self,
        rp_id: &str,
        records: &[DepartmentRecord],
    ) -> Result<usize, StoreError> {
        non_empty("rp_id", rp_id)?;
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
            rows.push(RecordRow {
                rp_id: rp_id.to_owned(),
                record_id: record_id.to_owned(),
                date_of_birth: matching::blocking_date_of_birth(&record.dataset),
                dataset,
            });
        }
        rows.reverse();
        let mut conn = self.conn().await?;
        let undated = rows.iter().filter(|r| r.date_of_birth.is_none()).count();
        let written = queries::upsert_records(&mut conn, rows).await?;
        tracing::info!(rp_id, records = written, "imported department records");
        if undated > 0 {
            tracing::warn!(
                rp_id,
                records = undated,
                "imported records without a valid YYYY-MM-DD date of birth can never be matched"
            );
        }
        Ok(written)
    }

    /// The RP's records sharing this date of birth: the candidate set for
    /// matching cycles 1 and 3.
    ///
    /// `dob` is normalised the same way as at import, so any form
    /// [`matching::blocking_date_of_birth`] understands works; an unusable date
    /// yields no candidates. A stored record that no longer decodes fails the
    /// whole call ([`StoreError::Corrupt`]) rather than being skipped, because
    /// silently dropping a candidate could turn an ambiguity into a false match.
    pub async fn candidates_by_date_of_birth(
        &self,
        rp_id: &str,
        dob: &str,
    ) -> Result<Vec<DepartmentRecord>, StoreError> {
        let probe = MatchingDataset {
            date_of_birth: Some(dob.to_owned()),
            ..MatchingDataset::default()
        };
        let Some(dob) = matching::blocking_date_of_birth(&probe) else {
            return Ok(Vec::new());
        };
        let mut conn = self.conn().await?;
        let rows = queries::records_by_date_of_birth(&mut conn, rp_id, &dob).await?;
        drop(conn);
        rows.into_iter()
            .map(|(record_id, json)| {
                let dataset = serde_json::from_str::<MatchingDataset>(&json).map_err(|e| {
                    StoreError::Corrupt(format!(
                        "dataset of record {record_id} (rp {rp_id}) does not decode: {:?} error at column {}",
                        e.classify(),
                        e.column()
                    ))
                })?;
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
        let mut conn = self.conn().await?;
        let found = queries::record_link(&mut conn, rp_id, idp_id, idp_subject).await?;
        Ok(found.map(RecordId))
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
        let mut conn = self.conn().await?;
        Ok(queries::upsert_record_link(&mut conn, &row).await?)
    }

    /// How many department records the RP has (import reports, health pages).
    pub async fn count_records(&self, rp_id: &str) -> Result<i64, StoreError> {
        let mut conn = self.conn().await?;
        Ok(queries::count_records(&mut conn, rp_id).await?)
    }

    async fn conn(&self) -> Result<PooledConnection<'_, Conn>, StoreError> {
        self.pool.get().await.map_err(pool_error)
    }
}

/// Opens one connection and applies the per-connection pragmas.
async fn establish(url: &str) -> Result<Conn, ConnectionError> {
    let mut conn = Conn::establish(url).await?;
    conn.batch_execute(CONNECTION_PRAGMAS)
        .await
        .map_err(ConnectionError::CouldntSetupConfiguration)?;
    Ok(conn)
}

/// Every pool failure means "no connection right now".
fn pool_error(e: RunError) -> StoreError {
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
    let path = if let Some(rest) = url.strip_prefix("sqlite://") {
        rest
    } else if let Some(rest) = url.strip_prefix("sqlite:") {
        rest
    } else if let Some((scheme, _)) = url.split_once("://") {
        return Err(StoreError::InvalidUrl(format!(
            "unsupported scheme {scheme:?}: this build stores data in SQLite (sqlite://path)"
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
        assert!(matches!(
            parse_url("postgres://x/y"),
            Err(StoreError::InvalidUrl(_))
        ));
        assert!(matches!(
            parse_url("sqlite://"),
            Err(StoreError::InvalidUrl(_))
        ));
    }

    #[tokio::test]
    async fn exhausted_pool_is_unavailable() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("p.db").display());
        let options = DatabaseOptions {
            max_connections: 1,
            acquire_timeout: Duration::from_millis(100),
        };
        let db = Database::open_with(&url, options).await.unwrap();
        db.migrate().await.unwrap();
        let held = db.pool.get_owned().await.unwrap();
        let err = db.count_records("rp").await.unwrap_err();
        assert!(err.is_unavailable(), "{err:?}");
        drop(held);
        assert_eq!(db.count_records("rp").await.unwrap(), 0);
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
            conns.push(db.pool.get_owned().await.unwrap());
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
