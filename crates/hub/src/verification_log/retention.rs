//! Retention of the verification log: old events are pruned only together with an
//! archived, signed export of them, and the tree stays verifiable (pruned events keep
//! their leaf hashes; only their contents go).

use std::fs::File;
use std::io::{BufReader, BufWriter, Write};
use std::path::Path;

use store::{AuditFilter, Database, LogSeal};

use crate::verification_log::checkpoints::{current, CheckpointError};

/// What a prune did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PruneReport {
    /// Events archived and pruned (indices `0..archived`).
    pub archived: u64,
    /// The checkpoint the archive is proved against.
    pub checkpoint_size: u64,
}

/// Why nothing was pruned.
#[derive(Debug, thiserror::Error)]
pub enum RetentionError {
    #[error("store: {0}")]
    Store(#[from] store::StoreError),
    #[error("checkpoint: {0}")]
    Checkpoint(#[from] CheckpointError),
    #[error("archive: {0}")]
    Io(#[from] std::io::Error),
    #[error("archive does not verify, nothing pruned: {0}")]
    Verify(#[from] audit::AuditError),
    #[error("archive: {0}")]
    Encode(#[from] serde_json::Error),
    #[error("keys: {0}")]
    Keys(#[from] token::TokenError),
    #[error("archive holds {verified} verified events, expected {archived}: nothing pruned")]
    Incomplete { archived: u64, verified: u64 },
}

/// Archives every event older than `before` (RFC 3339) into `archive_dir`
/// (`events.jsonl` with inclusion proofs, `checkpoint.json`, `jwks.json`), verifies the
/// archive as an auditor would, records the prune in the log (a `log_pruned` event,
/// appended first, so a prune is never without its record), and only then prunes those
/// events. `jwks` is the hub's published key set.
pub async fn prune(
    db: &Database,
    seal: &LogSeal,
    jwks: &serde_json::Value,
    instance: &str,
    before: &str,
    archive_dir: &Path,
) -> Result<PruneReport, RetentionError> {
    let checkpoint = current(db, &seal.key()).await?;
    let cutoff = db.audit_seq_at(before).await?.min(checkpoint.tree_size);
    std::fs::create_dir_all(archive_dir)?;
    let events_path = archive_dir.join("events.jsonl");
    let mut out = BufWriter::new(File::create(&events_path)?);
    let mut cursor = None;
    let mut archived = 0;
    'pages: loop {
        let page = db
            .audit_events(&AuditFilter::default(), cursor, store::MAX_AUDIT_PAGE)
            .await?;
        let Some((last, _)) = page.last() else { break };
        cursor = Some(*last);
        for (seq, event) in page {
            if seq >= cutoff {
                break 'pages;
            }
            let proof = db.audit_inclusion_proof(seq, checkpoint.tree_size).await?;
            serde_json::to_writer(
                &mut out,
                &audit::ExportedEvent::new(seq, event).with_proof(&proof),
            )?;
            out.write_all(b"\n")?;
            archived += 1;
        }
    }
    out.flush()?;
    drop(out);
    std::fs::write(
        archive_dir.join("checkpoint.json"),
        serde_json::to_vec_pretty(&checkpoint)?,
    )?;
    std::fs::write(
        archive_dir.join("jwks.json"),
        serde_json::to_vec_pretty(jwks)?,
    )?;
    // The whole published set: the checkpoint may predate a key rotation.
    let keys = token::VerificationKeys::from_jwks(jwks)?;
    let report = audit::verify_export(
        BufReader::new(File::open(&events_path)?),
        &checkpoint,
        &keys,
    )?;
    if report.events != archived {
        return Err(RetentionError::Incomplete {
            archived,
            verified: report.events,
        });
    }
    let record = audit::Event {
        pruned_below: Some(cutoff),
        ..audit::Event::new(audit::EventType::LogPruned, instance)
    };
    db.append_audit_events(&[record], seal).await?;
    db.prune_audit_events_before(cutoff).await?;
    tracing::info!(
        archived,
        checkpoint = checkpoint.tree_size,
        "verification log pruned after archiving"
    );
    Ok(PruneReport {
        archived,
        checkpoint_size: checkpoint.tree_size,
    })
}
