//! `hub audit`: the operator's and the auditor's tools for the verification log. The
//! `verify*` commands need no database, only files fetched from the audit API and the
//! hub's public keys, so that an auditor can run them anywhere.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::Subcommand;
use hub::Settings;
use serde::de::DeserializeOwned;

#[derive(Subcommand, Debug)]
pub(crate) enum AuditCommand {
    /// Verify an export offline: signatures, proofs, nothing missing or altered. Needs no
    /// database: only the exported events, a checkpoint and the hub's public keys.
    Verify {
        /// JSON lines from /audit/v1/export.jsonl.
        #[arg(long)]
        export: PathBuf,
        /// The checkpoint (JSON from /audit/v1/checkpoint) the export was made against.
        #[arg(long)]
        checkpoint: PathBuf,
        /// The hub's JWKS (from /jwks).
        #[arg(long)]
        jwks: PathBuf,
    },
    /// Verify that one event is in the log: the proof's path from the event to the root
    /// of a checkpoint the hub signed. Needs no database.
    VerifyInclusion {
        /// JSON from /audit/v1/proof/inclusion.
        #[arg(long)]
        proof: PathBuf,
        /// The checkpoint of the proof's tree size (JSON from
        /// /audit/v1/checkpoint?tree_size=N).
        #[arg(long)]
        checkpoint: PathBuf,
        /// The hub's JWKS (from /jwks).
        #[arg(long)]
        jwks: PathBuf,
    },
    /// Verify that the log only grew between two signed checkpoints: nothing in the older
    /// one was rewritten, removed or reordered. Needs no database.
    VerifyConsistency {
        /// JSON from /audit/v1/proof/consistency?first=A&second=B.
        #[arg(long)]
        proof: PathBuf,
        /// The checkpoint of size A.
        #[arg(long)]
        first: PathBuf,
        /// The checkpoint of size B.
        #[arg(long)]
        second: PathBuf,
        /// The hub's JWKS (from /jwks).
        #[arg(long)]
        jwks: PathBuf,
    },
    /// Print the log's origin and the verifier key of its checkpoint notes, for witnesses
    /// to pin (creates the key under data.dir/keys if missing).
    NoteKey,
    /// Re-verify the whole stored log: every event, node and checkpoint recomputed, the
    /// signatures of the checkpoints and of the head's seal verified with the hub's keys,
    /// published checkpoints and prunes found as the log records them. Prints a summary
    /// and each problem; exits non-zero when the log does not verify.
    Check {
        /// Print the report as one JSON object instead.
        #[arg(long)]
        json: bool,
        /// Verify signatures with this JWKS (the hub's /jwks) instead of the key files
        /// under data.dir/keys.
        #[arg(long)]
        jwks: Option<PathBuf>,
    },
    /// Archive events older than the retention period (or --before) as a signed,
    /// verifiable export, then prune them; the tree stays verifiable.
    Prune {
        /// RFC 3339 time; default: now minus audit.retention_days.
        #[arg(long)]
        before: Option<String>,
        /// Directory to write the archive to (events.jsonl, checkpoint.json, jwks.json).
        #[arg(long)]
        archive: PathBuf,
    },
}

/// Runs one `hub audit` command.
pub(crate) async fn run(command: AuditCommand, settings: &Settings) -> anyhow::Result<()> {
    match command {
        AuditCommand::Verify {
            export,
            checkpoint,
            jwks,
        } => verify_export(&export, &checkpoint, &jwks),
        AuditCommand::VerifyInclusion {
            proof,
            checkpoint,
            jwks,
        } => verify_inclusion(&proof, &checkpoint, &jwks),
        AuditCommand::VerifyConsistency {
            proof,
            first,
            second,
            jwks,
        } => verify_consistency(&proof, &first, &second, &jwks),
        AuditCommand::NoteKey => {
            let signer = hub::app::log_note_signer(settings)?;
            println!("origin: {}", signer.name());
            println!("verifier key: {}", signer.verifier_key());
            Ok(())
        }
        AuditCommand::Check { json, jwks } => check(settings, json, jwks.as_deref()).await,
        AuditCommand::Prune { before, archive } => prune(settings, before, &archive).await,
    }
}

fn read(path: &Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
}

fn read_json<T: DeserializeOwned>(path: &Path, what: &str) -> anyhow::Result<T> {
    serde_json::from_str(&read(path)?).with_context(|| format!("parsing {what}"))
}

fn read_jwks(path: &Path) -> anyhow::Result<token::VerificationKeys> {
    token::VerificationKeys::from_jwks_json(&read(path)?).context("parsing the JWKS")
}

fn verify_export(export: &Path, checkpoint: &Path, jwks: &Path) -> anyhow::Result<()> {
    let checkpoint: audit::Checkpoint = read_json(checkpoint, "the checkpoint")?;
    let keys = read_jwks(jwks)?;
    let file =
        std::fs::File::open(export).with_context(|| format!("opening {}", export.display()))?;
    let report = audit::verify_export(std::io::BufReader::new(file), &checkpoint, &keys)?;
    println!(
        "verified {} events against checkpoint of size {} ({})",
        report.events,
        checkpoint.tree_size,
        if report.complete {
            "complete log"
        } else {
            "each event proved included"
        }
    );
    Ok(())
}

fn verify_inclusion(proof: &Path, checkpoint: &Path, jwks: &Path) -> anyhow::Result<()> {
    let proof: audit::InclusionProof = read_json(proof, "the inclusion proof")?;
    let checkpoint: audit::Checkpoint = read_json(checkpoint, "the checkpoint")?;
    proof
        .verify(&checkpoint, &read_jwks(jwks)?)
        .context("the event is not proved to be in the log")?;
    println!(
        "event {} ({}, {}) is in the log of {} events signed at {}",
        proof.index,
        proof.event.event_type.as_str(),
        proof.event.time,
        checkpoint.tree_size,
        checkpoint.time
    );
    Ok(())
}

fn verify_consistency(
    proof: &Path,
    first: &Path,
    second: &Path,
    jwks: &Path,
) -> anyhow::Result<()> {
    let proof: audit::ConsistencyProof = read_json(proof, "the consistency proof")?;
    let older: audit::Checkpoint = read_json(first, "the first checkpoint")?;
    let newer: audit::Checkpoint = read_json(second, "the second checkpoint")?;
    proof
        .verify(&older, &newer, &read_jwks(jwks)?)
        .context("the log is not proved to have only grown")?;
    println!(
        "consistent: the log of {} events (signed at {}) is the first {} events of the log \
         of {} (signed at {})",
        older.tree_size, older.time, older.tree_size, newer.tree_size, newer.time
    );
    Ok(())
}

async fn check(settings: &Settings, json: bool, jwks: Option<&Path>) -> anyhow::Result<()> {
    let db = store::Database::open(&settings.database.url).await?;
    let keys = match jwks {
        Some(path) => read_jwks(path)?,
        None => {
            let (keys, _) = hub::app::load_or_create_keys(settings)?;
            token::VerificationKeys::from_jwks(&keys.jwks())?
        }
    };
    let report = db.audit_self_check(&keys).await?;
    if json {
        println!("{}", check_report_json(&report));
    } else {
        print!("{}", check_report_text(&report));
    }
    if !report.is_clean() {
        bail!("the verification log does not verify");
    }
    Ok(())
}

async fn prune(settings: &Settings, before: Option<String>, archive: &Path) -> anyhow::Result<()> {
    let before = before.unwrap_or_else(|| {
        let days = settings.audit.retention_days.min(365 * 1000) as i64;
        (chrono::Utc::now() - chrono::Duration::days(days))
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
    });
    let db = store::Database::open(&settings.database.url).await?;
    db.require_current_schema().await?;
    let (keys, _) = hub::app::load_or_create_keys(settings)?;
    let jwks = keys.jwks();
    let seal = hub::app::log_seal(keys)?;
    let instance = settings.audit.instance.as_deref().unwrap_or("hub-cli");
    let report =
        hub::verification_log::retention::prune(&db, &seal, &jwks, instance, &before, archive)
            .await?;
    println!(
        "archived and pruned {} events older than {before} into {} (proved against checkpoint {})",
        report.archived,
        archive.display(),
        report.checkpoint_size
    );
    Ok(())
}

/// `hub audit check` for a person: what was recomputed, then each problem on a line.
fn check_report_text(report: &store::AuditCheckReport) -> String {
    let mut text = format!(
        "verification log: {} events ({} pruned), {} tree nodes and {} checkpoints recomputed\n",
        report.head_size, report.pruned, report.nodes_checked, report.checkpoints_checked
    );
    if report.is_clean() {
        text.push_str("intact: every leaf, node and checkpoint verifies\n");
        return text;
    }
    text.push_str(&format!(
        "DOES NOT VERIFY: {} problem(s){}\n",
        report.problems.len(),
        if report.truncated {
            ", more not listed"
        } else {
            ""
        }
    ));
    for p in &report.problems {
        text.push_str(&format!(
            "  at {}: {} ({})\n",
            p.seq,
            p.kind.as_str(),
            p.detail
        ));
    }
    text
}

/// `hub audit check --json`: the report as one object (`intact`, the counts, `problems`).
fn check_report_json(report: &store::AuditCheckReport) -> serde_json::Value {
    serde_json::json!({
        "intact": report.is_clean(),
        "head_size": report.head_size,
        "events_checked": report.events_checked,
        "pruned": report.pruned,
        "nodes_checked": report.nodes_checked,
        "checkpoints_checked": report.checkpoints_checked,
        "truncated": report.truncated,
        "problems": report.problems.iter().map(|p| serde_json::json!({
            "kind": p.kind.as_str(),
            "seq": p.seq,
            "detail": p.detail,
        })).collect::<Vec<_>>(),
    })
}
