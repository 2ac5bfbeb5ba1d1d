//! Tree nodes as the log stores them: `(level, idx)` coordinates (level 0 is
//! an event's leaf hash, in `audit_events`; the others are in `audit_nodes`),
//! and which of them an append or the self-check touches.

use std::collections::HashMap;

use audit::NodeMap;

use super::encoding::from_hex;
use crate::error::StoreError;

/// The roots of the complete subtrees that make up a tree of `size` leaves:
/// one per set bit of `size`, at that bit's level.
pub(crate) fn frontier_coords(size: u64) -> impl Iterator<Item = (u32, u64)> {
    (0..u64::BITS)
        .filter(move |&level| (size >> level) & 1 == 1)
        .map(move |level| (level, (size >> level) - 1))
}

/// Decodes stored `(level, idx, hex)` node rows (level 0 from leaf hashes).
pub(crate) fn node_map(rows: Vec<(i32, i64, String)>) -> Result<NodeMap, StoreError> {
    let mut map = HashMap::with_capacity(rows.len());
    for (level, idx, hex) in rows {
        let (Ok(l), Ok(i)) = (u32::try_from(level), u64::try_from(idx)) else {
            return Err(StoreError::Corrupt(format!(
                "audit node ({level}, {idx}) has negative coordinates"
            )));
        };
        let hash = from_hex(&hex).ok_or_else(|| {
            StoreError::Corrupt(format!("audit node ({level}, {idx}) is not a hex hash"))
        })?;
        map.insert((l, i), hash);
    }
    Ok(NodeMap(map))
}

/// Fails with [`StoreError::Corrupt`] unless `map` holds every node in `needed`.
pub(crate) fn require_all(map: &NodeMap, needed: &[(u32, u64)]) -> Result<(), StoreError> {
    match needed.iter().find(|c| !map.0.contains_key(c)) {
        None => Ok(()),
        Some((level, idx)) => Err(StoreError::Corrupt(format!(
            "audit node ({level}, {idx}) is missing"
        ))),
    }
}

/// Stored nodes for comparison; a value that is not a hex hash simply never
/// equals a recomputed one (reported as a mismatch, not a failure).
pub(crate) fn node_map_lenient(rows: Vec<(i32, i64, String)>) -> NodeMap {
    let mut map = HashMap::with_capacity(rows.len());
    for (level, idx, hex) in rows {
        if let (Ok(l), Ok(i)) = (u32::try_from(level), u64::try_from(idx)) {
            map.insert((l, i), from_hex(&hex).unwrap_or([0xff; 32]));
        }
    }
    NodeMap(map)
}

/// Node coordinates as stored (i32 level, i64 idx).
pub(crate) fn node_coords(coords: &[(u32, u64)]) -> Result<Vec<(i32, i64)>, StoreError> {
    coords
        .iter()
        .map(
            |&(level, idx)| match (i32::try_from(level), i64::try_from(idx)) {
                (Ok(l), Ok(i)) => Ok((l, i)),
                _ => Err(StoreError::InvalidInput(format!(
                    "tree node ({level}, {idx}) is out of range"
                ))),
            },
        )
        .collect()
}

/// Nodes of levels >= 1 in a tree of `size` leaves: `size - popcount(size)`.
pub(crate) fn node_count(size: u64) -> u64 {
    size - u64::from(size.count_ones())
}

/// `(level, first idx, last idx)` of the nodes completed by appending the
/// leaves `first..=last`: node (l, i) is completed by leaf (i + 1) * 2^l - 1.
pub(crate) fn nodes_completed_in(first: u64, last: u64) -> Vec<(i32, i64, i64)> {
    let mut ranges = Vec::new();
    let (first, last) = (u128::from(first), u128::from(last));
    for level in 1..64u32 {
        let width = 1u128 << level;
        if last + 1 < width {
            break;
        }
        let lo = (first + width) / width - 1;
        let hi = (last + 1) / width - 1;
        if lo <= hi {
            if let (Ok(lo), Ok(hi)) = (i64::try_from(lo), i64::try_from(hi)) {
                ranges.push((level as i32, lo, hi));
            }
        }
    }
    ranges
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn completed_ranges_match_a_brute_force_count() {
        for first in 0..40u64 {
            for last in first..70u64 {
                let mut expected: Vec<(u32, u64)> = Vec::new();
                for leaf in first..=last {
                    let mut level = 1;
                    while (leaf + 1) % (1 << level) == 0 {
                        expected.push((level, (leaf + 1) / (1 << level) - 1));
                        level += 1;
                    }
                }
                let mut got: Vec<(u32, u64)> = nodes_completed_in(first, last)
                    .into_iter()
                    .flat_map(|(l, lo, hi)| (lo..=hi).map(move |i| (l as u32, i as u64)))
                    .collect();
                got.sort();
                expected.sort();
                assert_eq!(got, expected, "{first}..={last}");
            }
        }
        assert_eq!(node_count(0), 0);
        assert_eq!(node_count(7), 4);
        assert_eq!(node_count(8), 7);
    }
}
