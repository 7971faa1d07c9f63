//! What became of an outbound message: the bot's answer to a product that asked for it
//! with [`crate::OutboundMessage::report`].

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::{Content, Versioned};

/// How Telegram answered one outbound message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    /// Accepted: the ids of the messages it made, in order (one per copied message for
    /// `copyMessages`, one otherwise).
    Sent { message_ids: Vec<i32> },
    /// 403 and kin: the user blocked the bot or is gone; nothing was sent.
    Blocked,
    /// Refused for good (a 400: a message that cannot be copied, bad markup); nothing
    /// was sent. `reason` is Telegram's description.
    Rejected { reason: String },
}

/// Published by the bot on the message's `report` subject once Telegram has answered,
/// with `Nats-Msg-Id` `report:<idempotency key>` (so one report per message).
///
/// ```
/// use herald_schemas::{Content, DeliveryReport, Outcome};
/// let r = DeliveryReport::new("chat:5:7:9", 9, Content::copy(5, 7, None, false), Outcome::Sent { message_ids: vec![31] });
/// let back: DeliveryReport = herald_schemas::decode(&herald_schemas::encode(&r)).unwrap();
/// assert_eq!(back, r);
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct DeliveryReport {
    pub v: u32,
    /// The message's idempotency key.
    pub idempotency_key: String,
    /// The chat it was for.
    pub chat_id: i64,
    /// The call it made (what was copied from where, for a copy).
    pub content: Content,
    #[serde(flatten)]
    pub outcome: Outcome,
    /// For a sent poll: Telegram's poll id, which its `poll_answer` updates carry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub poll_id: Option<String>,
}

impl DeliveryReport {
    /// A version-1 report.
    pub fn new(key: impl Into<String>, chat_id: i64, content: Content, outcome: Outcome) -> Self {
        DeliveryReport {
            v: 1,
            idempotency_key: key.into(),
            chat_id,
            content,
            outcome,
            poll_id: None,
        }
    }
}

impl Versioned for DeliveryReport {
    const VERSION: u32 = 1;
    const SCHEMA_NAME: &'static str = "delivery_report";
    fn version(&self) -> u32 {
        self.v
    }
}
