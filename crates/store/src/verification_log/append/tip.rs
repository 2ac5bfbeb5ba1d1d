//! The tip: where this writer's own last append left the log, so that its
//! next append needs nothing read (PostgreSQL's one-statement append).

use std::collections::HashMap;

use audit::{Hash, NodeMap};

use super::algorithm::AppendBatch;
use crate::error::StoreError;
use crate::verification_log::time::TimeMark;
use crate::verification_log::tree::frontier_coords;

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
