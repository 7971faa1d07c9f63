//! The signals product's flags (`pipeline run`).

use std::time::Duration;

/// Everything signals takes from the command line.
#[derive(clap::Args, Debug, Clone)]
pub struct SignalsArgs {
    #[command(flatten)]
    pub dedup: DedupArgs,
    #[command(flatten)]
    pub tracker: TrackerArgs,
    /// Herald JSON token feeds to read (websocket URLs), repeatable.
    #[arg(long = "feed-url", env = "HERALD_FEED_URLS", value_delimiter = ',')]
    pub feed_urls: Vec<String>,
    /// Solana transactionSubscribe websocket (Raydium pool creations).
    #[arg(long, env = "HERALD_SOLANA_WS_URL")]
    pub solana_ws_url: Option<String>,
    /// Chains accepted from sources and in `/filters chains` (a call on another chain is
    /// dead-lettered; each name must be a subject token, `[a-z0-9_-]`).
    #[arg(long, env = "HERALD_CHAINS", value_delimiter = ',', default_values_t = herald_schemas::checks::DEFAULT_CHAINS.iter().map(|c| c.to_string()))]
    pub chains: Vec<String>,
    /// Send signals to every user. Without it, when payments run, signals go only to
    /// users with an active subscription or trial.
    #[arg(long, env = "HERALD_FREE_SIGNALS")]
    pub free_signals: bool,
}

impl SignalsArgs {
    /// The accepted chains.
    ///
    /// Errors: a name that is not a subject token, or an empty list.
    pub fn chain_list(&self) -> anyhow::Result<herald_schemas::checks::ChainList> {
        herald_schemas::checks::ChainList::new(&self.chains).map_err(|e| anyhow::anyhow!("--chains: {e}"))
    }
}

/// How long dedup remembers tokens. Defaults are the product's promise (14 days / 1 hour,
/// from the original signal bot's design); tests shorten them.
#[derive(clap::Args, Debug, Clone)]
pub struct DedupArgs {
    /// Seconds an accepted token (one some user was sent) is remembered.
    #[arg(long, env = "HERALD_ACCEPTED_TTL_SECS", default_value_t = 14 * 24 * 3600)]
    pub accepted_ttl_secs: u64,
    /// Seconds a rejected token (no user was sent it) is remembered.
    #[arg(long, env = "HERALD_REJECTED_TTL_SECS", default_value_t = 3600)]
    pub rejected_ttl_secs: u64,
}

impl DedupArgs {
    pub fn accepted_ttl(&self) -> Duration {
        Duration::from_secs(self.accepted_ttl_secs)
    }
    pub fn rejected_ttl(&self) -> Duration {
        Duration::from_secs(self.rejected_ttl_secs)
    }
}

/// Tracked calls and multiplier alerts.
#[derive(clap::Args, Debug, Clone)]
pub struct TrackerArgs {
    /// Where tracked calls live: `embedded` (a fjall database, no server) or `scylla`.
    #[arg(long, env = "HERALD_STORE", value_enum, default_value_t = StoreKind::Embedded)]
    pub store: StoreKind,
    /// ScyllaDB contact points, `host:port` (with `--store scylla`).
    #[arg(long, env = "HERALD_SCYLLA_NODES", value_delimiter = ',', default_value = "127.0.0.1:9042")]
    pub scylla_nodes: Vec<String>,
    /// ScyllaDB keyspace (created if missing).
    #[arg(long, env = "HERALD_SCYLLA_KEYSPACE", default_value = "herald")]
    pub scylla_keyspace: String,
    /// Replication factor of the keyspace when Herald creates it.
    #[arg(long, env = "HERALD_SCYLLA_REPLICATION_FACTOR", default_value_t = 3)]
    pub scylla_replication_factor: u32,
    /// The embedded tracked-call store (a fjall database directory; one process opens it
    /// at a time, so run the tracker stage in one pipeline process).
    #[arg(long, env = "HERALD_STORE_PATH", default_value = "herald-data/calls")]
    pub store_path: std::path::PathBuf,
    /// Block cache of the embedded store, MiB (it serves `/calls` and checkpoint reads;
    /// the OS page cache serves what does not fit).
    #[arg(long, env = "HERALD_STORE_CACHE_MB", default_value_t = 64)]
    pub store_cache_mb: usize,
    /// Alert thresholds, multiples of the entry price, ascending.
    #[arg(long, env = "HERALD_THRESHOLDS", value_delimiter = ',', default_values_t = super::tracking::tracker::DEFAULT_THRESHOLDS)]
    pub thresholds: Vec<f64>,
    /// Hours after a call within which reaching 2x counts as a win for its callers.
    #[arg(long, env = "HERALD_WIN_WINDOW_HOURS", default_value_t = 24)]
    pub win_window_hours: u64,
    /// Days a tracked call is kept.
    #[arg(long, env = "HERALD_RETENTION_DAYS", default_value_t = 30)]
    pub retention_days: u64,
    /// DexScreener API base URL (`https://api.dexscreener.com`); when set, tracked
    /// tokens' prices are polled from it.
    #[arg(long, env = "HERALD_DEXSCREENER_URL")]
    pub dexscreener_url: Option<String>,
    /// DexScreener requests per minute at most.
    #[arg(long, env = "HERALD_DEXSCREENER_PER_MINUTE", default_value_t = 100)]
    pub dexscreener_per_minute: u32,
    /// Seconds between polling rounds over all tracked tokens.
    #[arg(long, env = "HERALD_DEXSCREENER_INTERVAL_SECS", default_value_t = 30)]
    pub dexscreener_interval_secs: u64,
}

/// The tracked-call store backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum StoreKind {
    Embedded,
    Scylla,
}

impl TrackerArgs {
    pub fn retention(&self) -> Duration {
        Duration::from_secs(self.retention_days * 86_400)
    }
}

