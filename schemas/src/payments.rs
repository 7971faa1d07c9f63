//! Deposits on BNB Smart Chain.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::{one, Versioned};

/// Where a deposit stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum DepositStage {
    /// In a block, not final: announce it, never credit it.
    Seen,
    /// Its block is final: credit it once, by [`Deposit::id`].
    Final,
    /// Its block was reorganised out before finality: never credited.
    Orphaned,
}

impl DepositStage {
    pub fn as_str(self) -> &'static str {
        match self {
            DepositStage::Seen => "seen",
            DepositStage::Final => "final",
            DepositStage::Orphaned => "orphaned",
        }
    }
}

/// A BEP-20 transfer to one of Herald's deposit addresses, on
/// `herald.deposits.<stage>.<chain>`.
///
/// Amounts are token base units as a decimal string (a uint256 does not fit JSON
/// numbers); addresses and hashes are 0x-prefixed hex.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Deposit {
    #[serde(default = "one")]
    pub v: u32,
    pub stage: DepositStage,
    /// `bsc` (chain id 56), or the configured chain name.
    pub chain: String,
    /// The token contract.
    pub token: String,
    pub from: String,
    /// The deposit address.
    pub to: String,
    /// The user the address belongs to.
    pub user_id: i64,
    /// Base units, decimal.
    pub value: String,
    pub block_number: u64,
    pub block_hash: String,
    pub tx_hash: String,
    pub log_index: u64,
    /// When the watcher saw this stage (ms since epoch).
    pub ts_ms: u64,
}

impl Deposit {
    /// `<tx hash>:<log index>`: unique per transfer (the ledger's unique key).
    pub fn id(&self) -> String {
        format!("{}:{}", self.tx_hash, self.log_index)
    }

    /// `Nats-Msg-Id`: `<stage>:<tx hash>:<log index>:<block hash>` (a transfer re-included
    /// in another block after a reorg is a new sighting).
    pub fn msg_id(&self) -> String {
        format!("{}:{}:{}", self.stage.as_str(), self.id(), self.block_hash)
    }
}

impl Versioned for Deposit {
    const VERSION: u32 = 1;
    const SCHEMA_NAME: &'static str = "deposit";
    fn version(&self) -> u32 {
        self.v
    }
}

/// Credit or debit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum LedgerKind {
    Credit,
    Debit,
    /// An amount set aside (a withdrawal in flight): out of the balance, into `held`.
    Hold,
    /// A hold given back to the balance (the withdrawal failed or was rejected).
    Release,
    /// A hold gone for good (the withdrawal's transaction is final).
    Settle,
}

impl LedgerKind {
    /// `credit`, `debit`, `hold`, `release` or `settle`, as serialised.
    pub fn as_str(self) -> &'static str {
        match self {
            LedgerKind::Credit => "credit",
            LedgerKind::Debit => "debit",
            LedgerKind::Hold => "hold",
            LedgerKind::Release => "release",
            LedgerKind::Settle => "settle",
        }
    }
}

fn zero() -> String {
    "0".into()
}

/// One entry of a user's ledger, on `herald.ledger.<user_id>`: the subject is the user's
/// whole history, and its last entry carries the balance.
///
/// Amounts are USD in 18-decimal base units (BSC's USDT and BUSD both have 18
/// decimals), as decimal strings: never floats.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct LedgerEntry {
    #[serde(default = "one")]
    pub v: u32,
    pub user_id: i64,
    pub kind: LedgerKind,
    /// Base units, decimal.
    pub amount: String,
    /// The balance after this entry (spendable), base units, decimal.
    pub balance: String,
    /// What is on hold after this entry (the sum of open holds), base units, decimal;
    /// "0" in entries written before holds existed.
    #[serde(default = "zero")]
    pub held: String,
    /// For a release or a settle: the reference of the hold it closes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hold: Option<String>,
    /// What it is for, unique per user: `deposit:<tx hash>:<log index>` for a credit,
    /// `sub:<request>` for a subscription.
    pub reference: String,
    /// Shown to the user in `/balance`.
    pub note: String,
    pub ts_ms: u64,
}

impl Versioned for LedgerEntry {
    const VERSION: u32 = 1;
    const SCHEMA_NAME: &'static str = "ledger_entry";
    fn version(&self) -> u32 {
        self.v
    }
}

/// A withdrawal approved for the signer, on `herald.withdrawals.approved.<chain>`: send
/// `amount` of `token` to `to`. The user's balance already holds the ledger amount
/// under `hold`; the signer holds the only key.
///
/// Amounts are token base units as decimal strings; addresses are 0x-prefixed hex.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Withdrawal {
    #[serde(default = "one")]
    pub v: u32,
    /// Unique per withdrawal (`wd-<user>-<update id>`): the signer's journal key, so a
    /// redelivery never signs a second transaction for it.
    pub id: String,
    pub user_id: i64,
    /// `bsc`, or the configured chain name.
    pub chain: String,
    /// The token contract.
    pub token: String,
    /// The destination (checked: not zero, not a token contract, not a deposit address).
    pub to: String,
    /// Token base units sent (the net amount, after the fee).
    pub amount: String,
    /// The ledger hold this withdrawal settles or releases.
    pub hold: String,
    pub approved_ms: u64,
}

impl Versioned for Withdrawal {
    const VERSION: u32 = 1;
    const SCHEMA_NAME: &'static str = "withdrawal";
    fn version(&self) -> u32 {
        self.v
    }
}

/// Where a withdrawal's transaction stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum WithdrawalStage {
    /// Signed and broadcast: the hash is known, the transfer is not final.
    Sent,
    /// In a block with enough confirmations: settle the hold.
    Final,
    /// Cannot be sent (refused by the node, reverted): release the hold.
    Failed,
    /// The hot wallet is short of the token or of gas: waiting whole, nothing sent.
    Queued,
}

impl WithdrawalStage {
    pub fn as_str(self) -> &'static str {
        match self {
            WithdrawalStage::Sent => "sent",
            WithdrawalStage::Final => "final",
            WithdrawalStage::Failed => "failed",
            WithdrawalStage::Queued => "queued",
        }
    }
}

/// What became of a withdrawal, on `herald.withdrawals.<stage>.<chain>`, from the
/// signer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct WithdrawalOutcome {
    #[serde(default = "one")]
    pub v: u32,
    pub id: String,
    pub user_id: i64,
    /// The withdrawal's chain (its subject's last token).
    pub chain: String,
    pub hold: String,
    pub stage: WithdrawalStage,
    /// The transaction (the one mined, for `final`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tx_hash: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<u64>,
    /// Why, for `failed` and `queued`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub ts_ms: u64,
}

impl WithdrawalOutcome {
    /// `Nats-Msg-Id`: `<stage>:<id>:<tx hash>` (a replacement transaction's `sent` is a
    /// new event).
    pub fn msg_id(&self) -> String {
        format!("{}:{}:{}", self.stage.as_str(), self.id, self.tx_hash.as_deref().unwrap_or("-"))
    }
}

impl Versioned for WithdrawalOutcome {
    const VERSION: u32 = 1;
    const SCHEMA_NAME: &'static str = "withdrawal_outcome";
    fn version(&self) -> u32 {
        self.v
    }
}

/// A payment gateway's status for one payment, verified (NOWPayments' IPN: its
/// signature checked), on `herald.gateway.<gateway>.<user>` (GATEWAY, money class).
///
/// Amounts are decimal strings: `price_usd` in ledger units (USD, 18 decimals);
/// `actually_paid` as the gateway wrote it, in `pay_currency`, shown only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct GatewayPayment {
    #[serde(default = "one")]
    pub v: u32,
    /// `nowpayments`.
    pub gateway: String,
    /// The gateway's payment id: the ledger credit's reference is `<gateway>:<id>`.
    pub payment_id: String,
    /// The gateway's status word (`waiting`, `confirming`, `confirmed`, `sending`,
    /// `partially_paid`, `finished`, `failed`, `refunded`, `expired`).
    pub status: String,
    /// Herald's reference the invoice was made with (`np-<user>-<update id>`).
    pub order_id: String,
    pub user_id: i64,
    /// The invoice's price, ledger units.
    pub price_usd: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actually_paid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pay_currency: Option<String>,
    pub received_ms: u64,
}

impl Versioned for GatewayPayment {
    const VERSION: u32 = 1;
    const SCHEMA_NAME: &'static str = "gateway_payment";
    fn version(&self) -> u32 {
        self.v
    }
}
