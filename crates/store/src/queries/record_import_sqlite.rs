//! SQLite's bulk writes of department records: the import and the key
//! backfill, each one `BEGIN IMMEDIATE` transaction of cached single-row
//! statements in one blocking task on the connection.

use diesel::prelude::*;

use super::records::{DeriveKeys, KeyRow, KeyedRecord, RecordRow, StoredKeys, UnkeyedRow};
use super::sqlite::Conn;
use crate::error::StoreError;
use crate::schema::{department_record_keys, department_records};

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
        Ok(c.immediate_transaction::<_, StoreError, _>(|c| sync::backfill_keys(c, batch, derive)))
    })
    .await?
}

mod sync {
    use super::*;
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
