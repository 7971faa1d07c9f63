//! Command-line and environment settings every Herald process shares.

use std::net::SocketAddr;
use std::time::Duration;

/// Connection to NATS.
#[derive(clap::Args, Debug, Clone)]
pub struct NatsArgs {
    /// NATS server URL; on a cluster, several, comma-separated (the client also
    /// learns the others from the one it reaches).
    #[arg(long, env = "HERALD_NATS_URL", default_value = "nats://127.0.0.1:4222")]
    pub nats_url: String,
}

impl NatsArgs {
    /// Connects and returns the client and its JetStream context.
    pub async fn connect(&self) -> anyhow::Result<(async_nats::Client, async_nats::jetstream::Context)> {
        let client = async_nats::ConnectOptions::new()
            .name("herald")
            .connect(servers(&self.nats_url))
            .await
            .map_err(|e| anyhow::anyhow!("cannot connect to NATS at {}: {e}", self.nats_url))?;
        let js = async_nats::jetstream::new(client.clone());
        Ok((client, js))
    }
}

/// The servers of a comma-separated URL list (`nats://a:4222,nats://b:4222`).
///
/// ```
/// assert_eq!(herald_runtime::config::servers("nats://a:1, nats://b:2"), ["nats://a:1", "nats://b:2"]);
/// ```
pub fn servers(urls: &str) -> Vec<&str> {
    urls.split(',').map(str::trim).filter(|s| !s.is_empty()).collect()
}

/// Connection to Redis.
#[cfg(feature = "redis")]
#[derive(clap::Args, Debug, Clone)]
pub struct RedisArgs {
    /// Redis URL (dedup state and per-token sent sets).
    #[arg(long, env = "HERALD_REDIS_URL", default_value = "redis://127.0.0.1:6379")]
    pub redis_url: String,
}

#[cfg(feature = "redis")]
impl RedisArgs {
    /// A reconnecting multiplexed connection.
    pub async fn connect(&self) -> anyhow::Result<redis::aio::ConnectionManager> {
        let client = redis::Client::open(self.redis_url.as_str())?;
        redis::aio::ConnectionManager::new(client)
            .await
            .map_err(|e| anyhow::anyhow!("cannot connect to Redis at {}: {e}", self.redis_url))
    }
}

/// The Prometheus / health endpoint.
#[derive(clap::Args, Debug, Clone)]
pub struct MetricsArgs {
    /// Address serving /metrics, /healthz and /readyz.
    #[arg(long, env = "HERALD_METRICS_ADDR", default_value = "127.0.0.1:9464")]
    pub metrics_addr: SocketAddr,
}

/// A duration flag: `600`, `600s`, `10m`, `1h`, `250ms`, `7d`.
///
/// Errors: no number, an unknown unit, or zero.
///
/// ```
/// use herald_runtime::config::parse_duration;
/// use std::time::Duration;
/// assert_eq!(parse_duration("10m"), Ok(Duration::from_secs(600)));
/// assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
/// assert_eq!(parse_duration("7d"), Ok(Duration::from_secs(7 * 86_400)));
/// assert!(parse_duration("ten").is_err());
/// ```
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (n, unit) = s.split_at(split);
    let n: u64 = n.parse().map_err(|_| format!("{s:?}: expected a number with ms, s, m, h or d"))?;
    let ms = match unit {
        "ms" => n,
        "" | "s" => n * 1000,
        "m" => n * 60_000,
        "h" => n * 3_600_000,
        "d" => n * 86_400_000,
        _ => return Err(format!("{s:?}: unknown unit {unit:?} (ms, s, m, h or d)")),
    };
    match ms {
        0 => Err(format!("{s:?}: must be positive")),
        ms => Ok(Duration::from_millis(ms)),
    }
}
