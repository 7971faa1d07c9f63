//! The relay's outbox: what the relay hands over for a recipient waits here, in Redis,
//! until it may be sent. Telegram allows about one message per second per chat, so a
//! burst toward one partner is batched: consecutive messages of one sender go out as
//! one `copyMessages` (an album stays an album), never dropped. An album waits until
//! its parts stop arriving.
//!
//! **Order.** One batch per recipient is in flight until the bot reports on it
//! ([`Outbox::reported`], from the delivery stage): the next batch cannot overtake one
//! that Telegram answered with a 429, so a chat's messages reach the partner in the
//! order they were sent. The next batch goes a pace after the report.
//!
//! Crash-safe: a batch taken from the outbox is kept as in flight until its report;
//! a flush after a crash, or once the report is [`Timing::report_wait`] overdue,
//! publishes the same batch again under the same idempotency key, which the stream's
//! dedup window and the bot's delivered keys drop (a delivered key republishes its
//! report).

use std::time::Duration;

use herald_schemas::{subjects, Content, OutboundMessage, Priority};
use redis::aio::ConnectionManager;
use serde::{Deserialize, Serialize};

/// One message waiting: who sent it (their chat), its id there, the partner's message
/// it replies to, its album, when it arrived (ms), whether it goes alone.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Item {
    /// The sender's chat (a string: Redis' JSON would round a large number).
    pub f: String,
    pub m: i32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub r: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub g: Option<String>,
    pub t: String,
    /// Sent alone, never in a batch: a kind Telegram may refuse to copy (a poll), which
    /// `copyMessages` would skip without a word; alone, a refusal is reported.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub s: bool,
    /// Sent again alone, after a `copyMessages` that skipped part of its batch (its own
    /// idempotency key; an album part no longer waits for its album).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub a: bool,
    /// The chat it belongs to (a string, as `f`): its evidence once delivered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n: Option<String>,
}

/// A batch in flight: its idempotency key (made by the script) and its messages.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Batch {
    pub key: String,
    pub items: Vec<Item>,
}

/// How the outbox waits.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    /// An album is sent once no part came for this long.
    pub album_wait: Duration,
    /// Spacing of sends to one chat, from the report on the previous one.
    pub pace: Duration,
    /// A batch whose report has not come after this long is published again (same key).
    pub report_wait: Duration,
}

/// The outbox of every recipient.
#[derive(Clone)]
pub struct Outbox {
    redis: ConnectionManager,
    script: redis::Script,
    pub timing: Timing,
    /// Relayed with `protect_content`.
    pub protect_content: bool,
}

impl Outbox {
    /// The outbox in `redis`.
    pub fn new(redis: ConnectionManager, timing: Timing, protect_content: bool) -> Self {
        Outbox {
            redis,
            script: redis::Script::new(include_str!("outbox.lua")),
            timing,
            protect_content,
        }
    }

    /// Puts `item` in `recipient`'s outbox, once per message: a redelivery finds it
    /// done. Whether it was new.
    ///
    /// Errors: Redis failed.
    pub async fn enqueue(&self, item: &Item, recipient: i64, chat: u64) -> redis::RedisResult<bool> {
        let json = serde_json::to_string(item).expect("an item serialises");
        let new: i64 = self
            .script
            .prepare_invoke()
            .arg("enqueue")
            .arg(&item.f)
            .arg(item.m)
            .arg(recipient)
            .arg(json)
            .arg(chat)
            .arg(herald_schemas::now_ms())
            .invoke_async(&mut self.redis.clone())
            .await?;
        Ok(new == 1)
    }

    /// Sends what `recipient` may get now: takes the next batch (or the one in flight,
    /// if a crash left it unpublished or its report is overdue), publishes it to
    /// OUTBOUND, and marks it sent (waiting for its report). Whether a batch went out.
    ///
    /// Errors: Redis or the publish failed (the batch stays in flight; the next flush
    /// sends it).
    pub async fn flush(&self, js: &herald_runtime::Js, recipient: i64) -> anyhow::Result<bool> {
        let t = self.timing;
        let taken: Option<String> = self
            .script
            .prepare_invoke()
            .arg("take")
            .arg(recipient)
            .arg(herald_schemas::now_ms())
            .arg(t.album_wait.as_millis() as u64)
            .arg(t.pace.as_millis() as u64)
            .arg(t.report_wait.as_millis() as u64)
            .invoke_async(&mut self.redis.clone())
            .await?;
        let Some(json) = taken else {
            return Ok(false);
        };
        let batch: Batch = serde_json::from_str(&json)?;
        if let Some(out) = self.message(&batch, recipient) {
            js.publish_with_id(subjects::reply(recipient), &out.idempotency_key, herald_schemas::encode(&out).into())
                .await?
                .await?;
            metrics::counter!(super::metrics::RELAYED.name).increment(batch.items.len() as u64);
        }
        let _: i64 = self
            .script
            .prepare_invoke()
            .arg("sent")
            .arg(recipient)
            .arg(t.report_wait.as_millis() as u64)
            .invoke_async(&mut self.redis.clone())
            .await?;
        Ok(true)
    }

    /// The bot answered on batch `key` to `recipient`: `delivered` (sender, message) of
    /// it reached the partner and become the chat's evidence; `again` goes back to the
    /// front of the outbox; the next batch may go a pace from now. Once per key, and
    /// only for the batch in flight (a stale report changes nothing). Whether it applied.
    ///
    /// Errors: Redis failed.
    pub async fn reported(&self, recipient: i64, key: &str, delivered: &[(i64, i32)], again: &[Item]) -> redis::RedisResult<bool> {
        let delivered: Vec<String> = delivered.iter().map(|(f, m)| format!("{f}:{m}")).collect();
        let applied: i64 = self
            .script
            .prepare_invoke()
            .arg("reported")
            .arg(recipient)
            .arg(key)
            .arg(herald_schemas::now_ms())
            .arg(self.timing.pace.as_millis() as u64)
            .arg(serde_json::to_string(&delivered).expect("strings serialise"))
            .arg(serde_json::to_string(again).expect("items serialise"))
            .invoke_async(&mut self.redis.clone())
            .await?;
        Ok(applied == 1)
    }

    /// The batch in flight to `recipient`, if any.
    ///
    /// Errors: Redis failed.
    pub async fn in_flight(&self, recipient: i64) -> anyhow::Result<Option<Batch>> {
        let raw: Option<String> = redis::cmd("GET")
            .arg(format!("herald:chat:inflight:{recipient}"))
            .query_async(&mut self.redis.clone())
            .await?;
        Ok(raw.map(|r| serde_json::from_str(&r)).transpose()?)
    }

    /// The outbound copy of `batch` for `recipient`, with a delivery report to the
    /// sender's subject (for the message-id map, a blocked partner, a refused copy).
    pub fn message(&self, batch: &Batch, recipient: i64) -> Option<OutboundMessage> {
        let first = batch.items.first()?;
        let from: i64 = first.f.parse().ok()?;
        let content = match batch.items.as_slice() {
            [one] => Content::copy(from, one.m, one.r, self.protect_content),
            many => Content::copy_many(from, many.iter().map(|i| i.m).collect(), self.protect_content).ok()?,
        };
        let origin = first.t.parse().unwrap_or_else(|_| herald_schemas::now_ms());
        let out = OutboundMessage::new(batch.key.clone(), recipient, content, Priority::Reply, origin);
        Some(out.reported_to(subjects::chat_delivery(from)))
    }

    /// Recipients whose outbox may be sendable now (at most 200).
    ///
    /// Errors: Redis failed.
    pub async fn due(&self) -> redis::RedisResult<Vec<i64>> {
        redis::cmd("ZRANGEBYSCORE")
            .arg("herald:chat:due")
            .arg("-inf")
            .arg(herald_schemas::now_ms())
            .arg("LIMIT")
            .arg(0)
            .arg(200)
            .query_async(&mut self.redis.clone())
            .await
    }
}

