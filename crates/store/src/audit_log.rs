//! The audit log's storage logic that involves no SQL: turning events into
//! rows, planning the tree nodes an append writes, and the streaming
//! recomputation behind [`crate::Database::audit_self_check`].
//!
//! Storage format (migration `2026-11-30-000000_audit_log`): hashes are
//! lowercase hexadecimal TEXT rather than BLOB/BYTEA, so that one portable
//! schema and one diesel mapping serve SQLite and PostgreSQL. `audit_events.time`
//! is the event's time normalised to RFC 3339 UTC with exactly three fraction
//! digits, so comparing the text compares the instants. `audit_events.max_time`
//! (the latest time up to each seq, never decreasing) and
//! `audit_head.max_lag_ms` (how far any event's time lags behind it) turn a
//! time range into a seq range, so a time-filtered page reads only the rows
//! of its range even though instances append events slightly out of time
//! order.
//!
//! Retention (migration `2026-12-01-000000_audit_retention`): pruning blanks
//! the oldest events' bodies and searchable columns but keeps their rows and
//! leaf hashes, so the tree, its checkpoints and every proof stay as they
//! were; `audit_head.pruned_below` marks where the pruned prefix ends.

use std::collections::{HashMap, VecDeque};
use std::ops::Range;

use audit::{Hash, NodeMap, NodeSource};
use chrono::{DateTime, Datelike, SecondsFormat, Timelike, Utc};

use crate::error::StoreError;
use crate::log_seal::LogSeal;
use crate::queries::{AuditCheckRow, AuditEventRow, AuditNodeRow};

/// Most events [`crate::Database::audit_events`] returns per call.
pub const MAX_AUDIT_PAGE: u32 = 1000;

/// Problems [`crate::Database::audit_self_check`] lists before it stops.
pub(crate) const MAX_PROBLEMS: usize = 100;

/// Which events [`crate::Database::audit_events`] returns; every `Some` field
/// must match (AND). `Default` matches everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    /// Events at or after this instant (RFC 3339, any offset).
    pub from: Option<String>,
    /// Events strictly before this instant (RFC 3339, any offset).
    pub to: Option<String>,
    /// Restricts the result to these RPs (an auditor scoped to some RPs):
    /// events without an RP never match, and an empty list matches nothing.
    pub rps: Option<Vec<String>>,
    /// Events of this RP only (within `rps` if both are given).
    pub rp: Option<String>,
    /// Events involving this IdP.
    pub idp: Option<String>,
    /// Events of this type (`audit::EventType` in its snake_case form).
    pub event_type: Option<String>,
    /// Events with this outcome.
    pub outcome: Option<String>,
    /// Events of this journey.
    pub journey_id: Option<String>,
}

/// Where an append landed: the events got `first_seq..size`, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendedRange {
    /// Sequence number (leaf index) of the batch's first event.
    pub first_seq: u64,
    /// The log's size after the append: one past the batch's last event.
    pub size: u64,
}

impl AppendedRange {
    /// The sequence numbers the batch received.
    pub fn seqs(&self) -> Range<u64> {
        self.first_seq..self.size
    }
}

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

/// The columns of `audit_events` that copy an event's fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct EventColumns {
    pub(crate) id: String,
    pub(crate) time: String,
    /// `time` in milliseconds since the epoch (not a column: for `max_time`).
    pub(crate) millis: i64,
    pub(crate) journey_id: Option<String>,
    pub(crate) event_type: String,
    pub(crate) rp_id: Option<String>,
    pub(crate) idp_id: Option<String>,
    pub(crate) outcome: Option<String>,
}

impl EventColumns {
    pub(crate) fn of(event: &audit::Event) -> Result<Self, String> {
        let (time, millis) = event_time(&event.time)?;
        Ok(Self {
            id: event.id.clone(),
            time,
            millis,
            journey_id: event.journey_id.clone(),
            event_type: event.event_type.as_str().to_owned(),
            rp_id: event.rp.clone(),
            idp_id: event.idp.clone(),
            outcome: event.outcome.clone(),
        })
    }

    /// Names of the columns of `row` that differ from `self`.
    fn differences(&self, row: &AuditCheckRow) -> Vec<&'static str> {
        let mut out = Vec::new();
        let pairs: [(&'static str, Option<&str>, Option<&str>); 7] = [
            ("id", Some(&self.id), Some(&row.id)),
            ("time", Some(&self.time), Some(&row.time)),
            (
                "journey_id",
                self.journey_id.as_deref(),
                row.journey_id.as_deref(),
            ),
            ("event_type", Some(&self.event_type), Some(&row.event_type)),
            ("rp_id", self.rp_id.as_deref(), row.rp_id.as_deref()),
            ("idp_id", self.idp_id.as_deref(), row.idp_id.as_deref()),
            ("outcome", self.outcome.as_deref(), row.outcome.as_deref()),
        ];
        for (name, ours, stored) in pairs {
            if ours != stored {
                out.push(name);
            }
        }
        out
    }
}

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
    pub(crate) fn rows(
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
pub(crate) struct AppendRows {
    pub(crate) events: Vec<AuditEventRow>,
    /// The completed nodes of level >= 1, as stored.
    pub(crate) nodes: Vec<AuditNodeRow>,
    /// Every node the batch completes, its leaves (level 0) included.
    pub(crate) completed: Vec<(u32, u64, Hash)>,
}

/// The log's head as one writer left it after its own last append: size, time
/// bookkeeping and the frontier (the roots of the complete subtrees at the
/// right edge, which are all the stored nodes the next append hashes
/// against). Current only while nobody else has appended since: the append
/// that uses it checks `size` in the same statement that claims the range.
#[derive(Debug, Clone)]
pub(crate) struct AuditTip {
    pub(crate) size: u64,
    pub(crate) mark: TimeMark,
    pub(crate) frontier: NodeMap,
}

impl AuditTip {
    /// The tip after an append that ended at `size`, from the nodes it read
    /// (`stored`) and those it completed; `None` if they do not hold the
    /// whole frontier (the next append then reads it from the database).
    pub(crate) fn after(
        size: u64,
        mark: TimeMark,
        stored: &NodeMap,
        completed: &[(u32, u64, Hash)],
    ) -> Option<Self> {
        let mut frontier = HashMap::new();
        for coord in frontier_coords(size) {
            let hash = stored
                .0
                .get(&coord)
                .copied()
                .or_else(|| completed.iter().find(|n| (n.0, n.1) == coord).map(|n| n.2))?;
            frontier.insert(coord, hash);
        }
        Some(Self {
            size,
            mark,
            frontier: NodeMap(frontier),
        })
    }

    /// The root of the log this tip describes.
    pub(crate) fn root(&self) -> Result<Hash, StoreError> {
        audit::root(self.size, &self.frontier).map_err(|e| {
            StoreError::Corrupt(format!("audit tree incomplete at {}: {e}", self.size))
        })
    }

    /// Whether the tip holds every stored node that appending `batch` here reads.
    pub(crate) fn covers(&self, batch: &AppendBatch) -> bool {
        batch
            .stored_nodes_needed(self.size)
            .iter()
            .all(|c| self.frontier.0.contains_key(c))
    }
}

/// Checks that the head an append read (`first` events, whose frontier
/// `stored` holds) is the one last sealed, before anything is built on it.
pub(crate) fn check_head(
    seal: &LogSeal,
    stored_seal: Option<&str>,
    first: u64,
    stored: &NodeMap,
) -> Result<(), StoreError> {
    let root = audit::root(first, stored)
        .map_err(|e| StoreError::Corrupt(format!("audit tree incomplete at {first}: {e}")))?;
    seal.check(stored_seal, first, &root)
}

/// The tip after an append that ended at `end` (see [`AuditTip::after`]) and
/// the seal of the log it leaves.
pub(crate) fn sealed_tip(
    seal: &LogSeal,
    end: u64,
    mark: TimeMark,
    stored: &NodeMap,
    completed: &[(u32, u64, Hash)],
) -> Result<(AuditTip, String), StoreError> {
    let tip = AuditTip::after(end, mark, stored, completed)
        .ok_or_else(|| StoreError::Corrupt(format!("audit tree frontier incomplete at {end}")))?;
    let sealed = seal.sign(end, &tip.root()?)?;
    Ok((tip, sealed))
}

/// The roots of the complete subtrees that make up a tree of `size` leaves:
/// one per set bit of `size`, at that bit's level.
fn frontier_coords(size: u64) -> impl Iterator<Item = (u32, u64)> {
    (0..u64::BITS)
        .filter(move |&level| (size >> level) & 1 == 1)
        .map(move |level| (level, (size >> level) - 1))
}

/// Decodes stored `(level, idx, hex)` node rows (level 0 from leaf hashes).
pub(crate) fn node_map(rows: Vec<(i32, i64, String)>) -> Result<NodeMap, StoreError> {
    let mut map = HashMap::with_capacity(rows.len());
    for (level, idx, hex) in rows {
        let (Ok(l), Ok(i)) = (u32::try_from(level), u64::try_from(idx)) else {
            return Err(StoreError::Corrupt(format!(
                "audit node ({level}, {idx}) has negative coordinates"
            )));
        };
        let hash = from_hex(&hex).ok_or_else(|| {
            StoreError::Corrupt(format!("audit node ({level}, {idx}) is not a hex hash"))
        })?;
        map.insert((l, i), hash);
    }
    Ok(NodeMap(map))
}

/// Fails with [`StoreError::Corrupt`] unless `map` holds every node in `needed`.
pub(crate) fn require_all(map: &NodeMap, needed: &[(u32, u64)]) -> Result<(), StoreError> {
    match needed.iter().find(|c| !map.0.contains_key(c)) {
        None => Ok(()),
        Some((level, idx)) => Err(StoreError::Corrupt(format!(
            "audit node ({level}, {idx}) is missing"
        ))),
    }
}

/// `event.time` as stored in `audit_events.time` (UTC, milliseconds,
/// truncated), and as milliseconds since the epoch.
pub(crate) fn event_time(raw: &str) -> Result<(String, i64), String> {
    let t = DateTime::parse_from_rfc3339(raw)
        .map_err(|e| format!("time is not RFC 3339 ({e})"))?
        .with_timezone(&Utc);
    Ok((
        t.to_rfc3339_opts(SecondsFormat::Millis, true),
        t.timestamp_millis(),
    ))
}

/// A stored (normalised) time in milliseconds since the epoch.
pub(crate) fn stored_millis(stored: &str) -> Option<i64> {
    DateTime::parse_from_rfc3339(stored)
        .ok()
        .map(|t| t.timestamp_millis())
}

/// The stored form of `millis` (inverse of [`stored_millis`]); `None` past
/// year 9999, where the text would stop sorting as time.
fn millis_time(millis: i64) -> Option<String> {
    DateTime::<Utc>::from_timestamp_millis(millis)
        .filter(|t| (0..=9999).contains(&t.year()))
        .map(|t| t.to_rfc3339_opts(SecondsFormat::Millis, true))
}

/// A filter bound in the stored form, rounded up to the millisecond: stored
/// times have millisecond precision, so `t >= bound` and `t < bound` keep
/// their meaning for the exact instant.
pub(crate) fn bound_time(what: &str, raw: &str) -> Result<TimeBound, StoreError> {
    let t = DateTime::parse_from_rfc3339(raw)
        .map_err(|e| StoreError::InvalidInput(format!("{what} is not RFC 3339 ({e})")))?
        .with_timezone(&Utc);
    let sub_milli = t.nanosecond() % 1_000_000;
    let t = if sub_milli == 0 {
        t
    } else {
        t + chrono::Duration::nanoseconds(i64::from(1_000_000 - sub_milli))
    };
    Ok(TimeBound {
        text: t.to_rfc3339_opts(SecondsFormat::Millis, true),
        millis: t.timestamp_millis(),
    })
}

/// A time filter bound, in the stored form and in milliseconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TimeBound {
    pub(crate) text: String,
    pub(crate) millis: i64,
}

impl TimeBound {
    /// The `max_time` every event before this bound stays under: the bound
    /// plus the largest lag of any event (see `audit_head.max_lag_ms`).
    /// `None` when that is beyond the representable range (no bound then).
    pub(crate) fn plus_lag(&self, lag_ms: i64) -> Option<String> {
        self.millis.checked_add(lag_ms).and_then(millis_time)
    }
}

/// `audit_head`'s time bookkeeping: the latest event time so far and the
/// largest lag of an event behind it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct TimeMark {
    /// `(millis, stored text)` of the latest event time; `None` while empty.
    pub(crate) max: Option<(i64, String)>,
    pub(crate) max_lag_ms: i64,
}

impl TimeMark {
    /// From `audit_head.max_time` and `max_lag_ms`.
    pub(crate) fn stored(max_time: Option<String>, max_lag_ms: i64) -> Result<Self, StoreError> {
        let max = match max_time {
            None => None,
            Some(text) => Some((
                stored_millis(&text).ok_or_else(|| {
                    StoreError::Corrupt("audit_head max_time is not a time".into())
                })?,
                text,
            )),
        };
        Ok(Self { max, max_lag_ms })
    }

    /// Advances past an event at `millis` (stored text `time`); returns the
    /// event's `max_time`.
    fn advance(&mut self, millis: i64, time: &str) -> String {
        match &self.max {
            Some((max, _)) if *max >= millis => {
                self.max_lag_ms = self.max_lag_ms.max(max - millis);
            }
            _ => self.max = Some((millis, time.to_owned())),
        }
        self.max
            .as_ref()
            .map_or_else(|| time.to_owned(), |m| m.1.clone())
    }

    pub(crate) fn max_time(&self) -> Option<&str> {
        self.max.as_ref().map(|m| m.1.as_str())
    }
}

pub(crate) fn to_hex(hash: &Hash) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(64);
    for b in hash {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    s
}

/// Parses exactly 64 lowercase hex digits (the only form the store writes).
pub(crate) fn from_hex(s: &str) -> Option<Hash> {
    fn digit(c: u8) -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            _ => None,
        }
    }
    let bytes = s.as_bytes();
    if bytes.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, pair) in bytes.chunks_exact(2).enumerate() {
        out[i] = digit(pair[0])? << 4 | digit(pair[1])?;
    }
    Some(out)
}

/// Decodes a checkpoint's root (standard base64, `audit::encode_hash`).
pub(crate) fn decode_root(b64: &str) -> Option<Hash> {
    audit::decode_hash(b64).ok()
}

pub(crate) fn to_i64(n: u64) -> Result<i64, StoreError> {
    i64::try_from(n).map_err(|_| StoreError::InvalidInput(format!("{n} is out of range")))
}

fn to_i32(n: u32) -> Result<i32, StoreError> {
    i32::try_from(n).map_err(|_| StoreError::InvalidInput(format!("{n} is out of range")))
}

/// Nodes of levels >= 1 in a tree of `size` leaves: `size - popcount(size)`.
pub(crate) fn node_count(size: u64) -> u64 {
    size - u64::from(size.count_ones())
}

/// `(level, first idx, last idx)` of the nodes completed by appending the
/// leaves `first..=last`: node (l, i) is completed by leaf (i + 1) * 2^l - 1.
pub(crate) fn nodes_completed_in(first: u64, last: u64) -> Vec<(i32, i64, i64)> {
    let mut ranges = Vec::new();
    let (first, last) = (u128::from(first), u128::from(last));
    for level in 1..64u32 {
        let width = 1u128 << level;
        if last + 1 < width {
            break;
        }
        let lo = (first + width) / width - 1;
        let hi = (last + 1) / width - 1;
        if lo <= hi {
            if let (Ok(lo), Ok(hi)) = (i64::try_from(lo), i64::try_from(hi)) {
                ranges.push((level as i32, lo, hi));
            }
        }
    }
    ranges
}

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

    #[test]
    fn hex_round_trip() {
        let h: Hash = std::array::from_fn(|i| (i * 7) as u8);
        let s = to_hex(&h);
        assert_eq!(s.len(), 64);
        assert_eq!(s, s.to_lowercase());
        assert_eq!(from_hex(&s), Some(h));
        assert_eq!(from_hex(&s.to_uppercase()), None);
        assert_eq!(from_hex(&s[1..]), None);
    }

    #[test]
    fn times_normalise_to_utc_millis() {
        assert_eq!(
            event_time("2026-11-22T10:00:00Z").unwrap().0,
            "2026-11-22T10:00:00.000Z"
        );
        let (text, millis) = event_time("2026-11-22T11:00:00.1234+01:00").unwrap();
        assert_eq!(text, "2026-11-22T10:00:00.123Z");
        assert_eq!(stored_millis(&text), Some(millis));
        let from = bound_time("from", "2026-11-22T10:00:00.1231Z").unwrap();
        assert_eq!(from.text, "2026-11-22T10:00:00.124Z");
        assert_eq!(from.plus_lag(2_000).unwrap(), "2026-11-22T10:00:02.124Z");
        assert_eq!(
            bound_time("to", "2026-11-22T10:00:00Z").unwrap().text,
            "2026-11-22T10:00:00.000Z"
        );
        let end = bound_time("to", "9999-12-31T23:59:59.999Z").unwrap();
        assert_eq!(end.plus_lag(1), None, "would not sort as text");
        assert!(bound_time("from", "yesterday").is_err());
    }

    /// Appends batches of 1 to 9 events through the tip alone (no other node
    /// source), as the one-statement append does; the roots must be those of
    /// the whole tree built leaf by leaf.
    #[test]
    fn the_tip_holds_every_node_the_next_append_needs() {
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
            assert!(tip.covers(&batch), "at {next}");
            let mut mark = tip.mark.clone();
            let rows = batch.rows(tip.size, &tip.frontier, &mut mark).unwrap();
            for e in &rows.events {
                all.push(from_hex(&e.leaf_hash).unwrap());
            }
            next += len;
            tip = AuditTip::after(next, mark, &tip.frontier, &rows.completed).unwrap();
            assert_eq!(tip.frontier.0.len() as u32, next.count_ones());
            assert_eq!(
                audit::root(next, &tip.frontier).unwrap(),
                audit::root(next, &all).unwrap()
            );
        }
    }

    #[test]
    fn time_mark_tracks_the_latest_time_and_the_largest_lag() {
        let mut mark = TimeMark::default();
        let t = |s: &str| event_time(s).unwrap();
        let mut step = |s: &str| {
            let (text, millis) = t(s);
            mark.advance(millis, &text)
        };
        assert_eq!(step("2026-01-01T00:00:10Z"), "2026-01-01T00:00:10.000Z");
        assert_eq!(step("2026-01-01T00:00:07Z"), "2026-01-01T00:00:10.000Z");
        assert_eq!(step("2026-01-01T00:00:12Z"), "2026-01-01T00:00:12.000Z");
        assert_eq!(step("2026-01-01T00:00:11.5Z"), "2026-01-01T00:00:12.000Z");
        assert_eq!(mark.max_lag_ms, 3_000);
        assert_eq!(mark.max_time(), Some("2026-01-01T00:00:12.000Z"));
    }

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
        // Only the root of the seal is compared here; signatures in tests/audit.rs.
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
        // No `log_pruned` events here: their rule is tested in tests/audit.rs.
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

    #[test]
    fn completed_ranges_match_a_brute_force_count() {
        for first in 0..40u64 {
            for last in first..70u64 {
                let mut expected: Vec<(u32, u64)> = Vec::new();
                for leaf in first..=last {
                    let mut level = 1;
                    while (leaf + 1) % (1 << level) == 0 {
                        expected.push((level, (leaf + 1) / (1 << level) - 1));
                        level += 1;
                    }
                }
                let mut got: Vec<(u32, u64)> = nodes_completed_in(first, last)
                    .into_iter()
                    .flat_map(|(l, lo, hi)| (lo..=hi).map(move |i| (l as u32, i as u64)))
                    .collect();
                got.sort();
                expected.sort();
                assert_eq!(got, expected, "{first}..={last}");
            }
        }
        assert_eq!(node_count(0), 0);
        assert_eq!(node_count(7), 4);
        assert_eq!(node_count(8), 7);
    }
}
