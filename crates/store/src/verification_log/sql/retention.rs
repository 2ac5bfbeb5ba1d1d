//! Pruning: blanking the oldest events (retention).

/// The statements, for the connection type `$conn` (see [`super`]).
macro_rules! retention_statements {
    ($conn:ty) => {
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
    };
}
pub(crate) use retention_statements;
