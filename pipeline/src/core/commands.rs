//! The core's own commands and texts: `/start`, `/help`, `/admin lock|unlock`.

use herald_schemas::MenuCommand;
use teloxide::utils::command::BotCommands;

/// Commands every deployment has, whatever products run.
#[derive(BotCommands, Debug, Clone, PartialEq)]
#[command(rename_rule = "lowercase")]
pub enum CoreCommand {
    // `/start [payload]`: register, or come back (the payload is a deep link's).
    #[command(description = "start, or come back")]
    Start(String),
    #[command(description = "this message")]
    Help,
    // `/admin SUBCOMMAND ...`: for `--admin-ids` only; hidden from the menu.
    #[command(hide)]
    Admin(String),
}

/// The reply to a locked user's update (anything but /start and /help).
pub const LOCKED: &str = "Your account is locked. Contact support.";

/// The one reply a user gets on going over a product's inbound limit.
pub const SLOW_DOWN: &str = "Slow down: you are sending too fast. Try again in a moment.";

/// The core's `/admin` subcommands (products add theirs).
pub const ADMIN_USAGE: &str = "<b>/admin</b> lock ID · unlock ID · stats · status";

impl CoreCommand {
    /// Parses a command split by [`super::router::split_command`]; `None` if it is not
    /// a core command.
    ///
    /// ```
    /// use herald_pipeline::core::commands::CoreCommand;
    /// assert_eq!(CoreCommand::parse("start", "ref42"), Some(CoreCommand::Start("ref42".into())));
    /// assert_eq!(CoreCommand::parse("admin", "lock 7"), Some(CoreCommand::Admin("lock 7".into())));
    /// assert_eq!(CoreCommand::parse("filters", ""), None);
    /// ```
    pub fn parse(name: &str, args: &str) -> Option<Self> {
        let text = format!("/{name} {args}");
        <Self as BotCommands>::parse(text.trim_end(), "").ok()
    }

    /// Names the core keeps for itself.
    pub fn names() -> [&'static str; 3] {
        ["start", "help", "admin"]
    }

    /// The core's entries in Telegram's command menu.
    pub fn menu() -> Vec<MenuCommand> {
        menu_of::<Self>()
    }
}

/// A `BotCommands` enum's visible commands as menu entries (without the slash).
///
/// ```
/// use herald_pipeline::core::commands::{menu_of, CoreCommand};
/// let menu = menu_of::<CoreCommand>();
/// assert_eq!(menu.iter().map(|c| c.command.as_str()).collect::<Vec<_>>(), ["start", "help"]);
/// ```
pub fn menu_of<C: BotCommands>() -> Vec<MenuCommand> {
    C::bot_commands()
        .into_iter()
        .map(|c| MenuCommand {
            command: c.command.trim_start_matches('/').to_string(),
            description: c.description,
        })
        .collect()
}
