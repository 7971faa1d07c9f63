//! Per-token state in Redis, shared by dedup and fan-out.
//!
//! Keys (hash-tagged by token so a Redis Cluster keeps them on one shard):
//! - `herald:tok:{<chain>:<token>}:callers`: SET of caller ids seen for the token
//! - `herald:tok:{<chain>:<token>}:status`: `accepted` | `rejected`
//! - `herald:tok:{<chain>:<token>}:sent`: SET of user ids already sent the token
//!
//! All three expire together: 1 hour while rejected, 14 days once accepted (defaults;
//! see [`crate::config::DedupArgs`]).

use std::time::Duration;

use redis::aio::ConnectionManager;

/// Whether any user was sent the token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Accepted,
    Rejected,
}

/// Adds a caller; starts or refreshes the rejected TTL unless the token is accepted
/// (never downgrades; an accepted token's keys keep the accepted TTL).
const RECORD_CALLER: &str = r#"
redis.call('SADD', KEYS[1], ARGV[1])
if redis.call('GET', KEYS[2]) == 'accepted' then
  local ttl = redis.call('PTTL', KEYS[2])
  if ttl > 0 then redis.call('PEXPIRE', KEYS[1], ttl) end
else
  redis.call('SET', KEYS[2], 'rejected', 'PX', ARGV[2])
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
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
    record_caller: redis::Script,
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
            record_caller: redis::Script::new(RECORD_CALLER),
            accept: redis::Script::new(ACCEPT),
        }
    }

    /// Caller ids seen for `token_key` (`<chain>:<token>`), unordered.
    pub async fn callers(&self, token_key: &str) -> redis::RedisResult<Vec<String>> {
        redis::cmd("SMEMBERS")
            .arg(key(token_key, "callers"))
            .query_async(&mut self.redis.clone())
            .await
    }

    /// The token's status, `None` if unknown or expired.
    pub async fn status(&self, token_key: &str) -> redis::RedisResult<Option<Status>> {
        let s: Option<String> = redis::cmd("GET")
            .arg(key(token_key, "status"))
            .query_async(&mut self.redis.clone())
            .await?;
        Ok(s.map(|s| {
            if s == "accepted" {
                Status::Accepted
            } else {
                Status::Rejected
            }
        }))
    }

    /// Remembers `caller_id` for the token (see [`RECORD_CALLER`]).
    pub async fn record_caller(&self, token_key: &str, caller_id: &str) -> redis::RedisResult<()> {
        self.record_caller
            .key(key(token_key, "callers"))
            .key(key(token_key, "status"))
            .arg(caller_id)
            .arg(self.rejected_ttl.as_millis() as u64)
            .invoke_async::<i64>(&mut self.redis.clone())
            .await
            .map(|_| ())
    }

    /// For each user, whether the token was already sent to them.
    pub async fn sent_to(
        &self,
        token_key: &str,
        user_ids: &[i64],
    ) -> redis::RedisResult<Vec<bool>> {
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
        inv.invoke_async::<i64>(&mut self.redis.clone())
            .await
            .map(|_| ())
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
