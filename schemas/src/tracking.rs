//! Prices and tracked calls.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::{one, Chain, Versioned};

/// A token's price at a moment, on `herald.prices.<chain>`.
///
/// Message id: [`PriceUpdate::msg_id`] (`<source>:<chain>:<token>:<ts_ms>`), so a
/// source's re-send is dropped by the PRICES stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct PriceUpdate {
    #[serde(default = "one")]
    pub v: u32,
    pub chain: Chain,
    pub token: String,
    /// Price in USD.
    pub price_usd: f64,
    /// Who reported it (`feed`, `dexscreener`).
    pub source: String,
    /// When the price was observed (ms since epoch).
    pub ts_ms: u64,
}

impl PriceUpdate {
    /// `<chain>:<token>`, as [`crate::CallEvent::token_key`].
    pub fn token_key(&self) -> String {
        format!("{}:{}", self.chain, self.token)
    }

    /// `Nats-Msg-Id` of the update.
    pub fn msg_id(&self) -> String {
        format!("{}:{}:{}", self.source, self.token_key(), self.ts_ms)
    }
}

impl Versioned for PriceUpdate {
    const VERSION: u32 = 1;
    const SCHEMA_NAME: &'static str = "price_update";
    fn version(&self) -> u32 {
        self.v
    }
}

/// A recipient of a notification, who now tracks the call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Recipient {
    pub user_id: i64,
    pub chat_id: i64,
}

/// The calls users were notified about, published by fan-out on
/// `herald.tracked.<chain>` (one event per signal); each recipient now tracks the call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct TrackedCalls {
    #[serde(default = "one")]
    pub v: u32,
    pub chain: Chain,
    pub token: String,
    #[serde(default)]
    pub symbol: Option<String>,
    /// Every caller of the token at the time of the notification.
    pub caller_ids: Vec<String>,
    /// Price at the call, the base of every multiple.
    pub entry_price_usd: f64,
    /// When the call entered Herald (ms since epoch).
    pub called_at_ms: u64,
    pub recipients: Vec<Recipient>,
}

impl Versioned for TrackedCalls {
    const VERSION: u32 = 1;
    const SCHEMA_NAME: &'static str = "tracked_calls";
    fn version(&self) -> u32 {
        self.v
    }
}
