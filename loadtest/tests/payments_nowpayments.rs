//! NOWPayments through the whole stack (emulator, bot, pipeline with the gateway on,
//! the NOWPayments stand-in): `/deposit` offers top-ups, a press makes one invoice
//! (the stand-in's 500 answered, then made; a slow answer waited for), the page's link
//! reaches the user; IPNs
//! with no signature or a wrong one get 401 and store nothing; a replayed `finished`
//! and statuses out of order credit once and tell the user once; a partly paid invoice
//! credits nothing and tells the admins. Counted by the ledger's references and the
//! gateway stage's own effect counter. Needs `cargo build --workspace --bins`.

use std::time::Duration;

use herald_loadtest::emulator::Delivery;
use herald_loadtest::nowpayments::{NowPayments, Signature};
use herald_loadtest::stack::{callback_query, private_text, Stack, StackOptions};
use herald_schemas::{subjects, LedgerEntry};

const USER: i64 = 1;
const ADMIN: i64 = 9;
const SECRET: &str = "ipn-secret-for-tests";

fn button(d: &Delivery, pointer: &str) -> Option<String> {
    d.reply_markup.as_ref()?.pointer(pointer)?.as_str().map(str::to_string)
}

async fn gateway_messages(stack: &Stack) -> u64 {
    let js = stack.jetstream().await.unwrap();
    herald_testkit::stream_len(&js, subjects::GATEWAY_STREAM).await.unwrap()
}

async fn credits(stack: &Stack, reference: &str) -> usize {
    let js = stack.jetstream().await.unwrap();
    herald_runtime::reader::read(&js, subjects::LEDGER_STREAM, &subjects::ledger(USER))
        .await
        .unwrap()
        .iter()
        .map(|m| herald_schemas::decode::<LedgerEntry>(&m.payload).unwrap())
        .filter(|e| e.reference == reference)
        .count()
}

fn told(stack: &Stack, chat: i64, words: &str) -> usize {
    stack
        .emulator
        .deliveries()
        .iter()
        .filter(|d| d.chat_id == chat && d.text.contains(words))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_top_up_through_nowpayments_is_credited_once_whatever_the_ipns_do() {
    let gateway = NowPayments::start("api-key-for-tests", SECRET).await.unwrap();
    let ipn_port = herald_testkit::free_port();
    let xpub = herald_pipeline::products::payments::wallet::account_xpub(
        "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about",
    )
    .unwrap();
    let args: Vec<String> = [
        "--products",
        "payments",
        "--deposit-xpub",
        &xpub,
        "--admin-ids",
        &ADMIN.to_string(),
        "--nowpayments-api-key",
        gateway.api_key(),
        "--nowpayments-ipn-secret",
        SECRET,
        "--nowpayments-api-url",
        &gateway.url(),
        "--nowpayments-callback-url",
        &format!("http://127.0.0.1:{ipn_port}/nowpayments/ipn"),
        "--nowpayments-ipn-addr",
        &format!("127.0.0.1:{ipn_port}"),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let stack = Stack::start(StackOptions::unthrottled(args)).await.unwrap();
    let js = stack.jetstream().await.unwrap();
    herald_loadtest::run::seed_users(&js, 9, 0).await.unwrap();

    // /deposit offers the top-ups
    stack.emulator.push_update(private_text(USER, "/deposit"));
    let d = stack
        .wait_for_deliveries(Duration::from_secs(20), |d| {
            d.iter().any(|x| x.chat_id == USER && x.text.contains("NOWPayments"))
        })
        .await
        .unwrap();
    let offer = d.iter().find(|x| x.text.contains("NOWPayments")).unwrap();
    assert_eq!(
        button(offer, "/inline_keyboard/0/1/callback_data").as_deref(),
        Some("np:25"),
        "{:?}",
        offer.reply_markup
    );

    // their API answers 500 once: the user is told, nothing made; pressed again: made
    gateway.fail_next(1);
    stack.emulator.push_update(callback_query(USER, offer.message_id, "np:25"));
    stack
        .wait_for_deliveries(Duration::from_secs(20), |d| d.iter().any(|x| x.text.contains("not answering")))
        .await
        .unwrap();
    assert!(gateway.invoices().is_empty());
    stack.emulator.push_update(callback_query(USER, offer.message_id + 1000, "np:25"));
    let d = stack
        .wait_for_deliveries(Duration::from_secs(20), |d| d.iter().any(|x| x.text.contains("Balance top-up")))
        .await
        .unwrap();
    let page = d.iter().find(|x| x.text.contains("Balance top-up")).unwrap();
    let [invoice] = &gateway.invoices()[..] else {
        panic!("one invoice: {:?}", gateway.invoices())
    };
    assert_eq!(
        button(page, "/inline_keyboard/0/0/url"),
        Some(format!("https://nowpayments.io/payment/?iid={}", invoice.id))
    );
    assert_eq!(invoice.price_amount, "25", "an exact number, not a float's text");
    assert!(invoice.order_id.starts_with(&format!("np-{USER}-")));

    // forged IPNs: 401, nothing stored
    let finished = NowPayments::ipn_body(invoice, 5_077_125_051, "finished", "0.00042");
    assert_eq!(gateway.notify(invoice, &finished, Signature::Missing).await.unwrap(), 401);
    assert_eq!(gateway.notify(invoice, &finished, Signature::Wrong).await.unwrap(), 401);
    let mut tampered = finished.clone();
    tampered["price_amount"] = serde_json::json!(2500);
    assert_eq!(gateway.notify(invoice, &tampered, Signature::Wrong).await.unwrap(), 401);
    assert_eq!(gateway_messages(&stack).await, 0, "a refused IPN stores nothing");

    // waiting, then finished, then finished replayed and a late confirming
    for status in ["waiting", "confirming"] {
        let body = NowPayments::ipn_body(invoice, 5_077_125_051, status, "0");
        assert_eq!(gateway.notify(invoice, &body, Signature::Good).await.unwrap(), 200);
    }
    assert_eq!(gateway.notify(invoice, &finished, Signature::Good).await.unwrap(), 200);
    assert_eq!(
        gateway.notify(invoice, &finished, Signature::Good).await.unwrap(),
        200,
        "a replay is taken"
    );
    let late = NowPayments::ipn_body(invoice, 5_077_125_051, "confirming", "0");
    assert_eq!(gateway.notify(invoice, &late, Signature::Good).await.unwrap(), 200);
    stack
        .wait_for_deliveries(Duration::from_secs(20), |_| told(&stack, USER, "received: 25.00 USD credited") == 1)
        .await
        .unwrap();

    // a second invoice, their API slow (3 s, under our 10 s): still made; paid in part,
    // then expired: nothing credited, the admins told
    gateway.slow(Duration::from_secs(3));
    stack.emulator.push_update(callback_query(USER, offer.message_id + 2000, "np:10"));
    stack
        .wait_for_deliveries(Duration::from_secs(20), |_| gateway.invoices().len() == 2)
        .await
        .unwrap();
    let second = gateway.invoices()[1].clone();
    for status in ["partially_paid", "expired"] {
        let body = NowPayments::ipn_body(&second, 5_077_125_052, status, "0.0001");
        assert_eq!(gateway.notify(&second, &body, Signature::Good).await.unwrap(), 200);
    }
    stack
        .wait_for_deliveries(Duration::from_secs(20), |_| {
            told(&stack, ADMIN, "partly paid") == 1 && told(&stack, USER, "expired") == 1
        })
        .await
        .unwrap();
    let deliveries = stack.wait_quiet(Duration::from_millis(500), Duration::from_secs(5)).await;

    // once each: the credit (by reference and by the stage's own counter), the messages
    assert_eq!(credits(&stack, "nowpayments:5077125051").await, 1);
    assert_eq!(credits(&stack, "nowpayments:5077125052").await, 0);
    let metrics = stack.pipeline.metrics().await.unwrap();
    let made = herald_runtime::metric::sum_in(
        &metrics,
        "herald_stage_effects_total",
        &[("stage", "gateway_payments"), ("effect", "made")],
    );
    assert_eq!(made, 1.0, "one credit made by the stage");
    let count = |words: &str| deliveries.iter().filter(|d| d.chat_id == USER && d.text.contains(words)).count();
    assert_eq!(
        (count("USD seen;"), count("USD credited."), count("arrived in part")),
        (1, 1, 1),
        "each told once"
    );
    let refused = herald_runtime::metric::sum_in(&metrics, "herald_gateway_ipns_total", &[("outcome", "bad_signature")]);
    assert_eq!(refused, 2.0);
}
