//! The append algorithm, once for every backend: where a batch lands, its
//! rows (leaves, the nodes they complete), the time bookkeeping, the seal it
//! extends checked and the new one signed. A backend contributes only its SQL:
//! [`AppendSql`] for an append that reads the head under its lock, or a
//! statement that writes a [`Landing`] at the writer's own tip
//! ([`land_at_tip`]). A bug in the algorithm is fixed here, for all of them.

use audit::{Hash, NodeMap};

use super::tip::AuditTip;
use super::AppendedRange;
use crate::error::StoreError;
use crate::verification_log::encoding::{to_hex, to_i32, to_i64};
use crate::verification_log::rows::{AuditEventRow, AuditNodeRow, EventColumns, SealedHeadRow};
use crate::verification_log::seal::LogSeal;
use crate::verification_log::time::TimeMark;
use crate::verification_log::tree::{frontier_coords, node_coords, node_map, require_all};

/// An event ready to insert, prepared before the transaction so that the lock
/// on the head is held as briefly as possible.
#[derive(Debug)]
struct PreparedEvent {
    columns: EventColumns,
    body: String,
}

/// A batch of events to append, with the tree arithmetic the append needs
/// once it knows where the batch lands.
#[derive(Debug)]
pub(crate) struct AppendBatch {
    events: Vec<PreparedEvent>,
    /// `leaf_hash(body)` of each event, in order.
    leaves: Vec<Hash>,
}

impl AppendBatch {
    /// Serialises and hashes `events`; refuses an event whose time is not RFC 3339.
    pub(crate) fn prepare(events: &[audit::Event]) -> Result<Self, StoreError> {
        let mut prepared = Vec::with_capacity(events.len());
        let mut leaves = Vec::with_capacity(events.len());
        for (i, event) in events.iter().enumerate() {
            let columns = EventColumns::of(event)
                .map_err(|e| StoreError::InvalidInput(format!("audit event at index {i}: {e}")))?;
            let body = String::from_utf8(event.canonical_bytes()).map_err(|_| {
                StoreError::InvalidInput(format!(
                    "audit event at index {i}: canonical form is not UTF-8"
                ))
            })?;
            leaves.push(audit::leaf_hash(body.as_bytes()));
            prepared.push(PreparedEvent { columns, body });
        }
        Ok(Self {
            events: prepared,
            leaves,
        })
    }

    pub(crate) fn len(&self) -> u64 {
        self.events.len() as u64
    }

    /// The stored nodes (level 0: leaf hashes) that hashing this batch in at
    /// `first` reads: the left siblings wholly before `first` (the frontier
    /// of the tree of `first` leaves); those inside the batch come from the
    /// batch itself.
    pub(crate) fn stored_nodes_needed(&self, first: u64) -> Vec<(u32, u64)> {
        audit::required_nodes(|s| audit::nodes_completed_by_batch(first, &self.leaves, s))
    }

    /// What an append at `first` that reads the head reads of the stored
    /// nodes: those it needs, and the rest of the frontier, so that the
    /// [`AuditTip`] it leaves holds every node the next append needs.
    pub(crate) fn stored_nodes_read(&self, first: u64) -> Vec<(u32, u64)> {
        let mut coords = self.stored_nodes_needed(first);
        let rest: Vec<_> = frontier_coords(first)
            .filter(|c| !coords.contains(c))
            .collect();
        coords.extend(rest);
        coords
    }

    /// The rows to insert when the batch lands at `first`: its events and every
    /// node (level >= 1) its leaves complete. `stored` holds the nodes
    /// [`AppendBatch::stored_nodes_needed`] named.
    /// `mark` is the head's time bookkeeping before the batch, advanced past it.
    /// Borrows the batch: an append that finds the head moved lands it elsewhere.
    fn rows(
        &self,
        first: u64,
        stored: &NodeMap,
        mark: &mut TimeMark,
    ) -> Result<AppendRows, StoreError> {
        let completed = audit::nodes_completed_by_batch(first, &self.leaves, stored)
            .map_err(|e| StoreError::Corrupt(format!("audit tree incomplete at {first}: {e}")))?;
        let nodes = completed
            .iter()
            .filter(|n| n.0 >= 1)
            .map(|&(level, idx, hash)| {
                Ok(AuditNodeRow {
                    level: to_i32(level)?,
                    idx: to_i64(idx)?,
                    hash: to_hex(&hash),
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        let events = (first..)
            .zip(self.events.iter().zip(&self.leaves))
            .map(|(index, (event, leaf))| {
                let c = &event.columns;
                let max_time = mark.advance(c.millis, &c.time);
                Ok(AuditEventRow {
                    seq: to_i64(index)?,
                    id: c.id.clone(),
                    time: c.time.clone(),
                    max_time,
                    journey_id: c.journey_id.clone(),
                    event_type: c.event_type.clone(),
                    rp_id: c.rp_id.clone(),
                    idp_id: c.idp_id.clone(),
                    outcome: c.outcome.clone(),
                    body: event.body.clone(),
                    leaf_hash: to_hex(leaf),
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        Ok(AppendRows {
            events,
            nodes,
            completed,
        })
    }
}

/// What appending a batch writes, and every node it completes.
#[derive(Debug)]
struct AppendRows {
    events: Vec<AuditEventRow>,
    /// The completed nodes of level >= 1, as stored.
    nodes: Vec<AuditNodeRow>,
    /// Every node the batch completes, its leaves (level 0) included.
    completed: Vec<(u32, u64, Hash)>,
}

/// What an append writes, all of it worked out before the first write.
#[derive(Debug)]
pub(crate) struct AppendWrites {
    /// The batch's events, at their seqs.
    pub(crate) events: Vec<AuditEventRow>,
    /// Every node (level >= 1) the batch's leaves complete.
    pub(crate) nodes: Vec<AuditNodeRow>,
    /// `audit_head.max_time` after the batch.
    pub(crate) max_time: Option<String>,
    /// `audit_head.max_lag_ms` after the batch.
    pub(crate) max_lag_ms: i64,
    /// `audit_head.seal`: the seal of the log the append leaves.
    pub(crate) seal: String,
}

/// An append worked out: where the batch lands, what it writes, and the tip
/// it leaves for this writer's next append.
#[derive(Debug)]
pub(crate) struct Landing {
    pub(crate) range: AppendedRange,
    pub(crate) writes: AppendWrites,
    pub(crate) tip: AuditTip,
}

impl AppendBatch {
    /// The append algorithm: lands the batch on a head of `size` events with
    /// time bookkeeping `mark`, whose stored nodes `stored` holds (at least
    /// those [`AppendBatch::stored_nodes_read`] names at `size`), and seals
    /// the log it leaves with `seal`. The head's own seal is the caller's to
    /// check ([`append_reading_head`]) or vouch for ([`land_at_tip`]).
    fn land(
        &self,
        size: u64,
        mut mark: TimeMark,
        stored: &NodeMap,
        seal: &LogSeal,
    ) -> Result<Landing, StoreError> {
        let AppendRows {
            events,
            nodes,
            completed,
        } = self.rows(size, stored, &mut mark)?;
        let end = size + self.len();
        let tip = AuditTip::after(end, mark, stored, &completed).ok_or_else(|| {
            StoreError::Corrupt(format!("audit tree frontier incomplete at {end}"))
        })?;
        let sealed = seal.sign(end, &tip.root()?)?;
        let writes = AppendWrites {
            events,
            nodes,
            max_time: tip.mark.max_time().map(str::to_owned),
            max_lag_ms: tip.mark.max_lag_ms,
            seal: sealed,
        };
        Ok(Landing {
            range: AppendedRange {
                first_seq: size,
                size: end,
            },
            writes,
            tip,
        })
    }
}

/// A backend's SQL for an append that reads the head, run in the transaction
/// that the backend opens (and that holds the head's lock from
/// [`AppendSql::claim`] to its commit). Everything else is
/// [`append_reading_head`]'s.
pub(crate) trait AppendSql {
    /// Claims `len` seqs by adding them to `audit_head.size`, which locks the
    /// head for the rest of the transaction (every other append, from any hub
    /// instance, waits for it), and returns the head after the claim.
    async fn claim(&mut self, len: i64) -> Result<SealedHeadRow, StoreError>;
    /// The stored nodes `(level, idx, hex hash)` among `coords`.
    async fn nodes(&mut self, coords: &[(i32, i64)])
        -> Result<Vec<(i32, i64, String)>, StoreError>;
    /// Writes the events, the nodes and the head's time bookkeeping and seal.
    async fn write(&mut self, writes: AppendWrites) -> Result<(), StoreError>;
}

/// Appends `batch` after reading the head and the stored nodes it hashes
/// against, under the head's lock; checks that the head is the one last
/// sealed before building anything on it. Returns where the batch landed and
/// the tip it leaves (it reads the whole frontier, so the tip is complete).
pub(crate) async fn append_reading_head(
    sql: &mut impl AppendSql,
    batch: &AppendBatch,
    seal: &LogSeal,
) -> Result<(AppendedRange, AuditTip), StoreError> {
    let (size, max_time, max_lag_ms, stored_seal) = sql.claim(to_i64(batch.len())?).await?;
    let first = claimed_from(size, batch.len())?;
    // The whole frontier: the seal extended, and the one left, cover it.
    let read = batch.stored_nodes_read(first);
    let stored = node_map(sql.nodes(&node_coords(&read)?).await?)?;
    require_all(&stored, &read)?;
    check_head(seal, stored_seal.as_deref(), first, &stored)?;
    let mark = TimeMark::stored(max_time, max_lag_ms)?;
    let Landing { range, writes, tip } = batch.land(first, mark, &stored, seal)?;
    sql.write(writes).await?;
    Ok((range, tip))
}

/// Lands `batch` where this writer's last append left the log (`tip`), with
/// nothing to read: its head is the writer's own, sealed by it, so only the
/// new seal is needed; the statement that writes the landing must check that
/// the head still has `tip.size` events. `None` when `tip` lacks a node the
/// batch needs (then [`append_reading_head`] does it).
pub(crate) fn land_at_tip(
    tip: &AuditTip,
    batch: &AppendBatch,
    seal: &LogSeal,
) -> Result<Option<Landing>, StoreError> {
    if !tip.covers(batch) {
        return Ok(None);
    }
    batch
        .land(tip.size, tip.mark.clone(), &tip.frontier, seal)
        .map(Some)
}

/// Where a claim of `len` seqs that left the head at `size_after` starts.
fn claimed_from(size_after: i64, len: u64) -> Result<u64, StoreError> {
    let end = u64::try_from(size_after)
        .map_err(|_| StoreError::Corrupt(format!("audit_head size {size_after} is negative")))?;
    end.checked_sub(len)
        .ok_or_else(|| StoreError::Corrupt(format!("audit_head size {size_after} is inconsistent")))
}

/// Checks that the head an append read (`first` events, whose frontier
/// `stored` holds) is the one last sealed, before anything is built on it.
fn check_head(
    seal: &LogSeal,
    stored_seal: Option<&str>,
    first: u64,
    stored: &NodeMap,
) -> Result<(), StoreError> {
    let root: Hash = audit::root(first, stored)
        .map_err(|e| StoreError::Corrupt(format!("audit tree incomplete at {first}: {e}")))?;
    seal.check(stored_seal, first, &root)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verification_log::encoding::from_hex;

    /// Appends batches of 1 to 9 events through the tip alone (no other node
    /// source), as the one-statement append does; the roots must be those of
    /// the whole tree built leaf by leaf, and each seal the log it leaves.
    #[test]
    fn the_tip_holds_every_node_the_next_append_needs() {
        let seal = LogSeal::generate().unwrap();
        let event = |i: u64| {
            let mut e = audit::Event::new(audit::EventType::JourneyStarted, "test");
            e.time = format!("2026-11-22T10:00:{:02}.000Z", i % 60);
            e
        };
        let mut tip = AuditTip {
            size: 0,
            mark: TimeMark::default(),
            frontier: NodeMap::default(),
        };
        let mut all = audit::MemoryTree::new();
        let mut next = 0u64;
        for len in (1..=9u64).cycle().take(60) {
            let events: Vec<_> = (next..next + len).map(event).collect();
            let batch = AppendBatch::prepare(&events).unwrap();
            let landing = land_at_tip(&tip, &batch, &seal)
                .unwrap()
                .unwrap_or_else(|| panic!("the tip misses a node at {next}"));
            assert_eq!(landing.range.seqs(), next..next + len);
            for e in &landing.writes.events {
                all.push(from_hex(&e.leaf_hash).unwrap());
            }
            next += len;
            tip = landing.tip;
            assert_eq!(tip.frontier.0.len() as u32, next.count_ones());
            let root = audit::root(next, &all).unwrap();
            assert_eq!(audit::root(next, &tip.frontier).unwrap(), root);
            seal.check(Some(&landing.writes.seal), next, &root).unwrap();
        }
    }
}
