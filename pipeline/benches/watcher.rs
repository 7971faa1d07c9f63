//! Deposit watcher figures for the README (issue: deposits), on a real anvil node:
//!
//! 1. scan: 10,000 blocks holding `--deposits` transfers to deposit addresses (and as
//!    many to other addresses), watched for `--addresses` (100,000) deposit addresses:
//!    time and JSON-RPC requests until every deposit is seen and final;
//! 2. deposit final -> user notified: with nats-server, the watcher (polling every
//!    `--poll-ms`, 500 as `pipeline run`'s default) and the credit stage, the time from
//!    mining the block that makes a deposit final (at a random point of the watcher's
//!    period) to its "credited" message on the user's notification subject.
//!
//! Run: `cargo bench -p herald-pipeline --bench watcher` (needs anvil and nats-server:
//! `eval "$(scripts/install-deps)"`).

mod common;

use common::arg;
use std::sync::Arc;
use std::time::{Duration, Instant};

use alloy::primitives::{Address, U256};
use alloy::providers::Provider;
use futures::StreamExt;
use hdrhistogram::Histogram;
use herald_pipeline::core::ledger::Ledger;
use herald_pipeline::products::payments::credit::CreditStage;
use herald_pipeline::products::payments::follow::DepositEvent;
use herald_pipeline::products::payments::wallet::{account_xpub, DepositWallet};
use herald_pipeline::products::payments::watcher::{Watcher, WatcherConfig};
use herald_runtime::{run_stage, StageConfig};
use herald_schemas::subjects;
use herald_testkit::{evm, LocalAnvil, LocalNats};
use rand::{Rng, SeedableRng};

const MNEMONIC: &str = "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about";
const BLOCKS: u64 = 10_000;

fn config(url: String, token: Address, confirmations: u64) -> WatcherConfig {
    WatcherConfig {
        rpc_url: url,
        tokens: vec![token],
        finalized_tag: false,
        confirmations,
        max_range: 1_000,
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let (addresses, deposits) = (arg("--addresses", 100_000), arg("--deposits", 200));
    let anvil = LocalAnvil::start()?;
    let p = evm::provider(&anvil.url())?;
    let token = evm::deploy_token(&p).await?;
    let wallet = DepositWallet::from_xpub(&account_xpub(MNEMONIC)?)?;

    let started = Instant::now();
    let owners: Vec<(Address, i64)> = (0..addresses as u32)
        .map(|i| Ok((wallet.address(i)?, i as i64)))
        .collect::<anyhow::Result<_>>()?;
    println!("derived {addresses} deposit addresses in {:.1} s", started.elapsed().as_secs_f64());

    // 1. the chain: deposits and as many other transfers, spread over 10,000 blocks
    let from = p.get_block_number().await? + 1;
    let mut rng = rand::rngs::StdRng::seed_from_u64(5);
    let gap = BLOCKS / (2 * deposits as u64).max(1);
    for i in 0..2 * deposits {
        let to = if i % 2 == 0 {
            owners[rng.random_range(0..owners.len())].0
        } else {
            Address::repeat_byte(0x42)
        };
        evm::pay(&p, token, to, U256::from(1_000_000u64 + i as u64)).await?;
        evm::mine(&p, gap.saturating_sub(1)).await?;
    }
    let head = p.get_block_number().await?;
    evm::mine(&p, (from + BLOCKS).saturating_sub(head)).await?;
    let head = p.get_block_number().await?;

    let mut watcher = Watcher::new(config(anvil.url(), token, 15), from)?;
    watcher.watch(owners.iter().copied());
    let started = Instant::now();
    let (mut seen, mut finals) = (0, 0);
    while finals < deposits {
        for e in watcher.step().await? {
            match e {
                DepositEvent::Seen(_) => seen += 1,
                DepositEvent::Final(_) => finals += 1,
                DepositEvent::Orphaned(_) => anyhow::bail!("no reorg was made"),
            }
        }
        if finals < deposits {
            evm::mine(&p, 15).await?; // the last deposits need their confirmations
        }
    }
    println!(
        "scan: {} blocks, {addresses} addresses, {deposits} deposits (+{deposits} other transfers): {:.2} s, {} RPC requests; {seen} seen, {finals} final",
        head - from + 1,
        started.elapsed().as_secs_f64(),
        watcher.rpc_calls
    );

    // 2. final -> notified, through NATS and the credit stage
    let nats = LocalNats::start()?;
    let js = herald_pipeline::app::compose::connect(&nats.servers_args()).await?;
    herald_pipeline::app::compose::setup_all(&js, false, herald_runtime::setup::Replicas::Existing).await?;
    let kv = js.get_key_value(subjects::WALLET_BUCKET).await?;
    let shutdown = tokio_util::sync::CancellationToken::new();
    let stage = CreditStage {
        ledger: Ledger::open(js.clone()).await?,
        tokens: herald_pipeline::products::payments::credit::DepositToken::only(token, herald_testkit::evm::BUSD),
        min_deposit: U256::ZERO,
    };
    let cfg = StageConfig::new(subjects::DEPOSITS_STREAM, "credit", vec!["herald.deposits.>".into()]);
    tokio::spawn(run_stage(js.clone(), Arc::new(stage), cfg, shutdown.clone()));
    let user_address = herald_pipeline::products::payments::addresses::assign(&kv, &wallet, 7)
        .await?
        .address;
    let w = Watcher::new(config(anvil.url(), token, 3), p.get_block_number().await? + 1)?;
    tokio::spawn(herald_pipeline::products::payments::watcher::run(
        w,
        wallet.clone(),
        "bsc".into(),
        js.clone(),
        Duration::from_millis(arg("--poll-ms", 500) as u64),
        shutdown.clone(),
    ));
    // the credited messages, as JetStream stores them (a core subscription sees each publish)
    let client = async_nats::connect(nats.url()).await?;
    let mut notified = client.subscribe(subjects::notify(7)).await?;
    let mut latency = Histogram::<u64>::new(3)?;
    let rounds = arg("--rounds", 50);
    for i in 0..rounds {
        evm::pay(&p, token, user_address, U256::from(10).pow(U256::from(18)) + U256::from(i)).await?;
        evm::mine(&p, 2).await?;
        // at a random point of the watcher's period, as a real block would come
        let poll = arg("--poll-ms", 500) as u64;
        tokio::time::sleep(Duration::from_millis(rng.random_range(0..poll))).await;
        let final_at = Instant::now();
        evm::mine(&p, 1).await?; // the third confirmation: final now
        loop {
            let msg = tokio::time::timeout(Duration::from_secs(10), notified.next())
                .await?
                .ok_or_else(|| anyhow::anyhow!("subscription closed"))?;
            let text = herald_schemas::decode::<herald_schemas::OutboundMessage>(&msg.payload)?
                .text()
                .unwrap_or_default()
                .to_string();
            if text.contains("credited. Balance") {
                latency.record(final_at.elapsed().as_millis() as u64)?;
                break;
            }
        }
    }
    shutdown.cancel();
    println!(
        "final -> notified ({rounds} deposits, watcher polling every {} ms): min {} ms, p50 {} ms, p99 {} ms, max {} ms",
        arg("--poll-ms", 500),
        latency.min(),
        latency.value_at_quantile(0.5),
        latency.value_at_quantile(0.99),
        latency.max()
    );
    Ok(())
}
