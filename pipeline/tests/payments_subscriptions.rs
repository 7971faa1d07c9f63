//! `/start` gives a trial, `/subscribe` buys a tier from the ledger balance once even
//! when the update is redelivered, and refuses what the balance cannot pay; coupons are
//! reserved once per purchase; admin commands work for admins only; a locked user gets
//! nothing but /start and /help from any product. The router and the products' inbox
//! stages driven directly against a real nats-server.

mod common;

use alloy::primitives::U256;
use common::Desk;
use herald_pipeline::products::payments::coupons;
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

/// The reply text to one update.
async fn send(desk: &Desk, update: Vec<u8>) -> String {
    text(&desk.send_all(update).await[0])
}

fn text(m: &OutboundMessage) -> String {
    m.text().unwrap_or_default().to_string()
}

#[tokio::test]
async fn a_tier_is_bought_once_from_the_balance_after_the_trial() {
    let env = common::Env::start().await;
    let desk = Desk::open(&env, vec![ADMIN]).await;
    let stage = &desk;
    let (access, ledger) = (desk.access.clone(), desk.ledger.clone());
    let paid_until = || async {
        let (a, _) = herald_runtime::records::load::<herald_schemas::Access>(&access, USER)
            .await
            .unwrap()
            .unwrap();
        a.paid_until_ms.unwrap()
    };

    let welcome = send(stage, message(1, "/start")).await;
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

    assert!(send(stage, message(2, "/subscribe weekly")).await.contains("balance is 0.00 USD"));
    let one_usd = U256::from(10).pow(U256::from(18));
    ledger
        .credit(USER, U256::from(20) * one_usd, "deposit:0x1:0", "deposit 20 BUSD")
        .await
        .unwrap();
    assert!(send(stage, message(3, "/subscribe")).await.contains("weekly: 15.00 USD, 7 days"));

    let reply = send(stage, message(4, "/subscribe weekly")).await;
    assert!(
        reply.contains("weekly subscription bought") && reply.contains("Balance: 5.00 USD"),
        "{reply}"
    );
    assert_eq!(paid_until().await, trial_end + 7 * DAY_MS, "added after the trial, nothing lost");
    // the same update delivered again: charged once, extended once
    send(stage, message(4, "/subscribe weekly")).await;
    assert_eq!(paid_until().await, trial_end + 7 * DAY_MS);
    assert_eq!(ledger.balance(USER).await.unwrap().0, U256::from(5) * one_usd);

    assert!(send(stage, message(5, "/subscribe lifetime"))
        .await
        .contains("costs 300.00 USD; your balance is 5.00 USD"));
    assert!(send(stage, message(6, "/balance"))
        .await
        .contains("−15.00 USD · weekly subscription"));
    assert!(send(stage, message(7, "/deposit")).await.contains("0x"));

    // coupons: an admin makes one; it takes half off, once
    assert!(
        send(stage, message(8, "/admin coupon HALF 50% 1"))
            .await
            .contains("Unknown command /admin"),
        "not an admin"
    );
    assert!(send(stage, message_from(ADMIN, 9, "/admin coupon HALF 50% 1"))
        .await
        .contains("Coupon HALF created"));
    ledger
        .credit(USER, U256::from(10) * one_usd, "deposit:0x2:0", "deposit 10 BUSD")
        .await
        .unwrap();
    let reply = send(stage, message(10, "/subscribe weekly half")).await;
    assert!(reply.contains("Balance: 7.50 USD"), "15 USD at half price from 15: {reply}");
    assert!(send(stage, message(11, "/subscribe weekly HALF")).await.contains("used up"));
    assert!(send(stage, message(12, "/subscribe weekly NOPE")).await.contains("no such coupon"));
    assert_eq!(paid_until().await, trial_end + 14 * DAY_MS);

    // admin: extend (once under redelivery), stats, lock
    send(stage, message_from(ADMIN, 13, &format!("/admin extend {USER} 2"))).await;
    send(stage, message_from(ADMIN, 13, &format!("/admin extend {USER} 2"))).await;
    assert_eq!(paid_until().await, trial_end + 16 * DAY_MS);
    let stats = send(stage, message_from(ADMIN, 14, "/admin stats")).await;
    assert!(
        stats.contains("users: 1 (new today 1, 0 locked, 0 inactive)")
            && stats.contains("revenue (subscriptions): 22.50 USD (today 22.50 USD)"),
        "{stats}"
    );
    // every running product writes its section; one that cannot read (no Redis here)
    // says so in its place, and the others still answer
    for section in [
        "<b>Payments</b>",
        "<b>Signals</b>\ncalls today 0",
        "<b>Lottery</b>",
        "<b>Trivia</b>\ngames today 0",
    ] {
        assert!(stats.contains(section), "{section} missing from {stats}");
    }
    assert!(stats.contains("<b>chat</b>: unavailable (no Redis in this deployment)"), "{stats}");
    assert!(
        send(stage, message(14, "/admin stats")).await.contains("Unknown command"),
        "not an admin"
    );
    let coupons = send(stage, message_from(ADMIN, 22, "/admin coupon list")).await;
    assert!(
        coupons.contains("HALF — 50% off · 1/1 used · no expiry · this coupon has been used up"),
        "{coupons}"
    );
    // a broadcast is the desk's, of a message the admin replies to: not a reply, the usage
    let usage = send(stage, message_from(ADMIN, 15, "/admin broadcast Maintenance at 02:00 <UTC>")).await;
    assert!(
        usage.contains("as a reply to the message to send") && usage.contains("<code>unpaid</code>"),
        "{usage}"
    );
    let reconciled = send(stage, message_from(ADMIN, 16, "/admin reconcile")).await;
    assert!(
        reconciled.contains("credits without a deposit: 2"),
        "the test credited without chain deposits: {reconciled}"
    );
    send(stage, message_from(ADMIN, 17, &format!("/admin lock {USER}"))).await;
    // locked: every product's commands and buttons are refused; /start and /help answer
    for (id, cmd) in [(18, "/balance"), (19, "/filters"), (20, "/calls"), (21, "/subscribe weekly")] {
        assert!(send(stage, message(id, cmd)).await.contains("locked"), "{cmd}");
    }
    let press = serde_json::json!({"update_id": 22, "callback_query": {"id": "q", "data": "f:reset",
        "from": {"id": USER, "is_bot": false, "first_name": "U"}, "message": {"message_id": 5, "date": 0, "chat": {"id": USER, "type": "private"}}}});
    assert!(send(stage, press.to_string().into_bytes()).await.contains("locked"));
    assert!(send(stage, message(23, "/help")).await.contains("/filters"));
    send(stage, message_from(ADMIN, 24, &format!("/admin unlock {USER}"))).await;
    assert!(send(stage, message(25, "/balance")).await.contains("Balance"));
}

/// The bug this guards: a `/subscribe weekly CODE` redelivered before its commit (a
/// crash, a lost ack) reserved the coupon a second time, so one purchase used two.
#[tokio::test]
async fn a_redelivered_purchase_reserves_its_coupon_once() {
    let env = common::Env::start().await;
    let desk = Desk::open(&env, vec![ADMIN]).await;
    let one_usd = U256::from(10).pow(U256::from(18));
    send(&desk, message(1, "/start")).await;
    desk.ledger
        .credit(USER, U256::from(20) * one_usd, "deposit:0x1:0", "deposit 20 BUSD")
        .await
        .unwrap();
    send(&desk, message_from(ADMIN, 2, "/admin coupon TWICE 50% 2")).await;
    // the purchase decided twice, its commit never reached (as after a crash)
    let purchase = message(3, "/subscribe weekly TWICE");
    desk.decide_only(purchase.clone()).await;
    desk.decide_only(purchase.clone()).await;
    let kv = env.js.get_key_value(subjects::COUPONS_BUCKET).await.unwrap();
    let stored: coupons::Coupon = serde_json::from_slice(&kv.get("TWICE").await.unwrap().unwrap()).unwrap();
    assert_eq!(stored.uses, 1, "one purchase holds one use of the coupon");
    assert_eq!(
        desk.ledger.balance(USER).await.unwrap().0,
        U256::from(20) * one_usd - U256::from(15) * one_usd / U256::from(2)
    );
    // and the coupon's second use is still there for another purchase
    let reply = send(&desk, message(4, "/subscribe weekly TWICE")).await;
    assert!(reply.contains("subscription bought"), "{reply}");
    let reply = send(&desk, message(5, "/subscribe weekly TWICE")).await;
    assert!(reply.contains("used up"), "{reply}");

    // a purchase that cannot be paid gives its use back, once however often it is retried
    send(&desk, message_from(ADMIN, 6, "/admin coupon ONCE 10% 1")).await;
    let refused = message(7, "/subscribe lifetime ONCE");
    assert!(send(&desk, refused.clone()).await.contains("costs"));
    assert!(send(&desk, refused).await.contains("costs"));
    let stored: coupons::Coupon = serde_json::from_slice(&kv.get("ONCE").await.unwrap().unwrap()).unwrap();
    assert_eq!((stored.uses, stored.held_by.len()), (0, 0));
}
