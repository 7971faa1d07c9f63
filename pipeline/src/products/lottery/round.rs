//! A round as its entries tell it: [`Round::apply`] folds the audit trail, step by step.

use herald_draw::beacon::Beacon;
use herald_draw::draw::ReceiptId;
use herald_schemas::{LotteryEntry, LotteryStep, Payout};

use super::journal::{amount, Phase, Position};

/// One purchase of the round.
#[derive(Debug, Clone, PartialEq)]
pub struct Purchase {
    pub receipt_id: ReceiptId,
    pub user_id: i64,
    pub chat_id: i64,
    pub first_ticket: u64,
    pub count: u64,
    /// Base units.
    pub amount: u128,
    pub debit_ref: String,
    pub referrers: Vec<i64>,
}

/// A round so far.
#[derive(Debug, Clone, Default)]
pub struct Round {
    pub id: u64,
    pub phase: Option<Phase>,
    /// Base units.
    pub price: u128,
    pub t_close: u64,
    pub beacon_round: u64,
    pub beacon_delay_s: u64,
    pub commitment: [u8; 32],
    pub fee_bps: u32,
    pub shares_bps: Vec<u32>,
    pub purchases: Vec<Purchase>,
    pub sold: u64,
    pub spend: u128,
    /// Set once closed.
    pub tickets_root: Option<String>,
    pub pot: u128,
    pub rollover_in: u128,
    /// SHA-256 of the Closed entry: the next round's first entry chains to it.
    pub closed_hash: Option<[u8; 32]>,
    pub beacon: Option<Beacon>,
    pub server_seed: Option<[u8; 32]>,
    pub outcome: Option<String>,
    pub winning_tickets: Vec<u64>,
    pub bundle_sha256: Option<String>,
    pub rollover_out: Option<u128>,
    /// Set once settled: the prizes paid, and how many credits in all.
    pub prizes: Vec<Payout>,
    pub credits: u64,
    /// The stream sequence and hash of the last entry applied.
    pub last_seq: u64,
    pub last_hash: Option<[u8; 32]>,
    /// Entries applied.
    pub entries: u64,
}

fn hex_array<const N: usize>(field: &str, s: &str) -> anyhow::Result<[u8; N]> {
    hex::decode(s).ok().and_then(|b| b.try_into().ok()).ok_or_else(|| anyhow::anyhow!("{field}: not {N} bytes of hex"))
}

impl Round {
    /// Applies entries read after [`Round::last_seq`] (each with the SHA-256 of its
    /// bytes and its stream sequence), in order.
    ///
    /// Errors: an entry out of order, or a malformed field.
    pub fn extend(&mut self, entries: &[(LotteryEntry, [u8; 32], u64)]) -> anyhow::Result<()> {
        for (e, hash, seq) in entries {
            self.apply(e, *hash)?;
            self.last_seq = *seq;
            self.last_hash = Some(*hash);
            self.entries += 1;
        }
        Ok(())
    }

    /// Applies the next entry.
    ///
    /// Errors: a step that cannot follow the round's phase, or a malformed field.
    pub fn apply(&mut self, e: &LotteryEntry, hash: [u8; 32]) -> anyhow::Result<()> {
        use LotteryStep::*;
        let next = super::journal::phase(&e.step);
        // no tickets: Closed -> Drawn (rolled over); a seed not revealed: Beacon -> Drawn (refunded)
        let allowed = matches!(
            (self.phase, next),
            (None, Phase::Selling)
                | (Some(Phase::Selling), Phase::Selling | Phase::Closed)
                | (Some(Phase::Closed), Phase::BeaconIn | Phase::Drawn)
                | (Some(Phase::BeaconIn), Phase::Revealed | Phase::Drawn)
                | (Some(Phase::Revealed), Phase::Drawn)
                | (Some(Phase::Drawn), Phase::Settled)
        ) && (self.phase.is_some() || matches!(e.step, Opened { .. }));
        anyhow::ensure!(allowed, "round {}: {:?} cannot follow {:?}", self.id, next, self.phase);
        self.sold = e.sold;
        self.spend = amount(&e.spend)?;
        match &e.step {
            Opened {
                price,
                t_close,
                beacon_round,
                beacon_delay_s,
                commitment,
                fee_bps,
                shares_bps,
                ..
            } => {
                self.price = amount(price)?;
                self.t_close = *t_close;
                self.beacon_round = *beacon_round;
                self.beacon_delay_s = *beacon_delay_s;
                self.commitment = hex_array("commitment", commitment)?;
                self.fee_bps = *fee_bps;
                self.shares_bps = shares_bps.clone();
            }
            Purchase {
                receipt_id,
                user_id,
                chat_id,
                first_ticket,
                count,
                amount: paid,
                debit_ref,
                referrers,
            } => self.purchases.push(super::round::Purchase {
                receipt_id: hex_array("receipt_id", receipt_id)?,
                user_id: *user_id,
                chat_id: *chat_id,
                first_ticket: *first_ticket,
                count: *count,
                amount: amount(paid)?,
                debit_ref: debit_ref.clone(),
                referrers: referrers.clone(),
            }),
            Closed {
                tickets_root,
                pot,
                rollover_in,
                ..
            } => {
                self.tickets_root = Some(tickets_root.clone());
                self.pot = amount(pot)?;
                self.rollover_in = amount(rollover_in)?;
                self.closed_hash = Some(hash);
            }
            Beacon {
                beacon_round,
                signature,
                randomness,
            } => {
                self.beacon = Some(herald_draw::beacon::Beacon {
                    round: *beacon_round,
                    signature: signature.clone(),
                    randomness: randomness.clone(),
                    previous_signature: None,
                })
            }
            Revealed { server_seed } => self.server_seed = Some(hex_array("server_seed", server_seed)?),
            Drawn {
                outcome,
                winning_tickets,
                bundle_sha256,
                rollover_out,
            } => {
                self.outcome = Some(outcome.clone());
                self.winning_tickets = winning_tickets.clone();
                self.bundle_sha256 = Some(bundle_sha256.clone());
                self.rollover_out = Some(amount(rollover_out)?);
            }
            Settled {
                prizes,
                credits,
                rollover_out,
                ..
            } => {
                self.prizes = prizes.clone();
                self.credits = *credits;
                self.rollover_out = Some(amount(rollover_out)?);
            }
        }
        self.phase = Some(next);
        Ok(())
    }

    /// Where the round's next entry goes.
    ///
    /// Panics on a round with no entry (its first is placed with [`Position::first`]).
    pub fn position(&self) -> Position {
        Position {
            index: self.entries,
            prev: self.last_hash.expect("a round with entries"),
            expected_seq: self.last_seq,
        }
    }

    /// The purchase holding ticket `ticket`.
    pub fn holder(&self, ticket: u64) -> Option<&Purchase> {
        let i = self.purchases.partition_point(|p| p.first_ticket + p.count <= ticket);
        self.purchases.get(i).filter(|p| p.first_ticket <= ticket)
    }
}
