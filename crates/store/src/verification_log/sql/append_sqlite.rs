//! SQLite's SQL for an append: one `BEGIN IMMEDIATE` transaction on the
//! blocking connection. SQLite then admits one writer at a time (other
//! connections, and other processes on the same file, wait out
//! `busy_timeout`), so reading the head and writing the new size cannot
//! interleave with another append.

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use diesel::prelude::*;
use diesel::RunQueryDsl;

use super::append::{claim_head, update_head, AUDIT_EVENT_CHUNK, AUDIT_NODE_CHUNK};
use super::events::node_rows_query;
use crate::error::StoreError;
use crate::schema::{audit_events, audit_nodes};
use crate::verification_log::append::{
    append_reading_head, AppendBatch, AppendSql, AppendWrites, AppendedRange,
};
use crate::verification_log::rows::SealedHeadRow;
use crate::verification_log::seal::LogSeal;

use super::sqlite::Conn;

/// Appends `batch` (see [`append_reading_head`]) as one blocking task on the
/// connection, in one `BEGIN IMMEDIATE` transaction.
pub(crate) async fn append(
    conn: &mut Conn,
    batch: AppendBatch,
    seal: LogSeal,
) -> Result<AppendedRange, StoreError> {
    conn.spawn_blocking(move |c| {
        Ok(c.immediate_transaction::<_, StoreError, _>(|c| {
            completed(append_reading_head(&mut Statements(c), &batch, &seal))
                .map(|(range, _)| range)
        }))
    })
    .await?
}

/// [`AppendSql`] on the blocking connection: every statement has run by the
/// time its future is first polled.
struct Statements<'a>(&'a mut diesel::SqliteConnection);

impl AppendSql for Statements<'_> {
    async fn claim(&mut self, len: i64) -> Result<SealedHeadRow, StoreError> {
        Ok(claim_head!(len).get_result(self.0)?)
    }

    async fn nodes(
        &mut self,
        coords: &[(i32, i64)],
    ) -> Result<Vec<(i32, i64, String)>, StoreError> {
        if coords.is_empty() {
            return Ok(Vec::new());
        }
        Ok(node_rows_query!(coords).load(self.0)?)
    }

    async fn write(&mut self, writes: AppendWrites) -> Result<(), StoreError> {
        update_head!(&writes).execute(self.0)?;
        for chunk in writes.events.chunks(AUDIT_EVENT_CHUNK) {
            diesel::insert_into(audit_events::table)
                .values(chunk)
                .execute(self.0)?;
        }
        for chunk in writes.nodes.chunks(AUDIT_NODE_CHUNK) {
            diesel::insert_into(audit_nodes::table)
                .values(chunk)
                .execute(self.0)?;
        }
        Ok(())
    }
}

/// The output of a future that never waits, such as the append on
/// [`Statements`]: the algorithm is async for PostgreSQL's sake, and here it
/// completes at its first poll.
fn completed<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return output;
        }
        // Not reached: nothing in it waits. Polling again is still correct.
        std::thread::yield_now();
    }
}
