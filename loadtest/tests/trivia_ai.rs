//! Trivia's AI explainer against a local stand-in of the chat-completions API (real
//! nats-server and redis-server): an explanation is generated once per question and
//! cached; a timeout, a 500, a 429 or a wrong key leave the question without one; and
//! scoring never waits for it.

use std::sync::Arc;
use std::time::Duration;

use herald_loadtest::ai::{AiStandIn, Mode};
use herald_pipeline::products::trivia::ai::{AiClient, TriviaExplainer};
use herald_pipeline::products::trivia::bank::Pool;
use herald_pipeline::products::trivia::game::{Game, Mode as GameMode, Setup};
use herald_pipeline::products::trivia::scorer::TriviaScorer;
use herald_pipeline::products::trivia::service::Trivia;
use herald_runtime::{run_stage, StageConfig};
use herald_schemas::{subjects, AnswerVia, ExplainRequest, TriviaAnswer};
use herald_testkit::{LocalNats, LocalRedis};
use tokio_util::sync::CancellationToken;

const KEY: &str = "sk-test";

struct Env {
    _nats: LocalNats,
    _redis: LocalRedis,
    js: herald_runtime::Js,
    trivia: Arc<Trivia>,
    ai: AiStandIn,
    shutdown: CancellationToken,
}

async fn env(timeout: Duration, key: &str) -> Env {
    herald_runtime::telemetry::install_metrics();
    let nats = LocalNats::start().unwrap();
    let redis = LocalRedis::start().unwrap();
    let js = herald_pipeline::app::compose::connect(&nats.servers_args()).await.unwrap();
    herald_pipeline::app::compose::setup_all(&js, false, herald_runtime::setup::Replicas::Existing)
        .await
        .unwrap();
    let conn = redis::aio::ConnectionManager::new(redis::Client::open(redis.url()).unwrap())
        .await
        .unwrap();
    let trivia = Arc::new(Trivia::open(js.clone(), conn, Trivia::default_args()).await.unwrap());
    let ai = AiStandIn::start("127.0.0.1:0".parse().unwrap(), KEY).await.unwrap();
    let client = AiClient::new(&ai.url(), key, "deepseek-chat", timeout).unwrap();
    let shutdown = CancellationToken::new();
    let stage = TriviaExplainer {
        trivia: trivia.clone(),
        ai: client,
    };
    let cfg = StageConfig::new(subjects::TRIVIA_STREAM, "trivia_explainer", vec!["herald.trivia.explain.>".into()]);
    tokio::spawn(run_stage(js.clone(), Arc::new(stage), cfg, shutdown.clone()));
    Env {
        _nats: nats,
        _redis: redis,
        js,
        trivia,
        ai,
        shutdown,
    }
}

async fn ask(e: &Env, question: &str, msg_id: &str) {
    let req = ExplainRequest {
        v: 1,
        question_id: question.into(),
    };
    e.js.publish_with_id(subjects::trivia("explain", question), msg_id, herald_schemas::encode(&req).into())
        .await
        .unwrap()
        .await
        .unwrap();
}

/// Waits until the explainer has acknowledged `n` requests.
async fn handled(e: &Env, n: u64) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let stream = e.js.get_stream(subjects::TRIVIA_STREAM).await.unwrap();
        if let Ok(mut c) = stream
            .get_consumer::<async_nats::jetstream::consumer::pull::Config>("trivia_explainer")
            .await
        {
            let info = c.info().await.unwrap();
            if info.num_ack_pending == 0 && info.num_pending == 0 && info.ack_floor.consumer_sequence >= n {
                return;
            }
        }
        assert!(tokio::time::Instant::now() < deadline, "the explainer did not finish");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn an_explanation_is_generated_once_and_cached() {
    let e = env(Duration::from_secs(5), KEY).await;
    let q = e.trivia.bank.questions[0].clone();
    ask(&e, &q.id, "x1").await;
    handled(&e, 1).await;
    let text = e.trivia.explanation(&q.id).await.expect("cached");
    assert!(text.contains(&q.options[q.correct as usize]), "{text}");
    assert!(text.chars().count() <= 180);
    // asked again (after the duplicate window: another message id): no second call
    ask(&e, &q.id, "x2").await;
    handled(&e, 2).await;
    assert_eq!(e.ai.requests(), 1);
    e.shutdown.cancel();
}

#[tokio::test]
async fn errors_and_a_wrong_key_leave_the_question_without_one() {
    let e = env(Duration::from_secs(5), KEY).await;
    let ids: Vec<String> = e.trivia.bank.questions.iter().take(2).map(|q| q.id.clone()).collect();
    e.ai.set_mode(Mode::Error);
    ask(&e, &ids[0], "e1").await;
    handled(&e, 1).await;
    e.ai.set_mode(Mode::RateLimited);
    ask(&e, &ids[1], "e2").await;
    handled(&e, 2).await;
    assert_eq!(e.ai.requests(), 2);
    for id in &ids {
        assert_eq!(e.trivia.explanation(id).await, None);
    }
    // back up: the next asking fills it in
    e.ai.set_mode(Mode::Ok);
    ask(&e, &ids[0], "e3").await;
    handled(&e, 3).await;
    assert!(e.trivia.explanation(&ids[0]).await.is_some());
    e.shutdown.cancel();

    let wrong = env(Duration::from_secs(5), "sk-wrong").await;
    let id = wrong.trivia.bank.questions[0].id.clone();
    ask(&wrong, &id, "w1").await;
    handled(&wrong, 1).await;
    assert_eq!(wrong.ai.requests(), 1);
    assert_eq!(wrong.trivia.explanation(&id).await, None, "a 401 caches nothing");
    wrong.shutdown.cancel();
}

#[tokio::test]
async fn a_timeout_gives_up_and_scoring_never_waits() {
    let e = env(Duration::from_millis(1_500), KEY).await;
    e.ai.set_mode(Mode::Slow(Duration::from_secs(3)));
    let t = &e.trivia;
    let q = t.bank.questions[0].clone();
    let now = herald_schemas::now_ms();
    let setup = Setup {
        id: "p1".into(),
        mode: GameMode::Private,
        chat_id: 71,
        pool: Pool::default(),
        questions: vec![q.id.clone()],
        limit_ms: 20_000,
        now_ms: now,
    };
    assert!(t.games.create(&Game::solo(setup, (71, "Ann".into()))).await.unwrap());
    let cfg = StageConfig::new(subjects::TRIVIA_STREAM, "trivia_scorer", vec!["herald.trivia.answer.>".into()]);
    tokio::spawn(run_stage(
        e.js.clone(),
        Arc::new(TriviaScorer::new(t.clone())),
        cfg,
        e.shutdown.clone(),
    ));

    ask(&e, &q.id, "t1").await;
    // the call is under way ...
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while e.ai.in_flight() == 0 {
        assert!(tokio::time::Instant::now() < deadline, "the explainer never called");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // ... and an answer is scored meanwhile
    let a = TriviaAnswer::new("p1", 0, 71, q.correct, now + 1_000, AnswerVia::Poll, "Ann");
    e.js.publish_with_id(subjects::trivia("answer", "p1"), "a1", herald_schemas::encode(&a).into())
        .await
        .unwrap()
        .await
        .unwrap();
    while t.redis.stats(71).await.unwrap().answered == 0 {
        assert!(tokio::time::Instant::now() < deadline, "the answer was not scored");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(e.ai.in_flight(), 1, "scored while the explanation was still being written");
    // the client gives up at 1.5 s: nothing cached
    handled(&e, 1).await;
    assert_eq!(t.explanation(&q.id).await, None);
    e.shutdown.cancel();
}
