//! The self-check: [`Database::audit_self_check`] streams the whole log and
//! recomputes everything (leaf hashes, columns, nodes, checkpoints, the seal,
//! the retention bookkeeping); [`checker`] holds the recomputation, which
//! involves no SQL.

mod checker;

use checker::{Checker, TailCounts};

use super::encoding::{head_size, to_i64};
use super::rows::TailRow;
use super::seal::decode_seal;
use super::sql;
use super::tree::{node_map_lenient, nodes_completed_in};
use crate::database::{with_conn, Database};
use crate::error::StoreError;

/// Problems [`crate::Database::audit_self_check`] lists before it stops.
pub(crate) const MAX_PROBLEMS: usize = 100;

/// Events per page while the self-check streams the log: bounded memory
/// (a page of bodies, the tree's O(log n) frontier) whatever the log's size.
const CHECK_PAGE: i64 = 5000;

/// Outcome of [`crate::Database::audit_self_check`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditCheckReport {
    /// The log's size (`audit_head`) when the check started; events appended
    /// while it ran are not checked.
    pub head_size: u64,
    /// Events read: rehashed from their body, or for pruned events (which
    /// have none) taken into the recomputed tree with their stored leaf hash.
    pub events_checked: u64,
    /// Pruned events among [`AuditCheckReport::events_checked`].
    pub pruned: u64,
    /// Stored tree nodes (level >= 1) recomputed and compared.
    pub nodes_checked: u64,
    /// Stored checkpoints whose root was recomputed and compared.
    pub checkpoints_checked: u64,
    /// What is wrong, in the order found; empty when the log is intact.
    pub problems: Vec<AuditProblem>,
    /// More than [`AuditCheckReport::problems`] lists were found: the check
    /// stopped at the limit.
    pub truncated: bool,
}

impl AuditCheckReport {
    /// True when nothing is wrong.
    pub fn is_clean(&self) -> bool {
        self.problems.is_empty()
    }
}

/// One inconsistency found by the self-check. Never contains stored values
/// (events may be personal data), only positions and column names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditProblem {
    /// What is wrong.
    pub kind: AuditProblemKind,
    /// The event concerned: for a node, its last leaf (the append that wrote
    /// it); for a checkpoint, its tree size.
    pub seq: u64,
    /// Human-readable specifics (node coordinates, column names, counts).
    pub detail: String,
}

/// The kinds of damage the self-check recognises.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum AuditProblemKind {
    /// Sequence numbers are missing (deleted rows): the tree cannot be
    /// recomputed past them, so nodes and checkpoints after are not checked.
    Gap,
    /// The stored leaf hash is not the hash of the stored body (altered body,
    /// altered hash, or bodies moved between rows).
    LeafHashMismatch,
    /// The body is not an event.
    BodyUndecodable,
    /// An indexed column disagrees with the body (or `max_time` with the
    /// times before it), so filters would misreport.
    ColumnMismatch,
    /// A stored node differs from the one recomputed from the bodies (rows
    /// rewritten consistently, reordered, or the node itself altered).
    NodeMismatch,
    /// A node that must exist is not stored.
    NodeMissing,
    /// A stored checkpoint's root is not the recomputed root at its size.
    CheckpointMismatch,
    /// A checkpoint covers more events than the log has (truncated log).
    CheckpointBeyondHead,
    /// Row counts disagree with `audit_head` (rows added or deleted outside
    /// the append path, or extra nodes).
    CountMismatch,
    /// `audit_head`'s time bookkeeping disagrees with the events, so time
    /// range queries could miss events.
    HeadMismatch,
    /// The retention bookkeeping is inconsistent: a pruned event still holds
    /// its body or searchable columns, an event with an empty body is not
    /// marked pruned, or the pruned events are not exactly the oldest ones
    /// (`audit_head.pruned_below`). Pruning only ever removes a prefix of the
    /// log, so an event blanked further on is hidden evidence, not retention.
    PruneMismatch,
    /// More events are pruned than any `log_pruned` event in the log records:
    /// events were blanked outside `hub audit prune`.
    PruneUnrecorded,
    /// A stored checkpoint's signature does not verify with the hub's keys,
    /// or its plain fields differ from what was signed.
    CheckpointSignature,
    /// A `checkpoint_published` event names a checkpoint that is not stored
    /// (deleted), or a different one.
    CheckpointMissing,
    /// The head's seal is missing, does not verify with the hub's keys, or is
    /// not the recomputed root at the head's size: events were appended or
    /// deleted outside the hub.
    SealMismatch,
}

impl AuditProblemKind {
    /// A stable snake_case name, for reports and JSON output.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Gap => "gap",
            Self::LeafHashMismatch => "leaf_hash_mismatch",
            Self::BodyUndecodable => "body_undecodable",
            Self::ColumnMismatch => "column_mismatch",
            Self::NodeMismatch => "node_mismatch",
            Self::NodeMissing => "node_missing",
            Self::CheckpointMismatch => "checkpoint_mismatch",
            Self::CheckpointBeyondHead => "checkpoint_beyond_head",
            Self::CountMismatch => "count_mismatch",
            Self::HeadMismatch => "head_mismatch",
            Self::PruneMismatch => "prune_mismatch",
            Self::PruneUnrecorded => "prune_unrecorded",
            Self::CheckpointSignature => "checkpoint_signature",
            Self::CheckpointMissing => "checkpoint_missing",
            Self::SealMismatch => "seal_mismatch",
        }
    }
}

impl Database {
    /// Verifies the stored audit log against itself: streams every event in
    /// seq order (pages of a few thousand, so memory stays bounded for
    /// millions of rows), checks that seqs have no gaps, rehashes every body
    /// and compares with its leaf hash and indexed columns, recomputes every
    /// tree node and compares it with `audit_nodes`, recomputes the root at
    /// every stored checkpoint's size, and finally compares the row counts
    /// with `audit_head` in one snapshot.
    ///
    /// A pruned event has no body to rehash: its stored leaf hash goes into
    /// the recomputed tree as it is, so altering it still shows as a node or
    /// checkpoint mismatch. The check also requires that pruned events hold
    /// no body or searchable columns, that no event has an empty body without
    /// being marked pruned, and that the pruned events are exactly the
    /// oldest ones (`audit_head.pruned_below`): blanking one event further on
    /// is hiding it, not retention. A prune running meanwhile is allowed for.
    ///
    /// Detects bodies or hashes altered in the database, deleted rows,
    /// rows moved or swapped, altered nodes and rewritten history under a
    /// checkpoint. Damage is reported in [`AuditCheckReport::problems`] (the
    /// first 100; the check stops there); `Err` only when the database cannot
    /// be read. Events appended while it runs are left out.
    pub async fn audit_self_check(
        &self,
        keys: &token::VerificationKeys,
    ) -> Result<AuditCheckReport, StoreError> {
        let (sealed_head, rows) = with_conn!(self, sql, |conn, q| {
            let head = q::audit_sealed_head(&mut conn).await?;
            (head, q::checkpoints(&mut conn).await?)
        });
        let (head, pruned_below, seal) =
            sealed_head.ok_or_else(|| StoreError::Corrupt("audit_head has no row".into()))?;
        let head = head_size(Some(head))?;
        // A negative bound (only by tampering) is reported by `finish`.
        let pruned_below = u64::try_from(pruned_below).unwrap_or(0);
        // A negative size (only by tampering) is reported as beyond the head.
        let checkpoints: Vec<audit::Checkpoint> = rows
            .into_iter()
            .map(|c| audit::Checkpoint {
                tree_size: u64::try_from(c.tree_size).unwrap_or(u64::MAX),
                root_hash: c.root_hash,
                time: c.time,
                signature: c.signature,
            })
            .collect();
        let seal = seal.as_deref().map(decode_seal).transpose();
        let mut checker = Checker::new(
            head,
            pruned_below,
            &checkpoints,
            seal.as_ref().ok().and_then(Option::as_ref),
        );
        checker.signatures(&checkpoints, seal, keys);
        let below = to_i64(head)?;
        let mut after: Option<i64> = None;
        while checker.wants_more() {
            let (rows, nodes) = with_conn!(self, sql, |conn, q| {
                let rows = q::audit_check_page(&mut conn, after, below, CHECK_PAGE).await?;
                let nodes = match (rows.first(), rows.last()) {
                    (Some(first), Some(last)) => {
                        // The stored nodes the page's leaves complete.
                        let ranges = nodes_completed_in(
                            u64::try_from(first.seq).unwrap_or(0),
                            u64::try_from(last.seq).unwrap_or(0),
                        );
                        q::audit_nodes_in_ranges(&mut conn, &ranges).await?
                    }
                    _ => Vec::new(),
                };
                (rows, nodes)
            });
            let Some(last) = rows.last().map(|r| r.seq) else {
                break;
            };
            let full = rows.len() as i64 == CHECK_PAGE;
            checker.page(rows, &node_map_lenient(nodes));
            if !full {
                break;
            }
            after = Some(last);
        }
        let TailRow {
            head: now,
            pruned_below,
            events,
            max_seq,
            nodes,
        } = with_conn!(self, sql, |conn, q| q::audit_tail(&mut conn).await?);
        let (now, max_time, max_lag_ms) =
            now.ok_or_else(|| StoreError::Corrupt("audit_head has no row".into()))?;
        let report = checker.finish(TailCounts {
            head: head_size(Some(now))?,
            events: u64::try_from(events).unwrap_or(0),
            max_seq,
            nodes: u64::try_from(nodes).unwrap_or(0),
            max_time,
            max_lag_ms,
            pruned_below: pruned_below
                .ok_or_else(|| StoreError::Corrupt("audit_head has no row".into()))?,
        });
        if report.is_clean() {
            tracing::info!(
                events = report.events_checked,
                pruned = report.pruned,
                nodes = report.nodes_checked,
                checkpoints = report.checkpoints_checked,
                "audit log self-check passed"
            );
        } else {
            tracing::error!(
                problems = report.problems.len(),
                first = ?report.problems.first().map(|p| (p.kind, p.seq)),
                "audit log self-check found damage"
            );
        }
        Ok(report)
    }
}
