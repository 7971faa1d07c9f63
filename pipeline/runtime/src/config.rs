//! Command-line and environment settings every Herald process shares.

use std::net::SocketAddr;

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
