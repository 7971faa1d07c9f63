//! Command-line and environment settings every Herald process shares.

use std::net::SocketAddr;
use std::time::Duration;

use crate::classes::{Classes, Js};

/// Connection to NATS.
#[derive(clap::Args, Debug, Clone)]
pub struct NatsArgs {
    /// NATS server URL; on a cluster, several, comma-separated (the client also
    /// learns the others from the one it reaches).
    #[arg(long, env = "HERALD_NATS_URL", default_value = "nats://127.0.0.1:4222")]
    pub nats_url: String,
}

impl NatsArgs {
    /// Connects to the events server and returns the client and a [`Js`] with no money
    /// server (the bot's: every core stream is events).
    pub async fn connect(&self) -> anyhow::Result<(async_nats::Client, Js)> {
        let client = connect(&self.nats_url, "events").await?;
        let js = Js::new(async_nats::jetstream::new(client.clone()), None, Classes::default());
        Ok((client, js))
    }
}

/// A named client on `urls` (comma-separated).
///
/// Errors: no server answered.
async fn connect(urls: &str, class: &str) -> anyhow::Result<async_nats::Client> {
    async_nats::ConnectOptions::new()
        .name(format!("herald-{class}"))
        .connect(servers(urls))
        .await
        .map_err(|e| anyhow::anyhow!("cannot connect to the NATS {class} server at {urls}: {e}"))
}

/// Connections to both durability classes' servers (see [`crate::classes`]): the events
/// server of [`NatsArgs`] and the money server, which must fsync every write.
#[derive(clap::Args, Debug, Clone)]
pub struct ServersArgs {
    #[command(flatten)]
    pub nats: NatsArgs,
    /// The money server (`nats/nats-money.conf`: `sync_interval: always`): the ledger,
    /// deposits, the lottery's journal, paid access. On a cluster, several URLs. The
    /// same URL as `--nats-url` puts both classes on one server.
    #[arg(long, env = "HERALD_NATS_MONEY_URL", default_value = "nats://127.0.0.1:4223")]
    pub nats_money_url: String,
    /// The money server's monitoring address (its `http_port`; on a cluster, every
    /// node's, comma-separated): `/varz` tells whether it fsyncs every write, checked
    /// before anything runs.
    #[arg(long, env = "HERALD_NATS_MONEY_MONITOR", default_value = "http://127.0.0.1:8223")]
    pub nats_money_monitor: String,
}

impl ServersArgs {
    /// Connects to the events server and, if `classes` declares any money, to the
    /// money server (one client when both URLs are the same).
    ///
    /// Errors: a server did not answer.
    pub async fn connect(&self, classes: Classes) -> anyhow::Result<Js> {
        let events = connect(&self.nats.nats_url, "events").await?;
        let events_js = async_nats::jetstream::new(events);
        if !classes.has_money() {
            return Ok(Js::new(events_js, None, classes));
        }
        if servers(&self.nats_money_url) == servers(&self.nats.nats_url) {
            return Ok(Js::one_server(events_js, classes));
        }
        let money = connect(&self.nats_money_url, "money").await?;
        Ok(Js::new(events_js, Some(async_nats::jetstream::new(money)), classes))
    }

    /// The money server's monitoring URLs.
    pub fn money_monitors(&self) -> Vec<&str> {
        servers(&self.nats_money_monitor)
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
