//! The verification log's checkpoints and its periodic self-check.
//!
//! The *current* checkpoint is the head's seal: the append that made the head signed it,
//! so serving it (`GET /audit/v1/checkpoint`, exports) signs and stores nothing. Every
//! `checkpoint_interval_secs`, if the log grew, the current checkpoint is *published*:
//! stored in the list auditors and witnesses read (`GET /audit/v1/checkpoints`) and
//! recorded in the log itself by a `checkpoint_published` event, so that a published
//! checkpoint deleted from storage is noticed by the self-check.

use std::sync::Arc;
use std::time::Duration;

use audit::EventType;
use store::{AuditFilter, Database, LogSeal, StoreError};

use super::VerificationLog;

/// Errors reading or publishing a checkpoint.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error("signing: {0}")]
    Audit(#[from] audit::AuditError),
}

/// Events read past the latest published checkpoint to decide whether the log grew by
/// more than the records of publishing it.
const LOOK_AHEAD: u32 = 16;

/// The log's current checkpoint: the head's seal. An empty log has none stored; its
/// checkpoint is signed on the spot (and not stored).
pub async fn current(
    db: &Database,
    key: &token::SigningKey,
) -> Result<audit::Checkpoint, CheckpointError> {
    match db.audit_seal().await? {
        Some(seal) => Ok(seal),
        None => signed_now(db, key, db.audit_size().await?).await,
    }
}

/// A checkpoint of the first `size` events (within the log): the published one if
/// there is one, else signed now (and not stored).
pub async fn at_size(
    db: &Database,
    key: &token::SigningKey,
    size: u64,
) -> Result<audit::Checkpoint, CheckpointError> {
    match db.checkpoint_at(size).await? {
        Some(published) => Ok(published),
        None => signed_now(db, key, size).await,
    }
}

/// A checkpoint of the first `size` events signed now: the stored tree's root at a
/// size never changes, so any instance signs the same statement.
async fn signed_now(
    db: &Database,
    key: &token::SigningKey,
    size: u64,
) -> Result<audit::Checkpoint, CheckpointError> {
    let root = db.audit_root(size).await?;
    Ok(audit::Checkpoint::sign(
        size,
        &root,
        audit::rfc3339_now(),
        key,
    )?)
}

/// `checkpoint` as a C2SP signed note of the log's `origin` (the note signer's name),
/// which witnesses verify and cosign.
pub fn note(
    checkpoint: &audit::Checkpoint,
    signer: &audit::NoteSigner,
) -> Result<String, CheckpointError> {
    let root = audit::decode_hash(&checkpoint.root_hash)?;
    Ok(audit::checkpoint_note(
        signer.name().as_str(),
        checkpoint.tree_size,
        &root,
        signer,
    )?)
}

/// Publishes the current checkpoint if the log grew since the latest published one
/// (by more than the events recording it): stores it, then records it in the log.
/// Returns the latest published checkpoint, if there is one.
pub async fn publish(
    db: &Database,
    seal: &LogSeal,
    instance: &str,
) -> Result<Option<audit::Checkpoint>, CheckpointError> {
    let latest = db.latest_checkpoint().await?;
    let Some(current) = db.audit_seal().await? else {
        return Ok(latest);
    };
    if let Some(latest) = latest {
        if latest.tree_size >= current.tree_size || only_records_since(db, &latest).await? {
            return Ok(Some(latest));
        }
    }
    db.save_checkpoint(&current).await?;
    let event = audit::Event {
        checkpoint: Some(current.clone()),
        ..audit::Event::new(EventType::CheckpointPublished, instance)
    };
    db.append_audit_events(&[event], seal).await?;
    Ok(Some(current))
}

/// Whether everything after `latest` records published checkpoints: then the log holds
/// nothing new, and publishing again would only record the record.
async fn only_records_since(db: &Database, latest: &audit::Checkpoint) -> Result<bool, StoreError> {
    let after = latest.tree_size.checked_sub(1);
    let page = db
        .audit_events(&AuditFilter::default(), after, LOOK_AHEAD)
        .await?;
    Ok((page.len() as u32) < LOOK_AHEAD
        && page
            .iter()
            .all(|(_, e)| e.event_type == EventType::CheckpointPublished))
}

/// Runs forever: publishes a checkpoint every `checkpoint_interval_secs`, and runs the
/// self-check every `self_check_interval_secs` (when non-zero).
pub(crate) async fn run(log: Arc<VerificationLog>) {
    let every = Duration::from_secs(log.settings.checkpoint_interval_secs.max(1));
    let check_every = log.settings.self_check_interval_secs;
    let mut last_check = std::time::Instant::now();
    loop {
        tokio::time::sleep(every).await;
        if let Err(e) = publish(&log.db, &log.seal, log.trail.instance()).await {
            tracing::warn!(error = %e, "could not publish a checkpoint");
        }
        if check_every > 0 && last_check.elapsed() >= Duration::from_secs(check_every) {
            last_check = std::time::Instant::now();
            match log
                .db
                .audit_self_check(log.seal.published().verification_keys())
                .await
            {
                Ok(report) if report.is_clean() => {
                    tracing::info!("verification log self-check passed")
                }
                Ok(report) => tracing::error!(?report, "verification log self-check FAILED"),
                Err(e) => tracing::warn!(error = %e, "verification log self-check could not run"),
            }
        }
    }
}
