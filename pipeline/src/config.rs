//! Command-line and environment configuration shared by the pipeline's commands.

use std::net::SocketAddr;
use std::time::Duration;

/// Connection to NATS.
#[derive(clap::Args, Debug, Clone)]
pub struct NatsArgs {
    /// NATS server URL.
    #[arg(long, env = "HERALD_NATS_URL", default_value = "nats://127.0.0.1:4222")]
    pub nats_url: String,
}

impl NatsArgs {
    /// Connects and returns the client and its JetStream context.
    pub async fn connect(&self) -> anyhow::Result<(async_nats::Client, async_nats::jetstream::Context)> {
        let client = async_nats::ConnectOptions::new()
            .name("herald")
            .connect(&self.nats_url)
            .await
            .map_err(|e| anyhow::anyhow!("cannot connect to NATS at {}: {e}", self.nats_url))?;
        let js = async_nats::jetstream::new(client.clone());
        Ok((client, js))
    }
}

/// Connection to Redis.
#[derive(clap::Args, Debug, Clone)]
pub struct RedisArgs {
    /// Redis URL (dedup state and per-token sent sets).
    #[arg(long, env = "HERALD_REDIS_URL", default_value = "redis://127.0.0.1:6379")]
    pub redis_url: String,
}

impl RedisArgs {
    /// A reconnecting multiplexed connection.
    pub async fn connect(&self) -> anyhow::Result<redis::aio::ConnectionManager> {
        let client = redis::Client::open(self.redis_url.as_str())?;
        redis::aio::ConnectionManager::new(client)
            .await
            .map_err(|e| anyhow::anyhow!("cannot connect to Redis at {}: {e}", self.redis_url))
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

/// The Prometheus / health endpoint.
#[derive(clap::Args, Debug, Clone)]
pub struct MetricsArgs {
    /// Address serving /metrics, /healthz and /readyz.
    #[arg(long, env = "HERALD_METRICS_ADDR", default_value = "127.0.0.1:9464")]
    pub metrics_addr: SocketAddr,
}

/// Tracked calls and multiplier alerts.
#[derive(clap::Args, Debug, Clone)]
pub struct TrackerArgs {
    /// The embedded tracked-call store (a redb file; one process opens it at a time, so
    /// run the tracker stage in one pipeline process).
    #[arg(long, env = "HERALD_STORE_PATH", default_value = "herald-data/calls.redb")]
    pub store_path: std::path::PathBuf,
    /// Alert thresholds, multiples of the entry price, ascending.
    #[arg(long, env = "HERALD_THRESHOLDS", value_delimiter = ',', default_values_t = crate::tracking::tracker::DEFAULT_THRESHOLDS)]
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

impl TrackerArgs {
    pub fn retention(&self) -> Duration {
        Duration::from_secs(self.retention_days * 86_400)
    }
}
