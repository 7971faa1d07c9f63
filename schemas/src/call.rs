//! Calls, signals and the websocket feed frame.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::{one, Versioned};

/// A blockchain, normalised to a lowercase canonical name (`solana`, `ethereum`, `bsc`,
/// `base`, ...). Common tickers and aliases are mapped (`SOL` -> `solana`, `ETH` ->
/// `ethereum`, `BNB`/`BEP20` -> `bsc`); any other name is kept, lowercased.
///
/// ```
/// use herald_schemas::Chain;
/// assert_eq!(Chain::from("BNB").as_str(), "bsc");
/// assert_eq!(Chain::from("Injective").as_str(), "injective");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
#[serde(from = "String", into = "String")]
pub struct Chain(String);

impl Chain {
    /// The canonical name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<&str> for Chain {
    fn from(s: &str) -> Self {
        let lower = s.trim().to_ascii_lowercase();
        let canonical = match lower.as_str() {
            "sol" => "solana",
            "eth" | "erc20" | "mainnet" => "ethereum",
            "bnb" | "bep20" | "bnb smart chain" | "binance" => "bsc",
            "matic" => "polygon",
            "arb" => "arbitrum",
            other => other,
        };
        Chain(canonical.to_string())
    }
}

impl From<String> for Chain {
    fn from(s: String) -> Self {
        Chain::from(s.as_str())
    }
}

impl From<Chain> for String {
    fn from(c: Chain) -> Self {
        c.0
    }
}

impl std::fmt::Display for Chain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Where a call came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum CallSource {
    /// A JSON websocket token feed.
    Feed,
    /// A Telegram call channel's `channel_post`.
    TelegramChannel,
    /// An on-chain event (e.g. a Raydium AMM v4 pool creation).
    Onchain,
}

impl CallSource {
    /// Lowercase name, used as a subject token.
    pub fn as_str(self) -> &'static str {
        match self {
            CallSource::Feed => "feed",
            CallSource::TelegramChannel => "telegram_channel",
            CallSource::Onchain => "onchain",
        }
    }
}

/// Who made a call: a channel, a feed's named caller, or an on-chain program.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Caller {
    /// Stable id, unique across sources (e.g. `tg:-1002093384030`, `raydium_amm_v4`).
    pub id: String,
    /// Display name (channel title), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub source: CallSource,
}

/// A caller's track record, the input of users' win-rate and average-gain filters.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
pub struct ChannelStats {
    #[serde(default = "one")]
    pub v: u32,
    /// Share of calls that reached at least 2x, in `[0, 1]`.
    pub win_rate: f64,
    /// Average best gain of its calls in percent (`150.0` = the price went to 2.5x on average).
    pub avg_gain_pct: f64,
    /// Number of calls the figures are computed from.
    pub calls: u32,
}

impl Versioned for ChannelStats {
    const VERSION: u32 = 1;
    const SCHEMA_NAME: &'static str = "channel_stats";
    fn version(&self) -> u32 {
        self.v
    }
}

/// A labelled link shown with a notification.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Link {
    pub label: String,
    pub url: String,
}

/// One call of one token by one caller: the canonical event every source publishes on
/// `herald.calls.<chain>.<source>`.
///
/// Message id (`Nats-Msg-Id`): [`CallEvent::msg_id`], so the stream's duplicate window
/// drops a source's re-sends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct CallEvent {
    #[serde(default = "one")]
    pub v: u32,
    /// Id given by the source (feed event id, `chat:message_id`, transaction signature).
    pub source_event_id: String,
    pub chain: Chain,
    /// Contract address or mint, as the chain writes it (case kept: Solana mints are base58).
    pub token: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub symbol: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Price in USD at the call, when the source gives it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub price_usd: Option<f64>,
    /// Price in the chain's native coin (e.g. SOL), when the source gives it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub price_native: Option<f64>,
    /// Fully diluted valuation in USD at the call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fdv_usd: Option<f64>,
    pub caller: Caller,
    /// Statistics supplied by the source itself, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caller_stats: Option<ChannelStats>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub links: Vec<Link>,
    /// When the event entered Herald (ms since epoch); carried to the notification for
    /// end-to-end latency.
    pub origin_ts_ms: u64,
}

impl CallEvent {
    /// Key of the token across chains: `<chain>:<token>`.
    pub fn token_key(&self) -> String {
        format!("{}:{}", self.chain, self.token)
    }

    /// `Nats-Msg-Id` of the call: `<source>:<source_event_id>`.
    pub fn msg_id(&self) -> String {
        format!("{}:{}", self.caller.source.as_str(), self.source_event_id)
    }
}

impl Versioned for CallEvent {
    const VERSION: u32 = 1;
    const SCHEMA_NAME: &'static str = "call_event";
    fn version(&self) -> u32 {
        self.v
    }
}

/// A token with callers not seen for it before, published by the dedup stage on
/// `herald.signals.<chain>`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Signal {
    #[serde(default = "one")]
    pub v: u32,
    /// The call that brought the new caller.
    pub call: CallEvent,
    /// Callers not seen for this token before (the only ones a re-check tests).
    pub new_callers: Vec<Caller>,
    /// Ids of every caller seen for this token so far, new ones included.
    pub all_caller_ids: Vec<String>,
}

impl Versioned for Signal {
    const VERSION: u32 = 1;
    const SCHEMA_NAME: &'static str = "signal";
    fn version(&self) -> u32 {
        self.v
    }
}

/// A frame of Herald's JSON websocket token feed (`type` tags the kind).
///
/// ```
/// use herald_schemas::FeedFrame;
/// let f: FeedFrame = serde_json::from_str(r#"{"type":"call","id":"e1","chain":"sol",
///   "token":"So1","caller_id":"c1","ts_ms":1}"#).unwrap();
/// assert!(matches!(f, FeedFrame::Call { .. }));
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
#[allow(clippy::large_enum_variant)] // parsed per frame and consumed at once; boxing buys nothing
pub enum FeedFrame {
    /// A caller called a token.
    Call {
        /// The feed's event id (becomes part of `Nats-Msg-Id`).
        id: String,
        chain: String,
        token: String,
        #[serde(default)]
        symbol: Option<String>,
        #[serde(default)]
        name: Option<String>,
        #[serde(default)]
        price_usd: Option<f64>,
        #[serde(default)]
        fdv_usd: Option<f64>,
        caller_id: String,
        #[serde(default)]
        caller_name: Option<String>,
        #[serde(default)]
        caller_stats: Option<ChannelStats>,
        /// When the feed sent the frame (ms since epoch).
        ts_ms: u64,
    },
    /// A token's price.
    Price {
        /// The feed's event id.
        #[serde(default)]
        id: Option<String>,
        chain: String,
        token: String,
        price_usd: f64,
        /// When the feed observed the price (ms since epoch).
        ts_ms: u64,
    },
    /// Keep-alive; ignored.
    Heartbeat {
        #[serde(default)]
        ts_ms: u64,
    },
}

impl Versioned for FeedFrame {
    const VERSION: u32 = 1;
    const SCHEMA_NAME: &'static str = "feed_frame";
    fn version(&self) -> u32 {
        1
    }
}
