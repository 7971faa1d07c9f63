//! One durability class's server down (issue 20): while the money server is down,
//! signals and chat go on and `/readyz` names the money server; while the events server
//! is down, money is still written and acknowledged and `/readyz` names the events
//! server. Each comes back without a restart of the pipeline or the bot.

use std::time::Duration;

use alloy::primitives::U256;
use herald_loadtest::run::seed_users;
use herald_loadtest::stack::{channel_post, private_text, Stack, StackOptions};
use herald_pipeline::core::ledger::{Applied, Ledger};
use herald_testkit::ServerClass;

const SEC: Duration = Duration::from_secs(1);
const USERS: usize = 10;
const TOKEN: &str = "8neDcPFwrvRNM9WXHCtHwTcKZrVm6wr4cs4PSN9Hpump";

fn post(channel: i64, message_id: i64) -> serde_json::Value {
    channel_post(channel, "Calls", message_id, &format!("#KORA ● $0.0225 258K FDV\nCA: {TOKEN}"), &[])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_class_works_while_the_other_s_server_is_down() {
    let mut stack = Stack::start(StackOptions::default()).await.unwrap();
    let js = stack.jetstream().await.unwrap();
    seed_users(&js, USERS, 0).await.unwrap();
    stack.wait_for_users(USERS).await.unwrap();
    let ledger = Ledger::open(js.clone()).await.unwrap();

    // money down: a call still reaches every user, a command is still answered
    stack.nats.single().unwrap().kill9(ServerClass::Money);
    stack.pipeline.wait_readyz("missing: nats money server").await.unwrap();
    assert_eq!(stack.bot.readyz().await.unwrap().1, "ready", "the bot holds no money");
    stack.emulator.push_update(post(-1001110001, 1));
    stack.wait_for_deliveries(30 * SEC, |d| d.len() >= USERS).await.unwrap();
    stack.emulator.push_update(private_text(1, "/help"));
    stack
        .wait_for_deliveries(30 * SEC, |d| d.iter().any(|x| x.chat_id == 1 && x.text.contains("/filters")))
        .await
        .unwrap();
    println!("money server down: {USERS} notifications and a /help reply delivered");

    stack.nats.single().unwrap().start_again(ServerClass::Money).unwrap();
    stack.pipeline.wait_readyz("ready").await.unwrap();

    // events down: money is still written, acknowledged and read back
    stack.nats.single().unwrap().kill9(ServerClass::Events);
    stack.pipeline.wait_readyz("missing: nats events server").await.unwrap();
    let amount = U256::from(7_000_000u64);
    let applied = ledger
        .credit(1, amount, "test:events-down", "while the events server is down")
        .await
        .unwrap();
    assert!(matches!(applied, Applied::Done(_)), "{applied:?}");
    assert_eq!(ledger.balance(1).await.unwrap().0, amount);
    stack.nats.single().unwrap().start_again(ServerClass::Events).unwrap();
    stack.pipeline.wait_readyz("ready").await.unwrap();
    stack.bot.wait_readyz("ready").await.unwrap();

    // and the same credit again changes nothing (its reference is in the money class)
    let again = ledger.credit(1, amount, "test:events-down", "again").await.unwrap();
    assert!(!matches!(again, Applied::Done(_)), "{again:?}");
    assert_eq!(ledger.balance(1).await.unwrap().0, amount);
}
