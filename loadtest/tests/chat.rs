//! The random chat end to end: real nats-server and redis-server, `pipeline` and `bot`
//! processes, the Bot API emulator. What a user sees is what the emulator received.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use herald_loadtest::demo::chat::{self, copies_of, count, from_user, say, ANN, BEN, CAL, MODERATORS};
use herald_loadtest::emulator::Delivery;
use herald_loadtest::stack::{Stack, StackOptions};

const MINUTE: Duration = Duration::from_secs(60);

#[tokio::test]
async fn a_conversation_relays_every_kind_then_next_report_and_ban() {
    let s = chat::run(None).await.unwrap();
    let d = &s.deliveries;
    for (kind, id) in &s.kinds {
        let copies = copies_of(d, ANN, *id);
        assert_eq!(copies.len(), 1, "{kind} (message {id}) reached Ben once: {copies:?}");
        assert_eq!(copies[0].chat_id, BEN);
        assert!(
            copies[0].method.starts_with("copyMessage"),
            "{kind} relayed by copy, so no 'forwarded from'"
        );
    }
    for (kind, id) in &s.refused {
        assert!(copies_of(d, ANN, *id).is_empty(), "{kind} was not copied");
    }
    assert_eq!(
        count(d, ANN, "could not be delivered"),
        s.refused.len(),
        "each refused message told once, never silence: {:?}",
        s.refused
    );
    let album: Vec<&Delivery> = s.album.iter().flat_map(|id| copies_of(d, ANN, *id)).collect();
    assert_eq!(album.len(), 3);
    assert!(
        album.iter().all(|c| c.method == "copyMessages" && c.call == album[0].call),
        "the album went out as one copyMessages: {album:?}"
    );
    let calls: HashSet<u64> = s.kinds.iter().flat_map(|(_, id)| copies_of(d, ANN, *id)).map(|c| c.call).collect();
    assert!(
        calls.len() < s.kinds.len(),
        "the burst was batched: {} calls for {} messages",
        calls.len(),
        s.kinds.len()
    );
    let reply = copies_of(d, BEN, s.reply);
    assert_eq!(reply.len(), 1);
    assert_eq!(
        (reply[0].chat_id, reply[0].reply_to),
        (ANN, Some(s.text.0)),
        "the reply lands on Ann's original"
    );
    let edits: Vec<&Delivery> = d.iter().filter(|x| x.method == "editMessageText").collect();
    assert_eq!(edits.len(), 1);
    assert_eq!(
        (edits[0].chat_id, edits[0].message_id),
        (BEN, s.text.1),
        "the edit edits Ben's copy"
    );
    assert_eq!(edits[0].text, "edited: 1 &lt; 2", "user text is escaped for HTML");
    assert_eq!(count(d, BEN, "partner left"), 1, "Ben told once that Ann left");
    let evidence: HashSet<(i64, i64)> = d.iter().filter(|x| x.chat_id == MODERATORS).filter_map(|x| x.source).collect();
    assert_eq!(
        evidence,
        [(CAL, s.evidence.0), (ANN, s.evidence.1)].into(),
        "the moderators got the last messages of the reported chat, and nothing of Ann and Ben's"
    );
    assert_eq!(
        count(d, ANN, "Partner found"),
        2,
        "Ann is not paired again with Ben, whom she skipped"
    );
    assert!(s.clean_shutdown, "pipeline and bot exit 0 on SIGTERM");
}

/// The stack with `args`; users here search again within seconds, so without the
/// `/chat` cooldown (tested in `chat_state`).
fn opts(args: &[&str]) -> StackOptions {
    StackOptions {
        pipeline_args: args.iter().chain(&["--chat-search-cooldown", "0"]).map(|s| s.to_string()).collect(),
        ..Default::default()
    }
}

async fn started(stack: &Stack, users: &[i64]) {
    for u in users {
        say(stack, *u, "/start");
    }
    stack
        .wait_for_deliveries(MINUTE, |d| users.iter().all(|u| count(d, *u, "Welcome") == 1))
        .await
        .unwrap();
}

async fn pair(stack: &Stack, a: i64, b: i64) {
    let before = |d: &[Delivery], u| count(d, u, "Partner found");
    let (was_a, was_b) = {
        let d = stack.emulator.deliveries();
        (before(&d, a), before(&d, b))
    };
    say(stack, a, "/chat");
    stack
        .wait_for_deliveries(MINUTE, |d| count(d, a, "Searching") > 0 && before(d, a) == was_a)
        .await
        .unwrap();
    say(stack, b, "/chat");
    stack
        .wait_for_deliveries(MINUTE, |d| before(d, a) == was_a + 1 && before(d, b) == was_b + 1)
        .await
        .unwrap();
}

#[tokio::test]
async fn timeouts_expired_searches_blocked_partners_and_newcomers() {
    let stack = Stack::start(opts(&["--chat-timeout", "4s", "--chat-queue-ttl", "2s"]))
        .await
        .unwrap();
    let (a, b, c, e) = (3001, 3002, 3003, 3004);
    started(&stack, &[a, b, c, e]).await;

    // a search nobody answers expires, and the user is told
    say(&stack, c, "/chat");
    stack
        .wait_for_deliveries(MINUTE, |d| count(d, c, "Nobody was found") == 1)
        .await
        .unwrap();

    // a newcomer's photo is not relayed; the chat then times out, both told
    pair(&stack, a, b).await;
    let photo = chat::shapes().into_iter().find(|(k, _)| k == "photo").unwrap().1;
    let (photo_id, update) = from_user(a, photo);
    stack.emulator.push_update(update);
    let d = stack
        .wait_for_deliveries(MINUTE, |d| {
            count(d, a, "first chat") == 1 && count(d, a, "The chat ended") == 1 && count(d, b, "The chat ended") == 1
        })
        .await
        .unwrap();
    assert!(copies_of(&d, a, photo_id).is_empty(), "a newcomer's photo is not relayed");

    // a partner who blocked the bot: the chat ends at the first 403, the other is told
    pair(&stack, c, e).await;
    stack.emulator.block(e);
    say(&stack, c, "hello?");
    stack
        .wait_for_deliveries(MINUTE, |d| count(d, c, "partner left") == 1)
        .await
        .unwrap();
    say(&stack, c, "anyone?");
    let d = stack
        .wait_for_deliveries(MINUTE, |d| count(d, c, "not in a chat") == 1)
        .await
        .unwrap();
    assert_eq!(count(&d, c, "The chat ended"), 0, "ended by the block, not the timeout");
}

#[tokio::test]
async fn kill_9_mid_conversation_loses_nothing_and_relays_nothing_twice() {
    let mut stack = Stack::start(opts(&["--chat-newcomer-text-only", "false", "--inbound-limit", "chat=500/5"]))
        .await
        .unwrap();
    let (a, b) = (4001, 4002);
    started(&stack, &[a, b]).await;
    pair(&stack, a, b).await;
    let mut sent = Vec::new();
    for i in 0..20 {
        sent.push(say(&stack, a, &format!("message {i}")));
    }
    stack
        .wait_for_deliveries(MINUTE, |d| sent.iter().filter(|id| !copies_of(d, a, **id).is_empty()).count() >= 3)
        .await
        .unwrap();
    stack.pipeline.kill9();
    for i in 20..40 {
        sent.push(say(&stack, a, &format!("message {i}")));
    }
    stack.pipeline.restart().await.unwrap();
    stack
        .wait_for_deliveries(MINUTE, |d| sent.iter().all(|id| !copies_of(d, a, *id).is_empty()))
        .await
        .unwrap();
    let d = stack.wait_quiet(Duration::from_secs(3), MINUTE).await;
    let mut per_message: HashMap<i64, usize> = HashMap::new();
    for x in d.iter().filter(|x| x.chat_id == b) {
        if let Some((from, id)) = x.source {
            assert_eq!(from, a);
            *per_message.entry(id).or_default() += 1;
        }
    }
    assert_eq!(per_message.len(), 40, "every message relayed");
    assert!(per_message.values().all(|n| *n == 1), "none twice: {per_message:?}");
}
