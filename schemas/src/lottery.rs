//! The lottery's audit trail: one [`LotteryEntry`] per step of a round on
//! `herald.lottery.round.<round>` (stream LOTTERY), each carrying the SHA-256 of the
//! entry before it, so the trail cannot be edited without breaking the chain.
//!
//! Amounts are decimal strings of ledger base units (10^-18 USD); hashes and ids are
//! lower-case hex; times are unix seconds unless named `_ms`.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::Versioned;

/// One step of a round.
///
/// ```
/// use herald_schemas::{LotteryEntry, LotteryStep};
/// let e = LotteryEntry::new(3, 0, "00".repeat(32), 0, "0".into(), LotteryStep::Closed {
///     tickets: 0, tickets_root: "e3b0".into(), pot: "0".into(), rollover_in: "0".into() });
/// let back: LotteryEntry = herald_schemas::decode(&herald_schemas::encode(&e)).unwrap();
/// assert_eq!(back, e);
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct LotteryEntry {
    pub v: u32,
    pub round: u64,
    /// 0 for the round's first entry, then 1, 2, ...
    pub index: u64,
    /// SHA-256 of the previous entry's bytes (the previous round's last entry for
    /// index 0; 32 zero bytes for the very first round).
    pub prev: String,
    /// Tickets sold so far in the round.
    pub sold: u64,
    /// Ticket spend so far, base units.
    pub spend: String,
    pub at_ms: u64,
    #[serde(flatten)]
    pub step: LotteryStep,
}

/// What happened.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum LotteryStep {
    /// Sales open; the draw's parameters are fixed and announced.
    Opened {
        /// Ticket price, base units.
        price: String,
        /// Sale close, unix s.
        t_close: u64,
        /// The drand chain's hash.
        chain_hash: String,
        /// `R`, the beacon round the draw uses.
        beacon_round: u64,
        /// `R` is the first round at or after `t_close + beacon_delay_s`.
        beacon_delay_s: u64,
        /// SHA-256(server_seed), hex.
        commitment: String,
        fee_bps: u32,
        shares_bps: Vec<u32>,
    },
    /// Tickets `first_ticket .. first_ticket + count` bought (ledger debit `debit_ref`).
    Purchase {
        /// 16 bytes, hex.
        receipt_id: String,
        user_id: i64,
        chat_id: i64,
        first_ticket: u64,
        count: u64,
        /// Base units paid.
        amount: String,
        debit_ref: String,
        /// The buyer's referrers, nearest first (levels that are paid).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        referrers: Vec<i64>,
    },
    /// Sales closed at `t_close`: N, the RFC 6962 root of the tickets, the pot.
    Closed {
        tickets: u64,
        tickets_root: String,
        /// N · price + rollover_in.
        pot: String,
        /// The previous round's rollover.
        rollover_in: String,
    },
    /// Beacon `R`, verified.
    Beacon {
        beacon_round: u64,
        signature: String,
        randomness: String,
    },
    /// The server seed, revealed.
    Revealed { server_seed: String },
    /// The draw: its outcome, winners and the bundle's SHA-256 (the bundle is in the
    /// `herald_lottery_bundles` object store, name `round-<round>.json`).
    Drawn {
        outcome: String,
        winning_tickets: Vec<u64>,
        bundle_sha256: String,
        rollover_out: String,
    },
    /// Every payout credited (prizes, referral rewards, or the refunds) and everyone
    /// told: the round is over.
    ///
    /// Only the prizes are listed: a round can have thousands of referral rewards or
    /// refunds, more than one entry may hold (64 KiB). Each of those is a ledger credit
    /// under a reference derived from the round (`lottery:<round>:referral:<user>`,
    /// `lottery:<round>:refund:<receipt>`), so the ledger is their record.
    Settled {
        /// The prizes credited, 1st place first.
        prizes: Vec<Payout>,
        /// Ledger credits the settlement made, prizes included.
        credits: u64,
        /// Their sum, base units.
        credited: String,
        rollover_out: String,
    },
}

/// One ledger credit of a settlement.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Payout {
    pub user_id: i64,
    /// Base units.
    pub amount: String,
    /// `prize` | `referral` | `refund`.
    pub kind: String,
    /// The ledger reference (applied once).
    pub reference: String,
}

impl LotteryEntry {
    /// A version-1 entry, stamped now.
    pub fn new(round: u64, index: u64, prev: String, sold: u64, spend: String, step: LotteryStep) -> Self {
        LotteryEntry {
            v: 1,
            round,
            index,
            prev,
            sold,
            spend,
            at_ms: crate::now_ms(),
            step,
        }
    }
}

impl Versioned for LotteryEntry {
    const VERSION: u32 = 1;
    const SCHEMA_NAME: &'static str = "lottery_entry";
    fn version(&self) -> u32 {
        self.v
    }
}
