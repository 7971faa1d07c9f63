//! Trivia's metrics. Declared once here (see `herald_runtime::metric`), described at start.

use herald_runtime::metric::Metric;

/// Answers scored (once each).
pub const SCORED: Metric = Metric::counter("herald_trivia_scored_total", "Answers scored (once each)");
/// Answers refused (late, repeated, already scored, ...), by reason.
pub const ANSWERS_REFUSED: Metric = Metric::counter("herald_trivia_answers_refused_total", "Answers refused (late, repeated, already scored, ...), by reason").labelled(&["reason"]);
/// From an answer to its score, seconds.
pub const SCORE_LAG: Metric = Metric::seconds("herald_trivia_score_lag_seconds", "From an answer to its score, seconds");
/// Group writes of a game's pending answers retried because the game changed
/// meanwhile (the clock moved it on): see `writer`.
pub const GAME_WRITE_CONFLICTS: Metric = Metric::counter(
    "herald_trivia_game_write_conflicts_total",
    "Writes of a game's pending answers retried because the game changed meanwhile",
);
/// Games finished, by mode.
pub const GAMES_FINISHED: Metric = Metric::counter("herald_trivia_games_finished_total", "Games finished, by mode").labelled(&["mode"]);
/// Questions the game clock moved on.
pub const CLOCK_MOVES: Metric = Metric::counter("herald_trivia_clock_moves_total", "Questions the game clock moved on");
/// Questions flagged by players.
pub const FLAGS: Metric = Metric::counter("herald_trivia_flags_total", "Questions flagged by players");
/// Explanations the AI endpoint wrote.
pub const AI_EXPLANATIONS: Metric = Metric::counter("herald_trivia_ai_explanations_total", "Explanations the AI endpoint wrote");
/// AI endpoint calls that failed (the answer goes without).
pub const AI_FAILURES: Metric = Metric::counter("herald_trivia_ai_failures_total", "AI endpoint calls that failed (the answer goes without)");

/// All of them.
pub const ALL: &[Metric] = &[SCORED, ANSWERS_REFUSED, SCORE_LAG, GAME_WRITE_CONFLICTS, GAMES_FINISHED, CLOCK_MOVES, FLAGS, AI_EXPLANATIONS, AI_FAILURES];
