//! `/start` gives a trial, `/subscribe` buys a tier from the ledger balance once even
//! when the update is redelivered, and refuses what the balance cannot pay; the
//! updates stage driven directly against a real nats-server.

mod common;

use std::sync::Arc;
use std::time::Duration;

use alloy::primitives::U256;
use herald_pipeline::products::payments::ledger::Ledger;
use herald_pipeline::products::payments::subscriptions::parse_tiers;
use herald_pipeline::products::payments::wallet::{account_xpub, DepositWallet};
use herald_pipeline::products::payments::Payments;
use herald_runtime::{Decision, MsgMeta, Stage};
use herald_pipeline::core::router::UpdatesStage;
use herald_pipeline::products::signals::tracking::embedded::EmbeddedStore;
use herald_schemas::{subjects, OutboundMessage};

const USER: i64 = 77;
const ADMIN: i64 = 1;
const DAY_MS: u64 = 86_400_000;

fn message(update_id: i64, text: &str) -> Vec<u8> {
    message_from(USER, update_id, text)
}

fn message_from(user: i64, update_id: i64, text: &str) -> Vec<u8> {
    serde_json::json!({"update_id": update_id, "message": {"message_id": update_id, "date": 0,
        "chat": {"id": user, "type": "private"}, "from": {"id": user, "is_bot": false, "first_name": "U"}, "text": text}})
    .to_string()
    .into_bytes()
}

/// Decides and commits one update as the runner would; returns the reply text.
async fn send(stage: &UpdatesStage<EmbeddedStore>, update: Vec<u8>) -> String {
    send_all(stage, update).await.remove(0).text
}

/// Every message one update makes, the reply first.
async fn send_all(stage: &UpdatesStage<EmbeddedStore>, update: Vec<u8>) -> Vec<OutboundMessage> {
    let meta = MsgMeta {
        subject: subjects::update("message"),
        stream_sequence: 1,
        delivered: 1,
    };
    let input = stage.decode(&update).unwrap();
    match stage.decide(input, &meta).await.unwrap() {
        Decision::Forward { outputs, commit } => {
            stage.commit(commit).await.unwrap();
            outputs.iter().map(|o| herald_schemas::decode(&o.payload).unwrap()).collect()
        }
        Decision::Drop { reason } => panic!("dropped: {reason}"),
    }
}

#[tokio::test]
async fn a_tier_is_bought_once_from_the_balance_after_the_trial() {
    let env = common::Env::start().await;
    let users = env.js.get_key_value(subjects::USERS_BUCKET).await.unwrap();
    let ledger = Ledger::open(env.js.clone()).await.unwrap();
    let xpub = account_xpub("abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about").unwrap();
    let payments = Payments {
        wallet: DepositWallet::from_xpub(&xpub).unwrap(),
        addresses: env.js.get_key_value(subjects::WALLET_BUCKET).await.unwrap(),
        ledger: ledger.clone(),
        tokens: vec![("BUSD".into(), alloy::primitives::Address::repeat_byte(1))],
        tiers: parse_tiers(&["weekly:7:15".into(), "lifetime:0:300".into()]).unwrap(),
        trial: Duration::from_secs(3 * 86_400),
        coupons: env.js.get_key_value(subjects::COUPONS_BUCKET).await.unwrap(),
        admins: vec![ADMIN],
    };
    let stage = UpdatesStage::<EmbeddedStore> {
        users: users.clone(),
        calls: None,
        payments: Some(Arc::new(payments)),
    };
    let paid_until = || async {
        let (s, _) = herald_runtime::users::load(&users, USER).await.unwrap().unwrap();
        s.paid_until_ms.unwrap()
    };

    let welcome = send(&stage, message(1, "/start")).await;
    assert!(
        welcome.contains("Your free trial: 3 days") && welcome.contains("/subscribe —"),
        "{welcome}"
    );
    let trial_end = paid_until().await;
    let now = herald_schemas::now_ms();
    assert!(
        trial_end > now + 3 * DAY_MS - 60_000 && trial_end <= now + 3 * DAY_MS,
        "a 3-day trial"
    );

    assert!(send(&stage, message(2, "/subscribe weekly")).await.contains("balance is 0.00 USD"));
    let one_usd = U256::from(10).pow(U256::from(18));
    ledger
        .credit(USER, U256::from(20) * one_usd, "deposit:0x1:0", "deposit 20 BUSD")
        .await
        .unwrap();
    assert!(send(&stage, message(3, "/subscribe")).await.contains("weekly: 15.00 USD, 7 days"));

    let reply = send(&stage, message(4, "/subscribe weekly")).await;
    assert!(
        reply.contains("weekly subscription bought") && reply.contains("Balance: 5.00 USD"),
        "{reply}"
    );
    assert_eq!(paid_until().await, trial_end + 7 * DAY_MS, "added after the trial, nothing lost");
    // the same update delivered again: charged once, extended once
    send(&stage, message(4, "/subscribe weekly")).await;
    assert_eq!(paid_until().await, trial_end + 7 * DAY_MS);
    assert_eq!(ledger.balance(USER).await.unwrap().0, U256::from(5) * one_usd);

    assert!(send(&stage, message(5, "/subscribe lifetime"))
        .await
        .contains("costs 300.00 USD; your balance is 5.00 USD"));
    assert!(send(&stage, message(6, "/balance"))
        .await
        .contains("−15.00 USD · weekly subscription"));
    assert!(send(&stage, message(7, "/deposit")).await.contains("0x"));

    // coupons: an admin makes one; it takes half off, once
    assert!(
        send(&stage, message(8, "/admin coupon HALF 50% 1"))
            .await
            .contains("Unknown command /admin"),
        "not an admin"
    );
    assert!(send(&stage, message_from(ADMIN, 9, "/admin coupon HALF 50% 1"))
        .await
        .contains("Coupon HALF created"));
    ledger
        .credit(USER, U256::from(10) * one_usd, "deposit:0x2:0", "deposit 10 BUSD")
        .await
        .unwrap();
    let reply = send(&stage, message(10, "/subscribe weekly half")).await;
    assert!(reply.contains("Balance: 7.50 USD"), "15 USD at half price from 15: {reply}");
    assert!(send(&stage, message(11, "/subscribe weekly HALF")).await.contains("used up"));
    assert!(send(&stage, message(12, "/subscribe weekly NOPE")).await.contains("no such coupon"));
    assert_eq!(paid_until().await, trial_end + 14 * DAY_MS);

    // admin: extend (once under redelivery), stats, lock
    send(&stage, message_from(ADMIN, 13, &format!("/admin extend {USER} 2"))).await;
    send(&stage, message_from(ADMIN, 13, &format!("/admin extend {USER} 2"))).await;
    assert_eq!(paid_until().await, trial_end + 16 * DAY_MS);
    let stats = send(&stage, message_from(ADMIN, 14, "/admin stats")).await;
    assert!(
        stats.contains("users: 1 ") && stats.contains("revenue (subscriptions): 22.50 USD"),
        "{stats}"
    );
    let sent = send_all(&stage, message_from(ADMIN, 15, "/admin broadcast Maintenance at 02:00 <UTC>")).await;
    assert_eq!(sent.len(), 2, "the reply and one message for the one user");
    assert_eq!((sent[1].chat_id, sent[1].text.as_str()), (USER, "Maintenance at 02:00 &lt;UTC&gt;"));
    let reconciled = send(&stage, message_from(ADMIN, 16, "/admin reconcile")).await;
    assert!(
        reconciled.contains("credits without a deposit: 2"),
        "the test credited without chain deposits: {reconciled}"
    );
    send(&stage, message_from(ADMIN, 17, &format!("/admin lock {USER}"))).await;
    assert!(send(&stage, message(18, "/balance")).await.contains("locked"));
}
