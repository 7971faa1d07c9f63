//! `bot`: Herald's Telegram edge. See `bot --help`.

use std::sync::Arc;

use clap::Parser;
use herald_bot::config::{InboundArgs, LimitArgs, TelegramArgs};
use herald_bot::inbound;
use herald_bot::outbound::{limits::Limits, Outbound};
use herald_runtime::config::{MetricsArgs, NatsArgs};
use herald_runtime::{setup, telemetry};
use herald_schemas::subjects;

/// Herald's Telegram edge: publishes inbound updates, sends outbound messages under
/// Telegram's limits.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Cli {
    #[command(flatten)]
    telegram: TelegramArgs,
    #[command(flatten)]
    inbound: InboundArgs,
    #[command(flatten)]
    limits: LimitArgs,
    #[command(flatten)]
    nats: NatsArgs,
    #[command(flatten)]
    metrics: MetricsArgs,
}

// mimalloc: the stages allocate per message; glibc malloc was a quarter of the CPU profile.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    telemetry::init_logging();
    let cli = Cli::parse();
    telemetry::install_metrics();
    herald_runtime::metric::describe(herald_runtime::metric::RUNTIME);
    herald_runtime::metric::describe(herald_bot::metrics::ALL);
    let shutdown = telemetry::shutdown_on_signal();
    let ready = telemetry::Readiness::default();
    tokio::spawn(telemetry::serve(cli.metrics.metrics_addr, ready.clone(), shutdown.clone()));

    let (client, js) = cli.nats.connect().await?;
    setup::apply(
        &js,
        &herald_core::streams::core_streams(),
        &herald_core::streams::core_events_buckets(),
        false,
        setup::Replicas::Existing,
    )
    .await?;
    js.watch_servers(&ready, shutdown.clone());
    tokio::spawn(herald_runtime::processes::beat(js.clone(), "bot", ready.clone(), shutdown.clone()));
    let bot = cli.telegram.bot()?;
    if cli.limits.global_rate > cli.limits.effective_global_rate() {
        tracing::warn!(
            asked = cli.limits.global_rate,
            using = cli.limits.effective_global_rate(),
            "global rate above Telegram's limit; pass --paid-broadcast to go past 30/s"
        );
    }
    let outbound = Outbound {
        bot: bot.clone(),
        delivered: js.get_key_value(subjects::DELIVERED_BUCKET).await?,
        users: js.get_key_value(subjects::USERS_BUCKET).await?,
        limits: Arc::new(Limits::new(&cli.limits)),
        paid_broadcast: cli.limits.paid_broadcast,
    };
    let mut tasks = tokio::task::JoinSet::new();
    for mut stage in outbound.stages(cli.limits.interactive_in_flight, cli.limits.max_in_flight) {
        stage.config.ready = Some(ready.part());
        tasks.spawn(stage.run(js.clone(), shutdown.clone()));
    }
    if cli.inbound.webhook_url.is_some() {
        tasks.spawn(inbound::serve_webhook(bot, cli.inbound.clone(), js.clone(), shutdown.clone()));
    } else {
        tasks.spawn(inbound::poll(
            bot,
            cli.telegram.clone(),
            cli.inbound.clone(),
            js.clone(),
            shutdown.clone(),
        ));
    }
    ready.set_ready();
    let result = telemetry::supervise(tasks, &ready, &shutdown).await;
    client.flush().await?;
    tracing::info!("bot stopped");
    result
}
