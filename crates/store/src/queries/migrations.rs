//! Diesel's migration table (read-only: what is applied) and, on PostgreSQL,
//! the lock that makes concurrent `hub migrate` runs take turns.

/// The statements, for the connection type `$conn` (see [`super`]).
macro_rules! migration_statements {
    ($conn:ty) => {
        /// Versions recorded in diesel's migration table; the caller checks
        /// that the table exists first ([`migrations_table_exists`]).
        pub(crate) async fn applied_migrations(conn: &mut $conn) -> QueryResult<Vec<String>> {
            use crate::schema::__diesel_schema_migrations::dsl as m;
            m::__diesel_schema_migrations
                .select(m::version)
                .order(m::version)
                .load(conn)
                .await
        }
    };
}
pub(crate) use migration_statements;

/// SQLite's catalog lookup.
pub(super) mod sqlite {
    use diesel::dsl::sql;
    use diesel::prelude::*;
    use diesel::sql_types::Bool;
    use diesel_async::RunQueryDsl;

    use crate::queries::sqlite::Conn;

    /// Whether diesel's migration table exists yet (it does not before the
    /// first `migrate`). Read from the catalog so a status check never creates it.
    pub(crate) async fn migrations_table_exists(conn: &mut Conn) -> QueryResult<bool> {
        diesel::select(sql::<Bool>(
            "EXISTS (SELECT 1 FROM sqlite_master \
             WHERE type = 'table' AND name = '__diesel_schema_migrations')",
        ))
        .get_result(conn)
        .await
    }
}

/// PostgreSQL's catalog lookup and migration lock.
pub(super) mod pg {
    use diesel::dsl::sql;
    use diesel::prelude::*;
    use diesel::sql_types::Bool;
    use diesel_async::RunQueryDsl;

    use crate::queries::pg::Conn;

    /// Whether diesel's migration table exists yet (resolved through
    /// `search_path`, as diesel creates it). Never creates it.
    pub(crate) async fn migrations_table_exists(conn: &mut Conn) -> QueryResult<bool> {
        diesel::select(sql::<Bool>(
            "to_regclass('__diesel_schema_migrations') IS NOT NULL",
        ))
        .get_result(conn)
        .await
    }

    /// Key of the session-level advisory lock held while migrating, so that
    /// several hub instances running `hub migrate` at once apply each
    /// migration exactly once (the others wait, then find nothing pending).
    const MIGRATION_LOCK_KEY: i64 = 0x6875_625f_6d69_6772; // "hub_migr"

    /// Waits for the migration lock; released when the connection closes.
    pub(crate) async fn lock_migrations(conn: &mut Conn) -> QueryResult<()> {
        diesel::sql_query("SELECT pg_advisory_lock($1)")
            .bind::<diesel::sql_types::BigInt, _>(MIGRATION_LOCK_KEY)
            .execute(conn)
            .await
            .map(|_| ())
    }
}
