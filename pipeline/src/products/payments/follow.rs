//! The chain follower's decisions, free of I/O: which transfers are new, which became
//! final, which were reorganised out, and where to scan next.
//!
//! Finality: a transfer is final once its block is at or below the final block (the
//! `finalized` tag where the chain has one, else head - confirmations) **and** the
//! chain's block at that height still has the hash the transfer was seen in. Otherwise
//! it was reorganised out: it is never credited, and scanning rewinds to the first
//! block that can still change, so a transfer re-included in another block is found
//! again (under its new block hash).

use std::collections::BTreeMap;

use alloy::primitives::B256;

use super::transfers::TokenTransfer;

/// What the follower tells the rest of Herald.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DepositEvent {
    /// In a block, not final yet (announce it; never credit it).
    Seen(TokenTransfer),
    /// Final: credit it (once, by its id).
    Final(TokenTransfer),
    /// Its block was reorganised out before finality.
    Orphaned(TokenTransfer),
}

impl DepositEvent {
    /// The transfer the event is about.
    pub fn transfer(&self) -> &TokenTransfer {
        match self {
            DepositEvent::Seen(t) | DepositEvent::Final(t) | DepositEvent::Orphaned(t) => t,
        }
    }
}

/// Follower state: the next block to scan and the transfers seen but not final.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Follower {
    /// Next block to scan.
    pub cursor: u64,
    /// Seen transfers awaiting finality, by id.
    pub pending: BTreeMap<String, TokenTransfer>,
}

impl Follower {
    /// Starts scanning at `from` (the last final block + 1 after a restart).
    pub fn new(from: u64) -> Self {
        Follower {
            cursor: from,
            pending: BTreeMap::new(),
        }
    }

    /// Transfers to our addresses found in blocks `cursor..=to`: the new ones are
    /// `Seen`; one seen again in another block (after a reorg) moves there, silently.
    ///
    /// ```
    /// # use herald_pipeline::products::payments::{follow::*, transfers::TokenTransfer};
    /// # use alloy::primitives::{Address, B256, U256};
    /// let t = TokenTransfer { token: Address::ZERO, from: Address::ZERO, to: Address::ZERO,
    ///     value: U256::from(5), block_number: 10, block_hash: B256::repeat_byte(1),
    ///     tx_hash: B256::repeat_byte(2), log_index: 0 };
    /// let mut f = Follower::new(10);
    /// assert_eq!(f.scanned(12, vec![t.clone()]), [DepositEvent::Seen(t.clone())]);
    /// assert!(f.scanned(12, vec![t.clone()]).is_empty(), "seen once");
    /// assert_eq!(f.finalize(12, |_| Some(t.block_hash)), ([DepositEvent::Final(t)].to_vec(), false));
    /// ```
    pub fn scanned(&mut self, to: u64, found: Vec<TokenTransfer>) -> Vec<DepositEvent> {
        self.cursor = self.cursor.max(to + 1);
        let mut events = Vec::new();
        for t in found {
            // the same transfer again (a rescan) just takes its new block
            if self.pending.insert(t.id(), t.clone()).is_none() {
                events.push(DepositEvent::Seen(t));
            }
        }
        events
    }

    /// Decides the pending transfers at or below `final_block`; `hash_at(n)` is the
    /// chain's block hash at height `n` now (`None`: no such block, as after a reorg to
    /// a shorter chain). Returns the events and whether a reorg was found, in which case
    /// the cursor went back to `final_block + 1`.
    pub fn finalize(&mut self, final_block: u64, mut hash_at: impl FnMut(u64) -> Option<B256>) -> (Vec<DepositEvent>, bool) {
        let due: Vec<String> = self
            .pending
            .iter()
            .filter(|(_, t)| t.block_number <= final_block)
            .map(|(id, _)| id.clone())
            .collect();
        let mut events = Vec::new();
        let mut reorged = false;
        for id in due {
            let t = self.pending.remove(&id).expect("listed above");
            if hash_at(t.block_number) == Some(t.block_hash) {
                events.push(DepositEvent::Final(t));
            } else {
                reorged = true;
                events.push(DepositEvent::Orphaned(t));
            }
        }
        if reorged {
            self.rewind(final_block);
        }
        (events, reorged)
    }

    /// A reorg above `final_block` was found: scan again from `final_block + 1`.
    pub fn rewind(&mut self, final_block: u64) {
        self.cursor = self.cursor.min(final_block + 1);
    }

    /// Where to resume after a restart: nothing pending is skipped.
    pub fn resume_point(&self) -> u64 {
        self.pending
            .values()
            .map(|t| t.block_number)
            .min()
            .unwrap_or(self.cursor)
            .min(self.cursor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy::primitives::{Address, U256};

    fn transfer(block: u64, hash: u8, tx: u8) -> TokenTransfer {
        TokenTransfer {
            token: Address::ZERO,
            from: Address::ZERO,
            to: Address::repeat_byte(9),
            value: U256::from(1_000_000u64),
            block_number: block,
            block_hash: B256::repeat_byte(hash),
            tx_hash: B256::repeat_byte(tx),
            log_index: 3,
        }
    }

    #[test]
    fn a_transfer_is_final_only_in_the_block_it_was_seen_in() {
        let mut f = Follower::new(100);
        let (a, b) = (transfer(101, 1, 1), transfer(103, 2, 2));
        assert_eq!(f.scanned(105, vec![a.clone(), b.clone()]).len(), 2);
        assert_eq!(f.cursor, 106);
        // block 101 is final and unchanged; 103 is not final yet
        let (events, reorged) = f.finalize(102, |_| Some(B256::repeat_byte(1)));
        assert_eq!((events, reorged), (vec![DepositEvent::Final(a)], false));
        // by the time 103 is final, its block has another hash: orphaned, rescan from 104... from final + 1
        let (events, reorged) = f.finalize(104, |n| (n != 103).then(|| B256::repeat_byte(1)));
        assert_eq!((events, reorged), (vec![DepositEvent::Orphaned(b.clone())], true));
        assert_eq!(f.cursor, 105, "rescan what can still change");
        // the transfer re-included in block 105 is seen anew, and goes final there
        let again = TokenTransfer {
            block_number: 105,
            block_hash: B256::repeat_byte(5),
            ..b
        };
        assert_eq!(f.scanned(106, vec![again.clone()]), [DepositEvent::Seen(again.clone())]);
        assert_eq!(f.finalize(106, |_| Some(B256::repeat_byte(5))).0, [DepositEvent::Final(again)]);
        assert!(f.pending.is_empty());
    }

    #[test]
    fn resuming_never_skips_a_pending_transfer() {
        let mut f = Follower::new(10);
        f.scanned(20, vec![transfer(12, 1, 1)]);
        assert_eq!(f.resume_point(), 12);
        f.finalize(15, |_| Some(B256::repeat_byte(1)));
        assert_eq!(f.resume_point(), 21);
    }
}
