//! `loadtest bench --scenario withdrawals`: from a user's Confirm to "final", through
//! the whole stack (issue 23's figure).
//!
//! A local stack (pipeline with `--withdrawals`, bot, the Bot API emulator) on anvil
//! with the ERC-20 fixture as the payout token, and `herald-signer` as its own process
//! with the shipped defaults (15 confirmations, a watch every 3 s). anvil's automine is
//! off: a block every 750 ms, BNB Smart Chain's block time since the Maxwell upgrade, so
//! transactions share blocks as on the real chain. `users` users with a balance each
//! send `/withdraw 20 <address>` (not timed); then every Confirm button is pressed within
//! a second. For each: the time from the press to the "sent" message (Herald and the
//! signer: held, approved, journaled, signed, broadcast) and to the "final" message
//! (plus 15 blocks), as the emulator accepted them; and the signer's throughput, the
//! withdrawals sent per second from the first press to the last "sent".

use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use alloy::primitives::{address, Address, U256};
use alloy::providers::Provider;
use futures::StreamExt;
use herald_pipeline::core::ledger::Ledger;
use herald_testkit::evm;
use serde::Serialize;

use crate::report::{histogram, Percentiles};
use crate::stack::{callback_query, private_text, Stack, StackOptions};

/// anvil's second development account: the hot wallet (its key only in the signer).
const HOT_KEY: &str = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d";
const HOT: Address = address!("70997970C51812dc3A010C7d01b50e0d17dc79C8");
/// Where the withdrawals go: EIP-55's first example address.
const DEST: &str = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed";
/// BNB Smart Chain's block time (Maxwell upgrade, 2025).
const BLOCK_TIME: Duration = Duration::from_millis(750);

/// The figures.
#[derive(Debug, Clone, Serialize)]
pub struct WithdrawalsReport {
    pub withdrawals: u64,
    pub confirmations: u64,
    pub confirm_to_sent: Percentiles,
    pub confirm_to_final: Percentiles,
    /// Withdrawals sent per second, first press to last "sent".
    pub signer_sent_per_s: f64,
    /// Tokens that left the hot wallet equal the final withdrawals' nets (checked).
    pub chain_matches_ledger: bool,
}

impl std::fmt::Display for WithdrawalsReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "| withdrawals | confirmations | confirm -> sent p50 / p99 ms | confirm -> final p50 / p99 ms | signer sent/s | chain = final nets |"
        )?;
        writeln!(f, "|---|---|---|---|---|---|")?;
        write!(
            f,
            "| {} | {} | {:.0} / {:.0} | {:.0} / {:.0} | {:.1} | {} |",
            self.withdrawals,
            self.confirmations,
            self.confirm_to_sent.p50_ms,
            self.confirm_to_sent.p99_ms,
            self.confirm_to_final.p50_ms,
            self.confirm_to_final.p99_ms,
            self.signer_sent_per_s,
            if self.chain_matches_ledger { "yes" } else { "**no**" }
        )
    }
}

/// Kills the signer when the bench ends, however it ends.
struct Signer(Child);

impl Drop for Signer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs the scenario with `users` withdrawals.
///
/// Errors: a server or process failed to start, or not every withdrawal became final
/// within 5 minutes.
pub async fn run(users: u64) -> anyhow::Result<WithdrawalsReport> {
    let chain = crate::demo::payments::DemoChain::start().await?;
    let rpc = evm::provider(&chain.anvil.url())?;
    let mut pipeline_args = chain.pipeline_args();
    pipeline_args.extend(["--withdrawals", "--products", "payments"].map(String::from));
    let stack = Stack::start(StackOptions::unthrottled(pipeline_args)).await?;
    let js = stack.jetstream().await?;
    crate::run::seed_users(&js, users as usize, 0).await?;
    let ledger = Ledger::open(js.clone()).await?;
    let twenty = U256::from(20u64) * U256::from(10u64).pow(U256::from(18u64));
    futures::stream::iter(1..=users as i64)
        .map(|u| {
            let ledger = ledger.clone();
            async move { ledger.credit(u, twenty, &format!("deposit:bench:{u}"), "bench").await }
        })
        .buffer_unordered(64)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<anyhow::Result<Vec<_>>>()?;
    evm::pay(&rpc, chain.token, HOT, twenty * U256::from(users)).await?;
    let _: serde_json::Value = rpc.raw_request("evm_setAutomine".into(), (false,)).await?;
    let miner = tokio::spawn({
        let rpc = rpc.clone();
        async move {
            let mut tick = tokio::time::interval(BLOCK_TIME);
            loop {
                tick.tick().await;
                let _ = evm::mine(&rpc, 1).await;
            }
        }
    });
    let log = std::fs::File::create(stack.log_dir.join("signer.log"))?;
    let mut cmd = Command::new(herald_testkit::workspace_bin("herald-signer")?);
    cmd.args(stack.nats.args())
        .args(["--rpc-url", &chain.anvil.url()])
        .args(["--metrics-addr", &format!("127.0.0.1:{}", herald_testkit::free_port())])
        .env("HERALD_SIGNER_KEY", HOT_KEY)
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(log);
    let _signer = Signer(cmd.spawn()?);

    // every user asks (not timed) and gets a Confirm button
    let mut seen = stack.emulator.deliveries().len();
    for u in 1..=users as i64 {
        stack.emulator.push_update(private_text(u, &format!("/withdraw 20 {DEST}")));
    }
    let mut buttons: HashMap<i64, (i64, String)> = HashMap::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while buttons.len() < users as usize {
        anyhow::ensure!(Instant::now() < deadline, "{} of {users} confirmations arrived", buttons.len());
        tokio::time::sleep(Duration::from_millis(50)).await;
        for d in stack.emulator.deliveries_from(seen) {
            seen += 1;
            let data = d
                .reply_markup
                .as_ref()
                .and_then(|m| m.pointer("/inline_keyboard/0/0/callback_data"))
                .and_then(|v| v.as_str());
            if let (true, Some(data)) = (d.text.contains("Confirm the withdrawal"), data) {
                buttons.insert(d.chat_id, (d.message_id, data.to_string()));
            }
        }
    }

    // every Confirm within a second
    let started = herald_schemas::now_ms();
    let mut pressed: HashMap<i64, u64> = HashMap::new();
    let per_tick = (users / 10).max(1) as usize;
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    let order: Vec<i64> = (1..=users as i64).collect();
    for chunk in order.chunks(per_tick) {
        tick.tick().await;
        for u in chunk {
            let (message_id, data) = &buttons[u];
            stack.emulator.push_update(callback_query(*u, *message_id, data));
            pressed.insert(*u, herald_schemas::now_ms());
        }
    }
    let (mut sent, mut fin): (HashMap<i64, u64>, HashMap<i64, u64>) = (HashMap::new(), HashMap::new());
    let deadline = Instant::now() + Duration::from_secs(300);
    while fin.len() < users as usize {
        anyhow::ensure!(Instant::now() < deadline, "{} of {users} withdrawals final", fin.len());
        tokio::time::sleep(Duration::from_millis(50)).await;
        for d in stack.emulator.deliveries_from(seen) {
            seen += 1;
            if d.text.contains("Withdrawal") && d.text.contains(" sent:") {
                sent.entry(d.chat_id).or_insert(d.at_ms);
            } else if d.text.contains("is final") {
                fin.entry(d.chat_id).or_insert(d.at_ms);
            }
        }
    }
    miner.abort();

    let (mut to_sent, mut to_final) = (histogram(), histogram());
    for (u, at) in &pressed {
        if let Some(s) = sent.get(u) {
            to_sent.record(s.saturating_sub(*at).max(1) * 1000)?;
        }
        to_final.record(fin[u].saturating_sub(*at).max(1) * 1000)?;
    }
    let last_sent = sent.values().max().copied().unwrap_or(started);
    let nets = U256::from(19u64) * U256::from(10u64).pow(U256::from(18u64)) * U256::from(users);
    let dest_got = evm::balance_of(&rpc, chain.token, DEST.parse()?).await?;
    Ok(WithdrawalsReport {
        withdrawals: users,
        confirmations: 15,
        confirm_to_sent: Percentiles::of(&to_sent),
        confirm_to_final: Percentiles::of(&to_final),
        signer_sent_per_s: sent.len() as f64 / ((last_sent.saturating_sub(started)).max(1) as f64 / 1000.0),
        chain_matches_ledger: dest_got == nets,
    })
}
