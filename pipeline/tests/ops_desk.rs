//! The operators' desk against real servers: `/admin status` lists the processes'
//! heartbeats, NATS and Redis health (Redis killed: down), a consumer's backlog and the
//! age of its oldest unacknowledged message, and the dead letters with the last reason
//! escaped; `/admin stats` is answered by the core with every product's section.

mod common;

use std::time::Duration;

use async_nats::jetstream;
use herald_pipeline::app::compose;
use herald_pipeline::core::desk::Desk;
use herald_runtime::telemetry::Readiness;
use herald_runtime::DeadLetter;
use herald_schemas::subjects;

async fn desk(env: &common::Env, redis: bool) -> Desk {
    let redis = match redis {
        true => Some(
            redis::aio::ConnectionManager::new(redis::Client::open(env.redis.url()).unwrap())
                .await
                .unwrap(),
        ),
        false => None,
    };
    Desk {
        products: compose::all_products(),
        js: env.js.clone(),
        redis,
        consumers: compose::all_consumers(),
        broadcasts: herald_pipeline::core::broadcast::Broadcasts::open(&env.js).await.unwrap(),
    }
}

/// Waits (a condition, bounded) until `f` holds for the status text.
async fn status_until(desk: &Desk, what: &str, f: impl Fn(&str) -> bool) -> String {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let text = desk.status().await;
        if f(&text) {
            return text;
        }
        assert!(tokio::time::Instant::now() < deadline, "{what}: {text}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn status_shows_processes_servers_backlog_and_dead_letters() {
    let env = common::Env::start().await;
    // this test process beats as a pipeline, ready
    let ready = Readiness::default();
    ready.set_ready();
    tokio::spawn(herald_runtime::processes::beat(
        env.js.clone(),
        "pipeline",
        ready,
        env.shutdown.clone(),
    ));

    // the router's consumer exists and three updates wait for it, unread
    let router = compose::router_consumer();
    let stream = env.js.get_stream(subjects::UPDATES_STREAM).await.unwrap();
    let _: jetstream::consumer::PullConsumer = stream.create_consumer(router.consumer_config()).await.unwrap();
    for i in 0..3 {
        env.js
            .publish_with_id(subjects::update("message", Some(1)), &format!("u{i}"), "{}".into())
            .await
            .unwrap()
            .await
            .unwrap();
    }
    herald_runtime::dead_letter(
        &env.js,
        DeadLetter {
            stage: "fanout",
            error: "<script>boom</script>",
            original_subject: "herald.signals.sol",
            original_sequence: Some(9),
            payload: b"{}",
        },
    )
    .await
    .unwrap();

    let desk = desk(&env, true).await;
    let text = status_until(&desk, "the heartbeat is listed", |t| t.contains("(1 alive)")).await;
    let pid = std::process::id();
    assert!(text.contains("\npipeline ") && text.contains(&format!("/{pid}: up ")), "{text}");
    assert!(text.contains("threads, ready"), "{text}");
    assert!(text.contains("NATS events: ok") && text.contains("NATS money: ok"), "{text}");
    assert!(text.contains("Redis: ok"), "{text}");
    // pending 3, none delivered, the oldest waiting some seconds
    assert!(text.contains("\nrouter: 3 · 0 · "), "{text}");
    assert!(text.contains("\nbot_replies: not created yet"), "{text}");
    assert!(
        text.contains("Dead letters</b>: 1; last ") && text.contains("from fanout: &lt;script&gt;boom&lt;/script&gt;"),
        "{text}"
    );
    assert!(!text.contains("<script>"), "what a stage wrote stays text");

    // Redis hung (SIGSTOP): said, and the rest still answers
    env.redis.pause(true);
    let text = status_until(&desk, "Redis down", |t| t.contains("Redis: <b>DOWN</b> (")).await;
    assert!(text.contains("NATS events: ok"), "{text}");
    env.redis.pause(false);

    // a clean stop removes the heartbeat at once
    env.shutdown.cancel();
    status_until(&desk, "the stopped process is gone", |t| t.contains("(0 alive)")).await;
}
