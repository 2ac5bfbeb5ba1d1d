//! The self-check's reads: whole rows by page, the nodes a page completes,
//! and the counts it compares with the head.

/// The statements, for the connection type `$conn` (see [`super`]).
macro_rules! self_check_statements {
    ($conn:ty) => {
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
    };
}
pub(crate) use self_check_statements;
