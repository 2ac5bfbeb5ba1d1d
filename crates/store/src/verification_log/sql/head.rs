//! `audit_head`: the log's size, time bookkeeping, pruning bound and seal.

/// The statements, for the connection type `$conn` (see [`super`]).
macro_rules! head_statements {
    ($conn:ty) => {
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
    };
}
pub(crate) use head_statements;
