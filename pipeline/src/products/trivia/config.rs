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
    /// Where the Mini App and its API listen (`/trivia/app`, `/trivia/api/...`).
    #[arg(long, env = "HERALD_TRIVIA_HTTP", default_value = "127.0.0.1:8093")]
    pub trivia_http: std::net::SocketAddr,
    /// The bot's token, which signs the Mini App's `initData`. Without it the Mini App
    /// is off (nothing could prove who a player is).
    #[arg(long, env = "HERALD_TRIVIA_BOT_TOKEN", hide_env_values = true)]
    pub trivia_bot_token: Option<String>,
    /// The HS256 key of the Mini App's tokens; by default derived from the bot token,
    /// so every pipeline of a deployment agrees.
    #[arg(long, env = "HERALD_TRIVIA_JWT_SECRET", hide_env_values = true)]
    pub trivia_jwt_secret: Option<String>,
    /// How long a Mini App token lives.
    #[arg(long, env = "HERALD_TRIVIA_JWT_TTL", default_value = "15m", value_parser = parse_duration)]
    pub trivia_jwt_ttl: Duration,
    /// The oldest `initData` (by its `auth_date`) exchanged for a token.
    #[arg(long, env = "HERALD_TRIVIA_INIT_DATA_MAX_AGE", default_value = "1h", value_parser = parse_duration)]
    pub trivia_init_data_max_age: Duration,
    /// The Mini App's public address (`https://…/trivia/app`; Telegram opens only
    /// https pages): `/trivia` in a private chat then offers a button that opens it.
    #[arg(long, env = "HERALD_TRIVIA_APP_URL")]
    pub trivia_app_url: Option<String>,
    /// An OpenAI-compatible chat-completions endpoint for short explanations
    /// (`https://api.deepseek.com`, `https://api.openai.com/v1`; requests go to
    /// `<url>/chat/completions`). Off when unset: questions go without one.
    #[arg(long, env = "HERALD_TRIVIA_AI_URL")]
    pub trivia_ai_url: Option<String>,
    /// The endpoint's API key (a bearer token).
    #[arg(long, env = "HERALD_TRIVIA_AI_KEY", hide_env_values = true, default_value = "")]
    pub trivia_ai_key: String,
    /// The model to ask.
    #[arg(long, env = "HERALD_TRIVIA_AI_MODEL", default_value = "deepseek-chat")]
    pub trivia_ai_model: String,
    /// How long one explanation may take before the question goes without.
    #[arg(long, env = "HERALD_TRIVIA_AI_TIMEOUT", default_value = "5s", value_parser = parse_duration)]
    pub trivia_ai_timeout: Duration,
}

impl TriviaArgs {
    /// Refuses settings Telegram cannot take.
    ///
    /// Errors: a question time outside 5–600 s; a Mini App address that is not https.
    pub fn check(&self) -> anyhow::Result<()> {
        let s = self.trivia_question_time.as_secs();
        anyhow::ensure!((5..=600).contains(&s), "--trivia-question-time must be 5–600 s (a quiz poll's open_period), not {s} s");
        if let Some(url) = &self.trivia_app_url {
            anyhow::ensure!(url.starts_with("https://"), "--trivia-app-url must be https:// (Telegram opens Mini Apps over https only)");
        }
        Ok(())
    }
}
