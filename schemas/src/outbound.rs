//! Messages for Telegram.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::{one, Versioned};

/// Which queue a message waits in: replies go before broadcasts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Priority {
    /// A reply to the user's own command.
    Reply,
    /// A notification or broadcast.
    Broadcast,
}

/// An inline keyboard button carrying callback data (at most 64 bytes, Telegram's limit).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Button {
    pub text: String,
    pub callback_data: String,
}

/// A message the bot sends, published on `herald.out.notify.<chat>` or
/// `herald.out.reply.<chat>`.
///
/// `idempotency_key` is also the `Nats-Msg-Id`; the bot records it once Telegram has
/// accepted the message and never sends the same key twice.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct OutboundMessage {
    #[serde(default = "one")]
    pub v: u32,
    pub idempotency_key: String,
    pub chat_id: i64,
    /// HTML-formatted text (Telegram `parse_mode=HTML`), at most 4096 characters.
    pub text: String,
    /// Inline keyboard rows.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub buttons: Vec<Vec<Button>>,
    /// When set, edit this message instead of sending a new one (inline keyboard menus).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub edit_message_id: Option<i32>,
    /// When set, the message goes out as a photo: a QR code (PNG) encoding this string,
    /// with `text` as its caption, so `text` is then at most 1024 characters (Telegram's
    /// caption limit). Used for deposit addresses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub qr_code: Option<String>,
    pub priority: Priority,
    /// When the event that caused this message entered Herald (ms since epoch).
    pub origin_ts_ms: u64,
}

impl Versioned for OutboundMessage {
    const VERSION: u32 = 1;
    const SCHEMA_NAME: &'static str = "outbound_message";
    fn version(&self) -> u32 {
        self.v
    }
}
