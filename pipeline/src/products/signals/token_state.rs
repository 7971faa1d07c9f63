//! Per-token state in Redis, shared by dedup and fan-out.
//!
//! Keys (hash-tagged by token so a Redis Cluster keeps them on one shard):
//! - `herald:tok:{<chain>:<token>}:callers`: HASH caller id -> message id of the call that
//!   introduced it (the claim; a redelivery of that same call is let through again)
//! - `herald:tok:{<chain>:<token>}:status`: `accepted` | `rejected`
//! - `herald:tok:{<chain>:<token>}:sent`: SET of user ids already sent the token
//!
//! All three expire together: 1 hour while rejected, 14 days once accepted (defaults;
//! see [`super::config::DedupArgs`]).

use std::time::Duration;

use redis::aio::ConnectionManager;

/// Whether any user was sent the token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Accepted,
    Rejected,
}

/// Claims a caller for a call, atomically: returns every caller id if the caller is new
/// (or this very call claimed it before: a redelivery), an empty list if another call
/// of the same caller was seen. A fresh key gets the rejected TTL so a crash before
/// [`RECORD_SEEN`] cannot leave it forever.
const CLAIM: &str = r#"
local owner = redis.call('HGET', KEYS[1], ARGV[1])
if owner and owner ~= ARGV[2] then return {} end
if not owner then redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) end
if redis.call('PTTL', KEYS[1]) < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[3]) end
return redis.call('HKEYS', KEYS[1])
"#;

/// After the signal is acknowledged: starts or refreshes the rejected TTL unless the
/// token is accepted (never downgrades; an accepted token's keys keep the accepted TTL).
const RECORD_SEEN: &str = r#"
if redis.call('GET', KEYS[2]) == 'accepted' then
  local ttl = redis.call('PTTL', KEYS[2])
  if ttl > 0 then redis.call('PEXPIRE', KEYS[1], ttl) end
else
  redis.call('SET', KEYS[2], 'rejected', 'PX', ARGV[1])
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
end
return 1
"#;

/// Records users as sent and upgrades the token to accepted, atomically.
const ACCEPT: &str = r#"
for i = 2, #ARGV do redis.call('SADD', KEYS[3], ARGV[i]) end
redis.call('SET', KEYS[2], 'accepted', 'PX', ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[1])
redis.call('PEXPIRE', KEYS[3], ARGV[1])
return 1
"#;

/// Redis-backed token state.
#[derive(Clone)]
pub struct TokenState {
    redis: ConnectionManager,
    accepted_ttl: Duration,
    rejected_ttl: Duration,
    claim: redis::Script,
    record_seen: redis::Script,
    accept: redis::Script,
}

fn key(token_key: &str, part: &str) -> String {
    format!("herald:tok:{{{token_key}}}:{part}")
}

impl TokenState {
    pub fn new(redis: ConnectionManager, accepted_ttl: Duration, rejected_ttl: Duration) -> Self {
        TokenState {
            redis,
            accepted_ttl,
            rejected_ttl,
            claim: redis::Script::new(CLAIM),
            record_seen: redis::Script::new(RECORD_SEEN),
            accept: redis::Script::new(ACCEPT),
        }
    }

    /// Claims `caller_id` for the call `msg_id` on `token_key` (`<chain>:<token>`); see
    /// [`CLAIM`]. Returns every caller id (unordered) if new, empty if a duplicate.
    pub async fn claim(&self, token_key: &str, caller_id: &str, msg_id: &str) -> redis::RedisResult<Vec<String>> {
        self.claim
            .key(key(token_key, "callers"))
            .arg(caller_id)
            .arg(msg_id)
            .arg(self.rejected_ttl.as_millis() as u64)
            .invoke_async(&mut self.redis.clone())
            .await
    }

    /// The token's status, `None` if unknown or expired.
    pub async fn status(&self, token_key: &str) -> redis::RedisResult<Option<Status>> {
        let s: Option<String> = redis::cmd("GET")
            .arg(key(token_key, "status"))
            .query_async(&mut self.redis.clone())
            .await?;
        Ok(s.map(|s| if s == "accepted" { Status::Accepted } else { Status::Rejected }))
    }

    /// Records that the token's signal is out (see [`RECORD_SEEN`]).
    pub async fn record_seen(&self, token_key: &str) -> redis::RedisResult<()> {
        self.record_seen
            .key(key(token_key, "callers"))
            .key(key(token_key, "status"))
            .arg(self.rejected_ttl.as_millis() as u64)
            .invoke_async::<i64>(&mut self.redis.clone())
            .await
            .map(|_| ())
    }

    /// For each user, whether the token was already sent to them.
    pub async fn sent_to(&self, token_key: &str, user_ids: &[i64]) -> redis::RedisResult<Vec<bool>> {
        if user_ids.is_empty() {
            return Ok(Vec::new());
        }
        redis::cmd("SMISMEMBER")
            .arg(key(token_key, "sent"))
            .arg(user_ids)
            .query_async(&mut self.redis.clone())
            .await
    }

    /// Marks `user_ids` as sent and upgrades the token to accepted (14-day TTL).
    pub async fn accept(&self, token_key: &str, user_ids: &[i64]) -> redis::RedisResult<()> {
        let mut inv = self.accept.prepare_invoke();
        inv.key(key(token_key, "callers"))
            .key(key(token_key, "status"))
            .key(key(token_key, "sent"));
        inv.arg(self.accepted_ttl.as_millis() as u64);
        for u in user_ids {
            inv.arg(*u);
        }
        inv.invoke_async::<i64>(&mut self.redis.clone()).await.map(|_| ())
    }

    /// Milliseconds until the token's state expires (`None` if it has none).
    pub async fn ttl_ms(&self, token_key: &str) -> redis::RedisResult<Option<u64>> {
        let t: i64 = redis::cmd("PTTL")
            .arg(key(token_key, "status"))
            .query_async(&mut self.redis.clone())
            .await?;
        Ok((t > 0).then_some(t as u64))
    }
}
