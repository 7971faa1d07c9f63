//! The bot's configuration.

use std::net::SocketAddr;

/// Telegram connection settings.
#[derive(clap::Args, Debug, Clone)]
pub struct TelegramArgs {
    /// Bot token from @BotFather. Never logged.
    #[arg(long, env = "TELOXIDE_TOKEN", hide_env_values = true)]
    pub token: String,
    /// Bot API base URL (the loadtest emulator in tests and demos).
    #[arg(long, env = "TELOXIDE_API_URL", default_value = "https://api.telegram.org")]
    pub api_url: String,
}

impl TelegramArgs {
    /// A teloxide bot for this token and base URL.
    pub fn bot(&self) -> anyhow::Result<teloxide::Bot> {
        let url = reqwest::Url::parse(&self.api_url).map_err(|e| anyhow::anyhow!("TELOXIDE_API_URL {}: {e}", self.api_url))?;
        Ok(teloxide::Bot::new(&self.token).set_api_url(url))
    }
}

/// How updates arrive.
#[derive(clap::Args, Debug, Clone)]
pub struct InboundArgs {
    /// Public HTTPS URL Telegram should post updates to; when set, the bot runs in
    /// webhook mode instead of long polling.
    #[arg(long, env = "HERALD_WEBHOOK_URL")]
    pub webhook_url: Option<String>,
    /// Address the webhook server listens on.
    #[arg(long, env = "HERALD_WEBHOOK_LISTEN", default_value = "0.0.0.0:8443")]
    pub webhook_listen: SocketAddr,
    /// Secret Telegram echoes in `X-Telegram-Bot-Api-Secret-Token`; required in webhook mode.
    #[arg(long, env = "HERALD_WEBHOOK_SECRET", hide_env_values = true)]
    pub webhook_secret: Option<String>,
    /// Long-polling timeout in seconds.
    #[arg(long, env = "HERALD_POLL_TIMEOUT_SECS", default_value_t = 30)]
    pub poll_timeout_secs: u32,
    /// Updates larger than this many bytes are dead-lettered instead of published.
    #[arg(long, env = "HERALD_MAX_UPDATE_BYTES", default_value_t = 64 * 1024)]
    pub max_update_bytes: usize,
}

/// Telegram's sending limits (core.telegram.org/bots/faq: "about 30 messages per second"
/// overall, one per second per chat, 20 per minute per group; paid broadcasts up to
/// 1000 per second).
#[derive(clap::Args, Debug, Clone)]
pub struct LimitArgs {
    /// Messages per second across all chats.
    #[arg(long, env = "HERALD_GLOBAL_RATE", default_value_t = 30)]
    pub global_rate: u32,
    /// Paid broadcast mode: allows a global rate up to 1000/s and sets
    /// `allow_paid_broadcast` on broadcasts (charged in Telegram Stars).
    #[arg(long, env = "HERALD_PAID_BROADCAST")]
    pub paid_broadcast: bool,
    /// Messages per second to one private chat.
    #[arg(long, env = "HERALD_CHAT_RATE", default_value_t = 1)]
    pub chat_rate: u32,
    /// Messages per minute to one group or channel.
    #[arg(long, env = "HERALD_GROUP_RATE_PER_MIN", default_value_t = 20)]
    pub group_rate_per_min: u32,
    /// Broadcast messages handled at once (most wait on per-chat limits).
    #[arg(long, env = "HERALD_BOT_MAX_IN_FLIGHT", default_value_t = 512)]
    pub max_in_flight: usize,
    /// Interactive messages (replies, relays) per second at most, out of the global
    /// rate: interactive traffic takes every permit before bulk, up to this budget.
    #[arg(long, env = "HERALD_INTERACTIVE_RATE", default_value_t = 30)]
    pub interactive_rate: u32,
    /// Interactive messages handled at once.
    #[arg(long, env = "HERALD_INTERACTIVE_IN_FLIGHT", default_value_t = 64)]
    pub interactive_in_flight: usize,
}

impl LimitArgs {
    /// Global rate after applying the paid-broadcast ceiling (30 without, 1000 with).
    pub fn effective_global_rate(&self) -> u32 {
        let ceiling = if self.paid_broadcast { 1000 } else { 30 };
        self.global_rate.clamp(1, ceiling)
    }
}
