//! RFC 9162 §2.1 Merkle tree hashing, inclusion and consistency proofs, over
//! complete-subtree nodes read through [`NodeSource`].
//!
//! Every range the RFC's recursion visits either is a complete subtree
//! aligned on its size (one node read) or splits into a complete left part and
//! a smaller right part. So the root and each proof read `O(log n)` nodes, and
//! which nodes they read depends only on the indices and sizes, never on hash
//! values: that is what makes [`required_nodes`] exact.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::fmt;

use crate::hash::{empty_root, node_hash, Hash};
use crate::AuditError;

/// Where complete-subtree hashes live. Node `(level, index)` is the hash of
/// leaves `[index * 2^level, (index + 1) * 2^level)` and exists once all of
/// them are appended; level 0 is the leaf hashes.
///
/// The tree functions only ever ask for existing nodes of the size they are
/// given, so an implementation may answer [`AuditError::MissingNode`] for
/// anything it does not hold.
pub trait NodeSource {
    /// The hash of node `(level, index)`.
    fn node(&self, level: u32, index: u64) -> Result<Hash, AuditError>;
}

impl<T: NodeSource + ?Sized> NodeSource for &T {
    fn node(&self, level: u32, index: u64) -> Result<Hash, AuditError> {
        (**self).node(level, index)
    }
}

/// All nodes of a tree held in memory (one `Vec` per level): for tests,
/// benchmarks and offline verification tools.
#[derive(Clone, Default)]
pub struct MemoryTree {
    levels: Vec<Vec<Hash>>,
}

impl MemoryTree {
    /// An empty tree.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends a leaf hash and every node it completes.
    pub fn push(&mut self, leaf: Hash) {
        let mut index = self.size();
        let mut hash = leaf;
        let mut level = 0usize;
        loop {
            if self.levels.len() == level {
                self.levels.push(Vec::new());
            }
            // Invariant: levels[level] holds exactly the complete nodes of that
            // level, so the new node lands at position `index`.
            self.levels[level].push(hash);
            if index & 1 == 0 {
                break;
            }
            hash = node_hash(&self.levels[level][(index - 1) as usize], &hash);
            index >>= 1;
            level += 1;
        }
    }

    /// Number of leaves appended.
    pub fn size(&self) -> u64 {
        self.levels.first().map_or(0, |l| l.len() as u64)
    }
}

impl FromIterator<Hash> for MemoryTree {
    fn from_iter<I: IntoIterator<Item = Hash>>(iter: I) -> Self {
        let mut tree = Self::new();
        for leaf in iter {
            tree.push(leaf);
        }
        tree
    }
}

impl NodeSource for MemoryTree {
    fn node(&self, level: u32, index: u64) -> Result<Hash, AuditError> {
        self.levels
            .get(level as usize)
            .and_then(|l| usize::try_from(index).ok().and_then(|i| l.get(i)))
            .copied()
            .ok_or(AuditError::MissingNode { level, index })
    }
}

impl fmt::Debug for MemoryTree {
    /// Only the size: the node vectors can hold millions of hashes.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryTree")
            .field("size", &self.size())
            .finish_non_exhaustive()
    }
}

/// A [`NodeSource`] over a map filled from a query, for running the sync
/// tree functions on nodes fetched asynchronously (see [`required_nodes`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeMap(pub HashMap<(u32, u64), Hash>);

impl NodeSource for NodeMap {
    fn node(&self, level: u32, index: u64) -> Result<Hash, AuditError> {
        self.0
            .get(&(level, index))
            .copied()
            .ok_or(AuditError::MissingNode { level, index })
    }
}

/// Answers every read with a dummy hash and records the coordinates.
#[derive(Default)]
struct Recorder {
    order: RefCell<Vec<(u32, u64)>>,
    seen: RefCell<HashSet<(u32, u64)>>,
}

impl NodeSource for Recorder {
    fn node(&self, level: u32, index: u64) -> Result<Hash, AuditError> {
        if self.seen.borrow_mut().insert((level, index)) {
            self.order.borrow_mut().push((level, index));
        }
        Ok([0u8; 32])
    }
}

/// Runs `f` against a source that answers every read with a dummy hash and
/// records which `(level, index)` it asked for; returns those coordinates
/// (deduplicated, in first-read order).
///
/// Exact for this crate's tree functions because the nodes they read depend
/// only on indices and sizes. `f`'s result is discarded: an argument error
/// (e.g. index beyond size) shows up again when `f` is run on the real nodes.
pub fn required_nodes<T>(
    f: impl FnOnce(&dyn NodeSource) -> Result<T, AuditError>,
) -> Vec<(u32, u64)> {
    let recorder = Recorder::default();
    let _ = f(&recorder);
    recorder.order.into_inner()
}

/// The nodes that become complete when the leaf at `index` is appended,
/// lowest level first, as `(level, index, hash)`.
///
/// The first entry is always level 0, the leaf itself (`(0, index, leaf)`),
/// so the list is exactly what a store must persist for this leaf; a store
/// that keeps leaf hashes in the event row skips entries with level 0. The
/// left siblings are read from `source` (at most `log2(index + 1)` reads), so
/// all earlier leaves must already be appended there.
pub fn nodes_completed_by<S: NodeSource + ?Sized>(
    index: u64,
    leaf: Hash,
    source: &S,
) -> Result<Vec<(u32, u64, Hash)>, AuditError> {
    let mut out = vec![(0, index, leaf)];
    let (mut level, mut i, mut hash) = (0u32, index, leaf);
    while i & 1 == 1 {
        let left = source.node(level, i - 1)?;
        hash = node_hash(&left, &hash);
        i >>= 1;
        level += 1;
        out.push((level, i, hash));
    }
    Ok(out)
}

/// [`nodes_completed_by`] for `leaves` appended at indices `start..`, in one
/// go: nodes made by earlier leaves of the batch are taken from the batch, so
/// `source` is only asked for nodes entirely before `start` (which makes
/// [`required_nodes`] usable before a multi-event insert). Same order and
/// level-0 convention as [`nodes_completed_by`], leaf by leaf.
pub fn nodes_completed_by_batch<S: NodeSource + ?Sized>(
    start: u64,
    leaves: &[Hash],
    source: &S,
) -> Result<Vec<(u32, u64, Hash)>, AuditError> {
    struct Overlay<'a, S: ?Sized> {
        base: &'a S,
        added: HashMap<(u32, u64), Hash>,
    }
    impl<S: NodeSource + ?Sized> NodeSource for Overlay<'_, S> {
        fn node(&self, level: u32, index: u64) -> Result<Hash, AuditError> {
            match self.added.get(&(level, index)) {
                Some(h) => Ok(*h),
                None => self.base.node(level, index),
            }
        }
    }
    let mut overlay = Overlay {
        base: source,
        added: HashMap::new(),
    };
    let mut out = Vec::with_capacity(leaves.len() * 2);
    for (offset, leaf) in (0u64..).zip(leaves) {
        let nodes = nodes_completed_by(start + offset, *leaf, &overlay)?;
        overlay
            .added
            .extend(nodes.iter().map(|&(l, i, h)| ((l, i), h)));
        out.extend(nodes);
    }
    Ok(out)
}

/// The largest power of two strictly smaller than `n` (`n >= 2`): RFC 9162's
/// split point `k`.
fn split(n: u64) -> u64 {
    debug_assert!(n >= 2);
    1u64 << (63 - (n - 1).leading_zeros())
}

/// MTH(D[start:end]) for a non-empty range of the recursion.
fn subtree<S: NodeSource + ?Sized>(start: u64, end: u64, source: &S) -> Result<Hash, AuditError> {
    let size = end - start;
    if size.is_power_of_two() {
        let level = size.trailing_zeros();
        return source.node(level, start >> level);
    }
    let k = split(size);
    let left = subtree(start, start + k, source)?;
    let right = subtree(start + k, end, source)?;
    Ok(node_hash(&left, &right))
}

/// The Merkle Tree Hash of the first `size` leaves (RFC 9162 §2.1.1), from
/// at most `log2(size) + 1` node reads.
pub fn root<S: NodeSource + ?Sized>(size: u64, source: &S) -> Result<Hash, AuditError> {
    if size == 0 {
        return Ok(empty_root());
    }
    subtree(0, size, source)
}

/// The audit path for leaf `index` in the tree of the first `size` leaves
/// (RFC 9162 §2.1.3.1 PATH), nearest sibling first.
pub fn inclusion_proof<S: NodeSource + ?Sized>(
    index: u64,
    size: u64,
    source: &S,
) -> Result<Vec<Hash>, AuditError> {
    if index >= size {
        return Err(AuditError::IndexOutOfRange { index, size });
    }
    let mut out = Vec::with_capacity(64);
    path(index, 0, size, source, &mut out)?;
    Ok(out)
}

/// PATH(m, D[start:end]) with `m` relative to `start`.
fn path<S: NodeSource + ?Sized>(
    m: u64,
    start: u64,
    end: u64,
    source: &S,
    out: &mut Vec<Hash>,
) -> Result<(), AuditError> {
    let n = end - start;
    if n == 1 {
        return Ok(());
    }
    let k = split(n);
    if m < k {
        path(m, start, start + k, source, out)?;
        out.push(subtree(start + k, end, source)?);
    } else {
        path(m - k, start + k, end, source, out)?;
        out.push(subtree(start, start + k, source)?);
    }
    Ok(())
}

/// The proof that the tree of `second` leaves extends the tree of `first`
/// leaves (RFC 9162 §2.1.4.1 PROOF). Empty when `first` is 0 or equals
/// `second`, the cases the RFC leaves to the verifier.
pub fn consistency_proof<S: NodeSource + ?Sized>(
    first: u64,
    second: u64,
    source: &S,
) -> Result<Vec<Hash>, AuditError> {
    if first > second {
        return Err(AuditError::SizesOutOfOrder { first, second });
    }
    let mut out = Vec::with_capacity(64);
    if first > 0 && first < second {
        subproof(first, 0, second, true, source, &mut out)?;
    }
    Ok(out)
}

/// SUBPROOF(m, D[start:end], b).
fn subproof<S: NodeSource + ?Sized>(
    m: u64,
    start: u64,
    end: u64,
    whole: bool,
    source: &S,
    out: &mut Vec<Hash>,
) -> Result<(), AuditError> {
    let n = end - start;
    if m == n {
        if !whole {
            out.push(subtree(start, end, source)?);
        }
        return Ok(());
    }
    let k = split(n);
    if m <= k {
        subproof(m, start, start + k, whole, source, out)?;
        out.push(subtree(start + k, end, source)?);
    } else {
        subproof(m - k, start + k, end, false, source, out)?;
        out.push(subtree(start, start + k, source)?);
    }
    Ok(())
}

/// Checks that `leaf` is at `index` in the tree of `size` leaves with root
/// `root` (RFC 9162 §2.1.3.2).
pub fn verify_inclusion(
    leaf: &Hash,
    index: u64,
    size: u64,
    proof: &[Hash],
    root: &Hash,
) -> Result<(), AuditError> {
    if index >= size {
        return Err(AuditError::IndexOutOfRange { index, size });
    }
    let wrong_length = AuditError::WrongProofLength { got: proof.len() };
    let (mut fnode, mut snode) = (index, size - 1);
    let mut r = *leaf;
    for p in proof {
        if snode == 0 {
            return Err(wrong_length);
        }
        if fnode & 1 == 1 || fnode == snode {
            r = node_hash(p, &r);
            while fnode & 1 == 0 && fnode != 0 {
                fnode >>= 1;
                snode >>= 1;
            }
        } else {
            r = node_hash(&r, p);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    if snode != 0 {
        return Err(wrong_length);
    }
    if r != *root {
        return Err(AuditError::InclusionRootMismatch);
    }
    Ok(())
}

/// Checks that the tree of `second` leaves with root `second_root` extends
/// the tree of `first` leaves with root `first_root` (RFC 9162 §2.1.4.2).
///
/// Degenerate cases, which the RFC's algorithm does not cover: equal sizes
/// need an empty proof and equal roots; `first == 0` needs an empty proof and
/// `first_root` equal to [`empty_root`].
pub fn verify_consistency(
    first: u64,
    second: u64,
    first_root: &Hash,
    second_root: &Hash,
    proof: &[Hash],
) -> Result<(), AuditError> {
    let wrong_length = AuditError::WrongProofLength { got: proof.len() };
    if first > second {
        return Err(AuditError::SizesOutOfOrder { first, second });
    }
    if first == second || first == 0 {
        if !proof.is_empty() {
            return Err(wrong_length);
        }
        if first == 0 && *first_root != empty_root() {
            return Err(AuditError::FirstRootMismatch);
        }
        if first == second && first_root != second_root {
            return Err(AuditError::SecondRootMismatch);
        }
        return Ok(());
    }
    // Step 1: an empty proof cannot link two different non-empty trees.
    if proof.is_empty() {
        return Err(wrong_length);
    }
    // Step 2: for a power-of-two `first`, the first tree is itself a node the
    // proof omits; the verifier supplies it.
    let prefix = first.is_power_of_two().then_some(first_root);
    let mut path = prefix.into_iter().chain(proof);
    // Steps 3 and 4.
    let (mut fnode, mut snode) = (first - 1, second - 1);
    while fnode & 1 == 1 {
        fnode >>= 1;
        snode >>= 1;
    }
    // Step 5.
    let Some(seed) = path.next() else {
        return Err(wrong_length);
    };
    let (mut fr, mut sr) = (*seed, *seed);
    // Step 6.
    for c in path {
        if snode == 0 {
            return Err(wrong_length);
        }
        if fnode & 1 == 1 || fnode == snode {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            while fnode & 1 == 0 && fnode != 0 {
                fnode >>= 1;
                snode >>= 1;
            }
        } else {
            sr = node_hash(&sr, c);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    // Step 7.
    if snode != 0 {
        return Err(wrong_length);
    }
    if fr != *first_root {
        return Err(AuditError::FirstRootMismatch);
    }
    if sr != *second_root {
        return Err(AuditError::SecondRootMismatch);
    }
    Ok(())
}

/// The right edge of a tree being built leaf by leaf (one complete subtree
/// per set bit of the size), so a root can be computed over a stream of any
/// length in `O(log n)` memory.
#[derive(Debug, Default)]
pub(crate) struct Frontier {
    stack: Vec<(u32, Hash)>,
}

impl Frontier {
    pub(crate) fn push(&mut self, leaf: Hash) {
        let (mut level, mut hash) = (0u32, leaf);
        while let Some(&(top_level, left)) = self.stack.last() {
            if top_level != level {
                break;
            }
            self.stack.pop();
            hash = node_hash(&left, &hash);
            level += 1;
        }
        self.stack.push((level, hash));
    }

    /// MTH of the leaves pushed so far: the subtrees folded right to left.
    pub(crate) fn root(&self) -> Hash {
        let mut iter = self.stack.iter().rev();
        let Some(&(_, mut acc)) = iter.next() else {
            return empty_root();
        };
        for (_, left) in iter {
            acc = node_hash(left, &acc);
        }
        acc
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::leaf_hash;

    fn leaves(n: u64) -> Vec<Hash> {
        (0..n).map(|i| leaf_hash(&i.to_be_bytes())).collect()
    }

    #[test]
    fn split_is_the_largest_power_of_two_below() {
        for (n, k) in [(2, 1), (3, 2), (4, 2), (5, 4), (8, 4), (9, 8), (1000, 512)] {
            assert_eq!(split(n), k, "n = {n}");
        }
        assert_eq!(split(u64::MAX), 1 << 63);
        assert_eq!(split((1 << 63) + 1), 1 << 63);
    }

    #[test]
    fn frontier_root_matches_tree_root() {
        let mut f = Frontier::default();
        let mut t = MemoryTree::new();
        assert_eq!(f.root(), empty_root());
        for leaf in leaves(70) {
            f.push(leaf);
            t.push(leaf);
            assert_eq!(f.root(), root(t.size(), &t).unwrap());
        }
    }

    #[test]
    fn memory_tree_holds_only_complete_nodes() {
        let t: MemoryTree = leaves(6).into_iter().collect();
        assert!(t.node(1, 2).is_ok());
        assert!(t.node(2, 0).is_ok());
        assert!(matches!(
            t.node(2, 1),
            Err(AuditError::MissingNode { level: 2, index: 1 })
        ));
        assert!(matches!(
            t.node(0, 6),
            Err(AuditError::MissingNode { level: 0, index: 6 })
        ));
        assert_eq!(format!("{t:?}"), "MemoryTree { size: 6, .. }");
    }

    #[test]
    fn argument_errors() {
        let t: MemoryTree = leaves(4).into_iter().collect();
        assert!(matches!(
            inclusion_proof(4, 4, &t),
            Err(AuditError::IndexOutOfRange { index: 4, size: 4 })
        ));
        assert!(matches!(
            consistency_proof(3, 2, &t),
            Err(AuditError::SizesOutOfOrder { .. })
        ));
        // Beyond what the source holds: a missing node, not a wrong answer.
        assert!(matches!(root(5, &t), Err(AuditError::MissingNode { .. })));
        assert!(required_nodes(|s| inclusion_proof(9, 4, s)).is_empty());
    }

    #[test]
    fn batch_reads_only_nodes_before_start() {
        let all = leaves(23);
        let t: MemoryTree = all[..13].iter().copied().collect();
        let need = required_nodes(|s| nodes_completed_by_batch(13, &all[13..], s));
        // Nodes entirely before leaf 13: the frontier of size 13 (8 + 4 + 1).
        assert_eq!(need, vec![(0, 12), (2, 2), (3, 0)]);
        let nodes = nodes_completed_by_batch(13, &all[13..], &t).unwrap();
        let mut full = t.clone();
        for leaf in &all[13..] {
            full.push(*leaf);
        }
        for (l, i, h) in &nodes {
            assert_eq!(full.node(*l, *i).unwrap(), *h);
        }
        // 10 leaves complete 10 leaf nodes plus one interior node for each
        // carry: every node of the full tree not already in `t`.
        assert_eq!(nodes.len(), 10 + (11 + 5 + 2 + 1) - (6 + 3 + 1));
    }
}
