//! The delivery stage: the bot's reports on what the chat sent
//! (`herald.chat.delivery.<sender>`).
//!
//! - A copy Telegram made: its id goes in the message-id map (replies and edits find
//!   the partner's copy through it), the original in the chat's evidence.
//! - A `copyMessages` that skipped part of its batch (a message deleted before the
//!   copy): Telegram answers only the ids of the copies it made, so which original each
//!   copy is cannot be known. The copies are deleted and the batch's messages sent
//!   again one by one, each with its own report: every copy is then mapped, and every
//!   skipped message is named to its sender.
//! - A partner who blocked the bot (403): the chat ends, and the other is told.
//! - A copy Telegram refused: the sender is told "this message could not be delivered",
//!   as a reply to it, never silence.
//!
//! Every report on a relayed batch also releases the partner's outbox
//! ([`Outbox::reported`]): the next batch may go.

use herald_runtime::{Decision, MsgMeta, Output, Stage, StageError};
use herald_schemas::{Content, DeliveryReport, Outcome};
use redis::aio::ConnectionManager;

use super::commands as say;
use super::inbox::partner_left;
use super::outbox::{Item, Outbox};
use super::state::ChatState;
use crate::core::reply::{notice, output};

/// What to change once the outputs are out: copies to map, then the outbox to release.
#[derive(Debug, Default)]
pub struct Delivered {
    copied: Option<Copied>,
    release: Option<Release>,
}

/// Copies to map: `originals` of chat `from` became `copies` in chat `to`.
#[derive(Debug)]
struct Copied {
    from: i64,
    originals: Vec<i32>,
    to: i64,
    copies: Vec<i32>,
}

/// The report on batch `key` to `recipient` arrived: `delivered` became evidence,
/// `again` goes back to the outbox.
#[derive(Debug)]
struct Release {
    recipient: i64,
    key: String,
    delivered: Vec<(i64, i32)>,
    again: Vec<Item>,
}

/// The stage.
pub struct ChatDelivery {
    pub state: ChatState,
    pub outbox: Outbox,
    pub redis: ConnectionManager,
}

/// The partner told when the other blocked the bot.
pub const PARTNER_GONE: &str = "Your partner left the chat. /chat to find someone new.";

/// Tells the sender (`from`) that each of `originals` was not delivered, as a reply to
/// it (one notice per message, keyed by the batch `key` and the message).
fn undelivered(key: &str, from: i64, originals: &[i32]) -> Vec<Output> {
    metrics::counter!(super::metrics::UNDELIVERABLE.name).increment(originals.len() as u64);
    let tell = |m: i32| {
        let content = Content::SendMessage {
            text: say::UNDELIVERABLE.into(),
            buttons: Vec::new(),
            reply_to: Some(m),
        };
        output(&notice(format!("chat:undelivered:{key}:{m}"), from, content))
    };
    originals.iter().map(|m| tell(*m)).collect()
}

impl ChatDelivery {
    /// `copyMessages` made `copies.len()` of the batch's `originals.len()`: undo the
    /// copies (so nothing shows twice) and send the batch's messages again one by one.
    async fn partial(&self, report: &DeliveryReport, copies: &[i32]) -> Result<Decision<Delivered>, StageError> {
        metrics::counter!(super::metrics::PARTIAL_BATCHES.name).increment(1);
        let (recipient, key) = (report.chat_id, &report.idempotency_key);
        let again: Vec<Item> = match self.outbox.in_flight(recipient).await.map_err(StageError::Transient)? {
            Some(batch) if &batch.key == key => batch.items.into_iter().map(|i| Item { a: true, ..i }).collect(),
            // handled already (a redelivered report): nothing to resend
            _ => return Ok(Decision::Drop { reason: "stale_report" }),
        };
        let outputs = copies
            .iter()
            .map(|c| output(&notice(format!("chat:undo:{key}:{c}"), recipient, Content::delete(*c))))
            .collect();
        let release = Release {
            recipient,
            key: key.clone(),
            delivered: Vec::new(),
            again,
        };
        Ok(Decision::Forward {
            outputs,
            commit: Delivered {
                copied: None,
                release: Some(release),
            },
        })
    }
}

impl Stage for ChatDelivery {
    const NAME: &'static str = "chat_delivery";
    type Input = DeliveryReport;
    type Commit = Delivered;
    type Effect = std::convert::Infallible;

    fn decode(&self, payload: &[u8]) -> Result<DeliveryReport, String> {
        herald_schemas::decode(payload).map_err(|e| e.to_string())
    }

    async fn decide(&self, report: DeliveryReport, _meta: &MsgMeta) -> Result<Decision<Delivered>, StageError> {
        let copied = match &report.content {
            Content::CopyMessage { from_chat_id, message_id, .. } => Some((*from_chat_id, vec![*message_id])),
            Content::CopyMessages {
                from_chat_id, message_ids, ..
            } => Some((*from_chat_id, message_ids.clone())),
            _ => None,
        };
        let release = |delivered: Vec<(i64, i32)>| Release {
            recipient: report.chat_id,
            key: report.idempotency_key.clone(),
            delivered,
            again: Vec::new(),
        };
        match (&report.outcome, copied) {
            (Outcome::Sent { message_ids }, Some((from, originals))) if message_ids.len() == originals.len() => {
                let delivered = originals.iter().map(|m| (from, *m)).collect();
                Ok(Decision::Forward {
                    outputs: Vec::new(),
                    commit: Delivered {
                        release: Some(release(delivered)),
                        copied: Some(Copied {
                            from,
                            originals,
                            to: report.chat_id,
                            copies: message_ids.clone(),
                        }),
                    },
                })
            }
            (Outcome::Sent { message_ids }, Some(_)) => self.partial(&report, message_ids).await,
            (Outcome::Blocked, copied) => {
                let key = format!("blocked:{}", report.idempotency_key);
                let release = copied.map(|_| release(Vec::new()));
                let Some(ended) = self.state.end_chat_of(report.chat_id, "blocked", &key).await? else {
                    return Ok(Decision::Forward {
                        outputs: Vec::new(),
                        commit: Delivered { copied: None, release },
                    });
                };
                let outputs = ended
                    .users
                    .iter()
                    .filter(|u| **u != report.chat_id)
                    .map(|other| partner_left(ended.chat, *other, PARTNER_GONE))
                    .collect();
                Ok(Decision::Forward {
                    outputs,
                    commit: Delivered { copied: None, release },
                })
            }
            (Outcome::Rejected { reason }, Some((from, originals))) => {
                tracing::info!(%reason, from, "a relayed message was refused by Telegram");
                Ok(Decision::Forward {
                    outputs: undelivered(&report.idempotency_key, from, &originals),
                    commit: Delivered {
                        copied: None,
                        release: Some(release(Vec::new())),
                    },
                })
            }
            _ => Ok(Decision::Drop { reason: "nothing_to_do" }),
        }
    }

    async fn commit(&self, done: Delivered) -> Result<(), StageError> {
        if let Some(c) = done.copied {
            super::ids::record(&self.redis, c.from, &c.originals, c.to, &c.copies).await?;
        }
        if let Some(r) = done.release {
            self.outbox.reported(r.recipient, &r.key, &r.delivered, &r.again).await?;
        }
        Ok(())
    }
}
