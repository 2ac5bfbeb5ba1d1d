//! Every SQL statement the store issues, in one place.
//!
//! Written with diesel's query builder only (no raw SQLite SQL), against the
//! [`Conn`] alias, so a PostgreSQL variant is this module with a different
//! connection type.

use diesel::prelude::*;
use diesel::upsert::excluded;
use diesel_async::sync_connection_wrapper::SyncConnectionWrapper;
use diesel_async::RunQueryDsl;

use crate::schema::{department_records, record_links};

/// The async connection type the pool hands out.
pub(crate) type Conn = SyncConnectionWrapper<diesel::SqliteConnection>;

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

pub(crate) async fn ping(conn: &mut Conn) -> QueryResult<()> {
    diesel::select(1_i32.into_sql::<diesel::sql_types::Integer>())
        .get_result::<i32>(conn)
        .await
        .map(|_| ())
}

/// Upserts all rows in one `BEGIN IMMEDIATE` transaction.
///
/// Diesel cannot combine a multi-row INSERT with ON CONFLICT on SQLite, so this
/// runs one prepared (and cached) single-row upsert per record, all inside a
/// single blocking task on the connection: no per-row hop between threads.
/// (A PostgreSQL variant would send the same statement in batches.)
pub(crate) async fn upsert_records(conn: &mut Conn, rows: Vec<RecordRow>) -> QueryResult<usize> {
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

/// `(record_id, dataset JSON)` of the RP's records with this normalised birth date.
pub(crate) async fn records_by_date_of_birth(
    conn: &mut Conn,
    rp: &str,
    dob: &str,
) -> QueryResult<Vec<(String, String)>> {
    use department_records::dsl as dr;
    dr::department_records
        .filter(dr::rp_id.eq(rp))
        .filter(dr::date_of_birth.eq(dob))
        .order(dr::record_id)
        .select((dr::record_id, dr::dataset))
        .load(conn)
        .await
}

pub(crate) async fn count_records(conn: &mut Conn, rp: &str) -> QueryResult<i64> {
    use department_records::dsl as dr;
    dr::department_records
        .filter(dr::rp_id.eq(rp))
        .count()
        .get_result(conn)
        .await
}

pub(crate) async fn record_link(
    conn: &mut Conn,
    rp: &str,
    idp: &str,
    subject: &str,
) -> QueryResult<Option<String>> {
    use record_links::dsl as rl;
    rl::record_links
        .filter(rl::rp_id.eq(rp))
        .filter(rl::idp_id.eq(idp))
        .filter(rl::idp_subject.eq(subject))
        .select(rl::record_id)
        .first(conn)
        .await
        .optional()
}

pub(crate) async fn upsert_record_link(conn: &mut Conn, row: &LinkRow<'_>) -> QueryResult<()> {
    use record_links::dsl as rl;
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
