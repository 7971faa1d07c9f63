//! Trivia's commands and what it says.

use teloxide::utils::command::BotCommands;

/// The commands the router hands to trivia.
#[derive(BotCommands, Debug, Clone, PartialEq)]
#[command(rename_rule = "lowercase")]
pub enum TriviaCommand {
    // `/trivia [category] [easy|medium|hard]`, `/trivia stop` (a comment: teloxide
    // would join a doc comment to the menu's description)
    #[command(description = "play trivia (in a group: open a game for everyone)")]
    Trivia(String),
    #[command(description = "today's challenge: 5 questions, one attempt, ranked")]
    Daily,
    // `/top [today|daily|week|all]` (also day, weekly, alltime: `scoring::Period::parse`)
    #[command(description = "leaderboard (today, week or all time)")]
    Top(String),
    #[command(description = "your trivia stats")]
    Stats,
    #[command(description = "report the last question as wrong or broken")]
    Flag,
}

impl TriviaCommand {
    /// Parses a routed command's text.
    ///
    /// ```
    /// use herald_pipeline::products::trivia::commands::TriviaCommand;
    /// assert_eq!(TriviaCommand::from_text("/trivia history hard"), Some(TriviaCommand::Trivia("history hard".into())));
    /// assert_eq!(TriviaCommand::from_text("/top week"), Some(TriviaCommand::Top("week".into())));
    /// assert_eq!(TriviaCommand::from_text("/balance"), None);
    /// ```
    pub fn from_text(text: &str) -> Option<Self> {
        <Self as BotCommands>::parse(text, "").ok()
    }
}

/// Commands that also work in groups.
pub const GROUP: &[&str] = &["trivia", "top"];

/// The `/admin` subcommands of trivia.
pub const ADMIN: &[&str] = &["flags"];

/// `/help`'s note.
pub const HELP: &str = "<b>/trivia</b> [category] [easy|medium|hard] — e.g. <code>/trivia history hard</code>; in a group it opens a game for everyone. Private games count toward your /stats; group games and /daily count on the leaderboards.";

pub const ADMIN_USAGE: &str = "<b>/admin flags</b> — quarantined questions · <b>/admin flags keep ID</b> — back in play · <b>/admin flags drop ID</b> — out for good";
