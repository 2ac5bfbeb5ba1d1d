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

use crate::audit_log::{node_map, require_all, to_i64, AppendBatch, AppendedRange, TimeMark};
use crate::error::StoreError;
use crate::schema::{
    audit_checkpoints, audit_events, audit_head, audit_nodes, department_records, record_links,
};

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

/// An audit event as stored (see the migration and [`crate::audit_log`]).
/// `None` means SQL NULL, also in multi-row inserts (not "column default").
#[derive(Insertable, Debug)]
#[diesel(table_name = audit_events, treat_none_as_default_value = false)]
pub(crate) struct AuditEventRow {
    pub(crate) seq: i64,
    pub(crate) id: String,
    pub(crate) time: String,
    pub(crate) max_time: String,
    pub(crate) journey_id: Option<String>,
    pub(crate) event_type: String,
    pub(crate) rp_id: Option<String>,
    pub(crate) idp_id: Option<String>,
    pub(crate) outcome: Option<String>,
    pub(crate) body: String,
    pub(crate) leaf_hash: String,
}

/// Everything the self-check reads of an event row.
#[derive(Queryable, Selectable, Debug)]
#[diesel(table_name = audit_events)]
pub(crate) struct AuditCheckRow {
    pub(crate) seq: i64,
    pub(crate) id: String,
    pub(crate) time: String,
    pub(crate) max_time: String,
    pub(crate) journey_id: Option<String>,
    pub(crate) event_type: String,
    pub(crate) rp_id: Option<String>,
    pub(crate) idp_id: Option<String>,
    pub(crate) outcome: Option<String>,
    pub(crate) body: String,
    pub(crate) leaf_hash: String,
    /// 1 once the event was pruned (body and searchable columns removed).
    pub(crate) pruned: i32,
}

/// A tree node of level >= 1, hash in lowercase hex.
#[derive(Insertable, Debug)]
#[diesel(table_name = audit_nodes)]
pub(crate) struct AuditNodeRow {
    pub(crate) level: i32,
    pub(crate) idx: i64,
    pub(crate) hash: String,
}

/// An `audit::Checkpoint` as stored.
#[derive(Insertable, Queryable, Selectable, Debug, Clone, PartialEq, Eq)]
#[diesel(table_name = audit_checkpoints)]
pub(crate) struct CheckpointRow {
    pub(crate) tree_size: i64,
    pub(crate) root_hash: String,
    pub(crate) time: String,
    pub(crate) signature: String,
}

/// The conditions of one audit event query (one RP at most: a list of RPs is
/// one query per RP, merged by the caller, so that each walks its own
/// `(rp_id, seq)` index range).
#[derive(Debug, Default)]
pub(crate) struct AuditEventQuery<'a> {
    pub(crate) from: Option<&'a str>,
    pub(crate) to: Option<&'a str>,
    pub(crate) rp: Option<&'a str>,
    pub(crate) idp: Option<&'a str>,
    pub(crate) event_type: Option<&'a str>,
    pub(crate) outcome: Option<&'a str>,
    pub(crate) journey_id: Option<&'a str>,
    pub(crate) after_seq: Option<i64>,
    /// Seq window derived from the time range (`max_time`): `seq >= seq_from`.
    pub(crate) seq_from: Option<i64>,
    /// ... and `seq < seq_below`.
    pub(crate) seq_below: Option<i64>,
    pub(crate) limit: i64,
}

/// `audit_head`: (size, max_time, max_lag_ms).
pub(crate) type HeadRow = (i64, Option<String>, i64);

/// Self-check counts from one snapshot.
#[derive(Debug)]
pub(crate) struct TailRow {
    /// `audit_head`, if its row exists.
    pub(crate) head: Option<HeadRow>,
    /// `audit_head.pruned_below`, if its row exists.
    pub(crate) pruned_below: Option<i64>,
    /// Rows in `audit_events`.
    pub(crate) events: i64,
    /// The highest seq in `audit_events`.
    pub(crate) max_seq: Option<i64>,
    /// Rows in `audit_nodes`.
    pub(crate) nodes: i64,
}

/// Rows per multi-row INSERT of audit events: 11 bind parameters each, well
/// under PostgreSQL's 65,535 and SQLite's 32,766 per statement.
const AUDIT_EVENT_CHUNK: usize = 1000;
/// Rows per multi-row INSERT of audit nodes (3 parameters each).
const AUDIT_NODE_CHUNK: usize = 5000;

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

        /// The audit log's size (`audit_head`); `None` if its row is missing.
        pub(crate) async fn audit_size(conn: &mut $conn) -> QueryResult<Option<i64>> {
            use crate::schema::audit_head::dsl as h;
            h::audit_head
                .filter(h::id.eq(1))
                .select(h::size)
                .first(conn)
                .await
                .optional()
        }

        /// The whole `audit_head` row.
        pub(crate) async fn audit_head_row(conn: &mut $conn) -> QueryResult<Option<HeadRow>> {
            use crate::schema::audit_head::dsl as h;
            h::audit_head
                .filter(h::id.eq(1))
                .select((h::size, h::max_time, h::max_lag_ms))
                .first(conn)
                .await
                .optional()
        }

        /// `audit_head.pruned_below`: every event below it is pruned, none
        /// at or above it; `None` if the head row is missing.
        pub(crate) async fn audit_pruned_below(conn: &mut $conn) -> QueryResult<Option<i64>> {
            use crate::schema::audit_head::dsl as h;
            h::audit_head
                .filter(h::id.eq(1))
                .select(h::pruned_below)
                .first(conn)
                .await
                .optional()
        }

        /// Prunes the events with seq below `below` that are not pruned yet,
        /// in one transaction, and returns how many it pruned: their body
        /// becomes '' and their searchable columns NULL, while seq, id, time,
        /// max_time, event_type and leaf_hash stay (the tree needs only the
        /// hashes). Refuses a `below` beyond the log's size.
        ///
        /// The first statement writes, so that SQLite takes its write lock
        /// (waiting out `busy_timeout`) before the transaction reads anything:
        /// a deferred transaction that read first could not upgrade once an
        /// append committed. On PostgreSQL the head row, which every append
        /// locks, is written last, so appends wait only for the commit.
        pub(crate) async fn prune_audit(conn: &mut $conn, below: i64) -> Result<usize, StoreError> {
            use crate::schema::audit_events::dsl as ae;
            use crate::schema::audit_head::dsl as h;
            conn.transaction::<_, StoreError, _>(async move |c| {
                let pruned = diesel::update(
                    ae::audit_events
                        .filter(ae::seq.lt(below))
                        .filter(ae::pruned.eq(0)),
                )
                .set((
                    ae::body.eq(""),
                    ae::journey_id.eq(None::<String>),
                    ae::rp_id.eq(None::<String>),
                    ae::idp_id.eq(None::<String>),
                    ae::outcome.eq(None::<String>),
                    ae::pruned.eq(1),
                ))
                .execute(c)
                .await?;
                let size = audit_size(c)
                    .await?
                    .ok_or_else(|| StoreError::Corrupt("audit_head has no row".into()))?;
                if below > size {
                    return Err(StoreError::InvalidInput(format!(
                        "cannot prune before event {below}: the audit log has {size} events"
                    )));
                }
                diesel::update(
                    h::audit_head
                        .filter(h::id.eq(1))
                        .filter(h::pruned_below.lt(below)),
                )
                .set(h::pruned_below.eq(below))
                .execute(c)
                .await?;
                Ok(pruned)
            })
            .await
        }

        /// The first seq whose `max_time` is at or after `time` (one index
        /// descent: `max_time` never decreases along seq).
        pub(crate) async fn audit_first_seq_reaching(
            conn: &mut $conn,
            time: &str,
        ) -> QueryResult<Option<i64>> {
            use crate::schema::audit_events::dsl as ae;
            ae::audit_events
                .filter(ae::max_time.ge(time))
                .order((ae::max_time, ae::seq))
                .select(ae::seq)
                .first(conn)
                .await
                .optional()
        }

        /// Stored tree nodes `(level, idx, hex hash)` among `coords`, in one
        /// statement: level 0 from `audit_events.leaf_hash`, the others from
        /// `audit_nodes`. Missing ones are simply absent from the result.
        pub(crate) async fn audit_node_rows(
            conn: &mut $conn,
            coords: &[(i32, i64)],
        ) -> QueryResult<Vec<(i32, i64, String)>> {
            use crate::schema::audit_events::dsl as ae;
            use crate::schema::audit_nodes::dsl as an;
            use diesel::sql_types::{Bool, Integer};
            if coords.is_empty() {
                return Ok(Vec::new());
            }
            let leaves: Vec<i64> = coords.iter().filter(|c| c.0 == 0).map(|c| c.1).collect();
            let leaf_rows = ae::audit_events.filter(ae::seq.eq_any(leaves)).select((
                0_i32.into_sql::<Integer>(),
                ae::seq,
                ae::leaf_hash,
            ));
            let mut node_rows = an::audit_nodes
                .select((an::level, an::idx, an::hash))
                .filter(false.into_sql::<Bool>())
                .into_boxed();
            for &(level, idx) in coords.iter().filter(|c| c.0 != 0) {
                node_rows = node_rows.or_filter(an::level.eq(level).and(an::idx.eq(idx)));
            }
            leaf_rows.union_all(node_rows).load(conn).await
        }

        /// One page of `(seq, body)` in seq order, pruned events left out.
        pub(crate) async fn audit_event_page(
            conn: &mut $conn,
            q: &AuditEventQuery<'_>,
        ) -> QueryResult<Vec<(i64, String)>> {
            use crate::schema::audit_events::dsl as ae;
            let mut query = ae::audit_events
                .filter(ae::pruned.eq(0))
                .select((ae::seq, ae::body))
                .order(ae::seq)
                .limit(q.limit)
                .into_boxed();
            if let Some(after) = q.after_seq {
                query = query.filter(ae::seq.gt(after));
            }
            if let Some(from) = q.seq_from {
                query = query.filter(ae::seq.ge(from));
            }
            if let Some(below) = q.seq_below {
                query = query.filter(ae::seq.lt(below));
            }
            if let Some(from) = q.from {
                query = query.filter(ae::time.ge(from));
            }
            if let Some(to) = q.to {
                query = query.filter(ae::time.lt(to));
            }
            if let Some(rp) = q.rp {
                query = query.filter(ae::rp_id.eq(rp));
            }
            if let Some(idp) = q.idp {
                query = query.filter(ae::idp_id.eq(idp));
            }
            if let Some(t) = q.event_type {
                query = query.filter(ae::event_type.eq(t));
            }
            if let Some(outcome) = q.outcome {
                query = query.filter(ae::outcome.eq(outcome));
            }
            if let Some(journey) = q.journey_id {
                query = query.filter(ae::journey_id.eq(journey));
            }
            query.load(conn).await
        }

        /// The body of the event at `seq`, unless it was pruned.
        pub(crate) async fn audit_event_body(
            conn: &mut $conn,
            seq: i64,
        ) -> QueryResult<Option<String>> {
            use crate::schema::audit_events::dsl as ae;
            ae::audit_events
                .find(seq)
                .filter(ae::pruned.eq(0))
                .select(ae::body)
                .first(conn)
                .await
                .optional()
        }

        /// Self-check: up to `limit` whole rows with `after < seq < below`, in order.
        pub(crate) async fn audit_check_page(
            conn: &mut $conn,
            after: Option<i64>,
            below: i64,
            limit: i64,
        ) -> QueryResult<Vec<AuditCheckRow>> {
            use crate::schema::audit_events::dsl as ae;
            let mut query = ae::audit_events
                .filter(ae::seq.lt(below))
                .order(ae::seq)
                .limit(limit)
                .select(AuditCheckRow::as_select())
                .into_boxed();
            if let Some(after) = after {
                query = query.filter(ae::seq.gt(after));
            }
            query.load(conn).await
        }

        /// Self-check: stored nodes in the `(level, first idx, last idx)` ranges.
        pub(crate) async fn audit_nodes_in_ranges(
            conn: &mut $conn,
            ranges: &[(i32, i64, i64)],
        ) -> QueryResult<Vec<(i32, i64, String)>> {
            use crate::schema::audit_nodes::dsl as an;
            use diesel::sql_types::Bool;
            if ranges.is_empty() {
                return Ok(Vec::new());
            }
            let mut query = an::audit_nodes
                .select((an::level, an::idx, an::hash))
                .filter(false.into_sql::<Bool>())
                .into_boxed();
            for &(level, lo, hi) in ranges {
                query = query.or_filter(an::level.eq(level).and(an::idx.between(lo, hi)));
            }
            query.load(conn).await
        }

        /// Self-check counts; the caller runs it in one snapshot.
        async fn audit_tail_counts(conn: &mut $conn) -> QueryResult<TailRow> {
            use crate::schema::audit_events::dsl as ae;
            use crate::schema::audit_nodes::dsl as an;
            use diesel::dsl::{count_star, max};
            let head = audit_head_row(conn).await?;
            let pruned_below = audit_pruned_below(conn).await?;
            let (events, max_seq) = ae::audit_events
                .select((count_star(), max(ae::seq)))
                .first::<(i64, Option<i64>)>(conn)
                .await?;
            let nodes = an::audit_nodes.count().get_result::<i64>(conn).await?;
            Ok(TailRow {
                head,
                pruned_below,
                events,
                max_seq,
                nodes,
            })
        }

        /// Inserts a checkpoint unless one exists for its tree size; returns
        /// the one stored for that size afterwards.
        pub(crate) async fn insert_checkpoint(
            conn: &mut $conn,
            row: &CheckpointRow,
        ) -> QueryResult<CheckpointRow> {
            use crate::schema::audit_checkpoints::dsl as cp;
            diesel::insert_into(cp::audit_checkpoints)
                .values(row)
                .on_conflict(cp::tree_size)
                .do_nothing()
                .execute(conn)
                .await?;
            cp::audit_checkpoints
                .find(row.tree_size)
                .select(CheckpointRow::as_select())
                .first(conn)
                .await
        }

        /// The checkpoint with the largest tree size.
        pub(crate) async fn latest_checkpoint(
            conn: &mut $conn,
        ) -> QueryResult<Option<CheckpointRow>> {
            use crate::schema::audit_checkpoints::dsl as cp;
            cp::audit_checkpoints
                .order(cp::tree_size.desc())
                .select(CheckpointRow::as_select())
                .first(conn)
                .await
                .optional()
        }

        /// Every checkpoint, by ascending tree size.
        pub(crate) async fn checkpoints(conn: &mut $conn) -> QueryResult<Vec<CheckpointRow>> {
            use crate::schema::audit_checkpoints::dsl as cp;
            cp::audit_checkpoints
                .order(cp::tree_size)
                .select(CheckpointRow::as_select())
                .load(conn)
                .await
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

/// The range an append claimed, from the head size after the claim.
fn claimed_range(size_after: i64, len: u64) -> Result<(u64, u64), StoreError> {
    let end = u64::try_from(size_after)
        .map_err(|_| StoreError::Corrupt(format!("audit_head size {size_after} is negative")))?;
    let first = end.checked_sub(len).ok_or_else(|| {
        StoreError::Corrupt(format!("audit_head size {size_after} is inconsistent"))
    })?;
    Ok((first, end))
}

/// Node coordinates as stored (i32 level, i64 idx).
pub(crate) fn node_coords(coords: &[(u32, u64)]) -> Result<Vec<(i32, i64)>, StoreError> {
    coords
        .iter()
        .map(
            |&(level, idx)| match (i32::try_from(level), i64::try_from(idx)) {
                (Ok(l), Ok(i)) => Ok((l, i)),
                _ => Err(StoreError::InvalidInput(format!(
                    "tree node ({level}, {idx}) is out of range"
                ))),
            },
        )
        .collect()
}

/// SQLite, through diesel-async's `SyncConnectionWrapper`.
pub(crate) mod sqlite {
    use super::*;
    use diesel::dsl::sql;
    use diesel::sql_types::Bool;
    use diesel_async::sync_connection_wrapper::SyncConnectionWrapper;
    use diesel_async::{AsyncConnection, RunQueryDsl};

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

    /// Appends `batch` to the audit log in one `BEGIN IMMEDIATE` transaction:
    /// SQLite then admits one writer at a time (other connections, and other
    /// processes on the same file, wait out `busy_timeout`), so reading the
    /// head and writing the new size cannot interleave with another append.
    /// Runs as one blocking task, with the same statements as PostgreSQL.
    pub(crate) async fn append_audit(
        conn: &mut Conn,
        batch: AppendBatch,
    ) -> Result<AppendedRange, StoreError> {
        conn.spawn_blocking(move |c| {
            Ok(c.immediate_transaction::<_, StoreError, _>(|c| sync::append_audit_sync(c, batch)))
        })
        .await?
    }

    /// The append's statements on the blocking connection (diesel's sync
    /// `RunQueryDsl`, hence a module of their own).
    mod sync {
        use super::super::*;
        use diesel::RunQueryDsl;

        pub(super) fn append_audit_sync(
            c: &mut diesel::SqliteConnection,
            batch: AppendBatch,
        ) -> Result<AppendedRange, StoreError> {
            use audit_head::dsl as h;
            let (size, max_time, max_lag_ms): HeadRow =
                diesel::update(h::audit_head.filter(h::id.eq(1)))
                    .set(h::size.eq(h::size + to_i64(batch.len())?))
                    .returning((h::size, h::max_time, h::max_lag_ms))
                    .get_result(c)?;
            let (first, end) = claimed_range(size, batch.len())?;
            let needed = batch.stored_nodes_needed(first);
            let rows = audit_node_rows_sync(c, &node_coords(&needed)?)?;
            let map = node_map(rows)?;
            require_all(&map, &needed)?;
            let mut mark = TimeMark::stored(max_time, max_lag_ms)?;
            let (events, nodes) = batch.into_rows(first, &map, &mut mark)?;
            diesel::update(h::audit_head.filter(h::id.eq(1)))
                .set((
                    h::max_time.eq(mark.max_time()),
                    h::max_lag_ms.eq(mark.max_lag_ms),
                ))
                .execute(c)?;
            for chunk in events.chunks(AUDIT_EVENT_CHUNK) {
                diesel::insert_into(audit_events::table)
                    .values(chunk)
                    .execute(c)?;
            }
            for chunk in nodes.chunks(AUDIT_NODE_CHUNK) {
                diesel::insert_into(audit_nodes::table)
                    .values(chunk)
                    .execute(c)?;
            }
            Ok(AppendedRange {
                first_seq: first,
                size: end,
            })
        }

        /// [`audit_node_rows`] on the blocking connection.
        fn audit_node_rows_sync(
            c: &mut diesel::SqliteConnection,
            coords: &[(i32, i64)],
        ) -> QueryResult<Vec<(i32, i64, String)>> {
            use crate::schema::audit_events::dsl as ae;
            use crate::schema::audit_nodes::dsl as an;
            use diesel::sql_types::{Bool, Integer};
            if coords.is_empty() {
                return Ok(Vec::new());
            }
            let leaves: Vec<i64> = coords.iter().filter(|c| c.0 == 0).map(|c| c.1).collect();
            let leaf_rows = ae::audit_events.filter(ae::seq.eq_any(leaves)).select((
                0_i32.into_sql::<Integer>(),
                ae::seq,
                ae::leaf_hash,
            ));
            let mut node_rows = an::audit_nodes
                .select((an::level, an::idx, an::hash))
                .filter(false.into_sql::<Bool>())
                .into_boxed();
            for &(level, idx) in coords.iter().filter(|c| c.0 != 0) {
                node_rows = node_rows.or_filter(an::level.eq(level).and(an::idx.eq(idx)));
            }
            leaf_rows.union_all(node_rows).load(c)
        }
    }

    /// Self-check counts in one read transaction (a single snapshot).
    pub(crate) async fn audit_tail(conn: &mut Conn) -> QueryResult<TailRow> {
        conn.transaction(async |c| audit_tail_counts(c).await).await
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

    /// Appends `batch` to the audit log in one transaction. The first
    /// statement, `UPDATE audit_head ... RETURNING size`, takes the head row's
    /// lock (like `SELECT ... FOR UPDATE`, and claims the range in the same
    /// round trip): every other append, from any hub instance, waits on it
    /// until this one commits or rolls back, so seqs are assigned in one total
    /// order without gaps. Under READ COMMITTED the waiter then re-reads the
    /// committed size and sees the nodes the previous append wrote.
    pub(crate) async fn append_audit(
        conn: &mut Conn,
        batch: AppendBatch,
    ) -> Result<AppendedRange, StoreError> {
        conn.transaction::<_, StoreError, _>(async move |c| {
            use audit_head::dsl as h;
            let (size, max_time, max_lag_ms): HeadRow =
                diesel::update(h::audit_head.filter(h::id.eq(1)))
                    .set(h::size.eq(h::size + to_i64(batch.len())?))
                    .returning((h::size, h::max_time, h::max_lag_ms))
                    .get_result(c)
                    .await?;
            let (first, end) = claimed_range(size, batch.len())?;
            let needed = batch.stored_nodes_needed(first);
            let rows = audit_node_rows(c, &node_coords(&needed)?).await?;
            let map = node_map(rows)?;
            require_all(&map, &needed)?;
            let mut mark = TimeMark::stored(max_time, max_lag_ms)?;
            let (events, nodes) = batch.into_rows(first, &map, &mut mark)?;
            // Pipelined: the three are sent before the first reply is awaited
            // (one round trip rather than three for a typical batch).
            let conn: &Conn = c;
            let insert_events = async {
                for chunk in events.chunks(AUDIT_EVENT_CHUNK) {
                    diesel::insert_into(audit_events::table)
                        .values(chunk)
                        .execute(&mut &*conn)
                        .await?;
                }
                QueryResult::Ok(())
            };
            let insert_nodes = async {
                for chunk in nodes.chunks(AUDIT_NODE_CHUNK) {
                    diesel::insert_into(audit_nodes::table)
                        .values(chunk)
                        .execute(&mut &*conn)
                        .await?;
                }
                QueryResult::Ok(())
            };
            let update_head = diesel::update(h::audit_head.filter(h::id.eq(1)))
                .set((
                    h::max_time.eq(mark.max_time()),
                    h::max_lag_ms.eq(mark.max_lag_ms),
                ))
                .execute(&mut &*conn);
            tokio::try_join!(insert_events, insert_nodes, update_head)?;
            Ok(AppendedRange {
                first_seq: first,
                size: end,
            })
        })
        .await
    }

    /// Self-check counts in one REPEATABLE READ snapshot.
    pub(crate) async fn audit_tail(conn: &mut Conn) -> QueryResult<TailRow> {
        conn.build_transaction()
            .repeatable_read()
            .read_only()
            .run(async |c| audit_tail_counts(c).await)
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
