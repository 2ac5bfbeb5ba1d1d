//! The self-check's recomputation, fed page by page in seq order: bounded
//! memory (a page, the tree's O(log n) frontier) whatever the log's size.

use std::collections::{HashMap, VecDeque};
use std::ops::Range;

use audit::{Hash, NodeMap, NodeSource};

use super::{AuditCheckReport, AuditProblem, AuditProblemKind, MAX_PROBLEMS};
use crate::error::StoreError;
use crate::verification_log::encoding::{decode_root, from_hex};
use crate::verification_log::rows::{AuditCheckRow, EventColumns};
use crate::verification_log::time::{stored_millis, TimeMark};
use crate::verification_log::tree::node_count;

/// The frontier of the tree so far (one complete subtree per set bit of its
/// size): all that appending the next leaf or computing the root reads, so the
/// self-check needs O(log n) memory however long the log.
#[derive(Debug, Default)]
struct Frontier(NodeMap);

impl Frontier {
    fn push(&mut self, completed: &[(u32, u64, Hash)], index: u64, leaf: Hash) {
        let map = &mut (self.0).0;
        map.insert((0, index), leaf);
        for &(level, idx, hash) in completed {
            map.insert((level, idx), hash);
        }
        let size = index + 1;
        map.retain(|&(level, idx), _| {
            level < 64 && (size >> level) & 1 == 1 && idx == (size >> level) - 1
        });
    }
}

impl NodeSource for Frontier {
    fn node(&self, level: u32, index: u64) -> Result<Hash, audit::AuditError> {
        self.0.node(level, index)
    }
}

/// The self-check's state while it streams the log in seq order.
#[derive(Debug)]
pub(crate) struct Checker {
    report: AuditCheckReport,
    /// The seq the next row should have.
    next: u64,
    /// False once a gap made recomputing the tree impossible.
    tree_intact: bool,
    frontier: Frontier,
    /// `(tree_size, root_hash)` of the checkpoints not reached yet, ascending.
    checkpoints: VecDeque<(u64, String)>,
    /// Signature of every stored checkpoint, by tree size: what a
    /// `checkpoint_published` event must find.
    published: HashMap<u64, String>,
    /// `(tree_size, root_hash)` of the head's seal, if it has one.
    seal: Option<(u64, String)>,
    /// The largest bound a `log_pruned` event records.
    prune_recorded: u64,
    /// `max_time` and lag recomputed so far.
    mark: TimeMark,
    /// `audit_head.pruned_below` when the check started: every event below it
    /// must be pruned (pruning is never undone).
    pruned_below: u64,
    /// Runs of pruned seqs at or above `pruned_below`, at most
    /// [`MAX_PROBLEMS`] (the last then absorbs the rest). A prune committed
    /// while the check ran explains those below the bound read at the end;
    /// [`Checker::finish`] reports the others.
    pruned_beyond: Vec<Range<u64>>,
}

impl Checker {
    /// `pruned_below` is `audit_head.pruned_below` and `seal` the head's
    /// seal, read with `head` before the first page.
    pub(crate) fn new(
        head: u64,
        pruned_below: u64,
        stored: &[audit::Checkpoint],
        seal: Option<&audit::Checkpoint>,
    ) -> Self {
        let mut checkpoints: Vec<(u64, String)> = stored
            .iter()
            .map(|c| (c.tree_size, c.root_hash.clone()))
            .collect();
        checkpoints.sort_by_key(|c| c.0);
        let mut checker = Self {
            published: stored
                .iter()
                .map(|c| (c.tree_size, c.signature.clone()))
                .collect(),
            seal: seal.map(|s| (s.tree_size, s.root_hash.clone())),
            prune_recorded: 0,
            report: AuditCheckReport {
                head_size: head,
                ..AuditCheckReport::default()
            },
            next: 0,
            tree_intact: true,
            frontier: Frontier::default(),
            checkpoints: checkpoints.into(),
            mark: TimeMark::default(),
            pruned_below,
            pruned_beyond: Vec::new(),
        };
        match &checker.seal {
            None if head > 0 => checker.problem(
                AuditProblemKind::SealMismatch,
                head,
                format!("the head ({head} events) is not sealed"),
            ),
            Some((size, _)) if *size != head => checker.problem(
                AuditProblemKind::SealMismatch,
                head,
                format!("the head has {head} events, its seal {size}"),
            ),
            _ => {}
        }
        checker.check_checkpoints_at(0, &audit::empty_root());
        checker
    }

    /// Verifies the signatures of the stored checkpoints and of the head's
    /// seal (decoded, or why it could not be) with the hub's keys.
    pub(crate) fn signatures(
        &mut self,
        checkpoints: &[audit::Checkpoint],
        seal: Result<Option<audit::Checkpoint>, StoreError>,
        keys: &token::VerificationKeys,
    ) {
        for cp in checkpoints {
            if let Err(e) = cp.verify(keys) {
                self.problem(
                    AuditProblemKind::CheckpointSignature,
                    cp.tree_size,
                    format!("checkpoint at size {}: {e}", cp.tree_size),
                );
            }
        }
        let size = self.report.head_size;
        match seal {
            Ok(Some(seal)) => {
                if let Err(e) = seal.verify(keys) {
                    self.problem(
                        AuditProblemKind::SealMismatch,
                        size,
                        format!("the head's seal: {e}"),
                    );
                }
            }
            Ok(None) => {}
            Err(e) => self.problem(AuditProblemKind::SealMismatch, size, e.to_string()),
        }
    }

    /// False once [`MAX_PROBLEMS`] problems are listed: stop reading.
    pub(crate) fn wants_more(&self) -> bool {
        !self.report.truncated
    }

    fn problem(&mut self, kind: AuditProblemKind, seq: u64, detail: String) {
        if self.report.problems.len() < MAX_PROBLEMS {
            self.report
                .problems
                .push(AuditProblem { kind, seq, detail });
        } else {
            self.report.truncated = true;
        }
    }

    /// Checks one page of rows (ascending seq); `stored` holds the stored
    /// nodes completed by leaves in the page's seq range.
    pub(crate) fn page(&mut self, rows: Vec<AuditCheckRow>, stored: &NodeMap) {
        for row in rows {
            if !self.wants_more() {
                return;
            }
            self.row(row, stored);
        }
    }

    fn row(&mut self, row: AuditCheckRow, stored: &NodeMap) {
        let Ok(seq) = u64::try_from(row.seq) else {
            self.problem(
                AuditProblemKind::Gap,
                self.next,
                format!("negative seq {}", row.seq),
            );
            return;
        };
        if seq != self.next {
            self.problem(
                AuditProblemKind::Gap,
                self.next,
                format!("events {}..{seq} are missing", self.next),
            );
            self.tree_intact = false;
        }
        self.next = seq + 1;
        self.report.events_checked += 1;

        let leaf = if row.pruned == 0 {
            if seq < self.pruned_below {
                self.problem(
                    AuditProblemKind::PruneMismatch,
                    seq,
                    "event below audit_head.pruned_below is not pruned".into(),
                );
            }
            self.full_row(&row, seq)
        } else {
            self.pruned_row(&row, seq)
        };

        match stored_millis(&row.time) {
            Some(millis) => {
                if self.mark.advance(millis, &row.time) != row.max_time {
                    self.problem(
                        AuditProblemKind::ColumnMismatch,
                        seq,
                        "max_time is not the latest time so far".into(),
                    );
                }
            }
            None => self.problem(
                AuditProblemKind::ColumnMismatch,
                seq,
                "time is not an RFC 3339 time".into(),
            ),
        }

        if !self.tree_intact {
            return;
        }
        // The tree is rebuilt from the bodies (not the stored leaf hashes): the
        // nodes and checkpoints then vouch for what auditors actually read.
        // A pruned event has no body left: its stored leaf hash goes in, so
        // the nodes and checkpoints still vouch for it.
        let completed = match audit::nodes_completed_by(seq, leaf, &self.frontier) {
            Ok(c) => c,
            Err(e) => {
                // Cannot happen with a frontier kept by `push`; stop rather than guess.
                self.problem(
                    AuditProblemKind::NodeMissing,
                    seq,
                    format!("recomputation failed: {e}"),
                );
                self.tree_intact = false;
                return;
            }
        };
        for &(level, idx, hash) in completed.iter().filter(|n| n.0 >= 1) {
            self.report.nodes_checked += 1;
            match stored.0.get(&(level, idx)) {
                Some(h) if *h == hash => {}
                Some(_) => self.problem(
                    AuditProblemKind::NodeMismatch,
                    seq,
                    format!("node ({level}, {idx}) differs from the recomputed one"),
                ),
                None => self.problem(
                    AuditProblemKind::NodeMissing,
                    seq,
                    format!("node ({level}, {idx}) is not stored"),
                ),
            }
        }
        self.frontier.push(&completed, seq, leaf);
        let size = seq + 1;
        let sealed_here = self.seal.as_ref().is_some_and(|s| s.0 == size);
        if sealed_here || self.checkpoints.front().is_some_and(|c| c.0 == size) {
            match audit::root(size, &self.frontier) {
                Ok(root) => self.check_checkpoints_at(size, &root),
                Err(e) => self.problem(
                    AuditProblemKind::CheckpointMismatch,
                    size,
                    format!("root not recomputable: {e}"),
                ),
            }
        }
    }

    /// Checks an event that is not pruned against its body; returns its leaf
    /// hash recomputed from the body.
    fn full_row(&mut self, row: &AuditCheckRow, seq: u64) -> Hash {
        if row.body.is_empty() {
            self.problem(
                AuditProblemKind::PruneMismatch,
                seq,
                "body is empty but the event is not marked pruned".into(),
            );
        }
        let leaf = audit::leaf_hash(row.body.as_bytes());
        if from_hex(&row.leaf_hash) != Some(leaf) {
            self.problem(
                AuditProblemKind::LeafHashMismatch,
                seq,
                "stored leaf_hash is not the hash of the stored body".into(),
            );
        }
        match serde_json::from_str::<audit::Event>(&row.body) {
            Ok(event) => {
                self.log_record(&event, seq);
                self.columns(&event, row, seq);
            }
            Err(e) => self.problem(
                AuditProblemKind::BodyUndecodable,
                seq,
                format!(
                    "body is not an audit event: {:?} error at column {}",
                    e.classify(),
                    e.column()
                ),
            ),
        }
        leaf
    }

    /// What the log records about itself: published checkpoints must be
    /// stored as published; prunes raise the bound pruning may reach.
    fn log_record(&mut self, event: &audit::Event, seq: u64) {
        if let Some(bound) = event
            .pruned_below
            .filter(|_| event.event_type == audit::EventType::LogPruned)
        {
            self.prune_recorded = self.prune_recorded.max(bound);
        }
        let Some(cp) = event
            .checkpoint
            .as_ref()
            .filter(|_| event.event_type == audit::EventType::CheckpointPublished)
        else {
            return;
        };
        let size = cp.tree_size;
        if size > seq {
            self.problem(
                AuditProblemKind::CheckpointMissing,
                seq,
                format!("recorded checkpoint at size {size} covers its own record"),
            );
        } else if self.published.get(&size) != Some(&cp.signature) {
            self.problem(
                AuditProblemKind::CheckpointMissing,
                seq,
                format!("published checkpoint at size {size} is not stored as published"),
            );
        }
    }

    /// The indexed columns must copy the body, or filters would misreport.
    fn columns(&mut self, event: &audit::Event, row: &AuditCheckRow, seq: u64) {
        match EventColumns::of(event) {
            Ok(columns) => {
                let differ = columns.differences(row);
                if !differ.is_empty() {
                    self.problem(
                        AuditProblemKind::ColumnMismatch,
                        seq,
                        format!("columns disagree with the body: {}", differ.join(", ")),
                    );
                }
            }
            Err(e) => self.problem(AuditProblemKind::BodyUndecodable, seq, e),
        }
    }

    /// Checks a pruned event, which has nothing left to rehash: that it holds
    /// no personal data any more and lies in the pruned prefix. Returns its
    /// stored leaf hash (a value matching no node if that is not a hash).
    fn pruned_row(&mut self, row: &AuditCheckRow, seq: u64) -> Hash {
        self.report.pruned += 1;
        if seq >= self.pruned_below {
            let full = self.pruned_beyond.len() >= MAX_PROBLEMS;
            match self.pruned_beyond.last_mut() {
                Some(run) if run.end == seq || full => run.end = seq + 1,
                _ => self.pruned_beyond.push(seq..seq + 1),
            }
        }
        if row.pruned != 1 {
            self.problem(
                AuditProblemKind::PruneMismatch,
                seq,
                "pruned is neither 0 nor 1".into(),
            );
        }
        if !row.body.is_empty() {
            self.problem(
                AuditProblemKind::PruneMismatch,
                seq,
                "event is marked pruned but still has a body".into(),
            );
        }
        let kept: Vec<&str> = [
            ("journey_id", &row.journey_id),
            ("rp_id", &row.rp_id),
            ("idp_id", &row.idp_id),
            ("outcome", &row.outcome),
        ]
        .into_iter()
        .filter(|c| c.1.is_some())
        .map(|c| c.0)
        .collect();
        if !kept.is_empty() {
            self.problem(
                AuditProblemKind::PruneMismatch,
                seq,
                format!(
                    "event is marked pruned but still has searchable columns: {}",
                    kept.join(", ")
                ),
            );
        }
        from_hex(&row.leaf_hash).unwrap_or_else(|| {
            self.problem(
                AuditProblemKind::LeafHashMismatch,
                seq,
                "stored leaf_hash of a pruned event is not a hash".into(),
            );
            [0xff; 32]
        })
    }

    fn check_checkpoints_at(&mut self, size: u64, root: &Hash) {
        if let Some((_, sealed)) = self.seal.as_ref().filter(|s| s.0 == size) {
            if decode_root(sealed) != Some(*root) {
                self.problem(
                    AuditProblemKind::SealMismatch,
                    size,
                    "the head's seal is not the recomputed root".into(),
                );
            }
        }
        while let Some((cp_size, cp_root)) = self.checkpoints.front().cloned() {
            if cp_size != size {
                break;
            }
            self.checkpoints.pop_front();
            self.report.checkpoints_checked += 1;
            if decode_root(&cp_root) != Some(*root) {
                self.problem(
                    AuditProblemKind::CheckpointMismatch,
                    size,
                    format!("checkpoint at size {size}: root differs from the recomputed one"),
                );
            }
        }
    }

    /// Ends the stream: reports missing tail rows and checkpoints beyond the
    /// head, then compares a snapshot's counts with the head.
    pub(crate) fn finish(mut self, tail: TailCounts) -> AuditCheckReport {
        let head = self.report.head_size;
        if self.next < head {
            self.problem(
                AuditProblemKind::Gap,
                self.next,
                format!("events {}..{head} are missing", self.next),
            );
            self.tree_intact = false;
        }
        while let Some((size, _)) = self.checkpoints.pop_front() {
            if size > head {
                self.problem(
                    AuditProblemKind::CheckpointBeyondHead,
                    size,
                    format!("checkpoint at size {size} but the log has {head} events"),
                );
            }
            // Others lie beyond a gap: already reported, not recomputable.
        }
        let TailCounts {
            head: now,
            events,
            max_seq,
            nodes,
            max_time,
            max_lag_ms,
            pruned_below,
        } = tail;
        if self.pruned_below > self.prune_recorded {
            self.problem(
                AuditProblemKind::PruneUnrecorded,
                self.pruned_below,
                format!(
                    "events below {} are pruned, but the log records pruning below {} only",
                    self.pruned_below, self.prune_recorded
                ),
            );
        }
        match u64::try_from(pruned_below) {
            Ok(bound) if bound <= now => {
                for run in std::mem::take(&mut self.pruned_beyond) {
                    if run.end > bound {
                        let start = run.start.max(bound);
                        self.problem(
                            AuditProblemKind::PruneMismatch,
                            start,
                            format!(
                                "events {start}..{} are pruned but audit_head.pruned_below is {bound}",
                                run.end
                            ),
                        );
                    }
                }
            }
            _ => self.problem(
                AuditProblemKind::PruneMismatch,
                now,
                format!("audit_head.pruned_below is {pruned_below} but the log has {now} events"),
            ),
        }
        // Only comparable if nothing was appended meanwhile and nothing is missing.
        if now == head
            && self.tree_intact
            && (max_time.as_deref() != self.mark.max_time() || max_lag_ms != self.mark.max_lag_ms)
        {
            self.problem(
                AuditProblemKind::HeadMismatch,
                now,
                "audit_head max_time or max_lag_ms disagrees with the events".into(),
            );
        }
        let last_ok = match max_seq {
            None => now == 0,
            Some(m) => u64::try_from(m).is_ok_and(|m| m + 1 == now),
        };
        if events != now || !last_ok {
            self.problem(
                AuditProblemKind::CountMismatch,
                now,
                format!(
                    "audit_head says {now} events, the table holds {events} (highest seq {})",
                    max_seq.map_or_else(|| "none".to_owned(), |m| m.to_string())
                ),
            );
        }
        if nodes != node_count(now) {
            self.problem(
                AuditProblemKind::CountMismatch,
                now,
                format!(
                    "{nodes} tree nodes stored, {} expected for {now} events",
                    node_count(now)
                ),
            );
        }
        self.report
    }
}

/// Counts read in one snapshot at the end of the self-check.
#[derive(Debug, Clone)]
pub(crate) struct TailCounts {
    pub(crate) head: u64,
    pub(crate) events: u64,
    pub(crate) max_seq: Option<i64>,
    pub(crate) nodes: u64,
    pub(crate) max_time: Option<String>,
    pub(crate) max_lag_ms: i64,
    pub(crate) pruned_below: i64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verification_log::encoding::to_hex;
    use chrono::{DateTime, SecondsFormat, Utc};

    /// Self-checks `n` events, those in `pruned` pruned, with
    /// `audit_head.pruned_below` at `start` when the check began and `end`
    /// when it ended; returns the problems.
    fn prune_problems(
        n: u64,
        pruned: &[u64],
        start: u64,
        end: i64,
    ) -> Vec<(AuditProblemKind, u64)> {
        let mut tree = audit::MemoryTree::new();
        let mut rows = Vec::new();
        for seq in 0..n {
            let time = DateTime::<Utc>::from_timestamp(1_790_000_000 + seq as i64, 0)
                .unwrap()
                .to_rfc3339_opts(SecondsFormat::Millis, true);
            let event = audit::Event {
                id: format!("e{seq}"),
                time: time.clone(),
                journey_id: None,
                event_type: audit::EventType::Matching,
                rp: None,
                idp: None,
                level_requested: None,
                level_achieved: None,
                outcome: None,
                subject: None,
                match_cycle: None,
                reasons: vec![],
                instance: "test".into(),
                checkpoint: None,
                pruned_below: None,
                actor: None,
                fields: None,
            };
            let full = String::from_utf8(event.canonical_bytes()).unwrap();
            let leaf = audit::leaf_hash(full.as_bytes());
            tree.push(leaf);
            let is_pruned = pruned.contains(&seq);
            rows.push(AuditCheckRow {
                seq: seq as i64,
                id: event.id,
                time: time.clone(),
                max_time: time,
                journey_id: None,
                event_type: "matching".into(),
                rp_id: None,
                idp_id: None,
                outcome: None,
                body: if is_pruned { String::new() } else { full },
                leaf_hash: to_hex(&leaf),
                pruned: i32::from(is_pruned),
            });
        }
        let mut nodes = HashMap::new();
        for level in 1..u64::BITS {
            for idx in 0..(n >> level) {
                nodes.insert((level, idx), tree.node(level, idx).unwrap());
            }
        }
        let max_time = rows.last().map(|r| r.max_time.clone());
        // Only the root of the seal is compared here; signatures in tests/it/audit.rs.
        let seal = audit::Checkpoint {
            tree_size: n,
            root_hash: audit::encode_hash(&audit::root(n, &tree).unwrap()),
            time: String::new(),
            signature: String::new(),
        };
        let mut checker = Checker::new(n, start, &[], Some(&seal));
        checker.page(rows, &NodeMap(nodes));
        let report = checker.finish(TailCounts {
            head: n,
            events: n,
            max_seq: n.checked_sub(1).map(|m| m as i64),
            nodes: node_count(n),
            max_time,
            max_lag_ms: 0,
            pruned_below: end,
        });
        assert_eq!(report.pruned, pruned.len() as u64);
        // No `log_pruned` events here: their rule is tested in tests/it/audit.rs.
        report
            .problems
            .iter()
            .filter(|p| p.kind != AuditProblemKind::PruneUnrecorded)
            .map(|p| (p.kind, p.seq))
            .collect()
    }

    #[test]
    fn pruned_events_must_be_the_oldest() {
        use AuditProblemKind::PruneMismatch;
        // A prune from 2 to 6 committed while the check read: not damage.
        assert_eq!(prune_problems(6, &[0, 1, 2, 3, 4, 5], 2, 6), vec![]);
        assert_eq!(prune_problems(6, &[0, 1], 2, 2), vec![]);
        assert_eq!(prune_problems(6, &[], 0, 0), vec![]);
        // Pruned beyond the bound read at the end.
        assert_eq!(
            prune_problems(6, &[0, 1, 2, 3, 4, 5], 2, 4),
            vec![(PruneMismatch, 4)]
        );
        assert_eq!(
            prune_problems(8, &[0, 1, 2, 5, 7], 3, 3),
            vec![(PruneMismatch, 5), (PruneMismatch, 7)]
        );
        // Not pruned below the bound read at the start.
        assert_eq!(prune_problems(6, &[0, 1], 3, 3), vec![(PruneMismatch, 2)]);
        // A bound beyond the log.
        assert_eq!(prune_problems(6, &[0, 1], 2, 9), vec![(PruneMismatch, 6)]);
        assert_eq!(prune_problems(6, &[], 0, -1), vec![(PruneMismatch, 6)]);
        // Scattered pruned events beyond the bound: bounded memory, still reported.
        let scattered: Vec<u64> = (0..600).step_by(2).collect();
        let found = prune_problems(600, &scattered, 0, 0);
        assert_eq!(found.len(), MAX_PROBLEMS);
        assert_eq!(found[0], (PruneMismatch, 0));
    }
}
