//! The draw: tickets' leaves, the commitment, the seed and the winners (rules 3–5 of
//! `docs/lottery.md`).
//!
//! ```
//! use herald_draw::draw::{seed, winners};
//! let s = seed(&[0; 32], 1000, &[1; 32], &[2; 32], &[3; 32]);
//! let w = winners(&s, 10, 3);
//! assert_eq!(w.len(), 3);
//! assert!(w.iter().all(|&t| t < 10));
//! ```

use sha2::{Digest, Sha256};

use crate::merkle::{leaf_hash, Hash};

/// A purchase's receipt id: 16 random bytes.
pub type ReceiptId = [u8; 16];

/// Ticket `index`'s leaf data: `"herald-lottery-v1/ticket" ‖ u64be(round_id) ‖ u64be(index) ‖ receipt_id`.
pub fn leaf_data(round_id: u64, index: u64, receipt: &ReceiptId) -> Vec<u8> {
    let mut data = Vec::with_capacity(24 + 8 + 8 + 16);
    data.extend_from_slice(b"herald-lottery-v1/ticket");
    data.extend_from_slice(&round_id.to_be_bytes());
    data.extend_from_slice(&index.to_be_bytes());
    data.extend_from_slice(receipt);
    data
}

/// The leaf hashes of a round's tickets, from its purchases in order: each
/// `(receipt, count)` holds the next `count` tickets.
pub fn ticket_leaves<'a>(round_id: u64, purchases: impl IntoIterator<Item = (&'a ReceiptId, u64)>) -> Vec<Hash> {
    let mut leaves = Vec::new();
    for (receipt, count) in purchases {
        for _ in 0..count {
            let index = leaves.len() as u64;
            leaves.push(leaf_hash(&leaf_data(round_id, index, receipt)));
        }
    }
    leaves
}

/// `SHA-256(server_seed)`: published when the round opens.
pub fn commitment(server_seed: &[u8; 32]) -> Hash {
    Sha256::digest(server_seed).into()
}

/// `SHA-256("herald-lottery-v1/seed" ‖ chain_hash ‖ u64be(R) ‖ randomness ‖ server_seed ‖ tickets_root)`.
pub fn seed(chain_hash: &[u8; 32], beacon_round: u64, randomness: &[u8; 32], server_seed: &[u8; 32], tickets_root: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update(b"herald-lottery-v1/seed");
    h.update(chain_hash);
    h.update(beacon_round.to_be_bytes());
    h.update(randomness);
    h.update(server_seed);
    h.update(tickets_root);
    h.finalize().into()
}

/// `x_c`: the first 8 bytes, big-endian, of `SHA-256(seed ‖ u64be(c))`.
pub fn number(seed: &Hash, c: u64) -> u64 {
    let mut h = Sha256::new();
    h.update(seed);
    h.update(c.to_be_bytes());
    let d = h.finalize();
    u64::from_be_bytes(d[..8].try_into().expect("8 bytes"))
}

/// The winning tickets, 1st place first: `min(places, tickets)` distinct tickets in
/// `0..tickets`. Numbers at or above `floor(2^64 / N) · N` are rejected (no modulo
/// bias), and a ticket that already won is skipped.
pub fn winners(seed: &Hash, tickets: u64, places: usize) -> Vec<u64> {
    let k = (places as u64).min(tickets) as usize;
    if k == 0 {
        return Vec::new();
    }
    // floor(2^64 / N) · N, computed in u128 so N = 1 does not overflow
    let limit = ((1u128 << 64) / tickets as u128) * tickets as u128;
    let mut won = Vec::with_capacity(k);
    let mut c = 0u64;
    while won.len() < k {
        let x = number(seed, c);
        c += 1;
        if x as u128 >= limit {
            continue;
        }
        let ticket = x % tickets;
        if !won.contains(&ticket) {
            won.push(ticket);
        }
    }
    won
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn winners_are_distinct_in_range_and_depend_on_the_seed() {
        let a = winners(&[1; 32], 3, 3);
        let mut sorted = a.clone();
        sorted.sort();
        assert_eq!(sorted, vec![0, 1, 2]);
        assert_eq!(winners(&[1; 32], 1, 3), vec![0]);
        assert!(winners(&[1; 32], 0, 3).is_empty());
        let many: Vec<Vec<u64>> = (0u8..20).map(|b| winners(&[b; 32], 1_000_000, 3)).collect();
        assert!(many.windows(2).any(|w| w[0] != w[1]));
        assert!(many.iter().flatten().all(|&t| t < 1_000_000));
    }

    #[test]
    fn leaf_data_has_the_documented_layout() {
        let d = leaf_data(7, 2, &[0xab; 16]);
        assert_eq!(&d[..24], b"herald-lottery-v1/ticket");
        assert_eq!(&d[24..32], &7u64.to_be_bytes());
        assert_eq!(&d[32..40], &2u64.to_be_bytes());
        assert_eq!(&d[40..], &[0xab; 16]);
    }
}
