//! An existing deployment upgrades without losing a user's filters or subscription:
//! `herald_users` records as the previous version wrote them (one record holding every
//! product's state) are split into the core record, signals' preferences and paid
//! access, once, and the fan-out and the payments commands see what they held.

mod common;

use common::{Desk, Env};
use herald_pipeline::app::compose;
use herald_pipeline::core::migrate;
use herald_pipeline::products::signals::fanout::{SignalFacts, UserIndex, USER_BUCKETS};
use herald_runtime::{records, replica::Replica};
use herald_schemas::{subjects, Access, Chain, SignalsPrefs, User};

/// Exactly what the previous version stored (`user_settings.v1`), byte for byte.
const LEGACY: [&str; 3] = [
    r#"{"v":1,"user_id":5,"chat_id":5,"active":true,"paused":false,"filters":{"min_win_rate":null,"min_avg_gain_pct":null,"min_fdv_usd":50000.0,"max_fdv_usd":300000.0,"chains":[]},"updated_at_ms":1700000000000,"paid_until_ms":4102444800000,"last_purchase":"sub:9","locked":false}"#,
    r#"{"v":1,"user_id":6,"chat_id":6,"active":true,"paused":true,"filters":{"min_win_rate":null,"min_avg_gain_pct":null,"min_fdv_usd":null,"max_fdv_usd":null,"chains":["solana"]},"updated_at_ms":1700000000000,"paid_until_ms":null,"last_purchase":null,"locked":false}"#,
    r#"{"v":1,"user_id":7,"chat_id":7,"active":true,"paused":false,"filters":{"min_win_rate":null,"min_avg_gain_pct":null,"min_fdv_usd":null,"max_fdv_usd":null,"chains":[]},"updated_at_ms":1700000000000,"paid_until_ms":4102444800000,"last_purchase":null,"locked":true}"#,
];

#[tokio::test]
async fn records_of_the_previous_version_keep_their_filters_and_subscription() {
    let env = Env::start().await;
    let users = env.js.get_key_value(subjects::USERS_BUCKET).await.unwrap();
    for (id, json) in (5..).zip(LEGACY) {
        users.put(id.to_string(), json.as_bytes().to_vec().into()).await.unwrap();
    }
    let products = compose::all_products();
    assert_eq!(migrate::legacy_users(&env.js, &products).await.unwrap(), 3);
    assert_eq!(migrate::legacy_users(&env.js, &products).await.unwrap(), 0, "once");

    // the core record
    let (five, _) = records::load::<User>(&users, 5).await.unwrap().unwrap();
    assert_eq!((five.v, five.chat_id, five.active, five.locked), (2, 5, true, false));
    let (seven, _) = records::load::<User>(&users, 7).await.unwrap().unwrap();
    assert!(seven.locked, "a lock survives");
    // signals' part
    let prefs = env.js.get_key_value(subjects::SIGNALS_USERS_BUCKET).await.unwrap();
    let (p5, _) = records::load::<SignalsPrefs>(&prefs, 5).await.unwrap().unwrap();
    assert_eq!((p5.filters.min_fdv_usd, p5.filters.max_fdv_usd), (Some(50_000.0), Some(300_000.0)));
    let (p6, _) = records::load::<SignalsPrefs>(&prefs, 6).await.unwrap().unwrap();
    assert!(p6.paused && p6.filters.chains == vec![Chain::from("solana")]);
    // the subscription, with the purchase that made it (a redelivery extends once)
    let access = env.js.get_key_value(subjects::ACCESS_BUCKET).await.unwrap();
    let (a5, _) = records::load::<Access>(&access, 5).await.unwrap().unwrap();
    assert_eq!(
        (a5.paid_until_ms, a5.last_grant.as_deref()),
        (Some(4_102_444_800_000), Some("sub:9"))
    );

    // the fan-out sees it all: only user 5 gets a $100K solana call (6 paused, 7 locked)
    let index = Replica::start(&env.js, &USER_BUCKETS, UserIndex::default(), env.shutdown.clone())
        .await
        .unwrap();
    let facts = SignalFacts {
        chain: Some(Chain::from("solana")),
        fdv_usd: Some(100_000.0),
        new_caller_stats: Vec::new(),
        paid_after_ms: herald_schemas::now_ms(),
    };
    assert_eq!(index.read(|i| i.matching(&facts)), [(5, 5)]);
    let cheap = SignalFacts {
        fdv_usd: Some(1_000_000.0),
        ..facts
    };
    assert!(index.read(|i| i.matching(&cheap)).is_empty(), "the FDV filter came along");

    // and /subscribe shows the subscription the old record held
    let desk = Desk::open(&env, vec![]).await;
    let update = serde_json::json!({"update_id": 1, "message": {"message_id": 1, "date": 0,
        "chat": {"id": 5, "type": "private"}, "from": {"id": 5, "is_bot": false, "first_name": "U"}, "text": "/subscribe"}});
    let reply = desk.send_all(update.to_string().into_bytes()).await.remove(0);
    let text = reply.text().unwrap_or_default().to_string();
    assert!(text.contains("Subscribed until 2100-01-01"), "{text}");
}
