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

use crate::audit_log::{
    check_head, node_map, require_all, sealed_tip, to_i64, AppendBatch, AppendRows, AppendedRange,
    AuditTip, TimeMark,
};
use crate::error::StoreError;
use crate::log_seal::LogSeal;
use crate::schema::{
    audit_checkpoints, audit_events, audit_head, audit_nodes, department_record_keys,
    department_records, record_links,
};

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

/// `audit_head` as an append reads it: [`HeadRow`] and the seal.
pub(crate) type SealedHeadRow = (i64, Option<String>, i64, Option<String>);

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

        /// `audit_head`'s size, pruning bound and seal, read together.
        pub(crate) async fn audit_sealed_head(
            conn: &mut $conn,
        ) -> QueryResult<Option<(i64, i64, Option<String>)>> {
            use crate::schema::audit_head::dsl as h;
            h::audit_head
                .filter(h::id.eq(1))
                .select((h::size, h::pruned_below, h::seal))
                .first(conn)
                .await
                .optional()
        }

        /// Seals a head of `size` events that has no seal yet; 0 rows if it
        /// has one, or has moved.
        pub(crate) async fn seal_head(
            conn: &mut $conn,
            size: i64,
            seal: &str,
        ) -> QueryResult<usize> {
            use crate::schema::audit_head::dsl as h;
            diesel::update(
                h::audit_head.filter(h::id.eq(1).and(h::size.eq(size)).and(h::seal.is_null())),
            )
            .set(h::seal.eq(seal))
            .execute(conn)
            .await
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
            // No constant `false` to OR onto: SQLite then scans the whole table
            // instead of one index search per term (the MULTI-INDEX OR plan).
            let mut inner = coords.iter().filter(|c| c.0 != 0);
            let node_rows = an::audit_nodes
                .select((an::level, an::idx, an::hash))
                .into_boxed();
            let mut node_rows = match inner.next() {
                Some(&(level, idx)) => node_rows.filter(an::level.eq(level).and(an::idx.eq(idx))),
                None => node_rows.filter(false.into_sql::<Bool>()),
            };
            for &(level, idx) in inner {
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
            // As in `audit_node_rows`: no constant `false` term, so each range is
            // one index search.
            let mut rest = ranges.iter();
            let query = an::audit_nodes
                .select((an::level, an::idx, an::hash))
                .into_boxed();
            let mut query = match rest.next() {
                Some(&(level, lo, hi)) => {
                    query.filter(an::level.eq(level).and(an::idx.between(lo, hi)))
                }
                None => query.filter(false.into_sql::<Bool>()),
            };
            for &(level, lo, hi) in rest {
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

        /// Up to `limit` checkpoints with a tree size above `after`, ascending.
        pub(crate) async fn checkpoints_after(
            conn: &mut $conn,
            after: i64,
            limit: i64,
        ) -> QueryResult<Vec<CheckpointRow>> {
            use crate::schema::audit_checkpoints::dsl as cp;
            cp::audit_checkpoints
                .filter(cp::tree_size.gt(after))
                .order(cp::tree_size)
                .limit(limit)
                .select(CheckpointRow::as_select())
                .load(conn)
                .await
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

    /// Appends `batch` to the audit log in one `BEGIN IMMEDIATE` transaction:
    /// SQLite then admits one writer at a time (other connections, and other
    /// processes on the same file, wait out `busy_timeout`), so reading the
    /// head and writing the new size cannot interleave with another append.
    /// Runs as one blocking task, with the same statements as PostgreSQL.
    pub(crate) async fn append_audit(
        conn: &mut Conn,
        batch: AppendBatch,
        seal: LogSeal,
    ) -> Result<AppendedRange, StoreError> {
        conn.spawn_blocking(move |c| {
            Ok(c.immediate_transaction::<_, StoreError, _>(|c| {
                sync::append_audit_sync(c, batch, &seal)
            }))
        })
        .await?
    }

    /// The statements that run on the blocking connection (diesel's sync
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

        pub(super) fn append_audit_sync(
            c: &mut diesel::SqliteConnection,
            batch: AppendBatch,
            seal: &LogSeal,
        ) -> Result<AppendedRange, StoreError> {
            use audit_head::dsl as h;
            let (size, max_time, max_lag_ms, stored_seal): SealedHeadRow =
                diesel::update(h::audit_head.filter(h::id.eq(1)))
                    .set(h::size.eq(h::size + to_i64(batch.len())?))
                    .returning((h::size, h::max_time, h::max_lag_ms, h::seal))
                    .get_result(c)?;
            let (first, end) = claimed_range(size, batch.len())?;
            let read = batch.stored_nodes_read(first);
            let rows = audit_node_rows_sync(c, &node_coords(&read)?)?;
            let map = node_map(rows)?;
            require_all(&map, &read)?;
            check_head(seal, stored_seal.as_deref(), first, &map)?;
            let mut mark = TimeMark::stored(max_time, max_lag_ms)?;
            let AppendRows {
                events,
                nodes,
                completed,
            } = batch.rows(first, &map, &mut mark)?;
            let (tip, sealed) = sealed_tip(seal, end, mark, &map, &completed)?;
            diesel::update(h::audit_head.filter(h::id.eq(1)))
                .set((
                    h::max_time.eq(tip.mark.max_time()),
                    h::max_lag_ms.eq(tip.mark.max_lag_ms),
                    h::seal.eq(sealed),
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
            // No constant `false` to OR onto: SQLite then scans the whole table
            // instead of one index search per term (the MULTI-INDEX OR plan).
            let mut inner = coords.iter().filter(|c| c.0 != 0);
            let node_rows = an::audit_nodes
                .select((an::level, an::idx, an::hash))
                .into_boxed();
            let mut node_rows = match inner.next() {
                Some(&(level, idx)) => node_rows.filter(an::level.eq(level).and(an::idx.eq(idx))),
                None => node_rows.filter(false.into_sql::<Bool>()),
            };
            for &(level, idx) in inner {
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

    /// Appends `batch` to the audit log in one transaction, reading the head
    /// and the nodes it hashes against. The first
    /// statement, `UPDATE audit_head ... RETURNING size`, takes the head row's
    /// lock (like `SELECT ... FOR UPDATE`, and claims the range in the same
    /// round trip): every other append, from any hub instance, waits on it
    /// until this one commits or rolls back, so seqs are assigned in one total
    /// order without gaps. Under READ COMMITTED the waiter then re-reads the
    /// committed size and sees the nodes the previous append wrote.
    /// With `keep_tip`, it also reads the rest of the frontier and returns the
    /// tip for [`append_audit_at`] to continue from.
    pub(crate) async fn append_audit(
        conn: &mut Conn,
        batch: &AppendBatch,
        keep_tip: bool,
        seal: &LogSeal,
    ) -> Result<(AppendedRange, Option<AuditTip>), StoreError> {
        conn.transaction::<_, StoreError, _>(async move |c| {
            use audit_head::dsl as h;
            let (size, max_time, max_lag_ms, stored_seal): SealedHeadRow =
                diesel::update(h::audit_head.filter(h::id.eq(1)))
                    .set(h::size.eq(h::size + to_i64(batch.len())?))
                    .returning((h::size, h::max_time, h::max_lag_ms, h::seal))
                    .get_result(c)
                    .await?;
            let (first, end) = claimed_range(size, batch.len())?;
            // The whole frontier: the seal extended, and the one left, cover it.
            let read = batch.stored_nodes_read(first);
            let rows = audit_node_rows(c, &node_coords(&read)?).await?;
            let map = node_map(rows)?;
            require_all(&map, &read)?;
            check_head(seal, stored_seal.as_deref(), first, &map)?;
            let mut mark = TimeMark::stored(max_time, max_lag_ms)?;
            let AppendRows {
                events,
                nodes,
                completed,
            } = batch.rows(first, &map, &mut mark)?;
            let (tip, sealed) = sealed_tip(seal, end, mark, &map, &completed)?;
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
                    h::max_time.eq(tip.mark.max_time()),
                    h::max_lag_ms.eq(tip.mark.max_lag_ms),
                    h::seal.eq(&sealed),
                ))
                .execute(&mut &*conn);
            tokio::try_join!(insert_events, insert_nodes, update_head)?;
            let range = AppendedRange {
                first_seq: first,
                size: end,
            };
            Ok((range, keep_tip.then_some(tip)))
        })
        .await
    }

    /// Appends `batch` where this writer's last append left the log (`tip`),
    /// in one statement and one round trip: the statement claims the range
    /// only if the head still has `tip.size` events, and writes the events
    /// and nodes only if it did. `Ok(None)`, with nothing written, when the
    /// head has moved (another instance appended) or `tip` lacks a node the
    /// batch needs: then [`append_audit`] does it the long way.
    pub(crate) async fn append_audit_at(
        conn: &mut Conn,
        tip: &AuditTip,
        batch: &AppendBatch,
        seal: &LogSeal,
    ) -> Result<Option<(AppendedRange, AuditTip)>, StoreError> {
        if !tip.covers(batch) {
            return Ok(None);
        }
        let first = tip.size;
        let end = first + batch.len();
        let mut mark = tip.mark.clone();
        let AppendRows {
            events,
            nodes,
            completed,
        } = batch.rows(first, &tip.frontier, &mut mark)?;
        // The head is this writer's own last append (the statement checks its
        // size), sealed by it: only the new seal is needed.
        let (next, sealed) = sealed_tip(seal, end, mark, &tip.frontier, &completed)?;
        let claimed: Vec<i64> = AppendAt::new(first, end, &next.mark, sealed, events, nodes)?
            .get_results(conn)
            .await?;
        if claimed.is_empty() {
            return Ok(None);
        }
        let range = AppendedRange {
            first_seq: first,
            size: end,
        };
        Ok(Some((range, next)))
    }

    /// The statement of [`append_audit_at`]. Written by hand, with a static
    /// query id, so that each connection prepares it once: diesel never
    /// caches an `UPDATE`, a multi-row `INSERT` or an `sql_query`, and each
    /// uncached statement costs tokio-postgres a round trip to prepare. The
    /// rows travel as one array per column, whatever their number.
    #[derive(Debug)]
    struct AppendAt {
        added: i64,
        expected: i64,
        max_time: Option<String>,
        max_lag_ms: i64,
        seal: String,
        seq: Vec<i64>,
        id: Vec<String>,
        time: Vec<String>,
        event_max_time: Vec<String>,
        journey_id: Vec<Option<String>>,
        event_type: Vec<String>,
        rp_id: Vec<Option<String>>,
        idp_id: Vec<Option<String>>,
        outcome: Vec<Option<String>>,
        body: Vec<String>,
        leaf_hash: Vec<String>,
        level: Vec<i32>,
        idx: Vec<i64>,
        hash: Vec<String>,
    }

    impl AppendAt {
        /// Moves the rows' columns into arrays (the rows are built for this
        /// statement alone).
        fn new(
            first: u64,
            end: u64,
            mark: &TimeMark,
            seal: String,
            events: Vec<AuditEventRow>,
            nodes: Vec<AuditNodeRow>,
        ) -> Result<Self, StoreError> {
            let mut statement = Self {
                added: to_i64(end - first)?,
                expected: to_i64(first)?,
                max_time: mark.max_time().map(str::to_owned),
                max_lag_ms: mark.max_lag_ms,
                seal,
                seq: Vec::with_capacity(events.len()),
                id: Vec::with_capacity(events.len()),
                time: Vec::with_capacity(events.len()),
                event_max_time: Vec::with_capacity(events.len()),
                journey_id: Vec::with_capacity(events.len()),
                event_type: Vec::with_capacity(events.len()),
                rp_id: Vec::with_capacity(events.len()),
                idp_id: Vec::with_capacity(events.len()),
                outcome: Vec::with_capacity(events.len()),
                body: Vec::with_capacity(events.len()),
                leaf_hash: Vec::with_capacity(events.len()),
                level: Vec::with_capacity(nodes.len()),
                idx: Vec::with_capacity(nodes.len()),
                hash: Vec::with_capacity(nodes.len()),
            };
            for row in events {
                statement.seq.push(row.seq);
                statement.id.push(row.id);
                statement.time.push(row.time);
                statement.event_max_time.push(row.max_time);
                statement.journey_id.push(row.journey_id);
                statement.event_type.push(row.event_type);
                statement.rp_id.push(row.rp_id);
                statement.idp_id.push(row.idp_id);
                statement.outcome.push(row.outcome);
                statement.body.push(row.body);
                statement.leaf_hash.push(row.leaf_hash);
            }
            for node in nodes {
                statement.level.push(node.level);
                statement.idx.push(node.idx);
                statement.hash.push(node.hash);
            }
            Ok(statement)
        }
    }

    impl diesel::query_builder::QueryId for AppendAt {
        type QueryId = AppendAt;
        const HAS_STATIC_QUERY_ID: bool = true;
    }

    impl diesel::query_builder::Query for AppendAt {
        type SqlType = diesel::sql_types::BigInt;
    }

    impl diesel::query_builder::QueryFragment<diesel::pg::Pg> for AppendAt {
        fn walk_ast<'b>(
            &'b self,
            mut out: diesel::query_builder::AstPass<'_, 'b, diesel::pg::Pg>,
        ) -> QueryResult<()> {
            use diesel::sql_types::{Array, BigInt, Integer, Nullable, Text};
            // Data-modifying CTEs: `head` claims the range only at the
            // expected size (a concurrent append holding the row lock makes
            // it wait, then re-check against the committed size); the
            // inserts happen only if it did.
            out.push_sql("WITH head AS (UPDATE audit_head SET size = size + ");
            out.push_bind_param::<BigInt, _>(&self.added)?;
            out.push_sql(", max_time = ");
            out.push_bind_param::<Nullable<Text>, _>(&self.max_time)?;
            out.push_sql(", max_lag_ms = ");
            out.push_bind_param::<BigInt, _>(&self.max_lag_ms)?;
            out.push_sql(", seal = ");
            out.push_bind_param::<Text, _>(&self.seal)?;
            out.push_sql(" WHERE id = 1 AND size = ");
            out.push_bind_param::<BigInt, _>(&self.expected)?;
            out.push_sql(
                " RETURNING size), events AS (INSERT INTO audit_events (seq, id, time, \
                 max_time, journey_id, event_type, rp_id, idp_id, outcome, body, leaf_hash) \
                 SELECT e.seq, e.id, e.time, e.max_time, e.journey_id, e.event_type, e.rp_id, \
                 e.idp_id, e.outcome, e.body, e.leaf_hash FROM UNNEST(",
            );
            out.push_bind_param::<Array<BigInt>, _>(&self.seq)?;
            for column in [&self.id, &self.time, &self.event_max_time, &self.event_type] {
                out.push_sql(", ");
                out.push_bind_param::<Array<Text>, _>(column)?;
            }
            for column in [&self.journey_id, &self.rp_id, &self.idp_id, &self.outcome] {
                out.push_sql(", ");
                out.push_bind_param::<Array<Nullable<Text>>, _>(column)?;
            }
            out.push_sql(", ");
            out.push_bind_param::<Array<Text>, _>(&self.body)?;
            out.push_sql(", ");
            out.push_bind_param::<Array<Text>, _>(&self.leaf_hash)?;
            out.push_sql(
                ") AS e (seq, id, time, max_time, event_type, journey_id, rp_id, idp_id, \
                 outcome, body, leaf_hash) WHERE EXISTS (SELECT 1 FROM head)), \
                 nodes AS (INSERT INTO audit_nodes (level, idx, hash) SELECT * FROM UNNEST(",
            );
            out.push_bind_param::<Array<Integer>, _>(&self.level)?;
            out.push_sql(", ");
            out.push_bind_param::<Array<BigInt>, _>(&self.idx)?;
            out.push_sql(", ");
            out.push_bind_param::<Array<Text>, _>(&self.hash)?;
            out.push_sql(") WHERE EXISTS (SELECT 1 FROM head)) SELECT size FROM head");
            Ok(())
        }
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
