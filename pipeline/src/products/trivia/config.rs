//! Trivia's flags (`pipeline run`).

use std::time::Duration;

pub use herald_runtime::config::parse_duration;

/// Trivia: quiz games, leaderboards, the daily challenge, the Mini App.
#[derive(clap::Args, Debug, Clone)]
pub struct TriviaArgs {
    /// Questions in a game (private or group).
    #[arg(long, env = "HERALD_TRIVIA_QUESTIONS", default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=50))]
    pub trivia_questions: u32,
    /// Questions in the daily challenge.
    #[arg(long, env = "HERALD_TRIVIA_DAILY_QUESTIONS", default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=50))]
    pub trivia_daily_questions: u32,
    /// How long a question is open (`T` of the points formula; a quiz poll's
    /// `open_period`, which Telegram takes from 5 s to 600 s).
    #[arg(long, env = "HERALD_TRIVIA_QUESTION_TIME", default_value = "20s", value_parser = parse_duration)]
    pub trivia_question_time: Duration,
    /// How long a group's lobby waits for players before starting on its own.
    #[arg(long, env = "HERALD_TRIVIA_LOBBY_TIME", default_value = "60s", value_parser = parse_duration)]
    pub trivia_lobby_time: Duration,
    /// Distinct players whose `/flag` quarantines a question until an admin reviews it.
    #[arg(long, env = "HERALD_TRIVIA_FLAGS", default_value_t = 3)]
    pub trivia_flags: u64,
    /// How often the clock looks for games whose question or lobby ran out.
    #[arg(long, env = "HERALD_TRIVIA_TICK", default_value = "250ms", value_parser = parse_duration)]
    pub trivia_tick: Duration,
}

impl TriviaArgs {
    /// Refuses a question time Telegram's quiz polls cannot have.
    ///
    /// Errors: outside 5–600 s.
    pub fn check(&self) -> anyhow::Result<()> {
        let s = self.trivia_question_time.as_secs();
        anyhow::ensure!((5..=600).contains(&s), "--trivia-question-time must be 5–600 s (a quiz poll's open_period), not {s} s");
        Ok(())
    }
}
