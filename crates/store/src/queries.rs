//! Every SQL statement the store issues, in one place.
//!
//! The statements both backends share are written once, with diesel's query
//! builder, in [`portable_queries!`], and instantiated for each connection
//! type: [`sqlite`] (`SyncConnectionWrapper<SqliteConnection>`) and [`pg`]
//! (`AsyncPgConnection`). Only what genuinely differs is written per backend:
//! the bulk import and the key backfill (SQLite: cached single-row statements
//! in one blocking task; PostgreSQL: a few statements of `UNNEST`ed array
//! binds), the catalog lookup for diesel's migration table, and
//! PostgreSQL's advisory lock and `CREATE DATABASE` (test support).

use diesel::prelude::*;
use diesel::upsert::excluded;

use crate::error::StoreError;
use crate::schema::{department_record_keys, department_records, record_links};

/// A department record as stored: `dataset` is the MatchingDataset JSON;
/// `keyed` is 1 when its blocking keys are written with it (always, on import).
#[derive(Insertable)]
#[diesel(table_name = department_records)]
pub(crate) struct RecordRow<'a> {
    pub(crate) rp_id: &'a str,
    pub(crate) record_id: &'a str,
    pub(crate) dataset: &'a str,
    pub(crate) keyed: i32,
}

/// One blocking key of one record.
#[derive(Insertable)]
#[diesel(table_name = department_record_keys)]
pub(crate) struct KeyRow<'a> {
    pub(crate) rp_id: &'a str,
    pub(crate) blocking_key: &'a str,
    pub(crate) record_id: &'a str,
}

/// A department record ready to write: its dataset as JSON and the keys it
/// is stored under (`matching::record_blocking_keys`).
#[derive(Debug)]
pub(crate) struct KeyedRecord {
    pub(crate) record_id: String,
    pub(crate) dataset: String,
    pub(crate) keys: Vec<String>,
}

/// A stored record whose keys the backfill derives: `(rp_id, record_id, dataset JSON)`.
pub(crate) type UnkeyedRow = (String, String, String);

/// Derives the keys of stored records for the backfill (decoding each
/// dataset; a record that does not decode fails the batch).
pub(crate) type DeriveKeys = fn(&[UnkeyedRow]) -> Result<Vec<Vec<String>>, StoreError>;

/// The keys a stored record (keyed, so under the current scheme) was written
/// under, from its dataset JSON; `None` when the dataset does not decode. A
/// re-import deletes exactly these, through the key table's primary key: the
/// table has no index by record, which would double the cost of every import.
pub(crate) type StoredKeys = fn(&str) -> Option<Vec<String>>;

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

        /// `(record_id, dataset JSON)` of the RP's records stored under any of
        /// `keys`, each once, by `record_id`, at most `limit`: one statement
        /// that walks the key index for the keys' entries and then looks each
        /// record up by primary key (see the EXPLAIN notes in `tests/database.rs`).
        pub(crate) async fn candidate_rows(
            conn: &mut $conn,
            rp: &str,
            keys: &[String],
            limit: i64,
        ) -> QueryResult<Vec<(String, String)>> {
            use crate::schema::department_record_keys::dsl as dk;
            use crate::schema::department_records::dsl as dr;
            let ids = dk::department_record_keys
                .filter(dk::rp_id.eq(rp))
                .filter(dk::blocking_key.eq_any(keys))
                .select(dk::record_id);
            dr::department_records
                .filter(dr::rp_id.eq(rp))
                .filter(dr::record_id.eq_any(ids))
                .order(dr::record_id)
                .limit(limit)
                .select((dr::record_id, dr::dataset))
                .load(conn)
                .await
        }

        /// The record this IdP subject is linked to at `rp` (cycle 0) and, only when
        /// there is none, the candidates of [`candidate_rows`] (cycle 1), at most
        /// `limit`, in one statement: `(record_id, None)` for the link,
        /// `(record_id, Some(dataset))` for each candidate. Written without SQL
        /// literals or positional ordering, so that PostgreSQL keeps it prepared
        /// (diesel caches only statements of a static shape).
        pub(crate) async fn link_or_candidate_rows(
            conn: &mut $conn,
            rp: &str,
            idp: &str,
            subject: &str,
            keys: &[String],
            limit: i64,
        ) -> QueryResult<Vec<(String, Option<String>)>> {
            use crate::schema::department_record_keys::dsl as dk;
            use crate::schema::department_records::dsl as dr;
            use crate::schema::record_links::dsl as rl;
            use diesel::dsl::{exists, not};
            use diesel::sql_types::{Nullable, Text};
            let link = || {
                rl::record_links
                    .filter(rl::rp_id.eq(rp))
                    .filter(rl::idp_id.eq(idp))
                    .filter(rl::idp_subject.eq(subject))
            };
            let ids = dk::department_record_keys
                .filter(dk::rp_id.eq(rp))
                .filter(dk::blocking_key.eq_any(keys))
                .select(dk::record_id);
            let candidates = dr::department_records
                .filter(dr::rp_id.eq(rp))
                .filter(dr::record_id.eq_any(ids))
                .filter(not(exists(link().select(rl::record_id))))
                .order(dr::record_id)
                .limit(limit)
                .select((dr::record_id, dr::dataset.nullable()));
            link()
                .select((rl::record_id, None::<String>.into_sql::<Nullable<Text>>()))
                .union_all(candidates)
                .load(conn)
                .await
        }

        /// Whether any record still waits for its blocking keys (one probe of
        /// the partial index `department_records_unkeyed`).
        pub(crate) async fn unkeyed_record_exists(conn: &mut $conn) -> QueryResult<bool> {
            use crate::schema::department_records::dsl as dr;
            diesel::select(diesel::dsl::exists(
                dr::department_records
                    .filter(dr::keyed.eq(0))
                    .select(dr::record_id),
            ))
            .get_result(conn)
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

        /// Runs one statement as given (test support: tampering behind the
        /// store's back); returns the number of rows it affected.
        #[cfg(feature = "test-support")]
        pub(crate) async fn execute_raw(conn: &mut $conn, sql: &str) -> QueryResult<usize> {
            diesel::sql_query(sql).execute(conn).await
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

    /// Writes the RP's records and their blocking keys in one `BEGIN
    /// IMMEDIATE` transaction, replacing any stored record with the same id
    /// and all of its old keys. The caller has removed duplicate record ids.
    ///
    /// Diesel cannot combine a multi-row INSERT with ON CONFLICT on SQLite, so
    /// this runs prepared (and cached) single-row statements, all inside one
    /// blocking task on the connection: no per-row hop between threads. Per
    /// record: unless it is stored with the same dataset (then it is left
    /// alone), delete the keys of the stored record it replaces (none for a
    /// new record) and replace it; then insert the new keys.
    pub(crate) async fn import_records(
        conn: &mut Conn,
        rp: String,
        rows: Vec<KeyedRecord>,
        stored_keys: StoredKeys,
    ) -> QueryResult<usize> {
        conn.spawn_blocking(move |c| {
            let saved = sync::bulk_write_pragmas(c)?;
            let written = c.immediate_transaction::<_, diesel::result::Error, _>(|c| {
                let mut changed = Vec::with_capacity(rows.len());
                for row in &rows {
                    if sync::replace_record(c, &rp, &row.record_id, &row.dataset, stored_keys)? {
                        changed.push(row);
                    }
                }
                // In index order: consecutive inserts land on the same pages
                // of the key index instead of all over it.
                let mut keys: Vec<(&str, &str)> = changed
                    .iter()
                    .flat_map(|r| r.keys.iter().map(|k| (k.as_str(), r.record_id.as_str())))
                    .collect();
                keys.sort_unstable();
                sync::insert_keys(c, &rp, &keys)?;
                Ok(rows.len())
            });
            // Restored whatever happened: the connection goes back to the pool.
            let restored = sync::restore_pragmas(c, saved);
            let written = written?;
            restored?;
            Ok(written)
        })
        .await
    }

    /// Derives and writes the keys of up to `batch` records that have none yet
    /// (imported before the keys table), in one `BEGIN IMMEDIATE` transaction;
    /// returns how many it keyed (0: nothing left). SQLite admits one writer,
    /// so no import can change those records in between.
    pub(crate) async fn backfill_keys(
        conn: &mut Conn,
        batch: i64,
        derive: DeriveKeys,
    ) -> Result<usize, StoreError> {
        conn.spawn_blocking(move |c| {
            Ok(c.immediate_transaction::<_, StoreError, _>(|c| {
                sync::backfill_keys(c, batch, derive)
            }))
        })
        .await?
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
    /// `RunQueryDsl`, hence a module of their own).
    mod sync {
        use super::super::*;
        use diesel::RunQueryDsl;

        /// What [`bulk_write_pragmas`] changed: `(synchronous, cache_size)`.
        pub(super) type SavedPragmas = (i64, i64);

        /// Page cache for an import transaction, in KiB (SQLite's negative
        /// `cache_size`): inserting keys touches pages all over the key
        /// index; when they do not fit, SQLite spills dirty pages to the WAL
        /// and writes them again and again within one transaction.
        const BULK_CACHE_KIB: i64 = 1 << 20;

        /// Settings for one bulk write on this connection: a page cache that
        /// holds the indexes being written, and `synchronous = NORMAL`, which
        /// in WAL mode still never corrupts the database but does not wait for
        /// the disk at each commit (a power cut may lose the last batches of
        /// an import, which re-running it restores). Returns the previous
        /// values for [`restore_pragmas`].
        pub(super) fn bulk_write_pragmas(
            c: &mut diesel::SqliteConnection,
        ) -> QueryResult<SavedPragmas> {
            use diesel::connection::SimpleConnection;
            use diesel::dsl::sql;
            use diesel::sql_types::BigInt;
            let synchronous: i64 = diesel::select(sql::<BigInt>(
                "(SELECT synchronous FROM pragma_synchronous())",
            ))
            .get_result(c)?;
            let cache_size: i64 = diesel::select(sql::<BigInt>(
                "(SELECT cache_size FROM pragma_cache_size())",
            ))
            .get_result(c)?;
            c.batch_execute(&format!(
                "PRAGMA synchronous = NORMAL; PRAGMA cache_size = {};",
                -BULK_CACHE_KIB
            ))?;
            Ok((synchronous, cache_size))
        }

        /// Puts back what [`bulk_write_pragmas`] changed.
        pub(super) fn restore_pragmas(
            c: &mut diesel::SqliteConnection,
            (synchronous, cache_size): SavedPragmas,
        ) -> QueryResult<()> {
            use diesel::connection::SimpleConnection;
            c.batch_execute(&format!(
                "PRAGMA synchronous = {synchronous}; PRAGMA cache_size = {cache_size};"
            ))
        }

        /// [`super::backfill_keys`] inside its transaction.
        pub(super) fn backfill_keys(
            c: &mut diesel::SqliteConnection,
            batch: i64,
            derive: DeriveKeys,
        ) -> Result<usize, StoreError> {
            use department_records::dsl as dr;
            let rows: Vec<UnkeyedRow> = dr::department_records
                .filter(dr::keyed.eq(0))
                .order((dr::rp_id, dr::record_id))
                .limit(batch)
                .select((dr::rp_id, dr::record_id, dr::dataset))
                .load(c)?;
            let keys = derive(&rows)?;
            for ((rp, record_id, _), keys) in rows.iter().zip(&keys) {
                write_keys(c, rp, record_id, keys)?;
                diesel::update(dr::department_records.find((rp, record_id)))
                    .set(dr::keyed.eq(1))
                    .execute(c)?;
            }
            Ok(rows.len())
        }

        /// Writes one record (marked keyed) in place of any stored with its
        /// id, and deletes the keys the stored record was written under (none
        /// for a new record): the caller inserts the new ones. False, writing
        /// nothing, when the record is stored (and keyed) with this dataset.
        pub(super) fn replace_record(
            c: &mut diesel::SqliteConnection,
            rp: &str,
            record_id: &str,
            dataset: &str,
            stored_keys: StoredKeys,
        ) -> QueryResult<bool> {
            use department_record_keys::dsl as dk;
            use department_records::dsl as dr;
            let stored: Option<String> = dr::department_records
                .find((rp, record_id))
                .filter(dr::keyed.eq(1))
                .select(dr::dataset)
                .first(c)
                .optional()?;
            if stored.as_deref() == Some(dataset) {
                return Ok(false);
            }
            if let Some(stored) = stored {
                match stored_keys(&stored) {
                    Some(keys) => {
                        for key in &keys {
                            diesel::delete(dk::department_record_keys.find((
                                rp,
                                key.as_str(),
                                record_id,
                            )))
                            .execute(c)?;
                        }
                    }
                    // A stored dataset that does not decode: its keys are
                    // unknown, so every key row is read to find them.
                    None => {
                        diesel::delete(
                            dk::department_record_keys
                                .filter(dk::rp_id.eq(rp))
                                .filter(dk::record_id.eq(record_id)),
                        )
                        .execute(c)?;
                    }
                }
            }
            let row = RecordRow {
                rp_id: rp,
                record_id,
                dataset,
                keyed: 1,
            };
            // `REPLACE` rather than an upsert: every column is rewritten
            // anyway, and diesel re-prepares any `ON CONFLICT DO UPDATE`
            // statement at each execution but caches this one.
            diesel::replace_into(dr::department_records)
                .values(&row)
                .execute(c)?;
            Ok(true)
        }

        /// Inserts `(blocking_key, record_id)` pairs of `rp`.
        pub(super) fn insert_keys(
            c: &mut diesel::SqliteConnection,
            rp: &str,
            keys: &[(&str, &str)],
        ) -> QueryResult<()> {
            use department_record_keys::dsl as dk;
            for &(blocking_key, record_id) in keys {
                diesel::insert_into(dk::department_record_keys)
                    .values(&KeyRow {
                        rp_id: rp,
                        blocking_key,
                        record_id,
                    })
                    .execute(c)?;
            }
            Ok(())
        }

        /// Writes the keys of one record that has none (`keyed = 0`: a change
        /// of key scheme deletes every key when it resets `keyed`).
        pub(super) fn write_keys(
            c: &mut diesel::SqliteConnection,
            rp: &str,
            record_id: &str,
            keys: &[String],
        ) -> QueryResult<()> {
            use department_record_keys::dsl as dk;
            for key in keys {
                diesel::insert_or_ignore_into(dk::department_record_keys)
                    .values(&KeyRow {
                        rp_id: rp,
                        blocking_key: key,
                        record_id,
                    })
                    .execute(c)?;
            }
            Ok(())
        }
    }
}

/// PostgreSQL, through diesel-async's pure-Rust `AsyncPgConnection` (tokio-postgres).
pub(crate) mod pg {
    use super::*;
    use diesel::dsl::sql;
    use diesel::sql_types::{Array, Bool, Text};
    use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
    use std::collections::{HashMap, HashSet};

    /// The async connection type the PostgreSQL pool hands out.
    pub(crate) type Conn = AsyncPgConnection;

    portable_queries!(Conn);

    /// Writes the RP's records and their blocking keys in one transaction,
    /// replacing any stored record with the same id and its old keys. The
    /// caller has removed duplicate record ids (PostgreSQL refuses to update
    /// the same row twice in one statement).
    ///
    /// A record stored with the same dataset is left alone (a monthly
    /// refresh of a department's file rewrites only what changed); for a
    /// changed one only the keys it gained or lost are written. A handful of
    /// statements whatever the number of records, with array binds expanded
    /// by `UNNEST`.
    pub(crate) async fn import_records(
        conn: &mut Conn,
        rp: String,
        rows: Vec<KeyedRecord>,
        stored_keys: StoredKeys,
    ) -> QueryResult<usize> {
        let count = rows.len();
        conn.transaction(async move |c| {
            bulk_write_settings(c).await?;
            let ids: Vec<String> = rows.iter().map(|r| r.record_id.clone()).collect();
            let stored = stored_datasets(c, &rp, &ids).await?;
            let changes = KeyChanges::new(rows, &stored, stored_keys);
            if !changes.stale.is_empty() {
                // Their keys are unknown: every key row of the RP is read to find them.
                diesel::sql_query(
                    "DELETE FROM department_record_keys WHERE rp_id = $1 AND record_id = ANY($2)",
                )
                .bind::<Text, _>(&rp)
                .bind::<Array<Text>, _>(&changes.stale)
                .execute(c)
                .await?;
            }
            if !changes.removed_keys.is_empty() {
                diesel::sql_query(
                    "DELETE FROM department_record_keys k \
                     USING UNNEST($2::text[], $3::text[]) AS o (blocking_key, record_id) \
                     WHERE k.rp_id = $1 AND k.blocking_key = o.blocking_key \
                     AND k.record_id = o.record_id",
                )
                .bind::<Text, _>(&rp)
                .bind::<Array<Text>, _>(&changes.removed_keys)
                .bind::<Array<Text>, _>(&changes.removed_ids)
                .execute(c)
                .await?;
            }
            write_keyed(
                c,
                &rp,
                &changes.ids,
                Some(&changes.datasets),
                &changes.added_ids,
                &changes.added_keys,
            )
            .await?;
            Ok(count)
        })
        .await
    }

    /// The datasets of the keyed records among `ids` of `rp`, locked until the
    /// commit.
    async fn stored_datasets(
        c: &mut Conn,
        rp: &str,
        ids: &[String],
    ) -> QueryResult<HashMap<String, String>> {
        #[derive(diesel::QueryableByName)]
        struct Stored {
            #[diesel(sql_type = Text)]
            record_id: String,
            #[diesel(sql_type = Text)]
            dataset: String,
        }
        let stored: Vec<Stored> = diesel::sql_query(
            "SELECT record_id, dataset FROM department_records \
             WHERE rp_id = $1 AND record_id = ANY($2) AND keyed = 1 FOR UPDATE",
        )
        .bind::<Text, _>(rp)
        .bind::<Array<Text>, _>(ids)
        .load(c)
        .await?;
        Ok(stored
            .into_iter()
            .map(|s| (s.record_id, s.dataset))
            .collect())
    }

    /// What an import batch changes, given what is stored.
    #[derive(Default)]
    struct KeyChanges {
        /// Records to write (new or changed) and their datasets.
        ids: Vec<String>,
        datasets: Vec<String>,
        /// Keys to insert (`added_ids[i]` is the record of `added_keys[i]`),
        /// in index order: consecutive inserts land on the same pages of the
        /// key index instead of all over it.
        added_keys: Vec<String>,
        added_ids: Vec<String>,
        /// Keys to delete, the same way.
        removed_keys: Vec<String>,
        removed_ids: Vec<String>,
        /// Stored records whose dataset does not decode: all their keys go.
        stale: Vec<String>,
    }

    impl KeyChanges {
        fn new(
            rows: Vec<KeyedRecord>,
            stored: &HashMap<String, String>,
            stored_keys: StoredKeys,
        ) -> Self {
            let mut changes = Self::default();
            let mut added = Vec::new();
            let mut removed = Vec::new();
            for row in rows {
                let old: HashSet<String> = match stored.get(&row.record_id) {
                    Some(dataset) if *dataset == row.dataset => continue,
                    Some(dataset) => match stored_keys(dataset) {
                        Some(keys) => keys.into_iter().collect(),
                        None => {
                            changes.stale.push(row.record_id.clone());
                            HashSet::new()
                        }
                    },
                    None => HashSet::new(),
                };
                let new: HashSet<&String> = row.keys.iter().collect();
                for key in old.iter().filter(|k| !new.contains(k)) {
                    removed.push((key.clone(), row.record_id.clone()));
                }
                for key in row.keys.iter().filter(|k| !old.contains(*k)) {
                    added.push((key.clone(), row.record_id.clone()));
                }
                changes.ids.push(row.record_id);
                changes.datasets.push(row.dataset);
            }
            added.sort_unstable();
            removed.sort_unstable();
            (changes.added_keys, changes.added_ids) = added.into_iter().unzip();
            (changes.removed_keys, changes.removed_ids) = removed.into_iter().unzip();
            changes
        }
    }

    /// Any number, the same in every hub: the advisory lock that makes writes
    /// of department records (imports and the key backfill) take turns.
    const RECORD_WRITES_LOCK: i64 = 0x6875_625f_7265_6373; // "hub_recs"

    /// Settings for the rest of a transaction that writes thousands of
    /// records and keys, and the lock that serialises such transactions
    /// across hub instances: `FOR UPDATE` locks only records that exist, so
    /// two imports of one new record (or an import during another instance's
    /// backfill) could each write keys the other does not know about.
    async fn bulk_write_settings(c: &mut Conn) -> QueryResult<()> {
        diesel::sql_query(format!(
            "SELECT pg_advisory_xact_lock({RECORD_WRITES_LOCK})"
        ))
        .execute(c)
        .await?;
        // With thousands of ids in `ANY(..)` or rows in `UNNEST(..)` the
        // planner prefers reading a whole table (hashing the array) to
        // thousands of index probes, and that scan grows with every batch of
        // an import. Off for this transaction only: the probes cost the same
        // whatever the table's size.
        diesel::sql_query("SET LOCAL enable_seqscan = off")
            .execute(c)
            .await?;
        // An import is re-runnable: its commits need not wait for the disk
        // (a crash may lose the last batches, never corrupt anything).
        diesel::sql_query("SET LOCAL synchronous_commit = off")
            .execute(c)
            .await?;
        Ok(())
    }

    /// Derives and writes the keys of up to `batch` records that have none yet
    /// (imported before the keys table), in one transaction; returns how many
    /// it keyed (0: nothing left). `FOR UPDATE` holds those records until the
    /// commit, so an import (or another hub instance backfilling) waits rather
    /// than interleaving its keys with these; rows another backfill keyed
    /// meanwhile no longer match `keyed = 0` when re-checked after the wait.
    pub(crate) async fn backfill_keys(
        conn: &mut Conn,
        batch: i64,
        derive: DeriveKeys,
    ) -> Result<usize, StoreError> {
        use department_records::dsl as dr;
        conn.transaction::<_, StoreError, _>(async move |c| {
            bulk_write_settings(c).await?;
            let rows: Vec<UnkeyedRow> = dr::department_records
                .filter(dr::keyed.eq(0))
                .order((dr::rp_id, dr::record_id))
                .limit(batch)
                .select((dr::rp_id, dr::record_id, dr::dataset))
                .for_update()
                .load(c)
                .await?;
            let derived = derive(&rows)?;
            // One RP at a time, so that each write is the import's statements.
            let mut start = 0;
            while start < rows.len() {
                let rp = &rows[start].0;
                let end = rows[start..]
                    .iter()
                    .position(|r| &r.0 != rp)
                    .map_or(rows.len(), |n| start + n);
                let ids: Vec<String> = rows[start..end].iter().map(|r| r.1.clone()).collect();
                let mut key_ids = Vec::new();
                let mut keys = Vec::new();
                for (row, row_keys) in rows[start..end].iter().zip(&derived[start..end]) {
                    for key in row_keys {
                        key_ids.push(row.1.clone());
                        keys.push(key.clone());
                    }
                }
                write_keyed(c, rp, &ids, None, &key_ids, &keys).await?;
                start = end;
            }
            Ok(rows.len())
        })
        .await
    }

    /// The import's statements: writes `keys` (`key_ids[i]` is the record of
    /// `keys[i]`) for records `ids` of `rp`, whose old keys are gone, and
    /// marks them keyed, upserting their datasets when given.
    async fn write_keyed(
        c: &mut Conn,
        rp: &str,
        ids: &[String],
        datasets: Option<&[String]>,
        key_ids: &[String],
        keys: &[String],
    ) -> QueryResult<()> {
        use diesel::sql_types::{Array, Text};
        match datasets {
            Some(datasets) => {
                diesel::sql_query(
                    "INSERT INTO department_records (rp_id, record_id, dataset, keyed) \
                     SELECT $1, r.record_id, r.dataset, 1 \
                     FROM UNNEST($2::text[], $3::text[]) AS r (record_id, dataset) \
                     ON CONFLICT (rp_id, record_id) \
                     DO UPDATE SET dataset = excluded.dataset, keyed = 1",
                )
                .bind::<Text, _>(rp)
                .bind::<Array<Text>, _>(ids)
                .bind::<Array<Text>, _>(datasets)
                .execute(c)
                .await?;
            }
            None => {
                diesel::sql_query(
                    "UPDATE department_records SET keyed = 1 \
                     WHERE rp_id = $1 AND record_id = ANY($2)",
                )
                .bind::<Text, _>(rp)
                .bind::<Array<Text>, _>(ids)
                .execute(c)
                .await?;
            }
        }
        diesel::sql_query(
            "INSERT INTO department_record_keys (rp_id, blocking_key, record_id) \
             SELECT $1, k.blocking_key, k.record_id \
             FROM UNNEST($2::text[], $3::text[]) AS k (blocking_key, record_id)",
        )
        .bind::<Text, _>(rp)
        .bind::<Array<Text>, _>(keys)
        .bind::<Array<Text>, _>(key_ids)
        .execute(c)
        .await?;
        Ok(())
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
