//! The random chat, end to end (`loadtest demo-chat`): Ann and Ben /chat and are
//! paired; Ann sends every kind the relay copies (real message shapes from the
//! fixtures), an album and a quiz Telegram refuses to copy; Ben replies to a copy and
//! Ann edits her text; Ann /next's Ben, is paired with Cal, and /reports him; an admin
//! bans Cal. Everything passes through the emulator, the bot and the pipeline.

use std::path::PathBuf;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use serde_json::{json, Value};

use crate::emulator::Delivery;
use crate::stack::{private_text, Stack, StackOptions};

pub const ANN: i64 = 2001;
pub const BEN: i64 = 2002;
pub const CAL: i64 = 2003;
pub const ADMIN: i64 = 2009;
/// The moderators' group.
pub const MODERATORS: i64 = -1_002_000_000_009;

const REAL: &str = include_str!("../../fixtures/chat_messages.real.jsonl");
const SYNTHETIC: &str = include_str!("../../fixtures/chat_messages.synthetic.jsonl");

/// The kinds the relay copies (the fixtures' others cannot be copied).
pub const COPIED: &[&str] = &[
    "text",
    "audio",
    "voice",
    "document",
    "dice",
    "photo",
    "video",
    "animation",
    "sticker",
    "video_note",
    "location",
    "venue",
    "contact",
    "poll",
];

/// Every message shape of the fixtures: (kind, `Message` object).
pub fn shapes() -> Vec<(String, Value)> {
    REAL.lines()
        .chain(SYNTHETIC.lines())
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let v: Value = serde_json::from_str(l).expect("fixture line");
            (v["kind"].as_str().unwrap_or_default().to_string(), v["message"].clone())
        })
        .collect()
}

static NEXT_ID: AtomicI64 = AtomicI64::new(100);

/// A fresh message id (increasing, as in one chat).
pub fn next_id() -> i64 {
    NEXT_ID.fetch_add(1, Ordering::SeqCst)
}

/// `message` re-homed to `user`'s private chat under a fresh id: its content kept.
pub fn from_user(user: i64, mut message: Value) -> (i64, Value) {
    let id = next_id();
    message["message_id"] = json!(id);
    message["from"] = json!({"id": user, "is_bot": false, "first_name": "Tester"});
    message["chat"] = json!({"id": user, "type": "private", "first_name": "Tester"});
    message["date"] = json!(herald_schemas::now_ms() / 1000);
    for k in [
        "reply_to_message",
        "forward_origin",
        "forward_from",
        "forward_date",
        "message_thread_id",
        "is_topic_message",
    ] {
        if let Some(o) = message.as_object_mut() {
            o.remove(k);
        }
    }
    (id, json!({ "message": message }))
}

/// `user` sends `text` (a command or a message); its message id.
pub fn say(stack: &Stack, user: i64, text: &str) -> i64 {
    let mut update = private_text(user, text);
    let id = next_id();
    update["message"]["message_id"] = json!(id);
    if !text.starts_with('/') {
        update["message"].as_object_mut().map(|m| m.remove("entities"));
    }
    stack.emulator.push_update(update);
    id
}

/// Texts the emulator delivered to `chat`.
pub fn texts_to(d: &[Delivery], chat: i64) -> Vec<String> {
    d.iter()
        .filter(|d| d.chat_id == chat && d.source.is_none())
        .map(|d| d.text.clone())
        .collect()
}

/// How many deliveries to `chat` contain `needle`.
pub fn count(d: &[Delivery], chat: i64, needle: &str) -> usize {
    texts_to(d, chat).iter().filter(|t| t.contains(needle)).count()
}

/// Copies of `(from, message)` delivered anywhere.
pub fn copies_of(d: &[Delivery], from: i64, message: i64) -> Vec<&Delivery> {
    d.iter().filter(|d| d.source == Some((from, message))).collect()
}

/// Waits for `pred`, 60 s at most.
async fn until(stack: &Stack, what: &str, pred: impl Fn(&[Delivery]) -> bool) -> anyhow::Result<Vec<Delivery>> {
    stack
        .wait_for_deliveries(Duration::from_secs(60), pred)
        .await
        .map_err(|e| anyhow::anyhow!("{what}: {e}"))
}

/// What happened, for the test and the transcript.
pub struct ChatSummary {
    pub deliveries: Vec<Delivery>,
    /// Ann's messages of each copied kind: (kind, message id).
    pub kinds: Vec<(String, i64)>,
    /// Ann's messages that cannot be copied: (kind, id) (a pin, a story, a quiz whose
    /// answer the bot does not know).
    pub refused: Vec<(String, i64)>,
    pub album: Vec<i64>,
    /// Ann's text and Ben's copy of it.
    pub text: (i64, i64),
    /// Ben's reply to that copy.
    pub reply: i64,
    /// Cal's message to Ann, Ann's answer (the report's evidence).
    pub evidence: (i64, i64),
    pub clean_shutdown: bool,
}

/// Runs the scenario on a fresh stack.
///
/// Errors: the stack did not start, or a step did not happen within 60 s.
pub async fn run(log_dir: Option<PathBuf>) -> anyhow::Result<ChatSummary> {
    let opts = StackOptions {
        pipeline_args: [
            "--admin-ids",
            &ADMIN.to_string(),
            "--chat-moderators",
            &MODERATORS.to_string(),
            // the tester sends every kind at once: above the default 12 per 5 s
            "--inbound-limit",
            "chat=200/5",
            "--chat-newcomer-text-only",
            "false",
            // Ann and Ben search again within seconds (the cooldown is tested apart)
            "--chat-search-cooldown",
            "0",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect(),
        log_dir,
        ..Default::default()
    };
    let mut stack = Stack::start(opts).await?;
    for u in [ANN, BEN, CAL] {
        say(&stack, u, "/start");
        until(&stack, "welcome", |d| count(d, u, "Welcome") == 1).await?;
    }
    say(&stack, ANN, "/chat");
    until(&stack, "Ann searches", |d| count(d, ANN, "Searching") == 1).await?;
    say(&stack, BEN, "/chat");
    until(&stack, "paired", |d| {
        count(d, ANN, "Partner found") == 1 && count(d, BEN, "Partner found") == 1
    })
    .await?;

    // every kind, then an album of three photos
    let (mut kinds, mut refused) = (Vec::new(), Vec::new());
    for (kind, message) in shapes() {
        let (id, update) = from_user(ANN, message);
        stack.emulator.push_update(update);
        match COPIED.contains(&kind.as_str()) {
            true => kinds.push((kind, id)),
            false => refused.push((kind, id)),
        }
    }
    let quiz = json!({"poll": {"id": "1", "question": "2+2?", "options": [{"text": "4", "voter_count": 0}, {"text": "5", "voter_count": 0}],
        "total_voter_count": 0, "is_closed": false, "is_anonymous": true, "type": "quiz", "allows_multiple_answers": false}});
    let (quiz_id, update) = from_user(ANN, quiz);
    stack.emulator.push_update(update);
    refused.push(("quiz without its answer".into(), quiz_id));
    let photo = shapes().into_iter().find(|(k, _)| k == "photo").expect("a photo shape").1;
    let mut album = Vec::new();
    for caption in ["one", "two", "three"] {
        let mut m = photo.clone();
        m["media_group_id"] = json!("13579");
        m["caption"] = json!(caption);
        let (id, update) = from_user(ANN, m);
        album.push(id);
        stack.emulator.push_update(update);
    }
    let d = until(&stack, "every kind relayed, every refusal told", |d| {
        kinds.iter().all(|(_, id)| !copies_of(d, ANN, *id).is_empty())
            && album.iter().all(|id| !copies_of(d, ANN, *id).is_empty())
            && count(d, ANN, "could not be delivered") >= refused.len()
    })
    .await?;

    // Ben replies to the copy of Ann's text; Ann edits her text
    let text_id = kinds.iter().find(|(k, _)| k == "text").map(|(_, id)| *id).expect("a text");
    let copy = copies_of(&d, ANN, text_id)[0].message_id;
    mapped(&stack, BEN, copy).await?;
    let (reply, mut update) = from_user(BEN, json!({"text": "you said it"}));
    update["message"]["reply_to_message"] = json!({"message_id": copy, "date": 0, "chat": {"id": BEN, "type": "private"}, "text": "x"});
    stack.emulator.push_update(update);
    until(&stack, "the reply lands on Ann's original", |d| {
        copies_of(d, BEN, reply).first().is_some_and(|c| c.reply_to == Some(text_id))
    })
    .await?;
    let edit = json!({"edited_message": {"message_id": text_id, "from": {"id": ANN, "is_bot": false, "first_name": "Tester"},
        "chat": {"id": ANN, "type": "private"}, "date": 0, "edit_date": herald_schemas::now_ms() / 1000, "text": "edited: 1 < 2"}});
    stack.emulator.push_update(edit);
    until(&stack, "the edit edits Ben's copy", |d| {
        d.iter()
            .any(|d| d.method == "editMessageText" && d.chat_id == BEN && d.message_id == copy)
    })
    .await?;

    // Ann skips Ben, meets Cal, and reports him with the last messages as evidence
    say(&stack, ANN, "/next");
    until(&stack, "Ben told once", |d| {
        count(d, BEN, "partner left") == 1 && count(d, ANN, "Searching") == 2
    })
    .await?;
    say(&stack, CAL, "/chat");
    until(&stack, "Ann meets Cal", |d| {
        count(d, ANN, "Partner found") == 2 && count(d, CAL, "Partner found") == 1
    })
    .await?;
    let from_cal = say(&stack, CAL, "send me your number");
    until(&stack, "Cal's message", |d| !copies_of(d, CAL, from_cal).is_empty()).await?;
    let from_ann = say(&stack, ANN, "no");
    until(&stack, "Ann's answer", |d| !copies_of(d, ANN, from_ann).is_empty()).await?;
    say(&stack, ANN, "/report");
    until(&stack, "report filed, evidence copied", |d| {
        count(d, ANN, "Report #1 filed") == 1
            && count(d, CAL, "partner left") == 1
            && count(d, MODERATORS, "Report #1") == 1
            && copies_of(d, CAL, from_cal).iter().any(|c| c.chat_id == MODERATORS)
            && copies_of(d, ANN, from_ann).iter().any(|c| c.chat_id == MODERATORS)
    })
    .await?;
    say(&stack, ADMIN, &format!("/admin ban {CAL} 7 asking for phone numbers"));
    until(&stack, "Cal banned and told why", |d| {
        count(d, CAL, "asking for phone numbers") == 1
    })
    .await?;
    say(&stack, CAL, "/chat");
    until(&stack, "a banned user cannot join", |d| count(d, CAL, "You are banned") == 2).await?;
    // Ann and Ben both search: Ann skipped Ben, so they wait
    say(&stack, BEN, "/chat");
    until(&stack, "Ben searches", |d| count(d, BEN, "Searching") == 1).await?;
    say(&stack, ANN, "/chat");
    let deliveries = until(&stack, "Ann searches, not paired with Ben", |d| count(d, ANN, "Searching") == 3).await?;
    let clean_shutdown = stack.pipeline.terminate() & stack.bot.terminate();
    Ok(ChatSummary {
        deliveries,
        kinds,
        refused,
        album,
        text: (text_id, copy),
        reply,
        evidence: (from_cal, from_ann),
        clean_shutdown,
    })
}

/// Waits until the copy `message` in `chat` is in the message-id map (the bot's report
/// reached the chat's delivery stage), so a reply to it finds the original.
pub async fn mapped(stack: &Stack, chat: i64, message: i64) -> anyhow::Result<()> {
    let mut conn = redis::Client::open(stack.redis.url())?.get_multiplexed_async_connection().await?;
    for _ in 0..600 {
        let found: bool = redis::cmd("EXISTS")
            .arg(format!("herald:chat:map:{chat}:{message}"))
            .query_async(&mut conn)
            .await?;
        if found {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    anyhow::bail!("copy {message} in chat {chat} never mapped")
}

/// The transcript `loadtest demo-chat` prints.
pub fn transcript(s: &ChatSummary) -> String {
    let who = |chat: i64| match chat {
        ANN => "Ann",
        BEN => "Ben",
        CAL => "Cal",
        ADMIN => "admin",
        MODERATORS => "moderators",
        _ => "?",
    };
    let mut out = String::new();
    for d in &s.deliveries {
        let what = match d.source {
            Some((from, id)) => format!(
                "{} of {}'s message {id}{}",
                d.method,
                who(from),
                d.reply_to.map(|r| format!(" (reply to {r})")).unwrap_or_default()
            ),
            None => d.text.replace('\n', " / "),
        };
        out.push_str(&format!("→ {:<10} #{:<4} {}\n", who(d.chat_id), d.message_id, what));
    }
    out
}
