//! [`Database`]'s audit log: appends, auditor queries, proofs, checkpoints,
//! retention and the self-check. The SQL is in [`crate::queries`]; the tree
//! arithmetic is the `audit` crate's, fed with nodes fetched in one query per
//! call (see `audit::required_nodes`).

use std::collections::HashMap;

use audit::{Hash, NodeMap};

use super::{pool_error, queries, Database, Pools};
use crate::audit_log::{
    self, bound_time, event_time, to_i64, AppendBatch, AppendedRange, AuditCheckReport,
    AuditFilter, Checker, TailCounts, MAX_AUDIT_PAGE,
};
use crate::error::StoreError;
use crate::log_seal::{self, LogSeal};
use crate::queries::{node_coords, AuditEventQuery, CheckpointRow, TailRow};

/// Events per page while the self-check streams the log: bounded memory
/// (a page of bodies, the tree's O(log n) frontier) whatever the log's size.
const CHECK_PAGE: i64 = 5000;

impl Database {
    /// Appends `events` to the audit log, in order, as one transaction, and
    /// returns the sequence numbers they received.
    ///
    /// The head row is locked for the transaction, so appends from every hub
    /// instance sharing the database form one total order without gaps: on
    /// PostgreSQL by the row lock, on SQLite by `BEGIN IMMEDIATE`. The events,
    /// every tree node their leaves complete and the new size are written
    /// together (multi-row INSERTs), so the log is never seen half-appended.
    /// Events are serialised and hashed before the lock is taken. Fails with
    /// [`StoreError::InvalidInput`] (nothing written) for an event whose time
    /// is not RFC 3339; with [`StoreError::Database`] for a duplicate event id.
    ///
    /// Every append seals the head it leaves with `seal` (see [`LogSeal`]);
    /// one that reads the head first checks the seal there, and fails with
    /// [`StoreError::Seal`], writing nothing, when the log is not the one
    /// sealed: nothing is built on rows changed outside the hub.
    pub async fn append_audit_events(
        &self,
        events: &[audit::Event],
        seal: &LogSeal,
    ) -> Result<AppendedRange, StoreError> {
        if events.is_empty() {
            let size = self.audit_size().await?;
            return Ok(AppendedRange {
                first_seq: size,
                size,
            });
        }
        let batch = AppendBatch::prepare(events)?;
        let range = match &self.pools {
            Pools::Sqlite(pool) => {
                let mut conn = pool.get().await.map_err(pool_error)?;
                queries::sqlite::append_audit(&mut conn, batch, seal.clone()).await?
            }
            Pools::Postgres {
                pools, audit_tip, ..
            } => {
                let mut state = audit_tip.lock().await;
                let mut conn = pools.get().await.map_err(pool_error)?;
                // On any error the tip is dropped: the next append reads the head.
                let known = state.tip.take();
                let fast = match &known {
                    Some(known) if !state.shared => {
                        queries::pg::append_audit_at(&mut conn, known, &batch, seal)
                            .await?
                            .map(|(range, tip)| (range, Some(tip)))
                    }
                    _ => None,
                };
                let (range, next) = match fast {
                    Some(appended) => appended,
                    None => {
                        // While other instances append too, a tip would be stale by
                        // the next append: read only the nodes this batch needs.
                        let keep_tip = !state.shared;
                        let appended =
                            queries::pg::append_audit(&mut conn, &batch, keep_tip, seal).await?;
                        state.shared = state
                            .last_end
                            .is_some_and(|end| end != appended.0.first_seq);
                        appended
                    }
                };
                state.last_end = Some(range.size);
                state.tip = next;
                range
            }
        };
        tracing::debug!(
            first_seq = range.first_seq,
            size = range.size,
            "appended audit events"
        );
        Ok(range)
    }

    /// Where this handle's last append left the log, if it holds a tip
    /// (PostgreSQL; the next append then takes one statement).
    #[cfg(feature = "test-support")]
    pub async fn audit_tip_size(&self) -> Option<u64> {
        match &self.pools {
            Pools::Sqlite(_) => None,
            Pools::Postgres { audit_tip, .. } => {
                audit_tip.lock().await.tip.as_ref().map(|t| t.size)
            }
        }
    }

    /// How many events the audit log holds (the next event's seq).
    pub async fn audit_size(&self) -> Result<u64, StoreError> {
        let size = with_conn!(self, |conn, q| q::audit_size(&mut conn).await?);
        head_size(size)
    }

    /// Up to `limit` (at most [`MAX_AUDIT_PAGE`]) events matching `filter`
    /// with seq greater than `after_seq`, in seq order: pass the last seq
    /// returned to get the next page. Pruned events are never returned: the
    /// seq range starts after them, so no page walks over them.
    ///
    /// With a list of RPs ([`AuditFilter::rps`]) each RP is one query along
    /// its `(rp_id, seq)` index, merged here, so every query reads at most
    /// `limit` rows however large the log. Fails with
    /// [`StoreError::InvalidInput`] for a bound that is not RFC 3339.
    pub async fn audit_events(
        &self,
        filter: &AuditFilter,
        after_seq: Option<u64>,
        limit: u32,
    ) -> Result<Vec<(u64, audit::Event)>, StoreError> {
        let limit = limit.min(MAX_AUDIT_PAGE);
        let from = filter
            .from
            .as_deref()
            .map(|t| bound_time("from", t))
            .transpose()?;
        let to = filter
            .to
            .as_deref()
            .map(|t| bound_time("to", t))
            .transpose()?;
        // The RPs to query: `None` for any RP, else the allowed ones.
        let rps: Option<Vec<&str>> = match (&filter.rps, &filter.rp) {
            (None, None) => None,
            (None, Some(rp)) => Some(vec![rp.as_str()]),
            (Some(allowed), None) => {
                let mut list: Vec<&str> = allowed.iter().map(String::as_str).collect();
                list.sort_unstable();
                list.dedup();
                Some(list)
            }
            (Some(allowed), Some(rp)) => Some(if allowed.contains(rp) {
                vec![rp.as_str()]
            } else {
                Vec::new()
            }),
        };
        if limit == 0 || rps.as_ref().is_some_and(Vec::is_empty) {
            return Ok(Vec::new());
        }
        let mut base = AuditEventQuery {
            from: from.as_ref().map(|b| b.text.as_str()),
            to: to.as_ref().map(|b| b.text.as_str()),
            rp: None,
            idp: filter.idp.as_deref(),
            event_type: filter.event_type.as_deref(),
            outcome: filter.outcome.as_deref(),
            journey_id: filter.journey_id.as_deref(),
            after_seq: after_seq.map(to_i64).transpose()?,
            seq_from: None,
            seq_below: None,
            limit: i64::from(limit),
        };
        let rows = with_conn!(self, |conn, q| {
            let pruned_below = q::audit_pruned_below(&mut conn)
                .await?
                .ok_or_else(|| StoreError::Corrupt("audit_head has no row".into()))?;
            // A time range becomes a seq window (see the migration): events
            // at or after `from` have max_time >= from; events before `to`
            // have max_time < to + max_lag_ms. Both ends are one index
            // descent, and the page query then reads only that window.
            let mut nothing = false;
            if from.is_some() || to.is_some() {
                let (_, _, lag) = q::audit_head_row(&mut conn)
                    .await?
                    .ok_or_else(|| StoreError::Corrupt("audit_head has no row".into()))?;
                if let Some(from) = &from {
                    base.seq_from = q::audit_first_seq_reaching(&mut conn, &from.text).await?;
                    nothing = base.seq_from.is_none();
                }
                if let Some(bound) = to.as_ref().and_then(|to| to.plus_lag(lag)) {
                    base.seq_below = q::audit_first_seq_reaching(&mut conn, &bound).await?;
                }
            }
            if pruned_below > 0 {
                base.seq_from = Some(base.seq_from.map_or(pruned_below, |s| s.max(pruned_below)));
            }
            match &rps {
                _ if nothing => Vec::new(),
                None => q::audit_event_page(&mut conn, &base).await?,
                Some(list) => {
                    let mut merged = Vec::new();
                    for rp in list {
                        let query = AuditEventQuery {
                            rp: Some(rp),
                            ..base
                        };
                        merged.extend(q::audit_event_page(&mut conn, &query).await?);
                    }
                    merged.sort_unstable_by_key(|r| r.0);
                    merged.truncate(limit as usize);
                    merged
                }
            }
        });
        rows.into_iter()
            .map(|(seq, body)| Ok((stored_seq(seq)?, decode_event(seq, &body)?)))
            .collect()
    }

    /// The event at `seq`, if the log has one and it was not pruned.
    pub async fn audit_event(&self, seq: u64) -> Result<Option<audit::Event>, StoreError> {
        let seq = to_i64(seq)?;
        let body = with_conn!(self, |conn, q| q::audit_event_body(&mut conn, seq).await?);
        body.map(|b| decode_event(seq, &b)).transpose()
    }

    /// Where a retention period ending at `time` (RFC 3339, any offset) cuts
    /// the log: the first seq whose `max_time` is at or after `time`, or the
    /// log's size if there is none. Every event below it has a time before
    /// `time` (`max_time` never decreases along seq and is never earlier than
    /// an event's own time), so it is the bound to pass to
    /// [`Database::prune_audit_events_before`]. Sub-millisecond digits of
    /// `time` are dropped (stored times have milliseconds), which errs towards
    /// keeping events. One descent of the `(max_time, seq)` index. Fails with
    /// [`StoreError::InvalidInput`] if `time` is not RFC 3339.
    pub async fn audit_seq_at(&self, time: &str) -> Result<u64, StoreError> {
        let (bound, _) = event_time(time).map_err(StoreError::InvalidInput)?;
        let (size, first) = with_conn!(self, |conn, q| {
            // The size first: an event appended after it may be seen by the
            // descent but must not count as before `time`.
            let size = q::audit_size(&mut conn).await?;
            (size, q::audit_first_seq_reaching(&mut conn, &bound).await?)
        });
        let size = head_size(size)?;
        match first {
            Some(seq) => Ok(stored_seq(seq)?.min(size)),
            None => Ok(size),
        }
    }

    /// Prunes the events with seq below `seq` (retention): in one
    /// transaction, their body becomes empty and their journey, RP, IdP and
    /// outcome columns NULL, so no personal data is left of them; their row,
    /// seq, id, time, event type and leaf hash stay, so the tree's nodes,
    /// every root, checkpoint and proof (which need only hashes) are
    /// unchanged and the self-check still covers them. Queries no longer
    /// return them. Returns how many events it pruned: 0 when they all were
    /// already (pruning is idempotent). Fails with
    /// [`StoreError::InvalidInput`] (nothing pruned) for a `seq` beyond the
    /// log's size.
    ///
    /// Irreversible: the caller must first have written an archived, signed
    /// export of these events (`hub audit prune` does), and usually takes the
    /// bound from [`Database::audit_seq_at`]. On SQLite the transaction
    /// holds the database's write lock throughout, so appends wait for a
    /// large prune (and time out after the busy timeout): prune in steps of
    /// a bounded number of events on a busy SQLite hub. The old values can
    /// linger in free database pages until they are reused or reclaimed
    /// (`VACUUM` on either backend).
    pub async fn prune_audit_events_before(&self, seq: u64) -> Result<u64, StoreError> {
        let below = to_i64(seq)?;
        let pruned = with_conn!(self, |conn, q| q::prune_audit(&mut conn, below).await?);
        tracing::info!(before = seq, pruned, "pruned audit events");
        Ok(pruned as u64)
    }

    /// How many of the oldest events are pruned: those with a seq below this
    /// have lost their body, the others are intact. Where the next export
    /// before pruning starts.
    pub async fn audit_pruned_below(&self) -> Result<u64, StoreError> {
        let below = with_conn!(self, |conn, q| q::audit_pruned_below(&mut conn).await?)
            .ok_or_else(|| StoreError::Corrupt("audit_head has no row".into()))?;
        u64::try_from(below).map_err(|_| {
            StoreError::Corrupt(format!("audit_head pruned_below {below} is negative"))
        })
    }

    /// The Merkle tree hash (RFC 9162) of the first `size` events; fails with
    /// [`StoreError::InvalidInput`] when the log is smaller.
    pub async fn audit_root(&self, size: u64) -> Result<Hash, StoreError> {
        self.with_tree(size, |s| audit::root(size, s)).await
    }

    /// The inclusion proof of event `seq` in the tree of the first `size`
    /// events (RFC 9162 §2.1.3.1).
    pub async fn audit_inclusion_proof(
        &self,
        seq: u64,
        size: u64,
    ) -> Result<Vec<Hash>, StoreError> {
        if seq >= size {
            return Err(StoreError::InvalidInput(format!(
                "event {seq} is not in a tree of {size} events"
            )));
        }
        self.with_tree(size, |s| audit::inclusion_proof(seq, size, s))
            .await
    }

    /// The consistency proof between the trees of the first `first` and
    /// `second` events (RFC 9162 §2.1.4.1).
    pub async fn audit_consistency_proof(
        &self,
        first: u64,
        second: u64,
    ) -> Result<Vec<Hash>, StoreError> {
        if first > second {
            return Err(StoreError::InvalidInput(format!(
                "no consistency proof from size {first} back to {second}"
            )));
        }
        self.with_tree(second, |s| audit::consistency_proof(first, second, s))
            .await
    }

    /// Runs a tree function against the stored nodes: records the nodes it
    /// reads (`audit::required_nodes`), fetches them in one query, runs it
    /// again for real. `size` (the largest tree `f` reads) must be within the log.
    async fn with_tree<T>(
        &self,
        size: u64,
        f: impl Fn(&dyn audit::NodeSource) -> Result<T, audit::AuditError>,
    ) -> Result<T, StoreError> {
        let needed = audit::required_nodes(&f);
        let coords = node_coords(&needed)?;
        let (head, rows) = with_conn!(self, |conn, q| {
            let head = q::audit_size(&mut conn).await?;
            (head, q::audit_node_rows(&mut conn, &coords).await?)
        });
        let head = head_size(head)?;
        if size > head {
            return Err(StoreError::InvalidInput(format!(
                "the audit log has {head} events, not {size}"
            )));
        }
        let map = audit_log::node_map(rows)?;
        audit_log::require_all(&map, &needed)?;
        // Every node it reads is present: any error is about the arguments.
        f(&map).map_err(|e| StoreError::InvalidInput(e.to_string()))
    }

    /// Stores a signed checkpoint. Refuses ([`StoreError::InvalidInput`]) one
    /// whose root is not this log's root at its size, or that contradicts a
    /// checkpoint already stored for that size (a fork); saving the same
    /// checkpoint twice is a no-op. The signature is not checked here (the
    /// store holds no keys).
    pub async fn save_checkpoint(&self, cp: &audit::Checkpoint) -> Result<(), StoreError> {
        let root = audit_log::decode_root(&cp.root_hash).ok_or_else(|| {
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
        let stored = with_conn!(self, |conn, q| q::insert_checkpoint(&mut conn, &row)
            .await?);
        if audit_log::decode_root(&stored.root_hash) != Some(root) {
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
        let head = with_conn!(self, |conn, q| q::audit_sealed_head(&mut conn).await?);
        let (_, _, seal) =
            head.ok_or_else(|| StoreError::Corrupt("audit_head has no row".into()))?;
        seal.as_deref().map(log_seal::decode_seal).transpose()
    }

    /// Seals a head that has events but no seal: a log written before seals
    /// existed. Trust on first use (what is there is taken as it is), so the
    /// hub does it once, at start-up, and says so. Returns whether it sealed.
    pub async fn seal_unsealed_head(&self, seal: &LogSeal) -> Result<bool, StoreError> {
        let Some((size, _, None)) =
            with_conn!(self, |conn, q| q::audit_sealed_head(&mut conn).await?)
        else {
            return Ok(false);
        };
        let size = head_size(Some(size))?;
        if size == 0 {
            return Ok(false);
        }
        let sealed = seal.sign(size, &self.audit_root(size).await?)?;
        let done = with_conn!(self, |conn, q| q::seal_head(
            &mut conn,
            to_i64(size)?,
            &sealed
        )
        .await?);
        Ok(done == 1)
    }

    /// The checkpoint with the largest tree size, if any.
    pub async fn latest_checkpoint(&self) -> Result<Option<audit::Checkpoint>, StoreError> {
        let row = with_conn!(self, |conn, q| q::latest_checkpoint(&mut conn).await?);
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
        let rows = with_conn!(self, |conn, q| q::checkpoints_after(
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
        let rows = with_conn!(self, |conn, q| q::checkpoints(&mut conn).await?);
        rows.into_iter().map(checkpoint).collect()
    }

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
        let (sealed_head, rows) = with_conn!(self, |conn, q| {
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
        let seal = seal.as_deref().map(log_seal::decode_seal).transpose();
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
            let (rows, nodes) = with_conn!(self, |conn, q| {
                let rows = q::audit_check_page(&mut conn, after, below, CHECK_PAGE).await?;
                let nodes = match (rows.first(), rows.last()) {
                    (Some(first), Some(last)) => {
                        // The stored nodes the page's leaves complete.
                        let ranges = audit_log::nodes_completed_in(
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
        } = match &self.pools {
            Pools::Sqlite(pool) => {
                let mut conn = pool.get().await.map_err(pool_error)?;
                queries::sqlite::audit_tail(&mut conn).await?
            }
            Pools::Postgres { pools, .. } => {
                let mut conn = pools.get().await.map_err(pool_error)?;
                queries::pg::audit_tail(&mut conn).await?
            }
        };
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

/// Stored nodes for comparison; a value that is not a hex hash simply never
/// equals a recomputed one (reported as a mismatch, not a failure).
fn node_map_lenient(rows: Vec<(i32, i64, String)>) -> NodeMap {
    let mut map = HashMap::with_capacity(rows.len());
    for (level, idx, hex) in rows {
        if let (Ok(l), Ok(i)) = (u32::try_from(level), u64::try_from(idx)) {
            map.insert((l, i), audit_log::from_hex(&hex).unwrap_or([0xff; 32]));
        }
    }
    NodeMap(map)
}

fn head_size(size: Option<i64>) -> Result<u64, StoreError> {
    let size = size.ok_or_else(|| StoreError::Corrupt("audit_head has no row".into()))?;
    u64::try_from(size)
        .map_err(|_| StoreError::Corrupt(format!("audit_head size {size} is negative")))
}

fn stored_seq(seq: i64) -> Result<u64, StoreError> {
    u64::try_from(seq).map_err(|_| StoreError::Corrupt(format!("negative audit seq {seq}")))
}

/// Decodes a stored body; names the seq and the error position, never the content.
fn decode_event(seq: i64, body: &str) -> Result<audit::Event, StoreError> {
    serde_json::from_str(body).map_err(|e| {
        StoreError::Corrupt(format!(
            "audit event {seq} does not decode: {:?} error at column {}",
            e.classify(),
            e.column()
        ))
    })
}

fn checkpoint(row: CheckpointRow) -> Result<audit::Checkpoint, StoreError> {
    Ok(audit::Checkpoint {
        tree_size: stored_seq(row.tree_size)?,
        root_hash: row.root_hash,
        time: row.time,
        signature: row.signature,
    })
}
