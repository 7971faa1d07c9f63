//! Deposits on BNB Smart Chain: per-user deposit addresses from an HD wallet
//! ([`wallet`]), BEP-20 `Transfer` logs ([`transfers`]) followed to finality with
//! reorgs handled ([`follow`] decides, [`watcher`] does the RPC), credited once to
//! users' [`ledger`]s by the [`credit`] stage.

pub mod addresses;
pub mod coupons;
pub mod credit;
pub mod follow;
pub mod ledger;
pub mod reminders;
pub mod subscriptions;
pub mod sweep;
pub mod transfers;
pub mod wallet;
pub mod watcher;

/// What `/deposit` and `/balance` need.
pub struct Payments {
    pub wallet: wallet::DepositWallet,
    /// The `herald_wallet` bucket ([`addresses`]).
    pub addresses: async_nats::jetstream::kv::Store,
    pub ledger: ledger::Ledger,
    /// Accepted tokens: symbol and contract.
    pub tokens: Vec<(String, alloy::primitives::Address)>,
    /// What `/subscribe` offers.
    pub tiers: Vec<subscriptions::Tier>,
    /// Free trial a new user gets at `/start`.
    pub trial: std::time::Duration,
    /// The `herald_coupons` bucket ([`coupons`]).
    pub coupons: async_nats::jetstream::kv::Store,
    /// Telegram user ids allowed to use `/admin` (checked on every command).
    pub admins: Vec<i64>,
}
