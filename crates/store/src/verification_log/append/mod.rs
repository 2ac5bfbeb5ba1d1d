//! Appending to the log: [`Database::append_audit_events`], and how a
//! PostgreSQL handle chooses between appending at its own tip (one statement)
//! and reading the head. The algorithm itself is in [`algorithm`], once.

mod algorithm;
mod tip;

use std::ops::Range;

pub(crate) use algorithm::{
    append_reading_head, land_at_tip, AppendBatch, AppendSql, AppendWrites, Landing,
};
pub(crate) use tip::AuditTip;

use crate::database::{pool_error, Database, Pools};
use crate::error::StoreError;
use crate::verification_log::seal::LogSeal;
use crate::verification_log::sql;

/// Where an append landed: the events got `first_seq..size`, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendedRange {
    /// Sequence number (leaf index) of the batch's first event.
    pub first_seq: u64,
    /// The log's size after the append: one past the batch's last event.
    pub size: u64,
}

impl AppendedRange {
    /// The sequence numbers the batch received.
    pub fn seqs(&self) -> Range<u64> {
        self.first_seq..self.size
    }
}

/// What a PostgreSQL handle knows of the audit log between its appends.
#[derive(Debug, Default)]
pub(crate) struct AppendState {
    /// Where its last append left the log, for the next one to continue from.
    tip: Option<AuditTip>,
    /// The log's size after its last append.
    last_end: Option<u64>,
    /// Whether its last append found that another instance had appended
    /// since the one before: while that goes on, appends read the head at
    /// once (a tip would be stale: trying it costs a round trip and a wait
    /// for the head row), and keep no tip.
    shared: bool,
}

impl Database {
    /// Appends `events` to the audit log, in order, as one transaction, and
    /// returns the sequence numbers they received.
    ///
    /// The head row is locked for the transaction, so appends from every hub
    /// instance sharing the database form one total order without gaps: on
    /// PostgreSQL by the row lock, on SQLite by `BEGIN IMMEDIATE`. The events,
    /// every tree node their leaves complete and the new size are written
    /// together (multi-row INSERTs), so the log is never seen half-appended.
    /// Events are serialised and hashed before the lock is taken. Fails with
    /// [`StoreError::InvalidInput`] (nothing written) for an event whose time
    /// is not RFC 3339; with [`StoreError::Database`] for a duplicate event id.
    ///
    /// Every append seals the head it leaves with `seal` (see [`LogSeal`]);
    /// one that reads the head first checks the seal there, and fails with
    /// [`StoreError::Seal`], writing nothing, when the log is not the one
    /// sealed: nothing is built on rows changed outside the hub.
    pub async fn append_audit_events(
        &self,
        events: &[audit::Event],
        seal: &LogSeal,
    ) -> Result<AppendedRange, StoreError> {
        if events.is_empty() {
            let size = self.audit_size().await?;
            return Ok(AppendedRange {
                first_seq: size,
                size,
            });
        }
        let batch = AppendBatch::prepare(events)?;
        let range = match &self.pools {
            Pools::Sqlite(pool) => {
                let mut conn = pool.get().await.map_err(pool_error)?;
                sql::sqlite::append(&mut conn, batch, seal.clone()).await?
            }
            Pools::Postgres {
                pools, audit_tip, ..
            } => {
                let mut state = audit_tip.lock().await;
                let mut conn = pools.get().await.map_err(pool_error)?;
                // On any error the tip is dropped: the next append reads the head.
                let known = state.tip.take();
                let fast = match &known {
                    Some(known) if !state.shared => {
                        sql::pg::append_at(&mut conn, known, &batch, seal)
                            .await?
                            .map(|(range, tip)| (range, Some(tip)))
                    }
                    _ => None,
                };
                let (range, next) = match fast {
                    Some(appended) => appended,
                    None => {
                        // While other instances append too, a tip would be stale by
                        // the next append: keep none. (The whole frontier is read
                        // anyway: the seal extended is checked against its root.)
                        let keep_tip = !state.shared;
                        let appended = sql::pg::append(&mut conn, &batch, keep_tip, seal).await?;
                        state.shared = state
                            .last_end
                            .is_some_and(|end| end != appended.0.first_seq);
                        appended
                    }
                };
                state.last_end = Some(range.size);
                state.tip = next;
                range
            }
        };
        tracing::debug!(
            first_seq = range.first_seq,
            size = range.size,
            "appended audit events"
        );
        Ok(range)
    }

    /// Where this handle's last append left the log, if it holds a tip
    /// (PostgreSQL; the next append then takes one statement).
    #[cfg(feature = "test-support")]
    pub async fn audit_tip_size(&self) -> Option<u64> {
        match &self.pools {
            Pools::Sqlite(_) => None,
            Pools::Postgres { audit_tip, .. } => {
                audit_tip.lock().await.tip.as_ref().map(|t| t.size)
            }
        }
    }
}
