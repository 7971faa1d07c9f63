//! The lottery's commands.

use teloxide::utils::command::BotCommands;

/// The commands the router hands to the lottery.
#[derive(BotCommands, Debug, Clone, PartialEq)]
#[command(rename_rule = "lowercase")]
pub enum LotteryCommand {
    #[command(description = "this week's lottery: pot, time left, your tickets")]
    Lottery,
    #[command(description = "buy N lottery tickets from your balance, e.g. /buy 5")]
    Buy(String),
    #[command(description = "your lottery tickets, this round and past ones")]
    Tickets,
    #[command(description = "past draws, their winners and how to verify them")]
    Draws,
    #[command(description = "a draw's proof bundle, e.g. /verify 12")]
    Verify(String),
    #[command(description = "your referral link")]
    Ref,
}

impl LotteryCommand {
    /// Parses a routed command's text.
    ///
    /// ```
    /// use herald_pipeline::products::lottery::commands::LotteryCommand;
    /// assert_eq!(LotteryCommand::from_text("/buy 3"), Some(LotteryCommand::Buy("3".into())));
    /// assert_eq!(LotteryCommand::from_text("/chat"), None);
    /// ```
    pub fn from_text(text: &str) -> Option<Self> {
        <Self as BotCommands>::parse(text, "").ok()
    }
}

/// How many tickets `/buy ARG` asks for: 1 when no argument.
///
/// ```
/// use herald_pipeline::products::lottery::commands::ticket_count;
/// assert_eq!(ticket_count("", 100), Ok(1));
/// assert_eq!(ticket_count(" 7 ", 100), Ok(7));
/// assert!(ticket_count("0", 100).is_err());
/// assert!(ticket_count("101", 100).is_err());
/// assert!(ticket_count("-3", 100).is_err());
/// ```
///
/// Errors: the text to send back (not a number, zero, above `max`).
pub fn ticket_count(arg: &str, max: u64) -> Result<u64, String> {
    let arg = arg.trim();
    if arg.is_empty() {
        return Ok(1);
    }
    match arg.parse::<u64>() {
        Ok(n) if (1..=max).contains(&n) => Ok(n),
        _ => Err(format!("Usage: /buy N, with N from 1 to {max}.")),
    }
}

/// The `/admin` subcommand of the lottery: `/admin lottery status|pause|resume`.
pub const ADMIN: &[&str] = &["lottery"];

/// `/help`'s note.
pub const HELP: &str = "Lottery: tickets are paid from your balance (/deposit). Winners are credited automatically, nothing to claim. Every draw can be checked by anyone: /verify ROUND.";
