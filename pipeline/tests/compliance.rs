//! The compliance harness over the registry: the router and every stage of every
//! registered product, built as `pipeline run` builds them, pass the one contract in
//! `herald_testkit::compliance` (redelivery, metrics, malformed input, transient
//! failures, clean shutdown). The bot's outbound passes it in `bot/tests`. Also:
//! `pipeline setup` is idempotent and names conflicts.

mod common;

use std::time::Duration;

use clap::{Args, FromArgMatches};
use common::Env;
use herald_pipeline::app::compose::{self, CoreArgs};
use herald_pipeline::core::product::Ctx;
use herald_pipeline::products::REGISTRY;
use herald_runtime::setup::{self, Applied};
use herald_schemas::Access;

/// The BIP-39 test vector (all "abandon" ... "about"): a valid xpub for payments.
const MNEMONIC: &str = "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about";

#[tokio::test]
async fn every_stage_of_every_product_is_compliant() {
    herald_runtime::telemetry::init_logging();
    let env = Env::start().await;
    let store = tempfile::tempdir().unwrap();
    let xpub = herald_pipeline::products::payments::wallet::account_xpub(MNEMONIC).unwrap();
    let names: Vec<&str> = REGISTRY.iter().map(|r| r.name).collect();
    let (redis, path) = (env.redis.url(), store.path().join("calls"));
    let ai = chat_completions().await;
    let args = [
        "--redis-url",
        &redis,
        "--deposit-xpub",
        &xpub,
        "--store-path",
        path.to_str().unwrap(),
        "--products",
        &names.join(","),
        // the explainer runs when an endpoint is set
        "--trivia-ai-url",
        &ai,
    ];
    let cmd = CoreArgs::augment_args(compose::with_product_args(clap::Command::new("run").no_binary_name(true)));
    // withdrawals and the NOWPayments stage run when configured
    let matches = cmd.get_matches_from(
        env.nats
            .args()
            .iter()
            .map(String::as_str)
            .chain(args)
            .chain(compose::EVERY_FEATURE.iter().copied()),
    );
    let core = CoreArgs::from_arg_matches(&matches).unwrap();
    let products = compose::build(&core.products, &matches).unwrap();
    assert_eq!(
        products.iter().map(|p| p.name()).collect::<Vec<_>>(),
        names,
        "every registered product runs in the harness"
    );
    // the samples' user, subscribed so the fan-out forwards to it
    env.put_user(1, |_, _| {}).await;
    env.put_access(&Access {
        paid_until_ms: Some(u64::MAX),
        ..Access::none(1)
    })
    .await;

    // what each product's samples need (the trivia scorer's game)
    for p in &products {
        p.seed_samples(&env.js).await.unwrap();
    }
    let mut ctx = Ctx::new(core.nats.clone(), core.redis.clone(), env.js.clone(), env.shutdown.clone());
    ctx.products = names.clone();
    let mut stages = vec![
        compose::router(&ctx, &products, &core).await.unwrap(),
        compose::desk(&ctx, &products).await.unwrap(),
    ];
    for p in &products {
        stages.extend(p.start(&mut ctx).await.unwrap());
    }
    let listed: Vec<&str> = stages.iter().map(|s| s.name).collect();
    // every consumer of the router and the registry's products has its stage here (so
    // it is checked; the bot's are checked in bot/tests)
    let products_consumers = all_products_consumers();
    for want in products_consumers {
        assert!(
            listed.contains(&want.durable.as_str()),
            "{} is missing from the registry's stages: {listed:?}",
            want.durable
        );
    }
    let metrics = herald_runtime::telemetry::install_metrics();
    compose::describe_metrics(&products);
    let render = move || metrics.render();
    let reports = herald_testkit::compliance::check_all(&env.js, &render, stages).await;
    assert_eq!(reports.len(), listed.len());
    // every name the stages exported is described (a `# HELP` line) and declared
    let text = render();
    let declared: Vec<&str> = compose::metrics_of(&products).iter().map(|m| m.name).collect();
    let exported: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| n.starts_with("herald_"))
        .collect();
    assert!(exported.len() >= 6, "the stages exported their metrics: {exported:?}");
    for name in exported {
        assert!(
            text.contains(&format!("# HELP {name} ")),
            "{name} is exported without a description"
        );
        assert!(declared.contains(&name), "{name} is exported but declared nowhere");
    }
}

/// The router's and the desk's consumers and every registered product's.
fn all_products_consumers() -> Vec<herald_runtime::StageConfig> {
    let mut all = vec![compose::router_consumer(), herald_pipeline::core::desk::consumer()];
    all.extend(compose::all_products().iter().flat_map(|p| p.consumers()));
    all
}

/// A chat-completions endpoint that always explains (the trivia explainer's peer; the
/// stand-in with errors and timeouts is `herald_loadtest::ai`). Its base URL.
async fn chat_completions() -> String {
    let app = axum::Router::new().route(
        "/chat/completions",
        axum::routing::post(|| async {
            axum::Json(serde_json::json!({"object": "chat.completion",
                "choices": [{"index": 0, "message": {"role": "assistant", "content": "Because it is."}, "finish_reason": "stop"}]}))
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}

#[tokio::test]
async fn setup_is_idempotent_and_names_conflicts() {
    let env = Env::start().await; // Env::start applied it once
    let again = compose::setup_all(&env.js, false, herald_runtime::setup::Replicas::Existing)
        .await
        .unwrap();
    assert!(again.iter().all(|a| matches!(a, Applied::Unchanged(_))), "{again:?}");

    let (streams, _) = compose::definitions_of_all();
    let mut calls = setup::stream_configs(&streams)
        .unwrap()
        .into_iter()
        .find(|c| c.name == "CALLS")
        .unwrap();
    calls.max_age = Duration::from_secs(3 * 3600);
    env.js.events().update_stream(calls).await.unwrap();
    let err = compose::setup_all(&env.js, false, herald_runtime::setup::Replicas::Existing)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("stream CALLS") && err.contains("max_age"), "{err}");
    let fixed = compose::setup_all(&env.js, true, herald_runtime::setup::Replicas::Existing)
        .await
        .unwrap();
    assert!(fixed.contains(&Applied::Updated("CALLS".into())), "{fixed:?}");
    assert!(compose::setup_all(&env.js, false, herald_runtime::setup::Replicas::Existing)
        .await
        .is_ok());

    // a consumer left with other settings is reported, and its stage puts it right
    let dedup = compose::all_consumers().into_iter().find(|c| c.durable == "dedup").unwrap();
    let mut old = dedup.consumer_config();
    old.max_deliver = 9;
    env.js.get_stream("CALLS").await.unwrap().create_consumer(old).await.unwrap();
    let drift = compose::consumer_drift(&env.js).await.unwrap();
    assert_eq!(drift, ["consumer CALLS/dedup: max_deliver: existing 9 != wanted 5"]);
    let state = env.state(Duration::from_secs(60), Duration::from_secs(60)).await;
    let stage = herald_pipeline::products::signals::dedup::DedupStage { state };
    let task = tokio::spawn(herald_runtime::run_stage(
        env.js.clone(),
        std::sync::Arc::new(stage),
        dedup,
        env.shutdown.clone(),
    ));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !compose::consumer_drift(&env.js).await.unwrap().is_empty() {
        assert!(tokio::time::Instant::now() < deadline, "the stage did not update its consumer");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    env.shutdown.cancel();
    task.await.unwrap().unwrap();
}

/// A stage that stamps each decision with a fresh message id: a redelivery would
/// notify twice. The harness must refuse it.
struct Forgetful;

impl herald_runtime::Stage for Forgetful {
    const NAME: &'static str = "forgetful";
    type Input = Vec<u8>;
    type Commit = ();
    type Effect = std::convert::Infallible;

    fn decode(&self, payload: &[u8]) -> Result<Vec<u8>, String> {
        serde_json::from_slice::<serde_json::Value>(payload).map_err(|e| e.to_string())?;
        Ok(payload.to_vec())
    }

    async fn decide(
        &self,
        input: Vec<u8>,
        _: &herald_runtime::MsgMeta,
    ) -> Result<herald_runtime::Decision<()>, herald_runtime::StageError> {
        let out = herald_runtime::Output {
            subject: herald_schemas::subjects::notify(1),
            msg_id: format!("forgetful.{}", herald_schemas::now_ms() as f64 + rand_like()),
            payload: input,
        };
        Ok(herald_runtime::Decision::Forward {
            outputs: vec![out],
            commit: (),
        })
    }

    async fn commit(&self, _: ()) -> Result<(), herald_runtime::StageError> {
        Ok(())
    }
}

fn rand_like() -> f64 {
    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    N.fetch_add(1, std::sync::atomic::Ordering::SeqCst) as f64 / 1000.0
}

#[tokio::test]
#[should_panic(expected = "published new message ids")]
async fn the_harness_refuses_a_stage_whose_redelivery_publishes_anew() {
    let env = Env::start().await;
    let cfg = herald_runtime::StageConfig::new("CALLS", "forgetful", vec!["herald.calls.>".into()]);
    let handle = herald_runtime::StageHandle::new(Forgetful, cfg).with_sample("herald.calls.x.y", b"{}".to_vec());
    let metrics = herald_runtime::telemetry::install_metrics();
    let render = move || metrics.render();
    herald_testkit::compliance::check(&env.js, &render, handle).await;
}

/// A stage whose apply step counts each delivery as a new effect (a credit without a
/// reference): its outputs are stable, so only its own account of the effect shows the
/// double. The harness must refuse it.
struct CreditsTwice {
    credits: std::sync::atomic::AtomicU32,
}

impl herald_runtime::Stage for CreditsTwice {
    const NAME: &'static str = "credits_twice";
    type Input = Vec<u8>;
    type Commit = ();
    type Effect = ();

    fn decode(&self, payload: &[u8]) -> Result<Vec<u8>, String> {
        serde_json::from_slice::<serde_json::Value>(payload).map_err(|e| e.to_string())?;
        Ok(payload.to_vec())
    }

    async fn decide(
        &self,
        _: Vec<u8>,
        _: &herald_runtime::MsgMeta,
    ) -> Result<herald_runtime::Decision<(), ()>, herald_runtime::StageError> {
        Ok(herald_runtime::Decision::Apply(()))
    }

    async fn apply(&self, _: (), meta: &herald_runtime::MsgMeta) -> Result<herald_runtime::Applied<()>, herald_runtime::StageError> {
        self.credits.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let out = herald_runtime::Output {
            subject: herald_schemas::subjects::notify(1),
            msg_id: format!("credit.{}", meta.stream_sequence),
            payload: b"{}".to_vec(),
        };
        Ok(herald_runtime::Applied {
            decision: herald_runtime::Decision::Forward {
                outputs: vec![out],
                commit: (),
            },
            effect: herald_runtime::Effect::Made,
        })
    }

    async fn commit(&self, _: ()) -> Result<(), herald_runtime::StageError> {
        Ok(())
    }
}

#[tokio::test]
#[should_panic(expected = "made its effect 2 times")]
async fn the_harness_refuses_a_stage_whose_redelivery_applies_again() {
    let env = Env::start().await;
    let cfg = herald_runtime::StageConfig::new("CALLS", "credits_twice", vec!["herald.calls.>".into()]);
    let stage = CreditsTwice {
        credits: std::sync::atomic::AtomicU32::new(0),
    };
    let handle = herald_runtime::StageHandle::new(stage, cfg).with_sample("herald.calls.x.y", b"{}".to_vec());
    let metrics = herald_runtime::telemetry::install_metrics();
    let render = move || metrics.render();
    herald_testkit::compliance::check(&env.js, &render, handle).await;
}
