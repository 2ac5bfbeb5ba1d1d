//! The tree against RFC 6962/9162 known answers and against a direct,
//! recursive transcription of RFC 9162 §2.1 over a slice of leaf hashes.

use audit::{
    consistency_proof, empty_root, inclusion_proof, leaf_hash, node_hash, nodes_completed_by,
    nodes_completed_by_batch, required_nodes, root, verify_consistency, verify_inclusion,
    AuditError, Hash, MemoryTree, NodeMap, NodeSource,
};
use proptest::prelude::*;

// ---- reference implementation: RFC 9162 §2.1 word for word, over slices ----

fn k_of(n: usize) -> usize {
    let mut k = 1;
    while k * 2 < n {
        k *= 2;
    }
    k
}

fn mth(d: &[Hash]) -> Hash {
    match d.len() {
        0 => empty_root(),
        1 => d[0],
        n => {
            let k = k_of(n);
            node_hash(&mth(&d[..k]), &mth(&d[k..]))
        }
    }
}

fn ref_path(m: usize, d: &[Hash]) -> Vec<Hash> {
    let n = d.len();
    if n == 1 {
        return vec![];
    }
    let k = k_of(n);
    if m < k {
        let mut p = ref_path(m, &d[..k]);
        p.push(mth(&d[k..]));
        p
    } else {
        let mut p = ref_path(m - k, &d[k..]);
        p.push(mth(&d[..k]));
        p
    }
}

fn ref_subproof(m: usize, d: &[Hash], b: bool) -> Vec<Hash> {
    let n = d.len();
    if m == n {
        return if b { vec![] } else { vec![mth(d)] };
    }
    let k = k_of(n);
    if m <= k {
        let mut p = ref_subproof(m, &d[..k], b);
        p.push(mth(&d[k..]));
        p
    } else {
        let mut p = ref_subproof(m - k, &d[k..], false);
        p.push(mth(&d[..k]));
        p
    }
}

fn ref_proof(m: usize, d: &[Hash]) -> Vec<Hash> {
    if m == 0 || m == d.len() {
        vec![]
    } else {
        ref_subproof(m, d, true)
    }
}

// ---- helpers ----

fn unhex(s: &str) -> Hash {
    let bytes: Vec<u8> = (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect();
    bytes.try_into().expect("32 bytes")
}

fn unhex_bytes(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

fn synthetic(n: usize) -> Vec<Hash> {
    (0..n as u64).map(|i| leaf_hash(&i.to_le_bytes())).collect()
}

/// A node source that answers every node of an (implicitly) huge tree
/// without storing it, and counts reads.
struct Counting(std::cell::Cell<usize>);
impl NodeSource for Counting {
    fn node(&self, level: u32, index: u64) -> Result<Hash, AuditError> {
        self.0.set(self.0.get() + 1);
        let mut b = [0u8; 12];
        b[..4].copy_from_slice(&level.to_be_bytes());
        b[4..].copy_from_slice(&index.to_be_bytes());
        Ok(leaf_hash(&b))
    }
}

// ---- RFC 6962 test vectors (as published with the CT / transparency-dev code) ----

const LEAVES: [&str; 8] = [
    "",
    "00",
    "10",
    "2021",
    "3031",
    "40414243",
    "5051525354555657",
    "606162636465666768696a6b6c6d6e6f",
];
const ROOTS: [&str; 9] = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
];

fn vector_tree() -> MemoryTree {
    LEAVES.iter().map(|l| leaf_hash(&unhex_bytes(l))).collect()
}

#[test]
fn rfc6962_roots() {
    assert_eq!(empty_root(), unhex(ROOTS[0]));
    let tree = vector_tree();
    for (size, want) in ROOTS.iter().enumerate() {
        assert_eq!(
            root(size as u64, &tree).unwrap(),
            unhex(want),
            "size {size}"
        );
    }
}

#[test]
fn rfc6962_inclusion_proofs() {
    let tree = vector_tree();
    let cases: [(u64, u64, &[&str]); 5] = [
        (0, 1, &[]),
        (
            0,
            8,
            &[
                "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
            ],
        ),
        (
            5,
            8,
            &[
                "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
                "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            ],
        ),
        (
            2,
            3,
            &["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"],
        ),
        (
            1,
            5,
            &[
                "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            ],
        ),
    ];
    for (index, size, want) in cases {
        let want: Vec<Hash> = want.iter().map(|h| unhex(h)).collect();
        let got = inclusion_proof(index, size, &tree).unwrap();
        assert_eq!(got, want, "PATH({index}, {size})");
        let leaf = tree.node(0, index).unwrap();
        verify_inclusion(&leaf, index, size, &want, &unhex(ROOTS[size as usize])).unwrap();
    }
}

#[test]
fn rfc6962_consistency_proofs() {
    let tree = vector_tree();
    let cases: [(u64, u64, &[&str]); 4] = [
        (
            1,
            8,
            &[
                "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
            ],
        ),
        (
            6,
            8,
            &[
                "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
                "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            ],
        ),
        (
            2,
            5,
            &[
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            ],
        ),
        (
            2,
            8,
            &[
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
            ],
        ),
    ];
    for (first, second, want) in cases {
        let want: Vec<Hash> = want.iter().map(|h| unhex(h)).collect();
        let got = consistency_proof(first, second, &tree).unwrap();
        assert_eq!(got, want, "PROOF({first}, {second})");
        verify_consistency(
            first,
            second,
            &unhex(ROOTS[first as usize]),
            &unhex(ROOTS[second as usize]),
            &want,
        )
        .unwrap();
    }
}

#[test]
fn degenerate_consistency_cases() {
    let tree = vector_tree();
    let r4 = root(4, &tree).unwrap();
    let r5 = root(5, &tree).unwrap();
    assert!(consistency_proof(4, 4, &tree).unwrap().is_empty());
    assert!(consistency_proof(0, 4, &tree).unwrap().is_empty());
    verify_consistency(4, 4, &r4, &r4, &[]).unwrap();
    verify_consistency(0, 4, &empty_root(), &r4, &[]).unwrap();
    verify_consistency(0, 0, &empty_root(), &empty_root(), &[]).unwrap();
    assert!(matches!(
        verify_consistency(4, 4, &r4, &r5, &[]),
        Err(AuditError::SecondRootMismatch)
    ));
    assert!(matches!(
        verify_consistency(4, 4, &r4, &r4, &[r4]),
        Err(AuditError::WrongProofLength { got: 1 })
    ));
    assert!(matches!(
        verify_consistency(0, 4, &r4, &r4, &[]),
        Err(AuditError::FirstRootMismatch)
    ));
    assert!(matches!(
        verify_consistency(4, 5, &r4, &r5, &[]),
        Err(AuditError::WrongProofLength { got: 0 })
    ));
    assert!(matches!(
        verify_consistency(5, 4, &r5, &r4, &[]),
        Err(AuditError::SizesOutOfOrder { .. })
    ));
    assert!(matches!(
        verify_inclusion(&r4, 4, 4, &[], &r4),
        Err(AuditError::IndexOutOfRange { .. })
    ));
}

#[test]
fn ten_million_events_need_only_logarithmic_reads() {
    let n = 10_000_000u64;
    let bound = 2 * 24 + 2; // 2 * ceil(log2(n)) + 2
    let counting = Counting(std::cell::Cell::new(0));
    root(n, &counting).unwrap();
    assert!(counting.0.get() <= 24, "root read {}", counting.0.get());
    for (i, size) in [(0, n), (n - 1, n), (6_543_210, n), (4_194_303, n - 3)] {
        let need = required_nodes(|s| inclusion_proof(i, size, s));
        assert!(need.len() <= bound, "inclusion {i}/{size}: {}", need.len());
        let counting = Counting(std::cell::Cell::new(0));
        inclusion_proof(i, size, &counting).unwrap();
        assert!(counting.0.get() <= bound);
    }
    for (first, second) in [(1, n), (n - 1, n), (4_194_304, n), (3_333_333, 9_999_999)] {
        let need = required_nodes(|s| consistency_proof(first, second, s));
        assert!(
            need.len() <= bound,
            "consistency {first}->{second}: {}",
            need.len()
        );
    }
    let need = required_nodes(|s| nodes_completed_by(n - 1, [0; 32], s));
    assert!(need.len() <= 24);
}

// ---- properties ----

fn size_and_index() -> impl Strategy<Value = (usize, usize)> {
    (1usize..300).prop_flat_map(|n| (Just(n), 0..n))
}

fn sizes_pair() -> impl Strategy<Value = (usize, usize)> {
    (1usize..300).prop_flat_map(|n| (0..=n, Just(n)))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn root_matches_reference(n in 0usize..300) {
        let leaves = synthetic(n);
        let tree: MemoryTree = leaves.iter().copied().collect();
        prop_assert_eq!(tree.size(), n as u64);
        prop_assert_eq!(root(n as u64, &tree).unwrap(), mth(&leaves));
        // Every smaller tree's root from the same nodes.
        for m in 0..=n {
            prop_assert_eq!(root(m as u64, &tree).unwrap(), mth(&leaves[..m]));
        }
    }

    #[test]
    fn inclusion_proofs_verify_and_bind_leaf_and_index((n, i) in size_and_index(), other in any::<prop::sample::Index>()) {
        let leaves = synthetic(n);
        let tree: MemoryTree = leaves.iter().copied().collect();
        let (size, index) = (n as u64, i as u64);
        let r = mth(&leaves);
        let proof = inclusion_proof(index, size, &tree).unwrap();
        prop_assert_eq!(&proof, &ref_path(i, &leaves));
        prop_assert!(verify_inclusion(&leaves[i], index, size, &proof, &r).is_ok());
        // A different leaf at this index fails.
        let wrong_leaf = leaf_hash(b"not in the log");
        prop_assert!(verify_inclusion(&wrong_leaf, index, size, &proof, &r).is_err());
        // The same leaf and proof at a different index fails.
        let j = other.index(n);
        if j != i {
            prop_assert!(verify_inclusion(&leaves[i], j as u64, size, &proof, &r).is_err());
            // And another leaf's proof does not fit this one.
            prop_assert!(verify_inclusion(&leaves[j], index, size, &proof, &r).is_err());
        }
        // Truncated, extended or altered proofs fail. (A wrong size alone may
        // not: RFC 9162 binds the size only through the root it leads to.)
        if let Some((_, head)) = proof.split_last() {
            prop_assert!(verify_inclusion(&leaves[i], index, size, head, &r).is_err());
            let mut altered = proof.clone();
            altered[0][5] ^= 1;
            prop_assert!(verify_inclusion(&leaves[i], index, size, &altered, &r).is_err());
        }
        let mut longer = proof.clone();
        longer.push([7; 32]);
        prop_assert!(verify_inclusion(&leaves[i], index, size, &longer, &r).is_err());
        let mut wrong_root = r;
        wrong_root[0] ^= 1;
        prop_assert!(verify_inclusion(&leaves[i], index, size, &proof, &wrong_root).is_err());
    }

    #[test]
    fn consistency_proofs_verify_and_fail_for_altered_roots((m, n) in sizes_pair()) {
        let leaves = synthetic(n);
        let tree: MemoryTree = leaves.iter().copied().collect();
        let (first, second) = (m as u64, n as u64);
        let (r1, r2) = (mth(&leaves[..m]), mth(&leaves));
        let proof = consistency_proof(first, second, &tree).unwrap();
        prop_assert_eq!(&proof, &ref_proof(m, &leaves));
        prop_assert!(verify_consistency(first, second, &r1, &r2, &proof).is_ok());
        let mut bad1 = r1;
        bad1[31] ^= 0x80;
        let mut bad2 = r2;
        bad2[31] ^= 0x80;
        prop_assert!(verify_consistency(first, second, &bad1, &r2, &proof).is_err());
        // The empty tree is consistent with every tree, so only m > 0 binds r2.
        if m > 0 {
            prop_assert!(verify_consistency(first, second, &r1, &bad2, &proof).is_err());
        }
        // A different history of the same size is not consistent.
        if m > 0 {
            let mut forked = leaves[..m].to_vec();
            forked[m - 1] = leaf_hash(b"rewritten");
            prop_assert!(verify_consistency(first, second, &mth(&forked), &r2, &proof).is_err());
        }
        if !proof.is_empty() {
            let mut altered = proof.clone();
            let last = altered.len() - 1;
            altered[last][0] ^= 1;
            prop_assert!(verify_consistency(first, second, &r1, &r2, &altered).is_err());
            prop_assert!(verify_consistency(first, second, &r1, &r2, &proof[1..]).is_err());
        }
        let mut longer = proof.clone();
        longer.push([9; 32]);
        prop_assert!(verify_consistency(first, second, &r1, &r2, &longer).is_err());
    }

    #[test]
    fn nodes_completed_by_reproduces_memory_tree(n in 0usize..300) {
        let leaves = synthetic(n);
        let tree: MemoryTree = leaves.iter().copied().collect();
        // Apply each leaf's completed nodes to a map, as a store would.
        let mut map = NodeMap::default();
        for (i, leaf) in leaves.iter().enumerate() {
            let nodes = nodes_completed_by(i as u64, *leaf, &map).unwrap();
            prop_assert_eq!(nodes[0], (0, i as u64, *leaf));
            for (l, idx, h) in nodes {
                prop_assert!(map.0.insert((l, idx), h).is_none(), "node written twice");
            }
        }
        // Exactly the nodes of the memory tree.
        let expected: usize = (0..9).map(|l| n >> l).sum();
        prop_assert_eq!(map.0.len(), expected);
        for (&(l, idx), h) in &map.0 {
            prop_assert_eq!(tree.node(l, idx).unwrap(), *h);
        }
    }

    #[test]
    fn batched_append_equals_one_by_one(n in 0usize..300, cut in any::<prop::sample::Index>()) {
        let leaves = synthetic(n);
        let start = if n == 0 { 0 } else { cut.index(n + 1) };
        let before: MemoryTree = leaves[..start].iter().copied().collect();
        let mut one_by_one = NodeMap(
            required_nodes(|s| nodes_completed_by_batch(start as u64, &leaves[start..], s))
                .into_iter()
                .map(|(l, i)| ((l, i), before.node(l, i).unwrap()))
                .collect(),
        );
        let batch = nodes_completed_by_batch(start as u64, &leaves[start..], &one_by_one).unwrap();
        let mut sequential = Vec::new();
        for (i, leaf) in leaves.iter().enumerate().skip(start) {
            let nodes = nodes_completed_by(i as u64, *leaf, &one_by_one).unwrap();
            for &(l, idx, h) in &nodes {
                one_by_one.0.insert((l, idx), h);
            }
            sequential.extend(nodes);
        }
        prop_assert_eq!(batch, sequential);
    }

    #[test]
    fn required_nodes_and_node_map_give_identical_results((n, i) in size_and_index(), m in any::<prop::sample::Index>()) {
        let leaves = synthetic(n);
        let tree: MemoryTree = leaves.iter().copied().collect();
        let fetch = |need: Vec<(u32, u64)>| NodeMap(
            need.into_iter().map(|(l, idx)| ((l, idx), tree.node(l, idx).unwrap())).collect()
        );
        let (size, index, first) = (n as u64, i as u64, m.index(n + 1) as u64);

        let map = fetch(required_nodes(|s| inclusion_proof(index, size, s)));
        prop_assert_eq!(inclusion_proof(index, size, &map).unwrap(), inclusion_proof(index, size, &tree).unwrap());

        let map = fetch(required_nodes(|s| consistency_proof(first, size, s)));
        prop_assert_eq!(consistency_proof(first, size, &map).unwrap(), consistency_proof(first, size, &tree).unwrap());

        let map = fetch(required_nodes(|s| root(size, s)));
        prop_assert_eq!(root(size, &map).unwrap(), mth(&leaves));
        prop_assert!(map.0.len() <= 9);

        // The nodes needed to append the next leaf.
        let map = fetch(required_nodes(|s| nodes_completed_by(size, [1; 32], s)));
        prop_assert_eq!(
            nodes_completed_by(size, [1; 32], &map).unwrap(),
            nodes_completed_by(size, [1; 32], &tree).unwrap()
        );
    }
}
