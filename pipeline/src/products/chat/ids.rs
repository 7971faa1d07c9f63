//! The message-id map: a message in one partner's chat and its copy in the other's,
//! both ways, for a day, so a reply lands on the partner's copy and an edit edits it.
//! Written from the bot's delivery reports (a copy's id is known once Telegram made
//! it).

use redis::aio::ConnectionManager;

const TTL_SECS: u64 = 86_400;

fn key(chat: i64, message: i32) -> String {
    format!("herald:chat:map:{chat}:{message}")
}

/// Records that `(from, originals[i])` was copied to `(to, copies[i])`, both ways.
/// Idempotent.
///
/// Errors: Redis failed.
pub async fn record(redis: &ConnectionManager, from: i64, originals: &[i32], to: i64, copies: &[i32]) -> redis::RedisResult<()> {
    let mut pipe = redis::pipe();
    for (o, c) in originals.iter().zip(copies) {
        pipe.cmd("SET").arg(key(from, *o)).arg(format!("{to}:{c}")).arg("EX").arg(TTL_SECS).ignore();
        pipe.cmd("SET").arg(key(to, *c)).arg(format!("{from}:{o}")).arg("EX").arg(TTL_SECS).ignore();
    }
    pipe.query_async(&mut redis.clone()).await
}

/// The counterpart of message `message` of chat `chat`: the other chat and its id.
///
/// Errors: Redis failed.
pub async fn counterpart(redis: &ConnectionManager, chat: i64, message: i32) -> redis::RedisResult<Option<(i64, i32)>> {
    let v: Option<String> = redis::cmd("GET").arg(key(chat, message)).query_async(&mut redis.clone()).await?;
    Ok(v.and_then(|v| {
        let (c, m) = v.split_once(':')?;
        Some((c.parse().ok()?, m.parse().ok()?))
    }))
}
