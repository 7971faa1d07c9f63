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

/// BSC mainnet USDT and BUSD, both 18 decimals (contract addresses from BscScan), as
/// `--deposit-tokens` takes them.
pub const DEFAULT_DEPOSIT_TOKENS: &str =
    "USDT:0x55d398326f99059fF775485246999027B3197955:18,BUSD:0xe9e7CEA3DedcA5984780Bafc599bD69ADd087D56:18";

/// Deposits on BNB Smart Chain: off unless `--deposit-xpub` is set.
#[derive(clap::Args, Debug, Clone)]
pub struct PaymentsArgs {
    /// Extended public key of m/44'/60'/0'/0 (`pipeline wallet xpub`): deposit addresses
    /// derive from it. With it, `/deposit`, `/balance` and the `credit` stage run.
    #[arg(long, env = "HERALD_DEPOSIT_XPUB")]
    pub deposit_xpub: Option<String>,
    /// BEP-20 tokens accepted, `SYMBOL:contract:decimals`, comma-separated. Default: BSC
    /// mainnet USDT and BUSD (both 18 decimals; addresses from BscScan).
    #[arg(long, env = "HERALD_DEPOSIT_TOKENS", value_delimiter = ',', default_value = DEFAULT_DEPOSIT_TOKENS)]
    pub deposit_tokens: Vec<String>,
    /// Smallest deposit credited, USD (smaller ones are recorded and the user told).
    #[arg(long, env = "HERALD_MIN_DEPOSIT_USD", default_value = "1")]
    pub min_deposit_usd: String,
    /// JSON-RPC endpoint of the chain (http); with it the `watcher` runs.
    #[arg(long, env = "HERALD_BSC_RPC_URL")]
    pub rpc_url: Option<String>,
    /// Chain name in subjects and the watcher's cursor key.
    #[arg(long, env = "HERALD_DEPOSIT_CHAIN", default_value = "bsc")]
    pub deposit_chain: String,
    /// Blocks below the head that count as final when the node has no `finalized` tag.
    #[arg(long, env = "HERALD_CONFIRMATIONS", default_value_t = 15)]
    pub confirmations: u64,
    /// Ask the node for its `finalized` block (BSC has fast finality).
    #[arg(long, env = "HERALD_FINALIZED_TAG", default_value_t = true, action = clap::ArgAction::Set)]
    pub finalized_tag: bool,
    /// Telegram user ids allowed to use `/admin`, comma-separated.
    #[arg(long, env = "HERALD_ADMIN_IDS", value_delimiter = ',')]
    pub admin_ids: Vec<i64>,
    /// Send signals to every user. Without it, once deposits are on (`--deposit-xpub`),
    /// signals go only to users with an active subscription or trial.
    #[arg(long, env = "HERALD_FREE_SIGNALS")]
    pub free_signals: bool,
    /// Free trial for new users, days.
    #[arg(long, env = "HERALD_TRIAL_DAYS", default_value_t = 3)]
    pub trial_days: u64,
    /// Subscription tiers, `name:days:usd` (days 0 = lifetime), comma-separated.
    #[arg(
        long,
        env = "HERALD_TIERS",
        value_delimiter = ',',
        default_value = "daily:1:3,weekly:7:15,monthly:30:50,lifetime:0:300"
    )]
    pub tiers: Vec<String>,
    /// Milliseconds between watcher rounds: under half a second keeps "credited" within
    /// a second of finality (BSC makes a block every 0.75 s since the Maxwell upgrade).
    #[arg(long, env = "HERALD_WATCH_POLL_MS", default_value_t = 500)]
    pub watch_poll_ms: u64,
    /// Blocks per `eth_getLogs` request.
    #[arg(long, env = "HERALD_MAX_BLOCK_RANGE", default_value_t = 1000)]
    pub max_block_range: u64,
}

impl PaymentsArgs {
    /// Whether fan-out sends signals to subscribers (and users in trial) only: with
    /// deposits on, unless `--free-signals`.
    pub fn signals_need_subscription(&self) -> bool {
        self.xpub().is_some() && !self.free_signals
    }

    /// `--deposit-xpub`; an empty value (an unset variable passed on by docker-compose)
    /// counts as none.
    pub fn xpub(&self) -> Option<&str> {
        self.deposit_xpub.as_deref().filter(|x| !x.trim().is_empty())
    }

    /// `--rpc-url`; empty counts as none, as for [`Self::xpub`].
    pub fn rpc(&self) -> Option<&str> {
        self.rpc_url.as_deref().filter(|x| !x.trim().is_empty())
    }

    /// `--deposit-tokens`, parsed, in the order given.
    ///
    /// Errors: a token is not `SYMBOL:contract:decimals` (see [`parse_deposit_token`]).
    pub fn accepted_tokens(&self) -> anyhow::Result<Vec<(alloy::primitives::Address, crate::payments::credit::DepositToken)>> {
        parse_deposit_tokens(&self.deposit_tokens)
    }
}

/// A USD amount (`12`, `0.5`) in 18-decimal ledger units, exactly.
///
/// ```
/// use herald_pipeline::config::parse_usd;
/// assert_eq!(parse_usd("1.5").unwrap().to_string(), "1500000000000000000");
/// assert!(parse_usd("1.2.3").is_err() && parse_usd("-1").is_err());
/// ```
pub fn parse_usd(s: &str) -> anyhow::Result<alloy::primitives::U256> {
    use alloy::primitives::U256;
    let (whole, frac) = s.trim().split_once('.').unwrap_or((s.trim(), ""));
    let digits = |d: &str| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit());
    anyhow::ensure!(
        digits(whole) && (frac.is_empty() || digits(frac)) && frac.len() <= 18,
        "not a USD amount: {s:?}"
    );
    let scale = U256::from(10).pow(U256::from(18));
    let frac_units = if frac.is_empty() {
        U256::ZERO
    } else {
        frac.parse::<U256>()? * U256::from(10).pow(U256::from(18 - frac.len()))
    };
    Ok(whole.parse::<U256>()? * scale + frac_units)
}

/// Every `SYMBOL:contract:decimals` of a list, in order.
///
/// Errors: the first that does not parse (see [`parse_deposit_token`]).
pub fn parse_deposit_tokens(list: &[String]) -> anyhow::Result<Vec<(alloy::primitives::Address, crate::payments::credit::DepositToken)>> {
    list.iter().map(|t| parse_deposit_token(t)).collect()
}

/// `SYMBOL:contract:decimals` -> the token.
///
/// Errors: not three parts, a bad address, or decimals not a number.
pub fn parse_deposit_token(s: &str) -> anyhow::Result<(alloy::primitives::Address, crate::payments::credit::DepositToken)> {
    let parts: Vec<&str> = s.trim().split(':').collect();
    let [symbol, contract, decimals] = parts[..] else {
        anyhow::bail!("deposit token {s:?}: expected SYMBOL:contract:decimals")
    };
    Ok((
        contract.parse().map_err(|e| anyhow::anyhow!("deposit token {s:?}: {e}"))?,
        crate::payments::credit::DepositToken {
            symbol: symbol.to_string(),
            decimals: decimals.parse()?,
        },
    ))
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        payments: super::PaymentsArgs,
    }

    fn gated(args: &[&str]) -> bool {
        Cli::parse_from(["pipeline"].iter().chain(args))
            .payments
            .signals_need_subscription()
    }

    #[test]
    fn signals_need_a_subscription_once_deposits_are_on_unless_free() {
        assert!(!gated(&[]), "no deposits: nobody could pay");
        assert!(gated(&["--deposit-xpub", "xpub"]));
        assert!(!gated(&["--deposit-xpub", "xpub", "--free-signals"]));
        assert!(!gated(&["--deposit-xpub", ""]), "empty is off");
    }
}
