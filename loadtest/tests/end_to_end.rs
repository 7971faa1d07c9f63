//! The whole stack end to end: real nats-server and redis-server, `pipeline` and `bot`
//! processes, the Bot API emulator and feed servers.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use futures::StreamExt;
use herald_loadtest::emulator::Fail;
use herald_loadtest::run::{call_frame, seed_users};
use herald_loadtest::stack::{private_text, Stack, StackOptions};
use herald_schemas::subjects;

const SEC: Duration = Duration::from_secs(1);

/// Every message in `stream` matching `filter` (reads with an unacknowledged consumer).
async fn stream_messages(js: &async_nats::jetstream::Context, stream: &str, filter: &str) -> Vec<async_nats::jetstream::Message> {
    use async_nats::jetstream::consumer::{pull, AckPolicy};
    let s = js.get_stream(stream).await.unwrap();
    let c = s
        .create_consumer(pull::Config {
            filter_subject: filter.into(),
            ack_policy: AckPolicy::None,
            ..Default::default()
        })
        .await
        .unwrap();
    let mut out = Vec::new();
    loop {
        let mut batch = c
            .fetch()
            .max_messages(1000)
            .expires(Duration::from_millis(500))
            .messages()
            .await
            .unwrap();
        let before = out.len();
        while let Some(m) = batch.next().await {
            out.push(m.unwrap());
        }
        if out.len() == before {
            return out;
        }
    }
}

fn dead_letter_reasons(msgs: &[async_nats::jetstream::Message]) -> Vec<(String, String)> {
    msgs.iter()
        .map(|m| {
            let h = m.headers.as_ref().unwrap();
            (
                h.get(subjects::HEADER_STAGE).unwrap().to_string(),
                h.get(subjects::HEADER_ERROR).unwrap().to_string(),
            )
        })
        .collect()
}

#[tokio::test]
async fn recorded_real_inputs_become_notifications() {
    let summary = herald_loadtest::demo::run(None).await.unwrap();
    let expected: BTreeMap<i64, usize> = [(herald_loadtest::demo::ALICE, 10), (herald_loadtest::demo::BOB, 4)].into();
    assert_eq!(
        summary.notifications_per_chat, expected,
        "4 channel calls + 1 trending call + 5 Raydium pools; Bob's FDV band keeps 4"
    );
    assert_eq!(summary.dead_lettered, 0);
    let texts: Vec<&str> = summary.deliveries.iter().map(|d| d.text.as_str()).collect();
    assert!(
        texts
            .iter()
            .any(|t| t.contains("$oddbit") && t.contains("$0.00062") && t.contains("FDV $62K")),
        "subscript-zero price parsed"
    );
    assert!(
        texts.iter().any(|t| t.contains("B4qKiQd97nBgME2c6GwRwYWRCCuw7WzqmxzCHaQMpump")),
        "Raydium pool creation became a call"
    );
}

#[tokio::test]
async fn bad_input_is_dead_lettered_and_the_run_goes_on() {
    let stack = Stack::start(StackOptions::default()).await.unwrap();
    let js = stack.jetstream().await.unwrap();
    stack.emulator.push_update(private_text(3001, "/start"));
    stack
        .wait_for_deliveries(10 * SEC, |d| d.iter().any(|x| x.chat_id == 3001))
        .await
        .unwrap();

    // 33 real Telegram updates of every kind, one of them an unknown kind
    for line in include_str!("../fixtures/telegram_updates.jsonl").lines() {
        stack.emulator.push_update(serde_json::from_str(line).unwrap());
    }
    stack.feed.publish("{this is not json".into());
    stack.feed.publish(format!(
        r#"{{"type":"call","id":"big","chain":"sol","token":"T","caller_id":"c","ts_ms":0,"pad":"{}"}}"#,
        "x".repeat(70_000)
    ));
    stack.feed.publish(
        r#"{"type":"call","id":"ok-1","chain":"solana","token":"GoodToken1111111111111111111111111","caller_id":"feedcaller","ts_ms":0}"#
            .into(),
    );

    stack
        .wait_for_deliveries(20 * SEC, |d| d.iter().any(|x| x.chat_id == 3001 && x.text.contains("GoodToken")))
        .await
        .unwrap();
    tokio::time::sleep(SEC).await;
    let mut reasons = dead_letter_reasons(&stream_messages(&js, subjects::DLQ_STREAM, "herald.dlq.>").await);
    reasons.sort();
    assert_eq!(reasons.len(), 3, "{reasons:?}");
    assert_eq!(reasons[0].0, "feed");
    assert!(
        reasons.iter().any(|(s, e)| s == "feed" && e.starts_with("malformed feed frame")),
        "{reasons:?}"
    );
    assert!(
        reasons.iter().any(|(s, e)| s == "feed" && e.starts_with("oversized frame")),
        "{reasons:?}"
    );
    assert!(
        reasons
            .iter()
            .any(|(s, e)| s == "updates" && e == "unknown update kind 'new_update_kind'"),
        "{reasons:?}"
    );
    // every fixture update was stored raw, replayable
    let updates = stream_messages(&js, subjects::UPDATES_STREAM, "herald.updates.>").await;
    assert_eq!(updates.len(), 34, "33 fixture updates + the /start");
}

#[tokio::test]
async fn limits_hold_and_a_429_holds_back_only_its_chat() {
    let stack = Stack::start(StackOptions::default()).await.unwrap();
    let js = stack.jetstream().await.unwrap();
    seed_users(&js, 40, 40).await.unwrap(); // 40 users, one FDV band: every call reaches all
    tokio::time::sleep(SEC).await;
    stack.emulator.fail(Fail {
        chat_id: 7,
        status: 429,
        retry_after: 3,
        times: 1,
    });
    stack.feed.publish(call_frame("lim", 1, 0));
    let d = stack.wait_for_deliveries(30 * SEC, |d| d.len() >= 40).await.unwrap();
    let at = |chat: i64| d.iter().find(|x| x.chat_id == chat).unwrap().at_ms;
    let first = d.iter().map(|x| x.at_ms).min().unwrap();
    let others_last = d.iter().filter(|x| x.chat_id != 7).map(|x| x.at_ms).max().unwrap();
    assert!(at(7) >= first + 3000, "chat 7 waited out retry_after");
    assert!(
        others_last < first + 2500,
        "other chats were not held back ({} ms)",
        others_last - first
    );
    assert_eq!(
        stack.emulator.stats().too_many_requests,
        1,
        "no 429 beyond the injected one: 40 messages at 30/s stay under the limits"
    );
    let chats: HashSet<i64> = d.iter().map(|x| x.chat_id).collect();
    assert_eq!((chats.len(), d.len()), (40, 40), "each user exactly once");
}

#[tokio::test]
async fn kill_9_of_the_pipeline_publishes_every_notification_once() {
    let mut stack = Stack::start(StackOptions::default()).await.unwrap();
    stack.bot.terminate(); // only the notification subjects matter here
    let js = stack.jetstream().await.unwrap();
    let bands = seed_users(&js, 200, 1).await.unwrap();
    tokio::time::sleep(SEC).await;
    for n in 0..400 {
        stack.feed.publish(call_frame("crash", n, n as usize % bands));
    }
    stack.pipeline.kill9(); // mid-run: frames in flight in the source and the stages
    stack.pipeline.restart().await.unwrap();
    stack.feed.wait_for_clients(1, 15 * SEC).await.unwrap();
    for n in 400..800 {
        stack.feed.publish(call_frame("crash", n, n as usize % bands));
    }
    // wait until the pipeline has drained
    let mut last = (0, 0);
    for _ in 0..60 {
        tokio::time::sleep(SEC).await;
        let calls = js
            .get_stream(subjects::CALLS_STREAM)
            .await
            .unwrap()
            .info()
            .await
            .unwrap()
            .state
            .messages;
        let notes = js
            .get_stream(subjects::OUTBOUND_STREAM)
            .await
            .unwrap()
            .info()
            .await
            .unwrap()
            .state
            .messages;
        if (calls, notes) == last && calls == notes {
            break;
        }
        last = (calls, notes);
    }
    let calls = stream_messages(&js, subjects::CALLS_STREAM, "herald.calls.>").await;
    let notes = stream_messages(&js, subjects::OUTBOUND_STREAM, subjects::NOTIFY_ALL).await;
    let keys: HashSet<String> = notes
        .iter()
        .map(|m| {
            herald_schemas::decode::<herald_schemas::OutboundMessage>(&m.payload)
                .unwrap()
                .idempotency_key
        })
        .collect();
    println!("calls stored: {}, notifications published: {}", calls.len(), notes.len());
    assert!(calls.len() >= 400, "the restarted pipeline took the second batch");
    assert_eq!(keys.len(), notes.len(), "no notification published twice");
    assert_eq!(notes.len(), calls.len(), "every stored call became exactly one notification");
}

#[tokio::test]
async fn kill_9_of_the_bot_loses_nothing() {
    let mut stack = Stack::start(StackOptions {
        log_dir: std::env::var_os("HERALD_TEST_LOGS").map(Into::into),
        ..Default::default()
    })
    .await
    .unwrap();
    let js = stack.jetstream().await.unwrap();
    let bands = seed_users(&js, 90, 1).await.unwrap();
    tokio::time::sleep(SEC).await;
    for n in 0..90 {
        stack.feed.publish(call_frame("botkill", n, n as usize % bands));
    }
    stack.wait_for_deliveries(20 * SEC, |d| d.len() >= 20).await.unwrap();
    stack.bot.kill9();
    let at_kill = stack.emulator.deliveries().len();
    stack.bot.restart().await.unwrap();
    stack
        .wait_for_deliveries(60 * SEC, |d| d.iter().map(|x| x.chat_id).collect::<HashSet<_>>().len() >= 90)
        .await
        .unwrap();
    tokio::time::sleep(2 * SEC).await;
    let d = stack.emulator.deliveries();
    let mut per_chat: BTreeMap<i64, usize> = BTreeMap::new();
    for x in &d {
        *per_chat.entry(x.chat_id).or_default() += 1;
    }
    let repeats: usize = per_chat.values().map(|n| n - 1).sum();
    println!("delivered before the kill: {at_kill}; after: {}; repeats: {repeats}", d.len());
    assert_eq!(per_chat.len(), 90, "no notification lost");
    assert!(repeats <= 2, "only a message in flight at the kill may repeat; got {repeats}");
}
