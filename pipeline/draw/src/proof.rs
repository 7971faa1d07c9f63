//! A ticket's inclusion proof (rule 4): that ticket `i`, bought with receipt `r`, is leaf
//! `i` of the tickets' root published at the close. Checkable with nothing but this
//! document, before the draw.

use serde::{Deserialize, Serialize};

use crate::draw::{self, ReceiptId};
use crate::merkle::{self, Hash};

/// One ticket's audit path to the root (RFC 6962 §2.1.1), as served by the lottery at
/// `GET /lottery/rounds/<round>/proof/<ticket>.json`.
///
/// ```
/// use herald_draw::proof::Proof;
/// let purchases = [([1u8; 16], 2), ([2u8; 16], 3)];
/// let proof = Proof::build(7, &purchases, 3).unwrap();
/// assert_eq!(proof.receipt_id, hex::encode([2u8; 16]));
/// assert!(proof.check().is_ok());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Proof {
    pub round: u64,
    pub ticket: u64,
    /// The receipt holding the ticket, 16 bytes hex.
    pub receipt_id: String,
    /// N, the tree's size.
    pub tickets: u64,
    pub tickets_root: String,
    /// Sibling hashes, bottom-up, hex.
    pub path: Vec<String>,
}

impl Proof {
    /// The proof of `ticket` among `purchases` (receipt, ticket count) in order; `None`
    /// if there is no such ticket.
    pub fn build(round: u64, purchases: &[(ReceiptId, u64)], ticket: u64) -> Option<Proof> {
        let leaves = draw::ticket_leaves(round, purchases.iter().map(|(r, n)| (r, *n)));
        let index = usize::try_from(ticket).ok().filter(|i| *i < leaves.len())?;
        let mut first = 0;
        let receipt = purchases.iter().find(|(_, n)| {
            first += n;
            ticket < first
        })?;
        Some(Proof {
            round,
            ticket,
            receipt_id: hex::encode(receipt.0),
            tickets: leaves.len() as u64,
            tickets_root: hex::encode(merkle::root(&leaves)),
            path: merkle::inclusion_proof(&leaves, index).iter().map(hex::encode).collect(),
        })
    }

    /// Recomputes the ticket's leaf from the round, the ticket and the receipt, and walks
    /// the path up to the root.
    ///
    /// Errors: a malformed field, or the path does not lead to `tickets_root`.
    pub fn check(&self) -> Result<(), String> {
        let receipt: ReceiptId = hex::decode(&self.receipt_id)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or("receipt_id is not 16 bytes of hex")?;
        let root: Hash = hex::decode(&self.tickets_root)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or("tickets_root is not 32 bytes of hex")?;
        let path = self
            .path
            .iter()
            .map(|h| hex::decode(h).ok().and_then(|b| b.try_into().ok()))
            .collect::<Option<Vec<Hash>>>()
            .ok_or("a path hash is not 32 bytes of hex")?;
        let leaf = merkle::leaf_hash(&draw::leaf_data(self.round, self.ticket, &receipt));
        if merkle::verify_inclusion(&leaf, self.ticket, self.tickets, &path, &root) {
            Ok(())
        } else {
            Err(format!(
                "ticket {} of receipt {} is not in root {} of {} tickets",
                self.ticket, self.receipt_id, self.tickets_root, self.tickets
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_ticket_proves_and_a_changed_field_does_not() {
        let purchases: Vec<(ReceiptId, u64)> = (0..7u8).map(|i| ([i; 16], 1 + i as u64 % 3)).collect();
        let n: u64 = purchases.iter().map(|p| p.1).sum();
        for t in 0..n {
            let p = Proof::build(3, &purchases, t).unwrap();
            assert!(p.check().is_ok(), "ticket {t}");
            let mut other_round = p.clone();
            other_round.round = 4;
            assert!(other_round.check().is_err());
            let mut other_receipt = p.clone();
            other_receipt.receipt_id = hex::encode([99u8; 16]);
            assert!(other_receipt.check().is_err());
            let mut other_ticket = p.clone();
            other_ticket.ticket = (t + 1) % n;
            assert!(other_ticket.check().is_err());
        }
        assert!(Proof::build(3, &purchases, n).is_none());
    }
}
