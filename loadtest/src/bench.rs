//! `loadtest bench`: the README's figures, each on a fresh local stack (real
//! nats-server, redis-server, `pipeline` and `bot` processes, all on this machine).
//!
//! - `throughput`: 10,000 users, a 200,000-event burst; sustained feed ->
//!   notification-subject rate, beside the raw JetStream publish+consume ceiling
//! - `latency`: 10,000 users at 2,000 events/s for 20 s; feed -> subject percentiles
//! - `memory`: 500 users at 20 events/s for 30 s with the bot delivering to the
//!   emulator; peak resident memory of pipeline + bot

use std::time::Duration;

use crate::report::Report;
use crate::run::{drive, RunArgs};
use crate::stack::{Stack, StackOptions};

/// Which figure to measure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Scenario {
    Throughput,
    Latency,
    Memory,
    All,
}

fn args(rate: u64, duration: u64, users: usize) -> RunArgs {
    RunArgs {
        nats_url: String::new(),
        rate,
        duration,
        users,
        matches_per_event: 1,
        feed_listen: "127.0.0.1:0".parse().expect("static"),
        emulator_url: None,
        pids: Vec::new(),
        no_ceiling: true,
        json: None,
    }
}

async fn on_fresh_stack(keep_bot: bool, mut run: RunArgs) -> anyhow::Result<Report> {
    let mut stack = Stack::start(StackOptions::default()).await?;
    if !keep_bot {
        stack.bot.terminate();
    }
    run.pids = [stack.pipeline.pid(), stack.bot.pid()].into_iter().flatten().collect();
    if keep_bot {
        run.emulator_url = Some(stack.emulator.url());
    }
    let client = async_nats::connect(stack.nats.url()).await?;
    let report = drive(client, &stack.feed, &run).await?;
    tokio::time::sleep(Duration::from_millis(200)).await;
    Ok(report)
}

/// Runs the chosen scenarios and returns their reports.
pub async fn bench(scenario: Scenario) -> anyhow::Result<Vec<Report>> {
    let mut reports = Vec::new();
    let all = scenario == Scenario::All;
    if all || scenario == Scenario::Throughput {
        let mut r = args(40_000, 5, 10_000);
        r.no_ceiling = false;
        let mut rep = on_fresh_stack(false, r).await?;
        rep.scenario = "throughput".into();
        reports.push(rep);
    }
    if all || scenario == Scenario::Latency {
        let mut rep = on_fresh_stack(false, args(2_000, 20, 10_000)).await?;
        rep.scenario = "latency".into();
        reports.push(rep);
    }
    if all || scenario == Scenario::Memory {
        let mut rep = on_fresh_stack(true, args(20, 30, 500)).await?;
        rep.scenario = "memory".into();
        reports.push(rep);
    }
    Ok(reports)
}
