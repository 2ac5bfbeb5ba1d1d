//! Retention: where a retention period cuts the log, and pruning the events
//! before it (bodies and searchable columns blanked, rows and leaf hashes
//! kept, so every root, checkpoint and proof stays as it was).

use super::encoding::{head_size, stored_seq, to_i64};
use super::sql;
use super::time::event_time;
use crate::database::{with_conn, Database};
use crate::error::StoreError;

impl Database {
    /// Where a retention period ending at `time` (RFC 3339, any offset) cuts
    /// the log: the first seq whose `max_time` is at or after `time`, or the
    /// log's size if there is none. Every event below it has a time before
    /// `time` (`max_time` never decreases along seq and is never earlier than
    /// an event's own time), so it is the bound to pass to
    /// [`Database::prune_audit_events_before`]. Sub-millisecond digits of
    /// `time` are dropped (stored times have milliseconds), which errs towards
    /// keeping events. One descent of the `(max_time, seq)` index. Fails with
    /// [`StoreError::InvalidInput`] if `time` is not RFC 3339.
    pub async fn audit_seq_at(&self, time: &str) -> Result<u64, StoreError> {
        let (bound, _) = event_time(time).map_err(StoreError::InvalidInput)?;
        let (size, first) = with_conn!(self, sql, |conn, q| {
            // The size first: an event appended after it may be seen by the
            // descent but must not count as before `time`.
            let size = q::audit_size(&mut conn).await?;
            (size, q::audit_first_seq_reaching(&mut conn, &bound).await?)
        });
        let size = head_size(size)?;
        match first {
            Some(seq) => Ok(stored_seq(seq)?.min(size)),
            None => Ok(size),
        }
    }

    /// Prunes the events with seq below `seq` (retention): in one
    /// transaction, their body becomes empty and their journey, RP, IdP and
    /// outcome columns NULL, so no personal data is left of them; their row,
    /// seq, id, time, event type and leaf hash stay, so the tree's nodes,
    /// every root, checkpoint and proof (which need only hashes) are
    /// unchanged and the self-check still covers them. Queries no longer
    /// return them. Returns how many events it pruned: 0 when they all were
    /// already (pruning is idempotent). Fails with
    /// [`StoreError::InvalidInput`] (nothing pruned) for a `seq` beyond the
    /// log's size.
    ///
    /// Irreversible: the caller must first have written an archived, signed
    /// export of these events (`hub audit prune` does), and usually takes the
    /// bound from [`Database::audit_seq_at`]. On SQLite the transaction
    /// holds the database's write lock throughout, so appends wait for a
    /// large prune (and time out after the busy timeout): prune in steps of
    /// a bounded number of events on a busy SQLite hub. The old values can
    /// linger in free database pages until they are reused or reclaimed
    /// (`VACUUM` on either backend).
    pub async fn prune_audit_events_before(&self, seq: u64) -> Result<u64, StoreError> {
        let below = to_i64(seq)?;
        let pruned = with_conn!(self, sql, |conn, q| q::prune_audit(&mut conn, below)
            .await?);
        tracing::info!(before = seq, pruned, "pruned audit events");
        Ok(pruned as u64)
    }

    /// How many of the oldest events are pruned: those with a seq below this
    /// have lost their body, the others are intact. Where the next export
    /// before pruning starts.
    pub async fn audit_pruned_below(&self) -> Result<u64, StoreError> {
        let below = with_conn!(self, sql, |conn, q| q::audit_pruned_below(&mut conn)
            .await?)
        .ok_or_else(|| StoreError::Corrupt("audit_head has no row".into()))?;
        u64::try_from(below).map_err(|_| {
            StoreError::Corrupt(format!("audit_head pruned_below {below} is negative"))
        })
    }
}
