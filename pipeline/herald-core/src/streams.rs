//! The core's streams and buckets, and the bot's consumers: what every process that
//! reads or writes Telegram traffic sets up and checks (`pipeline setup`, `bot`).

use std::time::Duration;

use herald_runtime::setup::{BucketDef, StreamDef};
use herald_runtime::{Class, StageConfig};
use herald_schemas::subjects;

/// The core's streams: raw updates in (UPDATES), updates routed to products (COMMANDS),
/// messages out (OUTBOUND), dead letters (DLQ). Every process that reads or writes Telegram traffic needs them.
pub fn core_streams() -> Vec<StreamDef> {
    vec![
        StreamDef {
            file: "core.updates.json",
            json: include_str!("../../../nats/streams/core.updates.json"),
        },
        StreamDef {
            file: "core.commands.json",
            json: include_str!("../../../nats/streams/core.commands.json"),
        },
        StreamDef {
            file: "core.outbound.json",
            json: include_str!("../../../nats/streams/core.outbound.json"),
        },
        StreamDef {
            file: "core.dlq.json",
            json: include_str!("../../../nats/streams/core.dlq.json"),
        },
    ]
}

/// The core's buckets: users (the core user record, kept for good), paid access (kept
/// for good; money: losing it loses what a user paid for), sessions (a day) and the
/// bot's delivered idempotency keys (7 days, longer than any redelivery), and the
/// processes' heartbeats (30 s).
pub fn core_buckets() -> Vec<BucketDef> {
    vec![
        BucketDef::forever(subjects::USERS_BUCKET),
        BucketDef::forever(subjects::ACCESS_BUCKET).money(),
        // a session nobody ended (a crash, a product removed) lapses after a day
        BucketDef::expiring(subjects::SESSIONS_BUCKET, Duration::from_secs(24 * 3600)),
        BucketDef::expiring(subjects::DELIVERED_BUCKET, Duration::from_secs(7 * 24 * 3600)),
        // each process's heartbeat; a process gone for 30 s is no longer listed
        BucketDef::expiring(herald_runtime::processes::BUCKET, herald_runtime::processes::BUCKET_MAX_AGE),
    ]
}

/// The core's events buckets: what the bot, which holds no money, sets up and uses.
pub fn core_events_buckets() -> Vec<BucketDef> {
    core_buckets().into_iter().filter(|b| b.class == Class::Events).collect()
}

/// The bot's outbound consumers, with their default in-flight bounds: `bot_replies`
/// (interactive, `herald.out.reply.>`, 64 at once) and `bot_notify` (bulk,
/// `herald.out.notify.>`, 512 at once, most waiting on per-chat limits). A 15 s
/// `ack_wait`: a crashed bot's messages come back quickly, a live one sends progress
/// acks while a message waits on the limits. Here, not in the bot, so `pipeline setup`
/// checks them too.
pub fn bot_consumers() -> [StageConfig; 2] {
    let consumer = |durable: &str, filter: &str, in_flight: usize| StageConfig {
        ack_wait: Duration::from_secs(15),
        max_in_flight: in_flight,
        // OUTBOUND subjects end with the chat: a chat's messages go out in the order
        // they were published, and one held by a 429 holds the ones behind it
        in_order_per_sender: true,
        ..StageConfig::new(subjects::OUTBOUND_STREAM, durable, vec![filter.into()])
    };
    [
        consumer("bot_replies", subjects::REPLY_ALL, 64),
        consumer("bot_notify", subjects::NOTIFY_ALL, 512),
    ]
}
