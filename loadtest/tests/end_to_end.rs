//! The whole stack end to end: real nats-server and redis-server, `pipeline` and `bot`
//! processes, the Bot API emulator and feed servers.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use herald_loadtest::emulator::Fail;
use herald_loadtest::run::{call_frame, seed_users};
use herald_loadtest::stack::{callback_query, private_text, Stack, StackOptions};
use herald_schemas::subjects;
use herald_testkit::stream_len;

const SEC: Duration = Duration::from_secs(1);

async fn stream_messages(js: &herald_runtime::Js, stream: &str, filter: &str) -> Vec<async_nats::jetstream::Message> {
    herald_runtime::reader::read(js, stream, filter).await.unwrap()
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
    let expected: BTreeMap<i64, usize> = [(herald_loadtest::demo::ALICE, 20), (herald_loadtest::demo::BOB, 7)].into();
    assert_eq!(
        summary.notifications_per_chat, expected,
        "4 channel calls + 1 trending call + 5 Raydium pools + 3 multiplier alerts + the /calls reply \
         + /deposit, seen, credited, /subscribe, bought, /balance; Bob's FDV band keeps 4 calls + the same 3 alerts"
    );
    let deposit = summary.deliveries.iter().find(|d| d.text.contains("Your deposit address")).unwrap();
    let address = herald_loadtest::demo::payments::deposit_address(&deposit.text).unwrap();
    assert_eq!(deposit.method, "sendPhoto", "/deposit answers with a photo");
    assert_eq!(
        deposit.photo_qr,
        Some(address.to_string()),
        "its QR code reads the address in the caption"
    );
    let balance = &summary.balance.text;
    assert!(
        balance.contains("Balance: 5.00 USD")
            && balance.contains("+20.00 USD · deposit 20.00 BUSD")
            && balance.contains("−15.00 USD · weekly subscription"),
        "20 BUSD credited once, 15 USD debited once: {balance}"
    );
    assert_eq!(summary.dead_lettered, 0);
    assert!(summary.clean_shutdown, "pipeline and bot exit 0 on SIGTERM");
    assert_eq!(
        summary.menu,
        [
            "/start",
            "/help",
            "/filters",
            "/calls",
            "/pause",
            "/resume",
            "/deposit",
            "/balance",
            "/subscribe",
            "/chat",
            "/next",
            "/stop",
            "/report",
            "/lottery",
            "/buy",
            "/tickets",
            "/draws",
            "/verify",
            "/ref",
            "/trivia",
            "/daily",
            "/top",
            "/stats",
            "/flag"
        ],
        "the menu Telegram shows, from the products' command enums, set at start"
    );
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
    assert_eq!(
        texts.iter().filter(|t| t.contains("$kora</b> hit <b>5x</b>")).count(),
        2,
        "the 5x alert, once per user"
    );
    let calls = texts.iter().find(|t| t.contains("Your tracked calls")).expect("the /calls reply");
    assert!(
        calls.contains("(4)") && calls.contains("$kora") && calls.contains("best 5.33x"),
        "{calls}"
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
            .any(|(s, e)| s == "router" && e == "unknown update kind 'new_update_kind'"),
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
    // a steady flow, so the kill lands while calls are in every stage
    let feed = stack.feed.clone();
    let sender = tokio::spawn(async move {
        for n in 0..1500u64 {
            feed.publish(call_frame("crash", n, n as usize % bands));
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    });
    while stream_len(&js, subjects::CALLS_STREAM).await.unwrap() < 300 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    stack.pipeline.kill9();
    let (calls_at_kill, notes_at_kill) = (
        stream_len(&js, subjects::CALLS_STREAM).await.unwrap(),
        stream_len(&js, subjects::OUTBOUND_STREAM).await.unwrap(),
    );
    // (how many were in flight depends on timing: it is reported, not asserted)
    println!("at the kill: {calls_at_kill} calls stored, {notes_at_kill} notifications published");
    stack.pipeline.restart().await.unwrap();
    sender.await.unwrap();
    // wait until the pipeline has drained
    let mut last = (0, 0);
    for _ in 0..60 {
        tokio::time::sleep(SEC).await;
        let calls = stream_len(&js, subjects::CALLS_STREAM).await.unwrap();
        // notifications only: OUTBOUND also holds the command menu set at start
        let notes = stream_messages(&js, subjects::OUTBOUND_STREAM, subjects::NOTIFY_ALL).await.len() as u64;
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
    assert!(calls.len() as u64 > calls_at_kill, "the restarted pipeline took more calls");
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

#[tokio::test]
async fn the_feed_source_reconnects_and_the_menu_buttons_edit_the_menu() {
    let stack = Stack::start(StackOptions::default()).await.unwrap();
    stack.emulator.push_update(private_text(4001, "/start"));
    stack
        .wait_for_deliveries(10 * SEC, |d| d.iter().any(|x| x.chat_id == 4001))
        .await
        .unwrap();

    // the feed drops every connection; the source reconnects (backoff with jitter)
    stack.feed.disconnect_all();
    tokio::time::sleep(Duration::from_millis(200)).await;
    stack.feed.wait_for_clients(1, 15 * SEC).await.unwrap();
    stack.feed.publish(r#"{"type":"call","id":"after-reconnect","chain":"solana","token":"Reconnected111111111111111111111111","caller_id":"c","ts_ms":0}"#.into());
    stack
        .wait_for_deliveries(15 * SEC, |d| d.iter().any(|x| x.text.contains("Reconnected111")))
        .await
        .unwrap();

    // /filters shows the menu; pressing "WR 60%" edits that message in place
    stack.emulator.push_update(private_text(4001, "/filters"));
    let d = stack
        .wait_for_deliveries(10 * SEC, |d| d.iter().any(|x| x.text.contains("Your filters")))
        .await
        .unwrap();
    let menu = d.iter().find(|x| x.text.contains("Your filters")).unwrap();
    let markup = menu.reply_markup.as_ref().expect("an inline keyboard");
    assert!(markup.to_string().contains("f:wr:60"), "{markup}");
    stack.emulator.push_update(callback_query(4001, menu.message_id, "f:wr:60"));
    let d = stack
        .wait_for_deliveries(10 * SEC, |d| d.iter().any(|x| x.method == "editMessageText"))
        .await
        .unwrap();
    let edit = d.iter().find(|x| x.method == "editMessageText").unwrap();
    assert_eq!((edit.chat_id, edit.message_id), (4001, menu.message_id));
    assert!(edit.text.contains("Min caller win rate: 60%"), "{}", edit.text);
    assert!(edit.reply_markup.as_ref().unwrap().to_string().contains("✅ WR 60%"));
}

#[tokio::test]
async fn a_user_who_blocked_the_bot_is_marked_inactive_and_skipped() {
    let stack = Stack::start(StackOptions::default()).await.unwrap();
    let js = stack.jetstream().await.unwrap();
    for user in [5001, 5002] {
        stack.emulator.push_update(private_text(user, "/start"));
    }
    stack.wait_for_deliveries(10 * SEC, |d| d.len() >= 2).await.unwrap();
    stack.emulator.block(5001);
    let call =
        |id: &str, token: &str| format!(r#"{{"type":"call","id":"{id}","chain":"solana","token":"{token}","caller_id":"c","ts_ms":0}}"#);
    stack.feed.publish(call("b1", "BlockedFirst1111111111111111111111"));
    stack
        .wait_for_deliveries(10 * SEC, |d| d.iter().any(|x| x.chat_id == 5002 && x.text.contains("BlockedFirst")))
        .await
        .unwrap();
    let users = js.get_key_value(subjects::USERS_BUCKET).await.unwrap();
    let mut inactive = false;
    for _ in 0..100 {
        let (s, _) = herald_core::users::load(&users, 5001).await.unwrap().unwrap();
        if !s.active {
            inactive = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(inactive, "403 marks the user inactive");
    assert_eq!(stack.emulator.stats().forbidden, 1);
    stack.feed.publish(call("b2", "BlockedSecond111111111111111111111"));
    stack
        .wait_for_deliveries(10 * SEC, |d| {
            d.iter().any(|x| x.chat_id == 5002 && x.text.contains("BlockedSecond"))
        })
        .await
        .unwrap();
    tokio::time::sleep(SEC).await;
    assert_eq!(stack.emulator.stats().forbidden, 1, "the inactive user is no longer sent anything");
}

#[tokio::test]
async fn load_reports_account_for_every_message_the_emulator_recorded() {
    use herald_loadtest::run::{drive, RunArgs, Scenario};
    for (scenario, rate, users) in [(Scenario::Mixed, 30, 60), (Scenario::Broadcast, 1, 45), (Scenario::Prices, 14, 10)] {
        let stack = Stack::start(StackOptions::default()).await.unwrap();
        let mut args = RunArgs::new(scenario, rate, 2, users);
        // prices are measured at the notification subject; the others at the emulator
        args.emulator_url = (scenario != Scenario::Prices).then(|| stack.emulator.url());
        args.pids = [stack.pipeline.pid(), stack.bot.pid()].into_iter().flatten().collect();
        let report = drive(stack.jetstream().await.unwrap(), &stack.feed, &args).await.unwrap();
        println!("{report}");
        let recorded = stack.emulator.deliveries().len() as u64;
        assert_eq!(
            report.notifications_seen, report.notifications_expected,
            "{scenario:?}: nothing lost"
        );
        if args.emulator_url.is_some() {
            assert_eq!(
                report.delivered_to_telegram,
                Some(recorded),
                "{scenario:?}: the report counts what the emulator recorded"
            );
        }
        assert!(
            report.timeline.len() >= 2 && report.max_cpu_pct.is_some(),
            "{scenario:?}: a timeline with CPU samples"
        );
        let chart = tempfile::NamedTempFile::new().unwrap();
        herald_loadtest::chart::write_svg(&report, chart.path()).unwrap();
        assert!(std::fs::read_to_string(chart.path()).unwrap().contains("<svg"));
    }
}

/// The front door's trivia section (`scripts/demo trivia`): a private game of three
/// quiz polls answered by votes, each scored once, the end and `/stats` agreeing.
#[tokio::test]
async fn the_demo_s_trivia_game_is_scored_once_per_answer() {
    use herald_loadtest::demo::trivia;
    let s = trivia::run(None).await.unwrap();
    assert_eq!(s.right, 2, "right, wrong, right");
    assert!(s.end.contains("Correct: 2/3"), "{}", s.end);
    assert_eq!(s.scored, 3.0, "three answers, each scored once by the scorer");
    assert!(s.stats.contains("Answers: 3 (66% correct)"), "{}", s.stats);
    let transcript = trivia::transcript(&s);
    assert!(transcript.contains("2/3 right, 3 answers scored"), "{transcript}");
}

/// `loadtest demo` knows the five products and refuses anything else.
#[tokio::test]
async fn the_demo_plays_the_five_products_and_names_the_unknown() {
    assert_eq!(
        herald_loadtest::demo::SECTIONS,
        ["signals", "payments", "chat", "lottery", "trivia"]
    );
    let dir = tempfile::tempdir().unwrap();
    let err = herald_loadtest::demo::play(&["poker".to_string()], dir.path().to_path_buf())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("no demo of \"poker\""), "{err}");
}
