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

use herald_runtime::batch::Batcher;
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
///
/// The four calls of the signal path (claim, record seen, sent to, accept) each go
/// through a [`Batcher`]: the calls that stages make while a batch is out go together
/// as one Redis pipeline, one round trip, instead of one each (issue 25). Each call is
/// still its own script run on its own token's keys, so the atomicity per token and
/// the hash tags for a Redis Cluster are as before.
#[derive(Clone)]
pub struct TokenState {
    redis: ConnectionManager,
    claims: Batcher<Claim, Vec<String>>,
    seen: Batcher<String, ()>,
    sent: Batcher<(String, Vec<i64>), Vec<bool>>,
    accepts: Batcher<(String, Vec<i64>), ()>,
}

/// One claim: token key, caller id, the call's message id.
type Claim = (String, String, String);

/// Calls batched at most at once: a stage's default in-flight bound, twice.
const BATCH_MAX: usize = 512;

fn key(token_key: &str, part: &str) -> String {
    format!("herald:tok:{{{token_key}}}:{part}")
}

/// `EVALSHA` of `script` on `keys` and `args`.
fn evalsha(script: &redis::Script, keys: &[String], args: impl redis::ToRedisArgs) -> redis::Cmd {
    let mut cmd = redis::cmd("EVALSHA");
    cmd.arg(script.get_hash()).arg(keys.len()).arg(keys).arg(args);
    cmd
}

/// Runs `cmds` as one pipeline. If Redis lost the scripts (a restart, `SCRIPT FLUSH`:
/// `NOSCRIPT`, and then no command ran), loads `scripts` and runs the pipeline again.
async fn pipelined<T: redis::FromRedisValue>(redis: &ConnectionManager, scripts: &[&redis::Script], cmds: Vec<redis::Cmd>) -> anyhow::Result<Vec<T>> {
    let mut pipe = redis::pipe();
    for cmd in cmds {
        pipe.add_command(cmd);
    }
    let mut con = redis.clone();
    match pipe.query_async(&mut con).await {
        Err(e) if e.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::NoScript) => {
            for script in scripts {
                script.load_async(&mut con).await?;
            }
            Ok(pipe.query_async(&mut con).await?)
        }
        result => Ok(result?),
    }
}

impl TokenState {
    /// Token state on `redis`; spawns the batchers' tasks (call it inside a tokio runtime).
    pub fn new(redis: ConnectionManager, accepted_ttl: Duration, rejected_ttl: Duration) -> Self {
        let (accepted_ms, rejected_ms) = (accepted_ttl.as_millis() as u64, rejected_ttl.as_millis() as u64);
        let r = redis.clone();
        let script = redis::Script::new(CLAIM);
        let claims = Batcher::new("token_claim", BATCH_MAX, move |batch: Vec<Claim>| {
            let (redis, script) = (r.clone(), script.clone());
            async move {
                let cmds = batch
                    .iter()
                    .map(|(token, caller, msg_id)| evalsha(&script, &[key(token, "callers")], (caller, msg_id, rejected_ms)))
                    .collect();
                pipelined(&redis, &[&script], cmds).await
            }
        });
        let r = redis.clone();
        let script = redis::Script::new(RECORD_SEEN);
        let seen = Batcher::new("token_seen", BATCH_MAX, move |batch: Vec<String>| {
            let (redis, script) = (r.clone(), script.clone());
            async move {
                let cmds = batch
                    .iter()
                    .map(|token| evalsha(&script, &[key(token, "callers"), key(token, "status")], rejected_ms))
                    .collect();
                let _: Vec<i64> = pipelined(&redis, &[&script], cmds).await?;
                Ok(vec![(); batch.len()])
            }
        });
        let r = redis.clone();
        let sent = Batcher::new("token_sent", BATCH_MAX, move |batch: Vec<(String, Vec<i64>)>| {
            let redis = r.clone();
            async move {
                let cmds = batch
                    .iter()
                    .map(|(token, users)| {
                        let mut cmd = redis::cmd("SMISMEMBER");
                        cmd.arg(key(token, "sent")).arg(users);
                        cmd
                    })
                    .collect();
                pipelined(&redis, &[], cmds).await
            }
        });
        let r = redis.clone();
        let script = redis::Script::new(ACCEPT);
        let accepts = Batcher::new("token_accept", BATCH_MAX, move |batch: Vec<(String, Vec<i64>)>| {
            let (redis, script) = (r.clone(), script.clone());
            async move {
                let cmds = batch
                    .iter()
                    .map(|(token, users)| {
                        let keys = [key(token, "callers"), key(token, "status"), key(token, "sent")];
                        evalsha(&script, &keys, (accepted_ms, users))
                    })
                    .collect();
                let _: Vec<i64> = pipelined(&redis, &[&script], cmds).await?;
                Ok(vec![(); batch.len()])
            }
        });
        TokenState {
            redis,
            claims,
            seen,
            sent,
            accepts,
        }
    }

    /// Claims `caller_id` for the call `msg_id` on `token_key` (`<chain>:<token>`); see
    /// [`CLAIM`]. Returns every caller id (unordered) if new, empty if a duplicate.
    ///
    /// Errors: Redis failed (the batch's error).
    pub async fn claim(&self, token_key: &str, caller_id: &str, msg_id: &str) -> anyhow::Result<Vec<String>> {
        self.claims.call((token_key.to_string(), caller_id.to_string(), msg_id.to_string())).await
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
    ///
    /// Errors: Redis failed.
    pub async fn record_seen(&self, token_key: &str) -> anyhow::Result<()> {
        self.seen.call(token_key.to_string()).await
    }

    /// For each user, whether the token was already sent to them.
    ///
    /// Errors: Redis failed.
    pub async fn sent_to(&self, token_key: &str, user_ids: &[i64]) -> anyhow::Result<Vec<bool>> {
        if user_ids.is_empty() {
            return Ok(Vec::new());
        }
        self.sent.call((token_key.to_string(), user_ids.to_vec())).await
    }

    /// Marks `user_ids` as sent and upgrades the token to accepted (14-day TTL).
    ///
    /// Errors: Redis failed.
    pub async fn accept(&self, token_key: &str, user_ids: &[i64]) -> anyhow::Result<()> {
        self.accepts.call((token_key.to_string(), user_ids.to_vec())).await
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
