//! A nats-server crash (issue 13): the one server killed with -9 mid-flow and started
//! again on its store; every notification delivered, none twice.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use herald_loadtest::run::{call_frame, seed_users};
use herald_loadtest::stack::{writable_after, Stack, StackOptions};

const SEC: Duration = Duration::from_secs(1);

#[tokio::test]
async fn a_nats_server_crash_and_restart_loses_and_repeats_no_notification() {
    let mut stack = Stack::start(StackOptions::default()).await.unwrap();
    let js = stack.jetstream().await.unwrap();
    const USERS: usize = 60;
    let bands = seed_users(&js, USERS, 1).await.unwrap();
    tokio::time::sleep(SEC).await;
    let feed = stack.feed.clone();
    let sender = tokio::spawn(async move {
        for n in 0..USERS as u64 {
            feed.publish(call_frame("natsdown", n, n as usize % bands));
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
    stack.wait_for_deliveries(30 * SEC, |d| d.len() >= 10).await.unwrap();
    let killed = Instant::now();
    stack.nats.single().unwrap().restart().unwrap();
    let js = stack.jetstream().await.unwrap();
    let recovery = writable_after(&js, killed, "probe-restart").await.unwrap();
    sender.await.unwrap();
    stack.wait_for_deliveries(120 * SEC, |d| d.len() >= USERS).await.unwrap();
    let d = stack.wait_quiet(3 * SEC, 20 * SEC).await;
    let mut per_chat: BTreeMap<i64, usize> = BTreeMap::new();
    for x in &d {
        *per_chat.entry(x.chat_id).or_default() += 1;
    }
    let repeats: usize = per_chat.values().map(|n| n - 1).sum();
    println!(
        "nats-server kill -9 and restart: writable again after {:.2} s; {} delivered to {} chats, {repeats} repeats",
        recovery.as_secs_f64(),
        d.len(),
        per_chat.len()
    );
    assert_eq!(per_chat.len(), USERS, "no notification lost");
    assert_eq!(repeats, 0, "no notification sent twice");
}
