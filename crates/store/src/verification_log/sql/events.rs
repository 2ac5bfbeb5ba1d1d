//! Reading events and tree nodes: auditors' pages, one event, the nodes a
//! root or proof needs, the seq a time reaches.

/// The statements, for the connection type `$conn` (see [`super`]).
macro_rules! event_statements {
    ($conn:ty) => {
        /// The first seq whose `max_time` is at or after `time` (one index
        /// descent: `max_time` never decreases along seq).
        pub(crate) async fn audit_first_seq_reaching(
            conn: &mut $conn,
            time: &str,
        ) -> QueryResult<Option<i64>> {
            use crate::schema::audit_events::dsl as ae;
            ae::audit_events
                .filter(ae::max_time.ge(time))
                .order((ae::max_time, ae::seq))
                .select(ae::seq)
                .first(conn)
                .await
                .optional()
        }

        /// Stored tree nodes `(level, idx, hex hash)` among `coords`, in one
        /// statement (`node_rows_query!`). Missing ones are simply absent
        /// from the result.
        pub(crate) async fn audit_node_rows(
            conn: &mut $conn,
            coords: &[(i32, i64)],
        ) -> QueryResult<Vec<(i32, i64, String)>> {
            if coords.is_empty() {
                return Ok(Vec::new());
            }
            $crate::verification_log::sql::events::node_rows_query!(coords)
                .load(conn)
                .await
        }

        /// One page of `(seq, body)` in seq order, pruned events left out.
        pub(crate) async fn audit_event_page(
            conn: &mut $conn,
            q: &AuditEventQuery<'_>,
        ) -> QueryResult<Vec<(i64, String)>> {
            use crate::schema::audit_events::dsl as ae;
            let mut query = ae::audit_events
                .filter(ae::pruned.eq(0))
                .select((ae::seq, ae::body))
                .order(ae::seq)
                .limit(q.limit)
                .into_boxed();
            if let Some(after) = q.after_seq {
                query = query.filter(ae::seq.gt(after));
            }
            if let Some(from) = q.seq_from {
                query = query.filter(ae::seq.ge(from));
            }
            if let Some(below) = q.seq_below {
                query = query.filter(ae::seq.lt(below));
            }
            if let Some(from) = q.from {
                query = query.filter(ae::time.ge(from));
            }
            if let Some(to) = q.to {
                query = query.filter(ae::time.lt(to));
            }
            if let Some(rp) = q.rp {
                query = query.filter(ae::rp_id.eq(rp));
            }
            if let Some(idp) = q.idp {
                query = query.filter(ae::idp_id.eq(idp));
            }
            if let Some(t) = q.event_type {
                query = query.filter(ae::event_type.eq(t));
            }
            if let Some(outcome) = q.outcome {
                query = query.filter(ae::outcome.eq(outcome));
            }
            if let Some(journey) = q.journey_id {
                query = query.filter(ae::journey_id.eq(journey));
            }
            query.load(conn).await
        }

        /// The body of the event at `seq`, unless it was pruned.
        pub(crate) async fn audit_event_body(
            conn: &mut $conn,
            seq: i64,
        ) -> QueryResult<Option<String>> {
            use crate::schema::audit_events::dsl as ae;
            ae::audit_events
                .find(seq)
                .filter(ae::pruned.eq(0))
                .select(ae::body)
                .first(conn)
                .await
                .optional()
        }
    };
}
pub(crate) use event_statements;

/// The statement of `audit_node_rows` for non-empty `coords`: level 0 from
/// `audit_events.leaf_hash`, the others from `audit_nodes`. A builder shared
/// by the async connections and SQLite's blocking one (the append), each
/// running it with its own `RunQueryDsl`.
macro_rules! node_rows_query {
    ($coords:expr) => {{
        use diesel::sql_types::{Bool, Integer};
        use $crate::schema::audit_events::dsl as ae;
        use $crate::schema::audit_nodes::dsl as an;
        let coords: &[(i32, i64)] = $coords;
        let leaves: Vec<i64> = coords.iter().filter(|c| c.0 == 0).map(|c| c.1).collect();
        let leaf_rows = ae::audit_events.filter(ae::seq.eq_any(leaves)).select((
            0_i32.into_sql::<Integer>(),
            ae::seq,
            ae::leaf_hash,
        ));
        // No constant `false` to OR onto: SQLite then scans the whole table
        // instead of one index search per term (the MULTI-INDEX OR plan).
        let mut inner = coords.iter().filter(|c| c.0 != 0);
        let node_rows = an::audit_nodes
            .select((an::level, an::idx, an::hash))
            .into_boxed();
        let mut node_rows = match inner.next() {
            Some(&(level, idx)) => node_rows.filter(an::level.eq(level).and(an::idx.eq(idx))),
            None => node_rows.filter(false.into_sql::<Bool>()),
        };
        for &(level, idx) in inner {
            node_rows = node_rows.or_filter(an::level.eq(level).and(an::idx.eq(idx)));
        }
        leaf_rows.union_all(node_rows)
    }};
}
pub(crate) use node_rows_query;
