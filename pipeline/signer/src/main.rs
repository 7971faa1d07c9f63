//! `herald-signer`: the withdrawal signer, the only holder of the hot wallet's key. See
//! `herald-signer --help` and the crate's docs.

use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use herald_runtime::config::{parse_duration, MetricsArgs, ServersArgs};
use herald_runtime::setup::{BucketDef, StreamDef};
use herald_runtime::{telemetry, StageHandle};
use herald_schemas::subjects;
use herald_signer::chain::Chain;
use herald_signer::journal::Journal;
use herald_signer::key::{HotKey, KeyArgs};
use herald_signer::signer::{Policy, Signer};
use herald_signer::stage::{self, Approved};

/// Signs and sends approved withdrawals from the hot wallet, each exactly once.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Cli {
    #[command(flatten)]
    servers: ServersArgs,
    #[command(flatten)]
    key: KeyArgs,
    #[command(flatten)]
    metrics: MetricsArgs,
    /// The chain's JSON-RPC endpoint (http or https).
    #[arg(long, env = "HERALD_SIGNER_RPC_URL", default_value = "http://127.0.0.1:8545")]
    rpc_url: String,
    /// Blocks, the transaction's own included, before a withdrawal is final (BSC's fast
    /// finality is 2 blocks; 15 is the deposits' default margin too).
    #[arg(long, env = "HERALD_SIGNER_CONFIRMATIONS", default_value_t = 15)]
    confirmations: u64,
    /// A transaction not mined after this long is replaced at a higher gas price.
    #[arg(long, env = "HERALD_SIGNER_STUCK_AFTER", value_parser = parse_duration, default_value = "90s")]
    stuck_after: Duration,
    /// A replacement's gas price over the stuck one's, percent (nodes want at least 10).
    #[arg(long, env = "HERALD_SIGNER_BUMP_PERCENT", default_value_t = 20)]
    bump_percent: u128,
    /// How often the open withdrawals are checked.
    #[arg(long, env = "HERALD_SIGNER_WATCH_EVERY", value_parser = parse_duration, default_value = "3s")]
    watch_every: Duration,
    /// The token withdrawals are paid in, whose hot-wallet balance is exported
    /// (`herald_signer_hot_wallet_tokens`) at each watch; unset: only when a withdrawal
    /// is sent.
    #[arg(long, env = "HERALD_SIGNER_TOKEN")]
    token: Option<alloy::primitives::Address>,
    /// Below this balance of `--token` (base units) the hot wallet counts as low
    /// (`herald_signer_hot_wallet_low` = 1, the `HotWalletLow` alert): about a day of
    /// withdrawals. 0 = never low.
    #[arg(long, env = "HERALD_SIGNER_LOW_BALANCE", default_value = "0")]
    low_balance: alloy::primitives::U256,
}

/// The signer's stream and journal (both set up by `pipeline setup`, payments).
fn definitions() -> (Vec<StreamDef>, Vec<BucketDef>) {
    (
        vec![StreamDef {
            file: "payments.withdrawals.json",
            json: include_str!("../../../nats/streams/payments.withdrawals.json"),
        }],
        vec![BucketDef::forever(subjects::SIGNER_BUCKET).money()],
    )
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    telemetry::init_logging();
    let cli = Cli::parse();
    let key = HotKey::load(&cli.key)?;
    telemetry::install_metrics();
    herald_runtime::metric::describe(herald_runtime::metric::RUNTIME);
    herald_runtime::metric::describe(herald_signer::metrics::ALL);
    let shutdown = telemetry::shutdown_on_signal();
    let ready = telemetry::Readiness::default();
    tokio::spawn(telemetry::serve(cli.metrics.metrics_addr, ready.clone(), shutdown.clone()));

    let (streams, buckets) = definitions();
    let js = cli
        .servers
        .connect(herald_runtime::classes::Classes::from_definitions(&streams, &buckets)?)
        .await?;
    js.watch_servers(&ready, shutdown.clone());
    tokio::spawn(herald_runtime::processes::beat(
        js.clone(),
        "signer",
        ready.clone(),
        shutdown.clone(),
    ));
    let journal = Journal::new(js.get_key_value(subjects::SIGNER_BUCKET).await?);
    let chain = Chain::connect(&cli.rpc_url, key.address()).await?;
    tracing::info!(hot_wallet = %key.address(), chain_id = chain.chain_id, "signer started");
    let policy = Policy {
        confirmations: cli.confirmations,
        stuck_after: cli.stuck_after,
        bump_percent: cli.bump_percent,
    };
    let signer = Arc::new(Signer {
        chain,
        key,
        journal,
        policy,
    });

    let mut tasks = tokio::task::JoinSet::new();
    let mut consumer = stage::consumer();
    consumer.ready = Some(ready.part());
    tasks.spawn(StageHandle::new(Approved(signer.clone()), consumer).run(js.clone(), shutdown.clone()));
    let (watcher, watch_js) = (signer.clone(), js.clone());
    tasks.spawn(herald_runtime::periodic::every(
        "signer_watch",
        cli.watch_every,
        shutdown.clone(),
        move || {
            let (signer, js) = (watcher.clone(), watch_js.clone());
            async move {
                for o in signer.watch_once().await? {
                    let out = stage::output(&o);
                    js.publish_with_id(out.subject, &out.msg_id, out.payload.into()).await?.await?;
                }
                Ok(())
            }
        },
    ));
    if let Some(token) = cli.token {
        let (funds, floor) = (signer.clone(), cli.low_balance);
        tasks.spawn(herald_runtime::periodic::every(
            "signer_funds",
            cli.watch_every,
            shutdown.clone(),
            move || {
                let signer = funds.clone();
                async move {
                    let (tokens, native) = signer.chain.funds(token).await?;
                    herald_signer::metrics::record_funds(token, tokens, native);
                    let low = !floor.is_zero() && tokens < floor;
                    metrics::gauge!(herald_signer::metrics::HOT_WALLET_LOW.name, "token" => token.to_string()).set(if low {
                        1.0
                    } else {
                        0.0
                    });
                    Ok(())
                }
            },
        ));
    }
    ready.set_ready();
    let result = telemetry::supervise(tasks, &ready, &shutdown).await;
    tracing::info!("signer stopped");
    result
}
