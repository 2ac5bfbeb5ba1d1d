//! Published checkpoints (signed tree heads for auditors and witnesses) and
//! the head's seal (a checkpoint of the whole log, signed by every append).

use super::encoding::{decode_root, head_size, stored_seq, to_i64};
use super::reads::MAX_AUDIT_PAGE;
use super::rows::CheckpointRow;
use super::seal::{decode_seal, LogSeal};
use super::sql;
use crate::database::{with_conn, Database};
use crate::error::StoreError;

impl Database {
    /// Stores a signed checkpoint. Refuses ([`StoreError::InvalidInput`]) one
    /// whose root is not this log's root at its size, or that contradicts a
    /// checkpoint already stored for that size (a fork); saving the same
    /// checkpoint twice is a no-op. The signature is not checked here (the
    /// store holds no keys).
    pub async fn save_checkpoint(&self, cp: &audit::Checkpoint) -> Result<(), StoreError> {
        let root = decode_root(&cp.root_hash).ok_or_else(|| {
            StoreError::InvalidInput("checkpoint root_hash is not a base64 SHA-256 hash".into())
        })?;
        if self.audit_root(cp.tree_size).await? != root {
            return Err(StoreError::InvalidInput(format!(
                "checkpoint root is not the audit log's root at size {}",
                cp.tree_size
            )));
        }
        let row = CheckpointRow {
            tree_size: to_i64(cp.tree_size)?,
            root_hash: cp.root_hash.clone(),
            time: cp.time.clone(),
            signature: cp.signature.clone(),
        };
        let stored = with_conn!(self, sql, |conn, q| q::insert_checkpoint(&mut conn, &row)
            .await?);
        if decode_root(&stored.root_hash) != Some(root) {
            return Err(StoreError::InvalidInput(format!(
                "a different checkpoint is already stored for size {}",
                cp.tree_size
            )));
        }
        Ok(())
    }

    /// The head's seal: a checkpoint of the whole log as the last append left
    /// it, signed then. `None` while the log is empty (or not yet sealed).
    /// What `GET /checkpoint` serves: reading it signs nothing.
    pub async fn audit_seal(&self) -> Result<Option<audit::Checkpoint>, StoreError> {
        let head = with_conn!(self, sql, |conn, q| q::audit_sealed_head(&mut conn).await?);
        let (_, _, seal) =
            head.ok_or_else(|| StoreError::Corrupt("audit_head has no row".into()))?;
        seal.as_deref().map(decode_seal).transpose()
    }

    /// Seals a head that has events but no seal: a log written before seals
    /// existed. Trust on first use (what is there is taken as it is), so the
    /// hub does it once, at start-up, and says so. Returns whether it sealed.
    pub async fn seal_unsealed_head(&self, seal: &LogSeal) -> Result<bool, StoreError> {
        let Some((size, _, None)) =
            with_conn!(self, sql, |conn, q| q::audit_sealed_head(&mut conn).await?)
        else {
            return Ok(false);
        };
        let size = head_size(Some(size))?;
        if size == 0 {
            return Ok(false);
        }
        let sealed = seal.sign(size, &self.audit_root(size).await?)?;
        let done = with_conn!(self, sql, |conn, q| q::seal_head(
            &mut conn,
            to_i64(size)?,
            &sealed
        )
        .await?);
        Ok(done == 1)
    }

    /// The checkpoint with the largest tree size, if any.
    pub async fn latest_checkpoint(&self) -> Result<Option<audit::Checkpoint>, StoreError> {
        let row = with_conn!(self, sql, |conn, q| q::latest_checkpoint(&mut conn).await?);
        row.map(checkpoint).transpose()
    }

    /// The published checkpoints with a tree size above `after` (all with `None`), at
    /// most `limit` (capped at [`MAX_AUDIT_PAGE`]), by ascending tree size: a page of
    /// the list auditors and witnesses read.
    pub async fn checkpoints_after(
        &self,
        after: Option<u64>,
        limit: u32,
    ) -> Result<Vec<audit::Checkpoint>, StoreError> {
        let after = after.map_or(Ok(-1), to_i64)?;
        let limit = i64::from(limit.min(MAX_AUDIT_PAGE));
        let rows = with_conn!(self, sql, |conn, q| q::checkpoints_after(
            &mut conn, after, limit
        )
        .await?);
        rows.into_iter().map(checkpoint).collect()
    }

    /// The published checkpoint of `size` events, if there is one.
    pub async fn checkpoint_at(&self, size: u64) -> Result<Option<audit::Checkpoint>, StoreError> {
        let after = size.checked_sub(1);
        let page = self.checkpoints_after(after, 1).await?;
        Ok(page.into_iter().find(|c| c.tree_size == size))
    }

    /// Every stored checkpoint, by ascending tree size.
    pub async fn checkpoints(&self) -> Result<Vec<audit::Checkpoint>, StoreError> {
        let rows = with_conn!(self, sql, |conn, q| q::checkpoints(&mut conn).await?);
        rows.into_iter().map(checkpoint).collect()
    }
}

/// A stored checkpoint as the `audit` crate has it.
fn checkpoint(row: CheckpointRow) -> Result<audit::Checkpoint, StoreError> {
    Ok(audit::Checkpoint {
        tree_size: stored_seq(row.tree_size)?,
        root_hash: row.root_hash,
        time: row.time,
        signature: row.signature,
    })
}
