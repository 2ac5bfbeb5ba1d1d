//! Record links: the record an IdP subject was matched to at an RP
//! (matching cycle 0), and the one statement that reads it or, failing
//! that, the candidates (cycles 0 and 1 together).

use diesel::prelude::*;

use crate::schema::record_links;

/// A record link as stored.
#[derive(Insertable)]
#[diesel(table_name = record_links)]
pub(crate) struct LinkRow<'a> {
    pub(crate) rp_id: &'a str,
    pub(crate) idp_id: &'a str,
    pub(crate) idp_subject: &'a str,
    pub(crate) record_id: &'a str,
    pub(crate) created_at: i64,
}

/// The statements, for the connection type `$conn` (see [`super`]).
macro_rules! record_link_statements {
    ($conn:ty) => {
        pub(crate) async fn record_link(
            conn: &mut $conn,
            rp: &str,
            idp: &str,
            subject: &str,
        ) -> QueryResult<Option<String>> {
            use crate::schema::record_links::dsl as rl;
            rl::record_links
                .filter(rl::rp_id.eq(rp))
                .filter(rl::idp_id.eq(idp))
                .filter(rl::idp_subject.eq(subject))
                .select(rl::record_id)
                .first(conn)
                .await
                .optional()
        }

        pub(crate) async fn upsert_record_link(
            conn: &mut $conn,
            row: &LinkRow<'_>,
        ) -> QueryResult<()> {
            use crate::schema::record_links::dsl as rl;
            diesel::insert_into(rl::record_links)
                .values(row)
                .on_conflict((rl::rp_id, rl::idp_id, rl::idp_subject))
                .do_update()
                .set((
                    rl::record_id.eq(excluded(rl::record_id)),
                    rl::created_at.eq(excluded(rl::created_at)),
                ))
                .execute(conn)
                .await
                .map(|_| ())
        }

        /// The record this IdP subject is linked to at `rp` (cycle 0) and, only when
        /// there is none, the candidates of [`candidate_rows`] (cycle 1), at most
        /// `limit`, in one statement: `(record_id, None)` for the link,
        /// `(record_id, Some(dataset))` for each candidate. Written without SQL
        /// literals or positional ordering, so that PostgreSQL keeps it prepared
        /// (diesel caches only statements of a static shape).
        pub(crate) async fn link_or_candidate_rows(
            conn: &mut $conn,
            rp: &str,
            idp: &str,
            subject: &str,
            keys: &[String],
            limit: i64,
        ) -> QueryResult<Vec<(String, Option<String>)>> {
            use crate::schema::department_record_keys::dsl as dk;
            use crate::schema::department_records::dsl as dr;
            use crate::schema::record_links::dsl as rl;
            use diesel::dsl::{exists, not};
            use diesel::sql_types::{Nullable, Text};
            let link = || {
                rl::record_links
                    .filter(rl::rp_id.eq(rp))
                    .filter(rl::idp_id.eq(idp))
                    .filter(rl::idp_subject.eq(subject))
            };
            let ids = dk::department_record_keys
                .filter(dk::rp_id.eq(rp))
                .filter(dk::blocking_key.eq_any(keys))
                .select(dk::record_id);
            let candidates = dr::department_records
                .filter(dr::rp_id.eq(rp))
                .filter(dr::record_id.eq_any(ids))
                .filter(not(exists(link().select(rl::record_id))))
                .order(dr::record_id)
                .limit(limit)
                .select((dr::record_id, dr::dataset.nullable()));
            link()
                .select((rl::record_id, None::<String>.into_sql::<Nullable<Text>>()))
                .union_all(candidates)
                .load(conn)
                .await
        }
    };
}
pub(crate) use record_link_statements;
