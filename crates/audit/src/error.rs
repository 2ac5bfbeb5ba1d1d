/// Everything that can go wrong in this crate.
///
/// Each way a proof, checkpoint or export can fail has its own variant (with
/// the export line where there is one), so an auditor is told *what* is wrong
/// and tests can assert that each kind of tampering is caught as itself.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuditError {
    /// A node the computation needs is not in the [`crate::NodeSource`]
    /// (beyond the tree's size, or not persisted).
    #[error("node (level {level}, index {index}) is not available")]
    MissingNode {
        /// Height above the leaves (0 = leaf hash).
        level: u32,
        /// Position within that level.
        index: u64,
    },
    /// The [`crate::NodeSource`] itself failed (e.g. a database error).
    #[error("node source failed: {0}")]
    NodeSource(String),
    /// A leaf index at or beyond the tree size.
    #[error("leaf index {index} is outside a tree of size {size}")]
    IndexOutOfRange {
        /// The index asked for.
        index: u64,
        /// The tree size.
        size: u64,
    },
    /// A consistency proof from a larger tree to a smaller one.
    #[error("tree size {first} is larger than tree size {second}")]
    SizesOutOfOrder {
        /// The supposedly older size.
        first: u64,
        /// The supposedly newer size.
        second: u64,
    },
    /// The proof has more or fewer hashes than the index and sizes call for.
    #[error("proof has the wrong number of hashes ({got})")]
    WrongProofLength {
        /// Number of hashes in the proof.
        got: usize,
    },
    /// The inclusion proof leads to a different root: the leaf, its index or
    /// the proof is not what the log holds.
    #[error("inclusion proof does not lead to the expected root")]
    InclusionRootMismatch,
    /// The consistency proof does not reproduce the first (older) root.
    #[error("consistency proof does not reproduce the first root")]
    FirstRootMismatch,
    /// The consistency proof does not reproduce the second (newer) root; for
    /// equal sizes, the two roots differ.
    #[error("consistency proof does not reproduce the second root")]
    SecondRootMismatch,
    /// A hash that is not standard base64 of exactly 32 bytes.
    #[error("bad hash encoding: {0}")]
    BadHashEncoding(String),
    /// An event type name that is not one of [`crate::EventType`]'s.
    #[error("unknown event type {0:?}")]
    UnknownEventType(String),
    /// The checkpoint could not be signed.
    #[error("checkpoint could not be signed: {0}")]
    CheckpointSigning(#[source] token::TokenError),
    /// The checkpoint's JWS does not verify with the given keys (bad
    /// signature, unknown key, disallowed algorithm, malformed token).
    #[error("checkpoint signature rejected: {0}")]
    CheckpointSignature(#[source] token::TokenError),
    /// The JWS verifies but is not a checkpoint (wrong `typ`, wrong payload).
    #[error("not a checkpoint: {0}")]
    CheckpointMalformed(String),
    /// A checkpoint field differs from what its signature covers.
    #[error("checkpoint field {field} differs from its signed payload")]
    CheckpointMismatch {
        /// `tree_size`, `root_hash` or `time`.
        field: &'static str,
    },
    /// A proof for another tree size than the checkpoint it is checked
    /// against: fetch the checkpoint of the proof's size, or the proof of the
    /// checkpoint's.
    #[error("the proof is for tree size {proof} but the checkpoint's tree has {checkpoint}")]
    ProofSize {
        /// The size the proof names.
        proof: u64,
        /// The checkpoint's tree size.
        checkpoint: u64,
    },
    /// A note key name, signing key or verifier key that cannot be used
    /// (the message names the rule broken, never the key material).
    #[error("bad note key: {0}")]
    NoteKey(String),
    /// Not a signed note, or not a tlog-checkpoint (signature lines, blank
    /// line, tree size, root hash...).
    #[error("malformed checkpoint note: {0}")]
    NoteMalformed(String),
    /// A signature line of the expected key does not verify: the note was
    /// altered after signing, or forged.
    #[error("checkpoint note signature by {key} does not verify")]
    NoteSignature {
        /// `<name>+<key id>` of the key.
        key: String,
    },
    /// No signature line of the expected key (another key with the same name
    /// does not count).
    #[error("checkpoint note is not signed by {key}")]
    NoteUnsigned {
        /// `<name>+<key id>` of the expected key.
        key: String,
    },
    /// A validly signed checkpoint of another log.
    #[error("checkpoint note is for origin {found:?}, not {expected:?}")]
    NoteOrigin {
        /// The origin the caller expects.
        expected: String,
        /// The origin line of the note.
        found: String,
    },
    /// The export could not be read.
    #[error("export line {line}: read error: {source}")]
    ExportRead {
        /// 1-based line number.
        line: u64,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A line that is not an [`crate::ExportedEvent`] (or whose proof hashes
    /// are not valid base64 hashes).
    #[error("export line {line}: not an exported event: {reason}")]
    ExportMalformed {
        /// 1-based line number.
        line: u64,
        /// What is wrong with it.
        reason: String,
    },
    /// The same index as the previous line.
    #[error("export line {line}: index {index} appears twice")]
    DuplicateIndex {
        /// 1-based line number.
        line: u64,
        /// The repeated index.
        index: u64,
    },
    /// An index lower than the previous line's: the export is not in log order.
    #[error("export line {line}: index {index} comes after index {previous}")]
    OutOfOrder {
        /// 1-based line number.
        line: u64,
        /// The index on this line.
        index: u64,
        /// The index on the previous event line.
        previous: u64,
    },
    /// An index the checkpoint's tree does not contain.
    #[error("export line {line}: index {index} is beyond the checkpoint's tree size {tree_size}")]
    IndexBeyondCheckpoint {
        /// 1-based line number.
        line: u64,
        /// The index on this line.
        index: u64,
        /// The checkpoint's tree size.
        tree_size: u64,
    },
    /// An export without inclusion proofs skips indices: events were removed.
    #[error("export line {line}: index {found} where {expected} was due: events are missing")]
    MissingEvents {
        /// 1-based line number of the first event after the gap.
        line: u64,
        /// The index that should have come next.
        expected: u64,
        /// The index found instead.
        found: u64,
    },
    /// An export without inclusion proofs stops before the checkpoint's size:
    /// events at the end were removed.
    #[error("export has {events} events but the checkpoint's tree has {tree_size}")]
    ExportIncomplete {
        /// Events in the export.
        events: u64,
        /// The checkpoint's tree size.
        tree_size: u64,
    },
    /// A partial export in which this event carries no inclusion proof, so it
    /// cannot be checked against the checkpoint.
    #[error("export line {line}: event {index} has no inclusion proof")]
    MissingInclusionProof {
        /// 1-based line number.
        line: u64,
        /// The event's index.
        index: u64,
    },
    /// The event's inclusion proof does not verify against the checkpoint:
    /// the event was altered, or moved to another index.
    #[error("export line {line}: event {index} is not in the checkpointed log: {source}")]
    InclusionProofFailed {
        /// 1-based line number.
        line: u64,
        /// The event's index.
        index: u64,
        /// Why the proof failed.
        #[source]
        source: Box<AuditError>,
    },
    /// A complete export whose recomputed root differs from the checkpoint's:
    /// some event was altered or events were reordered.
    #[error("the export's events do not hash to the checkpoint's root (tree size {tree_size})")]
    RootMismatch {
        /// The checkpoint's tree size.
        tree_size: u64,
    },
}
