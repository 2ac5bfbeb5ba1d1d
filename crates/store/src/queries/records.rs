//! Department records: the rows an import writes, and the statements that
//! find candidates and count records. The bulk writes (import, key
//! backfill) differ per backend: [`super::record_import_sqlite`],
//! [`super::record_import_pg`].

use diesel::prelude::*;

use crate::error::StoreError;
use crate::schema::{department_record_keys, department_records};

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

/// The statements, for the connection type `$conn` (see [`super`]).
macro_rules! record_statements {
    ($conn:ty) => {
        /// `(record_id, dataset JSON)` of the RP's records stored under any of
        /// `keys`, each once, by `record_id`, at most `limit`: one statement
        /// that walks the key index for the keys' entries and then looks each
        /// record up by primary key (see the EXPLAIN notes in `tests/it/database.rs`).
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
    };
}
pub(crate) use record_statements;
