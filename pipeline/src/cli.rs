//! The `pipeline` command line.

use std::sync::Arc;

use clap::{Parser, Subcommand};
use herald_pipeline::config::{DedupArgs, MetricsArgs, NatsArgs, RedisArgs};
use herald_pipeline::replica::Replica;
use herald_pipeline::runtime::{run_stage, StageConfig};
use herald_pipeline::sources::websocket::{Protocol, WebsocketSource};
use herald_pipeline::stages::{dedup::DedupStage, fanout::*, token_state::TokenState, updates::UpdatesStage};
use herald_pipeline::{setup, telemetry};
use herald_schemas::subjects;

/// Herald's stream-processing pipeline: sources, dedup, filter + fan-out, commands.
#[derive(Parser, Debug)]
#[command(version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Create the JetStream streams (nats/streams/*.json) and KV buckets; idempotent.
    Setup {
        #[command(flatten)]
        nats: NatsArgs,
        /// Edit streams whose configuration differs instead of failing.
        #[arg(long)]
        update: bool,
    },
    /// Run sources and stages until SIGTERM.
    Run(RunArgs),
}

#[derive(clap::Args, Debug)]
struct RunArgs {
    #[command(flatten)]
    nats: NatsArgs,
    #[command(flatten)]
    redis: RedisArgs,
    #[command(flatten)]
    dedup: DedupArgs,
    #[command(flatten)]
    metrics: MetricsArgs,
    /// Stages to run in this process (several processes may run the same stage; they
    /// share its durable consumer and split the work).
    #[arg(long, value_delimiter = ',', default_value = "dedup,fanout,updates")]
    stages: Vec<String>,
    /// Herald JSON token feeds to read (websocket URLs), repeatable.
    #[arg(long = "feed-url", env = "HERALD_FEED_URLS", value_delimiter = ',')]
    feed_urls: Vec<String>,
    /// Solana transactionSubscribe websocket (Raydium pool creations).
    #[arg(long, env = "HERALD_SOLANA_WS_URL")]
    solana_ws_url: Option<String>,
    /// Messages each stage processes at once (and publishes a source keeps unacked).
    #[arg(long, env = "HERALD_MAX_IN_FLIGHT", default_value_t = 256)]
    max_in_flight: usize,
}

impl Cli {
    pub async fn run(self) -> anyhow::Result<()> {
        match self.command {
            Cmd::Setup { nats, update } => {
                let (_, js) = nats.connect().await?;
                for applied in setup::apply(&js, update).await? {
                    println!("{applied:?}");
                }
                Ok(())
            }
            Cmd::Run(args) => run(args).await,
        }
    }
}

async fn run(args: RunArgs) -> anyhow::Result<()> {
    telemetry::install_metrics();
    let shutdown = telemetry::shutdown_on_signal();
    let ready = telemetry::Readiness::default();
    tokio::spawn(telemetry::serve(args.metrics.metrics_addr, ready.clone(), shutdown.clone()));

    let (client, js) = args.nats.connect().await?;
    setup::apply(&js, false).await?;
    // One NATS and one Redis connection per stage and source: each client multiplexes
    // through a single connection task, which would otherwise serialise every stage on
    // one core.
    let mut clients = vec![client];
    let mut connect = async || -> anyhow::Result<async_nats::jetstream::Context> {
        let (c, js) = args.nats.connect().await?;
        clients.push(c);
        Ok(js)
    };
    let mut tasks = tokio::task::JoinSet::new();
    let stage_cfg = |stream: &str, name: &str, filter: &str| StageConfig {
        max_in_flight: args.max_in_flight,
        ..StageConfig::new(stream, name, vec![filter.to_string()])
    };
    let wants = |s: &str| args.stages.iter().any(|x| x == s);

    let token_state = async || -> anyhow::Result<TokenState> {
        Ok(TokenState::new(
            args.redis.connect().await?,
            args.dedup.accepted_ttl(),
            args.dedup.rejected_ttl(),
        ))
    };
    if wants("dedup") {
        let stage = Arc::new(DedupStage {
            state: token_state().await?,
        });
        tasks.spawn(run_stage(
            connect().await?,
            stage,
            stage_cfg(subjects::CALLS_STREAM, "dedup", "herald.calls.>"),
            shutdown.clone(),
        ));
    }
    if wants("fanout") {
        let users = Replica::start(&js, subjects::USERS_BUCKET, UserIndex::default(), shutdown.clone()).await?;
        let channels = Replica::start(&js, subjects::CHANNELS_BUCKET, ChannelIndex::default(), shutdown.clone()).await?;
        tracing::info!(users = users.read(|u| u.len()), "user replica loaded");
        let stage = Arc::new(FanoutStage {
            users,
            channels,
            state: token_state().await?,
        });
        tasks.spawn(run_stage(
            connect().await?,
            stage,
            stage_cfg(subjects::SIGNALS_STREAM, "fanout", "herald.signals.>"),
            shutdown.clone(),
        ));
    }
    if wants("updates") {
        let users = js.get_key_value(subjects::USERS_BUCKET).await?;
        let stage = Arc::new(UpdatesStage { users });
        tasks.spawn(run_stage(
            connect().await?,
            stage,
            stage_cfg(subjects::UPDATES_STREAM, "updates", "herald.updates.>"),
            shutdown.clone(),
        ));
    }
    let sources = args
        .feed_urls
        .iter()
        .map(|u| (u.clone(), Protocol::HeraldFeed))
        .chain(args.solana_ws_url.iter().map(|u| (u.clone(), Protocol::SolanaTransactions)));
    for (url, protocol) in sources {
        let source = WebsocketSource {
            url,
            protocol,
            js: connect().await?,
            max_in_flight: args.max_in_flight,
        };
        let s = shutdown.clone();
        tasks.spawn(async move {
            source.run(s).await;
            Ok(())
        });
    }
    ready.set_ready();
    tracing::info!(stages = ?args.stages, "pipeline running");
    let mut result = Ok(());
    while let Some(done) = tasks.join_next().await {
        if let Ok(Err(e)) = done {
            tracing::error!(error = %format!("{e:#}"), "task failed; shutting down");
            shutdown.cancel();
            result = Err(e);
        }
    }
    for c in clients {
        c.flush().await?;
    }
    tracing::info!("pipeline stopped");
    result
}
