//! The delivery stage: the bot's reports on what the chat sent
//! (`herald.chat.delivery.<sender>`).
//!
//! - A copy Telegram made: its id goes in the message-id map (replies and edits find
//!   the partner's copy through it).
//! - A partner who blocked the bot (403): the chat ends, and the other is told.
//! - A copy Telegram refused: the sender is told "this message could not be delivered",
//!   never silence.

use herald_runtime::{Decision, MsgMeta, Stage, StageError};
use herald_schemas::{Content, DeliveryReport, Outcome};
use redis::aio::ConnectionManager;

use super::commands as say;
use super::inbox::partner_left;
use super::state::ChatState;
use crate::core::reply::{notice, output};

/// Copies to map: `originals` of chat `from` became `copies` in chat `to`.
#[derive(Debug)]
pub struct Copied {
    from: i64,
    originals: Vec<i32>,
    to: i64,
    copies: Vec<i32>,
}

/// The stage.
pub struct ChatDelivery {
    pub state: ChatState,
    pub redis: ConnectionManager,
}

/// The partner told when the other blocked the bot.
pub const PARTNER_GONE: &str = "Your partner left the chat. /chat to find someone new.";

/// Tells the sender (`from`) that the copy under `key` of `originals` was not made, as a
/// reply to the first of them.
fn undelivered(key: &str, from: i64, originals: &[i32], text: &str) -> Decision<Option<Copied>> {
    metrics::counter!("herald_chat_undeliverable_total").increment(1);
    let content = Content::SendMessage {
        text: text.into(),
        buttons: Vec::new(),
        reply_to: originals.first().copied(),
    };
    Decision::Forward {
        outputs: vec![output(&notice(format!("chat:undelivered:{key}"), from, content))],
        commit: None,
    }
}

impl Stage for ChatDelivery {
    const NAME: &'static str = "chat_delivery";
    type Input = DeliveryReport;
    type Commit = Option<Copied>;

    fn decode(&self, payload: &[u8]) -> Result<DeliveryReport, String> {
        herald_schemas::decode(payload).map_err(|e| e.to_string())
    }

    async fn decide(&self, report: DeliveryReport, _meta: &MsgMeta) -> Result<Decision<Self::Commit>, StageError> {
        let copied = match &report.content {
            Content::CopyMessage { from_chat_id, message_id, .. } => Some((*from_chat_id, vec![*message_id])),
            Content::CopyMessages {
                from_chat_id, message_ids, ..
            } => Some((*from_chat_id, message_ids.clone())),
            _ => None,
        };
        match (report.outcome, copied) {
            (Outcome::Sent { message_ids }, Some((from, originals))) => {
                if message_ids.len() != originals.len() {
                    // copyMessages skips what it cannot copy, without saying which: tell
                    // the sender, and map nothing (the pairs cannot be told apart)
                    return Ok(undelivered(&report.idempotency_key, from, &originals, say::SOME_UNDELIVERABLE));
                }
                Ok(Decision::Forward {
                    outputs: Vec::new(),
                    commit: Some(Copied {
                        from,
                        originals,
                        to: report.chat_id,
                        copies: message_ids,
                    }),
                })
            }
            (Outcome::Blocked, _) => {
                let key = format!("blocked:{}", report.idempotency_key);
                let Some(ended) = self.state.end_chat_of(report.chat_id, "blocked", &key).await? else {
                    return Ok(Decision::Drop { reason: "not_in_a_chat" });
                };
                let outputs = ended
                    .users
                    .iter()
                    .filter(|u| **u != report.chat_id)
                    .map(|other| partner_left(ended.chat, *other, PARTNER_GONE))
                    .collect();
                Ok(Decision::Forward { outputs, commit: None })
            }
            (Outcome::Rejected { reason }, Some((from, originals))) => {
                tracing::info!(%reason, from, "a relayed message was refused by Telegram");
                Ok(undelivered(&report.idempotency_key, from, &originals, say::UNDELIVERABLE))
            }
            _ => Ok(Decision::Drop { reason: "nothing_to_do" }),
        }
    }

    async fn commit(&self, copied: Self::Commit) -> Result<(), StageError> {
        if let Some(c) = copied {
            super::ids::record(&self.redis, c.from, &c.originals, c.to, &c.copies).await?;
        }
        Ok(())
    }
}
