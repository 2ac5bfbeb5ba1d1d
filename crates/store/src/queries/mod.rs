//! Every SQL statement about department records, record links and the
//! schema itself; the verification log's are in
//! [`crate::verification_log`]'s `sql` module.
//!
//! The statements both backends share are written once, with diesel's query
//! builder, in one macro per concern ([`records`], [`record_links`],
//! [`migrations`], [`server`]), instantiated for each connection type in
//! [`sqlite`] (`SyncConnectionWrapper<SqliteConnection>`) and [`pg`]
//! (`AsyncPgConnection`): macros rather than generic functions, because
//! diesel's bounds for "any async connection that can run this statement" are
//! long and brittle while the statement text is identical. Only what
//! genuinely differs is written per backend: the bulk import and the key
//! backfill ([`record_import_sqlite`]: cached single-row statements in one
//! blocking task; [`record_import_pg`]: a few statements of `UNNEST`ed array
//! binds), the catalog lookup for diesel's migration table, and PostgreSQL's
//! advisory lock and `CREATE DATABASE` (test support).

mod migrations;
mod record_import_pg;
mod record_import_sqlite;
mod record_links;
mod records;
mod registry;
mod server;

pub(crate) use record_links::LinkRow;
pub(crate) use records::{KeyedRecord, UnkeyedRow};
pub use registry::RegistryRow;

/// SQLite, through diesel-async's `SyncConnectionWrapper`.
pub(crate) mod sqlite {
    use diesel::prelude::*;
    use diesel::upsert::excluded;
    use diesel_async::sync_connection_wrapper::SyncConnectionWrapper;
    use diesel_async::{AsyncConnection as _, RunQueryDsl};

    use crate::error::StoreError;

    use super::record_links::LinkRow;

    /// The async connection type the SQLite pool hands out.
    pub(crate) type Conn = SyncConnectionWrapper<diesel::SqliteConnection>;

    super::records::record_statements!(Conn);
    super::record_links::record_link_statements!(Conn);
    super::migrations::migration_statements!(Conn);
    super::server::server_statements!(Conn);
    super::registry::registry_statements!(Conn);

    pub(crate) use super::migrations::sqlite::migrations_table_exists;
    pub(crate) use super::record_import_sqlite::{backfill_keys, import_records};
}

/// PostgreSQL, through diesel-async's pure-Rust `AsyncPgConnection` (tokio-postgres).
pub(crate) mod pg {
    use diesel::prelude::*;
    use diesel::upsert::excluded;
    use diesel_async::{AsyncConnection as _, AsyncPgConnection, RunQueryDsl};

    use crate::error::StoreError;

    use super::record_links::LinkRow;

    /// The async connection type the PostgreSQL pool hands out.
    pub(crate) type Conn = AsyncPgConnection;

    super::records::record_statements!(Conn);
    super::record_links::record_link_statements!(Conn);
    super::migrations::migration_statements!(Conn);
    super::server::server_statements!(Conn);
    super::registry::registry_statements!(Conn);

    pub(crate) use super::migrations::pg::{lock_migrations, migrations_table_exists};
    pub(crate) use super::record_import_pg::{backfill_keys, import_records};
    #[cfg(feature = "test-support")]
    pub(crate) use super::server::pg::{create_database, drop_database};
}
