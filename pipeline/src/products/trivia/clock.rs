//! The clock: the one task that moves games on and announces them.
//!
//! It watches the games bucket (every game's latest state, then each change), so it
//! knows each game's deadline without polling the store, and after a restart it sees
//! every game again: a deadline that passed while the pipeline was down fires on the
//! first tick.
//!
//! - A state it has not announced yet (a lobby opened, question 3 asked, the game
//!   over) is announced: [`present::announce`]'s messages and events, under keys that
//!   name the state, so announcing twice (a replay, two instances) sends nothing twice.
//!   A finished game is counted in its players' stats, once.
//! - A game that is due (its deadline passed, or every player answered) is moved on
//!   by compare-and-set; its new state comes back through the watch and is announced.
//!   Two instances may both try: one write wins, the other re-reads.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::kv;
use futures::StreamExt;
use tokio_util::sync::CancellationToken;

use super::game::{Game, Phase};
use super::present;
use super::service::Trivia;

/// Finished games older than this are not announced again after a restart: their
/// messages went out long ago (and the bot's delivered keys would stop a repeat).
const REPLAY_FINISHED_MS: u64 = 3_600_000;

/// What the clock knows of one game.
struct Known {
    deadline: Option<u64>,
    /// The last state announced: `lobby`, `q<index>`, `end`.
    announced: Option<String>,
}

fn state_key(game: &Game) -> String {
    match &game.phase {
        Phase::Lobby { .. } => "lobby".into(),
        Phase::Asking { index, .. } => format!("q{index}"),
        Phase::Finished { .. } => "end".into(),
    }
}

/// Runs until `shutdown`.
///
/// Errors: the games bucket cannot be watched at all.
pub async fn run(trivia: Arc<Trivia>, tick: Duration, shutdown: CancellationToken) -> anyhow::Result<()> {
    let mut clock = Clock {
        trivia,
        known: HashMap::new(),
        retry: HashSet::new(),
    };
    let mut interval = tokio::time::interval(tick);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let mut watch = match clock.trivia.games.kv.watch_with_history(">").await {
            Ok(w) => w,
            Err(e) => {
                tracing::warn!(error = %e, "watching the trivia games failed; again in 1 s");
                tokio::select! {
                    _ = shutdown.cancelled() => return Ok(()),
                    _ = tokio::time::sleep(Duration::from_secs(1)) => continue,
                }
            }
        };
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return Ok(()),
                entry = watch.next() => match entry {
                    Some(Ok(entry)) => clock.seen(entry).await,
                    Some(Err(e)) => {
                        tracing::warn!(error = %e, "trivia games watch failed; watching again");
                        break;
                    }
                    None => break,
                },
                _ = interval.tick() => clock.tick().await,
            }
        }
    }
}

struct Clock {
    trivia: Arc<Trivia>,
    known: HashMap<String, Known>,
    /// Games whose announcement or move failed, tried again on the next tick.
    retry: HashSet<String>,
}

impl Clock {
    /// A game's new state from the watch.
    async fn seen(&mut self, entry: kv::Entry) {
        if entry.operation != kv::Operation::Put {
            self.known.remove(&entry.key);
            return;
        }
        let game: Game = match serde_json::from_slice(&entry.value) {
            Ok(g) => g,
            Err(e) => {
                tracing::error!(key = %entry.key, error = %e, "undecodable trivia game");
                return;
            }
        };
        self.handle(game, entry.revision).await;
    }

    async fn handle(&mut self, game: Game, revision: u64) {
        let now = herald_schemas::now_ms();
        let key = state_key(&game);
        let new_state = {
            let known = self.known.entry(game.id.clone()).or_insert(Known {
                deadline: None,
                announced: None,
            });
            known.deadline = game.deadline();
            known.announced.as_deref() != Some(key.as_str())
        };
        let stale = matches!(game.phase, Phase::Finished { at_ms, .. } if now.saturating_sub(at_ms) > REPLAY_FINISHED_MS);
        if new_state && !stale {
            match self.announce(&game).await {
                Ok(()) => {
                    if let Some(k) = self.known.get_mut(&game.id) {
                        k.announced = Some(key);
                    }
                }
                Err(e) => {
                    tracing::warn!(game = %game.id, error = %e, "announcing a trivia game failed; retrying");
                    self.retry.insert(game.id.clone());
                }
            }
        }
        if game.is_finished() {
            self.known.remove(&game.id);
        } else if game.due(now) {
            self.advance(game, revision, now).await;
        }
    }

    async fn announce(&self, game: &Game) -> anyhow::Result<()> {
        // the explanations this state can show: the open question's (a poll's), the one
        // just revealed (a group's), the last one (the end)
        let shown: Vec<&String> = match &game.phase {
            Phase::Asking { index, .. } => [Some(*index), index.checked_sub(1)].into_iter().flatten().filter_map(|i| game.questions.get(i as usize)).collect(),
            Phase::Finished { .. } => game.questions.last().into_iter().collect(),
            Phase::Lobby { .. } => Vec::new(),
        };
        let mut explanations = HashMap::new();
        for id in shown {
            if let Some(e) = self.trivia.explanation(id).await {
                explanations.insert(id.clone(), e);
            }
        }
        let mut outputs = present::announce(game, &self.trivia.bank, |id| explanations.get(id).cloned());
        // a question asked without one: the explainer may have one for next time
        if self.trivia.args.trivia_ai_url.is_some() {
            if let Some(id) = game.asking().and_then(|i| game.questions.get(i as usize)).filter(|id| !explanations.contains_key(*id)) {
                outputs.push(present::explain_request(id));
            }
        }
        herald_runtime::publish_all(&self.trivia.js, outputs).await?;
        if game.is_finished() && self.trivia.redis.finish(game).await? {
            metrics::counter!(super::metrics::GAMES_FINISHED.name, "mode" => game.mode.as_str()).increment(1);
        }
        Ok(())
    }

    /// Moves a due game on by compare-and-set (a conflict means someone else moved it;
    /// the watch brings what they wrote).
    async fn advance(&mut self, mut game: Game, revision: u64, now: u64) {
        let mut draw = None;
        if matches!(game.phase, Phase::Lobby { .. }) {
            let n = self.trivia.args.trivia_questions as usize;
            let seed = revision ^ now;
            match self.trivia.draw(game.chat_id, &game.pool.clone(), n, seed).await {
                Ok(d) => draw = Some(d),
                Err(e) => {
                    tracing::warn!(game = %game.id, error = %e, "drawing questions failed; retrying");
                    self.retry.insert(game.id.clone());
                    return;
                }
            }
        }
        let ids = draw.as_ref().map(|d| d.picked.ids.clone()).unwrap_or_default();
        if !game.tick(now, || ids) {
            return;
        }
        match self.trivia.games.update(&game, revision).await {
            Ok(_) => {
                metrics::counter!(super::metrics::CLOCK_MOVES.name).increment(1);
                if let (Some(d), Phase::Asking { .. }) = (&draw, &game.phase) {
                    if let Err(e) = self.trivia.mark_seen(d).await {
                        tracing::warn!(game = %game.id, error = %e, "recording a group's seen questions failed");
                    }
                }
            }
            Err(e) => tracing::debug!(game = %game.id, error = %e, "another writer moved the game first"),
        }
    }

    /// Moves on every game whose deadline passed, and retries failed work.
    async fn tick(&mut self) {
        let now = herald_schemas::now_ms();
        let mut due: Vec<String> = self
            .known
            .iter()
            .filter(|(_, k)| k.deadline.is_some_and(|d| d <= now))
            .map(|(id, _)| id.clone())
            .collect();
        due.extend(self.retry.drain());
        due.sort();
        due.dedup();
        for id in due {
            match self.trivia.games.load(&id).await {
                Ok(Some((game, revision))) => self.handle(game, revision).await,
                Ok(None) => {
                    self.known.remove(&id);
                }
                Err(e) => {
                    tracing::warn!(game = %id, error = %e, "reading a trivia game failed");
                    self.retry.insert(id);
                }
            }
        }
    }
}
