//! Users and their filters.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::{one, Chain, Versioned};

/// A user's signal filters; `None` or empty means "no constraint".
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
pub struct Filters {
    /// Minimum caller win rate in `[0, 1]`; one new caller must reach it.
    #[serde(default)]
    pub min_win_rate: Option<f64>,
    /// Minimum caller average gain in percent (see [`crate::ChannelStats::avg_gain_pct`]).
    #[serde(default)]
    pub min_avg_gain_pct: Option<f64>,
    /// FDV range in USD, inclusive.
    #[serde(default)]
    pub min_fdv_usd: Option<f64>,
    #[serde(default)]
    pub max_fdv_usd: Option<f64>,
    /// Chains to receive; empty = all.
    #[serde(default)]
    pub chains: Vec<Chain>,
}

/// A user's settings, stored in the `herald_users` KV bucket under the user id; every
/// pipeline process keeps an in-memory replica current from the bucket's change events.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct UserSettings {
    #[serde(default = "one")]
    pub v: u32,
    pub user_id: i64,
    /// Private chat the bot writes to.
    pub chat_id: i64,
    /// False once Telegram answered 403 (the user blocked the bot).
    pub active: bool,
    /// Set by /pause, cleared by /resume.
    pub paused: bool,
    pub filters: Filters,
    pub updated_at_ms: u64,
    /// Signals are paid up to this time (ms since epoch; `u64::MAX`: lifetime). Set to
    /// the end of the free trial at `/start`; `None`: never subscribed. Checked only when
    /// the pipeline requires a subscription.
    #[serde(default)]
    pub paid_until_ms: Option<u64>,
    /// The ledger reference of the last subscription bought, so a redelivered purchase
    /// extends the subscription once.
    #[serde(default)]
    pub last_purchase: Option<String>,
    /// Locked by an admin: no signals, commands refused.
    #[serde(default)]
    pub locked: bool,
}

impl UserSettings {
    /// A new active user with no filters.
    pub fn new(user_id: i64, chat_id: i64, now_ms: u64) -> Self {
        UserSettings {
            v: 1,
            user_id,
            chat_id,
            active: true,
            paused: false,
            filters: Filters::default(),
            updated_at_ms: now_ms,
            paid_until_ms: None,
            last_purchase: None,
            locked: false,
        }
    }

    /// Whether the user should receive broadcasts at all.
    pub fn receives_signals(&self) -> bool {
        self.active && !self.paused && !self.locked
    }
}

impl Versioned for UserSettings {
    const VERSION: u32 = 1;
    const SCHEMA_NAME: &'static str = "user_settings";
    fn version(&self) -> u32 {
        self.v
    }
}
