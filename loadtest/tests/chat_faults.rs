//! The random chat under what Telegram does to a relay (issue 21's findings, tried as
//! a stranger would): a message deleted before its batch was copied, protected content,
//! random 429s, and a report's evidence. Real nats-server, redis-server, `pipeline` and
//! `bot`; the Bot API emulator skips what Telegram cannot copy and answers 429s at random.

use std::time::Duration;

use herald_loadtest::demo::chat::{copies_of, count, mapped, say, ANN, BEN, MODERATORS};
use herald_loadtest::emulator::{Delivery, EmulatorLimits};
use herald_loadtest::stack::{Stack, StackOptions};
use serde_json::json;

const MINUTE: Duration = Duration::from_secs(60);

fn opts(p429: f64) -> StackOptions {
    let args = [
        "--chat-moderators",
        &MODERATORS.to_string(),
        "--inbound-limit",
        "chat=500/5",
        "--chat-newcomer-text-only",
        "false",
    ];
    StackOptions {
        pipeline_args: args.iter().map(|s| s.to_string()).collect(),
        limits: EmulatorLimits {
            p429,
            ..Default::default()
        },
        ..Default::default()
    }
}

/// Ann and Ben, welcomed and paired.
async fn paired(stack: &Stack) {
    for u in [ANN, BEN] {
        say(stack, u, "/start");
    }
    stack
        .wait_for_deliveries(MINUTE, |d| count(d, ANN, "Welcome") == 1 && count(d, BEN, "Welcome") == 1)
        .await
        .unwrap();
    say(stack, ANN, "/chat");
    stack
        .wait_for_deliveries(MINUTE, |d| count(d, ANN, "Searching") == 1)
        .await
        .unwrap();
    say(stack, BEN, "/chat");
    stack
        .wait_for_deliveries(MINUTE, |d| {
            count(d, ANN, "Partner found") == 1 && count(d, BEN, "Partner found") == 1
        })
        .await
        .unwrap();
}

/// A plain text message from `user` under a fresh id: (id, update).
fn text_from(user: i64, text: &str) -> (i64, serde_json::Value) {
    let mut update = herald_loadtest::stack::private_text(user, text);
    let id = herald_loadtest::demo::chat::next_id();
    update["message"]["message_id"] = json!(id);
    update["message"].as_object_mut().unwrap().remove("entities");
    (id, update)
}

/// Ben's copy of Ann's `message` that is still there (not deleted), if any.
fn live_copy(d: &[Delivery], message: i64) -> Option<i64> {
    let copies: Vec<i64> = copies_of(d, ANN, message).iter().map(|c| c.message_id).collect();
    let deleted = |id: &i64| {
        d.iter()
            .any(|x| x.method == "deleteMessage" && x.chat_id == BEN && x.message_id == *id)
    };
    copies.into_iter().find(|c| !deleted(c))
}

#[tokio::test]
async fn a_partly_copied_batch_maps_each_copy_and_names_the_lost_message() {
    let stack = Stack::start(opts(0.0)).await.unwrap();
    paired(&stack).await;
    // the first goes at once; the next three wait out the pace and go as one batch,
    // whose middle message Ann deletes before it is copied
    let first = say(&stack, ANN, "first");
    let burst: Vec<i64> = ["one", "two", "three"].iter().map(|t| say(&stack, ANN, t)).collect();
    assert!(stack.emulator.delete_user_message(ANN, burst[1]), "the emulator knew Ann's message");
    let d = stack
        .wait_for_deliveries(MINUTE, |d| {
            live_copy(d, burst[0]).is_some() && live_copy(d, burst[2]).is_some() && count(d, ANN, "could not be delivered") == 1
        })
        .await
        .unwrap();
    assert!(live_copy(&d, first).is_some());
    let told = d
        .iter()
        .find(|x| x.chat_id == ANN && x.text.contains("could not be delivered"))
        .unwrap();
    assert_eq!(
        told.reply_to,
        Some(burst[1]),
        "Ann is told which message was lost, as a reply to it"
    );
    assert!(
        d.iter().any(|x| x.method == "copyMessages" && x.chat_id == BEN),
        "the burst went out as a batch first (else this test tests nothing)"
    );

    // an edit of a message of the partly copied batch edits Ben's copy of it
    let third = live_copy(&d, burst[2]).unwrap();
    mapped(&stack, BEN, third).await.unwrap();
    let edit = json!({"edited_message": {"message_id": burst[2], "from": {"id": ANN, "is_bot": false, "first_name": "Tester"},
        "chat": {"id": ANN, "type": "private"}, "date": 0, "edit_date": 1, "text": "three, edited"}});
    stack.emulator.push_update(edit);
    // Ben's reply to his copy of "one" lands on Ann's "one"
    let one = live_copy(&d, burst[0]).unwrap();
    mapped(&stack, BEN, one).await.unwrap();
    let (reply_id, mut reply) = text_from(BEN, "answer to one");
    reply["message"]["reply_to_message"] = json!({"message_id": one, "date": 0, "chat": {"id": BEN, "type": "private"}, "text": "one"});
    stack.emulator.push_update(reply);
    let d = stack
        .wait_for_deliveries(MINUTE, |d| {
            d.iter().any(|x| x.method == "editMessageText" && x.chat_id == BEN) && !copies_of(d, BEN, reply_id).is_empty()
        })
        .await
        .unwrap();
    let edit = d.iter().find(|x| x.method == "editMessageText" && x.chat_id == BEN).unwrap();
    assert_eq!((edit.message_id, edit.text.as_str()), (third, "three, edited"));
    let answer = copies_of(&d, BEN, reply_id)[0];
    assert_eq!(
        (answer.chat_id, answer.reply_to),
        (ANN, Some(burst[0])),
        "the reply lands on Ann's original"
    );
}

#[tokio::test]
async fn protected_content_is_refused_at_once_and_never_queued() {
    let stack = Stack::start(opts(0.0)).await.unwrap();
    paired(&stack).await;
    let (id, mut update) = text_from(ANN, "a protected forward");
    update["message"]["has_protected_content"] = json!(true);
    stack.emulator.push_update(update);
    let after = say(&stack, ANN, "and this one goes");
    let d = stack
        .wait_for_deliveries(MINUTE, |d| !copies_of(d, ANN, after).is_empty() && count(d, ANN, "protected") == 1)
        .await
        .unwrap();
    assert!(copies_of(&d, ANN, id).is_empty());
    let told = d.iter().find(|x| x.chat_id == ANN && x.text.contains("protected")).unwrap();
    assert_eq!(told.reply_to, Some(id));
    assert!(
        !d.iter()
            .any(|x| x.chat_id == BEN && x.method.starts_with("copyMessage") && x.source.is_none()),
        "no copy attempt of the protected message reached Telegram"
    );
}

#[tokio::test]
async fn random_429s_never_reorder_a_chat_and_the_report_header_comes_first() {
    let stack = Stack::start(opts(0.5)).await.unwrap();
    paired(&stack).await;
    let mut sent = Vec::new();
    for i in 0..18 {
        sent.push(say(&stack, ANN, &format!("ann {i}")));
        if i % 3 == 0 {
            // let some go alone, some batched
            stack
                .wait_for_deliveries(MINUTE, |d| !copies_of(d, ANN, *sent.last().unwrap()).is_empty())
                .await
                .unwrap();
        }
    }
    let ben = say(&stack, BEN, "ben's only message");
    let d = stack
        .wait_for_deliveries(MINUTE, |d| {
            sent.iter().all(|id| !copies_of(d, ANN, *id).is_empty()) && !copies_of(d, BEN, ben).is_empty()
        })
        .await
        .unwrap();
    assert!(
        stack.emulator.stats().too_many_requests > 0,
        "Telegram answered 429s (else this tests nothing)"
    );
    let order: Vec<i64> = d
        .iter()
        .filter(|x| x.chat_id == BEN)
        .filter_map(|x| x.source.map(|(_, id)| id))
        .collect();
    assert_eq!(order, sent, "Ben got Ann's messages once each, in the order she sent them");

    say(&stack, ANN, "/report");
    // the moderators' group takes 20 messages a minute: the runs come 3 s apart
    let to_mods = |d: &[Delivery], from: i64, id: i64| copies_of(d, from, id).iter().any(|c| c.chat_id == MODERATORS);
    stack
        .wait_for_deliveries(MINUTE, |d| to_mods(d, BEN, ben) && to_mods(d, ANN, *sent.last().unwrap()))
        .await
        .unwrap();
    let d = stack.wait_quiet(Duration::from_secs(4), MINUTE).await;
    let to_mods: Vec<&Delivery> = d.iter().filter(|x| x.chat_id == MODERATORS).collect();
    assert!(to_mods[0].text.contains("Report #"), "the header first: {to_mods:?}");
    assert_eq!(
        to_mods[1].source,
        Some((BEN, ben)),
        "the reported user's message first in the evidence, then the reporter's"
    );
    assert!(to_mods.iter().all(|x| !x.protected), "moderators can forward the evidence");
    let evidence: Vec<(i64, i64)> = to_mods.iter().filter_map(|x| x.source).collect();
    assert_eq!(evidence.len(), 19, "Ben's one message and Ann's eighteen (under the cap of 20)");
}

#[tokio::test]
async fn evidence_leads_with_the_reported_user_and_leaves_out_what_never_arrived() {
    let stack = Stack::start(opts(0.0)).await.unwrap();
    paired(&stack).await;
    let ben = say(&stack, BEN, "the message to report");
    stack
        .wait_for_deliveries(MINUTE, |d| !copies_of(d, BEN, ben).is_empty())
        .await
        .unwrap();
    let anns: Vec<i64> = (0..25).map(|i| say(&stack, ANN, &format!("ann {i}"))).collect();
    stack
        .wait_for_deliveries(MINUTE, |d| anns.iter().all(|id| live_copy(d, *id).is_some()))
        .await
        .unwrap();
    let lost = say(&stack, ANN, "deleted before its copy");
    stack.emulator.delete_user_message(ANN, lost);
    let last = say(&stack, ANN, "the last one");
    stack
        .wait_for_deliveries(MINUTE, |d| {
            live_copy(d, last).is_some() && count(d, ANN, "could not be delivered") == 1
        })
        .await
        .unwrap();
    say(&stack, ANN, "/report");
    stack
        .wait_for_deliveries(MINUTE, |d| copies_of(d, ANN, last).iter().any(|c| c.chat_id == MODERATORS))
        .await
        .unwrap();
    let d = stack.wait_quiet(Duration::from_secs(4), MINUTE).await;
    let evidence: Vec<(i64, i64)> = d.iter().filter(|x| x.chat_id == MODERATORS).filter_map(|x| x.source).collect();
    assert_eq!(
        evidence.first(),
        Some(&(BEN, ben)),
        "the reported user's message leads: {evidence:?}"
    );
    assert_eq!(evidence.len(), 20, "capped at 20");
    assert!(!evidence.contains(&(ANN, lost)), "a message that never reached Ben is not evidence");
    assert_eq!(evidence.last(), Some(&(ANN, last)), "then the reporter's last, oldest first");
}
