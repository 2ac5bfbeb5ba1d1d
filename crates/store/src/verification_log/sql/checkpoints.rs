//! `audit_checkpoints`: published checkpoints.

/// The statements, for the connection type `$conn` (see [`super`]).
macro_rules! checkpoint_statements {
    ($conn:ty) => {
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
    };
}
pub(crate) use checkpoint_statements;
