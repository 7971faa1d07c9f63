//! The chat's periodic work: the outbox task sends what became sendable (paced or
//! album-complete batches, batches a crash left in flight); the sweeper ends idle chats
//! and expires old queue entries, telling those concerned.
//!
//! Every instance may run both: the state changes are atomic and keyed, and each notice
//! has one idempotency key whoever publishes it.

use std::time::Duration;

use herald_schemas::{Content, OutboundMessage};

use super::commands as say;
use super::outbox::Outbox;
use super::state::ChatState;
use crate::core::reply::notice;

/// Sends every due outbox once.
///
/// Errors: Redis or NATS failed (the next tick tries again).
pub async fn flush_due(outbox: &Outbox, js: &herald_runtime::Js) -> anyhow::Result<()> {
    for recipient in outbox.due().await? {
        outbox.flush(js, recipient).await?;
    }
    Ok(())
}

/// Ends chats idle for `timeout` and expires queue entries older than the queue TTL.
///
/// Errors: Redis or NATS failed (the next tick tries again).
pub async fn sweep(state: &ChatState, js: &herald_runtime::Js, timeout: Duration) -> anyhow::Result<()> {
    let minutes = timeout.as_secs().div_ceil(60);
    for chat in state.idle_chats(timeout).await? {
        if let Some(ended) = state.end_chat(chat, "timeout", &format!("timeout:{chat}")).await? {
            metrics::counter!(super::metrics::TIMEOUTS.name).increment(1);
            for u in ended.users {
                publish(js, notice(format!("chat:end:{chat}:{u}"), u, Content::text(say::timed_out(minutes)))).await?;
            }
        }
    }
    let counts = state.counts().await?;
    metrics::gauge!(super::metrics::ACTIVE_PAIRS.name).set(counts.pairs as f64);
    metrics::gauge!(super::metrics::QUEUE_LENGTH.name).set(counts.queued as f64);
    let ttl_minutes = state.queue_ttl.as_secs().div_ceil(60);
    for (user, joined) in state.stale_entries().await? {
        if state.expire(user, joined).await? {
            let told = notice(format!("chat:expired:{user}:{joined}"), user, Content::text(say::nobody_found(ttl_minutes)));
            publish(js, told).await?;
        }
    }
    Ok(())
}

async fn publish(js: &herald_runtime::Js, m: OutboundMessage) -> anyhow::Result<()> {
    let subject = herald_schemas::subjects::reply(m.chat_id);
    js.publish_with_id(subject, &m.idempotency_key, herald_schemas::encode(&m).into())
        .await?
        .await?;
    Ok(())
}
