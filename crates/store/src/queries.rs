//! Every SQL statement the store issues, in one place.
//!
//! The statements both backends share are written once, with diesel's query
//! builder, in [`portable_queries!`], and instantiated for each connection
//! type: [`sqlite`] (`SyncConnectionWrapper<SqliteConnection>`) and [`pg`]
//! (`AsyncPgConnection`). Only what genuinely differs is written per backend:
//! the bulk upsert (SQLite cannot combine a multi-row INSERT with ON CONFLICT in
//! diesel; PostgreSQL can), the catalog lookup for diesel's migration table, and
//! PostgreSQL's advisory lock and `CREATE DATABASE` (test support).

use diesel::prelude::*;
use diesel::upsert::excluded;

use crate::schema::{department_records, record_links};

/// A department record as stored: `dataset` is the MatchingDataset JSON.
#[derive(Insertable)]
#[diesel(table_name = department_records)]
pub(crate) struct RecordRow {
    pub(crate) rp_id: String,
    pub(crate) record_id: String,
    pub(crate) date_of_birth: Option<String>,
    pub(crate) dataset: String,
}

#[derive(Insertable)]
#[diesel(table_name = record_links)]
pub(crate) struct LinkRow<'a> {
    pub(crate) rp_id: &'a str,
    pub(crate) idp_id: &'a str,
    pub(crate) idp_subject: &'a str,
    pub(crate) record_id: &'a str,
    pub(crate) created_at: i64,
}

/// The queries that are the same on every backend, for the connection type `$conn`.
///
/// A macro rather than generic functions: diesel's trait bounds for "any async
/// connection that can run this statement" are long and brittle, while the
/// statement text here is identical for both backends.
macro_rules! portable_queries {
    ($conn:ty) => {
        pub(crate) async fn ping(conn: &mut $conn) -> QueryResult<()> {
            diesel::select(1_i32.into_sql::<diesel::sql_types::Integer>())
                .get_result::<i32>(conn)
                .await
                .map(|_| ())
        }

        /// `(record_id, dataset JSON)` of the RP's records with this normalised birth date.
        pub(crate) async fn records_by_date_of_birth(
            conn: &mut $conn,
            rp: &str,
            dob: &str,
        ) -> QueryResult<Vec<(String, String)>> {
            use crate::schema::department_records::dsl as dr;
            dr::department_records
                .filter(dr::rp_id.eq(rp))
                .filter(dr::date_of_birth.eq(dob))
                .order(dr::record_id)
                .select((dr::record_id, dr::dataset))
                .load(conn)
                .await
        }

        pub(crate) async fn count_records(conn: &mut $conn, rp: &str) -> QueryResult<i64> {
            use crate::schema::department_records::dsl as dr;
            dr::department_records
                .filter(dr::rp_id.eq(rp))
                .count()
                .get_result(conn)
                .await
        }

        pub(crate) async fn record_link(
            conn: &mut $conn,
            rp: &str,
            idp: &str,
            subject: &str,
        ) -> QueryResult<Option<String>> {
            use crate::schema::record_links::dsl as rl;
            rl::record_links
                .filter(rl::rp_id.eq(rp))
                .filter(rl::idp_id.eq(idp))
                .filter(rl::idp_subject.eq(subject))
                .select(rl::record_id)
                .first(conn)
                .await
                .optional()
        }

        pub(crate) async fn upsert_record_link(
            conn: &mut $conn,
            row: &LinkRow<'_>,
        ) -> QueryResult<()> {
            use crate::schema::record_links::dsl as rl;
            diesel::insert_into(rl::record_links)
                .values(row)
                .on_conflict((rl::rp_id, rl::idp_id, rl::idp_subject))
                .do_update()
                .set((
                    rl::record_id.eq(excluded(rl::record_id)),
                    rl::created_at.eq(excluded(rl::created_at)),
                ))
                .execute(conn)
                .await
                .map(|_| ())
        }

        /// Versions recorded in diesel's migration table; the caller checks
        /// that the table exists first ([`migrations_table_exists`]).
        pub(crate) async fn applied_migrations(conn: &mut $conn) -> QueryResult<Vec<String>> {
            use crate::schema::__diesel_schema_migrations::dsl as m;
            m::__diesel_schema_migrations
                .select(m::version)
                .order(m::version)
                .load(conn)
                .await
        }
    };
}

/// SQLite, through diesel-async's `SyncConnectionWrapper`.
pub(crate) mod sqlite {
    use super::*;
    use diesel::dsl::sql;
    use diesel::sql_types::Bool;
    use diesel_async::sync_connection_wrapper::SyncConnectionWrapper;
    use diesel_async::RunQueryDsl;

    /// The async connection type the SQLite pool hands out.
    pub(crate) type Conn = SyncConnectionWrapper<diesel::SqliteConnection>;

    portable_queries!(Conn);

    /// Upserts all rows in one `BEGIN IMMEDIATE` transaction.
    ///
    /// Diesel cannot combine a multi-row INSERT with ON CONFLICT on SQLite, so this
    /// runs one prepared (and cached) single-row upsert per record, all inside a
    /// single blocking task on the connection: no per-row hop between threads.
    pub(crate) async fn upsert_records(
        conn: &mut Conn,
        rows: Vec<RecordRow>,
    ) -> QueryResult<usize> {
        use department_records::dsl as dr;
        conn.spawn_blocking(move |c| {
            c.immediate_transaction(|c| {
                for row in &rows {
                    let statement = diesel::insert_into(dr::department_records)
                        .values(row)
                        .on_conflict((dr::rp_id, dr::record_id))
                        .do_update()
                        .set((
                            dr::date_of_birth.eq(excluded(dr::date_of_birth)),
                            dr::dataset.eq(excluded(dr::dataset)),
                        ));
                    diesel::RunQueryDsl::execute(statement, c)?;
                }
                Ok(rows.len())
            })
        })
        .await
    }

    /// Whether diesel's migration table exists yet (it does not before the
    /// first `migrate`). Read from the catalog so a status check never creates it.
    pub(crate) async fn migrations_table_exists(conn: &mut Conn) -> QueryResult<bool> {
        diesel::select(sql::<Bool>(
            "EXISTS (SELECT 1 FROM sqlite_master \
             WHERE type = 'table' AND name = '__diesel_schema_migrations')",
        ))
        .get_result(conn)
        .await
    }
}

/// PostgreSQL, through diesel-async's pure-Rust `AsyncPgConnection` (tokio-postgres).
pub(crate) mod pg {
    use super::*;
    use diesel::dsl::sql;
    use diesel::sql_types::Bool;
    use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};

    /// The async connection type the PostgreSQL pool hands out.
    pub(crate) type Conn = AsyncPgConnection;

    portable_queries!(Conn);

    /// Rows per INSERT: 4 bind parameters each, far below PostgreSQL's 65,535
    /// per statement, and big enough that a large import is few round trips.
    const UPSERT_BATCH: usize = 1000;

    /// Upserts all rows in one transaction, as multi-row `INSERT ... ON CONFLICT
    /// DO UPDATE` statements. The caller has removed duplicate keys (PostgreSQL
    /// refuses to update the same row twice in one statement).
    pub(crate) async fn upsert_records(
        conn: &mut Conn,
        rows: Vec<RecordRow>,
    ) -> QueryResult<usize> {
        use department_records::dsl as dr;
        conn.transaction(async move |c| {
            for batch in rows.chunks(UPSERT_BATCH) {
                diesel::insert_into(dr::department_records)
                    .values(batch)
                    .on_conflict((dr::rp_id, dr::record_id))
                    .do_update()
                    .set((
                        dr::date_of_birth.eq(excluded(dr::date_of_birth)),
                        dr::dataset.eq(excluded(dr::dataset)),
                    ))
                    .execute(c)
                    .await?;
            }
            Ok(rows.len())
        })
        .await
    }

    /// Whether diesel's migration table exists yet (resolved through
    /// `search_path`, as diesel creates it). Never creates it.
    pub(crate) async fn migrations_table_exists(conn: &mut Conn) -> QueryResult<bool> {
        diesel::select(sql::<Bool>(
            "to_regclass('__diesel_schema_migrations') IS NOT NULL",
        ))
        .get_result(conn)
        .await
    }

    /// Key of the session-level advisory lock held while migrating, so that
    /// several hub instances running `hub migrate` at once apply each
    /// migration exactly once (the others wait, then find nothing pending).
    const MIGRATION_LOCK_KEY: i64 = 0x6875_625f_6d69_6772; // "hub_migr"

    /// Waits for the migration lock; released when the connection closes.
    pub(crate) async fn lock_migrations(conn: &mut Conn) -> QueryResult<()> {
        diesel::sql_query("SELECT pg_advisory_lock($1)")
            .bind::<diesel::sql_types::BigInt, _>(MIGRATION_LOCK_KEY)
            .execute(conn)
            .await
            .map(|_| ())
    }

    /// `CREATE DATABASE` for [`crate::test_support`]. `name` must be a plain
    /// identifier generated by the caller (it cannot be a bind parameter).
    #[cfg(feature = "test-support")]
    pub(crate) async fn create_database(conn: &mut Conn, name: &str) -> QueryResult<()> {
        debug_assert!(name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'));
        diesel::sql_query(format!("CREATE DATABASE \"{name}\""))
            .execute(conn)
            .await
            .map(|_| ())
    }

    /// `DROP DATABASE ... WITH (FORCE)` (PostgreSQL 13+) for [`crate::test_support`],
    /// closing any connections still open to it.
    #[cfg(feature = "test-support")]
    pub(crate) async fn drop_database(conn: &mut Conn, name: &str) -> QueryResult<()> {
        debug_assert!(name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'));
        diesel::sql_query(format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
            .execute(conn)
            .await
            .map(|_| ())
    }
}
