//! Tracked calls: the embedded store, and multiplier alerts against a real nats-server
//! (exactly once under repeats and replays, index rebuilt after a restart).

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::Env;
use herald_pipeline::products::signals::tracking::embedded::EmbeddedStore;
use herald_pipeline::products::signals::tracking::tracker::{run_checkpoints, MultiplierStage, TrackStage, Tracker, DEFAULT_THRESHOLDS};
use herald_runtime::{run_stage, StageConfig};
use herald_schemas::{subjects, OutboundMessage, PriceUpdate, Recipient, TrackedCalls};
use tokio_util::sync::CancellationToken;

type Tasks = Vec<tokio::task::JoinHandle<anyhow::Result<()>>>;

/// The tracker with its checkpoints and two stages; the tasks end after `shutdown`.
async fn start_tracker(env: &Env, path: &std::path::Path, shutdown: &CancellationToken) -> (Arc<Tracker<EmbeddedStore>>, Tasks) {
    let tracker = Tracker::load(EmbeddedStore::open(path).unwrap(), DEFAULT_THRESHOLDS.to_vec(), 0, 86_400_000)
        .await
        .unwrap();
    let mut tasks = vec![tokio::spawn(run_checkpoints(
        tracker.clone(),
        Duration::from_millis(200),
        shutdown.clone(),
    ))];
    for (stream, filter, name) in [
        (subjects::TRACKED_STREAM, "herald.tracked.>", "track"),
        (subjects::PRICES_STREAM, "herald.prices.>", "multiplier"),
    ] {
        let cfg = StageConfig {
            ack_wait: Duration::from_secs(5),
            ..StageConfig::new(stream, name, vec![filter.into()])
        };
        if name == "track" {
            tasks.push(tokio::spawn(run_stage(
                env.js.clone(),
                Arc::new(TrackStage(tracker.clone())),
                cfg,
                shutdown.clone(),
            )));
        } else {
            tasks.push(tokio::spawn(run_stage(
                env.js.clone(),
                Arc::new(MultiplierStage(tracker.clone())),
                cfg,
                shutdown.clone(),
            )));
        }
    }
    (tracker, tasks)
}

async fn price(env: &Env, p: f64, ts: u64) {
    let u = PriceUpdate {
        v: 1,
        chain: "solana".into(),
        token: "MOON".into(),
        price_usd: p,
        source: "test".into(),
        ts_ms: ts,
    };
    env.publish(subjects::price("solana"), &u.msg_id(), herald_schemas::encode(&u))
        .await;
}

async fn alerts(env: &Env, at_least: usize) -> Vec<OutboundMessage> {
    let msgs = env
        .messages(subjects::OUTBOUND_STREAM, subjects::NOTIFY_ALL, at_least, Duration::from_secs(10))
        .await;
    msgs.iter().map(|m| herald_schemas::decode(&m.payload).unwrap()).collect()
}

#[tokio::test]
async fn thresholds_alert_exactly_once_across_repeats_replays_and_restarts() {
    let env = Env::start().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("calls");
    let first = CancellationToken::new();
    let (tracker, tasks) = start_tracker(&env, &path, &first).await;
    let tracked = TrackedCalls {
        v: 1,
        chain: "solana".into(),
        token: "MOON".into(),
        symbol: Some("MOON".into()),
        caller_ids: vec!["c".into()],
        entry_price_usd: 0.01,
        called_at_ms: herald_schemas::now_ms(),
        recipients: vec![Recipient { user_id: 1, chat_id: 1 }, Recipient { user_id: 2, chat_id: 2 }],
    };
    env.publish(subjects::tracked("solana"), "t1", herald_schemas::encode(&tracked))
        .await;
    for _ in 0..100 {
        if tracker.index.read().unwrap().len() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    price(&env, 0.015, 1).await; // 1.5x: nothing
    price(&env, 0.021, 2).await; // 2.1x: the 2x alert
    price(&env, 0.021, 2).await; // the same update again: dropped by the stream
    price(&env, 0.022, 3).await; // higher, but no new threshold
    let got = alerts(&env, 2).await;
    assert_eq!(got.len(), 2, "one 2x alert per user");
    assert!(
        got[0].text().unwrap_or_default().contains("hit <b>2x</b>"),
        "{}",
        got[0].text().unwrap_or_default()
    );
    price(&env, 0.055, 4).await; // 5.5x: 3x and 5x crossed, one alert naming 5x
    let got = alerts(&env, 4).await;
    assert_eq!(got.len(), 4);
    assert!(
        got[3].text().unwrap_or_default().contains("hit <b>5x</b>"),
        "{}",
        got[3].text().unwrap_or_default()
    );
    // channel statistics reach the bucket the filter stage replicates
    let kv = env.js.get_key_value(subjects::CHANNELS_BUCKET).await.unwrap();
    herald_pipeline::products::signals::tracking::tracker::publish_channel_stats(tracker.clone(), kv.clone())
        .await
        .unwrap();
    let mut stats = None;
    for _ in 0..50 {
        if let Some(v) = kv.get("c").await.unwrap() {
            stats = Some(herald_schemas::decode::<herald_schemas::ChannelStats>(&v).unwrap());
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let stats = stats.expect("the caller's statistics in herald_channels");
    assert_eq!((stats.calls, stats.win_rate), (1, 1.0), "its one call reached 2x");
    assert!(
        (stats.avg_gain_pct - 450.0).abs() < 1e-6,
        "best 5.5x = +450%: {}",
        stats.avg_gain_pct
    );

    // 7x: no threshold, so only the checkpoint stores it
    price(&env, 0.07, 10).await;
    for _ in 0..100 {
        if tracker.index.read().unwrap().contains("solana:MOON", 1) && tracker.for_user(1, 0, 1).await.unwrap().0[0].best_multiple > 6.9 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // replay the whole price stream: nobody is alerted again (the multiplier stage's
    // own count of outputs, not the stream's, whose duplicate window hides repeats)
    env.drained(subjects::PRICES_STREAM, "multiplier").await;
    let alerted = common::stage_metric("herald_stage_out_total", "multiplier");
    let sel = herald_pipeline::ops::replay::Selection {
        stream: subjects::PRICES_STREAM.into(),
        ..Default::default()
    };
    herald_pipeline::ops::replay::replay(&env.js, &sel, &herald_pipeline::ops::replay::Target::Original, &Default::default())
        .await
        .unwrap();
    env.drained(subjects::PRICES_STREAM, "multiplier").await;
    assert_eq!(common::stage_metric("herald_stage_out_total", "multiplier"), alerted);
    assert_eq!(env.count(subjects::OUTBOUND_STREAM, subjects::NOTIFY_ALL).await, 4);

    // restart: the index comes back from the store with its progress (the checkpoint
    // task writes a last checkpoint at shutdown; its end is awaited)
    first.cancel();
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    drop(tracker);
    let second = CancellationToken::new();
    let (tracker, _tasks) = start_tracker(&env, &path, &second).await;
    assert_eq!(tracker.index.read().unwrap().len(), 2, "index rebuilt from the store");
    let (calls, _) = tracker.for_user(1, 0, 10).await.unwrap();
    assert_eq!(calls[0].alerted, 3, "2x, 3x and 5x were alerted before the restart");
    assert!(
        (calls[0].best_multiple - 7.0).abs() < 1e-9,
        "best checkpointed: {}",
        calls[0].best_multiple
    );
    price(&env, 0.06, 5).await; // 6x: nothing new
    price(&env, 0.11, 6).await; // 11x: the 10x alert
    let got = alerts(&env, 6).await;
    assert_eq!(got.len(), 6);
    assert!(
        got[5].text().unwrap_or_default().contains("hit <b>10x</b>"),
        "{}",
        got[5].text().unwrap_or_default()
    );
    let mut keys: Vec<&str> = got.iter().map(|a| a.idempotency_key.as_str()).collect();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), 6);
    second.cancel();
}
