//! The stage-compliance test every stage passes (as Vector requires of its components):
//! it consumes from its stream, emits the shared per-stage metrics, and shuts down
//! cleanly on cancellation with nothing left unacknowledged. Also: `pipeline setup` is
//! idempotent and names conflicts.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{call, Env};
use herald_runtime::replica::Replica;
use herald_runtime::{run_stage, Stage, StageConfig};
use herald_pipeline::setup::{self, Applied};
use herald_pipeline::products::signals::sources::websocket::call_output;
use herald_pipeline::stages::{dedup::DedupStage, fanout::*, updates::UpdatesStage};
use herald_schemas::{subjects, UserSettings};
use tokio_util::sync::CancellationToken;

/// Runs `stage` on `stream`, feeds it one message, then cancels and checks the contract.
async fn assert_compliant<S: Stage>(env: &Env, stage: S, stream: &str, filter: &str, subject: String, payload: Vec<u8>) {
    let metrics = herald_runtime::telemetry::install_metrics();
    let shutdown = CancellationToken::new();
    let cfg = StageConfig::new(stream, S::NAME, vec![filter.into()]);
    let task = tokio::spawn(run_stage(env.js.clone(), Arc::new(stage), cfg, shutdown.clone()));
    env.publish(subject, &format!("compliance-{}", S::NAME), payload).await;

    let processed = format!("herald_stage_in_total{{stage=\"{}\"}} ", S::NAME);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !metrics.render().contains(&processed) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{}: no herald_stage_in_total after a message",
            S::NAME
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let text = metrics.render();
    assert!(
        text.contains(&format!("herald_stage_seconds_count{{stage=\"{}\"}}", S::NAME)),
        "{}: no latency histogram",
        S::NAME
    );
    let label = format!("stage=\"{}\"", S::NAME);
    let accounted = |text: &str| -> f64 {
        text.lines()
            .filter(|l| {
                ["herald_stage_out_total", "herald_stage_dropped_total", "herald_dead_lettered_total"]
                    .iter()
                    .any(|m| l.starts_with(m))
            })
            .filter(|l| l.contains(&label))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    };
    // counted once the message is finished (a stage with I/O in its decision takes a moment)
    while accounted(&metrics.render()) == 0.0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        accounted(&metrics.render()) > 0.0,
        "{}: the message is neither out, dropped nor dead-lettered in metrics",
        S::NAME
    );

    shutdown.cancel();
    let result = tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .expect("stage stops within 5 s of shutdown");
    result.unwrap().unwrap();
    let mut consumer: async_nats::jetstream::consumer::PullConsumer =
        env.js.get_stream(stream).await.unwrap().get_consumer(S::NAME).await.unwrap();
    let info = consumer.info().await.unwrap();
    assert_eq!(info.num_ack_pending, 0, "{}: unacknowledged messages after shutdown", S::NAME);
    assert_eq!(info.num_pending, 0, "{}: unconsumed messages after shutdown", S::NAME);
}

#[tokio::test]
async fn every_stage_is_compliant() {
    let env = Env::start().await;
    let state = env.state(Duration::from_secs(60), Duration::from_secs(60)).await;
    env.put_user(&UserSettings::new(1, 1, 0)).await;

    let c = call("COMPLY", "chan", None, None);
    let out = call_output(&c);
    assert_compliant(
        &env,
        DedupStage { state: state.clone() },
        subjects::CALLS_STREAM,
        "herald.calls.>",
        out.subject,
        out.payload,
    )
    .await;

    let users = Replica::start(&env.js, subjects::USERS_BUCKET, UserIndex::default(), env.shutdown.clone())
        .await
        .unwrap();
    let channels = Replica::start(&env.js, subjects::CHANNELS_BUCKET, ChannelIndex::default(), env.shutdown.clone())
        .await
        .unwrap();
    let signal = herald_schemas::Signal {
        v: 1,
        new_callers: vec![c.caller.clone()],
        all_caller_ids: vec!["chan".into()],
        call: c.clone(),
    };
    let fanout = FanoutStage {
        users,
        channels,
        state,
        require_subscription: false,
    };
    assert_compliant(
        &env,
        fanout,
        subjects::SIGNALS_STREAM,
        "herald.signals.>",
        subjects::signal("solana"),
        herald_schemas::encode(&signal),
    )
    .await;

    let users_kv = env.js.get_key_value(subjects::USERS_BUCKET).await.unwrap();
    let update = serde_json::json!({"update_id": 1, "message": {"message_id": 1, "date": 0, "chat": {"id": 5, "type": "private"}, "from": {"id": 5, "is_bot": false, "first_name": "A"}, "text": "/help"}});
    assert_compliant(
        &env,
        UpdatesStage::<herald_pipeline::products::signals::tracking::embedded::EmbeddedStore> {
            users: users_kv,
            calls: None,
            payments: None,
        },
        subjects::UPDATES_STREAM,
        "herald.updates.>",
        subjects::update("message"),
        update.to_string().into_bytes(),
    )
    .await;

    let busd: alloy::primitives::Address = "0xe9e7cea3dedca5984780bafc599bd69add087d56".parse().unwrap();
    let credit = herald_pipeline::products::payments::credit::CreditStage {
        ledger: herald_pipeline::products::payments::ledger::Ledger::open(env.js.clone()).await.unwrap(),
        tokens: herald_testkit::evm::busd_only(busd),
        min_deposit: alloy::primitives::U256::from(1),
    };
    let deposit = herald_schemas::Deposit {
        v: 1,
        stage: herald_schemas::DepositStage::Final,
        chain: "bsc".into(),
        token: busd.to_string(),
        from: alloy::primitives::Address::ZERO.to_string(),
        to: alloy::primitives::Address::repeat_byte(1).to_string(),
        user_id: 5,
        value: "1000000000000000000".into(),
        block_number: 1,
        block_hash: format!("{:#x}", alloy::primitives::B256::repeat_byte(2)),
        tx_hash: format!("{:#x}", alloy::primitives::B256::repeat_byte(3)),
        log_index: 0,
        ts_ms: 0,
    };
    assert_compliant(
        &env,
        credit,
        subjects::DEPOSITS_STREAM,
        "herald.deposits.>",
        subjects::deposit(deposit.stage, "bsc"),
        herald_schemas::encode(&deposit),
    )
    .await;
}

#[tokio::test]
async fn setup_is_idempotent_and_names_conflicts() {
    let env = Env::start().await; // Env::start applied it once
    let again = setup::apply(&env.js, false).await.unwrap();
    assert!(again.iter().all(|a| matches!(a, Applied::Unchanged(_))), "{again:?}");

    let mut calls = setup::stream_configs().unwrap().remove(0);
    calls.max_age = Duration::from_secs(3 * 3600);
    env.js.update_stream(calls).await.unwrap();
    let err = setup::apply(&env.js, false).await.unwrap_err().to_string();
    assert!(err.contains("stream CALLS") && err.contains("max_age"), "{err}");
    let fixed = setup::apply(&env.js, true).await.unwrap();
    assert!(fixed.contains(&Applied::Updated("CALLS".into())), "{fixed:?}");
    assert!(setup::apply(&env.js, false).await.is_ok());
}
