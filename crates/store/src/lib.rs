//! Persistence for the hub.
//!
//! * [`Database`]: department records (the candidates for matching) and record
//!   links (matching cycle 0), in SQLite (embedded default) or PostgreSQL
//!   (several hub instances) through diesel-async and a bb8 pool, with one
//!   schema embedded from `/migrations` for both.
//! * The audit log (same [`Database`]): events appended in one gapless order
//!   by every instance, an RFC 9162 Merkle tree over them for roots, proofs and
//!   signed checkpoints, filtered queries for auditors, a self-check that
//!   recomputes everything, and retention that blanks old events but keeps
//!   their hashes (storage format: the `audit_log` and `audit_retention`
//!   migrations).
//! * [`records_file`]: streaming readers for the department record files an
//!   operator imports (`hub records import`).
//! * [`SessionStore`]: short-lived expiring state (journeys, codes, replay
//!   caches), in process ([`MemorySessionStore`]) or shared by every instance
//!   ([`RedisSessionStore`]).
//! * `test_support` (feature `test-support`): scratch databases and key
//!   prefixes for tests and tooling.
//!
//! Errors are one [`StoreError`], whose [`StoreError::is_unavailable`] tells the
//! web layer when to answer 503 instead of 500.

#![cfg_attr(test, allow(clippy::unwrap_used))]

mod database;
mod error;
mod queries;
pub mod records_file;
mod redis_session;
mod registry;
mod schema;
mod session;
#[cfg(feature = "test-support")]
pub mod test_support;
mod verification_log;

pub use database::{
    Database, DatabaseOptions, LinkOrCandidates, PoolState, PreparedRecords, SchemaStatus,
};
pub use error::{redact_url, StoreError};
pub use records_file::RowError;
pub use redis_session::RedisSessionStore;
pub use registry::RegistryRow;
pub use session::{Exchange, MemorySessionStore, Put, SessionStore};
pub use verification_log::{
    AppendedRange, AuditCheckReport, AuditFilter, AuditProblem, AuditProblemKind, LogSeal,
    MAX_AUDIT_PAGE,
};
