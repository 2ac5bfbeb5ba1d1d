//! Signed checkpoints of the verification log, made on demand and periodically, and the
//! periodic self-check of the stored log.

use std::time::Duration;

use actix_web::web;
use store::{Database, StoreError};

use crate::app::Hub;

/// Errors making a checkpoint.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error("signing: {0}")]
    Audit(#[from] audit::AuditError),
}

/// The latest checkpoint, after signing a new one if the log has grown since.
pub async fn ensure_current(hub: &Hub) -> Result<audit::Checkpoint, CheckpointError> {
    ensure_checkpoint(&hub.db, &hub.signing_key).await
}

/// [`ensure_current`] for tools that have a database and the key but no running hub.
pub async fn ensure_checkpoint(
    db: &Database,
    key: &token::SigningKey,
) -> Result<audit::Checkpoint, CheckpointError> {
    let size = db.audit_size().await?;
    if let Some(latest) = db.latest_checkpoint().await? {
        if latest.tree_size >= size {
            return Ok(latest);
        }
    }
    let root = db.audit_root(size).await?;
    let checkpoint = audit::Checkpoint::sign(size, &root, audit::rfc3339_now(), key)?;
    db.save_checkpoint(&checkpoint).await?;
    // Another instance may have saved one for this size first: serve what is stored.
    Ok(db.latest_checkpoint().await?.unwrap_or(checkpoint))
}

/// Runs forever: a checkpoint every `checkpoint_interval_secs`, and the self-check every
/// `self_check_interval_secs` (when non-zero).
pub(crate) async fn run(hub: web::Data<Hub>) {
    let every = Duration::from_secs(hub.settings.audit.checkpoint_interval_secs.max(1));
    let check_every = hub.settings.audit.self_check_interval_secs;
    let mut last_check = std::time::Instant::now();
    loop {
        tokio::time::sleep(every).await;
        if let Err(e) = ensure_current(&hub).await {
            tracing::warn!(error = %e, "could not make a checkpoint");
        }
        if check_every > 0 && last_check.elapsed() >= Duration::from_secs(check_every) {
            last_check = std::time::Instant::now();
            match hub.db.audit_self_check().await {
                Ok(report) if report.is_clean() => {
                    tracing::info!("verification log self-check passed")
                }
                Ok(report) => tracing::error!(?report, "verification log self-check FAILED"),
                Err(e) => tracing::warn!(error = %e, "verification log self-check could not run"),
            }
        }
    }
}
