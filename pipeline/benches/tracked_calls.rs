//! Tracked-call figures for the README (issue: tracked calls), on the embedded store:
//!
//! 1. write rate: `--calls` tracked calls (default 10,000,000) inserted as the track
//!    stage does, one signal's recipients per write (100 users per token);
//! 2. index rebuild at start-up from that store: time, and the process's resident
//!    memory added by the index;
//! 3. price update -> alert decisions for one token with 10,000 tracked calls: p50/p99
//!    of the decision, and of the commit (alert counts written through; multiples are
//!    checkpointed every second meanwhile);
//! 4. sustained price updates/s through the tracker's decide + commit with `--hot-calls`
//!    calls (default 1,000,000: 10,000 tokens x 100 users), prices on a random walk.
//!
//! Run: `cargo bench -p herald-pipeline --bench tracked_calls` (about 2 minutes on 2
//! cores; `-- --calls 1000000` for a quick pass). Stages 3-4 measure the tracker
//! without NATS; `loadtest bench --scenario prices` measures the path through NATS.

mod common;

use common::arg;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use hdrhistogram::Histogram;
use herald_pipeline::products::signals::tracking::embedded::EmbeddedStore;
use herald_pipeline::products::signals::tracking::store::{CallStore, TrackedCall};
use herald_pipeline::products::signals::tracking::tracker::{run_checkpoints, MultiplierStage, Tracker, DEFAULT_THRESHOLDS};
use herald_runtime::{Decision, MsgMeta, Stage};
use herald_schemas::PriceUpdate;
use rand::{Rng, SeedableRng};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc; // as in the pipeline binary

const PER_TOKEN: usize = 100;

fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse::<u64>().ok())
        .unwrap_or(0)
        * 1024
}

/// Bytes of the files under `dir`.
fn disk_bytes(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => disk_bytes(&e.path()),
            _ => e.metadata().map(|m| m.len()).unwrap_or(0),
        })
        .sum()
}

/// A Solana-length token address for token number `i`.
fn token(i: usize) -> String {
    format!("{i:0>40}pump")
}

/// The calls of token `t`: `users` recipients, user ids spread over 1M users.
fn signal(t: usize, users: usize, at: u64) -> Vec<TrackedCall> {
    (0..users)
        .map(|u| TrackedCall {
            user_id: ((t * 7919 + u * 104_729) % 1_000_000) as i64 + u as i64 * 1_000_000,
            chat_id: u as i64,
            chain: "solana".into(),
            token: token(t),
            symbol: Some(format!("T{t}")),
            caller_ids: vec![format!("chan{}", t % 500)],
            entry_price_usd: 0.001,
            called_at_ms: at,
            last_multiple: 1.0,
            best_multiple: 1.0,
            alerted: 0,
        })
        .collect()
}

/// Inserts `calls` calls, 256 signals in flight (the track stage's concurrency); calls/s.
async fn fill(store: &EmbeddedStore, calls: usize, first_token: usize, per_token: usize) -> f64 {
    let now = herald_schemas::now_ms();
    let started = Instant::now();
    let tokens = calls / per_token;
    futures::stream::iter(0..tokens)
        .map(|t| {
            let store = store.clone();
            async move { store.insert(signal(first_token + t, per_token, now)).await.unwrap() }
        })
        .buffer_unordered(256)
        .for_each(|_| async {})
        .await;
    calls as f64 / started.elapsed().as_secs_f64()
}

fn meta() -> MsgMeta {
    MsgMeta {
        subject: "herald.prices.solana".into(),
        stream_sequence: 1,
        delivered: 1,
        published_ms: 0,
    }
}

fn price(t: usize, p: f64, ts: u64) -> PriceUpdate {
    PriceUpdate {
        v: 1,
        chain: "solana".into(),
        token: token(t),
        price_usd: p,
        source: "bench".into(),
        ts_ms: ts,
    }
}

fn ms(h: &Histogram<u64>, q: f64) -> f64 {
    h.value_at_quantile(q) as f64 / 1000.0
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let calls = arg("--calls", 10_000_000);
    let hot_calls = arg("--hot-calls", 1_000_000);
    let dir = tempfile::tempdir_in(std::env::var("HERALD_BENCH_DIR").unwrap_or_else(|_| ".".into()))?;
    let path = dir.path().join("calls");
    println!("tracked calls on the embedded store (fjall), {calls} calls, {PER_TOKEN} per token");

    // 1. write rate; plus one token tracked by 10,000 users for the decision figure
    let cache = arg("--cache-mb", 64) << 20; // the pipeline's default
    let store = EmbeddedStore::open_with_cache(&path, cache)?;
    let rate = fill(&store, calls, 0, PER_TOKEN).await;
    let hot = calls / PER_TOKEN;
    fill(&store, 10_000, hot, 10_000).await;
    drop(store);
    let size = disk_bytes(&path);
    println!("write:   {rate:>10.0} calls/s   (on disk {:.2} GB)", size as f64 / 1e9);

    // 2. index rebuild
    let before = rss_bytes();
    let started = Instant::now();
    let tracker = Tracker::load(
        EmbeddedStore::open_with_cache(&path, cache)?,
        DEFAULT_THRESHOLDS.to_vec(),
        0,
        86_400_000,
    )
    .await?;
    let rebuild = started.elapsed();
    let index_mem = rss_bytes().saturating_sub(before);
    let indexed = tracker.index.read().unwrap().len();
    println!(
        "rebuild: {:>10.1} s for {indexed} calls, index memory {:.2} GB (RSS growth)",
        rebuild.as_secs_f64(),
        index_mem as f64 / 1e9
    );

    // 3. one token with 10,000 calls: decision and commit latency, 2,000 updates on a
    //    random walk (new highs, so alerts and store writes happen along the way)
    let checkpoints = tokio_util::sync::CancellationToken::new();
    let checkpointer = tokio::spawn(run_checkpoints(tracker.clone(), Duration::from_secs(1), checkpoints.clone()));
    let stage = MultiplierStage(tracker.clone());
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let (mut decide_h, mut commit_h) = (Histogram::<u64>::new(3)?, Histogram::<u64>::new(3)?);
    let (mut p, mut alerts) = (0.001, 0usize);
    for i in 0..2_000u64 {
        p *= rng.random_range(0.97..1.035);
        let started = Instant::now();
        let decision = stage.decide(price(hot, p, i), &meta()).await.unwrap();
        decide_h.record(started.elapsed().as_micros() as u64)?;
        if let Decision::Forward { outputs, commit } = decision {
            alerts += outputs.len();
            let started = Instant::now();
            stage.commit(commit).await.unwrap();
            commit_h.record(started.elapsed().as_micros() as u64)?;
        }
    }
    println!(
        "10k-call token: decide p50 {:.2} ms p99 {:.2} ms; commit p50 {:.2} ms p99 {:.2} ms max {:.1} ms; {alerts} alerts, {:.0}x at the end",
        ms(&decide_h, 0.5),
        ms(&decide_h, 0.99),
        ms(&commit_h, 0.5),
        ms(&commit_h, 0.99),
        commit_h.max() as f64 / 1000.0,
        p / 0.001
    );
    checkpoints.cancel(); // and let go of the 10M index before the next part
    checkpointer.await??;
    drop((stage, tracker));

    // 4. sustained updates/s with `hot_calls` calls, 256 updates in flight
    let path = dir.path().join("hot");
    let store = EmbeddedStore::open(&path)?;
    fill(&store, hot_calls, 0, PER_TOKEN).await;
    let tracker = Tracker::load(store, DEFAULT_THRESHOLDS.to_vec(), 0, 86_400_000).await?;
    let checkpoints = tokio_util::sync::CancellationToken::new();
    tokio::spawn(run_checkpoints(tracker.clone(), Duration::from_secs(1), checkpoints.clone()));
    let stage = Arc::new(MultiplierStage(tracker));
    let tokens = hot_calls / PER_TOKEN;
    let updates = 500_000usize;
    let prices: Vec<f64> = vec![0.001; tokens];
    let prices = Arc::new(std::sync::Mutex::new((prices, rand::rngs::StdRng::seed_from_u64(11))));
    let started = Instant::now();
    let alerts = futures::stream::iter(0..updates)
        .map(|i| {
            let (stage, prices) = (stage.clone(), prices.clone());
            async move {
                let t = i % tokens;
                let p = {
                    let (prices, rng) = &mut *prices.lock().unwrap();
                    prices[t] *= rng.random_range(0.97..1.035);
                    prices[t]
                };
                match stage.decide(price(t, p, i as u64), &meta()).await.unwrap() {
                    Decision::Forward { outputs, commit } => {
                        stage.commit(commit).await.unwrap();
                        outputs.len()
                    }
                    Decision::Drop { .. } => 0,
                }
            }
        })
        .buffer_unordered(256)
        .fold(0usize, |n, a| async move { n + a })
        .await;
    let elapsed = started.elapsed();
    checkpoints.cancel();
    println!(
        "sustained: {:>8.0} price updates/s over {updates} updates, {hot_calls} calls on {tokens} tokens ({alerts} alerts)",
        updates as f64 / elapsed.as_secs_f64()
    );
    Ok(())
}
