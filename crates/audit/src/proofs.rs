//! Inclusion and consistency proofs as the audit API serves them, and their
//! verification against checkpoints the hub signed: what an auditor runs to
//! show that one event is in the log, or that the log only grew between two
//! checkpoints (no event rewritten, removed or reordered).

use serde::{Deserialize, Serialize};

use crate::checkpoint::Checkpoint;
use crate::event::Event;
use crate::hash::{decode_hash, encode_hash, Hash};
use crate::tree::{verify_consistency, verify_inclusion};
use crate::AuditError;

/// `GET /audit/v1/proof/inclusion`: event `index`, its audit path and the root
/// it leads to. `leaf_hash` and `root_hash` are for reading; verification
/// recomputes the leaf from `event` and trusts only a signed root.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct InclusionProof {
    /// Leaf index of the event.
    pub index: u64,
    /// Size of the tree the proof is for.
    pub tree_size: u64,
    /// The event's leaf hash, standard base64.
    pub leaf_hash: String,
    /// Audit path (RFC 9162 PATH, nearest sibling first), standard base64.
    pub proof: Vec<String>,
    /// Root of the tree of `tree_size`, standard base64.
    pub root_hash: String,
    /// The event exactly as logged.
    pub event: Event,
}

impl InclusionProof {
    /// The proof of `event` at `index` in the tree of `tree_size` with `root`.
    pub fn new(index: u64, tree_size: u64, event: Event, path: &[Hash], root: &Hash) -> Self {
        Self {
            index,
            tree_size,
            leaf_hash: encode_hash(&event.leaf_hash()),
            proof: path.iter().map(encode_hash).collect(),
            root_hash: encode_hash(root),
            event,
        }
    }

    /// Verifies that the event is at `index` in the log `checkpoint` describes:
    /// the checkpoint's signature (with `keys`, the hub's JWKS), its size, and
    /// the path from the event's recomputed leaf to the signed root.
    pub fn verify(
        &self,
        checkpoint: &Checkpoint,
        keys: &token::VerificationKeys,
    ) -> Result<(), AuditError> {
        let root = checkpoint.verify(keys)?;
        if checkpoint.tree_size != self.tree_size {
            return Err(AuditError::ProofSize {
                proof: self.tree_size,
                checkpoint: checkpoint.tree_size,
            });
        }
        verify_inclusion(
            &self.event.leaf_hash(),
            self.index,
            self.tree_size,
            &decode_path(&self.proof)?,
            &root,
        )
    }
}

/// `GET /audit/v1/proof/consistency`: the hashes that show the tree of
/// `second` extends the tree of `first`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct ConsistencyProof {
    /// The older tree size.
    pub first: u64,
    /// The newer tree size.
    pub second: u64,
    /// RFC 9162 consistency path, standard base64.
    pub proof: Vec<String>,
}

impl ConsistencyProof {
    /// The proof from `first` to `second`.
    pub fn new(first: u64, second: u64, path: &[Hash]) -> Self {
        Self {
            first,
            second,
            proof: path.iter().map(encode_hash).collect(),
        }
    }

    /// Verifies that the log of checkpoint `older` is a prefix of the log of
    /// checkpoint `newer`: both signatures (with `keys`), that the proof is
    /// for their sizes, and the path between their signed roots.
    pub fn verify(
        &self,
        older: &Checkpoint,
        newer: &Checkpoint,
        keys: &token::VerificationKeys,
    ) -> Result<(), AuditError> {
        let first_root = older.verify(keys)?;
        let second_root = newer.verify(keys)?;
        for (proof, checkpoint) in [(self.first, older), (self.second, newer)] {
            if proof != checkpoint.tree_size {
                return Err(AuditError::ProofSize {
                    proof,
                    checkpoint: checkpoint.tree_size,
                });
            }
        }
        verify_consistency(
            self.first,
            self.second,
            &first_root,
            &second_root,
            &decode_path(&self.proof)?,
        )
    }
}

fn decode_path(path: &[String]) -> Result<Vec<Hash>, AuditError> {
    path.iter().map(|h| decode_hash(h)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tree::{consistency_proof, inclusion_proof, root, MemoryTree};
    use crate::EventType;

    struct Log {
        events: Vec<Event>,
        tree: MemoryTree,
        key: token::SigningKey,
        keys: token::VerificationKeys,
    }

    impl Log {
        fn new(n: usize) -> Self {
            let key = token::SigningKey::generate().unwrap();
            let keys = token::VerificationKeys::from_jwks(&key.jwks()).unwrap();
            let mut log = Self {
                events: Vec::new(),
                tree: MemoryTree::new(),
                key,
                keys,
            };
            for i in 0..n {
                let event = Event {
                    rp: Some(format!("rp-{i}")),
                    ..Event::new(EventType::JourneyStarted, "test")
                };
                log.tree.push(event.leaf_hash());
                log.events.push(event);
            }
            log
        }

        fn checkpoint(&self, size: u64) -> Checkpoint {
            let root = root(size, &self.tree).unwrap();
            Checkpoint::sign(size, &root, crate::rfc3339_now(), &self.key).unwrap()
        }

        fn inclusion(&self, index: u64, size: u64) -> InclusionProof {
            let path = inclusion_proof(index, size, &self.tree).unwrap();
            let root = root(size, &self.tree).unwrap();
            InclusionProof::new(
                index,
                size,
                self.events[index as usize].clone(),
                &path,
                &root,
            )
        }

        fn consistency(&self, first: u64, second: u64) -> ConsistencyProof {
            let path = consistency_proof(first, second, &self.tree).unwrap();
            ConsistencyProof::new(first, second, &path)
        }
    }

    #[test]
    fn inclusion_verifies_against_the_signed_root_only() {
        let log = Log::new(11);
        let checkpoint = log.checkpoint(11);
        let proof = log.inclusion(6, 11);
        proof.verify(&checkpoint, &log.keys).unwrap();

        let mut altered = proof.clone();
        altered.event.rp = Some("rp-other".into());
        assert!(matches!(
            altered.verify(&checkpoint, &log.keys),
            Err(AuditError::InclusionRootMismatch)
        ));
        let mut moved = proof.clone();
        moved.index = 7;
        assert!(moved.verify(&checkpoint, &log.keys).is_err());
        let mut own_root = log.inclusion(6, 10);
        own_root.tree_size = 11;
        assert!(own_root.verify(&checkpoint, &log.keys).is_err());
        assert!(matches!(
            log.inclusion(6, 10).verify(&checkpoint, &log.keys),
            Err(AuditError::ProofSize {
                proof: 10,
                checkpoint: 11
            })
        ));
        let stranger = Log::new(0);
        assert!(matches!(
            proof.verify(&checkpoint, &stranger.keys),
            Err(AuditError::CheckpointSignature(_))
        ));
    }

    #[test]
    fn consistency_links_two_signed_checkpoints() {
        let log = Log::new(13);
        let (older, newer) = (log.checkpoint(5), log.checkpoint(13));
        log.consistency(5, 13)
            .verify(&older, &newer, &log.keys)
            .unwrap();

        let forked = Log::new(13);
        let elsewhere = Checkpoint::sign(
            5,
            &root(5, &forked.tree).unwrap(),
            crate::rfc3339_now(),
            &log.key,
        )
        .unwrap();
        assert!(log
            .consistency(5, 13)
            .verify(&elsewhere, &newer, &log.keys)
            .is_err());
        assert!(matches!(
            log.consistency(4, 13).verify(&older, &newer, &log.keys),
            Err(AuditError::ProofSize { .. })
        ));
        let mut bad = log.consistency(5, 13);
        bad.proof.pop();
        assert!(bad.verify(&older, &newer, &log.keys).is_err());
    }
}
