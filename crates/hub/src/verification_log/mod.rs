//! The verification log as the hub writes it: the batching writer every step appends
//! through (`trail`), the published checkpoints and their signed notes (`checkpoints`),
//! and archiving then pruning (`retention`). Storage and the tree are `store` and `audit`.

pub mod checkpoints;
pub mod retention;
pub mod trail;

use std::sync::Arc;
use std::time::Duration;

use store::{Database, LogSeal, SessionStore};

use crate::config::{AuditSettings, AuditorSettings};
use trail::AuditTrail;

/// What the auditors' side of the hub reads and writes: the stored log, the keys that
/// seal it and sign its notes, the writer, and the auditors allowed to read it.
pub(crate) struct VerificationLog {
    pub(crate) db: Database,
    /// The current key signs; every published key is accepted on what the log holds.
    pub(crate) seal: LogSeal,
    /// Signs checkpoint notes for witnesses, under the log's origin.
    pub(crate) note: Arc<audit::NoteSigner>,
    pub(crate) trail: AuditTrail,
    pub(crate) settings: AuditSettings,
    pub(crate) auditors: Vec<AuditorSettings>,
    /// Auditors' access tokens.
    pub(crate) sessions: Arc<dyn SessionStore>,
    pub(crate) token_ttl: Duration,
}

impl std::fmt::Debug for VerificationLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerificationLog")
            .field("auditors", &self.auditors.len())
            .finish_non_exhaustive()
    }
}
