//! The random chat's commands and what it says.

use teloxide::utils::command::BotCommands;

/// The commands the router hands to the random chat.
#[derive(BotCommands, Debug, Clone, PartialEq)]
#[command(rename_rule = "lowercase")]
pub enum ChatCommand {
    #[command(description = "chat with a random stranger, anonymously")]
    Chat,
    #[command(description = "end this chat and find someone new")]
    Next,
    #[command(description = "end this chat")]
    Stop,
    #[command(description = "end this chat and report the partner to moderators")]
    Report,
}

impl ChatCommand {
    /// Parses a routed command's text.
    ///
    /// ```
    /// use herald_pipeline::products::chat::commands::ChatCommand;
    /// assert_eq!(ChatCommand::from_text("/next"), Some(ChatCommand::Next));
    /// assert_eq!(ChatCommand::from_text("/balance"), None);
    /// ```
    pub fn from_text(text: &str) -> Option<Self> {
        <Self as BotCommands>::parse(text, "").ok()
    }
}

/// The `/admin` subcommands of the random chat.
pub const ADMIN: &[&str] = &["ban", "unban"];

/// `/help`'s note.
pub const HELP: &str = "Chats are anonymous: your partner sees only what you send. Nothing is kept unless one of you sends /report.";

pub const SEARCHING: &str = "🔎 Searching for a partner…";
pub const PAIRED: &str = "🎉 Partner found — say hi!\n/next — someone else · /stop — end the chat · /report — report abuse";
pub const YOU_LEFT: &str = "You left the chat. /chat to find someone new.";
pub const PARTNER_LEFT: &str = "Your partner left the chat. /chat to find someone new.";
pub const NOT_IN_CHAT: &str = "You are not in a chat. /chat to find someone.";
pub const STILL_SEARCHING: &str = "Still searching for a partner… /stop to cancel.";
pub const ALREADY_CHATTING: &str = "You are already in a chat. /next for someone else, /stop to end it.";
pub const SEARCH_CANCELLED: &str = "Search cancelled. /chat to search again.";
pub const UNDELIVERABLE: &str = "⚠️ This message could not be delivered.";
pub const PROTECTED: &str = "⚠️ Not delivered: this message is protected from copying and forwarding.";
pub const NEWCOMER: &str = "⚠️ Not delivered: in your first chat you can send text without links, stickers, dice and polls. Media and links unlock in your next chat.";
pub const QUEUE_FULL: &str = "😕 Too many people are waiting for a partner right now. Try /chat again in a minute.";
pub const NOTHING_TO_REPORT: &str = "There is no recent chat to report.";

/// "Searching… N online".
pub fn searching(online: u64) -> String {
    format!("{SEARCHING} {online} online.")
}

/// `/chat` within the cooldown: when to search again (whole seconds, rounded up).
pub fn too_soon(wait_ms: u64) -> String {
    format!("⏳ You searched a moment ago. /chat again in {} s.", wait_ms.div_ceil(1000).max(1))
}

/// The chat ended by the timeout.
pub fn timed_out(minutes: u64) -> String {
    format!("⌛ The chat ended after {minutes} min without a message. /chat to find someone new.")
}

/// The queue entry expired.
pub fn nobody_found(minutes: u64) -> String {
    format!("Nobody was found in {minutes} min. /chat to try again.")
}
