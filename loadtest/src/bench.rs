//! `loadtest bench`: the README's results table, each scenario on a fresh local stack
//! (real nats-server, redis-server, `pipeline` and `bot` processes on this machine),
//! every run beside the raw JetStream ceiling for its message size.
//!
//! | scenario | load |
//! |---|---|
//! | `throughput` | signals, 10,000 users, a 200,000-event burst (40,000/s for 5 s); then the same through the null pipeline ([`crate::null_pipeline`]) on a fresh stack |
//! | `latency` | signals, 10,000 users, 2,000 events/s for 20 s |
//! | `memory` | signals, 500 users, 20 events/s for 30 s, delivered through the emulator |
//! | `broadcast` | one call to 600 users, delivered under Telegram's 30 msg/s |
//! | `commands` | 20 `/help` per second from 200 users for 15 s |
//! | `mixed` | 200 signals/s plus 20 commands/s for 15 s |
//! | `prices` | 2,000 price updates/s for 10 s on ~2,900 tracked tokens, each crossing a threshold |
//! | `saturation` | signals ramped 2,000 -> 30,000 events/s over 30 s until p99 > 100 ms |
//! | `chat` | random chat: 10,000 users pair, then 1,000 relayed messages/s for 20 s ([`crate::chat_bench`]; not in `all`) |
//! | `withdrawals` | 100 withdrawals confirmed within a second, to final on anvil with the signer ([`crate::withdrawals_bench`]; not in `all`) |
//! | `trivia` | 2,000 players answering at once in group games; leaderboard reads on 100,000 players ([`crate::trivia_bench`]; not in `all`) |

use std::time::Duration;

use crate::null_pipeline::HopSizes;
use crate::report::{NullFigures, Report};
use crate::run::{drive, RateMode, RunArgs, Scenario};
use crate::stack::{Proc, Stack, StackOptions};

/// A benchmark of the results table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Bench {
    Throughput,
    Latency,
    Memory,
    Broadcast,
    Commands,
    Mixed,
    Prices,
    Saturation,
    /// The random chat ([`crate::chat_bench`]), run on its own (its report differs).
    Chat,
    /// The lottery ([`crate::lottery_bench`]), run on its own.
    Lottery,
    /// Trivia ([`crate::trivia_bench`]), run on its own.
    Trivia,
    /// The cost of `sync_interval: always` ([`crate::durability_bench`]), on its own.
    Durability,
    /// Withdrawals from Confirm to final on anvil ([`crate::withdrawals_bench`]), on its own.
    Withdrawals,
    All,
}

impl Bench {
    const EACH: [Bench; 8] = [
        Bench::Throughput,
        Bench::Latency,
        Bench::Memory,
        Bench::Broadcast,
        Bench::Commands,
        Bench::Mixed,
        Bench::Prices,
        Bench::Saturation,
    ];

    fn args(self) -> RunArgs {
        let mut a = match self {
            Bench::Throughput => RunArgs::new(Scenario::Signals, 40_000, 5, 10_000),
            Bench::Latency => RunArgs::new(Scenario::Signals, 2_000, 20, 10_000),
            Bench::Memory => RunArgs::new(Scenario::Signals, 20, 30, 500),
            Bench::Broadcast => RunArgs::new(Scenario::Broadcast, 1, 1, 600),
            Bench::Commands => RunArgs::new(Scenario::Commands, 20, 15, 200),
            Bench::Mixed => RunArgs::new(Scenario::Mixed, 200, 15, 2_000),
            Bench::Prices => RunArgs::new(Scenario::Prices, 2_000, 10, 10_000),
            Bench::Chat => unreachable!("the chat scenario is run by chat_bench::run"),
            Bench::Lottery => unreachable!("the lottery scenario is run by lottery_bench::run"),
            Bench::Trivia => unreachable!("the trivia scenario is run by trivia_bench::run"),
            Bench::Durability => unreachable!("the durability scenario is run by durability_bench::run"),
            Bench::Withdrawals => unreachable!("the withdrawals scenario is run by withdrawals_bench::run"),
            Bench::Saturation | Bench::All => RunArgs {
                mode: RateMode::Ramp,
                max_rate: 30_000,
                ..RunArgs::new(Scenario::Signals, 2_000, 30, 10_000)
            },
        };
        a.no_ceiling = false;
        a
    }
}

async fn on_fresh_stack(bench: Bench, chart: Option<&std::path::Path>) -> anyhow::Result<Report> {
    let mut run = bench.args();
    let mut stack = Stack::start(StackOptions::default()).await?;
    let needs_bot = !matches!(bench, Bench::Throughput | Bench::Latency | Bench::Saturation | Bench::Prices);
    if !needs_bot {
        stack.bot.terminate();
    } else {
        run.emulator_url = Some(stack.emulator.url());
    }
    run.pids = [stack.pipeline.pid(), stack.bot.pid()].into_iter().flatten().collect();
    run.chart = chart.map(|c| c.join(format!("{bench:?}.svg").to_lowercase()));
    let js = stack.jetstream().await?;
    let mut report = drive(js.clone(), &stack.feed, &run).await?;
    report.scenario = format!("{bench:?}").to_lowercase();
    if bench == Bench::Throughput {
        let sizes = HopSizes::of_streams(js.events()).await?;
        drop(stack);
        report.null_pipeline = Some(null_run(bench.args(), sizes).await?);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    Ok(report)
}

/// The same load through the null pipeline ([`crate::null_pipeline`]) on a fresh stack,
/// its hops padded to `sizes` (Herald's, measured).
async fn null_run(mut run: RunArgs, sizes: HopSizes) -> anyhow::Result<NullFigures> {
    let mut stack = Stack::start(StackOptions::default()).await?;
    stack.pipeline.terminate();
    stack.bot.terminate();
    let port = herald_testkit::free_port();
    let mut args: Vec<String> = ["null-pipeline", "--nats-url", &stack.nats.url(), "--feed-url", &stack.feed.url()]
        .iter()
        .map(|s| s.to_string())
        .collect();
    args.extend([
        "--metrics-addr".into(),
        format!("127.0.0.1:{port}"),
        "--users".into(),
        run.users.to_string(),
    ]);
    args.extend(sizes.args());
    let null = Proc::start("loadtest", args, port, stack.log_dir.join("null-pipeline.log"))?;
    null.wait_ready().await?;
    run.no_ceiling = true;
    run.pids = null.pid().into_iter().collect();
    let r = drive(stack.jetstream().await?, &stack.feed, &run).await?;
    Ok(NullFigures {
        throughput_per_s: r.throughput_per_s,
        notifications_seen: r.notifications_seen,
        notifications_expected: r.notifications_expected,
        latency_to_subject: r.latency_to_subject,
        sizes,
        max_cpu_pct: r.max_cpu_pct,
    })
}

/// Runs the chosen benchmarks; writes one SVG chart per run into `charts` if given.
pub async fn bench(which: Bench, charts: Option<&std::path::Path>) -> anyhow::Result<Vec<Report>> {
    let list: Vec<Bench> = if which == Bench::All { Bench::EACH.to_vec() } else { vec![which] };
    let mut reports = Vec::new();
    for b in list {
        reports.push(on_fresh_stack(b, charts).await?);
    }
    Ok(reports)
}

/// The results table (Markdown) of some reports.
pub fn table(reports: &[Report]) -> String {
    let mut t = String::from("| scenario | sent | arrived / expected | throughput /s | p50 ms | p99 ms | p99.9 ms | null pipeline /s | ceiling msg/s | ratio | max RSS MB | max CPU % |\n|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    for r in reports {
        let lat = if matches!(r.scenario.as_str(), "broadcast" | "commands") {
            r.latency_to_telegram.clone().unwrap_or_default()
        } else {
            r.latency_to_subject.clone()
        };
        let opt = |v: Option<f64>| v.map(|v| format!("{v:.0}")).unwrap_or_else(|| "-".into());
        t += &format!(
            "| {} | {} | {} / {} | {:.0} | {:.1} | {:.1} | {:.1} | {} | {} | {} | {} | {} |\n",
            r.scenario,
            r.events_sent,
            r.notifications_seen,
            r.notifications_expected,
            r.throughput_per_s,
            lat.p50_ms,
            lat.p99_ms,
            lat.p999_ms,
            opt(r.null_pipeline.as_ref().map(|n| n.throughput_per_s)),
            opt(r.ceiling.as_ref().map(|c| c.publish_and_consume_per_s)),
            r.ratio_to_ceiling.map(|v| format!("{v:.3}")).unwrap_or_else(|| "-".into()),
            opt(r.max_rss_mb),
            opt(r.max_cpu_pct),
        );
    }
    t
}
