//! Trivia's events on the TRIVIA stream, so any consumer (an export, an analytics job)
//! can follow the games:
//!
//! - [`TriviaAnswer`] on `herald.trivia.answer.<game>`: a player's answer, from a quiz
//!   poll, a button or the Mini App, timed by the server;
//! - [`TriviaResult`] on `herald.trivia.result.<game>`: that answer scored, once per
//!   (game, question, player);
//! - [`TriviaGameEvent`] on `herald.trivia.game.<game>`: a game started or ended;
//! - [`BoardChange`] on `herald.trivia.board.<player>`: points added to leaderboards;
//! - [`ExplainRequest`] on `herald.trivia.explain.<question>`: a question asked that has
//!   no explanation yet, for the optional AI explainer.
//!
//! Times are ms since the epoch.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::Versioned;

/// Where an answer came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum AnswerVia {
    /// A `poll_answer` update to a quiz poll.
    Poll,
    /// An inline button in a group game.
    Button,
    /// `POST /trivia/api/games/<game>/answers` from the Mini App.
    App,
}

/// One answer to one question of one game.
///
/// ```
/// use herald_schemas::{AnswerVia, TriviaAnswer};
/// let a = TriviaAnswer::new("g7", 0, 42, 2, 1_000, AnswerVia::Button, "Ann");
/// let back: TriviaAnswer = herald_schemas::decode(&herald_schemas::encode(&a)).unwrap();
/// assert_eq!(back, a);
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct TriviaAnswer {
    pub v: u32,
    pub game: String,
    /// The question's index in the game, from 0.
    pub question: u32,
    /// The player's Telegram user id.
    pub player: i64,
    /// The chosen option's index, from 0, in the order the options were shown.
    pub option: u8,
    /// When the server received it (the stream's timestamp of the update or request).
    pub at_ms: u64,
    pub via: AnswerVia,
    /// The player's display name (first name), for leaderboards.
    #[serde(default)]
    pub name: String,
}

impl TriviaAnswer {
    /// A version-1 answer.
    pub fn new(
        game: impl Into<String>,
        question: u32,
        player: i64,
        option: u8,
        at_ms: u64,
        via: AnswerVia,
        name: impl Into<String>,
    ) -> Self {
        TriviaAnswer {
            v: 1,
            game: game.into(),
            question,
            player,
            option,
            at_ms,
            via,
            name: name.into(),
        }
    }
}

impl Versioned for TriviaAnswer {
    const VERSION: u32 = 1;
    const SCHEMA_NAME: &'static str = "trivia_answer";
    fn version(&self) -> u32 {
        self.v
    }
}

/// An answer scored: published once per (game, question, player), under the message id
/// `result:<game>:<question>:<player>`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct TriviaResult {
    pub v: u32,
    pub game: String,
    pub question: u32,
    /// The bank's id of the question (16 hex digits).
    pub question_id: String,
    pub player: i64,
    pub correct: bool,
    /// Points for speed: `round(1000 · (1 − t/T/2))` when correct, else 0.
    pub points: u32,
    /// The streak bonus: +100 per earlier correct answer in the streak, at most +500.
    pub bonus: u32,
    /// Correct answers in a row, this one included (0 after a wrong answer).
    pub streak: u32,
    /// Milliseconds from the question being asked to the answer.
    pub elapsed_ms: u64,
    pub at_ms: u64,
    /// Whether it counts on the global boards (group games and the daily challenge).
    pub ranked: bool,
    /// The group, for a group game.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<i64>,
    /// The player's display name at the time, for leaderboards rebuilt from results.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

impl Versioned for TriviaResult {
    const VERSION: u32 = 1;
    const SCHEMA_NAME: &'static str = "trivia_result";
    fn version(&self) -> u32 {
        self.v
    }
}

/// A player's line in a finished game.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct FinalScore {
    pub player: i64,
    pub name: String,
    pub score: u64,
    pub correct: u32,
    pub best_streak: u32,
    /// Dropped out after missing questions in a row.
    pub dropped: bool,
}

/// A game's start or end.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum GameStep {
    Started {
        players: Vec<i64>,
        questions: u32,
    },
    Ended {
        scores: Vec<FinalScore>,
        duration_ms: u64,
    },
    /// A lobby that never got enough players.
    Cancelled {
        reason: String,
    },
}

/// `herald.trivia.game.<game>`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct TriviaGameEvent {
    pub v: u32,
    pub game: String,
    /// `private`, `group`, `daily` or `app`.
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<i64>,
    pub at_ms: u64,
    #[serde(flatten)]
    pub step: GameStep,
}

impl Versioned for TriviaGameEvent {
    const VERSION: u32 = 1;
    const SCHEMA_NAME: &'static str = "trivia_game_event";
    fn version(&self) -> u32 {
        self.v
    }
}

/// Points added to a player's leaderboards by one scored answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct BoardChange {
    pub v: u32,
    pub player: i64,
    /// Points added (speed points plus bonus).
    pub delta: u64,
    /// The boards changed: `global:all`, `global:d:2026-12-03`, `global:w:2026-W49`,
    /// `group:<chat>:all`, ...
    pub boards: Vec<String>,
    /// The answer it comes from: `<game>:<question>`.
    pub source: String,
    pub at_ms: u64,
}

impl Versioned for BoardChange {
    const VERSION: u32 = 1;
    const SCHEMA_NAME: &'static str = "trivia_board_change";
    fn version(&self) -> u32 {
        self.v
    }
}

/// A question that has no explanation yet, published (message id `explain:<question>`)
/// when it is asked, for the optional AI explainer to fill in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ExplainRequest {
    pub v: u32,
    /// The bank's id of the question.
    pub question_id: String,
}

impl Versioned for ExplainRequest {
    const VERSION: u32 = 1;
    const SCHEMA_NAME: &'static str = "trivia_explain_request";
    fn version(&self) -> u32 {
        self.v
    }
}
