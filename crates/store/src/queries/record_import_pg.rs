//! PostgreSQL's bulk writes of department records: the import and the key
//! backfill, a few statements of `UNNEST`ed array binds whatever the number
//! of records, under an advisory lock that makes such writes take turns.

use std::collections::{HashMap, HashSet};

use diesel::prelude::*;
use diesel::sql_types::{Array, Text};
use diesel_async::{AsyncConnection, RunQueryDsl};

use super::pg::Conn;
use super::records::{DeriveKeys, KeyedRecord, StoredKeys, UnkeyedRow};
use crate::error::StoreError;
use crate::schema::department_records;

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
