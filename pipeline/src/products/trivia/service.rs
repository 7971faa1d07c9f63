//! Trivia's shared parts: the bank, the stores, the settings; and the draws every
//! entry point (a command, the clock, the Mini App) makes the same way.

use std::collections::HashSet;
use std::sync::Arc;

use redis::AsyncCommands;

use super::bank::{pick, Bank, Picked, Pool};
use super::config::TriviaArgs;
use super::game::Game;
use super::store::{Games, Polls, TriviaRedis};

/// Redis hash of generated explanations, by question id.
pub const EXPLANATIONS: &str = "herald:trivia:explanations";

/// Everything trivia's stages and tasks share.
pub struct Trivia {
    pub bank: Arc<Bank>,
    pub games: Games,
    pub polls: Polls,
    pub redis: TriviaRedis,
    pub js: herald_runtime::Js,
    pub args: TriviaArgs,
}

/// A draw and whose seen-list it goes to.
#[derive(Debug, Clone)]
pub struct Draw {
    /// The player (or, for a group game, the group) whose seen-list it is.
    pub owner: i64,
    pub pool: String,
    pub picked: Picked,
}

impl Trivia {
    /// Trivia on its stores, with the imported bank or the built-in sample.
    ///
    /// Errors: a bucket is missing (`pipeline setup`), NATS unreachable, an imported
    /// bank that no longer loads.
    pub async fn open(js: herald_runtime::Js, redis: redis::aio::ConnectionManager, args: TriviaArgs) -> anyhow::Result<Self> {
        let bank = super::load_bank(&js).await?;
        tracing::info!(questions = bank.questions.len(), categories = bank.categories.len(), "trivia question bank loaded");
        Ok(Trivia {
            bank: Arc::new(bank),
            games: Games {
                kv: js.get_key_value(herald_schemas::subjects::TRIVIA_GAMES_BUCKET).await?,
            },
            polls: Polls {
                kv: js.get_key_value(herald_schemas::subjects::TRIVIA_POLLS_BUCKET).await?,
            },
            redis: TriviaRedis::new(redis),
            js,
            args,
        })
    }

    /// The defaults of every trivia flag (tests, benchmarks).
    pub fn default_args() -> TriviaArgs {
        use clap::{Args, FromArgMatches};
        let cmd = TriviaArgs::augment_args(clap::Command::new("trivia").no_binary_name(true));
        TriviaArgs::from_arg_matches(&cmd.get_matches_from(Vec::<String>::new())).expect("the defaults parse")
    }

    pub fn limit_ms(&self) -> u64 {
        self.args.trivia_question_time.as_millis() as u64
    }

    /// Draws `n` questions of `pool` that `owner` (a player, or a group) has not seen,
    /// leaving out quarantined ones. `seed` makes it repeatable (a redelivery draws the
    /// same).
    ///
    /// Errors: Redis unreachable.
    pub async fn draw(&self, owner: i64, pool: &Pool, n: usize, seed: u64) -> redis::RedisResult<Draw> {
        let excluded = self.redis.quarantined().await?;
        let ids = self.bank.pool(pool, &excluded);
        let seen = self.redis.seen(owner, &pool.key()).await?;
        Ok(Draw {
            owner,
            pool: pool.key(),
            picked: pick(&ids, &seen, n, seed),
        })
    }

    /// The day's challenge for `day` (`20261203`): the same questions for everyone,
    /// drawn from the whole bank by the date.
    ///
    /// Errors: Redis unreachable.
    pub async fn daily_questions(&self, day: u64) -> redis::RedisResult<Vec<String>> {
        let excluded = self.redis.quarantined().await?;
        let ids = self.bank.pool(&Pool::default(), &excluded);
        Ok(pick(&ids, &HashSet::new(), self.args.trivia_daily_questions as usize, day).ids)
    }

    /// Records a draw in its owner's seen-list.
    ///
    /// Errors: Redis unreachable.
    pub async fn mark_seen(&self, d: &Draw) -> redis::RedisResult<()> {
        self.redis.mark_seen(d.owner, &d.pool, &d.picked.ids, d.picked.restarted).await
    }

    fn playing_key(who: i64) -> String {
        format!("herald:trivia:playing:{who}")
    }

    /// The game `who` (a player, or a group) is in, if it is not over.
    ///
    /// Errors: Redis or KV unreachable.
    pub async fn current_game(&self, who: i64) -> anyhow::Result<Option<Game>> {
        let id: Option<String> = self.redis.redis.clone().get(Self::playing_key(who)).await?;
        let Some(id) = id else { return Ok(None) };
        Ok(self.games.load(&id).await?.map(|(g, _)| g).filter(|g| !g.is_finished()))
    }

    /// The last game `who` played, over or not (what `/flag` refers to).
    ///
    /// Errors: Redis or KV unreachable.
    pub async fn last_game(&self, who: i64) -> anyhow::Result<Option<Game>> {
        let id: Option<String> = self.redis.redis.clone().get(Self::playing_key(who)).await?;
        let Some(id) = id else { return Ok(None) };
        Ok(self.games.load(&id).await?.map(|(g, _)| g))
    }

    /// Stores a new game and marks who plays it (idempotent: a redelivery finds the game
    /// and changes nothing).
    ///
    /// Errors: Redis or KV unreachable.
    pub async fn start_game(&self, game: &Game, who: i64, draw: Option<&Draw>) -> anyhow::Result<bool> {
        if let Some(d) = draw {
            self.mark_seen(d).await?;
        }
        let created = self.games.create(game).await?;
        let _: () = self.redis.redis.clone().set_ex(Self::playing_key(who), &game.id, 24 * 3600).await?;
        Ok(created)
    }

    /// The cached explanation of question `id`, if one was generated (a Redis failure
    /// means none: a question is never held up for it).
    pub async fn explanation(&self, id: &str) -> Option<String> {
        let found: redis::RedisResult<Option<String>> = self.redis.redis.clone().hget(EXPLANATIONS, id).await;
        found.unwrap_or_else(|e| {
            tracing::warn!(error = %e, "reading a cached explanation failed");
            None
        })
    }

    /// The UTC date of `ms` as `20261203`.
    pub fn day(ms: u64) -> u64 {
        let t = time::OffsetDateTime::from_unix_timestamp((ms / 1000) as i64).unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
        t.year() as u64 * 10_000 + t.month() as u64 * 100 + t.day() as u64
    }
}
