use std::io::BufRead;

use serde::{Deserialize, Serialize};

use crate::checkpoint::Checkpoint;
use crate::event::Event;
use crate::hash::{decode_hash, encode_hash, Hash};
use crate::tree::{verify_inclusion, Frontier};
use crate::AuditError;

/// One line of an export (JSON lines): the event's fields plus its leaf
/// index and, for partial exports, its inclusion proof against the
/// checkpoint the export comes with.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct ExportedEvent {
    /// Leaf index in the log (the store's `seq`).
    pub index: u64,
    /// The event exactly as logged.
    #[serde(flatten)]
    pub event: Event,
    /// Audit path (RFC 9162 PATH, nearest sibling first), standard base64.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inclusion_proof: Option<Vec<String>>,
}

impl ExportedEvent {
    /// A line without a proof (for a complete export).
    pub fn new(index: u64, event: Event) -> Self {
        Self {
            index,
            event,
            inclusion_proof: None,
        }
    }

    /// Attaches an inclusion proof (for a partial export).
    pub fn with_proof(mut self, proof: &[Hash]) -> Self {
        self.inclusion_proof = Some(proof.iter().map(encode_hash).collect());
        self
    }
}

/// What [`verify_export`] established.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VerifyReport {
    /// Events checked.
    pub events: u64,
    /// True when the export is the whole log up to the checkpoint (indices
    /// `0..tree_size`) and so also proves that nothing was left out; false
    /// when each event was proved present but others may exist.
    pub complete: bool,
}

/// Offline verification of an export (JSON lines, one [`ExportedEvent`] per
/// line, in log order; blank lines are ignored) against a checkpoint signed
/// by a key in `keys`.
///
/// * Indices must strictly increase: a repeat of the previous index is
///   [`AuditError::DuplicateIndex`], a lower one [`AuditError::OutOfOrder`].
/// * Any inclusion proof present is checked against the checkpoint's root.
/// * Complete export (indices `0..n` without gaps, `n == tree_size`): the
///   root is recomputed from the events' canonical bytes in `O(log n)` memory
///   and must equal the checkpoint's ([`AuditError::RootMismatch`]).
/// * Otherwise every event needs a proof. If no event has one, the export was
///   meant to be complete, so the first gap ([`AuditError::MissingEvents`]) or
///   the shortfall ([`AuditError::ExportIncomplete`]) is reported; if some
///   have one, the first without ([`AuditError::MissingInclusionProof`]).
pub fn verify_export(
    lines: impl BufRead,
    checkpoint: &Checkpoint,
    keys: &token::VerificationKeys,
) -> Result<VerifyReport, AuditError> {
    let root = checkpoint.verify(keys)?;
    let tree_size = checkpoint.tree_size;

    let mut frontier = Frontier::default();
    let mut contiguous = true;
    let mut previous: Option<u64> = None;
    let mut events = 0u64;
    let mut any_proof = false;
    let mut first_unproven: Option<(u64, u64)> = None;
    let mut first_gap: Option<(u64, u64, u64)> = None;

    for (line, text) in (1u64..).zip(lines.lines()) {
        let text = text.map_err(|source| AuditError::ExportRead { line, source })?;
        if text.trim().is_empty() {
            continue;
        }
        let item: ExportedEvent =
            serde_json::from_str(&text).map_err(|e| AuditError::ExportMalformed {
                line,
                reason: e.to_string(),
            })?;
        let index = item.index;
        if let Some(previous) = previous {
            if index == previous {
                return Err(AuditError::DuplicateIndex { line, index });
            }
            if index < previous {
                return Err(AuditError::OutOfOrder {
                    line,
                    index,
                    previous,
                });
            }
        }
        if index >= tree_size {
            return Err(AuditError::IndexBeyondCheckpoint {
                line,
                index,
                tree_size,
            });
        }
        let expected = previous.map_or(0, |p| p + 1);
        if contiguous && index != expected {
            contiguous = false;
            first_gap = Some((line, expected, index));
        }
        previous = Some(index);

        let leaf = item.event.leaf_hash();
        if contiguous {
            frontier.push(leaf);
        }
        match &item.inclusion_proof {
            Some(encoded) => {
                any_proof = true;
                let proof = encoded
                    .iter()
                    .map(|h| decode_hash(h))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| AuditError::ExportMalformed {
                        line,
                        reason: format!("inclusion_proof: {e}"),
                    })?;
                verify_inclusion(&leaf, index, tree_size, &proof, &root).map_err(|e| {
                    AuditError::InclusionProofFailed {
                        line,
                        index,
                        source: Box::new(e),
                    }
                })?;
            }
            None => {
                first_unproven.get_or_insert((line, index));
            }
        }
        events += 1;
    }

    let complete = contiguous && events == tree_size;
    if complete {
        if frontier.root() != root {
            return Err(AuditError::RootMismatch { tree_size });
        }
    } else if let Some((line, index)) = first_unproven {
        if any_proof {
            return Err(AuditError::MissingInclusionProof { line, index });
        }
        if let Some((line, expected, found)) = first_gap {
            return Err(AuditError::MissingEvents {
                line,
                expected,
                found,
            });
        }
        return Err(AuditError::ExportIncomplete { events, tree_size });
    }
    Ok(VerifyReport { events, complete })
}
