//! The Merkle Tree Hash of RFC 6962 §2.1 (Certificate Transparency), over ticket leaves.
//!
//! - leaf hash `SHA-256(0x00 ‖ data)`, node hash `SHA-256(0x01 ‖ left ‖ right)`;
//! - a tree of n > 1 leaves splits at k, the largest power of two below n;
//! - the empty tree's hash is `SHA-256("")`.
//!
//! [`root`] folds the leaf hashes bottom-up, pairing neighbours and carrying an odd last
//! node up unchanged: that is the same tree as the recursive definition (the left part
//! of every split is a perfect subtree), in O(n) hashes and n/2 extra memory.
//!
//! ```
//! use herald_draw::merkle::{leaf_hash, root, inclusion_proof, verify_inclusion};
//! let leaves: Vec<[u8; 32]> = (0u8..5).map(|i| leaf_hash(&[i])).collect();
//! let r = root(&leaves);
//! let proof = inclusion_proof(&leaves, 3);
//! assert!(verify_inclusion(&leaves[3], 3, 5, &proof, &r));
//! ```

use sha2::{Digest, Sha256};

/// A SHA-256 digest.
pub type Hash = [u8; 32];

/// `SHA-256(0x00 ‖ data)`.
pub fn leaf_hash(data: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(data);
    h.finalize().into()
}

/// `SHA-256(0x01 ‖ left ‖ right)`.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([1u8]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// The Merkle Tree Hash of the leaves whose leaf hashes are given, in order.
pub fn root(leaf_hashes: &[Hash]) -> Hash {
    if leaf_hashes.is_empty() {
        return Sha256::digest([]).into();
    }
    let mut level: Vec<Hash> = leaf_hashes.to_vec();
    while level.len() > 1 {
        level = level
            .chunks(2)
            .map(|pair| match pair {
                [l, r] => node_hash(l, r),
                [odd] => *odd,
                _ => unreachable!("chunks of 2"),
            })
            .collect();
    }
    level[0]
}

/// The audit path of leaf `index` (RFC 6962 §2.1.1), bottom-up.
///
/// Panics if `index` is not below the number of leaves.
pub fn inclusion_proof(leaf_hashes: &[Hash], index: usize) -> Vec<Hash> {
    assert!(index < leaf_hashes.len(), "leaf {index} of {}", leaf_hashes.len());
    let n = leaf_hashes.len();
    if n == 1 {
        return Vec::new();
    }
    let k = largest_power_of_two_below(n);
    let mut path = if index < k {
        let mut p = inclusion_proof(&leaf_hashes[..k], index);
        p.push(root(&leaf_hashes[k..]));
        p
    } else {
        let mut p = inclusion_proof(&leaf_hashes[k..], index - k);
        p.push(root(&leaf_hashes[..k]));
        p
    };
    path.shrink_to_fit();
    path
}

/// Whether `proof` proves `leaf` at `index` in a tree of `size` leaves with `root`
/// (the verification algorithm of RFC 9162 §2.1.3.2).
pub fn verify_inclusion(leaf: &Hash, index: u64, size: u64, proof: &[Hash], root: &Hash) -> bool {
    if index >= size {
        return false;
    }
    let (mut fnode, mut snode) = (index, size - 1);
    let mut r = *leaf;
    for p in proof {
        if snode == 0 {
            return false;
        }
        if fnode & 1 == 1 || fnode == snode {
            r = node_hash(p, &r);
            if fnode & 1 == 0 {
                while fnode & 1 == 0 && fnode != 0 {
                    fnode >>= 1;
                    snode >>= 1;
                }
            }
        } else {
            r = node_hash(&r, p);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    snode == 0 && &r == root
}

fn largest_power_of_two_below(n: usize) -> usize {
    debug_assert!(n > 1);
    1 << (usize::BITS - 1 - (n - 1).leading_zeros())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The recursive definition, word for word, to check the iterative fold against.
    fn mth(leaves: &[Hash]) -> Hash {
        match leaves.len() {
            0 => Sha256::digest([]).into(),
            1 => leaves[0],
            n => {
                let k = largest_power_of_two_below(n);
                node_hash(&mth(&leaves[..k]), &mth(&leaves[k..]))
            }
        }
    }

    /// The RFC 6962 reference leaves and the root of each first 1..=8 of them, as
    /// transparency-dev/merkle publishes them (`testonly/constants.go`, from the
    /// Certificate Transparency C++ reference tests); listed in `tests/fixtures/SOURCES.md`.
    const INPUTS: [&str; 8] = [
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    ];
    const ROOTS: [&str; 8] = [
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    ];

    #[test]
    fn roots_match_the_certificate_transparency_vectors() {
        let leaves: Vec<Hash> = INPUTS.iter().map(|h| leaf_hash(&hex::decode(h).unwrap())).collect();
        for n in 1..=8 {
            assert_eq!(hex::encode(root(&leaves[..n])), ROOTS[n - 1], "{n} leaves");
        }
        assert_eq!(
            hex::encode(root(&[])),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    /// Audit paths from the same source (`testonly/constants.go`, inclusion proofs of
    /// leaves 0 and 5 in the tree of 8).
    #[test]
    fn audit_paths_match_the_reference_vectors() {
        let leaves: Vec<Hash> = INPUTS.iter().map(|h| leaf_hash(&hex::decode(h).unwrap())).collect();
        let path = |i| inclusion_proof(&leaves, i).iter().map(hex::encode).collect::<Vec<_>>();
        assert_eq!(
            path(0),
            [
                "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"
            ]
        );
        assert_eq!(
            path(5),
            [
                "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
                "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"
            ]
        );
    }

    #[test]
    fn fold_equals_the_recursive_definition_and_every_proof_verifies() {
        for n in 0..70usize {
            let leaves: Vec<Hash> = (0..n).map(|i| leaf_hash(&(i as u64).to_be_bytes())).collect();
            let r = root(&leaves);
            assert_eq!(r, mth(&leaves), "{n} leaves");
            for i in 0..n {
                let proof = inclusion_proof(&leaves, i);
                assert!(verify_inclusion(&leaves[i], i as u64, n as u64, &proof, &r), "leaf {i} of {n}");
                // a proof does not prove another leaf, index or size
                assert!(!verify_inclusion(&leaf_hash(b"other"), i as u64, n as u64, &proof, &r));
                if n > 1 {
                    assert!(!verify_inclusion(&leaves[i], ((i + 1) % n) as u64, n as u64, &proof, &r) || leaves[i] == leaves[(i + 1) % n]);
                }
            }
        }
    }
}
