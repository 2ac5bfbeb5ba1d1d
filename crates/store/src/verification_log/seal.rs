//! The verification log's signed head ("seal"): every append signs the size
//! and root it leaves and stores the signature with the head, in the same
//! transaction; every append that reads the head first checks the seal it
//! extends. Rows written, rewritten or deleted behind the hub's back (with
//! the tree recomputed to match) then break a signature nobody else can make.

use std::fmt;
use std::sync::Arc;

use audit::{Checkpoint, Hash};

use crate::error::StoreError;

/// The hub's keys as the log's appends use them: the current key seals, and
/// every published key (current, next, previous) is accepted on the seal an
/// append extends, so instances on either side of a key rotation (one that
/// has reloaded the key files and one that has not yet) take turns.
#[derive(Clone)]
pub struct LogSeal {
    keys: token::LiveKeys,
}

impl fmt::Debug for LogSeal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LogSeal")
            .field("kid", &self.keys.signer().kid())
            .finish_non_exhaustive()
    }
}

impl LogSeal {
    /// Seals with the hub's live keys: whatever key is current when an append
    /// lands signs it.
    pub fn new(keys: token::LiveKeys) -> Self {
        Self { keys }
    }

    /// The key that seals now (the hub's current signing key).
    pub fn key(&self) -> Arc<token::SigningKey> {
        self.keys.signer()
    }

    /// The hub's keys now: [`token::KeySnapshot::verification_keys`] is what
    /// checkpoints and seals are verified with.
    pub fn published(&self) -> Arc<token::KeySnapshot> {
        self.keys.snapshot()
    }

    /// A seal with a fresh key of its own, for tests and tools that write a
    /// scratch log.
    pub fn generate() -> Result<Self, StoreError> {
        let keys = token::SigningKeys::generate()
            .and_then(token::LiveKeys::new)
            .map_err(|e| StoreError::Seal(e.to_string()))?;
        Ok(Self::new(keys))
    }

    /// The seal of a log of `size` events with this root, as stored.
    pub(crate) fn sign(&self, size: u64, root: &Hash) -> Result<String, StoreError> {
        let checkpoint = Checkpoint::sign(size, root, audit::rfc3339_now(), &self.key())
            .map_err(|e| StoreError::Seal(e.to_string()))?;
        serde_json::to_string(&checkpoint).map_err(|e| StoreError::Seal(e.to_string()))
    }

    /// Checks that `stored` seals exactly a log of `size` events with `root`.
    pub(crate) fn check(
        &self,
        stored: Option<&str>,
        size: u64,
        root: &Hash,
    ) -> Result<(), StoreError> {
        match stored {
            None if size == 0 => Ok(()),
            None => Err(StoreError::Seal(format!(
                "the log's head ({size} events) is not sealed"
            ))),
            Some(json) => match verified_seal(json, self.published().verification_keys())? {
                (sealed, sealed_root) if sealed == size && sealed_root == *root => Ok(()),
                (sealed, _) => Err(StoreError::Seal(format!(
                    "the log's head ({size} events) is not the one sealed ({sealed} events): \
                     rows were changed outside the hub"
                ))),
            },
        }
    }
}

/// Decodes a stored seal and verifies its signature: `(tree_size, root)`.
pub(crate) fn verified_seal(
    json: &str,
    keys: &token::VerificationKeys,
) -> Result<(u64, Hash), StoreError> {
    let checkpoint = decode_seal(json)?;
    let root = checkpoint
        .verify(keys)
        .map_err(|e| StoreError::Seal(format!("the log's seal does not verify: {e}")))?;
    Ok((checkpoint.tree_size, root))
}

/// A stored seal as the checkpoint it is (not verified).
pub(crate) fn decode_seal(json: &str) -> Result<Checkpoint, StoreError> {
    serde_json::from_str(json)
        .map_err(|_| StoreError::Seal("the log's seal is not a checkpoint".into()))
}
