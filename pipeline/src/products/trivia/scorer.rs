//! The scoring stage: `herald.trivia.answer.<game>` -> `herald.trivia.result.<game>`
//! and `herald.trivia.board.<player>`, each (game, question, player) scored exactly
//! once, also under redelivery and kill -9.
//!
//! Per answer, in order per game:
//! 1. `decide` reads the game and scores the answer against it. A new score is written
//!    into the game by compare-and-set in the apply step, before the outputs: that
//!    write is idempotent per input (the game records the score under (question,
//!    player), so a redelivery finds it and scores nothing again), and it must precede
//!    the outputs, or a retried answer could be judged against a game the clock has
//!    moved on meanwhile. A conflict retries the input from a fresh read.
//! 2. The result and board events are published (message ids
//!    `result:<game>:<question>:<player>`, `board:<game>:<question>:<player>`).
//! 3. `commit` adds the points to the player's stats and boards in one Redis script
//!    guarded by a marker of (game, question, player): applied once, whatever is
//!    redelivered. `herald_trivia_scored_total` counts the applications.
//!
//! An answer found already scored (a redelivery, a second press) is dropped once its
//! commit is done (the marker exists, so its events were published); before that (a
//! crash between the game write and the commit) it republishes the same events and
//! re-runs the guarded commit, which heals the crash and adds nothing twice.

use std::sync::Arc;

use herald_runtime::{Applied, Decision, Effect, MsgMeta, Output, Stage, StageError};
use herald_schemas::{subjects, BoardChange, TriviaAnswer, TriviaResult};

use super::game::{Game, Mode, Refusal, Scored};
use super::service::Trivia;
use super::store::TriviaRedis;

/// The stage.
pub struct TriviaScorer {
    pub trivia: Arc<Trivia>,
}

/// The guarded Redis update of one score.
#[derive(Debug)]
pub struct ScoreCommit {
    game: String,
    scored: Scored,
    name: String,
    boards: Vec<String>,
    /// A redelivery's commit (the first may or may not have been applied).
    again: bool,
}

/// A new score to write into its game: the apply step's effect.
#[derive(Debug)]
pub struct Score {
    /// The game with the score recorded, to write over `revision`.
    game: Game,
    revision: u64,
    question_id: String,
    scored: Scored,
}

impl TriviaScorer {
    /// The outputs and guarded commit of `scored` in `game`.
    fn forward<E>(game: &Game, question_id: &str, scored: Scored, again: bool) -> Decision<ScoreCommit, E> {
        let boards = TriviaRedis::boards_for(game, &scored);
        let name = game.players.get(&scored.player).map(|p| p.name.clone()).unwrap_or_default();
        Decision::Forward {
            outputs: outputs(game, question_id, &scored, &boards),
            commit: ScoreCommit {
                game: game.id.clone(),
                scored,
                name,
                boards,
                again,
            },
        }
    }
}

fn outputs(game: &Game, question_id: &str, s: &Scored, boards: &[String]) -> Vec<Output> {
    let key = format!("{}:{}:{}", game.id, s.question, s.player);
    let result = TriviaResult {
        v: 1,
        game: game.id.clone(),
        question: s.question,
        question_id: question_id.to_string(),
        player: s.player,
        correct: s.correct,
        points: s.points,
        bonus: s.bonus,
        streak: s.streak,
        elapsed_ms: s.elapsed_ms,
        at_ms: s.at_ms,
        ranked: game.mode.ranked(),
        group: (game.mode == Mode::Group).then_some(game.chat_id),
        name: game.players.get(&s.player).map(|p| p.name.clone()),
    };
    let mut out = vec![Output {
        subject: subjects::trivia("result", &game.id),
        msg_id: format!("result:{key}"),
        payload: herald_schemas::encode(&result),
    }];
    if s.total() > 0 && !boards.is_empty() {
        let change = BoardChange {
            v: 1,
            player: s.player,
            delta: s.total(),
            boards: boards.to_vec(),
            source: format!("{}:{}", game.id, s.question),
            at_ms: s.at_ms,
        };
        out.push(Output {
            subject: subjects::trivia("board", &s.player.to_string()),
            msg_id: format!("board:{key}"),
            payload: herald_schemas::encode(&change),
        });
    }
    out
}

impl Stage for TriviaScorer {
    const NAME: &'static str = "trivia_scorer";
    type Input = TriviaAnswer;
    type Commit = ScoreCommit;
    type Effect = Score;

    fn decode(&self, payload: &[u8]) -> Result<TriviaAnswer, String> {
        herald_schemas::decode(payload).map_err(|e| e.to_string())
    }

    async fn decide(&self, a: TriviaAnswer, _meta: &MsgMeta) -> Result<Decision<ScoreCommit, Score>, StageError> {
        let Some((mut game, revision)) = self.trivia.games.load(&a.game).await? else {
            return Ok(Decision::Drop { reason: "unknown_game" });
        };
        let Some(question_id) = game.questions.get(a.question as usize).cloned() else {
            return Ok(Decision::Drop { reason: "no_such_question" });
        };
        let Some(question) = self.trivia.bank.get(&question_id) else {
            return Err(StageError::Permanent(format!("question {question_id} of game {} is not in the bank", game.id)));
        };
        match game.answer(&a, question) {
            Ok(scored) => Ok(Decision::Apply(Score {
                game,
                revision,
                question_id,
                scored,
            })),
            Err(Refusal::AlreadyScored(s)) => {
                metrics::counter!(super::metrics::ANSWERS_REFUSED.name, "reason" => "already_scored").increment(1);
                // committed means published: a repeat publishes nothing (issue 21); only a
                // crash between the game write and the commit is healed by publishing again
                if self.trivia.redis.is_scored(&game.id, s.question, s.player).await? {
                    return Ok(Decision::Drop { reason: "already_scored" });
                }
                Ok(Self::forward(&game, &question_id, s, true))
            }
            Err(r) => {
                metrics::counter!(super::metrics::ANSWERS_REFUSED.name, "reason" => r.reason()).increment(1);
                Ok(Decision::Drop { reason: r.reason() })
            }
        }
    }

    /// Writes the score into its game by compare-and-set (a conflict: the input is
    /// retried from a fresh read, where a redelivery finds it scored).
    async fn apply(&self, s: Score, _meta: &MsgMeta) -> Result<Applied<ScoreCommit>, StageError> {
        self.trivia.games.update(&s.game, s.revision).await?;
        Ok(Applied {
            decision: Self::forward(&s.game, &s.question_id, s.scored, false),
            effect: Effect::Made,
        })
    }

    async fn commit(&self, c: ScoreCommit) -> Result<(), StageError> {
        let applied = self.trivia.redis.score(&c.game, &c.scored, &c.name, &c.boards).await?;
        if applied {
            metrics::counter!(super::metrics::SCORED.name).increment(1);
            let lag = herald_schemas::now_ms().saturating_sub(c.scored.at_ms);
            metrics::histogram!(super::metrics::SCORE_LAG.name).record(lag as f64 / 1000.0);
        } else if !c.again {
            // a first scoring whose marker was set already would be a double count
            tracing::error!(game = %c.game, question = c.scored.question, player = c.scored.player, "score marker existed for a fresh score");
        }
        Ok(())
    }
}
