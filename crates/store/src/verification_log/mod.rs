//! The verification log's storage: every event the hub appends, in one gapless
//! order shared by every instance, with the RFC 9162 Merkle tree over them
//! (roots, proofs, signed checkpoints), auditors' queries, retention, the
//! head's seal and a self-check that recomputes everything. The tree
//! arithmetic is the `audit` crate's; this module stores it.
//!
//! * [`append`]: the append algorithm, once for every backend (each backend's
//!   SQL for it is in [`sql`]).
//! * [`reads`]: events for auditors, roots and proofs.
//! * [`checkpoints`]: published checkpoints and the head's seal.
//! * [`retention`]: pruning old events' bodies.
//! * [`self_check`]: the streaming recomputation of the whole log.
//! * [`seal`]: the key that signs the head ([`LogSeal`]).
//! * [`sql`]: every SQL statement of the log; [`rows`] the rows they read
//!   and write; [`tree`], [`time`] and [`encoding`]: how nodes, times and
//!   hashes are stored.
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

mod append;
mod checkpoints;
mod encoding;
mod reads;
mod retention;
mod rows;
mod seal;
mod self_check;
mod sql;
mod time;
mod tree;

pub(crate) use append::AppendState;
pub use append::AppendedRange;
pub use reads::{AuditFilter, MAX_AUDIT_PAGE};
pub use seal::LogSeal;
pub use self_check::{AuditCheckReport, AuditProblem, AuditProblemKind};
