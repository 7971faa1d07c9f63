//! The scoring stage: `herald.trivia.answer.<game>` -> `herald.trivia.result.<game>`
//! and `herald.trivia.board.<player>`, each (game, question, player) scored exactly
//! once, also under redelivery and kill -9.
//!
//! Per answer:
//! 1. `decide` asks for the answer's write into its game (the judgement needs the game
//!    as it is when written, so it is made there).
//! 2. The apply step hands it to the [`GameWriter`], which reads the game once for all
//!    answers to it waiting at that moment, judges each in stream order and writes the
//!    game by one compare-and-set, before any output: that write is idempotent per
//!    input (the game records the score under (question, player), so a redelivery
//!    finds it and scores nothing again), and it must precede the outputs, or a retried
//!    answer could be judged against a game the clock has moved on meanwhile. A
//!    conflict re-reads and re-judges.
//! 3. The result and board events are published (message ids
//!    `result:<game>:<question>:<player>`, `board:<game>:<question>:<player>`).
//! 4. `commit` adds the points to the player's stats and boards in one Redis script
//!    guarded by a marker of (game, question, player): applied once, whatever is
//!    redelivered. `herald_trivia_scored_total` counts the applications.
//!
//! An answer found already scored is dropped when its twin is still in flight here (a
//! second press) or its commit is done (the marker exists, so its events were
//! published); otherwise (a crash between the game write and the commit) it
//! republishes the same events and re-runs the guarded commit, which heals the crash
//! and adds nothing twice.

use std::sync::Arc;

use herald_runtime::{Applied, Decision, Effect, MsgMeta, Output, Stage, StageError};
use herald_schemas::{subjects, BoardChange, TriviaAnswer, TriviaResult};

use super::game::{Game, Mode, Scored};
use super::service::Trivia;
use super::store::TriviaRedis;
use super::writer::{GameWriter, InFlight, Pending, Verdict};

/// The stage.
pub struct TriviaScorer {
    pub trivia: Arc<Trivia>,
    writer: GameWriter,
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
    /// A fresh score stays in flight until this commit is done or dropped.
    _flight: Option<InFlight>,
}

impl TriviaScorer {
    /// The stage, with its writer's batcher spawned on the current tokio runtime.
    pub fn new(trivia: Arc<Trivia>) -> Self {
        TriviaScorer {
            writer: GameWriter::new(trivia.clone()),
            trivia,
        }
    }

    /// The outputs and guarded commit of `scored` in `game`.
    fn forward<E>(game: &Game, question_id: &str, scored: Scored, flight: Option<InFlight>) -> Decision<ScoreCommit, E> {
        let boards = TriviaRedis::boards_for(game, &scored);
        let name = game.players.get(&scored.player).map(|p| p.name.clone()).unwrap_or_default();
        Decision::Forward {
            outputs: outputs(game, question_id, &scored, &boards),
            commit: ScoreCommit {
                game: game.id.clone(),
                scored,
                name,
                boards,
                again: flight.is_none(),
                _flight: flight,
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
    type Effect = Pending;

    fn decode(&self, payload: &[u8]) -> Result<TriviaAnswer, String> {
        herald_schemas::decode(payload).map_err(|e| e.to_string())
    }

    async fn decide(&self, a: TriviaAnswer, meta: &MsgMeta) -> Result<Decision<ScoreCommit, Pending>, StageError> {
        Ok(Decision::Apply(Pending {
            answer: a,
            seq: meta.stream_sequence,
        }))
    }

    /// Writes the answer into its game with the others waiting (see [`GameWriter`]),
    /// then decides from what the write found. A refusal is counted in
    /// `herald_trivia_answers_refused_total` by its reason.
    async fn apply(&self, p: Pending, _meta: &MsgMeta) -> Result<Applied<ScoreCommit>, StageError> {
        let verdict = self.writer.write(p).await?;
        if let Some(reason) = verdict.refusal() {
            metrics::counter!(super::metrics::ANSWERS_REFUSED.name, "reason" => reason).increment(1);
        }
        let drop = |reason, effect| Applied {
            decision: Decision::Drop { reason },
            effect,
        };
        Ok(match verdict {
            Verdict::Fresh {
                game,
                question_id,
                scored,
                flight,
            } => Applied {
                decision: Self::forward(&game, &question_id, scored, Some(flight)),
                effect: Effect::Made,
            },
            Verdict::Twin => drop("already_scored", Effect::AlreadyMade),
            // committed means published: a repeat publishes nothing (issue 21); only a
            // crash between the game write and the commit is healed by publishing again
            Verdict::Repeat { game, question_id, scored } => {
                if self.trivia.redis.is_scored(&game.id, scored.question, scored.player).await? {
                    drop("already_scored", Effect::AlreadyMade)
                } else {
                    Applied {
                        decision: Self::forward(&game, &question_id, scored, None),
                        effect: Effect::AlreadyMade,
                    }
                }
            }
            Verdict::Refused(reason) => drop(reason, Effect::NotMade),
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
