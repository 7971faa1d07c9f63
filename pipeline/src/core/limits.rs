//! Per-user inbound limits, per product, kept in Redis so every router instance shares
//! them: N updates per window; the first update over the limit gets one "slow down"
//! reply, the rest are dropped silently until the window has room again.
//!
//! The decision is a function of the update (its id and its Telegram `date`), stored
//! in a sorted set per (product, user): a redelivered update finds itself in the set
//! and gets the same verdict, so a redelivery changes nothing twice.

use std::collections::HashMap;
use std::time::Duration;

use redis::aio::ConnectionManager;

/// N updates per window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    pub updates: u32,
    pub window: Duration,
}

impl std::str::FromStr for Limit {
    type Err = String;

    /// `N/SECS`, e.g. `12/5`.
    fn from_str(s: &str) -> Result<Self, String> {
        let (n, secs) = s.split_once('/').ok_or_else(|| format!("limit {s:?}: expected N/SECS"))?;
        let updates = n.trim().parse().map_err(|e| format!("limit {s:?}: {e}"))?;
        let secs: u64 = secs.trim().parse().map_err(|e| format!("limit {s:?}: {e}"))?;
        if updates == 0 || secs == 0 {
            return Err(format!("limit {s:?}: both numbers must be positive"));
        }
        Ok(Limit {
            updates,
            window: Duration::from_secs(secs),
        })
    }
}

/// What to do with an update.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Allowed,
    /// The first update over the limit: tell the user once.
    SlowDown,
    /// Further updates over the limit: drop without a word.
    Silent,
}

/// `before` updates precede this one in its window: the verdict under `limit`.
///
/// ```
/// use herald_pipeline::core::limits::{verdict, Verdict};
/// assert_eq!(verdict(11, 12), Verdict::Allowed);
/// assert_eq!(verdict(12, 12), Verdict::SlowDown);
/// assert_eq!(verdict(13, 12), Verdict::Silent);
/// ```
pub fn verdict(before: u64, limit: u32) -> Verdict {
    match before.cmp(&(limit as u64)) {
        std::cmp::Ordering::Less => Verdict::Allowed,
        std::cmp::Ordering::Equal => Verdict::SlowDown,
        std::cmp::Ordering::Greater => Verdict::Silent,
    }
}

/// Adds the update to its (product, user) set, unless it is there already (a
/// redelivery keeps the time it was first counted at), and counts the updates before it
/// in its window (earlier time, or the same time and a lower update id). Entries stay
/// four windows, so a redelivery within them finds itself.
const SCRIPT: &str = r"
local id = tonumber(ARGV[1])
local window = tonumber(ARGV[3])
redis.call('ZADD', KEYS[1], 'NX', ARGV[2], ARGV[1])
local at = tonumber(redis.call('ZSCORE', KEYS[1], ARGV[1]))
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. (at - 4 * window))
redis.call('PEXPIRE', KEYS[1], 4 * window)
local before = redis.call('ZCOUNT', KEYS[1], '(' .. (at - window), '(' .. at)
for _, m in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], at, at)) do
  if tonumber(m) < id then before = before + 1 end
end
return before
";

/// The limits of every product, and the Redis they are counted in.
#[derive(Clone)]
pub struct InboundLimits {
    redis: ConnectionManager,
    limits: HashMap<&'static str, Limit>,
    script: redis::Script,
}

impl InboundLimits {
    /// `limits` by product name, counted in `redis`.
    pub fn new(redis: ConnectionManager, limits: HashMap<&'static str, Limit>) -> Self {
        InboundLimits {
            redis,
            limits,
            script: redis::Script::new(SCRIPT),
        }
    }

    /// The verdict for `update_id` of `user_id` to `product`, timed by the update's
    /// `date` (Unix seconds), else by when it was first counted (button presses carry no
    /// date). Products without a limit allow all.
    ///
    /// Errors: Redis failed (the update is retried).
    pub async fn check(&self, product: &str, user_id: i64, update_id: i64, date_secs: Option<u64>) -> redis::RedisResult<Verdict> {
        let Some(limit) = self.limits.get(product) else {
            return Ok(Verdict::Allowed);
        };
        let at_ms = date_secs.map_or_else(herald_schemas::now_ms, |d| d * 1000);
        let before: u64 = self
            .script
            .key(format!("herald:inbound:{product}:{user_id}"))
            .arg(update_id)
            .arg(at_ms)
            .arg(limit.window.as_millis() as u64)
            .invoke_async(&mut self.redis.clone())
            .await?;
        let v = verdict(before, limit.updates);
        if v != Verdict::Allowed {
            metrics::counter!(crate::core::metrics::INBOUND_LIMITED.name, "product" => product.to_string()).increment(1);
        }
        Ok(v)
    }
}
