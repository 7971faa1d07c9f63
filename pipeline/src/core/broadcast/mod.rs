//! Broadcasts of any message (seed 001: "bulk messaging, media upload"): an admin sends
//! the bot anything (text, photo, video, document, an album) and replies to it with
//! `/admin broadcast [segment]`.
//!
//! ```text
//! /admin broadcast SEG (a reply) ─ desk ─> draft job.<id>, recipients (object store),
//!                                          a preview (the copy itself) and Send/Cancel
//! Send (bc:go:<id>) ─ desk ─> job sending; the confirmation becomes the progress message
//! broadcast_sender (task, every second) ─> the next batch of copies on
//!     herald.out.notify.<chat> (copyMessage / copyMessages), key bc.<id>.<chat>, each
//!     reporting to herald.cmd.desk.report.<id>; the cursor moves after the batch is
//!     stored; waits while the bot's bulk queue is long (backpressure); edits the
//!     progress message as the counts change
//! report ─ desk ─> o.<id>.<sent|blocked|failed>.<chat> (created once)
//! /admin broadcast status · cancel [ID]
//! ```
//!
//! Nothing twice: a copy's key is `bc.<id>.<chat>`; a batch published again after a
//! crash (before its cursor moved) is dropped by OUTBOUND's duplicate window and, past
//! it, by the bot's delivered record. Nothing skipped: the cursor moves only after the
//! batch is stored. Segments are declared by the products ([`Product::segments`]); the
//! core's own is `all`.

pub mod sender;
pub mod store;

use std::collections::BTreeSet;

use herald_schemas::{escape_html, Button, Content};

use super::product::{Product, StatsEnv};

pub use store::{Broadcasts, Job, State};

/// The callback prefix of the broadcast buttons (`bc:go:<id>`, `bc:no:<id>`).
pub const CALLBACK_PREFIX: &str = "bc:";

/// Copies published per batch, at most.
pub const BATCH: usize = 200;

/// The bot's bulk queue (the `bot_notify` consumer's pending messages) above which the
/// sender waits: a broadcast never buries signals' notifications behind it.
pub const BACKLOG_LIMIT: u64 = 2_000;

/// The core's segment: every user who has not blocked the bot and is not locked.
pub const ALL: &str = "all";

/// What an admin asked.
#[derive(Debug, Clone, PartialEq)]
pub enum Ask {
    /// A reply to the message to send, to `segment`.
    Draft {
        segment: String,
    },
    Status,
    /// Cancel broadcast `id`, or every one sending.
    Cancel {
        id: Option<i64>,
    },
}

/// Parses `/admin broadcast …` (after `broadcast`).
///
/// ```
/// use herald_pipeline::core::broadcast::{parse, Ask};
/// assert_eq!(parse(""), Ask::Draft { segment: "all".into() });
/// assert_eq!(parse(" Signals "), Ask::Draft { segment: "signals".into() });
/// assert_eq!(parse("status"), Ask::Status);
/// assert_eq!(parse("cancel 17"), Ask::Cancel { id: Some(17) });
/// ```
pub fn parse(args: &str) -> Ask {
    let mut words = args.split_whitespace();
    match words.next().map(str::to_ascii_lowercase).as_deref() {
        None => Ask::Draft { segment: ALL.into() },
        Some("status") => Ask::Status,
        Some("cancel") => Ask::Cancel {
            id: words.next().and_then(|w| w.parse().ok()),
        },
        Some(segment) => Ask::Draft { segment: segment.into() },
    }
}

/// The usage, with the segments the running products declare.
pub fn usage(products: &[std::sync::Arc<dyn Product>]) -> String {
    let mut segments = vec![format!("<code>{ALL}</code> (everyone reachable)")];
    for p in products {
        for (name, about) in p.segments() {
            segments.push(format!("<code>{name}</code> ({})", escape_html(about)));
        }
    }
    format!(
        "<b>/admin broadcast [SEGMENT]</b> as a reply to the message to send (any kind, an album too): \
         a preview, then Send. <b>/admin broadcast status</b> · <b>/admin broadcast cancel [ID]</b>\nSegments: {}",
        segments.join(", ")
    )
}

/// The users of `segment` (ids), from the core (`all`) or the product declaring it;
/// `None` when no running product declares it.
///
/// Errors: a store is unreachable.
pub async fn members(products: &[std::sync::Arc<dyn Product>], segment: &str, env: &StatsEnv) -> anyhow::Result<Option<BTreeSet<i64>>> {
    if segment == ALL {
        let users = env.js.get_key_value(herald_schemas::subjects::USERS_BUCKET).await?;
        return Ok(Some(herald_core::users::all(&users).await?.iter().map(|u| u.user_id).collect()));
    }
    for p in products {
        if p.segments().iter().any(|(name, _)| *name == segment) {
            return Ok(Some(p.segment(segment, env).await?.into_iter().collect()));
        }
    }
    Ok(None)
}

/// The recipients' chats: the members who are reachable (not blocked, not locked), by
/// user id.
///
/// Errors: KV unreachable.
pub async fn recipients(env: &StatsEnv, members: &BTreeSet<i64>) -> anyhow::Result<Vec<i64>> {
    let users = env.js.get_key_value(herald_schemas::subjects::USERS_BUCKET).await?;
    let mut all = herald_core::users::all(&users).await?;
    all.sort_by_key(|u| u.user_id);
    Ok(all
        .into_iter()
        .filter(|u| u.reachable() && members.contains(&u.user_id))
        .map(|u| u.chat_id)
        .collect())
}

/// The copy of the admin's message (`message_ids`: one, or an album's) for `chat`.
pub fn copy(from_chat: i64, message_ids: &[i32]) -> Content {
    match message_ids {
        [one] => Content::copy(from_chat, *one, None, false),
        many => Content::copy_many(from_chat, many.to_vec(), false).unwrap_or_else(|_| Content::copy(from_chat, many[0], None, false)),
    }
}

/// The confirmation under the preview.
pub fn confirmation(job: &Job) -> (String, Vec<Vec<Button>>) {
    let text = format!(
        "📣 Broadcast {}: the message above goes to <b>{}</b> users (segment <code>{}</code>), under the bot's limits.",
        job.id,
        job.total,
        escape_html(&job.segment)
    );
    let buttons = vec![vec![
        Button::callback(format!("✅ Send to {}", job.total), format!("bc:go:{}", job.id)),
        Button::callback("✖ Cancel", format!("bc:no:{}", job.id)),
    ]];
    (text, buttons)
}

/// How far a broadcast got.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Progress {
    pub sent: u64,
    pub blocked: u64,
    pub failed: u64,
}

impl Progress {
    /// Answered by Telegram, whatever the outcome.
    pub fn done(&self) -> u64 {
        self.sent + self.blocked + self.failed
    }
}

/// The progress line: sent, blocked, failed, left and an ETA at the rate so far.
///
/// ```
/// use herald_pipeline::core::broadcast::{progress_text, Job, Progress, State};
/// let job = Job { id: 7, total: 100, started_ms: Some(0), state: State::Sending, ..Job::default() };
/// let p = Progress { sent: 40, blocked: 5, failed: 5 };
/// assert_eq!(progress_text(&job, &p, 10_000), "📣 Broadcast 7: sending. Sent 40 · blocked 5 · failed 5 · left 50 · about 10 s to go");
/// ```
pub fn progress_text(job: &Job, p: &Progress, now_ms: u64) -> String {
    let left = job.total.saturating_sub(p.done());
    let state = match job.state {
        State::Draft => "waiting for Send",
        State::Sending if left == 0 => "done",
        State::Sending => "sending",
        State::Cancelled => "cancelled",
    };
    let mut text = format!(
        "📣 Broadcast {}: {state}. Sent {} · blocked {} · failed {} · left {left}",
        job.id, p.sent, p.blocked, p.failed
    );
    if let (State::Sending, Some(start)) = (job.state, job.started_ms) {
        let elapsed = now_ms.saturating_sub(start).max(1);
        if left > 0 && p.done() > 0 {
            let eta_ms = elapsed * left / p.done();
            text.push_str(&format!(" · about {} to go", super::desk::duration(eta_ms)));
        }
    }
    if job.state == State::Cancelled {
        text.push_str(&format!(" (not sent: {})", job.total.saturating_sub(job.cursor)));
    }
    text
}

/// The user ids ending the Redis keys that start with `prefix` (`herald:chat:chats:`),
/// found by SCAN: a segment of a product that keeps its users in Redis.
///
/// Errors: no Redis, or Redis failed.
pub async fn users_in_keys(env: &StatsEnv, prefix: &str) -> anyhow::Result<Vec<i64>> {
    use redis::AsyncCommands;
    let mut redis = env.redis()?;
    let mut iter: redis::AsyncIter<String> = redis.scan_match(format!("{prefix}*")).await?;
    let mut out = Vec::new();
    while let Some(key) = iter.next_item().await {
        if let Some(id) = key?.strip_prefix(prefix).and_then(|id| id.parse().ok()) {
            out.push(id);
        }
    }
    Ok(out)
}
