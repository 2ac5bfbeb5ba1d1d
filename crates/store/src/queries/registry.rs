//! The registry of relying parties and identity providers: one row per entry and
//! the revision counter every change bumps.

use diesel::prelude::*;

use crate::schema::registry_entries;

/// A registry entry as stored.
#[derive(Clone, PartialEq, Eq, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = registry_entries)]
pub struct RegistryRow {
    /// `relying_party` or `identity_provider`.
    pub kind: String,
    pub id: String,
    /// The entry's settings as JSON.
    pub document: String,
    /// `active`, `disabled` or `retired`.
    pub status: String,
    /// `config` (seeded from the configuration file) or `admin` (changed through the API).
    pub source: String,
    /// The registry revision of its last change.
    pub revision: i64,
    /// RFC 3339 UTC.
    pub updated_at: String,
    /// Who made the last change: an admin client id, or `config`.
    pub updated_by: String,
}

/// Without the document, which may hold secrets.
impl std::fmt::Debug for RegistryRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryRow")
            .field("kind", &self.kind)
            .field("id", &self.id)
            .field("status", &self.status)
            .field("source", &self.source)
            .field("revision", &self.revision)
            .finish_non_exhaustive()
    }
}

/// The statements, for the connection type `$conn` (see [`super`]).
macro_rules! registry_statements {
    ($conn:ty) => {
        pub(crate) async fn registry_revision(conn: &mut $conn) -> QueryResult<i64> {
            use crate::schema::registry_revision::dsl as r;
            r::registry_revision
                .filter(r::id.eq(1))
                .select(r::revision)
                .first(conn)
                .await
        }

        pub(crate) async fn registry_entries(
            conn: &mut $conn,
        ) -> QueryResult<Vec<super::registry::RegistryRow>> {
            use crate::schema::registry_entries::dsl as e;
            e::registry_entries
                .order((e::kind, e::id))
                .select(super::registry::RegistryRow::as_select())
                .load(conn)
                .await
        }

        /// Writes `row` in one transaction if the stored entry's revision is `expected`
        /// (`None`: no entry yet), stamping it with the registry's next revision; returns
        /// that revision, or `None` (nothing written) when the expectation failed. The
        /// counter is written first, so that SQLite takes its write lock before reading
        /// and PostgreSQL's row lock makes concurrent writers take turns.
        pub(crate) async fn put_registry_entry(
            conn: &mut $conn,
            mut row: super::registry::RegistryRow,
            expected: Option<i64>,
        ) -> Result<Option<i64>, StoreError> {
            use crate::schema::registry_entries::dsl as e;
            use crate::schema::registry_revision::dsl as r;
            conn.transaction::<_, StoreError, _>(async move |c| {
                let revision: i64 = diesel::update(r::registry_revision.filter(r::id.eq(1)))
                    .set(r::revision.eq(r::revision + 1))
                    .returning(r::revision)
                    .get_result(c)
                    .await?;
                let stored: Option<i64> = e::registry_entries
                    .filter(e::kind.eq(&row.kind))
                    .filter(e::id.eq(&row.id))
                    .select(e::revision)
                    .first(c)
                    .await
                    .optional()?;
                if stored != expected {
                    // Rolls the counter back with the transaction.
                    return Err(StoreError::Conflict(format!(
                        "{} {} changed meanwhile",
                        row.kind, row.id
                    )));
                }
                row.revision = revision;
                if stored.is_some() {
                    diesel::update(
                        e::registry_entries
                            .filter(e::kind.eq(&row.kind))
                            .filter(e::id.eq(&row.id)),
                    )
                    .set(&row)
                    .execute(c)
                    .await?;
                } else {
                    diesel::insert_into(e::registry_entries)
                        .values(&row)
                        .execute(c)
                        .await?;
                }
                Ok(revision)
            })
            .await
            .map(Some)
            .or_else(|e| match e {
                StoreError::Conflict(_) => Ok(None),
                e => Err(e),
            })
        }
    };
}
pub(crate) use registry_statements;
