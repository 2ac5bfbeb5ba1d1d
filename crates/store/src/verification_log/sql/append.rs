//! The statements of an append that both backends send, written once and run
//! by each with its own `RunQueryDsl` (SQLite's append runs on the blocking
//! connection, PostgreSQL's on the async one). The algorithm they serve is
//! [`crate::verification_log::append`]'s.

/// Rows per multi-row INSERT of audit events: 11 bind parameters each, well
/// under PostgreSQL's 65,535 and SQLite's 32,766 per statement.
pub(crate) const AUDIT_EVENT_CHUNK: usize = 1000;
/// Rows per multi-row INSERT of audit nodes (3 parameters each).
pub(crate) const AUDIT_NODE_CHUNK: usize = 5000;

/// `UPDATE audit_head SET size = size + $len ... RETURNING size, max_time,
/// max_lag_ms, seal`: claims `$len` seqs and takes the head row's lock (like
/// `SELECT ... FOR UPDATE`) in one round trip.
macro_rules! claim_head {
    ($len:expr) => {{
        use $crate::schema::audit_head::dsl as h;
        diesel::update(h::audit_head.filter(h::id.eq(1)))
            .set(h::size.eq(h::size + $len))
            .returning((h::size, h::max_time, h::max_lag_ms, h::seal))
    }};
}
pub(crate) use claim_head;

/// `UPDATE audit_head SET max_time, max_lag_ms, seal`: the head's time
/// bookkeeping and seal after the append `$writes` (an `AppendWrites`).
macro_rules! update_head {
    ($writes:expr) => {{
        use $crate::schema::audit_head::dsl as h;
        let writes: &$crate::verification_log::append::AppendWrites = $writes;
        diesel::update(h::audit_head.filter(h::id.eq(1))).set((
            h::max_time.eq(writes.max_time.as_deref()),
            h::max_lag_ms.eq(writes.max_lag_ms),
            h::seal.eq(writes.seal.as_str()),
        ))
    }};
}
pub(crate) use update_head;
