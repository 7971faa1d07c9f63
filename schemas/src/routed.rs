//! An update the router handed to one product.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::{one, Versioned};

/// What the router found in an update, published on `herald.cmd.<product>.<user or
/// chat>` (see [`crate::subjects::routed`]) with `Nats-Msg-Id` `route:<update_id>`.
/// The product reads the fields it needs; `update` keeps the whole Telegram `Update`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RoutedUpdate {
    #[serde(default = "one")]
    pub v: u32,
    pub update_id: i64,
    /// The update's kind (`message`, `callback_query`, `channel_post`, ...).
    pub kind: String,
    /// The Telegram user behind it (absent for channel posts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<i64>,
    /// The chat to answer in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chat_id: Option<i64>,
    /// A command's text, `/name args` with any `@bot` suffix removed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    /// A button's callback data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub callback_data: Option<String>,
    /// The message a pressed button belongs to (to edit it in place).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_id: Option<i32>,
    /// The sender is a configured admin (checked by the router on every update).
    #[serde(default)]
    pub admin: bool,
    /// The raw Telegram `Update`.
    pub update: serde_json::Value,
    /// When the server had the update (ms since the epoch, the UPDATES stream's
    /// timestamp; 0 when unknown): how a product times an answer, whenever it gets to
    /// process it.
    #[serde(default)]
    pub received_ms: u64,
}

impl Versioned for RoutedUpdate {
    const VERSION: u32 = 1;
    const SCHEMA_NAME: &'static str = "routed_update";
    fn version(&self) -> u32 {
        self.v
    }
}
