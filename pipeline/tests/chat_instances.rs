//! Two instances of the random chat's inbox stage (two consumers of one durable, each
//! with its own NATS and Redis connections, as two `pipeline` processes run it), and
//! 1,000 users sending `/chat` at once: everyone is paired with exactly one partner or
//! still searching, each told once, and the stage's own pairing counter agrees with the
//! chats in Redis.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use clap::{Args, FromArgMatches};
use common::Env;
use herald_pipeline::app::compose::{self, CoreArgs};
use herald_pipeline::core::product::Ctx;
use herald_pipeline::products::chat::state::{ChatState, Peer};
use herald_schemas::{subjects, OutboundMessage, RoutedUpdate};

const USERS: i64 = 1000;

fn chat_command(user: i64) -> Vec<u8> {
    let update = serde_json::json!({"update_id": user, "message": {"message_id": 1, "date": 1,
        "chat": {"id": user, "type": "private"}, "from": {"id": user, "is_bot": false, "first_name": "U"}, "text": "/chat"}});
    herald_schemas::encode(&RoutedUpdate {
        v: 1,
        update_id: user,
        kind: "message".into(),
        user_id: Some(user),
        chat_id: Some(user),
        command: Some("/chat".into()),
        callback_data: None,
        message_id: None,
        admin: false,
        update,
        received_ms: 0,
    })
}

/// The value of a counter without labels in the process's metrics.
fn counter(name: &str) -> f64 {
    herald_runtime::metric::sum_in(&herald_runtime::telemetry::install_metrics().render(), name, &[])
}

#[tokio::test]
async fn a_thousand_chats_through_two_inbox_instances_pair_everyone_once() {
    let env = Env::start().await;
    let redis = env.redis.url();
    let cmd = CoreArgs::augment_args(compose::with_product_args(clap::Command::new("run").no_binary_name(true)));
    let args = env
        .nats
        .args()
        .into_iter()
        .chain(["--redis-url".into(), redis, "--products".into(), "chat".into()]);
    let matches = cmd.get_matches_from(args);
    let core = CoreArgs::from_arg_matches(&matches).unwrap();
    let products = compose::build(&core.products, &matches).unwrap();
    let mut running = Vec::new();
    for _ in 0..2 {
        let mut ctx = Ctx::new(core.nats.clone(), core.redis.clone(), env.js.clone(), env.shutdown.clone());
        ctx.products = vec!["chat"];
        ctx.only = vec!["chat_inbox".into()];
        for stage in products[0].start(&mut ctx).await.unwrap() {
            running.push(tokio::spawn(stage.run(env.js.clone(), env.shutdown.clone())));
        }
    }
    assert_eq!(running.len(), 2, "two chat_inbox instances");
    let pairs_before = counter("herald_chat_pairs_total");

    let acks = futures::future::join_all((1..=USERS).map(|u| {
        let js = env.js.clone();
        async move { js.publish(subjects::routed("chat", u), chat_command(u).into()).await.unwrap().await }
    }))
    .await;
    assert!(acks.iter().all(Result::is_ok));
    env.drained(subjects::COMMANDS_STREAM, "chat_inbox").await;

    let total = env.count(subjects::OUTBOUND_STREAM, "herald.out.reply.>").await;
    let mut told: HashMap<i64, Vec<String>> = HashMap::new();
    for m in env
        .messages(subjects::OUTBOUND_STREAM, "herald.out.reply.>", total, Duration::from_secs(10))
        .await
    {
        let out: OutboundMessage = herald_schemas::decode(&m.payload).unwrap();
        told.entry(out.chat_id)
            .or_default()
            .push(out.text().unwrap_or_default().to_string());
    }
    let client = redis::Client::open(env.redis.url()).unwrap();
    let state = ChatState::new(redis::aio::ConnectionManager::new(client).await.unwrap(), Duration::from_secs(600));
    let mut chats = HashMap::new();
    for u in 1..=USERS {
        let texts = told.get(&u).cloned().unwrap_or_default();
        let found = texts.iter().filter(|t| t.contains("Partner found")).count();
        match state.partner(u).await.unwrap() {
            Peer::Chatting { partner, chat } => {
                assert_eq!(found, 1, "{u} is told once that they are paired: {texts:?}");
                assert_eq!(state.partner(partner).await.unwrap(), Peer::Chatting { partner: u, chat });
                chats.insert(chat, ());
            }
            Peer::Queued => assert_eq!((found, texts.len()), (0, 1), "{u} waits, told once: {texts:?}"),
            Peer::Idle => panic!("{u} sent /chat and is neither searching nor chatting"),
        }
    }
    assert!(
        chats.len() >= (USERS as usize - 1) / 2,
        "everyone but at most one is paired: {} chats",
        chats.len()
    );
    assert_eq!(
        counter("herald_chat_pairs_total") - pairs_before,
        chats.len() as f64,
        "the stage counted each pairing once"
    );
    env.shutdown.cancel();
    for r in running {
        r.await.unwrap().unwrap();
    }
}
