//! PostgreSQL's SQL for an append: the transaction that reads the head under
//! its row lock ([`append`]), and the one statement that appends at this
//! writer's own tip ([`append_at`]). Both land the batch with the same
//! algorithm ([`crate::verification_log::append`]); they differ only in the
//! SQL they send.

use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};

use super::append::{claim_head, update_head, AUDIT_EVENT_CHUNK, AUDIT_NODE_CHUNK};
use super::events::node_rows_query;
use crate::error::StoreError;
use crate::schema::{audit_events, audit_nodes};
use crate::verification_log::append::{
    append_reading_head, land_at_tip, AppendBatch, AppendSql, AppendWrites, AppendedRange,
    AuditTip, Landing,
};
use crate::verification_log::encoding::to_i64;
use crate::verification_log::rows::SealedHeadRow;
use crate::verification_log::seal::LogSeal;

/// Appends `batch` in one transaction, reading the head and the nodes it
/// hashes against ([`append_reading_head`]). The first statement,
/// `UPDATE audit_head ... RETURNING size`, takes the head row's lock (like
/// `SELECT ... FOR UPDATE`, and claims the range in the same round trip):
/// every other append, from any hub instance, waits on it until this one
/// commits or rolls back, so seqs are assigned in one total order without
/// gaps. Under READ COMMITTED the waiter then re-reads the committed size and
/// sees the nodes the previous append wrote. With `keep_tip`, it returns the
/// tip it leaves for [`append_at`] to continue from.
pub(crate) async fn append(
    conn: &mut AsyncPgConnection,
    batch: &AppendBatch,
    keep_tip: bool,
    seal: &LogSeal,
) -> Result<(AppendedRange, Option<AuditTip>), StoreError> {
    conn.transaction::<_, StoreError, _>(async move |c| {
        let (range, tip) = append_reading_head(&mut Statements(c), batch, seal).await?;
        Ok((range, keep_tip.then_some(tip)))
    })
    .await
}

/// [`AppendSql`] on a PostgreSQL connection, inside [`append`]'s transaction.
struct Statements<'a>(&'a mut AsyncPgConnection);

impl AppendSql for Statements<'_> {
    async fn claim(&mut self, len: i64) -> Result<SealedHeadRow, StoreError> {
        Ok(claim_head!(len).get_result(self.0).await?)
    }

    async fn nodes(
        &mut self,
        coords: &[(i32, i64)],
    ) -> Result<Vec<(i32, i64, String)>, StoreError> {
        if coords.is_empty() {
            return Ok(Vec::new());
        }
        Ok(node_rows_query!(coords).load(self.0).await?)
    }

    /// Pipelined: the three are sent before the first reply is awaited (one
    /// round trip rather than three for a typical batch).
    async fn write(&mut self, writes: AppendWrites) -> Result<(), StoreError> {
        let conn: &AsyncPgConnection = self.0;
        let insert_events = async {
            for chunk in writes.events.chunks(AUDIT_EVENT_CHUNK) {
                diesel::insert_into(audit_events::table)
                    .values(chunk)
                    .execute(&mut &*conn)
                    .await?;
            }
            QueryResult::Ok(())
        };
        let insert_nodes = async {
            for chunk in writes.nodes.chunks(AUDIT_NODE_CHUNK) {
                diesel::insert_into(audit_nodes::table)
                    .values(chunk)
                    .execute(&mut &*conn)
                    .await?;
            }
            QueryResult::Ok(())
        };
        let update_head = update_head!(&writes).execute(&mut &*conn);
        tokio::try_join!(insert_events, insert_nodes, update_head)?;
        Ok(())
    }
}

/// Appends `batch` where this writer's last append left the log (`tip`,
/// [`land_at_tip`]), in one statement and one round trip: the statement
/// claims the range only if the head still has `tip.size` events, and writes
/// the events and nodes only if it did. `Ok(None)`, with nothing written,
/// when the head has moved (another instance appended) or `tip` lacks a node
/// the batch needs: then [`append`] does it the long way.
pub(crate) async fn append_at(
    conn: &mut AsyncPgConnection,
    tip: &AuditTip,
    batch: &AppendBatch,
    seal: &LogSeal,
) -> Result<Option<(AppendedRange, AuditTip)>, StoreError> {
    let Some(Landing { range, writes, tip }) = land_at_tip(tip, batch, seal)? else {
        return Ok(None);
    };
    let claimed: Vec<i64> = AppendAt::new(range, writes)?.get_results(conn).await?;
    if claimed.is_empty() {
        return Ok(None);
    }
    Ok(Some((range, tip)))
}

/// The statement of [`append_at`]. Written by hand, with a static
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
    fn new(range: AppendedRange, writes: AppendWrites) -> Result<Self, StoreError> {
        let AppendWrites {
            events,
            nodes,
            max_time,
            max_lag_ms,
            seal,
        } = writes;
        let mut statement = Self {
            added: to_i64(range.size - range.first_seq)?,
            expected: to_i64(range.first_seq)?,
            max_time,
            max_lag_ms,
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
