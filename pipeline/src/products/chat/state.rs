//! The random chat's states (IDLE, IN_QUEUE, IN_CHAT) in Redis, changed only by one
//! Lua script (`state.lua`), so pairing is atomic across pipeline instances: join the
//! queue or pair, leave, next, report, end a chat for both, expire a queue entry, ban.
//!
//! Each call made for an update passes an op key (`upd:<update id>`): the script caches
//! its result under it for a day, so a redelivered update gets the same answer and
//! changes nothing twice.

use std::time::Duration;

use redis::aio::ConnectionManager;
use serde::Deserialize;

/// What an op did. Ids are Telegram user ids; `chat` numbers chats from 1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Paired with `partner` in chat `chat`.
    Paired { partner: i64, chat: u64, online: u64 },
    /// Waiting in the queue (`again`: was already).
    Queued { online: u64, again: bool },
    /// Already in chat `chat` with `partner`.
    InChat { partner: i64, chat: u64 },
    /// Chat `chat` with `partner` ended.
    Ended { partner: i64, chat: u64 },
    /// Left the queue.
    LeftQueue,
    /// Neither queued nor chatting.
    Idle,
    /// Banned: cannot join.
    Banned,
    /// `/chat` again within the cooldown: may search again in `wait_ms`.
    TooSoon { wait_ms: u64 },
    /// The queue holds its cap of live entries: not queued.
    QueueFull,
}

/// How many wait and chat now (the chat's gauges).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counts {
    /// Live queue entries (joined within the queue TTL).
    pub queued: u64,
    /// Chats going on (pairs).
    pub pairs: u64,
}

/// The script's raw answer.
#[derive(Debug, Deserialize, Default)]
struct Raw {
    s: String,
    p: Option<String>,
    n: Option<String>,
    a: Option<String>,
    b: Option<String>,
    online: Option<u64>,
    wait: Option<u64>,
    queued: Option<u64>,
    chatting: Option<u64>,
    ended_p: Option<String>,
    ended_n: Option<String>,
    id: Option<String>,
    ended: Option<String>,
    /// cjson writes an empty list as `{}`.
    #[serde(default)]
    evidence: serde_json::Value,
}

fn id(s: &Option<String>) -> Option<i64> {
    s.as_deref()?.parse().ok()
}

fn chat(s: &Option<String>) -> Option<u64> {
    s.as_deref()?.parse().ok()
}

impl Raw {
    fn change(&self) -> Change {
        match (self.s.as_str(), id(&self.p), chat(&self.n)) {
            ("paired", Some(partner), Some(chat)) => Change::Paired {
                partner,
                chat,
                online: self.online.unwrap_or_default(),
            },
            ("queued" | "still_queued", ..) => Change::Queued {
                online: self.online.unwrap_or_default(),
                again: self.s == "still_queued",
            },
            ("in_chat", Some(partner), Some(chat)) => Change::InChat { partner, chat },
            ("ended", Some(partner), Some(chat)) => Change::Ended { partner, chat },
            ("left_queue", ..) => Change::LeftQueue,
            ("banned", ..) => Change::Banned,
            ("too_soon", ..) => Change::TooSoon {
                wait_ms: self.wait.unwrap_or_default(),
            },
            ("queue_full", ..) => Change::QueueFull,
            _ => Change::Idle,
        }
    }
}

/// `/next`: the chat it ended (if any), then the join.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Next {
    pub ended: Option<(i64, u64)>,
    pub joined: Change,
}

/// A filed report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// Report number, from 1.
    pub id: u64,
    pub reported: i64,
    pub chat: u64,
    /// Whether the report ended the chat (else it was about the last one, ended).
    pub ended_chat: bool,
    /// The chat's last 50 messages that reached the partner, oldest first: (sender's
    /// chat, message id).
    pub evidence: Vec<(i64, i32)>,
}

/// A chat ended for both (timeout, a blocked partner, a ban).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ended {
    pub chat: u64,
    pub users: [i64; 2],
}

/// The states, in Redis.
#[derive(Clone)]
pub struct ChatState {
    redis: ConnectionManager,
    script: redis::Script,
    /// How long a queue entry may wait before it is not matched.
    pub queue_ttl: Duration,
    /// Live queue entries at most; a search beyond is refused (0 = no cap). 500 by
    /// default (seed 004's queue size).
    pub queue_cap: u64,
    /// A user's `/chat` searches at most once per this (zero = no limit); 60 s by
    /// default (seed 004's `ratelimit:chat_command`, 60 s TTL).
    pub search_cooldown: Duration,
}

/// Key prefix of every random-chat key in Redis.
pub const PREFIX: &str = "herald:chat:";

impl ChatState {
    /// The states in `redis`, queue entries expiring after `queue_ttl`.
    pub fn new(redis: ConnectionManager, queue_ttl: Duration) -> Self {
        ChatState {
            redis,
            script: redis::Script::new(include_str!("state.lua")),
            queue_ttl,
            queue_cap: 500,
            search_cooldown: Duration::ZERO,
        }
    }

    /// The same states with a queue cap and a `/chat` cooldown.
    pub fn with_limits(self, queue_cap: u64, search_cooldown: Duration) -> Self {
        ChatState {
            queue_cap,
            search_cooldown,
            ..self
        }
    }

    /// The Redis connection (shared with the relay's outbox).
    pub fn redis(&self) -> ConnectionManager {
        self.redis.clone()
    }

    async fn op(&self, op: &str, key: &str, args: &[String]) -> redis::RedisResult<Raw> {
        let mut call = self.script.prepare_invoke();
        call.arg(op).arg(herald_schemas::now_ms()).arg(key);
        for a in args {
            call.arg(a);
        }
        let json: String = call.invoke_async(&mut self.redis.clone()).await?;
        serde_json::from_str(&json)
            .map_err(|e| redis::RedisError::from(std::io::Error::other(format!("chat state script answer: {e}"))))
    }

    fn ttl_ms(&self) -> String {
        self.queue_ttl.as_millis().to_string()
    }

    /// Whether an op under `key` has run (its result is cached for a day): a redelivered
    /// update's op finds it so and changes nothing.
    ///
    /// Errors: Redis failed.
    pub async fn op_done(&self, key: &str) -> redis::RedisResult<bool> {
        redis::cmd("EXISTS")
            .arg(format!("{PREFIX}op:{key}"))
            .query_async(&mut self.redis.clone())
            .await
    }

    fn cap(&self) -> String {
        self.queue_cap.to_string()
    }

    /// Pairs `user` with the longest-waiting compatible user, or queues them (unless
    /// the queue is full).
    ///
    /// Errors: Redis failed.
    pub async fn join(&self, user: i64, key: &str) -> redis::RedisResult<Change> {
        Ok(self.op("join", key, &[user.to_string(), self.ttl_ms(), self.cap(), "0".into()]).await?.change())
    }

    /// `/chat`: [`ChatState::join`] at most once per `search_cooldown`
    /// ([`Change::TooSoon`] otherwise; a refused search does not count).
    ///
    /// Errors: Redis failed.
    pub async fn search(&self, user: i64, key: &str) -> redis::RedisResult<Change> {
        let cooldown = self.search_cooldown.as_millis().to_string();
        Ok(self.op("join", key, &[user.to_string(), self.ttl_ms(), self.cap(), cooldown]).await?.change())
    }

    /// Reports filed since `since_ms` (of the last 1,000 kept).
    ///
    /// Errors: Redis failed.
    pub async fn reports_since(&self, since_ms: u64) -> redis::RedisResult<usize> {
        let reports: Vec<String> = redis::cmd("LRANGE")
            .arg(format!("{PREFIX}reports"))
            .arg(0)
            .arg(-1)
            .query_async(&mut self.redis.clone())
            .await?;
        Ok(reports
            .iter()
            .filter_map(|r| serde_json::from_str::<serde_json::Value>(r).ok())
            .filter(|r| r["at"].as_str().and_then(|a| a.parse::<u64>().ok()).is_some_and(|at| at >= since_ms))
            .count())
    }

    /// How many wait (live queue entries) and how many chats go on.
    ///
    /// Errors: Redis failed.
    pub async fn counts(&self) -> redis::RedisResult<Counts> {
        let raw = self.op("counts", "", &[self.ttl_ms()]).await?;
        Ok(Counts {
            queued: raw.queued.unwrap_or_default(),
            pairs: raw.chatting.unwrap_or_default() / 2,
        })
    }

    /// `/stop`: leaves the queue or the chat.
    ///
    /// Errors: Redis failed.
    pub async fn leave(&self, user: i64, key: &str) -> redis::RedisResult<Change> {
        Ok(self.op("leave", key, &[user.to_string()]).await?.change())
    }

    /// `/next`: ends the chat (the partner counts as skipped) and joins again, in one
    /// step.
    ///
    /// Errors: Redis failed.
    pub async fn next(&self, user: i64, key: &str) -> redis::RedisResult<Next> {
        let raw = self.op("next", key, &[user.to_string(), self.ttl_ms(), self.cap()]).await?;
        Ok(Next {
            ended: id(&raw.ended_p).zip(chat(&raw.ended_n)),
            joined: raw.change(),
        })
    }

    /// `/report`: ends the chat and files a report on the partner (or on the last
    /// partner, within an hour of the chat's end). `None`: nobody to report.
    ///
    /// Errors: Redis failed.
    pub async fn report(&self, user: i64, key: &str) -> redis::RedisResult<Option<Report>> {
        let raw = self.op("report", key, &[user.to_string()]).await?;
        let (Some(reported), Some(chat), Some(id)) = (id(&raw.p), chat(&raw.n), chat(&raw.id)) else {
            return Ok(None);
        };
        let mut evidence: Vec<(i64, i32)> = raw
            .evidence
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|e| {
                let (from, msg) = e.as_str()?.split_once(':')?;
                Some((from.parse().ok()?, msg.parse().ok()?))
            })
            .collect();
        evidence.reverse();
        Ok(Some(Report {
            id,
            reported,
            chat,
            ended_chat: raw.ended.is_some(),
            evidence,
        }))
    }

    /// Ends chat `chat` for both (the timeout). `None`: it had ended already.
    ///
    /// Errors: Redis failed.
    pub async fn end_chat(&self, chat: u64, how: &str, key: &str) -> redis::RedisResult<Option<Ended>> {
        self.end(chat.to_string(), String::new(), how, key).await
    }

    /// Ends the chat `user` is in, for both (they blocked the bot). `None`: not in one.
    ///
    /// Errors: Redis failed.
    pub async fn end_chat_of(&self, user: i64, how: &str, key: &str) -> redis::RedisResult<Option<Ended>> {
        self.end(String::new(), user.to_string(), how, key).await
    }

    async fn end(&self, chat_no: String, user: String, how: &str, key: &str) -> redis::RedisResult<Option<Ended>> {
        let raw = self.op("end", key, &[chat_no, user, how.to_string()]).await?;
        Ok(match (id(&raw.a), id(&raw.b), chat(&raw.n)) {
            (Some(a), Some(b), Some(chat)) if raw.s == "ended" => Some(Ended { chat, users: [a, b] }),
            _ => None,
        })
    }

    /// Removes `user`'s queue entry if it is still the one made at `joined_ms`; whether
    /// it was.
    ///
    /// Errors: Redis failed.
    pub async fn expire(&self, user: i64, joined_ms: u64) -> redis::RedisResult<bool> {
        let raw = self.op("expire", "", &[user.to_string(), joined_ms.to_string()]).await?;
        Ok(raw.s == "expired")
    }

    /// Bans `user` for `days` with `reason`, ending their chat or search: the partner
    /// of the chat it ended, if any.
    ///
    /// Errors: Redis failed.
    pub async fn ban(&self, user: i64, days: u64, reason: &str, key: &str) -> redis::RedisResult<Option<(i64, u64)>> {
        let secs = (days * 86_400).to_string();
        let raw = self.op("ban", key, &[user.to_string(), secs, reason.to_string()]).await?;
        Ok(id(&raw.p).zip(chat(&raw.n)))
    }

    /// Lifts `user`'s ban; whether there was one.
    ///
    /// Errors: Redis failed.
    pub async fn unban(&self, user: i64, key: &str) -> redis::RedisResult<bool> {
        Ok(self.op("unban", key, &[user.to_string()]).await?.s == "unbanned")
    }

    /// `user`'s state: `Some((partner, chat))` in a chat, else whether they are queued.
    ///
    /// Errors: Redis failed.
    pub async fn partner(&self, user: i64) -> redis::RedisResult<Peer> {
        let (s, p, n): (Option<String>, Option<String>, Option<String>) = redis::cmd("HMGET")
            .arg(format!("{PREFIX}st:{user}"))
            .arg("s")
            .arg("p")
            .arg("n")
            .query_async(&mut self.redis.clone())
            .await?;
        Ok(match (s.as_deref(), id(&p), chat(&n)) {
            (Some("c"), Some(partner), Some(chat)) => Peer::Chatting { partner, chat },
            (Some("q"), ..) => Peer::Queued,
            _ => Peer::Idle,
        })
    }

    /// How many chats `user` has been in (a newcomer is in their first).
    ///
    /// Errors: Redis failed.
    pub async fn chats_of(&self, user: i64) -> redis::RedisResult<u64> {
        let n: Option<u64> = redis::cmd("GET")
            .arg(format!("{PREFIX}chats:{user}"))
            .query_async(&mut self.redis.clone())
            .await?;
        Ok(n.unwrap_or_default())
    }

    /// `user`'s ban, if any: the reason and when it ends (ms since epoch).
    ///
    /// Errors: Redis failed.
    pub async fn banned(&self, user: i64) -> redis::RedisResult<Option<(String, u64)>> {
        let key = format!("{PREFIX}ban:{user}");
        let (reason, ttl): (Option<String>, i64) = redis::pipe()
            .cmd("GET")
            .arg(&key)
            .cmd("PTTL")
            .arg(&key)
            .query_async(&mut self.redis.clone())
            .await?;
        Ok(reason.map(|r| (r, herald_schemas::now_ms() + ttl.max(0) as u64)))
    }

    /// Chats whose last message is older than `idle` (at most 100).
    ///
    /// Errors: Redis failed.
    pub async fn idle_chats(&self, idle: Duration) -> redis::RedisResult<Vec<u64>> {
        let before = herald_schemas::now_ms().saturating_sub(idle.as_millis() as u64);
        redis::cmd("ZRANGEBYSCORE")
            .arg(format!("{PREFIX}active"))
            .arg("-inf")
            .arg(before)
            .arg("LIMIT")
            .arg(0)
            .arg(100)
            .query_async(&mut self.redis.clone())
            .await
    }

    /// Queue entries older than the queue TTL (at most 100): user and join time.
    ///
    /// Errors: Redis failed.
    pub async fn stale_entries(&self) -> redis::RedisResult<Vec<(i64, u64)>> {
        let before = herald_schemas::now_ms().saturating_sub(self.queue_ttl.as_millis() as u64);
        let flat: Vec<(i64, u64)> = redis::cmd("ZRANGEBYSCORE")
            .arg(format!("{PREFIX}queue"))
            .arg("-inf")
            .arg(format!("({before}"))
            .arg("WITHSCORES")
            .arg("LIMIT")
            .arg(0)
            .arg(100)
            .query_async(&mut self.redis.clone())
            .await?;
        Ok(flat)
    }

    /// Users queued plus users chatting.
    ///
    /// Errors: Redis failed.
    pub async fn online(&self) -> redis::RedisResult<u64> {
        let (q, c): (u64, u64) = redis::pipe()
            .cmd("ZCARD")
            .arg(format!("{PREFIX}queue"))
            .cmd("SCARD")
            .arg(format!("{PREFIX}chatting"))
            .query_async(&mut self.redis.clone())
            .await?;
        Ok(q + c)
    }
}

/// Where a user is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Peer {
    Idle,
    Queued,
    Chatting { partner: i64, chat: u64 },
}
