//! Every SQL statement of the verification log.
//!
//! The statements both backends share are written once, with diesel's query
//! builder, in one macro per concern ([`head`], [`events`], [`retention`],
//! [`checkpoints`], [`self_check`]), instantiated for each connection type in
//! [`sqlite`] and [`pg`]: macros rather than generic functions, because
//! diesel's bounds for "any async connection that can run this statement" are
//! long and brittle while the statement text is identical. An append's SQL is
//! per backend ([`append_sqlite`], [`append_pg`]) around statements written
//! once ([`append`]); its algorithm is not SQL and lives in
//! [`crate::verification_log::append`].

mod append;
mod append_pg;
mod append_sqlite;
mod checkpoints;
mod events;
mod head;
mod retention;
mod self_check;

/// The log's statements on SQLite (`SyncConnectionWrapper<SqliteConnection>`).
pub(crate) mod sqlite {
    use diesel::prelude::*;
    use diesel_async::{AsyncConnection, RunQueryDsl};

    use crate::error::StoreError;
    use crate::verification_log::rows::{
        AuditCheckRow, AuditEventQuery, CheckpointRow, HeadRow, TailRow,
    };

    pub(crate) use super::append_sqlite::append;
    pub(crate) use crate::queries::sqlite::Conn;

    super::head::head_statements!(Conn);
    super::events::event_statements!(Conn);
    super::retention::retention_statements!(Conn);
    super::checkpoints::checkpoint_statements!(Conn);
    super::self_check::self_check_statements!(Conn);

    /// Self-check counts in one read transaction (a single snapshot).
    pub(crate) async fn audit_tail(conn: &mut Conn) -> QueryResult<TailRow> {
        conn.transaction(async |c| audit_tail_counts(c).await).await
    }
}

/// The log's statements on PostgreSQL (`AsyncPgConnection`).
pub(crate) mod pg {
    use diesel::prelude::*;
    use diesel_async::{AsyncConnection, RunQueryDsl};

    use crate::error::StoreError;
    use crate::verification_log::rows::{
        AuditCheckRow, AuditEventQuery, CheckpointRow, HeadRow, TailRow,
    };

    pub(crate) use super::append_pg::{append, append_at};
    pub(crate) use crate::queries::pg::Conn;

    super::head::head_statements!(Conn);
    super::events::event_statements!(Conn);
    super::retention::retention_statements!(Conn);
    super::checkpoints::checkpoint_statements!(Conn);
    super::self_check::self_check_statements!(Conn);

    /// Self-check counts in one REPEATABLE READ snapshot.
    pub(crate) async fn audit_tail(conn: &mut Conn) -> QueryResult<TailRow> {
        conn.build_transaction()
            .repeatable_read()
            .read_only()
            .run(async |c| audit_tail_counts(c).await)
            .await
    }
}
