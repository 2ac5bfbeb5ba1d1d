//! The hub's tamper-evident verification log: event model, RFC 9162 Merkle
//! tree hashing and proofs (and their verification against signed
//! checkpoints), signed checkpoints (JWS, and C2SP signed notes for
//! witnesses) and offline export verification.
//!
//! No web and no SQL here, so that an auditor can check an export with nothing
//! but this crate and the hub's public keys, and so that the tree logic is the
//! same whichever database holds the nodes.
//!
//! The tree functions read complete-subtree hashes through [`NodeSource`]: a
//! root or proof over `n` events reads `O(log n)` nodes, never the whole log.
//! To serve them from an async database, compute the coordinates first with
//! [`required_nodes`], fetch those rows, then run the same function over a
//! [`NodeMap`]:
//!
//! ```
//! # use audit::*;
//! # let mut tree = MemoryTree::new();
//! # for i in 0u8..10 { tree.push(leaf_hash(&[i])); }
//! let need = required_nodes(|s| inclusion_proof(3, 10, s));
//! let map = NodeMap(need.iter().map(|&(l, i)| ((l, i), tree.node(l, i).unwrap())).collect());
//! assert_eq!(inclusion_proof(3, 10, &map).unwrap(), inclusion_proof(3, 10, &tree).unwrap());
//! ```

mod checkpoint;
mod error;
mod event;
mod export;
mod hash;
mod note;
mod proofs;
mod tree;

pub use checkpoint::{Checkpoint, CHECKPOINT_EXP, CHECKPOINT_JWS_TYP, CHECKPOINT_PAYLOAD_TYP};
pub use error::AuditError;
pub use event::{rfc3339_now, Event, EventType};
pub use export::{verify_export, ExportedEvent, VerifyReport};
pub use hash::{decode_hash, empty_root, encode_hash, leaf_hash, node_hash, Hash};
pub use note::{
    checkpoint_note, verify_checkpoint_note, KeyName, NoteCheckpoint, NoteSigner, NoteVerifier,
};
pub use proofs::{ConsistencyProof, InclusionProof};
pub use tree::{
    consistency_proof, inclusion_proof, nodes_completed_by, nodes_completed_by_batch,
    required_nodes, root, verify_consistency, verify_inclusion, MemoryTree, NodeMap, NodeSource,
};
