//! The random chat's flags (`pipeline run`).

use std::time::Duration;

/// Random chat: anonymous pairing and relay.
#[derive(clap::Args, Debug, Clone)]
pub struct ChatArgs {
    /// A chat with no message for this long ends, and both are told (`600`, `90s`,
    /// `10m`, `1h`).
    #[arg(long, env = "HERALD_CHAT_TIMEOUT", default_value = "10m", value_parser = parse_duration)]
    pub chat_timeout: Duration,
    /// A queue entry expires after this long: nobody is paired with someone who left
    /// long ago, and the waiting user is told.
    #[arg(long, env = "HERALD_CHAT_QUEUE_TTL", default_value = "10m", value_parser = parse_duration)]
    pub chat_queue_ttl: Duration,
    /// Live queue entries at most: a search beyond is refused with a clear answer (0 =
    /// no cap). Seed 004's queue size.
    #[arg(long, env = "HERALD_CHAT_QUEUE_CAP", default_value_t = 500)]
    pub chat_queue_cap: u64,
    /// A user's `/chat` searches at most once per this (`0` = no limit), apart from the
    /// product's update limit. Seed 004's `ratelimit:chat_command` (60 s).
    #[arg(long, env = "HERALD_CHAT_SEARCH_COOLDOWN", default_value = "60s", value_parser = parse_cooldown)]
    pub chat_search_cooldown: Duration,
    /// The moderators' chat: a `/report` copies its evidence there. Without it reports
    /// are kept (and logged) but no evidence is copied anywhere.
    #[arg(long, env = "HERALD_CHAT_MODERATORS", allow_hyphen_values = true)]
    pub chat_moderators: Option<i64>,
    /// Relay with `protect_content` (the partner cannot forward or save what they get).
    #[arg(long, env = "HERALD_CHAT_PROTECT_CONTENT", default_value_t = true, action = clap::ArgAction::Set)]
    pub chat_protect_content: bool,
    /// In a user's first chat, only text without links, stickers, dice and polls are
    /// relayed (no media, links, contacts or places).
    #[arg(long, env = "HERALD_CHAT_NEWCOMER_TEXT_ONLY", default_value_t = true, action = clap::ArgAction::Set)]
    pub chat_newcomer_text_only: bool,
    /// How long an album waits for its last part after the latest one arrived, ms
    /// (Telegram delivers an album's parts as separate updates within a moment).
    #[arg(long, env = "HERALD_CHAT_ALBUM_WAIT_MS", default_value_t = 700)]
    pub chat_album_wait_ms: u64,
    /// Spacing of relays toward one chat, ms, counted from Telegram's answer on the
    /// previous one: Telegram allows about one message per second per chat
    /// (core.telegram.org/bots/faq), and 1.2 s keeps a busy chat off the limit's edge;
    /// what arrives meanwhile is batched into one `copyMessages`.
    #[arg(long, env = "HERALD_CHAT_PACE_MS", default_value_t = 1200)]
    pub chat_pace_ms: u64,
}

impl ChatArgs {
    /// The outbox's timing.
    pub fn timing(&self) -> super::outbox::Timing {
        super::outbox::Timing {
            album_wait: Duration::from_millis(self.chat_album_wait_ms),
            pace: Duration::from_millis(self.chat_pace_ms),
            // longer than a 429's usual retry_after; a late report only costs a republish
            // the stream's dedup window or the bot's delivered key drops
            report_wait: Duration::from_secs(60),
        }
    }
}

pub use herald_runtime::config::parse_duration;

/// A duration that may be zero (`0`: off), else as [`parse_duration`].
///
/// ```
/// use herald_pipeline::products::chat::config::parse_cooldown;
/// assert_eq!(parse_cooldown("0"), Ok(std::time::Duration::ZERO));
/// assert_eq!(parse_cooldown("60s"), Ok(std::time::Duration::from_secs(60)));
/// assert!(parse_cooldown("soon").is_err());
/// ```
pub fn parse_cooldown(s: &str) -> Result<Duration, String> {
    match s.trim() {
        "0" => Ok(Duration::ZERO),
        other => parse_duration(other),
    }
}
