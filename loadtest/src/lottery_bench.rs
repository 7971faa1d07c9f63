//! `loadtest bench --scenario lottery`: the lottery's two figures.
//!
//! 1. **A big round** (in this process, on a fresh nats-server and the drand relay
//!    stand-in): one round holding `tickets` tickets in `purchases` purchases by
//!    `purchases / 2` users, each with up to three levels of referrers. The purchases
//!    are written to the round's journal directly (hash-chained, as the purchase path
//!    writes them, but pipelined: the purchase path itself is measured in 2). Then a
//!    lottery instance with a cold cache (as after a restart) takes the round from the
//!    close to the settlement: it folds the journal, computes the tickets' root, tells
//!    every participant the sale closed, verifies beacon `R`, reveals, draws, stores the
//!    bundle, credits prizes and referral rewards and tells everyone the result. `R` is
//!    the first beacon a second after the close (`--lottery-beacon-delay 1s`, the
//!    shortest), out before the close's work is done, so waiting for drand is not part
//!    of the figure. The step times come from the journal entries' clocks;
//!    the peak RSS is this process's, reset (`/proc/self/clear_refs`) just before.
//! 2. **`/buy` to receipt** on a whole local stack (pipeline and bot processes, the Bot
//!    API emulator, anvil for payments): `buy_users` users with a balance send `/buy 1`
//!    at `buy_rate` per second; for each, the time from the update's push to the
//!    emulator accepting the receipt. The bot's and emulator's global limits are raised
//!    above Telegram's 30 messages/s to measure Herald's side.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use alloy::primitives::U256;
use clap::{Args, FromArgMatches};
use futures::StreamExt;
use herald_draw::testchain::TestChain;
use herald_pipeline::core::ledger::Ledger;
use herald_pipeline::products::lottery::config::LotteryArgs;
use herald_pipeline::products::lottery::journal::{step_name, Phase};
use herald_pipeline::products::lottery::{scheduler, LotteryProduct};
use herald_schemas::{subjects, LotteryEntry, LotteryStep};
use herald_testkit::LocalNats;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::drand::Relay;
use crate::report::{histogram, Percentiles};
use crate::stack::{private_text, Stack, StackOptions};

/// What the scenario measured.
#[derive(Debug, Clone, Serialize, Default)]
pub struct LotteryReport {
    pub tickets: u64,
    pub purchases: u64,
    pub users: u64,
    /// Milliseconds from the first tick after `t_close` to each step's entry.
    pub closed_ms: u64,
    pub beacon_ms: u64,
    pub drawn_ms: u64,
    pub settled_ms: u64,
    /// Ledger credits the settlement made (prizes and referral rewards).
    pub credits: u64,
    /// Messages the close and the settlement published (sale closed, results, rewards).
    pub notices: u64,
    pub bundle_bytes: u64,
    /// Peak RSS of the lottery instance's process over the close-to-settlement.
    pub peak_rss_mb: Option<f64>,
    pub buy_rate_per_s: u64,
    /// `/buy 1` pushed -> its receipt accepted by the emulator.
    pub buy: Percentiles,
}

impl std::fmt::Display for LotteryReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "scenario lottery: {} tickets in {} purchases by {} users",
            self.tickets, self.purchases, self.users
        )?;
        writeln!(
            f,
            "  close (fold + root) {} ms, beacon {} ms, draw {} ms, settlement {} ms (from the first tick after t_close)",
            self.closed_ms, self.beacon_ms, self.drawn_ms, self.settled_ms
        )?;
        writeln!(
            f,
            "  {} ledger credits, {} notices, bundle {:.1} MB",
            self.credits,
            self.notices,
            self.bundle_bytes as f64 / 1e6
        )?;
        if let Some(m) = self.peak_rss_mb {
            writeln!(f, "  peak RSS over close..settlement: {m:.0} MB")?;
        }
        writeln!(f, "  /buy -> receipt at {}/s: {}", self.buy_rate_per_s, self.buy)
    }
}

/// The scenario's knobs.
#[derive(Debug, Clone, clap::Args)]
pub struct LotteryBenchArgs {
    /// Tickets in the big round.
    #[arg(long, default_value_t = 1_000_000)]
    pub lottery_tickets: u64,
    /// Purchases they are bought in (tickets / purchases each).
    #[arg(long, default_value_t = 100_000)]
    pub lottery_purchases: u64,
    /// `/buy` per second.
    #[arg(long, default_value_t = 200)]
    pub buy_rate: u64,
    /// Users sending one `/buy` each.
    #[arg(long, default_value_t = 4_000)]
    pub buy_users: u64,
}

/// Runs both parts.
///
/// Errors: a process did not start, or a step did not finish within its deadline.
pub async fn run(args: &LotteryBenchArgs) -> anyhow::Result<LotteryReport> {
    let mut report = big_round(args.lottery_tickets, args.lottery_purchases).await?;
    report.buy_rate_per_s = args.buy_rate;
    report.buy = buys(args.buy_users, args.buy_rate).await?;
    Ok(report)
}

/// The lottery of the big round: 30 s rounds, `R` 1 s after the close, the relay's chain.
fn lottery(relay: &Relay) -> LotteryProduct {
    let args = relay.lottery_args("30s", "1s", &[relay.url()]);
    let cmd = LotteryArgs::augment_args(clap::Command::new("bench").no_binary_name(true));
    LotteryProduct(LotteryArgs::from_arg_matches(&cmd.get_matches_from(args)).expect("bench flags"))
}

/// Part 1.
async fn big_round(tickets: u64, purchases: u64) -> anyhow::Result<LotteryReport> {
    anyhow::ensure!(purchases > 0 && tickets >= purchases, "need tickets >= purchases > 0");
    let nats = LocalNats::start()?;
    let js = herald_pipeline::app::compose::connect(&nats.servers_args()).await?;
    herald_pipeline::app::compose::setup_all(&js, false, herald_runtime::setup::Replicas::Existing).await?;
    let now = herald_schemas::now_ms() / 1000;
    let relay = Relay::start("127.0.0.1:0".parse()?, TestChain::new([9; 32], now - 100, 1)).await?;
    let product = lottery(&relay);
    // open the round with most of its 30 s still ahead, so the writes fit before the close
    while herald_schemas::now_ms() / 1000 % 30 > 5 {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let writer = product.open(&js, &[]).await?;
    scheduler::tick(&writer).await?;
    let opened = writer.round(1).await?;
    anyhow::ensure!(opened.phase == Some(Phase::Selling), "round 1 did not open");
    let users = (purchases / 2).max(1);
    let written = Instant::now();
    write_purchases(&js, &opened, tickets, purchases, users).await?;
    println!(
        "wrote {purchases} purchases ({tickets} tickets) in {:.1} s; waiting for t_close",
        written.elapsed().as_secs_f64()
    );
    anyhow::ensure!(
        herald_schemas::now_ms() / 1000 < opened.t_close,
        "the writes took longer than the round: fewer purchases, or a faster disk"
    );
    drop(writer);
    while herald_schemas::now_ms() / 1000 < opened.t_close {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // a cold instance takes it from here, as after a restart
    let _ = std::fs::write("/proc/self/clear_refs", "5"); // resets VmHWM (Linux)
    let outbound_before = js.get_stream(subjects::OUTBOUND_STREAM).await?.info().await?.state.messages;
    let l = product.open(&js, &[]).await?;
    let started = herald_schemas::now_ms();
    let deadline = Instant::now() + Duration::from_secs(300);
    while l.round(1).await?.phase != Some(Phase::Settled) {
        anyhow::ensure!(Instant::now() < deadline, "round 1 not settled after 5 min");
        scheduler::tick(&l).await?;
    }
    let peak_rss_mb = peak_rss_mb();
    let round = l.round(1).await?;
    let at = step_times(&js).await?;
    let since = |step: &str| at.get(step).map(|t| t.saturating_sub(started)).unwrap_or_default();
    let outbound = js.get_stream(subjects::OUTBOUND_STREAM).await?.info().await?.state.messages;
    let bundle = l
        .bundles
        .info(&herald_pipeline::products::lottery::service::Lottery::bundle_name(1))
        .await?;
    Ok(LotteryReport {
        tickets: round.sold,
        purchases: round.purchases.len() as u64,
        users,
        closed_ms: since("closed"),
        beacon_ms: since("beacon"),
        drawn_ms: since("drawn"),
        settled_ms: since("settled"),
        credits: round.credits,
        notices: outbound - outbound_before,
        bundle_bytes: bundle.size as u64,
        peak_rss_mb,
        ..Default::default()
    })
}

/// Appends the purchases to round 1 after its Opened entry, chained as the journal
/// chains them, publishing ahead of the acks.
async fn write_purchases(
    js: &herald_runtime::Js,
    opened: &herald_pipeline::products::lottery::round::Round,
    tickets: u64,
    purchases: u64,
    users: u64,
) -> anyhow::Result<()> {
    let mut prev = opened.last_hash.expect("the Opened entry");
    let (mut sold, mut spend) = (0u64, 0u128);
    let mut acks = Vec::new();
    for i in 0..purchases {
        let count = tickets / purchases + u64::from(i < tickets % purchases);
        let user = (1 + i % users) as i64;
        // user u was referred by u / 10, who was referred by u / 100, ...
        let referrers: Vec<i64> = [user / 10, user / 100, user / 1000].into_iter().filter(|r| *r > 0).collect();
        let amount = count as u128 * opened.price;
        let step = LotteryStep::Purchase {
            receipt_id: hex::encode(rand::random::<[u8; 16]>()),
            user_id: user,
            chat_id: user,
            first_ticket: sold,
            count,
            amount: amount.to_string(),
            debit_ref: format!("lottery:buy:bench{i}"),
            referrers,
        };
        sold += count;
        spend += amount;
        let entry = LotteryEntry::new(1, 1 + i, hex::encode(prev), sold, spend.to_string(), step);
        let bytes = herald_schemas::encode(&entry);
        prev = Sha256::digest(&bytes).into();
        acks.push(js.publish(subjects::lottery_round(1), bytes.into()).await?);
        if acks.len() == 5_000 {
            for ack in futures::future::join_all(acks.drain(..).map(std::future::IntoFuture::into_future)).await {
                ack?;
            }
        }
    }
    for ack in futures::future::join_all(acks.into_iter().map(std::future::IntoFuture::into_future)).await {
        ack?;
    }
    Ok(())
}

/// When each step of round 1 was written (ms), from the entries' clocks.
async fn step_times(js: &herald_runtime::Js) -> anyhow::Result<HashMap<&'static str, u64>> {
    let mut at = HashMap::new();
    let stream = js.get_stream(subjects::LOTTERY_STREAM).await?;
    // the steps after the purchases are the round's last few entries
    let last = stream.get_last_raw_message_by_subject(&subjects::lottery_round(1)).await?.sequence;
    for seq in last.saturating_sub(8)..=last {
        if let Ok(m) = stream.get_raw_message(seq).await {
            if m.subject.as_str() == subjects::lottery_round(1) {
                let e: LotteryEntry = herald_schemas::decode(&m.payload)?;
                at.insert(step_name(&e.step), e.at_ms);
            }
        }
    }
    Ok(at)
}

/// This process's peak RSS (VmHWM), MB.
fn peak_rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// Part 2.
async fn buys(users: u64, rate: u64) -> anyhow::Result<Percentiles> {
    let chain = crate::demo::payments::DemoChain::start().await?;
    let args = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let mut pipeline_args = chain.pipeline_args();
    // a round long enough not to close during the run; no drand needed before the close
    pipeline_args.extend(args(&["--lottery-period", "1d", "--lottery-anchor", "0"]));
    let stack = Stack::start(StackOptions::unthrottled(pipeline_args)).await?;
    let js = stack.jetstream().await?;
    crate::run::seed_users(&js, users as usize, 0).await?;
    let ledger = Ledger::open(js.clone()).await?;
    futures::stream::iter(1..=users as i64)
        .map(|u| {
            let ledger = ledger.clone();
            async move {
                ledger
                    .credit(u, U256::from(10u128.pow(19)), &format!("deposit:bench:{u}"), "bench")
                    .await
            }
        })
        .buffer_unordered(64)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<anyhow::Result<Vec<_>>>()?;
    // the round is open before the clock starts
    let deadline = Instant::now() + Duration::from_secs(30);
    while js.get_stream(subjects::LOTTERY_STREAM).await?.info().await?.state.messages == 0 {
        anyhow::ensure!(Instant::now() < deadline, "the lottery did not open a round");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let mut seen = stack.emulator.deliveries().len();
    let mut pushed: HashMap<i64, u64> = HashMap::new();
    let mut receipts: HashMap<i64, u64> = HashMap::new();
    let collect = |seen: &mut usize, receipts: &mut HashMap<i64, u64>| {
        let d = stack.emulator.deliveries_from(*seen);
        *seen += d.len();
        for x in d.into_iter().filter(|x| x.text.contains("Receipt")) {
            receipts.entry(x.chat_id).or_insert(x.at_ms);
        }
    };
    let per_tick = (rate / 100).max(1);
    let mut tick = tokio::time::interval(Duration::from_millis(10));
    for chunk in (1..=users as i64).collect::<Vec<_>>().chunks(per_tick as usize) {
        tick.tick().await;
        for &u in chunk {
            stack.emulator.push_update(private_text(u, "/buy 1"));
            pushed.insert(u, herald_schemas::now_ms());
        }
        collect(&mut seen, &mut receipts);
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while receipts.len() < pushed.len() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
        collect(&mut seen, &mut receipts);
    }
    anyhow::ensure!(receipts.len() == pushed.len(), "{} of {} receipts", receipts.len(), pushed.len());
    let mut h = histogram();
    for (u, at) in &pushed {
        h.record(receipts[u].saturating_sub(*at).max(1) * 1000)?;
    }
    Ok(Percentiles::of(&h))
}
