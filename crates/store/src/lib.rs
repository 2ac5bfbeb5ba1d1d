//! Persistence for the hub.
//!
//! * [`Database`]: department records (the candidates for matching) and record
//!   links (matching cycle 0), in SQLite through diesel-async and a bb8 pool,
//!   with the schema embedded from `/migrations`.
//! * [`records_file`]: streaming readers for the department record files an
//!   operator imports (`hub records import`).
//! * [`SessionStore`]: short-lived expiring state (journeys, codes, replay
//!   caches), with the in-process [`MemorySessionStore`].
//!
//! Errors are one [`StoreError`], whose [`StoreError::is_unavailable`] tells the
//! web layer when to answer 503 instead of 500.

#![cfg_attr(test, allow(clippy::unwrap_used))]

mod database;
mod error;
mod queries;
pub mod records_file;
mod schema;
mod session;

pub use database::{Database, DatabaseOptions};
pub use error::StoreError;
pub use records_file::RowError;
pub use session::{MemorySessionStore, SessionStore};
