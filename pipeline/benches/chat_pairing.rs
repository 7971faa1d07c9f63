//! Random-chat pairing figures for the README (issue: random chat), on a real
//! redis-server: `--users` (10,000) users press /chat, `--concurrency` (64) at a time,
//! through two connections (two pipeline instances' worth), each join one run of the
//! state script. Prints the join latency (p50/p99/max: the pairing step of /chat, without
//! NATS and Telegram), the pairs made, and the rate.
//!
//! Run: `cargo bench -p herald-pipeline --bench chat_pairing` (needs redis-server:
//! `eval "$(scripts/install-deps)"`).

mod common;

use std::time::{Duration, Instant};

use common::arg;
use futures::StreamExt;
use hdrhistogram::Histogram;
use herald_pipeline::products::chat::state::{Change, ChatState};
use herald_testkit::LocalRedis;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let users = arg("--users", 10_000) as i64;
    let concurrency = arg("--concurrency", 64);
    let redis = LocalRedis::start()?;
    let mut instances = Vec::new();
    for _ in 0..2 {
        let client = redis::Client::open(redis.url())?;
        instances.push(ChatState::new(
            redis::aio::ConnectionManager::new(client).await?,
            Duration::from_secs(600),
        ));
    }
    let started = Instant::now();
    let results: Vec<(Duration, Change)> = futures::stream::iter(1..=users)
        .map(|u| {
            let state = instances[(u % 2) as usize].clone();
            async move {
                let t = Instant::now();
                let change = state.join(u, &format!("bench:{u}")).await.expect("join");
                (t.elapsed(), change)
            }
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    let elapsed = started.elapsed();
    let mut h = Histogram::<u64>::new(3)?;
    for (d, _) in &results {
        h.record(d.as_micros() as u64)?;
    }
    let pairs = results.iter().filter(|(_, c)| matches!(c, Change::Paired { .. })).count();
    println!(
        "chat pairing: {users} joins, {concurrency} at a time over 2 connections: {pairs} pairs in {:.2} s ({:.0} joins/s); join latency p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        elapsed.as_secs_f64(),
        users as f64 / elapsed.as_secs_f64(),
        h.value_at_quantile(0.5) as f64 / 1000.0,
        h.value_at_quantile(0.99) as f64 / 1000.0,
        h.max() as f64 / 1000.0
    );
    Ok(())
}
