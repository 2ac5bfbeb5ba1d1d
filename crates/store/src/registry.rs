//! The registry of relying parties and identity providers (migration `registry`): the
//! entries, and the revision every change bumps, which each hub instance polls to learn
//! within seconds that it must reload.

use crate::database::{with_conn, Database};
use crate::error::StoreError;
use crate::queries;
pub use crate::queries::RegistryRow;

impl Database {
    /// The registry's revision: 0 before any entry, one more after each change.
    pub async fn registry_revision(&self) -> Result<i64, StoreError> {
        with_conn!(self, |conn, q| Ok(q::registry_revision(&mut conn).await?))
    }

    /// Every entry, retired ones included, ordered by kind and id.
    pub async fn registry_entries(&self) -> Result<Vec<RegistryRow>, StoreError> {
        with_conn!(self, |conn, q| Ok(q::registry_entries(&mut conn).await?))
    }

    /// Stores `row` if the entry's stored revision is still `expected` (`None`: there is
    /// no such entry yet, so this adds it). Returns the registry's new revision, which the
    /// entry now carries, or [`StoreError::Conflict`] when the entry exists although
    /// `expected` is `None` (a duplicate id) or was changed since it was read.
    pub async fn put_registry_entry(
        &self,
        row: RegistryRow,
        expected: Option<i64>,
    ) -> Result<i64, StoreError> {
        let what = format!("{} {}", row.kind, row.id);
        let written = with_conn!(self, |conn, q| q::put_registry_entry(
            &mut conn, row, expected
        )
        .await?);
        written.ok_or_else(|| match expected {
            None => StoreError::Conflict(format!("{what} already exists")),
            Some(_) => StoreError::Conflict(format!("{what} was changed meanwhile")),
        })
    }
}
