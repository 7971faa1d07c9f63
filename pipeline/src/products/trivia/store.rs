//! Where trivia keeps things.
//!
//! - Games: the `herald_trivia_games` bucket, one JSON [`Game`] per key, written by
//!   compare-and-set so the scorer and the clock never lose each other's changes.
//! - Quiz polls: the `herald_trivia_polls` bucket, poll id -> `<game>:<question>`.
//! - In Redis under `herald:trivia:`: what each player has seen (per pool), flags and
//!   the quarantine, the leaderboards (sorted sets), players' stats and names, and the
//!   markers that make scoring count each answer once.

use std::collections::HashSet;

use async_nats::jetstream::kv;
use redis::aio::ConnectionManager;
use redis::AsyncCommands;

use super::game::{Game, Scored};
use super::scoring;

/// The games bucket.
#[derive(Clone)]
pub struct Games {
    pub kv: kv::Store,
}

/// A game and the KV revision it was read at.
pub type Revised = (Game, u64);

impl Games {
    /// Errors: KV unreachable, or the stored game is undecodable.
    pub async fn load(&self, id: &str) -> anyhow::Result<Option<Revised>> {
        let Some(entry) = self.kv.entry(herald_schemas::subjects::kv_key(id)).await? else {
            return Ok(None);
        };
        if entry.operation != kv::Operation::Put {
            return Ok(None);
        }
        let game: Game = serde_json::from_slice(&entry.value).map_err(|e| anyhow::anyhow!("game {id}: {e}"))?;
        Ok(Some((game, entry.revision)))
    }

    /// Stores a new game. Returns false when a game with its id exists (a redelivered
    /// command, or the day's challenge played already).
    ///
    /// Errors: KV unreachable.
    pub async fn create(&self, game: &Game) -> anyhow::Result<bool> {
        let key = herald_schemas::subjects::kv_key(&game.id);
        match self.kv.create(&key, serde_json::to_vec(game)?.into()).await {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == kv::CreateErrorKind::AlreadyExists => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Writes `game` if it is still at `revision`.
    ///
    /// Errors: a conflict (someone else moved the game: re-read), KV unreachable.
    pub async fn update(&self, game: &Game, revision: u64) -> anyhow::Result<u64> {
        let key = herald_schemas::subjects::kv_key(&game.id);
        Ok(self.kv.update(&key, serde_json::to_vec(game)?.into(), revision).await?)
    }
}

/// The polls bucket: which game question a quiz poll asks.
#[derive(Clone)]
pub struct Polls {
    pub kv: kv::Store,
}

impl Polls {
    /// Errors: KV unreachable.
    pub async fn put(&self, poll_id: &str, game: &str, question: u32) -> anyhow::Result<()> {
        self.kv
            .put(herald_schemas::subjects::kv_key(poll_id), format!("{game}:{question}").into())
            .await?;
        Ok(())
    }

    /// `(game, question)` of a poll, if it is one of trivia's.
    ///
    /// Errors: KV unreachable.
    pub async fn get(&self, poll_id: &str) -> anyhow::Result<Option<(String, u32)>> {
        let Some(v) = self.kv.get(herald_schemas::subjects::kv_key(poll_id)).await? else {
            return Ok(None);
        };
        let v = String::from_utf8_lossy(&v);
        Ok(v.rsplit_once(':').and_then(|(g, q)| Some((g.to_string(), q.parse().ok()?))))
    }
}

const PREFIX: &str = "herald:trivia";

/// How long a scoring marker lives: far longer than any redelivery (a stage gives up
/// after 5 deliveries within minutes).
const MARKER_TTL_S: u64 = 7 * 24 * 3600;
/// A day's board is kept 8 days, a week's 5 weeks.
const DAY_TTL_S: u64 = 8 * 24 * 3600;
const WEEK_TTL_S: u64 = 35 * 24 * 3600;

/// Adds one scored answer to the player's stats and (when ranked) boards, once: the
/// marker is set in the same script, so a redelivery finds it and adds nothing.
/// KEYS: marker, stats, names, boards...; ARGV: player, delta, correct, streak, name,
/// marker TTL, day TTL, week TTL. Returns 1 when applied, 0 when done before.
const SCORE_LUA: &str = r#"
if not redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[6]) then return 0 end
redis.call('HINCRBY', KEYS[2], 'answered', 1)
redis.call('HINCRBY', KEYS[2], 'correct', ARGV[3])
redis.call('HINCRBY', KEYS[2], 'points', ARGV[2])
local best = tonumber(redis.call('HGET', KEYS[2], 'best_streak') or '0')
if tonumber(ARGV[4]) > best then redis.call('HSET', KEYS[2], 'best_streak', ARGV[4]) end
if ARGV[5] ~= '' then redis.call('HSET', KEYS[3], ARGV[1], ARGV[5]) end
if tonumber(ARGV[2]) > 0 then
  for i = 4, #KEYS do
    redis.call('ZINCRBY', KEYS[i], ARGV[2], ARGV[1])
    if string.find(KEYS[i], ':d:', 1, true) then redis.call('EXPIRE', KEYS[i], ARGV[7])
    elseif string.find(KEYS[i], ':w:', 1, true) then redis.call('EXPIRE', KEYS[i], ARGV[8]) end
  end
end
return 1
"#;

/// Counts a finished game in each player's stats, once. KEYS: marker, stats of each
/// player; ARGV: marker TTL.
const FINISH_LUA: &str = r#"
if not redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[1]) then return 0 end
for i = 2, #KEYS do redis.call('HINCRBY', KEYS[i], 'games', 1) end
return 1
"#;

/// A player's stats, over every game they played (private ones included).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Stats {
    pub games: u64,
    pub answered: u64,
    pub correct: u64,
    pub points: u64,
    pub best_streak: u64,
}

/// What [`TriviaRedis::rebuild`] replayed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Rebuilt {
    /// Scored answers counted again.
    pub results: u64,
    /// Finished games counted again.
    pub games: u64,
    /// Messages that did not decode (skipped).
    pub unreadable: u64,
}

/// Whether board `board` of an answer at `at_ms` would still be kept at `now_ms`: a
/// day's board 8 days, a week's 5 weeks, the others for good.
fn still_kept(board: &str, at_ms: u64, now_ms: u64) -> bool {
    let age_s = now_ms.saturating_sub(at_ms) / 1000;
    if board.contains(":d:") {
        age_s < DAY_TTL_S
    } else if board.contains(":w:") {
        age_s < WEEK_TTL_S
    } else {
        true
    }
}

/// One line of a leaderboard.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Rank {
    pub rank: u64,
    pub player: i64,
    pub name: String,
    pub points: u64,
}

/// A board's top (player, points) and the asker's (rank from 0, points).
type Ranked = (Vec<(i64, f64)>, Option<(u64, f64)>);

/// Trivia's Redis state.
#[derive(Clone)]
pub struct TriviaRedis {
    pub redis: ConnectionManager,
    score: redis::Script,
    finish: redis::Script,
}

impl TriviaRedis {
    pub fn new(redis: ConnectionManager) -> Self {
        TriviaRedis {
            redis,
            score: redis::Script::new(SCORE_LUA),
            finish: redis::Script::new(FINISH_LUA),
        }
    }

    fn seen_key(player: i64, pool: &str) -> String {
        format!("{PREFIX}:seen:{player}:{pool}")
    }

    /// The questions `player` has seen from the pool named `pool`.
    ///
    /// Errors: Redis unreachable.
    pub async fn seen(&self, player: i64, pool: &str) -> redis::RedisResult<HashSet<String>> {
        self.redis.clone().smembers(Self::seen_key(player, pool)).await
    }

    /// Records `ids` as seen; `restart` empties the list first (the pool was
    /// exhausted). Idempotent: a redelivery leaves the same list.
    ///
    /// Errors: Redis unreachable.
    pub async fn mark_seen(&self, player: i64, pool: &str, ids: &[String], restart: bool) -> redis::RedisResult<()> {
        let key = Self::seen_key(player, pool);
        let mut pipe = redis::pipe();
        pipe.atomic();
        if restart {
            pipe.del(&key).ignore();
        }
        if !ids.is_empty() {
            pipe.sadd(&key, ids).ignore();
        }
        pipe.query_async::<()>(&mut self.redis.clone()).await
    }

    /// Quarantined question ids.
    ///
    /// Errors: Redis unreachable.
    pub async fn quarantined(&self) -> redis::RedisResult<HashSet<String>> {
        self.redis.clone().smembers(format!("{PREFIX}:quarantine")).await
    }

    /// `player` flags question `id`; at `threshold` distinct flaggers it is
    /// quarantined. Returns the number of flaggers (a second flag by the same player
    /// counts once).
    ///
    /// Errors: Redis unreachable.
    pub async fn flag(&self, id: &str, player: i64, threshold: u64) -> redis::RedisResult<u64> {
        let mut r = self.redis.clone();
        let key = format!("{PREFIX}:flags:{id}");
        let (n,): (u64,) = redis::pipe().sadd(&key, player).ignore().scard(&key).query_async(&mut r).await?;
        if n >= threshold && !r.sismember::<_, _, bool>(format!("{PREFIX}:reviewed"), id).await? {
            r.sadd::<_, _, ()>(format!("{PREFIX}:quarantine"), id).await?;
        }
        Ok(n)
    }

    /// Flag counts of the quarantined questions.
    ///
    /// Errors: Redis unreachable.
    pub async fn flagged(&self) -> redis::RedisResult<Vec<(String, u64)>> {
        let mut r = self.redis.clone();
        let ids: Vec<String> = r.smembers(format!("{PREFIX}:quarantine")).await?;
        let mut out = Vec::new();
        for id in ids {
            let n: u64 = r.scard(format!("{PREFIX}:flags:{id}")).await?;
            out.push((id, n));
        }
        out.sort();
        Ok(out)
    }

    /// An admin's review: `keep` returns the question to play (and later flags no
    /// longer quarantine it); otherwise it stays out for good.
    ///
    /// Errors: Redis unreachable.
    pub async fn review(&self, id: &str, keep: bool) -> redis::RedisResult<()> {
        let mut r = self.redis.clone();
        if keep {
            redis::pipe()
                .srem(format!("{PREFIX}:quarantine"), id)
                .sadd(format!("{PREFIX}:reviewed"), id)
                .del(format!("{PREFIX}:flags:{id}"))
                .query_async::<()>(&mut r)
                .await
        } else {
            r.sadd(format!("{PREFIX}:removed"), id).await
        }
    }

    /// Whether the score of (`game`, `question`, `player`) was applied (its marker set),
    /// which the scorer's commit does only after the result was published.
    ///
    /// Errors: Redis unreachable.
    pub async fn is_scored(&self, game: &str, question: u32, player: i64) -> redis::RedisResult<bool> {
        redis::cmd("EXISTS")
            .arg(Self::marker(game, question, player))
            .query_async(&mut self.redis.clone())
            .await
    }

    fn marker(game: &str, question: u32, player: i64) -> String {
        format!("{PREFIX}:scored:{game}:{question}:{player}")
    }

    /// Adds `s` to its player's stats and, for a ranked game, to `boards`, exactly once
    /// per (game, question, player). Returns whether this call applied it.
    ///
    /// Errors: Redis unreachable (the stage retries; the marker keeps it once).
    pub async fn score(&self, game: &str, s: &Scored, name: &str, boards: &[String]) -> redis::RedisResult<bool> {
        let mut inv = self.score.prepare_invoke();
        inv.key(Self::marker(game, s.question, s.player))
            .key(format!("{PREFIX}:stats:{}", s.player))
            .key(format!("{PREFIX}:names"));
        for b in boards {
            inv.key(format!("{PREFIX}:board:{b}"));
        }
        inv.arg(s.player)
            .arg(s.total())
            .arg(u32::from(s.correct))
            .arg(s.streak)
            .arg(name)
            .arg(MARKER_TTL_S)
            .arg(DAY_TTL_S)
            .arg(WEEK_TTL_S);
        let applied: i64 = inv.invoke_async(&mut self.redis.clone()).await?;
        Ok(applied == 1)
    }

    /// Counts a finished game for its players, once.
    ///
    /// Errors: Redis unreachable.
    pub async fn finish(&self, game: &Game) -> redis::RedisResult<bool> {
        let mut inv = self.finish.prepare_invoke();
        inv.key(format!("{PREFIX}:finished:{}", game.id));
        for p in game.players.keys() {
            inv.key(format!("{PREFIX}:stats:{p}"));
        }
        inv.arg(MARKER_TTL_S);
        let applied: i64 = inv.invoke_async(&mut self.redis.clone()).await?;
        Ok(applied == 1)
    }

    /// Counts a finished game for `players`, once per game (the marker `finished:<id>`).
    ///
    /// Errors: Redis unreachable.
    pub async fn finish_players(&self, game: &str, players: impl IntoIterator<Item = i64>) -> redis::RedisResult<bool> {
        let mut inv = self.finish.prepare_invoke();
        inv.key(format!("{PREFIX}:finished:{game}"));
        for p in players {
            inv.key(format!("{PREFIX}:stats:{p}"));
        }
        inv.arg(MARKER_TTL_S);
        let applied: i64 = inv.invoke_async(&mut self.redis.clone()).await?;
        Ok(applied == 1)
    }

    /// Rebuilds every player's stats, the boards and the names from TRIVIA_RESULTS
    /// (scored results and game ends, kept for good): what Redis held, after Redis lost
    /// it. Clears the scoring keys first (stats, boards, names, markers), so running it
    /// twice gives the same state; day and week boards whose period is past their TTL
    /// are not recreated. Scoring meanwhile is not lost (the markers keep each answer
    /// once) but should wait: run it with the scorer stopped, or run it again after.
    ///
    /// Errors: NATS or Redis failed (run it again).
    pub async fn rebuild(&self, js: &herald_runtime::Js) -> anyhow::Result<Rebuilt> {
        let mut r = self.redis.clone();
        for pattern in ["stats:*", "board:*", "scored:*", "finished:*", "names"] {
            // SCAN, not KEYS: a big Redis keeps answering others meanwhile
            let keys: Vec<String> = {
                let mut iter: redis::AsyncIter<String> = r.scan_match(format!("{PREFIX}:{pattern}")).await?;
                let mut keys = Vec::new();
                while let Some(k) = iter.next_item().await {
                    keys.push(k?);
                }
                keys
            };
            for chunk in keys.chunks(500) {
                let _: () = redis::cmd("DEL").arg(chunk).query_async(&mut r).await?;
            }
        }
        let now_ms = herald_schemas::now_ms();
        let mut done = Rebuilt::default();
        let stream = herald_schemas::subjects::TRIVIA_RESULTS_STREAM;
        let start = async_nats::jetstream::consumer::DeliverPolicy::All;
        let mut results = herald_runtime::reader::Reader::open(js, stream, Some("herald.trivia.result.>"), start).await?;
        while let Some(m) = results.next().await? {
            let Ok(result) = herald_schemas::decode::<herald_schemas::TriviaResult>(&m.payload) else {
                done.unreadable += 1;
                continue;
            };
            let scored = super::game::Scored {
                question: result.question,
                player: result.player,
                option: 0,
                correct: result.correct,
                points: result.points,
                bonus: result.bonus,
                streak: result.streak,
                elapsed_ms: result.elapsed_ms,
                at_ms: result.at_ms,
            };
            let boards: Vec<String> = match result.ranked {
                true => scoring::boards(result.group, result.at_ms)
                    .into_iter()
                    .filter(|b| still_kept(b, result.at_ms, now_ms))
                    .collect(),
                false => Vec::new(),
            };
            if self.score(&result.game, &scored, result.name.as_deref().unwrap_or_default(), &boards).await? {
                done.results += 1;
            }
        }
        results.close().await;
        let mut games = herald_runtime::reader::Reader::open(js, stream, Some("herald.trivia.game.>"), start).await?;
        while let Some(m) = games.next().await? {
            let Ok(e) = herald_schemas::decode::<herald_schemas::TriviaGameEvent>(&m.payload) else {
                done.unreadable += 1;
                continue;
            };
            if let herald_schemas::GameStep::Ended { scores, .. } = e.step {
                let names: Vec<(i64, String)> = scores.iter().filter(|s| !s.name.is_empty()).map(|s| (s.player, s.name.clone())).collect();
                if !names.is_empty() {
                    let _: () = r.hset_multiple(format!("{PREFIX}:names"), &names).await?;
                }
                if self.finish_players(&e.game, scores.iter().map(|s| s.player)).await? {
                    done.games += 1;
                }
            }
        }
        games.close().await;
        Ok(done)
    }

    /// A player's stats.
    ///
    /// Errors: Redis unreachable.
    pub async fn stats(&self, player: i64) -> redis::RedisResult<Stats> {
        let h: std::collections::HashMap<String, u64> = self.redis.clone().hgetall(format!("{PREFIX}:stats:{player}")).await?;
        let get = |k: &str| h.get(k).copied().unwrap_or(0);
        Ok(Stats {
            games: get("games"),
            answered: get("answered"),
            correct: get("correct"),
            points: get("points"),
            best_streak: get("best_streak"),
        })
    }

    /// The top `n` of `board` and, when `player` is given and not among them, their own
    /// line: one round trip for the ranks, one for the names.
    ///
    /// Errors: Redis unreachable.
    pub async fn top(&self, board: &str, n: usize, player: Option<i64>) -> redis::RedisResult<(Vec<Rank>, Option<Rank>)> {
        let mut r = self.redis.clone();
        let key = format!("{PREFIX}:board:{board}");
        let mut pipe = redis::pipe();
        pipe.zrevrange_withscores(&key, 0, n as isize - 1);
        if let Some(p) = player {
            pipe.zrevrank(&key, p).zscore(&key, p);
        }
        let (top, mine): Ranked = match player {
            Some(_) => {
                let (top, rank, score): (Vec<(i64, f64)>, Option<u64>, Option<f64>) = pipe.query_async(&mut r).await?;
                (top, rank.zip(score))
            }
            None => {
                let (top,): (Vec<(i64, f64)>,) = pipe.query_async(&mut r).await?;
                (top, None)
            }
        };
        let mut ids: Vec<i64> = top.iter().map(|(p, _)| *p).collect();
        if let Some(p) = player {
            ids.push(p);
        }
        let names: Vec<Option<String>> = if ids.is_empty() {
            Vec::new()
        } else {
            redis::cmd("HMGET").arg(format!("{PREFIX}:names")).arg(&ids).query_async(&mut r).await?
        };
        let name = |i: usize, id: i64| names.get(i).cloned().flatten().unwrap_or_else(|| format!("player {id}"));
        let lines: Vec<Rank> = top
            .iter()
            .enumerate()
            .map(|(i, (p, s))| Rank {
                rank: i as u64 + 1,
                player: *p,
                name: name(i, *p),
                points: *s as u64,
            })
            .collect();
        let own = match (player, mine) {
            (Some(p), Some((rank, s))) if !lines.iter().any(|l| l.player == p) => Some(Rank {
                rank: rank + 1,
                player: p,
                name: name(ids.len() - 1, p),
                points: s as u64,
            }),
            _ => None,
        };
        Ok((lines, own))
    }

    /// The boards `s` adds to, if its game is ranked.
    pub fn boards_for(game: &Game, s: &Scored) -> Vec<String> {
        if !game.mode.ranked() {
            return Vec::new();
        }
        let group = (game.mode == super::game::Mode::Group).then_some(game.chat_id);
        scoring::boards(group, s.at_ms)
    }
}
