//! A full lottery round through the whole stack (`loadtest demo-lottery`).
//!
//! Ana, then Bea (referred by Ana), Cid (by Bea) and Dov (by Cid) /start the bot; each
//! deposits 10 BUSD on a local chain (anvil) and, once the deposit is final and
//! credited, buys tickets with `/buy`. The round closes, its beacon comes from the drand
//! relay stand-in (a test chain it signs), the seed is revealed, the winners are paid
//! and everyone is told; then the bundle is fetched from the lottery's HTTP server and
//! checked by the standalone `herald-verify`, as a user would.
//!
//! With `kill9_after_close`, the pipeline is killed with SIGKILL once the sale has
//! closed and before the draw, and started again: the draw and the payouts still
//! happen once (the test `loadtest/tests/lottery_stack.rs` checks it). With
//! `kill9_servers`, the nats-servers are: the money server while the purchases are in
//! flight, then the events server and the money server again between the close and the
//! draw, each started again on its store.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use alloy::primitives::U256;
use herald_draw::testchain::TestChain;
use herald_pipeline::core::ledger::Ledger;
use herald_pipeline::products::lottery::journal::step_name;
use herald_runtime::reader::read_from;
use herald_schemas::{subjects, LotteryEntry};
use herald_testkit::{evm, free_port, workspace_bin, ServerClass};

use super::payments::{deposit_address, DemoChain};
use crate::drand::Relay;
use crate::emulator::Delivery;
use crate::stack::{private_text, Stack, StackOptions};

pub const ANA: i64 = 3001;
pub const BEA: i64 = 3002;
pub const CID: i64 = 3003;
pub const DOV: i64 = 3004;
/// `(user, referrer, tickets bought)`, in the order they /start.
pub const PLAYERS: [(i64, Option<i64>, u64); 4] = [(ANA, None, 3), (BEA, Some(ANA), 2), (CID, Some(BEA), 4), (DOV, Some(CID), 1)];
/// What each deposits: 10 BUSD (18 decimals).
const DEPOSIT_BUSD: u64 = 10;
/// Blocks on top of a transfer before it counts as final (the payments demo's figure).
const CONFIRMATIONS: u64 = 3;

/// How the demo runs.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Keep process logs here (default: a temporary directory).
    pub log_dir: Option<PathBuf>,
    /// SIGKILL the pipeline between the sale's close and the draw, then restart it.
    pub kill9_after_close: bool,
    /// SIGKILL the money server while the purchases are in flight, then the events
    /// server and the money server between the close and the draw; each restarts on its
    /// store at once.
    pub kill9_servers: bool,
}

/// What happened, for the test and the printout.
#[derive(Debug)]
pub struct Summary {
    /// The round the tickets were in.
    pub round: u64,
    pub deliveries: Vec<Delivery>,
    /// How many journal entries of each step the round has (`drawn`: 1 means drawn once).
    pub steps: BTreeMap<String, usize>,
    /// Ledger entries per lottery reference (`lottery:<r>:prize:1`: 1 means paid once).
    pub payouts: BTreeMap<String, usize>,
    /// Ledger entries per purchase debit (`lottery:buy:<update id>`: 1 means once).
    pub purchase_debits: BTreeMap<String, usize>,
    /// `herald_lottery_payouts_total` of the pipeline that settled (after a restart, the
    /// restarted one's: every payout it made).
    pub payouts_counter: u64,
    /// Whether the round was still undrawn when the pipeline was killed.
    pub killed_before_draw: Option<bool>,
    pub verifier_output: String,
    pub verified: bool,
    /// A player's ticket proved in the root announced at the close (`herald-verify --proof`).
    pub proof_verified: bool,
}

/// The root a proof file leads to.
fn proof_root(path: &std::path::Path) -> anyhow::Result<String> {
    let p: herald_draw::proof::Proof = serde_json::from_slice(&std::fs::read(path)?)?;
    Ok(p.tickets_root)
}

/// `pipeline run` arguments: 20 s rounds, `R` `beacon_delay` after the close, the
/// relay's test chain trusted (tests only), bundles and proofs served on `http_port`.
fn lottery_args(relay: &Relay, beacon_delay: &str, http_port: u16) -> Vec<String> {
    let mut args = relay.lottery_args("20s", beacon_delay, &[relay.url()]);
    let addr = format!("127.0.0.1:{http_port}");
    let url = format!("http://{addr}");
    args.extend(["--lottery-tick", "250ms", "--lottery-http", &addr, "--lottery-public-url", &url].map(String::from));
    args
}

/// Waits until `chat` received a message containing `needle`; returns the latest such.
async fn wait_for(stack: &Stack, chat: i64, needle: &str, secs: u64) -> anyhow::Result<Delivery> {
    let d = stack
        .wait_for_deliveries(Duration::from_secs(secs), |d| {
            d.iter().any(|x| x.chat_id == chat && x.text.contains(needle))
        })
        .await
        .map_err(|e| anyhow::anyhow!("chat {chat} waiting for {needle:?}: {e}"))?;
    let found = d.into_iter().rev().find(|x| x.chat_id == chat && x.text.contains(needle));
    found.ok_or_else(|| anyhow::anyhow!("chat {chat} waiting for {needle:?}"))
}

/// The round number after `marker` in a message (`in round 7`, `Round 7 drawn`).
fn round_after(text: &str, marker: &str) -> anyhow::Result<u64> {
    let at = text.find(marker).ok_or_else(|| anyhow::anyhow!("no {marker:?} in {text}"))? + marker.len();
    let digits: String = text[at..].chars().take_while(|c| c.is_ascii_digit()).collect();
    Ok(digits.parse()?)
}

/// The round's journal: how many entries of each step.
async fn steps(js: &herald_runtime::Js, round: u64) -> anyhow::Result<BTreeMap<String, usize>> {
    let messages = read_from(js, subjects::LOTTERY_STREAM, &subjects::lottery_round(round), 1).await?;
    let mut out = BTreeMap::new();
    for m in messages {
        let e: LotteryEntry = serde_json::from_slice(&m.payload)?;
        *out.entry(step_name(&e.step).to_string()).or_insert(0) += 1;
    }
    Ok(out)
}

/// SIGKILL to the stack's nats-server of `class` and a start on its store.
///
/// Errors: it would not start again.
fn restart_server(stack: &mut Stack, class: ServerClass) -> anyhow::Result<()> {
    let nats = stack
        .nats
        .single()
        .ok_or_else(|| anyhow::anyhow!("the demo runs on one server per class"))?;
    nats.kill9(class);
    nats.start_again(class)
}

/// Runs the round and prints what happened.
///
/// Errors: a step's reply did not arrive in time (named), a process failed to start.
pub async fn run(opts: Options) -> anyhow::Result<Summary> {
    println!("Starting anvil with a BUSD token, and the drand relay stand-in (a test chain, 1 s rounds)...");
    let chain = DemoChain::start().await?;
    let now = herald_schemas::now_ms() / 1000;
    let relay = Relay::start(
        "127.0.0.1:0".parse()?,
        TestChain::new(*b"herald-demo-lottery-test-chain!!", now - 600, 1),
    )
    .await?;
    // long enough for the kill to land between the close and beacon R
    let delay = if opts.kill9_after_close || opts.kill9_servers {
        "10s"
    } else {
        "3s"
    };
    let http_port = free_port();
    let mut pipeline_args = chain.pipeline_args();
    pipeline_args.extend(lottery_args(&relay, delay, http_port));
    println!("Starting nats-server, redis-server, the Bot API emulator, pipeline and bot...");
    let mut stack = Stack::start(StackOptions {
        log_dir: opts.log_dir,
        pipeline_args,
        ..Default::default()
    })
    .await?;
    println!("Logs: {}", stack.log_dir.display());

    for (user, referrer, _) in PLAYERS {
        let start = match referrer {
            Some(r) => format!("/start ref_{r}"),
            None => "/start".into(),
        };
        println!("{user}: {start}");
        stack.emulator.push_update(private_text(user, &start));
        stack
            .wait_for_deliveries(Duration::from_secs(30), |d| d.iter().any(|x| x.chat_id == user))
            .await?;
    }
    let provider = evm::provider(&chain.anvil.url())?;
    for (user, _, _) in PLAYERS {
        stack.emulator.push_update(private_text(user, "/deposit"));
        let address = deposit_address(&wait_for(&stack, user, "Your deposit address", 30).await?.text)?;
        let amount = U256::from(DEPOSIT_BUSD) * U256::from(10).pow(U256::from(18));
        evm::pay(&provider, chain.token, address, amount).await?;
        println!("{user}: paid {DEPOSIT_BUSD} BUSD to {address}");
    }
    for (user, _, _) in PLAYERS {
        wait_for(&stack, user, "Deposit of", 30).await?;
    }
    evm::mine(&provider, CONFIRMATIONS).await?;
    for (user, _, _) in PLAYERS {
        wait_for(&stack, user, "credited. Balance", 30).await?;
    }
    println!("Every deposit is final and credited. Everyone buys tickets...");
    for (user, _, n) in PLAYERS {
        stack.emulator.push_update(private_text(user, &format!("/buy {n}")));
    }
    if opts.kill9_servers {
        println!("SIGKILL to the money server while the purchases are in flight");
        restart_server(&mut stack, ServerClass::Money)?;
    }
    let mut rounds = Vec::new();
    for (user, _, _) in PLAYERS {
        let receipt = wait_for(&stack, user, "Receipt", 30).await?;
        rounds.push(round_after(&receipt.text, "in round ")?);
    }
    // a close between two /buy moves the later ones to the next round: play that one
    let round = *rounds.iter().max().expect("four receipts");
    let players: Vec<i64> = PLAYERS
        .iter()
        .zip(&rounds)
        .filter(|(_, r)| **r == round)
        .map(|(p, _)| p.0)
        .collect();
    println!("Tickets in round {round} for {players:?}; waiting for the sale to close...");
    let closed = format!("Round {round} sale closed");
    let mut closed_notices = Vec::new();
    for &user in &players {
        closed_notices.push(wait_for(&stack, user, &closed, 60).await?);
    }
    // a player checks their ticket is in the root, before the draw
    let proof_dir = tempfile::tempdir()?;
    let notice = &closed_notices[0].text;
    let url = notice
        .split_whitespace()
        .find(|w| w.contains("/proof/"))
        .ok_or_else(|| anyhow::anyhow!("no proof link in {notice}"))?;
    let proof_path = proof_dir.path().join("proof.json");
    std::fs::write(&proof_path, reqwest::get(url).await?.error_for_status()?.bytes().await?)?;
    println!("herald-verify --proof {url}");
    let proof = std::process::Command::new(workspace_bin("herald-verify")?)
        .arg("--proof")
        .arg(&proof_path)
        .output()?;
    let proof_output = String::from_utf8_lossy(&proof.stdout).to_string();
    print!("{proof_output}");
    let proof_verified = proof.status.success() && notice.contains(&proof_root(&proof_path)?);
    let js = stack.jetstream().await?;
    let mut killed_before_draw = None;
    if opts.kill9_servers {
        killed_before_draw = Some(!steps(&js, round).await?.contains_key("drawn"));
        println!("SIGKILL to the events server, then to the money server (round {round} closed, not drawn)");
        restart_server(&mut stack, ServerClass::Events)?;
        restart_server(&mut stack, ServerClass::Money)?;
    }
    if opts.kill9_after_close {
        let undrawn = !steps(&js, round).await?.contains_key("drawn");
        println!("SIGKILL to the pipeline (round {round} drawn yet: {})", !undrawn);
        stack.pipeline.kill9();
        killed_before_draw = Some(undrawn);
        stack.pipeline.restart().await?;
        println!("pipeline restarted");
    }
    let drawn = format!("Round {round} drawn");
    for &user in &players {
        wait_for(&stack, user, &drawn, 90).await?;
    }
    // everything the settlement tells is published before the draw's summary: let the bot deliver it
    stack.wait_quiet(Duration::from_secs(2), Duration::from_secs(30)).await;

    stack.emulator.push_update(private_text(ANA, &format!("/verify {round}")));
    let verify = wait_for(&stack, ANA, "the draw's proof", 30).await?;
    let url = format!("http://127.0.0.1:{http_port}/lottery/rounds/{round}/bundle.json");
    anyhow::ensure!(verify.text.contains(&url), "/verify links the bundle: {}", verify.text);
    let bundle = reqwest::get(&url).await?.error_for_status()?.bytes().await?;
    let dir = tempfile::tempdir()?;
    let (bundle_path, chain_path) = (dir.path().join("bundle.json"), dir.path().join("chain.json"));
    std::fs::write(&bundle_path, &bundle)?;
    std::fs::write(&chain_path, serde_json::to_vec(relay.test_chain())?)?;
    println!("herald-verify {} --chain-info {}", bundle_path.display(), chain_path.display());
    let out = std::process::Command::new(workspace_bin("herald-verify")?)
        .arg(&bundle_path)
        .arg("--chain-info")
        .arg(&chain_path)
        .output()?;
    let verifier_output = String::from_utf8_lossy(&out.stdout).to_string();
    print!("{verifier_output}");

    let ledger = Ledger::open(js.clone()).await?;
    let (mut payouts, mut purchase_debits) = (BTreeMap::new(), BTreeMap::new());
    for (user, _, _) in PLAYERS {
        for e in ledger.history(user, 1000).await? {
            if e.reference.starts_with(&format!("lottery:{round}:")) {
                *payouts.entry(e.reference.clone()).or_insert(0) += 1;
            } else if e.reference.starts_with("lottery:buy:") {
                *purchase_debits.entry(e.reference.clone()).or_insert(0) += 1;
            }
        }
    }
    let metrics = stack.pipeline.metrics().await?;
    let payouts_counter = herald_runtime::metric::sum_in(&metrics, "herald_lottery_payouts_total", &[]) as u64;
    let deliveries = stack.emulator.deliveries();
    println!("\n=== What the players were told about round {round} ===");
    for d in deliveries.iter().filter(|d| d.text.contains(&format!("ound {round}"))) {
        println!("--- to {}:\n{}", d.chat_id, super::strip_tags(&d.text));
    }
    let steps = steps(&js, round).await?;
    println!("\njournal of round {round}: {steps:?}");
    println!("ledger entries per payout reference: {payouts:?}");
    stack.bot.terminate();
    stack.pipeline.terminate();
    Ok(Summary {
        round,
        deliveries,
        steps,
        payouts,
        purchase_debits,
        payouts_counter,
        killed_before_draw,
        verifier_output,
        verified: out.status.success(),
        proof_verified,
    })
}
