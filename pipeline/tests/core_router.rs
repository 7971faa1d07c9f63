//! The router against real nats-server and redis-server: plain messages follow the
//! user's session; per-user inbound limits are shared by router instances, warn once and
//! give a redelivered update the same verdict.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::{Desk, Env};
use herald_pipeline::core::limits::{InboundLimits, Limit};
use herald_pipeline::core::router::{Router, Routes};
use herald_runtime::{Decision, MsgMeta, Stage};
use herald_schemas::subjects;

const USER: i64 = 77;

fn message(update_id: i64, text: &str) -> Vec<u8> {
    serde_json::json!({"update_id": update_id, "message": {"message_id": update_id, "date": 1_700_000_000,
        "chat": {"id": USER, "type": "private"}, "from": {"id": USER, "is_bot": false, "first_name": "U"}, "text": text}})
    .to_string()
    .into_bytes()
}

/// What the router decides for one update: the subjects it publishes to, or the
/// reason it drops it.
async fn route(router: &Router, update: Vec<u8>) -> Result<Vec<String>, &'static str> {
    let meta = MsgMeta {
        subject: subjects::update("message", Some(USER)),
        stream_sequence: 1,
        delivered: 1,
        published_ms: 0,
    };
    match router.decide(router.decode(&update).unwrap(), &meta).await.unwrap() {
        Decision::Forward { outputs, commit } => {
            router.commit(commit).await.unwrap();
            Ok(outputs.into_iter().map(|o| o.subject).collect())
        }
        Decision::Drop { reason } => Err(reason),
    }
}

async fn router(env: &Env, limits: Option<InboundLimits>) -> Router {
    let products = herald_pipeline::app::compose::all_products();
    Router {
        users: env.js.get_key_value(subjects::USERS_BUCKET).await.unwrap(),
        access: env.js.get_key_value(subjects::ACCESS_BUCKET).await.unwrap(),
        sessions: env.js.get_key_value(subjects::SESSIONS_BUCKET).await.unwrap(),
        admins: vec![],
        routes: Routes::new(&products).unwrap(),
        limits,
    }
}

#[tokio::test]
async fn plain_messages_follow_the_session() {
    let env = Env::start().await;
    let desk = Desk::open(&env, vec![]).await;
    desk.send_all(message(1, "/start")).await;
    let r = router(&env, None).await;
    assert_eq!(route(&r, message(2, "hello")).await, Err("no_session"));
    let sessions = env.js.get_key_value(subjects::SESSIONS_BUCKET).await.unwrap();
    herald_core::sessions::enter(&sessions, USER, "payments").await.unwrap();
    assert_eq!(route(&r, message(3, "hello")).await, Ok(vec![subjects::routed("payments", USER)]));
    // a command still goes to its own product, whatever the session
    assert_eq!(route(&r, message(4, "/pause")).await, Ok(vec![subjects::routed("signals", USER)]));
    // another product cannot end the session; its owner can
    herald_core::sessions::leave(&sessions, USER, "signals").await.unwrap();
    assert_eq!(route(&r, message(5, "hi")).await, Ok(vec![subjects::routed("payments", USER)]));
    herald_core::sessions::leave(&sessions, USER, "payments").await.unwrap();
    assert_eq!(route(&r, message(6, "hi")).await, Err("no_session"));
    // a session of a product this deployment does not run is not followed
    herald_core::sessions::enter(&sessions, USER, "poker").await.unwrap();
    assert_eq!(route(&r, message(7, "hi")).await, Err("session_of_a_product_not_running"));
}

#[tokio::test]
async fn inbound_limits_are_shared_warn_once_and_hold_under_redelivery() {
    let env = Env::start().await;
    let desk = Desk::open(&env, vec![]).await;
    desk.send_all(message(1, "/start")).await;
    let limits = || async {
        let redis = redis::aio::ConnectionManager::new(redis::Client::open(env.redis.url()).unwrap())
            .await
            .unwrap();
        let limit = Limit {
            updates: 3,
            window: Duration::from_secs(60),
        };
        InboundLimits::new(redis, HashMap::from([("signals", limit)]))
    };
    // two router instances, one Redis
    let (a, b) = (router(&env, Some(limits().await)).await, router(&env, Some(limits().await)).await);
    let to_signals = Ok(vec![subjects::routed("signals", USER)]);
    assert_eq!(route(&a, message(10, "/pause")).await, to_signals);
    assert_eq!(route(&b, message(11, "/resume")).await, to_signals);
    assert_eq!(route(&a, message(12, "/pause")).await, to_signals);
    let slow_down = Ok(vec![subjects::reply(USER)]);
    assert_eq!(route(&b, message(13, "/resume")).await, slow_down, "the fourth: one warning");
    assert_eq!(route(&a, message(14, "/pause")).await, Err("over_inbound_limit"), "then silence");
    assert_eq!(route(&b, message(15, "/pause")).await, Err("over_inbound_limit"));
    // redelivered updates get the verdict they had
    assert_eq!(route(&a, message(13, "/resume")).await, slow_down);
    assert_eq!(route(&b, message(11, "/resume")).await, to_signals);
    // the core's commands are not a product's: never limited
    assert!(route(&a, message(16, "/help")).await.is_ok());
    // a button press carries no date: timed when first counted, so a redelivery is too
    let press = |id: i64| {
        serde_json::json!({"update_id": id, "callback_query": {"id": "q", "data": "f:reset",
            "from": {"id": USER, "is_bot": false, "first_name": "U"},
            "message": {"message_id": 5, "date": 0, "chat": {"id": USER, "type": "private"}}}})
        .to_string()
        .into_bytes()
    };
    let c = router(&env, Some(limits().await)).await;
    for id in 20..23 {
        assert_eq!(route(&c, press(id)).await, to_signals, "presses are timed now, a fresh window");
    }
    assert_eq!(route(&c, press(23)).await, slow_down);
    tokio::time::sleep(Duration::from_millis(5)).await;
    assert_eq!(route(&c, press(24)).await, Err("over_inbound_limit"));
    // redelivered after a later one: still counted at its first time, still the warning
    tokio::time::sleep(Duration::from_millis(5)).await;
    assert_eq!(route(&c, press(23)).await, slow_down);
}

fn start_from(user: i64, update_id: i64, text: &str) -> Vec<u8> {
    serde_json::json!({"update_id": update_id, "message": {"message_id": update_id, "date": 1_700_000_000,
        "chat": {"id": user, "type": "private"}, "from": {"id": user, "is_bot": false, "first_name": "U"}, "text": text}})
    .to_string()
    .into_bytes()
}

/// A referrer is bound on the first `/start` only, never to oneself, only to an existing
/// user (so never in a cycle), from `ref_<id>` deep links.
#[tokio::test]
async fn referrers_are_bound_once_to_existing_users_without_cycles() {
    let env = Env::start().await;
    let r = router(&env, None).await;
    let users = env.js.get_key_value(subjects::USERS_BUCKET).await.unwrap();
    let referrer_of = |id: i64| {
        let users = users.clone();
        async move { herald_core::users::load(&users, id).await.unwrap().map(|(u, _)| u.referrer) }
    };
    for (i, (user, text)) in [
        (10, "/start"),
        (11, "/start ref_10"),  // bound to 10
        (11, "/start ref_12"),  // a second /start changes nothing
        (12, "/start ref_12"),  // no self-referral
        (13, "/start ref_999"), // no such user
        (10, "/start ref_11"),  // 10 exists already: 11 -> 10 -> 11 cannot happen
        (14, "/start ref11"),   // the older link form still works
    ]
    .into_iter()
    .enumerate()
    {
        route(&r, start_from(user, 100 + i as i64, text)).await.unwrap();
    }
    assert_eq!(referrer_of(10).await, Some(None));
    assert_eq!(referrer_of(11).await, Some(Some(10)));
    assert_eq!(referrer_of(12).await, Some(None));
    assert_eq!(referrer_of(13).await, Some(None));
    assert_eq!(referrer_of(14).await, Some(Some(11)));
}
