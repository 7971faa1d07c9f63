//! The scorer's write: one compare-and-set per game for all of its pending answers.
//!
//! Answers to one game arrive together (a group's players press within the same
//! second). Written one by one, each is a read and a compare-and-set of the whole game,
//! in turn, so a game's fifth answer waits for the four before it (issue 25 measured
//! p99 115–121 ms for the scorer alone at 2,000 answers in 400 games). Here a
//! [`Batcher`] gathers whatever answers are waiting; each game in the batch is read
//! once, judged for each of its answers in stream order, and written once. Games in a
//! batch are written concurrently.
//!
//! A conflict (the clock moved the game on meanwhile) re-reads and re-judges the
//! game's answers (the core's [`kv_json::update`] loop), each retry counted as
//! `herald_trivia_game_write_conflicts_total`; an answer that came in time still
//! counts after its question closed (see [`Game::answer`]).
//!
//! A score written here is *in flight* until its scorer's commit is done or dropped
//! (an [`InFlight`] guard): another answer of the same player to the same question
//! meanwhile (a second press) is [`Verdict::Twin`], dropped, instead of publishing the
//! same result again.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use herald_runtime::batch::Batcher;
use herald_runtime::StageError;
use herald_schemas::{subjects, TriviaAnswer};

use crate::core::kv_json;

use super::game::{Game, Refusal, Scored};
use super::service::Trivia;

/// Answers per batch: the scorer's in-flight bound (`StageConfig::max_in_flight`).
const MAX_BATCH: usize = 256;

/// One answer to write, with its stream sequence (the order within its game).
#[derive(Debug, Clone)]
pub struct Pending {
    pub answer: TriviaAnswer,
    pub seq: u64,
}

/// What the write found for one answer.
#[derive(Debug)]
pub enum Verdict {
    /// Scored now: written into `game`, which holds it. In flight until `flight` drops.
    Fresh {
        game: Arc<Game>,
        question_id: String,
        scored: Scored,
        flight: InFlight,
    },
    /// Scored by an earlier write and not in flight here (a redelivery, or a press
    /// after the first one's commit, or a crash between a write and its commit).
    Repeat {
        game: Arc<Game>,
        question_id: String,
        scored: Scored,
    },
    /// Scored by another answer in flight in this process (a second press): that one
    /// publishes and commits.
    Twin,
    /// Not scored, with the reason (a metrics label): `unknown_game`,
    /// `no_such_question` or a [`Refusal::reason`].
    Refused(&'static str),
}

impl Verdict {
    /// Why the answer was not scored now (a metrics label), or `None` for a fresh score.
    pub fn refusal(&self) -> Option<&'static str> {
        match self {
            Verdict::Fresh { .. } => None,
            Verdict::Repeat { .. } | Verdict::Twin => Some("already_scored"),
            Verdict::Refused(reason) => Some(*reason),
        }
    }
}

type Key = (String, u32, i64);

/// Scores written but not yet committed, by (game, question, player).
#[derive(Debug, Clone, Default)]
struct Flights(Arc<Mutex<HashSet<Key>>>);

impl Flights {
    fn contains(&self, key: &Key) -> bool {
        self.0.lock().expect("flights lock").contains(key)
    }

    fn start(&self, key: Key) -> InFlight {
        self.0.lock().expect("flights lock").insert(key.clone());
        InFlight { flights: self.clone(), key }
    }
}

/// Marks one written score in flight; dropping it (after the commit, or with a failed
/// input) ends that.
#[derive(Debug)]
pub struct InFlight {
    flights: Flights,
    key: Key,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.flights.0.lock().expect("flights lock").remove(&self.key);
    }
}

/// The batcher of answer writes (cheap to clone).
#[derive(Clone)]
pub struct GameWriter {
    batcher: Batcher<Pending, Result<Verdict, StageError>>,
}

impl GameWriter {
    /// Spawns the batcher's task on the current tokio runtime.
    pub fn new(trivia: Arc<Trivia>) -> Self {
        let flights = Flights::default();
        let batcher = Batcher::new("trivia_answers", MAX_BATCH, move |batch: Vec<Pending>| {
            let (trivia, flights) = (trivia.clone(), flights.clone());
            async move { Ok(write_batch(&trivia, &flights, batch).await) }
        });
        GameWriter { batcher }
    }

    /// Writes `answer` into its game together with the other answers waiting.
    ///
    /// Errors: transient (KV unreachable, the game kept changing, the batcher gone:
    /// retried by redelivery) or permanent (the game asks a question the bank does not
    /// have: dead-lettered).
    pub async fn write(&self, answer: Pending) -> Result<Verdict, StageError> {
        self.batcher.call(answer).await.map_err(StageError::Transient)?
    }
}

/// Each game of the batch written concurrently; verdicts in the batch's order. A game
/// whose write failed fails only its own answers (an error of the whole batch would
/// fail the other games' too).
async fn write_batch(trivia: &Trivia, flights: &Flights, batch: Vec<Pending>) -> Vec<Result<Verdict, StageError>> {
    let mut by_game: HashMap<String, Vec<usize>> = HashMap::new();
    for (i, p) in batch.iter().enumerate() {
        by_game.entry(p.answer.game.clone()).or_default().push(i);
    }
    let writes = by_game.into_iter().map(|(id, mut idx)| {
        idx.sort_by_key(|&i| batch[i].seq);
        let answers: Vec<&Pending> = idx.iter().map(|&i| &batch[i]).collect();
        async move {
            let verdicts = write_game(trivia, flights, &id, &answers).await;
            (idx, verdicts)
        }
    });
    let mut verdicts: Vec<Option<Result<Verdict, StageError>>> = (0..batch.len()).map(|_| None).collect();
    for (idx, result) in futures::future::join_all(writes).await {
        match result {
            Ok(vs) => idx.into_iter().zip(vs).for_each(|(i, v)| verdicts[i] = Some(v)),
            Err(e) => idx
                .into_iter()
                .for_each(|i| verdicts[i] = Some(Err(StageError::Transient(anyhow::anyhow!("{e:#}"))))),
        }
    }
    verdicts.into_iter().map(|v| v.expect("every answer has a verdict")).collect()
}

/// What judging one answer against a read of its game found.
enum Judged {
    Fresh(String, Scored),
    Repeat(String, Scored),
    Twin,
    Refused(&'static str),
    Permanent(String),
}

/// Reads `id`, judges `answers` in order, writes the game if any was scored. The
/// compare-and-set loop is the core's [`kv_json::update`]: a conflict re-reads and
/// judges again, and only the round that landed counts.
///
/// Errors: KV unreachable, the stored game undecodable, or 100 conflicts in a row.
async fn write_game(trivia: &Trivia, flights: &Flights, id: &str, answers: &[&Pending]) -> anyhow::Result<Vec<Result<Verdict, StageError>>> {
    let (mut rounds, mut judged) = (0u64, Vec::new());
    let game = kv_json::update(&trivia.games.kv, &subjects::kv_key(id), |read: Option<Game>| {
        rounds += 1;
        let mut game = read?;
        let before = game.answers.len();
        judged = answers.iter().map(|p| judge(trivia, flights, &mut game, before, &p.answer)).collect();
        judged.iter().any(|j| matches!(j, Judged::Fresh(..))).then_some(game)
    })
    .await?;
    metrics::counter!(super::metrics::GAME_WRITE_CONFLICTS.name).increment(rounds.saturating_sub(1));
    let Some(game) = game.map(Arc::new) else {
        return Ok(answers.iter().map(|_| Ok(Verdict::Refused("unknown_game"))).collect());
    };
    Ok(judged
        .into_iter()
        .map(|j| match j {
            Judged::Fresh(question_id, scored) => Ok(Verdict::Fresh {
                flight: flights.start((game.id.clone(), scored.question, scored.player)),
                game: game.clone(),
                question_id,
                scored,
            }),
            Judged::Repeat(question_id, scored) => Ok(Verdict::Repeat {
                game: game.clone(),
                question_id,
                scored,
            }),
            Judged::Twin => Ok(Verdict::Twin),
            Judged::Refused(reason) => Ok(Verdict::Refused(reason)),
            Judged::Permanent(why) => Err(StageError::Permanent(why)),
        })
        .collect())
}

/// One answer against the game as read (`before`: how many answers it held then) and
/// as changed by the answers judged before it.
fn judge(trivia: &Trivia, flights: &Flights, game: &mut Game, before: usize, a: &TriviaAnswer) -> Judged {
    let Some(question_id) = game.questions.get(a.question as usize).cloned() else {
        return Judged::Refused("no_such_question");
    };
    let Some(question) = trivia.bank.get(&question_id) else {
        return Judged::Permanent(format!("question {question_id} of game {} is not in the bank", game.id));
    };
    match game.answer(a, question) {
        Ok(scored) => Judged::Fresh(question_id, scored),
        Err(Refusal::AlreadyScored(s)) => {
            // scored by an answer before it in this batch, or by one still in flight
            if game.answers[before..].contains(&s) || flights.contains(&(game.id.clone(), s.question, s.player)) {
                Judged::Twin
            } else {
                Judged::Repeat(question_id, s)
            }
        }
        Err(r) => Judged::Refused(r.reason()),
    }
}
